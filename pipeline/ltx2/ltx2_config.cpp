#include "pipeline/ltx2/ltx2_config.h"

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "common/logging.h"
#include "pipeline/io/json_fields.h"
#include "pipeline/io/model_config.h"

namespace ltx::pipeline {
namespace {

using nlohmann::json;

void read_rope_layout(FieldReader& r, const char* key, Ltx2RopeLayout* out) {
  std::string s = *out == Ltx2RopeLayout::kSplit ? "split" : "interleaved";
  r.string(key, &s, {"split", "interleaved"});
  *out = s == "split" ? Ltx2RopeLayout::kSplit : Ltx2RopeLayout::kInterleaved;
}

// Fields whose value is fixed for every LTX-2 checkpoint this engine runs.
void expect_string(FieldReader& r, const char* key, const std::string& value) {
  std::string s = value;
  r.string(key, &s, {value});
}

void expect_bool(FieldReader& r, const char* key, bool value) {
  bool b = value;
  r.boolean(key, &b);
  r.require(b == value, key, std::string("must be ") + (value ? "true" : "false") +
                                 " (the only LTX-2 structure this engine implements)");
}

void check_transformer(FieldReader& r, const Ltx2TransformerConfig& c) {
  r.require(c.attention_head_dim % 2 == 0, "attention_head_dim", "must be even (RoPE halves)");
  r.require(c.audio_attention_head_dim % 2 == 0, "audio_attention_head_dim", "must be even (RoPE halves)");
  r.require(c.vae_scale_factors.size() == 3, "vae_scale_factors", "must list 3 factors (time, height, width)");
  r.require(c.audio_cross_attention_dim == c.audio_inner_dim(), "audio_cross_attention_dim",
            "must equal audio_num_attention_heads x audio_attention_head_dim (" +
                std::to_string(c.audio_inner_dim()) + "): the a<->v attention runs at that width");
  r.require(c.audio_cross_attention_dim % (2 * c.audio_num_attention_heads) == 0 &&
                c.audio_cross_attention_dim / 2 >= c.num_attention_heads &&
                (c.audio_cross_attention_dim / 2) % c.num_attention_heads == 0,
            "audio_cross_attention_dim", "must give every head of both streams an equal RoPE band");
}

void check_connector(FieldReader& r, const char* key, const Ltx2ConnectorConfig& c) {
  r.require(c.attention_head_dim % 2 == 0, key, "head dim must be even (RoPE halves)");
  r.require(c.num_learnable_registers >= 0, key, "register count must not be negative");
}

}  // namespace

Result<Ltx2TransformerConfig> parse_ltx2_transformer_config(const std::string& text,
                                                            const std::string& source) {
  LTX_ASSIGN_OR_RETURN(json j, parse_json_object(text, source));
  Ltx2TransformerConfig c;
  FieldReader r(j, source);
  r.integer("in_channels", &c.in_channels, 1);
  r.integer("out_channels", &c.out_channels, 1);
  r.integer("num_attention_heads", &c.num_attention_heads, 1);
  r.integer("attention_head_dim", &c.attention_head_dim, 2);
  r.integer("cross_attention_dim", &c.cross_attention_dim, 1);
  r.integer("audio_in_channels", &c.audio_in_channels, 1);
  r.integer("audio_out_channels", &c.audio_out_channels, 1);
  r.integer("audio_num_attention_heads", &c.audio_num_attention_heads, 1);
  r.integer("audio_attention_head_dim", &c.audio_attention_head_dim, 2);
  r.integer("audio_cross_attention_dim", &c.audio_cross_attention_dim, 1);
  r.integer("num_layers", &c.num_layers, 1);
  r.integer("caption_channels", &c.caption_channels, 1);
  r.number("norm_eps", &c.norm_eps, 0.0);
  r.boolean("attention_bias", &c.attention_bias);
  r.boolean("attention_out_bias", &c.attention_out_bias);
  r.boolean("ff_bias", &c.ff_bias);
  r.boolean("audio_ff_bias", &c.audio_ff_bias);
  r.number("rope_theta", &c.rope_theta, 0.0);
  r.boolean("rope_double_precision", &c.rope_double_precision);
  read_rope_layout(r, "rope_type", &c.rope_layout);
  r.integer("causal_offset", &c.causal_offset, 0);
  r.number("pos_embed_max_pos", &c.pos_embed_max_pos, 0.0);
  r.number("base_height", &c.base_height, 0.0);
  r.number("base_width", &c.base_width, 0.0);
  r.number("audio_pos_embed_max_pos", &c.audio_pos_embed_max_pos, 0.0);
  r.int_list("vae_scale_factors", &c.vae_scale_factors, 1);
  r.integer("audio_scale_factor", &c.audio_scale_factor, 1);
  r.integer("audio_sampling_rate", &c.audio_sampling_rate, 1);
  r.integer("audio_hop_length", &c.audio_hop_length, 1);
  r.number("timestep_scale_multiplier", &c.timestep_scale_multiplier, 0.0);
  r.number("cross_attn_timestep_scale_multiplier", &c.cross_attn_timestep_scale_multiplier, 0.0);
  r.boolean("gated_attn", &c.gated_attn);
  r.boolean("audio_gated_attn", &c.audio_gated_attn);
  r.boolean("cross_attn_mod", &c.cross_attn_mod);
  r.boolean("audio_cross_attn_mod", &c.audio_cross_attn_mod);
  r.boolean("use_prompt_embeddings", &c.use_prompt_embeddings);
  r.boolean("use_prompt_adaln_single", &c.use_prompt_adaln_single);
  r.boolean("perturbed_attn", &c.perturbed_attn);
  for (const char* key : {"patch_size", "patch_size_t", "audio_patch_size", "audio_patch_size_t"}) {
    int64_t p = 1;
    r.integer(key, &p, 1);
    r.require(p == 1, key, "must be 1 (the LTX-2 DiT runs on latent voxels and audio frames)");
  }
  expect_string(r, "activation_fn", "gelu-approximate");
  expect_string(r, "qk_norm", "rms_norm_across_heads");
  expect_bool(r, "norm_elementwise_affine", false);
  expect_bool(r, "use_keyframes_abs_pos_embedding", false);
  check_transformer(r, c);
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

Result<Ltx2ConnectorsConfig> parse_ltx2_connectors_config(const std::string& text,
                                                          const std::string& source) {
  LTX_ASSIGN_OR_RETURN(json j, parse_json_object(text, source));
  Ltx2ConnectorsConfig c;
  FieldReader r(j, source);
  r.integer("caption_channels", &c.caption_channels, 1);
  r.integer("text_proj_in_factor", &c.text_proj_in_factor, 1);
  r.integer("video_connector_num_attention_heads", &c.video.num_attention_heads, 1);
  r.integer("video_connector_attention_head_dim", &c.video.attention_head_dim, 2);
  r.integer("video_connector_num_layers", &c.video.num_layers, 0);
  r.integer("video_connector_num_learnable_registers", &c.video.num_learnable_registers, 0);
  r.boolean("video_gated_attn", &c.video.gated_attn);
  r.integer("audio_connector_num_attention_heads", &c.audio.num_attention_heads, 1);
  r.integer("audio_connector_attention_head_dim", &c.audio.attention_head_dim, 2);
  r.integer("audio_connector_num_layers", &c.audio.num_layers, 0);
  r.integer("audio_connector_num_learnable_registers", &c.audio.num_learnable_registers, 0);
  r.boolean("audio_gated_attn", &c.audio.gated_attn);
  r.number("connector_rope_base_seq_len", &c.rope_base_seq_len, 0.0);
  r.number("rope_theta", &c.rope_theta, 0.0);
  r.boolean("rope_double_precision", &c.rope_double_precision);
  read_rope_layout(r, "rope_type", &c.rope_layout);
  r.boolean("per_modality_projections", &c.per_modality_projections);
  r.integer("video_hidden_dim", &c.video_hidden_dim, 1);
  r.integer("audio_hidden_dim", &c.audio_hidden_dim, 1);
  r.boolean("proj_bias", &c.proj_bias);
  expect_bool(r, "causal_temporal_positioning", false);
  check_connector(r, "video_connector_attention_head_dim", c.video);
  check_connector(r, "audio_connector_attention_head_dim", c.audio);
  r.require(c.video.inner_dim() == c.video_input_dim(), "video_connector_num_attention_heads",
            "x head dim must equal the connector input width " + std::to_string(c.video_input_dim()));
  r.require(c.audio.inner_dim() == c.audio_input_dim(), "audio_connector_num_attention_heads",
            "x head dim must equal the connector input width " + std::to_string(c.audio_input_dim()));
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

Result<Ltx2TransformerConfig> load_ltx2_transformer_config(const std::string& path) {
  LTX_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_ltx2_transformer_config(text, path);
}

Result<Ltx2ConnectorsConfig> load_ltx2_connectors_config(const std::string& path) {
  LTX_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  return parse_ltx2_connectors_config(text, path);
}

Result<Ltx2OriginalConfigs> parse_ltx2_original_config(const std::string& metadata_json,
                                                       const std::string& source) {
  const std::string where = source + " (metadata 'config' -> 'transformer')";
  LTX_ASSIGN_OR_RETURN(json meta, parse_json_object(metadata_json, source + " (metadata 'config')"));
  auto t = meta.find("transformer");
  if (t == meta.end() || !t->is_object()) {
    return invalid_argument_error(source + " (metadata 'config'): field 'transformer' is missing or not an object");
  }
  const json& j = *t;
  Ltx2OriginalConfigs out;
  Ltx2TransformerConfig& c = out.transformer;
  FieldReader r(j, where);
  r.integer("num_attention_heads", &c.num_attention_heads, 1);
  r.integer("attention_head_dim", &c.attention_head_dim, 2);
  r.integer("in_channels", &c.in_channels, 1);
  r.integer("out_channels", &c.out_channels, 1);
  r.integer("num_layers", &c.num_layers, 1);
  r.integer("cross_attention_dim", &c.cross_attention_dim, 1);
  r.number("norm_eps", &c.norm_eps, 0.0);
  r.number("positional_embedding_theta", &c.rope_theta, 0.0);
  std::vector<int64_t> max_pos = {20, 2048, 2048};
  r.int_list("positional_embedding_max_pos", &max_pos, 1);
  r.require(max_pos.size() == 3, "positional_embedding_max_pos", "must list 3 maxima (time, height, width)");
  if (max_pos.size() == 3) {
    c.pos_embed_max_pos = static_cast<double>(max_pos[0]);
    c.base_height = static_cast<double>(max_pos[1]);
    c.base_width = static_cast<double>(max_pos[2]);
  }
  r.number("timestep_scale_multiplier", &c.timestep_scale_multiplier, 0.0);
  r.integer("audio_num_attention_heads", &c.audio_num_attention_heads, 1);
  r.integer("audio_attention_head_dim", &c.audio_attention_head_dim, 2);
  r.integer("audio_in_channels", &c.audio_in_channels, 1);
  r.integer("audio_out_channels", &c.audio_out_channels, 1);
  r.integer("audio_cross_attention_dim", &c.audio_cross_attention_dim, 1);
  std::vector<int64_t> audio_max = {20};
  r.int_list("audio_positional_embedding_max_pos", &audio_max, 1);
  r.require(audio_max.size() == 1, "audio_positional_embedding_max_pos", "must list 1 maximum (time)");
  if (audio_max.size() == 1) c.audio_pos_embed_max_pos = static_cast<double>(audio_max[0]);
  // The original falls back to 1 here; the released headers carry 1000 (spec §3.1).
  c.cross_attn_timestep_scale_multiplier = 1;
  if (!r.has("av_ca_timestep_scale_multiplier")) {
    LTX_LOG(kWarn) << where << ": no 'av_ca_timestep_scale_multiplier'; using 1 as the reference code does";
  }
  r.number("av_ca_timestep_scale_multiplier", &c.cross_attn_timestep_scale_multiplier, 0.0);
  read_rope_layout(r, "rope_type", &c.rope_layout);
  std::string precision = "float32";
  r.string("frequencies_precision", &precision, {"float32", "float64"});
  c.rope_double_precision = precision == "float64";
  bool gated = false, adaln = false;
  r.boolean("apply_gated_attention", &gated);
  r.boolean("cross_attention_adaln", &adaln);
  c.gated_attn = c.audio_gated_attn = gated;
  c.cross_attn_mod = c.audio_cross_attn_mod = adaln;
  r.boolean("use_prompt_adaln_single", &c.use_prompt_adaln_single);
  r.boolean("ff_bias", &c.ff_bias);
  r.boolean("audio_ff_bias", &c.audio_ff_bias);
  r.integer("caption_channels", &c.caption_channels, 1);
  c.perturbed_attn = true;  // the original applies STG to every variant

  // The feature-extractor selection rule (text-encoders.md §2.3): all four or none.
  const char* v2_keys[] = {"caption_proj_before_connector", "caption_projection_first_linear",
                           "caption_proj_input_norm", "caption_projection_second_linear"};
  int present = 0;
  for (const char* k : v2_keys) present += r.has(k) ? 1 : 0;
  bool v2 = false;
  if (present == 4) {
    bool before = false, first = true, input_norm = true, second = true;
    r.boolean(v2_keys[0], &before);
    r.boolean(v2_keys[1], &first);
    r.boolean(v2_keys[2], &input_norm);
    r.boolean(v2_keys[3], &second);
    v2 = before && !first && !input_norm && !second;
    r.require(v2 || !before, v2_keys[0], "is true but the other caption projection switches do not "
                                         "describe the LTX-2.3 layout");
  } else if (present != 0) {
    r.fail(v2_keys[0], "and the other three caption projection switches must be given together");
  }
  c.use_prompt_embeddings = !v2;
  for (const char* key : {"standardization_norm", "qk_norm"}) {
    std::string s = "rms_norm";
    r.string(key, &s, {"rms_norm"});
  }
  std::string pe = "rope";
  r.string("positional_embedding_type", &pe, {"rope"});
  expect_bool(r, "norm_elementwise_affine", false);
  expect_bool(r, "use_audio_video_cross_attention", true);
  expect_bool(r, "share_ff", false);
  expect_bool(r, "av_cross_ada_norm", true);
  expect_bool(r, "use_middle_indices_grid", true);
  expect_bool(r, "use_keyframes_abs_pos_embedding", false);

  Ltx2ConnectorsConfig& k = out.connectors;
  k.caption_channels = c.caption_channels;
  r.integer("connector_num_attention_heads", &k.video.num_attention_heads, 1);
  r.integer("connector_attention_head_dim", &k.video.attention_head_dim, 2);
  r.integer("connector_num_layers", &k.video.num_layers, 0);
  r.integer("connector_num_learnable_registers", &k.video.num_learnable_registers, 0);
  r.boolean("connector_apply_gated_attention", &k.video.gated_attn);
  k.audio = k.video;  // the audio keys fall back to the video ones
  r.integer("audio_connector_num_attention_heads", &k.audio.num_attention_heads, 1);
  r.integer("audio_connector_attention_head_dim", &k.audio.attention_head_dim, 2);
  r.integer("audio_connector_num_layers", &k.audio.num_layers, 0);
  std::vector<int64_t> conn_pos = {4096};
  r.int_list("connector_positional_embedding_max_pos", &conn_pos, 1);
  r.require(conn_pos.size() == 1, "connector_positional_embedding_max_pos", "must list 1 maximum");
  if (!conn_pos.empty()) k.rope_base_seq_len = static_cast<double>(conn_pos[0]);
  k.rope_theta = c.rope_theta;
  k.rope_double_precision = c.rope_double_precision;
  k.rope_layout = c.rope_layout;
  k.per_modality_projections = v2;
  k.proj_bias = v2;
  k.video_hidden_dim = c.inner_dim();
  k.audio_hidden_dim = c.audio_inner_dim();
  if (v2) {
    c.cross_attention_dim = c.inner_dim();
  }
  check_transformer(r, c);
  check_connector(r, "connector_attention_head_dim", k.video);
  check_connector(r, "audio_connector_attention_head_dim", k.audio);
  LTX_RETURN_IF_ERROR(r.status());
  return out;
}

Result<Ltx2OriginalConfigs> infer_ltx2_original_config(
    const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& source) {
  const std::string dm = "model.diffusion_model.";
  auto find = [&](const std::string& name) -> const std::vector<int64_t>* {
    for (const std::string& n : {dm + name, name}) {
      auto it = shapes.find(n);
      if (it != shapes.end()) return &it->second;
    }
    return nullptr;
  };
  auto need = [&](const std::string& name, size_t rank) -> Result<std::vector<int64_t>> {
    const auto* s = find(name);
    if (s == nullptr) {
      return invalid_argument_error(source + ": no `config` metadata and no tensor '" + dm + name +
                                    "' to infer the LTX-2 structure from");
    }
    if (s->size() != rank) {
      return invalid_argument_error(source + ": tensor '" + dm + name + "' has " +
                                    std::to_string(s->size()) + " dimensions, expected " +
                                    std::to_string(rank));
    }
    return *s;
  };
  Ltx2OriginalConfigs out;
  Ltx2TransformerConfig& c = out.transformer;
  LTX_ASSIGN_OR_RETURN(auto patch, need("patchify_proj.weight", 2));
  LTX_ASSIGN_OR_RETURN(auto audio_patch, need("audio_patchify_proj.weight", 2));
  LTX_ASSIGN_OR_RETURN(auto table, need("transformer_blocks.0.scale_shift_table", 2));
  const bool v23 = table[0] == 9;
  if (table[0] != 6 && table[0] != 9) {
    return invalid_argument_error(source + ": transformer_blocks.0.scale_shift_table has " +
                                  std::to_string(table[0]) + " rows; LTX-2.0 has 6, LTX-2.3 has 9");
  }
  const auto* gate = find("transformer_blocks.0.attn1.to_gate_logits.weight");
  c.in_channels = c.out_channels = patch[1];
  c.audio_in_channels = c.audio_out_channels = audio_patch[1];
  // Head counts are not in the shapes of 2.0 (32 in every release); 2.3's gate logits carry them.
  c.num_attention_heads = gate != nullptr ? (*gate)[0] : 32;
  const auto* audio_gate = find("transformer_blocks.0.audio_attn1.to_gate_logits.weight");
  c.audio_num_attention_heads = audio_gate != nullptr ? (*audio_gate)[0] : 32;
  if (patch[0] % c.num_attention_heads != 0 || audio_patch[0] % c.audio_num_attention_heads != 0) {
    return invalid_argument_error(source + ": widths " + std::to_string(patch[0]) + " / " +
                                  std::to_string(audio_patch[0]) + " do not split into 32 heads");
  }
  c.attention_head_dim = patch[0] / c.num_attention_heads;
  c.audio_attention_head_dim = audio_patch[0] / c.audio_num_attention_heads;
  c.cross_attention_dim = patch[0];
  c.audio_cross_attention_dim = audio_patch[0];
  int64_t layers = 0;
  while (find("transformer_blocks." + std::to_string(layers) + ".scale_shift_table") != nullptr) ++layers;
  c.num_layers = layers;
  c.gated_attn = c.audio_gated_attn = gate != nullptr;
  c.cross_attn_mod = c.audio_cross_attn_mod = v23;
  c.use_prompt_embeddings = !v23;
  c.perturbed_attn = true;
  c.cross_attn_timestep_scale_multiplier = 1000;  // released headers (spec §3.1)
  if (!v23) {
    LTX_ASSIGN_OR_RETURN(auto cap, need("caption_projection.linear_1.weight", 2));
    c.caption_channels = cap[1];
  }
  Ltx2ConnectorsConfig& k = out.connectors;
  k.per_modality_projections = v23;
  k.proj_bias = v23;
  k.video_hidden_dim = c.inner_dim();
  k.audio_hidden_dim = c.audio_inner_dim();
  k.caption_channels = c.caption_channels;
  for (auto [stream, conn] : {std::pair<std::string, Ltx2ConnectorConfig*>{"video", &k.video},
                              std::pair<std::string, Ltx2ConnectorConfig*>{"audio", &k.audio}}) {
    const std::string p = stream + "_embeddings_connector.";
    LTX_ASSIGN_OR_RETURN(auto regs, need(p + "learnable_registers", 2));
    conn->num_learnable_registers = regs[0];
    const auto* g = find(p + "transformer_1d_blocks.0.attn1.to_gate_logits.weight");
    conn->gated_attn = g != nullptr;
    conn->num_attention_heads = g != nullptr ? (*g)[0] : regs[1] / 128;
    if (conn->num_attention_heads <= 0 || regs[1] % conn->num_attention_heads != 0) {
      return invalid_argument_error(source + ": cannot infer the " + stream + " connector's heads from width " +
                                    std::to_string(regs[1]));
    }
    conn->attention_head_dim = regs[1] / conn->num_attention_heads;
    int64_t n = 0;
    while (find(p + "transformer_1d_blocks." + std::to_string(n) + ".attn1.to_q.weight") != nullptr) ++n;
    conn->num_layers = n;
  }
  LTX_LOG(kWarn) << source << ": no `config` metadata; inferred LTX-" << c.variant() << " with "
                 << c.num_layers << " layers from the tensor names";
  return out;
}

}  // namespace ltx::pipeline
