// Typed configurations of the LTX-2 models (spec ltx2.md §3.1, §3.11;
// text-encoders.md §2.7): the audio-video transformer and the text connectors,
// read from a diffusers config.json or from an original single-file
// checkpoint's `config` metadata (original key names), and the 2.0 / 2.3
// variant detection by tensor names when a file carries no metadata.
// Unknown values of the switches that change the numerics (rope layout,
// precision) are errors that name the field. Pure functions.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace ltx::pipeline {

enum class Ltx2RopeLayout { kSplit, kInterleaved };

struct Ltx2TransformerConfig {
  // Video stream.
  int64_t in_channels = 128;
  int64_t out_channels = 128;
  int64_t num_attention_heads = 32;
  int64_t attention_head_dim = 128;
  int64_t cross_attention_dim = 4096;  // video text context width (after the caption projection)
  // Audio stream.
  int64_t audio_in_channels = 128;
  int64_t audio_out_channels = 128;
  int64_t audio_num_attention_heads = 32;
  int64_t audio_attention_head_dim = 64;
  int64_t audio_cross_attention_dim = 2048;  // audio text context width; a<->v attention width
  // Shared.
  int64_t num_layers = 48;
  int64_t caption_channels = 3840;  // connector output width (2.0 caption projection input)
  double norm_eps = 1e-6;
  bool attention_bias = true;
  bool attention_out_bias = true;
  bool ff_bias = true;
  bool audio_ff_bias = true;
  // RoPE.
  double rope_theta = 10000.0;
  bool rope_double_precision = true;
  Ltx2RopeLayout rope_layout = Ltx2RopeLayout::kSplit;
  int64_t causal_offset = 1;
  double pos_embed_max_pos = 20;  // video time axis (seconds)
  double base_height = 2048;
  double base_width = 2048;
  double audio_pos_embed_max_pos = 20;
  std::vector<int64_t> vae_scale_factors = {8, 32, 32};
  int64_t audio_scale_factor = 4;
  int64_t audio_sampling_rate = 16000;
  int64_t audio_hop_length = 160;
  // Timesteps.
  double timestep_scale_multiplier = 1000;
  double cross_attn_timestep_scale_multiplier = 1000;
  // 2.3 switches.
  bool gated_attn = false;
  bool audio_gated_attn = false;
  bool cross_attn_mod = false;        // 9-row tables: text-attention query modulation + gate
  bool audio_cross_attn_mod = false;
  bool use_prompt_embeddings = true;  // 2.0: the DiT owns the caption projections
  bool use_prompt_adaln_single = true;
  bool perturbed_attn = false;        // STG supported by this checkpoint (diffusers' switch)

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
  int64_t audio_inner_dim() const { return audio_num_attention_heads * audio_attention_head_dim; }
  bool prompt_modulation() const { return cross_attn_mod || audio_cross_attn_mod; }
  int64_t video_mod_rows() const { return cross_attn_mod ? 9 : 6; }
  int64_t audio_mod_rows() const { return audio_cross_attn_mod ? 9 : 6; }
  // "2.0" or "2.3" (for logs and errors).
  std::string variant() const { return use_prompt_embeddings ? "2.0" : "2.3"; }
};

struct Ltx2ConnectorConfig {
  int64_t num_attention_heads = 30;
  int64_t attention_head_dim = 128;
  int64_t num_layers = 2;
  int64_t num_learnable_registers = 128;  // 0 = none
  bool gated_attn = false;
  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
};

struct Ltx2ConnectorsConfig {
  int64_t caption_channels = 3840;   // Gemma hidden size
  int64_t text_proj_in_factor = 49;  // Gemma layers + 1 (hidden states stacked)
  Ltx2ConnectorConfig video;
  Ltx2ConnectorConfig audio;
  double rope_base_seq_len = 4096;
  double rope_theta = 10000.0;
  bool rope_double_precision = true;
  Ltx2RopeLayout rope_layout = Ltx2RopeLayout::kSplit;
  // 2.3 ("V2" features): per-token RMS norm and one projection per stream.
  bool per_modality_projections = false;
  int64_t video_hidden_dim = 4096;
  int64_t audio_hidden_dim = 2048;
  bool proj_bias = false;

  int64_t feature_dim() const { return caption_channels * text_proj_in_factor; }
  // Width the connector of each stream works at (its input projection's output).
  int64_t video_input_dim() const { return per_modality_projections ? video_hidden_dim : caption_channels; }
  int64_t audio_input_dim() const { return per_modality_projections ? audio_hidden_dim : caption_channels; }
  std::string variant() const { return per_modality_projections ? "2.3" : "2.0"; }
};

// diffusers transformer/config.json (LTX2VideoTransformer3DModel).
Result<Ltx2TransformerConfig> parse_ltx2_transformer_config(const std::string& json_text,
                                                            const std::string& source);
// diffusers connectors/config.json (LTX2TextConnectors).
Result<Ltx2ConnectorsConfig> parse_ltx2_connectors_config(const std::string& json_text,
                                                          const std::string& source);
Result<Ltx2TransformerConfig> load_ltx2_transformer_config(const std::string& path);
Result<Ltx2ConnectorsConfig> load_ltx2_connectors_config(const std::string& path);

// An original single-file checkpoint's `config` metadata (JSON with a
// "transformer" object in the original key names): both configs.
struct Ltx2OriginalConfigs {
  Ltx2TransformerConfig transformer;
  Ltx2ConnectorsConfig connectors;
};
Result<Ltx2OriginalConfigs> parse_ltx2_original_config(const std::string& metadata_json,
                                                       const std::string& source);

// For a file without metadata: the variant from its tensor names and shapes
// (spec §0 table), the released 19B (2.0) or 22B (2.3) configuration with the
// layer count, widths and connector sizes read from the shapes. `shapes` maps
// every tensor name of the file to its shape. Errors name what is missing.
Result<Ltx2OriginalConfigs> infer_ltx2_original_config(
    const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& source);

}  // namespace ltx::pipeline
