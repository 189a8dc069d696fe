// Typed model configurations parsed from the reference's config.json files.
//
// Model folders hold the reference implementation's own config files
// (diffusers' transformer/config.json, vae/config.json,
// scheduler/scheduler_config.json; transformers' config.json for Gemma 3 and
// T5). They are parsed here and nowhere else: every field has its default,
// every value is validated, and an error names the file and the field.
// Unknown keys are ignored (configs carry bookkeeping such as _class_name);
// an unsupported *value* of a known field is an error. Plain structs, no JSON
// types leak out of this header; safe to copy between threads and ranks.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ltx::pipeline {

// diffusers LTXVideoTransformer3DModel. Defaults are the public 2B model.
struct TransformerConfig {
  int64_t in_channels = 128;
  int64_t out_channels = 128;
  int64_t patch_size = 1;    // only 1 is supported (the DiT sees latent voxels)
  int64_t patch_size_t = 1;  // only 1 is supported
  int64_t num_attention_heads = 32;
  int64_t attention_head_dim = 64;
  int64_t cross_attention_dim = 2048;
  int64_t num_layers = 28;
  int64_t caption_channels = 4096;
  std::string activation_fn = "gelu-approximate";  // the only one the model uses
  std::string qk_norm = "rms_norm_across_heads";   // the only one the model uses
  bool norm_elementwise_affine = false;
  double norm_eps = 1e-6;
  bool attention_bias = true;
  bool attention_out_bias = true;
  // Original-checkpoint switch: the first latent frame gets RoPE time 0 and
  // later ones 8k-7 (spec §1.7). Never set in diffusers configs.
  bool causal_temporal_positioning = false;

  int64_t inner_dim() const { return num_attention_heads * attention_head_dim; }
};

// diffusers AutoencoderKLLTXVideo (decoder side; encoder fields kept for checks).
struct VaeConfig {
  int64_t in_channels = 3;
  int64_t out_channels = 3;
  int64_t latent_channels = 128;
  std::vector<int64_t> block_out_channels = {128, 256, 512, 512};
  std::vector<int64_t> decoder_block_out_channels = {128, 256, 512, 512};
  std::vector<int64_t> layers_per_block = {4, 3, 3, 3, 4};
  std::vector<int64_t> decoder_layers_per_block = {4, 3, 3, 3, 4};
  std::vector<bool> spatio_temporal_scaling = {true, true, true, false};
  std::vector<bool> decoder_spatio_temporal_scaling = {true, true, true, false};
  std::vector<bool> decoder_inject_noise = {false, false, false, false, false};
  std::vector<std::string> downsample_type = {"conv", "conv", "conv", "conv"};
  std::vector<bool> upsample_residual = {false, false, false, false};
  std::vector<int64_t> upsample_factor = {1, 1, 1, 1};
  bool timestep_conditioning = false;
  int64_t patch_size = 4;
  int64_t patch_size_t = 1;
  double resnet_norm_eps = 1e-6;
  double scaling_factor = 1.0;
  bool encoder_causal = true;
  bool decoder_causal = false;
  int64_t spatial_compression_ratio = 32;   // derived when the file has null
  int64_t temporal_compression_ratio = 8;   // derived when the file has null
  // LTX-2 (AutoencoderKLLTX2Video): per up block, in decoding order (diffusers
  // does not reverse this list), "spatiotemporal", "temporal" or "spatial";
  // empty means spatiotemporal everywhere (LTX-Video).
  std::vector<std::string> upsample_type;
  std::string decoder_spatial_padding_mode = "zeros";  // "zeros" or "reflect" (LTX-2.0)
  bool ltx2 = false;  // AutoencoderKLLTX2Video: its resnet shortcut is a plain conv
};

// diffusers FlowMatchEulerDiscreteScheduler, as LTXPipeline drives it.
struct SchedulerConfig {
  int64_t num_train_timesteps = 1000;
  double shift = 1.0;
  bool use_dynamic_shifting = true;
  double base_shift = 0.95;
  double max_shift = 2.05;
  int64_t base_image_seq_len = 1024;
  int64_t max_image_seq_len = 4096;
  std::optional<double> shift_terminal = 0.1;  // null in the file disables the stretch
  bool invert_sigmas = false;
  bool stochastic_sampling = false;
  std::string time_shift_type = "exponential";  // "exponential" or "linear"
  bool use_karras_sigmas = false;       // must be false: not part of the LTX path
  bool use_exponential_sigmas = false;  // must be false
  bool use_beta_sigmas = false;         // must be false
};

// transformers Gemma3TextConfig (the text tower of Gemma 3).
struct Gemma3Config {
  struct Rope {
    double theta = 10000.0;
    std::string type = "default";  // "default" or "linear"
    double factor = 1.0;           // linear scaling factor
  };
  int64_t vocab_size = 262208;
  int64_t hidden_size = 2304;
  int64_t intermediate_size = 9216;
  int64_t num_hidden_layers = 26;
  int64_t num_attention_heads = 8;
  int64_t num_key_value_heads = 4;
  int64_t head_dim = 256;
  double query_pre_attn_scalar = 256;
  double rms_norm_eps = 1e-6;
  int64_t sliding_window = 4096;
  int64_t max_position_embeddings = 131072;
  std::string hidden_activation = "gelu_pytorch_tanh";
  bool attention_bias = false;
  std::vector<bool> sliding_layers;  // per layer: true = sliding, false = full
  Rope rope_sliding = {10000.0, "default", 1.0};
  Rope rope_full = {1000000.0, "default", 1.0};
  int64_t pad_token_id = 0;
  int64_t bos_token_id = 2;
  int64_t eos_token_id = 1;
};

// transformers T5Config, encoder part (T5 v1.1).
struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 4096;
  int64_t d_kv = 64;
  int64_t d_ff = 10240;
  int64_t num_layers = 24;
  int64_t num_heads = 64;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double layer_norm_epsilon = 1e-6;
  bool is_gated_act = true;
  std::string dense_act_fn = "gelu_new";
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
};

// Parse from JSON text; `source` names the file in errors.
Result<TransformerConfig> parse_transformer_config(const std::string& json_text, const std::string& source);
// The transformer config of an original single-file checkpoint: its
// safetensors metadata entry `config` (JSON with a "transformer" object in the
// original naming, e.g. qk_norm "rms_norm").
Result<TransformerConfig> parse_original_transformer_config(const std::string& metadata_json,
                                                            const std::string& source);
Result<VaeConfig> parse_vae_config(const std::string& json_text, const std::string& source);
Result<SchedulerConfig> parse_scheduler_config(const std::string& json_text, const std::string& source);
Result<Gemma3Config> parse_gemma3_config(const std::string& json_text, const std::string& source);
Result<T5Config> parse_t5_config(const std::string& json_text, const std::string& source);

// Reads a whole (small) text file; NOT_FOUND when absent.
Result<std::string> read_text_file(const std::string& path, size_t max_bytes = 16u << 20);

// Load from a file path (read + parse).
Result<TransformerConfig> load_transformer_config(const std::string& path);
Result<VaeConfig> load_vae_config(const std::string& path);
Result<SchedulerConfig> load_scheduler_config(const std::string& path);
Result<Gemma3Config> load_gemma3_config(const std::string& path);
Result<T5Config> load_t5_config(const std::string& path);

}  // namespace ltx::pipeline
