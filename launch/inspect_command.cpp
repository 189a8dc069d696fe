#include "launch/inspect_command.h"

#include <filesystem>
#include <map>

#include "common/check.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/ltx2/ltx2_config.h"

namespace ltx::launch {
namespace fs = std::filesystem;

namespace {

// Parses whichever known config sits beside the weights and prints its key facts.
Status describe_config(const fs::path& dir, std::ostream& out) {
  const fs::path config = dir / "config.json";
  const fs::path scheduler = dir / "scheduler_config.json";
  if (fs::exists(scheduler)) {
    LTX_ASSIGN_OR_RETURN(auto c, pipeline::load_scheduler_config(scheduler.string()));
    out << "scheduler: flow-matching, " << c.num_train_timesteps << " train timesteps, dynamic shift "
        << (c.use_dynamic_shifting ? "on" : "off") << "\n";
  }
  if (!fs::exists(config)) return Status();
  LTX_ASSIGN_OR_RETURN(std::string text, pipeline::read_text_file(config.string()));
  if (text.find("LTX2VideoTransformer3DModel") != std::string::npos) {
    LTX_ASSIGN_OR_RETURN(auto c, pipeline::parse_ltx2_transformer_config(text, config.string()));
    out << "transformer: LTX-" << c.variant() << " audio-video, " << c.num_layers << " layers, video "
        << c.num_attention_heads << " heads x " << c.attention_head_dim << ", audio " << c.audio_num_attention_heads
        << " heads x " << c.audio_attention_head_dim << "\n";
  } else if (text.find("LTX2TextConnectors") != std::string::npos) {
    LTX_ASSIGN_OR_RETURN(auto c, pipeline::parse_ltx2_connectors_config(text, config.string()));
    out << "text connectors: LTX-" << c.variant() << ", " << c.text_proj_in_factor << " hidden states x "
        << c.caption_channels << ", video " << c.video.num_layers << " blocks x " << c.video.inner_dim()
        << ", audio " << c.audio.num_layers << " blocks x " << c.audio.inner_dim() << "\n";
  } else if (text.find("LTXVideoTransformer3DModel") != std::string::npos) {
    LTX_ASSIGN_OR_RETURN(auto c, pipeline::parse_transformer_config(text, config.string()));
    out << "transformer: " << c.num_layers << " layers, " << c.num_attention_heads << " heads x "
        << c.attention_head_dim << ", caption channels " << c.caption_channels << "\n";
  } else if (text.find("AutoencoderKLLTXVideo") != std::string::npos) {
    LTX_ASSIGN_OR_RETURN(auto c, pipeline::parse_vae_config(text, config.string()));
    out << "vae: " << c.latent_channels << " latent channels, compression "
        << c.spatial_compression_ratio << "x" << c.spatial_compression_ratio << "x"
        << c.temporal_compression_ratio << ", timestep conditioning "
        << (c.timestep_conditioning ? "on" : "off") << "\n";
  } else if (text.find("gemma3") != std::string::npos) {
    LTX_ASSIGN_OR_RETURN(auto c, pipeline::parse_gemma3_config(text, config.string()));
    out << "text encoder: Gemma 3, " << c.num_hidden_layers << " layers, width " << c.hidden_size << "\n";
  } else if (text.find("\"t5\"") != std::string::npos) {
    LTX_ASSIGN_OR_RETURN(auto c, pipeline::parse_t5_config(text, config.string()));
    out << "text encoder: T5, " << c.num_layers << " layers, width " << c.d_model << "\n";
  }
  return Status();
}

}  // namespace

Status run_inspect(const std::string& path, std::ostream& out) {
  return catch_to_status([&]() -> Status {
    std::error_code ec;
    if (!fs::exists(path, ec)) return not_found_error(path + ": no such file or folder");
    const fs::path dir = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
    LTX_RETURN_IF_ERROR(describe_config(dir, out));
    LTX_ASSIGN_OR_RETURN(auto ckpt, pipeline::SafetensorsCheckpoint::open(path));
    std::map<std::string, std::pair<int64_t, int64_t>> by_dtype;  // dtype -> (tensors, elements)
    int64_t params = 0;
    for (const auto& name : ckpt.names()) {
      const auto* e = ckpt.find(name);
      auto& slot = by_dtype[pipeline::safetensors_dtype_name(e->dtype)];
      slot.first += 1;
      slot.second += e->numel();
      params += e->numel();
    }
    auto meta = ckpt.metadata().find("config");
    if (meta != ckpt.metadata().end() && meta->second.find("audio_num_attention_heads") != std::string::npos) {
      LTX_ASSIGN_OR_RETURN(auto c, pipeline::parse_ltx2_original_config(meta->second, path));
      out << "transformer: LTX-" << c.transformer.variant() << " audio-video, " << c.transformer.num_layers
          << " layers (single-file metadata)\n";
    }
    out << path << ": " << ckpt.names().size() << " tensors in " << ckpt.num_files()
        << " file(s), " << params << " parameters\n";
    for (const auto& [dtype, counts] : by_dtype) {
      out << "  " << dtype << ": " << counts.first << " tensors, " << counts.second << " elements\n";
    }
    return Status();
  });
}

}  // namespace ltx::launch
