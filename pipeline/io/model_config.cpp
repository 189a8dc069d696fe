#include "pipeline/io/model_config.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "pipeline/io/json_fields.h"

namespace ltx::pipeline {
namespace {

using nlohmann::json;

template <typename T>
Result<T> load_with(const std::string& path,
                    Result<T> (*parse)(const std::string&, const std::string&)) {
  LTX_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse(text, path);
}

}  // namespace

Result<std::string> read_text_file(const std::string& path, size_t max_bytes) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) return not_found_error(path + ": no such file");
  if (!fs::is_regular_file(path, ec)) return invalid_argument_error(path + ": not a regular file");
  auto size = fs::file_size(path, ec);
  if (ec) return invalid_argument_error(path + ": " + ec.message());
  if (size > max_bytes) {
    return invalid_argument_error(path + ": " + std::to_string(size) + " bytes is larger than the " +
                                  std::to_string(max_bytes) + " allowed");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (!in) return invalid_argument_error(path + ": cannot read");
  return text;
}

Result<TransformerConfig> parse_transformer_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(json j, parse_json_object(text, source));
  TransformerConfig c;
  FieldReader r(j, source);
  r.integer("in_channels", &c.in_channels, 1);
  r.integer("out_channels", &c.out_channels, 1);
  r.integer("patch_size", &c.patch_size, 1);
  r.integer("patch_size_t", &c.patch_size_t, 1);
  r.integer("num_attention_heads", &c.num_attention_heads, 1);
  r.integer("attention_head_dim", &c.attention_head_dim, 1);
  r.integer("cross_attention_dim", &c.cross_attention_dim, 1);
  r.integer("num_layers", &c.num_layers, 1);
  r.integer("caption_channels", &c.caption_channels, 1);
  r.string("activation_fn", &c.activation_fn, {"gelu-approximate"});
  r.string("qk_norm", &c.qk_norm, {"rms_norm_across_heads"});
  r.boolean("norm_elementwise_affine", &c.norm_elementwise_affine);
  r.number("norm_eps", &c.norm_eps, 0.0);
  r.boolean("attention_bias", &c.attention_bias);
  r.boolean("attention_out_bias", &c.attention_out_bias);
  r.boolean("causal_temporal_positioning", &c.causal_temporal_positioning);
  r.require(c.patch_size == 1, "patch_size", "must be 1 (the LTX DiT runs on latent voxels)");
  r.require(c.patch_size_t == 1, "patch_size_t", "must be 1 (the LTX DiT runs on latent voxels)");
  r.require(c.attention_head_dim % 2 == 0, "attention_head_dim", "must be even (RoPE pairs)");
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

Result<TransformerConfig> parse_original_transformer_config(const std::string& metadata_json,
                                                            const std::string& source) {
  const std::string where = source + " (metadata 'config')";
  LTX_ASSIGN_OR_RETURN(json meta, parse_json_object(metadata_json, where));
  auto t = meta.find("transformer");
  if (t == meta.end() || !t->is_object()) {
    return invalid_argument_error(where + ": field 'transformer' is missing or not an object");
  }
  json c = *t;
  // Original names and values that differ from diffusers.
  if (c.contains("qk_norm") && c["qk_norm"] == "rms_norm") c["qk_norm"] = "rms_norm_across_heads";
  for (const char* key : {"positional_embedding_type", "standardization_norm", "adaptive_norm"}) {
    static const std::map<std::string, std::string> kSupported = {
        {"positional_embedding_type", "rope"},
        {"standardization_norm", "rms_norm"},
        {"adaptive_norm", "single_scale_shift"}};
    if (c.contains(key) && !(c[key].is_string() && c[key] == kSupported.at(key))) {
      return invalid_argument_error(where + ": field 'transformer." + key + "' value " + c[key].dump() +
                                    " is not supported (supported: \"" + kSupported.at(key) + "\")");
    }
  }
  return parse_transformer_config(c.dump(), where);
}

Result<VaeConfig> parse_vae_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(json j, parse_json_object(text, source));
  VaeConfig c;
  FieldReader r(j, source);
  r.integer("in_channels", &c.in_channels, 1);
  r.integer("out_channels", &c.out_channels, 1);
  r.integer("latent_channels", &c.latent_channels, 1);
  r.int_list("block_out_channels", &c.block_out_channels, 1);
  r.int_list("decoder_block_out_channels", &c.decoder_block_out_channels, 1);
  r.int_list("layers_per_block", &c.layers_per_block, 0);
  r.int_list("decoder_layers_per_block", &c.decoder_layers_per_block, 0);
  r.bool_list("spatio_temporal_scaling", &c.spatio_temporal_scaling);
  r.bool_list("decoder_spatio_temporal_scaling", &c.decoder_spatio_temporal_scaling);
  r.bool_list("decoder_inject_noise", &c.decoder_inject_noise);
  r.string_list("downsample_type", &c.downsample_type);
  r.bool_list("upsample_residual", &c.upsample_residual);
  r.int_list("upsample_factor", &c.upsample_factor, 1);
  r.boolean("timestep_conditioning", &c.timestep_conditioning);
  r.integer("patch_size", &c.patch_size, 1);
  r.integer("patch_size_t", &c.patch_size_t, 1);
  r.number("resnet_norm_eps", &c.resnet_norm_eps, 0.0);
  r.number("scaling_factor", &c.scaling_factor, 0.0);
  r.boolean("encoder_causal", &c.encoder_causal);
  r.boolean("decoder_causal", &c.decoder_causal);
  std::string class_name;
  r.string("_class_name", &class_name);
  c.ltx2 = class_name == "AutoencoderKLLTX2Video";
  r.string_list("upsample_type", &c.upsample_type);
  for (const auto& t : c.upsample_type) {
    r.require(t == "spatiotemporal" || t == "temporal" || t == "spatial", "upsample_type",
              "holds \"" + t + "\"; expected \"spatiotemporal\", \"temporal\" or \"spatial\"");
  }
  r.string("decoder_spatial_padding_mode", &c.decoder_spatial_padding_mode, {"zeros", "reflect"});
  // diffusers stores null for 0.9.0; the ratios follow from the block structure.
  int64_t up_blocks = static_cast<int64_t>(c.decoder_block_out_channels.size());
  int64_t spatial = c.patch_size, temporal = c.patch_size_t;
  const size_t blocks = c.decoder_spatio_temporal_scaling.size();
  for (size_t i = 0; i < blocks; ++i) {  // decoding order: the scaling list is in encoder order
    if (!c.decoder_spatio_temporal_scaling[blocks - 1 - i]) continue;
    const std::string type = i < c.upsample_type.size() ? c.upsample_type[i] : "spatiotemporal";
    if (type != "temporal") spatial *= 2;
    if (type != "spatial") temporal *= 2;
  }
  c.spatial_compression_ratio = spatial;
  c.temporal_compression_ratio = temporal;
  r.integer("spatial_compression_ratio", &c.spatial_compression_ratio, 1);
  r.integer("temporal_compression_ratio", &c.temporal_compression_ratio, 1);
  const size_t n = c.decoder_block_out_channels.size();
  r.require(c.decoder_layers_per_block.size() == n + 1, "decoder_layers_per_block",
            "must have one entry more than decoder_block_out_channels (" + std::to_string(n + 1) + ")");
  r.require(c.decoder_spatio_temporal_scaling.size() == n, "decoder_spatio_temporal_scaling",
            "must have as many entries as decoder_block_out_channels (" + std::to_string(n) + ")");
  r.require(c.decoder_inject_noise.size() == n + 1, "decoder_inject_noise",
            "must have one entry more than decoder_block_out_channels (" + std::to_string(n + 1) + ")");
  r.require(c.upsample_residual.size() == n, "upsample_residual",
            "must have as many entries as decoder_block_out_channels (" + std::to_string(n) + ")");
  r.require(c.upsample_factor.size() == n, "upsample_factor",
            "must have as many entries as decoder_block_out_channels (" + std::to_string(n) + ")");
  r.require(c.upsample_type.empty() || c.upsample_type.size() == n, "upsample_type",
            "must have as many entries as decoder_block_out_channels (" + std::to_string(n) + ")");
  r.require(up_blocks > 0, "decoder_block_out_channels", "must not be empty");
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

Result<SchedulerConfig> parse_scheduler_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(json j, parse_json_object(text, source));
  SchedulerConfig c;
  FieldReader r(j, source);
  r.integer("num_train_timesteps", &c.num_train_timesteps, 1);
  r.number("shift", &c.shift, 0.0);
  r.boolean("use_dynamic_shifting", &c.use_dynamic_shifting);
  r.number("base_shift", &c.base_shift);
  r.number("max_shift", &c.max_shift);
  r.integer("base_image_seq_len", &c.base_image_seq_len, 1);
  r.integer("max_image_seq_len", &c.max_image_seq_len, 1);
  r.optional_number("shift_terminal", &c.shift_terminal);
  r.boolean("invert_sigmas", &c.invert_sigmas);
  r.boolean("stochastic_sampling", &c.stochastic_sampling);
  r.string("time_shift_type", &c.time_shift_type, {"exponential", "linear"});
  r.boolean("use_karras_sigmas", &c.use_karras_sigmas);
  r.boolean("use_exponential_sigmas", &c.use_exponential_sigmas);
  r.boolean("use_beta_sigmas", &c.use_beta_sigmas);
  r.require(c.max_image_seq_len != c.base_image_seq_len, "max_image_seq_len",
            "must differ from base_image_seq_len (the shift is interpolated between them)");
  r.require(!c.shift_terminal || (*c.shift_terminal >= 0.0 && *c.shift_terminal < 1.0),
            "shift_terminal", "must be in [0, 1)");
  r.require(!c.use_karras_sigmas, "use_karras_sigmas", "is not supported by the LTX pipeline");
  r.require(!c.use_exponential_sigmas, "use_exponential_sigmas", "is not supported by the LTX pipeline");
  r.require(!c.use_beta_sigmas, "use_beta_sigmas", "is not supported by the LTX pipeline");
  r.require(!c.invert_sigmas, "invert_sigmas", "is not supported by the LTX pipeline");
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

namespace {

void read_rope(FieldReader& outer, const json& obj, const std::string& source,
               const std::string& key, Gemma3Config::Rope* rope) {
  FieldReader r(obj, source + " " + key);
  r.number("rope_theta", &rope->theta, 0.0);
  r.string("rope_type", &rope->type, {"default", "linear"});
  if (rope->type == "linear") {
    r.number("factor", &rope->factor, 0.0);
  } else {
    rope->factor = 1.0;
  }
  if (!r.status().ok()) outer.fail(key, r.status().message());
}

}  // namespace

Result<Gemma3Config> parse_gemma3_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(json root, parse_json_object(text, source));
  // Gemma3ForConditionalGeneration nests the text tower under text_config.
  const json& j = root.contains("text_config") && root["text_config"].is_object()
                      ? root["text_config"]
                      : root;
  Gemma3Config c;
  FieldReader r(j, source);
  r.integer("vocab_size", &c.vocab_size, 1);
  r.integer("hidden_size", &c.hidden_size, 1);
  r.integer("intermediate_size", &c.intermediate_size, 1);
  r.integer("num_hidden_layers", &c.num_hidden_layers, 1);
  r.integer("num_attention_heads", &c.num_attention_heads, 1);
  r.integer("num_key_value_heads", &c.num_key_value_heads, 1);
  r.integer("head_dim", &c.head_dim, 2);
  r.number("query_pre_attn_scalar", &c.query_pre_attn_scalar, 0.0);
  r.number("rms_norm_eps", &c.rms_norm_eps, 0.0);
  r.integer("sliding_window", &c.sliding_window, 1);
  r.integer("max_position_embeddings", &c.max_position_embeddings, 1);
  r.string("hidden_activation", &c.hidden_activation, {"gelu_pytorch_tanh"});
  r.boolean("attention_bias", &c.attention_bias);
  r.integer("pad_token_id", &c.pad_token_id, 0);
  r.integer("bos_token_id", &c.bos_token_id, 0);
  r.integer("eos_token_id", &c.eos_token_id, 0);
  r.require(!r.has("attn_logit_softcapping"), "attn_logit_softcapping",
            "must be null (Gemma 3 has no attention soft-capping)");
  if (j.contains("use_bidirectional_attention") && j["use_bidirectional_attention"].is_boolean()) {
    r.require(!j["use_bidirectional_attention"].get<bool>(), "use_bidirectional_attention",
              "must be false (the text encoder is causal)");
  }

  // Layer types: the explicit list, else the 5-sliding-1-full rule.
  std::vector<std::string> types;
  r.string_list("layer_types", &types);
  int64_t pattern = 6;
  r.integer("sliding_window_pattern", &pattern, 1);
  r.integer("_sliding_window_pattern", &pattern, 1);
  c.sliding_layers.clear();
  if (!types.empty()) {
    r.require(static_cast<int64_t>(types.size()) == c.num_hidden_layers, "layer_types",
              "must have num_hidden_layers (" + std::to_string(c.num_hidden_layers) + ") entries");
    for (const auto& t : types) {
      r.require(t == "sliding_attention" || t == "full_attention", "layer_types",
                "holds \"" + t + "\"; expected \"sliding_attention\" or \"full_attention\"");
      c.sliding_layers.push_back(t == "sliding_attention");
    }
  } else {
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) c.sliding_layers.push_back((i + 1) % pattern != 0);
  }

  // RoPE: transformers 5 writes rope_parameters per layer type; older files use
  // rope_theta (full), rope_local_base_freq (sliding) and rope_scaling (full).
  if (j.contains("rope_parameters") && j["rope_parameters"].is_object()) {
    const json& rp = j["rope_parameters"];
    if (rp.contains("full_attention")) read_rope(r, rp["full_attention"], source, "rope_parameters.full_attention", &c.rope_full);
    if (rp.contains("sliding_attention")) read_rope(r, rp["sliding_attention"], source, "rope_parameters.sliding_attention", &c.rope_sliding);
  } else {
    r.number("rope_theta", &c.rope_full.theta, 0.0);
    r.number("rope_local_base_freq", &c.rope_sliding.theta, 0.0);
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
      json scaling = j["rope_scaling"];
      if (!scaling.contains("rope_type") && scaling.contains("type")) scaling["rope_type"] = scaling["type"];
      scaling["rope_theta"] = c.rope_full.theta;
      read_rope(r, scaling, source, "rope_scaling", &c.rope_full);
    }
  }
  r.require(c.num_attention_heads % c.num_key_value_heads == 0, "num_key_value_heads",
            "must divide num_attention_heads");
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

Result<T5Config> parse_t5_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(json j, parse_json_object(text, source));
  T5Config c;
  FieldReader r(j, source);
  r.integer("vocab_size", &c.vocab_size, 1);
  r.integer("d_model", &c.d_model, 1);
  r.integer("d_kv", &c.d_kv, 1);
  r.integer("d_ff", &c.d_ff, 1);
  r.integer("num_layers", &c.num_layers, 1);
  r.integer("num_heads", &c.num_heads, 1);
  r.integer("relative_attention_num_buckets", &c.relative_attention_num_buckets, 2);
  r.integer("relative_attention_max_distance", &c.relative_attention_max_distance, 1);
  r.number("layer_norm_epsilon", &c.layer_norm_epsilon, 0.0);
  r.integer("pad_token_id", &c.pad_token_id, 0);
  r.integer("eos_token_id", &c.eos_token_id, 0);
  std::string proj = "gated-gelu";
  r.string("feed_forward_proj", &proj, {"gated-gelu"});
  c.is_gated_act = true;
  c.dense_act_fn = "gelu_new";
  r.string("dense_act_fn", &c.dense_act_fn, {"gelu_new", "gelu_pytorch_tanh"});
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

Result<TransformerConfig> load_transformer_config(const std::string& path) {
  return load_with<TransformerConfig>(path, &parse_transformer_config);
}
Result<VaeConfig> load_vae_config(const std::string& path) {
  return load_with<VaeConfig>(path, &parse_vae_config);
}
Result<SchedulerConfig> load_scheduler_config(const std::string& path) {
  return load_with<SchedulerConfig>(path, &parse_scheduler_config);
}
Result<Gemma3Config> load_gemma3_config(const std::string& path) {
  return load_with<Gemma3Config>(path, &parse_gemma3_config);
}
Result<T5Config> load_t5_config(const std::string& path) {
  return load_with<T5Config>(path, &parse_t5_config);
}

}  // namespace ltx::pipeline
