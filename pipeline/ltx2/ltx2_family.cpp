#include "pipeline/ltx2/ltx2_family.h"

#include <filesystem>
#include <numeric>

#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/io/model_config.h"
#include "pipeline/ltx2/ltx2_conditioner.h"
#include "pipeline/ltx2/ltx2_pipeline.h"
#include "pipeline/ltx2/ltx2_small_model.h"
#include "pipeline/ltx_video/ltx_video_decoder.h"

namespace ltx::pipeline {
namespace {

class Ltx2Family final : public ModelFamily {
 public:
  std::string name() const override { return "ltx2"; }
  std::string description() const override { return "LTX-2 / LTX-2.3 (Gemma 3 text encoder, audio and video)"; }

  bool recognizes(const ModelSource& s) const override {
    if (s.folder) {
      return s.class_name == "LTX2Pipeline" || s.class_name == "LTX2ImageToVideoPipeline" ||
             s.class_name == "LTX2ConditionPipeline";
    }
    return s.has_tensor_containing("av_ca_a2v_gate_adaln_single") ||
           s.has_tensor_containing("audio_embeddings_connector.") ||
           s.has_tensor_containing("audio_vae.per_channel_statistics");
  }

  Result<Model> load(const ModelSource& s, dist::Communicator& comm, const ModelPlacement& placement) const override {
    namespace fs = std::filesystem;
    if (!s.folder) {
      return failed_precondition_error(
          s.path + ": an original single-file LTX-2 checkpoint holds no Gemma text encoder or tokenizer; serve a "
                   "diffusers folder (model_index.json with transformer/, connectors/, text_encoder/, tokenizer/, "
                   "vae/, audio_vae/, vocoder/, scheduler/); `ltx-worker inspect` and ltx-parity read single files");
    }
    if (placement.planning.ring_size > 1) {
      return invalid_argument_error("--ring-size " + std::to_string(placement.planning.ring_size) +
                                    ": LTX-2 runs Ulysses alone (its group size must divide its heads)");
    }
    const fs::path dir(s.path);
    Model m;
    m.family = name();
    m.placement = placement;
    m.placement.planning.ring_size = 1;
    auto parts = std::make_shared<Ltx2Parts>();
    LTX_ASSIGN_OR_RETURN(VaeConfig vae_config, load_vae_config((dir / "vae" / "config.json").string()));
    LTX_ASSIGN_OR_RETURN(Ltx2ConnectorsConfig cc, load_ltx2_connectors_config((dir / "connectors" / "config.json").string()));
    const std::string audio_config_path = (dir / "audio_vae" / "config.json").string();
    LTX_ASSIGN_OR_RETURN(std::string audio_text, read_text_file(audio_config_path));
    LTX_ASSIGN_OR_RETURN(Ltx2AudioVaeConfig ac, parse_ltx2_audio_vae_config(audio_text, audio_config_path));
    const std::string vocoder_config_path = (dir / "vocoder" / "config.json").string();
    LTX_ASSIGN_OR_RETURN(std::string vocoder_text, read_text_file(vocoder_config_path));
    LTX_ASSIGN_OR_RETURN(Ltx2VocoderConfig voc, parse_ltx2_vocoder_config(vocoder_text, vocoder_config_path));
    LTX_ASSIGN_OR_RETURN(auto transformer, Ltx2Transformer::load((dir / "transformer").string(), comm,
                                                                 placement.denoiser.dtype, placement.denoiser.device));
    const Ltx2TransformerConfig& tc = transformer.config();
    if (vae_config.latent_channels != tc.in_channels) {
      return invalid_argument_error(s.path + ": the VAE has " + std::to_string(vae_config.latent_channels) +
                                    " latent channels, the transformer " + std::to_string(tc.in_channels));
    }
    if (ac.latent_channels <= 0 || tc.audio_in_channels % ac.latent_channels != 0) {
      return invalid_argument_error(s.path + ": the audio VAE's " + std::to_string(ac.latent_channels) +
                                    " latent channels do not divide the transformer's audio_in_channels " +
                                    std::to_string(tc.audio_in_channels));
    }
    m.geometry.latent_channels = tc.in_channels;
    m.geometry.context_channels = cc.video_input_dim() + cc.audio_input_dim();
    // Both streams' heads are split across the group.
    m.geometry.attention_heads = std::gcd(tc.num_attention_heads, tc.audio_num_attention_heads);
    m.geometry.spatial_compression = vae_config.spatial_compression_ratio;
    m.geometry.temporal_compression = vae_config.temporal_compression_ratio;
    m.geometry.audio_sample_rate = voc.output_sampling_rate;
    m.geometry.audio_token_channels = tc.audio_in_channels;
    m.geometry.audio_latents_per_second = static_cast<double>(ac.sample_rate) /
                                          static_cast<double>(ac.mel_hop_length * Ltx2AudioVaeConfig::kTimeCompression);
    const bool has_upsampler = fs::is_regular_file(dir / "latent_upsampler" / "config.json");
    if (has_upsampler) {
      const int64_t fixed = static_cast<int64_t>(ltx2_distilled_stage1_sigmas().size() + ltx2_distilled_stage2_sigmas().size());
      m.geometry.pipeline_variants = {PipelineVariant{"distilled", fixed}};
    }
    parts->transformer = std::make_shared<const Ltx2Transformer>(std::move(transformer));
    parts->video_context_width = cc.video_input_dim();
    parts->audio_latent_channels = ac.latent_channels;
    LTX_ASSIGN_OR_RETURN(auto sc, load_scheduler_config((dir / "scheduler" / "scheduler_config.json").string()));
    m.scheduler = std::make_unique<FlowMatchScheduler>(sc);
    // The video decoder on rank 0, or on every rank when its decode is shared.
    if (comm.rank() == 0 || (placement.decoder.shared && comm.size() > 1)) {
      const Placement& d = placement.decoder;
      LTX_ASSIGN_OR_RETURN(auto vae, LtxVaeDecoder::load((dir / "vae").string(), d.dtype, d.device));
      m.video_decoder = std::make_unique<LtxVideoDecoder>(std::move(vae));
    }
    if (comm.rank() == 0) {
      const Placement& d = placement.decoder;
      LTX_ASSIGN_OR_RETURN(auto audio, Ltx2AudioDecoder::load((dir / "audio_vae").string(), d.dtype, d.device));
      parts->audio_decoder.emplace(std::move(audio));
      LTX_ASSIGN_OR_RETURN(auto vocoder, Ltx2Vocoder::load((dir / "vocoder").string(), d.dtype, d.device));
      parts->vocoder.emplace(std::move(vocoder));
      if (has_upsampler) {
        LTX_ASSIGN_OR_RETURN(auto up, Ltx2LatentUpsampler::load((dir / "latent_upsampler").string(), d.dtype, d.device));
        parts->upsampler.emplace(std::move(up));
      }
      LTX_ASSIGN_OR_RETURN(auto text, Ltx2TextConditioner::load(dir.string(), placement.text_encoder));
      m.text = std::move(text);
    }
    m.parts = std::move(parts);
    return m;
  }

  Status write_builtin(const std::string& dir) const override { return write_ltx2_small_model(dir, 0); }
  std::string builtin_version() const override { return kLtx2SmallModelVersion; }
};

}  // namespace

const ModelFamily& ltx2_family() {
  static const Ltx2Family family;
  return family;
}

}  // namespace ltx::pipeline
