#include "pipeline/ltx_video/ltx_video_family.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "parallel/step_plan.h"
#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/dit/ltx_transformer.h"
#include "pipeline/io/model_config.h"
#include "pipeline/ltx_video/ltx_denoiser.h"
#include "pipeline/ltx_video/ltx_video_decoder.h"
#include "pipeline/ltx_video/small_model.h"
#include "pipeline/text/gemma3_conditioner.h"
#include "pipeline/text/t5_conditioner.h"

namespace ltx::pipeline {
namespace {
namespace fs = std::filesystem;

// The tokenizer's length limit; LTXPipeline uses 128 (hub files sometimes
// carry a huge sentinel here).
int64_t tokenizer_max_length(const fs::path& folder) {
  auto text = read_text_file((folder / "tokenizer" / "tokenizer_config.json").string());
  if (!text.ok()) return 128;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_object() && j.contains("model_max_length") && j["model_max_length"].is_number_integer()) {
    const int64_t v = j["model_max_length"].get<int64_t>();
    return (v >= 2 && v <= 1024) ? v : int64_t{128};
  }
  return 128;
}

// text_encoder/config.json's model_type: "t5" or "gemma3_text" / "gemma3".
Result<std::unique_ptr<TextConditioner>> load_text_conditioner(const fs::path& dir, const Placement& placement) {
  const fs::path config = dir / "text_encoder" / "config.json";
  LTX_ASSIGN_OR_RETURN(std::string text, read_text_file(config.string()));
  auto j = nlohmann::json::parse(text, nullptr, false);
  const std::string type = j.is_object() ? j.value("model_type", "") : "";
  const int64_t max_length = tokenizer_max_length(dir);
  if (type == "t5") {
    LTX_ASSIGN_OR_RETURN(auto tok, Tokenizer::load((dir / "tokenizer" / "spiece.model").string(),
                                                   TokenizerRules::t5(max_length)));
    LTX_ASSIGN_OR_RETURN(auto enc, T5Encoder::load((dir / "text_encoder").string(), placement.dtype, placement.device));
    // diffusers LTXPipeline does not give T5 the mask.
    return std::unique_ptr<TextConditioner>(
        new T5TextConditioner(std::move(tok), std::move(enc), /*mask_to_t5=*/false, placement));
  }
  if (type == "gemma3_text" || type == "gemma3") {
    LTX_ASSIGN_OR_RETURN(auto tok, Tokenizer::load((dir / "tokenizer" / "tokenizer.model").string(),
                                                   TokenizerRules::gemma(max_length)));
    LTX_ASSIGN_OR_RETURN(auto enc, Gemma3TextEncoder::load((dir / "text_encoder").string(), placement.dtype,
                                                           placement.device));
    return std::unique_ptr<TextConditioner>(new Gemma3TextConditioner(std::move(tok), std::move(enc), placement));
  }
  return invalid_argument_error(config.string() + ": model_type '" + type +
                                "' is not a text encoder of LTX-Video (t5 or gemma3_text)");
}

class LtxVideoFamily final : public ModelFamily {
 public:
  std::string name() const override { return "ltx-video"; }
  std::string description() const override { return "LTX-Video 0.9.x (T5 text encoder, video only)"; }

  bool recognizes(const ModelSource& s) const override {
    if (s.folder) {
      return s.class_name == "LTXPipeline" || s.class_name == "LTXConditionPipeline" ||
             s.class_name == "LTXImageToVideoPipeline";
    }
    if (s.has_tensor_containing("audio") || s.has_tensor_containing("av_ca_")) return false;  // LTX-2
    if (!s.config_metadata.empty()) {
      auto j = nlohmann::json::parse(s.config_metadata, nullptr, false);
      if (j.is_object() && j.contains("transformer")) {
        const auto& t = j["transformer"];
        return t.is_object() && t.value("_class_name", std::string("Transformer3DModel")).find("Transformer3D") !=
                                    std::string::npos;
      }
    }
    return s.has_tensor_containing("patchify_proj.weight") || s.has_tensor_containing("adaln_single.");
  }

  Result<Model> load(const ModelSource& s, dist::Communicator& comm, const ModelPlacement& placement) const override {
    if (!s.folder) {
      return failed_precondition_error(
          s.path + ": an original single-file LTX-Video checkpoint holds the transformer and the VAE but no text "
                   "encoder or tokenizer; serve a diffusers folder (model_index.json with transformer/, vae/, "
                   "text_encoder/, tokenizer/, scheduler/); `ltx-worker inspect` reads single files");
    }
    const fs::path dir(s.path);
    Model m;
    m.family = name();
    m.placement = placement;
    LTX_ASSIGN_OR_RETURN(VaeConfig vae_config, load_vae_config((dir / "vae" / "config.json").string()));
    // The sequence plan: Ulysses over the group, or Ulysses inside sub-groups
    // x a ring of them (more ranks than heads, or --ring-size). The same
    // answer on every rank, agreed before the collective splits.
    auto config = load_transformer_config((dir / "transformer" / "config.json").string());
    Result<int> ring = config.ok() ? parallel::resolve_ring_size(placement.planning.ring_size, comm.size(),
                                                                 config->num_attention_heads)
                                   : Result<int>(config.status());
    LTX_RETURN_IF_ERROR(comm.all_ok(ring.status()));
    m.placement.planning.ring_size = *ring;
    std::unique_ptr<dist::Communicator> ulysses, ring_group;
    if (*ring > 1) {
      const int u = comm.size() / *ring;
      ulysses = comm.split(comm.rank() / u, comm.rank());
      ring_group = comm.split(comm.rank() % u, comm.rank());
    }
    LTX_ASSIGN_OR_RETURN(auto transformer,
                         LtxTransformer::load((dir / "transformer").string(), ulysses ? *ulysses : comm,
                                              placement.denoiser.dtype, placement.denoiser.device));
    if (ulysses) transformer.use_ring(std::move(ulysses), std::move(ring_group), comm);
    const TransformerConfig& tc = transformer.config();
    m.geometry.latent_channels = tc.in_channels;
    m.geometry.context_channels = tc.caption_channels;
    m.geometry.attention_heads = tc.num_attention_heads;
    m.geometry.spatial_compression = vae_config.spatial_compression_ratio * tc.patch_size;
    m.geometry.temporal_compression = vae_config.temporal_compression_ratio * tc.patch_size_t;
    if (vae_config.latent_channels != tc.in_channels) {
      return invalid_argument_error(s.path + ": the VAE has " + std::to_string(vae_config.latent_channels) +
                                    " latent channels, the transformer " + std::to_string(tc.in_channels));
    }
    RopeSettings rope;
    rope.spatial_compression = m.geometry.spatial_compression;
    rope.temporal_compression = m.geometry.temporal_compression;
    m.denoiser = std::make_unique<LtxDenoiser>(std::move(transformer), rope, placement.denoiser.step_graphs);
    LTX_ASSIGN_OR_RETURN(auto sc, load_scheduler_config((dir / "scheduler" / "scheduler_config.json").string()));
    m.scheduler = std::make_unique<FlowMatchScheduler>(sc);
    // The decoder on rank 0, or on every rank when the decode is shared.
    if (comm.rank() == 0 || (placement.decoder.shared && comm.size() > 1)) {
      LTX_ASSIGN_OR_RETURN(auto vae, LtxVaeDecoder::load((dir / "vae").string(), placement.decoder.dtype,
                                                         placement.decoder.device));
      m.video_decoder = std::make_unique<LtxVideoDecoder>(std::move(vae));
    }
    if (comm.rank() == 0) {
      LTX_ASSIGN_OR_RETURN(m.text, load_text_conditioner(dir, placement.text_encoder));
    }
    return m;
  }

  Status write_builtin(const std::string& dir) const override { return write_small_model(dir); }
  std::string builtin_version() const override { return kSmallModelVersion; }
};

}  // namespace

const ModelFamily& ltx_video_family() {
  static const LtxVideoFamily family;
  return family;
}

}  // namespace ltx::pipeline
