#include "pipeline/ltx2/ltx2_transformer.h"

#include <cmath>
#include <filesystem>
#include <set>

#include "common/check.h"
#include "common/torch_compat.h"
#include "pipeline/io/model_config.h"
#include "pipeline/ltx2/ltx2_layers.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;
using ltx2::AdaLnWeights;
using ltx2::Ltx2AttentionWeights;
using ltx2::gelu_tanh;
using ltx2::kDiffusionPrefix;
using ltx2::kTimestepChannels;
using ltx2::rms;

namespace {

constexpr double kOutNormEps = 1e-6;

}  // namespace

// ---------------------------------------------------------------------------
// Weights

struct Ltx2BlockWeights {
  Ltx2AttentionWeights attn1, audio_attn1, attn2, audio_attn2, a2v, v2a;
  LinearWeights ff_in, ff_out, audio_ff_in, audio_ff_out;
  at::Tensor table, audio_table;                // [6|9, D]
  at::Tensor prompt_table, audio_prompt_table;  // [2, D] (2.3)
  at::Tensor video_ca_table, audio_ca_table;    // [5, D]
};

struct Ltx2Transformer::Weights {
  LinearWeights proj_in, audio_proj_in, proj_out, audio_proj_out;
  LinearWeights caption_1, caption_2, audio_caption_1, audio_caption_2;  // 2.0
  AdaLnWeights time, audio_time, video_ca, audio_ca, a2v_gate, v2a_gate;
  AdaLnWeights prompt, audio_prompt;  // 2.3 with use_prompt_adaln_single
  at::Tensor table, audio_table;      // [2, D] output modulation
  std::vector<Ltx2BlockWeights> blocks;
};

std::optional<std::string> Ltx2Transformer::canonical_name(const std::string& raw) {
  std::string n = raw;
  if (starts_with(n, kDiffusionPrefix)) n = n.substr(std::string(kDiffusionPrefix).size());
  for (const char* other : {"vae.", "audio_vae.", "vocoder.", "text_embedding_projection.",
                            "video_embeddings_connector.", "audio_embeddings_connector.", "embeddings_connector."}) {
    if (starts_with(n, other)) return std::nullopt;
  }
  replace_all(&n, "patchify_proj", "proj_in");
  if (starts_with(n, "adaln_single.")) n = "time_embed." + n.substr(13);
  if (starts_with(n, "audio_adaln_single.")) n = "audio_time_embed." + n.substr(19);
  replace_all(&n, "av_ca_video_scale_shift_adaln_single", "av_cross_attn_video_scale_shift");
  replace_all(&n, "av_ca_audio_scale_shift_adaln_single", "av_cross_attn_audio_scale_shift");
  replace_all(&n, "av_ca_a2v_gate_adaln_single", "av_cross_attn_video_a2v_gate");
  replace_all(&n, "av_ca_v2a_gate_adaln_single", "av_cross_attn_audio_v2a_gate");
  replace_all(&n, "scale_shift_table_a2v_ca_video", "video_a2v_cross_attn_scale_shift_table");
  replace_all(&n, "scale_shift_table_a2v_ca_audio", "audio_a2v_cross_attn_scale_shift_table");
  replace_all(&n, "prompt_adaln_single", "prompt_adaln");
  replace_all(&n, ".q_norm.", ".norm_q.");
  replace_all(&n, ".k_norm.", ".norm_k.");
  return n;
}

std::vector<ExpectedTensor> Ltx2Transformer::expected_tensors(const Ltx2TransformerConfig& c) {
  const int64_t d = c.inner_dim(), da = c.audio_inner_dim();
  std::vector<ExpectedTensor> out;
  auto linear = [&out](const std::string& name, int64_t o, int64_t i, bool bias) {
    out.push_back({name + ".weight", {o, i}});
    if (bias) out.push_back({name + ".bias", {o}});
  };
  auto adaln = [&](const std::string& name, int64_t dim, int64_t rows) {
    linear(name + ".emb.timestep_embedder.linear_1", dim, kTimestepChannels, true);
    linear(name + ".emb.timestep_embedder.linear_2", dim, dim, true);
    linear(name + ".linear", rows * dim, dim, true);
  };
  auto attention = [&](const std::string& name, int64_t query_dim, int64_t kv_dim, int64_t heads,
                       int64_t head_dim, bool gated) {
    const int64_t inner = heads * head_dim;
    linear(name + ".to_q", inner, query_dim, c.attention_bias);
    linear(name + ".to_k", inner, kv_dim, c.attention_bias);
    linear(name + ".to_v", inner, kv_dim, c.attention_bias);
    linear(name + ".to_out.0", query_dim, inner, c.attention_out_bias);
    out.push_back({name + ".norm_q.weight", {inner}});
    out.push_back({name + ".norm_k.weight", {inner}});
    if (gated) linear(name + ".to_gate_logits", heads, query_dim, true);
  };
  linear("proj_in", d, c.in_channels, true);
  linear("audio_proj_in", da, c.audio_in_channels, true);
  if (c.use_prompt_embeddings) {
    linear("caption_projection.linear_1", d, c.caption_channels, true);
    linear("caption_projection.linear_2", d, d, true);
    linear("audio_caption_projection.linear_1", da, c.caption_channels, true);
    linear("audio_caption_projection.linear_2", da, da, true);
  }
  adaln("time_embed", d, c.video_mod_rows());
  adaln("audio_time_embed", da, c.audio_mod_rows());
  adaln("av_cross_attn_video_scale_shift", d, 4);
  adaln("av_cross_attn_audio_scale_shift", da, 4);
  adaln("av_cross_attn_video_a2v_gate", d, 1);
  adaln("av_cross_attn_audio_v2a_gate", da, 1);
  if (c.prompt_modulation() && c.use_prompt_adaln_single) {
    adaln("prompt_adaln", d, 2);
    adaln("audio_prompt_adaln", da, 2);
  }
  out.push_back({"scale_shift_table", {2, d}});
  out.push_back({"audio_scale_shift_table", {2, da}});
  linear("proj_out", c.out_channels, d, true);
  linear("audio_proj_out", c.audio_out_channels, da, true);
  const int64_t h = c.num_attention_heads, hd = c.attention_head_dim;
  const int64_t ha = c.audio_num_attention_heads, had = c.audio_attention_head_dim;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "transformer_blocks." + std::to_string(i) + ".";
    attention(b + "attn1", d, d, h, hd, c.gated_attn);
    attention(b + "audio_attn1", da, da, ha, had, c.audio_gated_attn);
    attention(b + "attn2", d, c.cross_attention_dim, h, hd, c.gated_attn);
    attention(b + "audio_attn2", da, c.audio_cross_attention_dim, ha, had, c.audio_gated_attn);
    attention(b + "audio_to_video_attn", d, da, ha, had, c.gated_attn);
    attention(b + "video_to_audio_attn", da, d, ha, had, c.audio_gated_attn);
    linear(b + "ff.net.0.proj", 4 * d, d, c.ff_bias);
    linear(b + "ff.net.2", d, 4 * d, c.ff_bias);
    linear(b + "audio_ff.net.0.proj", 4 * da, da, c.audio_ff_bias);
    linear(b + "audio_ff.net.2", da, 4 * da, c.audio_ff_bias);
    out.push_back({b + "scale_shift_table", {c.video_mod_rows(), d}});
    out.push_back({b + "audio_scale_shift_table", {c.audio_mod_rows(), da}});
    if (c.prompt_modulation()) {
      out.push_back({b + "prompt_scale_shift_table", {2, d}});
      out.push_back({b + "audio_prompt_scale_shift_table", {2, da}});
    }
    out.push_back({b + "video_a2v_cross_attn_scale_shift_table", {5, d}});
    out.push_back({b + "audio_a2v_cross_attn_scale_shift_table", {5, da}});
  }
  return out;
}

// ---------------------------------------------------------------------------
// Loading

Status Ltx2Transformer::check_load_arguments(const Ltx2TransformerConfig& c, dist::Communicator& comm,
                                             at::ScalarType dtype) {
  LTX_RETURN_IF_ERROR(parallel::validate_head_split(c.num_attention_heads, comm.size()));
  LTX_RETURN_IF_ERROR(parallel::validate_head_split(c.audio_num_attention_heads, comm.size()));
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
    return invalid_argument_error(std::string("transformer dtype must be float32, bfloat16 or float16, got ") +
                                  c10::toString(dtype));
  }
  return Status();
}

Result<Ltx2Transformer> Ltx2Transformer::from_checkpoint(const Ltx2TransformerConfig& config,
                                                         const SafetensorsCheckpoint& ckpt,
                                                         dist::Communicator& comm, at::ScalarType dtype,
                                                         const at::Device& device) {
  LTX_RETURN_IF_ERROR(check_load_arguments(config, comm, dtype));
  LTX_ASSIGN_OR_RETURN(auto loaded,
                       load_expected_tensors(ckpt, expected_tensors(config), canonical_name,
                                             "an LTX-" + config.variant() + " transformer with " +
                                                 std::to_string(config.num_layers) + " layers",
                                             dtype, device));
  return assemble(config, loaded, comm, dtype, device);
}

Result<Ltx2Transformer> Ltx2Transformer::from_tensors(const Ltx2TransformerConfig& config,
                                                      const std::map<std::string, at::Tensor>& tensors,
                                                      dist::Communicator& comm, at::ScalarType dtype,
                                                      const at::Device& device) {
  LTX_RETURN_IF_ERROR(check_load_arguments(config, comm, dtype));
  std::map<std::string, at::Tensor> loaded;
  for (const auto& e : expected_tensors(config)) {
    auto it = tensors.find(e.name);
    if (it == tensors.end()) return invalid_argument_error("in-memory weights: missing tensor '" + e.name + "'");
    LTX_ASSIGN_OR_RETURN(loaded[e.name],
                         checked_convert("in-memory weights", e.name, it->second, e.shape, dtype, device));
  }
  for (const auto& kv : tensors) {
    if (!loaded.count(kv.first)) return invalid_argument_error("in-memory weights: unexpected tensor '" + kv.first + "'");
  }
  return assemble(config, loaded, comm, dtype, device);
}

Result<Ltx2Transformer> Ltx2Transformer::assemble(const Ltx2TransformerConfig& c,
                                                  std::map<std::string, at::Tensor>& loaded,
                                                  dist::Communicator& comm, at::ScalarType dtype,
                                                  const at::Device& device) {
  std::vector<at::Tensor> all = tensors_of(loaded);
  auto w = std::make_shared<Weights>();
  auto linear = [&loaded](const std::string& n) { return LinearWeights::take(loaded, n); };
  w->proj_in = linear("proj_in");
  w->audio_proj_in = linear("audio_proj_in");
  w->proj_out = linear("proj_out");
  w->audio_proj_out = linear("audio_proj_out");
  // The audio stream's few tokens shard into a handful of rows per rank: its
  // projections are row-exact so a group of any size computes the same audio
  // (the guidance, audio CFG 7, would amplify BLAS's row-count rounding).
  w->audio_proj_in.exact_rows = w->audio_proj_out.exact_rows = true;
  if (c.use_prompt_embeddings) {
    w->caption_1 = linear("caption_projection.linear_1");
    w->caption_2 = linear("caption_projection.linear_2");
    w->audio_caption_1 = linear("audio_caption_projection.linear_1");
    w->audio_caption_2 = linear("audio_caption_projection.linear_2");
  }
  w->time = AdaLnWeights::take(loaded, "time_embed");
  w->audio_time = AdaLnWeights::take(loaded, "audio_time_embed");
  w->video_ca = AdaLnWeights::take(loaded, "av_cross_attn_video_scale_shift");
  w->audio_ca = AdaLnWeights::take(loaded, "av_cross_attn_audio_scale_shift");
  w->a2v_gate = AdaLnWeights::take(loaded, "av_cross_attn_video_a2v_gate");
  w->v2a_gate = AdaLnWeights::take(loaded, "av_cross_attn_audio_v2a_gate");
  if (c.prompt_modulation() && c.use_prompt_adaln_single) {
    w->prompt = AdaLnWeights::take(loaded, "prompt_adaln");
    w->audio_prompt = AdaLnWeights::take(loaded, "audio_prompt_adaln");
  }
  for (AdaLnWeights* a : {&w->audio_time, &w->audio_ca, &w->v2a_gate, &w->audio_prompt}) a->set_exact_rows();
  w->table = take_tensor(loaded, "scale_shift_table");
  w->audio_table = take_tensor(loaded, "audio_scale_shift_table");
  const int64_t h = c.num_attention_heads, hd = c.attention_head_dim;
  const int64_t ha = c.audio_num_attention_heads, had = c.audio_attention_head_dim;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "transformer_blocks." + std::to_string(i) + ".";
    Ltx2BlockWeights blk;
    blk.attn1 = Ltx2AttentionWeights::take(loaded, b + "attn1", h, hd, c.norm_eps);
    blk.audio_attn1 = Ltx2AttentionWeights::take(loaded, b + "audio_attn1", ha, had, c.norm_eps);
    blk.attn2 = Ltx2AttentionWeights::take(loaded, b + "attn2", h, hd, c.norm_eps);
    blk.audio_attn2 = Ltx2AttentionWeights::take(loaded, b + "audio_attn2", ha, had, c.norm_eps);
    blk.a2v = Ltx2AttentionWeights::take(loaded, b + "audio_to_video_attn", ha, had, c.norm_eps);
    blk.v2a = Ltx2AttentionWeights::take(loaded, b + "video_to_audio_attn", ha, had, c.norm_eps);
    blk.ff_in = linear(b + "ff.net.0.proj");
    blk.ff_out = linear(b + "ff.net.2");
    blk.audio_ff_in = linear(b + "audio_ff.net.0.proj");
    blk.audio_ff_out = linear(b + "audio_ff.net.2");
    blk.audio_ff_in.exact_rows = blk.audio_ff_out.exact_rows = true;
    for (Ltx2AttentionWeights* a : {&blk.audio_attn1, &blk.audio_attn2, &blk.a2v, &blk.v2a}) a->set_exact_rows();
    blk.table = take_tensor(loaded, b + "scale_shift_table");
    blk.audio_table = take_tensor(loaded, b + "audio_scale_shift_table");
    blk.prompt_table = take_tensor(loaded, b + "prompt_scale_shift_table");
    blk.audio_prompt_table = take_tensor(loaded, b + "audio_prompt_scale_shift_table");
    blk.video_ca_table = take_tensor(loaded, b + "video_a2v_cross_attn_scale_shift_table");
    blk.audio_ca_table = take_tensor(loaded, b + "audio_a2v_cross_attn_scale_shift_table");
    w->blocks.push_back(std::move(blk));
  }
  if (!loaded.empty()) {
    return internal_error("tensor '" + loaded.begin()->first + "' left over after assembling the LTX-2 transformer");
  }
  Ltx2Transformer t(c, std::move(w), comm, dtype, device);
  t.weights_ = std::move(all);
  return t;
}

Result<Ltx2Transformer> Ltx2Transformer::load(const std::string& path, dist::Communicator& comm,
                                              at::ScalarType dtype, const at::Device& device) {
  std::error_code ec;
  Ltx2TransformerConfig config;
  if (fs::is_directory(path, ec)) {
    LTX_ASSIGN_OR_RETURN(config, load_ltx2_transformer_config((fs::path(path) / "config.json").string()));
    LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
    return from_checkpoint(config, ckpt, comm, dtype, device);
  }
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
  auto meta = ckpt.metadata().find("config");
  if (meta != ckpt.metadata().end()) {
    LTX_ASSIGN_OR_RETURN(auto configs, parse_ltx2_original_config(meta->second, path));
    config = configs.transformer;
  } else {
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& n : ckpt.names()) shapes[n] = ckpt.find(n)->shape;
    LTX_ASSIGN_OR_RETURN(auto configs, infer_ltx2_original_config(shapes, path));
    config = configs.transformer;
  }
  return from_checkpoint(config, ckpt, comm, dtype, device);
}

Ltx2Transformer::Ltx2Transformer(Ltx2TransformerConfig config, std::shared_ptr<const Weights> weights,
                                 dist::Communicator& comm, at::ScalarType dtype, at::Device device)
    : config_(std::move(config)),
      w_(std::move(weights)),
      comm_(&comm),
      video_heads_(comm, config_.num_attention_heads),
      audio_heads_(comm, config_.audio_num_attention_heads),
      dtype_(dtype),
      device_(device) {
  // On GPUs the samples of a guided batch pipeline their all-to-alls with attention.
  video_heads_.set_overlap(device_.is_cuda());
  audio_heads_.set_overlap(device_.is_cuda());
}

// ---------------------------------------------------------------------------
// Text

namespace {

at::Tensor text_bias(const at::Tensor& mask, int64_t b, int64_t l, at::ScalarType dtype, const at::Device& device) {
  return ((1 - mask.to(device).to(dtype)) * -10000.0).view({b, 1, 1, l});
}

void check_text(const at::Tensor& ctx, const at::Tensor& mask, int64_t width, const char* what) {
  LTX_CHECK(ctx.dim() == 3 && ctx.size(2) == width, what, " context must be [B, L, ", width, "], got ",
            ctx.sizes());
  LTX_CHECK(mask.dim() == 2 && mask.size(0) == ctx.size(0) && mask.size(1) == ctx.size(1), what,
            " text mask must be [B, L] = ", ctx.sizes().slice(0, 2), ", got ", mask.sizes());
}

LayerKv text_kv(const Ltx2AttentionWeights& a, const at::Tensor& ctx) {
  return {a.split(a.key(ctx, nullptr)), a.split(a.value(ctx))};
}

// (shift, scale) of a [2, D] table, optionally plus a [B, 1, 2D] embedding.
std::pair<at::Tensor, at::Tensor> prompt_shift_scale(const at::Tensor& table, const at::Tensor& temb, int64_t b) {
  const int64_t d = table.size(1);
  at::Tensor ada = temb.defined() ? table.view({1, 1, 2, d}) + temb.view({b, temb.size(1), 2, d})
                                  : table.view({1, 1, 2, d});
  return {ada.select(2, 0), ada.select(2, 1)};
}

}  // namespace

Ltx2TextConditioning Ltx2Transformer::prepare_text(const at::Tensor& video_context, const at::Tensor& video_mask,
                                                   const at::Tensor& audio_context,
                                                   const at::Tensor& audio_mask) const {
  const int64_t in_v = config_.use_prompt_embeddings ? config_.caption_channels : config_.cross_attention_dim;
  const int64_t in_a = config_.use_prompt_embeddings ? config_.caption_channels : config_.audio_cross_attention_dim;
  check_text(video_context, video_mask, in_v, "video");
  check_text(audio_context, audio_mask, in_a, "audio");
  LTX_CHECK(audio_context.size(0) == video_context.size(0), "video and audio contexts have different batches: ",
            video_context.size(0), " and ", audio_context.size(0));
  const int64_t b = video_context.size(0);
  Ltx2TextConditioning t;
  at::Tensor v = video_context.to(device_, dtype_), a = audio_context.to(device_, dtype_);
  if (config_.use_prompt_embeddings) {
    v = w_->caption_2(gelu_tanh(w_->caption_1(v)));
    a = w_->audio_caption_2(gelu_tanh(w_->audio_caption_1(a)));
  }
  t.video_context = v;
  t.audio_context = a;
  t.video_bias = text_bias(video_mask, b, video_context.size(1), dtype_, device_);
  t.audio_bias = text_bias(audio_mask, b, audio_context.size(1), dtype_, device_);
  // Keys/values that do not depend on sigma are computed once here.
  if (!(config_.prompt_modulation() && config_.use_prompt_adaln_single)) {
    for (const auto& blk : w_->blocks) {
      at::Tensor vc = v, ac = a;
      if (config_.prompt_modulation()) {
        auto [vs, vsc] = prompt_shift_scale(blk.prompt_table, at::Tensor(), b);
        auto [as, asc] = prompt_shift_scale(blk.audio_prompt_table, at::Tensor(), b);
        vc = v * (1 + vsc) + vs;
        ac = a * (1 + asc) + as;
      }
      t.video_kv.push_back(text_kv(blk.attn2, vc));
      t.audio_kv.push_back(text_kv(blk.audio_attn2, ac));
    }
  }
  return t;
}

// ---------------------------------------------------------------------------
// Forward

namespace {

// Rows of a modulation table plus their embedding: k tensors [B, n, D].
std::vector<at::Tensor> modulation(const at::Tensor& table, const at::Tensor& temb, int64_t b) {
  const int64_t k = table.size(0), d = table.size(1);
  return (table.view({1, 1, k, d}) + temb.view({b, temb.size(1), k, d})).unbind(2);
}

// Pads an additive bias over real tokens [.., Sq, P + Sk] with zero rows/columns
// for the sharded sequences' padding (padded keys are masked separately).
at::Tensor pad_bias(const at::Tensor& bias, int64_t rows_pad, int64_t cols_pad) {
  if (rows_pad == 0 && cols_pad == 0) return bias;
  return at::constant_pad_nd(bias, {0, cols_pad, 0, rows_pad});
}

at::Tensor as_float4d(const at::Tensor& bias, const at::Device& device) {
  at::Tensor b = bias.to(device).to(at::kFloat);
  while (b.dim() < 4) b = b.unsqueeze(0);
  return b;
}

struct StreamState {
  const Ltx2StreamArgs* args;
  at::Tensor h;                 // [B, s, D] residual
  at::Tensor temb, embedded;    // [B, n, rows*D], [B, n, D]
  at::Tensor ca_temb, ca_gate;  // a<->v modulation inputs
  at::Tensor prompt_temb;       // [B, 1, 2D] or undefined
  Ltx2Rope self_rope, cross_rope;
};

}  // namespace

Ltx2Output Ltx2Transformer::forward(const Ltx2ForwardArgs& a) const {
  const Ltx2TransformerConfig& c = config_;
  LTX_CHECK(a.text != nullptr, "forward needs the text conditioning");
  const auto& vs = a.video.shard;
  const auto& as = a.audio.shard;
  dist::Communicator& group = a.group != nullptr ? *a.group : *comm_;
  for (const auto* sh : {&vs, &as}) {
    LTX_CHECK(sh->world_size == group.size() && sh->rank == group.rank(), "a shard is for rank ", sh->rank,
              " of ", sh->world_size, ", this is rank ", group.rank(), " of ", group.size());
  }
  // A sub-group's Ulysses (guidance-parallel steps): the same heads over fewer ranks.
  std::optional<parallel::UlyssesAttention> sub_video, sub_audio;
  if (&group != comm_) {
    sub_video.emplace(group, config_.num_attention_heads);
    sub_audio.emplace(group, config_.audio_num_attention_heads);
    sub_video->set_overlap(video_heads_.overlap());
    sub_audio->set_overlap(audio_heads_.overlap());
  }
  const parallel::UlyssesAttention& video_heads = sub_video ? *sub_video : video_heads_;
  const parallel::UlyssesAttention& audio_heads = sub_audio ? *sub_audio : audio_heads_;
  const at::Tensor& vt = a.video.tokens;
  const at::Tensor& at_ = a.audio.tokens;
  LTX_CHECK(vt.dim() == 3 && vt.size(1) == vs.shard_len && vt.size(2) == c.in_channels, "video tokens must be [B, ",
            vs.shard_len, ", ", c.in_channels, "], got ", vt.sizes());
  const int64_t b = vt.size(0);
  LTX_CHECK(at_.dim() == 3 && at_.size(0) == b && at_.size(1) == as.shard_len && at_.size(2) == c.audio_in_channels,
            "audio tokens must be [", b, ", ", as.shard_len, ", ", c.audio_in_channels, "], got ", at_.sizes());
  for (const auto* s : {&a.video, &a.audio}) {
    const int64_t n = s->shard.shard_len;
    LTX_CHECK(s->timestep.dim() == 1 ? s->timestep.size(0) == b
                                     : (s->timestep.dim() == 2 && s->timestep.size(0) == b && s->timestep.size(1) == n),
              "timestep must be [B] or [B, ", n, "], got ", s->timestep.sizes());
    LTX_CHECK(s->coords.dim() == 4 && s->coords.size(0) == b && s->coords.size(2) == n && s->coords.size(3) == 2,
              "RoPE coordinates must be [B, axes, ", n, ", 2], got ", s->coords.sizes());
  }
  LTX_CHECK(a.video.coords.size(1) == 3 && a.audio.coords.size(1) == 1,
            "video coordinates need 3 axes and audio coordinates 1");
  LTX_CHECK(a.sigma.defined() && a.sigma.numel() == b, "sigma must be [B] = [", b, "]");
  const at::Tensor audio_sigma = a.audio_sigma.defined() ? a.audio_sigma : a.sigma;
  LTX_CHECK(audio_sigma.numel() == b, "audio_sigma must be [B] = [", b, "]");
  const Ltx2TextConditioning& text = *a.text;
  LTX_CHECK(text.video_context.size(0) == b, "the text conditioning has batch ", text.video_context.size(0),
            ", the call ", b);
  const bool kv_static = !(c.prompt_modulation() && c.use_prompt_adaln_single);
  LTX_CHECK(!kv_static || static_cast<int64_t>(text.video_kv.size()) == c.num_layers,
            "text conditioning was not prepared by this model");
  const int64_t prefix_layers = a.kv_prefix != nullptr ? static_cast<int64_t>(a.kv_prefix->size()) : 0;
  LTX_CHECK(a.kv_prefix == nullptr || prefix_layers == c.num_layers, "KV prefix has ", prefix_layers,
            " layers, the model ", c.num_layers);
  for (int64_t blk : a.stg_blocks) {
    LTX_CHECK(blk >= 0 && blk < c.num_layers, "STG block ", blk, " is outside the model's ", c.num_layers,
              " blocks");
  }

  // Global embeddings.
  const double gate_factor = c.cross_attn_timestep_scale_multiplier / c.timestep_scale_multiplier;
  StreamState v, au;
  v.args = &a.video;
  au.args = &a.audio;
  v.h = w_->proj_in(vt.to(device_, dtype_));
  au.h = w_->audio_proj_in(at_.to(device_, dtype_));
  std::tie(v.temb, v.embedded) = w_->time(a.video.timestep, b, dtype_, device_);
  std::tie(au.temb, au.embedded) = w_->audio_time(a.audio.timestep, b, dtype_, device_);
  if (c.prompt_modulation() && c.use_prompt_adaln_single) {
    v.prompt_temb = w_->prompt(a.sigma, b, dtype_, device_).first;
    au.prompt_temb = w_->audio_prompt(audio_sigma, b, dtype_, device_).first;
  }
  const at::Tensor video_ca_t = a.use_cross_timestep ? audio_sigma : a.video.timestep;
  const at::Tensor audio_ca_t = a.use_cross_timestep ? a.sigma : a.audio.timestep;
  v.ca_temb = w_->video_ca(video_ca_t, b, dtype_, device_).first;
  v.ca_gate = w_->a2v_gate(video_ca_t.to(at::kFloat) * gate_factor, b, dtype_, device_).first;
  au.ca_temb = w_->audio_ca(audio_ca_t, b, dtype_, device_).first;
  au.ca_gate = w_->v2a_gate(audio_ca_t.to(at::kFloat) * gate_factor, b, dtype_, device_).first;

  // RoPE tables for this rank's tokens.
  const double cross_max = std::max(c.pos_embed_max_pos, c.audio_pos_embed_max_pos);
  auto spec = [&](int64_t dim, int64_t heads, std::vector<double> max_pos) {
    Ltx2RopeSpec s;
    s.dim = dim;
    s.heads = heads;
    s.max_pos = std::move(max_pos);
    s.theta = c.rope_theta;
    s.double_precision = c.rope_double_precision;
    s.layout = c.rope_layout;
    return s;
  };
  v.self_rope = ltx2_rope(a.video.coords, spec(c.inner_dim(), c.num_attention_heads,
                                               {c.pos_embed_max_pos, c.base_height, c.base_width}), device_);
  au.self_rope = ltx2_rope(a.audio.coords, spec(c.audio_inner_dim(), c.audio_num_attention_heads,
                                                {c.audio_pos_embed_max_pos}), device_);
  v.cross_rope = ltx2_rope(a.video.coords.narrow(1, 0, 1),
                           spec(c.audio_cross_attention_dim, c.num_attention_heads, {cross_max}), device_);
  au.cross_rope = ltx2_rope(a.audio.coords.narrow(1, 0, 1),
                            spec(c.audio_cross_attention_dim, c.audio_num_attention_heads, {cross_max}), device_);

  // Attention options that stay the same for every block.
  auto self_options = [&](const Ltx2StreamArgs& s, int64_t prefix) {
    parallel::AttentionOptions o;
    if (s.shard.padded_len != s.shard.seq_len) o.valid_keys = s.shard.seq_len;  // dropped, not masked
    if (s.self_bias.has_value()) {
      at::Tensor bias = as_float4d(*s.self_bias, device_);
      LTX_CHECK(bias.size(2) == s.shard.seq_len && bias.size(3) == prefix + s.shard.seq_len,
                "self-attention bias must cover [", s.shard.seq_len, ", ", prefix + s.shard.seq_len,
                "] (queries, prefix + keys), got ", s.self_bias->sizes());
      const int64_t pad = s.shard.padded_len - s.shard.seq_len;
      o.bias = pad_bias(bias, pad, pad);
    }
    return o;
  };
  auto prefix_len = [&](LayerKv Ltx2LayerKv::*member) -> int64_t {
    if (a.kv_prefix == nullptr || a.kv_prefix->empty()) return 0;
    const at::Tensor& k = ((*a.kv_prefix)[0].*member).k;
    return k.defined() ? k.size(1) : 0;
  };
  const parallel::AttentionOptions video_self = self_options(a.video, prefix_len(&Ltx2LayerKv::video_self));
  const parallel::AttentionOptions audio_self = self_options(a.audio, prefix_len(&Ltx2LayerKv::audio_self));
  // A2V: this rank's video queries against every audio key (gathered, unpadded).
  parallel::AttentionOptions a2v_options;
  if (a.video.cross_bias.has_value()) {
    at::Tensor bias = as_float4d(*a.video.cross_bias, device_);
    const int64_t p = prefix_len(&Ltx2LayerKv::a2v);
    LTX_CHECK(bias.size(2) == vs.seq_len && bias.size(3) == p + as.seq_len, "audio-to-video bias must cover [",
              vs.seq_len, ", ", p + as.seq_len, "], got ", a.video.cross_bias->sizes());
    a2v_options.bias = vs.take(bias, 2);
  }
  // V2A: Ulysses over audio heads, the whole padded audio and video sequences.
  parallel::AttentionOptions v2a_options;
  if (vs.padded_len != vs.seq_len) v2a_options.valid_keys = vs.seq_len;
  if (a.audio.cross_bias.has_value()) {
    at::Tensor bias = as_float4d(*a.audio.cross_bias, device_);
    const int64_t p = prefix_len(&Ltx2LayerKv::v2a);
    LTX_CHECK(bias.size(2) == as.seq_len && bias.size(3) == p + vs.seq_len, "video-to-audio bias must cover [",
              as.seq_len, ", ", p + vs.seq_len, "], got ", a.audio.cross_bias->sizes());
    v2a_options.bias = pad_bias(bias, as.padded_len - as.seq_len, vs.padded_len - vs.seq_len);
  }

  std::set<int64_t> stg(a.stg_blocks.begin(), a.stg_blocks.end());
  at::Tensor keep;  // [B, 1, 1] 1 = attention, 0 = value projection
  bool all_perturbed = false;
  if (!stg.empty() && c.perturbed_attn) {
    keep = a.perturbation_mask.defined() ? a.perturbation_mask.to(device_).to(dtype_).view({b, 1, 1})
                                         : at::zeros({b, 1, 1}, at::TensorOptions().dtype(dtype_).device(device_));
    // Read where the mask is: no mask (all perturbed) and a host mask cost no
    // device synchronisation; a mask on the GPU does.
    all_perturbed = !a.perturbation_mask.defined() ||
                    (a.perturbation_mask.is_cpu() ? a.perturbation_mask : a.perturbation_mask.cpu()).eq(0).all().item<bool>();
  }
  if (a.kv_out != nullptr) a.kv_out->assign(c.num_layers, Ltx2LayerKv{});

  auto self_attention = [&](const Ltx2AttentionWeights& w, const at::Tensor& x, const Ltx2Rope& rope,
                            const parallel::UlyssesAttention& u, parallel::AttentionOptions options,
                            const LayerKv* prefix, LayerKv* out_kv, const parallel::SequenceShard& shard,
                            bool perturbed) {
    const int64_t s = x.size(1);
    at::Tensor value = w.value(x);
    if (perturbed && all_perturbed && out_kv == nullptr) return w.finish(value, x);
    at::Tensor q = w.split(w.query(x, &rope)), k = w.split(w.key(x, &rope)), vv = w.split(value);
    if (prefix != nullptr && prefix->k.defined()) {
      options.prefix_k = prefix->k;
      options.prefix_v = prefix->v;
    }
    parallel::LocalHeadKv local;
    at::Tensor o = u.forward(q, k, vv, options, out_kv != nullptr ? &local : nullptr).reshape({b, s, -1});
    if (out_kv != nullptr) {
      *out_kv = {local.k.narrow(1, 0, shard.seq_len).contiguous(), local.v.narrow(1, 0, shard.seq_len).contiguous()};
    }
    if (perturbed) o = at::lerp(value, o, keep);
    return w.finish(o, x);
  };
  auto text_attention = [&](const Ltx2AttentionWeights& w, const at::Tensor& x, const LayerKv& kv,
                            const at::Tensor& bias) {
    parallel::AttentionOptions o;
    o.bias = bias;
    at::Tensor out = parallel::reference_attention(w.split(w.query(x, nullptr)), kv.k, kv.v, o);
    return w.finish(out, x);
  };

  for (int64_t i = 0; i < c.num_layers; ++i) {
    const Ltx2BlockWeights& blk = w_->blocks[i];
    const Ltx2LayerKv* prefix = a.kv_prefix != nullptr ? &(*a.kv_prefix)[i] : nullptr;
    Ltx2LayerKv* out_kv = a.kv_out != nullptr ? &(*a.kv_out)[i] : nullptr;
    const bool perturbed = keep.defined() && stg.count(i) != 0;
    auto vm = modulation(blk.table, v.temb, b);
    auto am = modulation(blk.audio_table, au.temb, b);

    // 1. self-attention, each stream over its own Ulysses group
    at::Tensor x = rms(v.h, c.norm_eps) * (1 + vm[1]) + vm[0];
    v.h = v.h + self_attention(blk.attn1, x, v.self_rope, video_heads, video_self,
                               prefix != nullptr ? &prefix->video_self : nullptr,
                               out_kv != nullptr ? &out_kv->video_self : nullptr, vs, perturbed) * vm[2];
    x = rms(au.h, c.norm_eps) * (1 + am[1]) + am[0];
    au.h = au.h + self_attention(blk.audio_attn1, x, au.self_rope, audio_heads, audio_self,
                                 prefix != nullptr ? &prefix->audio_self : nullptr,
                                 out_kv != nullptr ? &out_kv->audio_self : nullptr, as, perturbed) * am[2];

    // 2. text cross-attention (local: the text keys/values are replicated)
    LayerKv vkv, akv;
    if (kv_static) {
      vkv = text.video_kv[i];
      akv = text.audio_kv[i];
    } else {
      auto [vsh, vsc] = prompt_shift_scale(blk.prompt_table, v.prompt_temb, b);
      auto [ash, asc] = prompt_shift_scale(blk.audio_prompt_table, au.prompt_temb, b);
      vkv = text_kv(blk.attn2, text.video_context * (1 + vsc) + vsh);
      akv = text_kv(blk.audio_attn2, text.audio_context * (1 + asc) + ash);
    }
    x = rms(v.h, c.norm_eps);
    if (c.cross_attn_mod) x = x * (1 + vm[7]) + vm[6];
    at::Tensor t_out = text_attention(blk.attn2, x, vkv, text.video_bias);
    v.h = v.h + (c.cross_attn_mod ? t_out * vm[8] : t_out);
    x = rms(au.h, c.norm_eps);
    if (c.audio_cross_attn_mod) x = x * (1 + am[7]) + am[6];
    t_out = text_attention(blk.audio_attn2, x, akv, text.audio_bias);
    au.h = au.h + (c.audio_cross_attn_mod ? t_out * am[8] : t_out);

    // 3. audio <-> video, both from the same pre-update states
    if (!a.isolate_modalities) {
      const at::Tensor nv = rms(v.h, c.norm_eps), na = rms(au.h, c.norm_eps);
      auto vca = modulation(blk.video_ca_table.narrow(0, 0, 4), v.ca_temb, b);  // a2v scale, shift, v2a scale, shift
      auto aca = modulation(blk.audio_ca_table.narrow(0, 0, 4), au.ca_temb, b);
      at::Tensor gate_a2v = modulation(blk.video_ca_table.narrow(0, 4, 1), v.ca_gate, b)[0];
      at::Tensor gate_v2a = modulation(blk.audio_ca_table.narrow(0, 4, 1), au.ca_gate, b)[0];

      // A2V: queries = this rank's video tokens; keys/values = all audio tokens.
      const Ltx2AttentionWeights& wa = blk.a2v;
      at::Tensor qin = nv * (1 + vca[0]) + vca[1];
      at::Tensor kvin = na * (1 + aca[0]) + aca[1];
      at::Tensor kv_local = at::cat({wa.key(kvin, &au.cross_rope), wa.value(kvin)}, -1);
      at::Tensor kv_all = parallel::gather_sequence(group, as, kv_local, 1);  // [B, Na, 2 * inner]
      const int64_t inner = wa.heads * wa.head_dim;
      at::Tensor ka = wa.split(kv_all.narrow(2, 0, inner).contiguous());
      at::Tensor va = wa.split(kv_all.narrow(2, inner, inner).contiguous());
      if (out_kv != nullptr) out_kv->a2v = {ka, va};
      parallel::AttentionOptions o = a2v_options;
      if (prefix != nullptr && prefix->a2v.k.defined()) {
        o.prefix_k = prefix->a2v.k;
        o.prefix_v = prefix->a2v.v;
      }
      at::Tensor a2v = wa.finish(parallel::reference_attention(wa.split(wa.query(qin, &v.cross_rope)), ka, va, o), qin);

      // V2A: Ulysses over the audio heads (audio queries, video keys/values).
      const Ltx2AttentionWeights& wv = blk.v2a;
      at::Tensor qa = na * (1 + aca[2]) + aca[3];
      at::Tensor kvv = nv * (1 + vca[2]) + vca[3];
      parallel::AttentionOptions o2 = v2a_options;
      if (prefix != nullptr && prefix->v2a.k.defined()) {
        o2.prefix_k = prefix->v2a.k;
        o2.prefix_v = prefix->v2a.v;
      }
      parallel::LocalHeadKv local;
      at::Tensor v2a = audio_heads.forward(wv.split(wv.query(qa, &au.cross_rope)), wv.split(wv.key(kvv, &v.cross_rope)),
                                            wv.split(wv.value(kvv)), o2, out_kv != nullptr ? &local : nullptr);
      if (out_kv != nullptr) {
        out_kv->v2a = {local.k.narrow(1, 0, vs.seq_len).contiguous(), local.v.narrow(1, 0, vs.seq_len).contiguous()};
      }
      v2a = wv.finish(v2a, qa);
      v.h = v.h + gate_a2v * a2v;
      au.h = au.h + gate_v2a * v2a;
    }

    // 4. feed-forward
    x = rms(v.h, c.norm_eps) * (1 + vm[4]) + vm[3];
    v.h = v.h + blk.ff_out(gelu_tanh(blk.ff_in(x))) * vm[5];
    x = rms(au.h, c.norm_eps) * (1 + am[4]) + am[3];
    au.h = au.h + blk.audio_ff_out(gelu_tanh(blk.audio_ff_in(x))) * am[5];
  }

  auto head = [&](const at::Tensor& h, const at::Tensor& table, const at::Tensor& embedded,
                  const LinearWeights& proj) {
    const int64_t d = table.size(1);
    at::Tensor ss = table.view({1, 1, 2, d}) + embedded.unsqueeze(2);
    at::Tensor y = at::layer_norm(h, {d}, c10::nullopt, c10::nullopt, kOutNormEps) * (1 + ss.select(2, 1)) +
                   ss.select(2, 0);
    return proj(y);
  };
  return {head(v.h, w_->table, v.embedded, w_->proj_out), head(au.h, w_->audio_table, au.embedded, w_->audio_proj_out)};
}

Ltx2Output ltx2_forward_full(const Ltx2Transformer& model, const Ltx2FullArgs& f) {
  dist::Communicator& comm = model.communicator();
  LTX_CHECK(f.video.dim() == 3 && f.audio.dim() == 3, "video and audio tokens must be [B, N, C]");
  Ltx2ForwardArgs a;
  a.video.shard = parallel::SequenceShard::make(f.video.size(1), comm.size(), comm.rank());
  a.audio.shard = parallel::SequenceShard::make(f.audio.size(1), comm.size(), comm.rank());
  auto fill = [](Ltx2StreamArgs& s, const at::Tensor& tokens, const at::Tensor& timestep, const at::Tensor& coords) {
    s.tokens = s.shard.take(tokens, 1);
    s.timestep = timestep.dim() == 2 ? s.shard.take(timestep, 1) : timestep;
    s.coords = s.shard.take(coords, 2);
  };
  fill(a.video, f.video, f.timestep, f.video_coords);
  fill(a.audio, f.audio, f.audio_timestep.defined() ? f.audio_timestep : f.timestep, f.audio_coords);
  a.video.self_bias = f.video_self_bias;
  a.audio.self_bias = f.audio_self_bias;
  a.video.cross_bias = f.a2v_bias;
  a.audio.cross_bias = f.v2a_bias;
  a.sigma = f.sigma;
  a.audio_sigma = f.audio_sigma;
  a.text = f.text;
  a.use_cross_timestep = f.use_cross_timestep;
  a.isolate_modalities = f.isolate_modalities;
  a.stg_blocks = f.stg_blocks;
  a.perturbation_mask = f.perturbation_mask;
  a.kv_prefix = f.kv_prefix;
  a.kv_out = f.kv_out;
  Ltx2Output local = model.forward(a);
  return {parallel::gather_sequence(comm, a.video.shard, local.video, 1),
          parallel::gather_sequence(comm, a.audio.shard, local.audio, 1)};
}

}  // namespace ltx::pipeline
