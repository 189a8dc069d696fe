#include "pipeline/dit/ltx_transformer.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "common/check.h"
#include "common/device_sync.h"
#include "common/logging.h"
#include "common/torch_compat.h"
#include "ops/fused_ops.h"
#include "parallel/ring_attention.h"
#include "pipeline/nn/embeddings.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

namespace {

constexpr double kQkNormEps = 1e-5;     // q/k RMSNorm, hard-coded in the reference
constexpr double kFinalNormEps = 1e-6;  // norm_out LayerNorm
constexpr int64_t kTimestepChannels = 256;
constexpr const char* kOriginalPrefix = "model.diffusion_model.";

// Maps a checkpoint tensor name to its diffusers name; nullopt for tensors of
// other models in the same file (the VAE of a single-file checkpoint).
std::optional<std::string> canonical_name(const std::string& raw) {
  std::string n = raw;
  if (starts_with(n, kOriginalPrefix)) n = n.substr(std::string(kOriginalPrefix).size());
  if (starts_with(n, "vae.")) return std::nullopt;
  if (starts_with(n, "patchify_proj.")) n = "proj_in." + n.substr(14);
  if (starts_with(n, "adaln_single.")) n = "time_embed." + n.substr(13);
  replace_all(&n, ".q_norm.", ".norm_q.");
  replace_all(&n, ".k_norm.", ".norm_k.");
  return n;
}

at::Tensor gelu_tanh(const at::Tensor& x) { return at::gelu(x, "tanh"); }

}  // namespace

std::vector<ExpectedTensor> LtxTransformer::expected_tensors(const TransformerConfig& c) {
  const int64_t d = c.inner_dim();
  std::vector<ExpectedTensor> out;
  auto linear = [&out](const std::string& name, int64_t o, int64_t i, bool bias) {
    out.push_back({name + ".weight", {o, i}});
    if (bias) out.push_back({name + ".bias", {o}});
  };
  linear("proj_in", d, c.in_channels, true);
  linear("time_embed.emb.timestep_embedder.linear_1", d, kTimestepChannels, true);
  linear("time_embed.emb.timestep_embedder.linear_2", d, d, true);
  linear("time_embed.linear", 6 * d, d, true);
  linear("caption_projection.linear_1", d, c.caption_channels, true);
  linear("caption_projection.linear_2", d, d, true);
  out.push_back({"scale_shift_table", {2, d}});
  linear("proj_out", c.out_channels, d, true);
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string b = "transformer_blocks." + std::to_string(i) + ".";
    out.push_back({b + "scale_shift_table", {6, d}});
    for (const char* attn : {"attn1", "attn2"}) {
      const int64_t kv_in = std::string(attn) == "attn1" ? d : c.cross_attention_dim;
      linear(b + attn + ".to_q", d, d, c.attention_bias);
      linear(b + attn + ".to_k", d, kv_in, c.attention_bias);
      linear(b + attn + ".to_v", d, kv_in, c.attention_bias);
      linear(b + attn + ".to_out.0", d, d, c.attention_out_bias);
      out.push_back({b + attn + ".norm_q.weight", {d}});
      out.push_back({b + attn + ".norm_k.weight", {d}});
    }
    linear(b + "ff.net.0.proj", 4 * d, d, true);
    linear(b + "ff.net.2", d, 4 * d, true);
  }
  return out;
}

Status LtxTransformer::check_load_arguments(const TransformerConfig& config,
                                            dist::Communicator& comm, at::ScalarType dtype) {
  LTX_RETURN_IF_ERROR(parallel::validate_head_split(config.num_attention_heads, comm.size()));
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
    return invalid_argument_error(std::string("transformer dtype must be float32, bfloat16 or "
                                              "float16, got ") + c10::toString(dtype));
  }
  return Status();
}

Result<LtxTransformer> LtxTransformer::from_checkpoint(const TransformerConfig& config,
                                                       const SafetensorsCheckpoint& ckpt,
                                                       dist::Communicator& comm,
                                                       at::ScalarType dtype,
                                                       const at::Device& device) {
  LTX_RETURN_IF_ERROR(check_load_arguments(config, comm, dtype));
  LTX_ASSIGN_OR_RETURN(auto loaded,
                       load_expected_tensors(ckpt, expected_tensors(config), canonical_name,
                                             "a " + std::to_string(config.num_layers) + "-layer LTX transformer",
                                             dtype, device));
  return assemble(config, loaded, comm, dtype, device);
}

Result<LtxTransformer> LtxTransformer::from_tensors(const TransformerConfig& config,
                                                    const std::map<std::string, at::Tensor>& tensors,
                                                    dist::Communicator& comm, at::ScalarType dtype,
                                                    const at::Device& device) {
  LTX_RETURN_IF_ERROR(check_load_arguments(config, comm, dtype));
  const auto expected = expected_tensors(config);
  std::map<std::string, at::Tensor> loaded;
  for (const auto& e : expected) {
    auto it = tensors.find(e.name);
    if (it == tensors.end()) return invalid_argument_error("in-memory weights: missing tensor '" + e.name + "'");
    LTX_ASSIGN_OR_RETURN(loaded[e.name], checked_convert("in-memory weights", e.name, it->second, e.shape, dtype, device));
  }
  for (const auto& kv : tensors) {
    if (!loaded.count(kv.first)) return invalid_argument_error("in-memory weights: unexpected tensor '" + kv.first + "'");
  }
  return assemble(config, loaded, comm, dtype, device);
}

LtxTransformer LtxTransformer::assemble(const TransformerConfig& config,
                                        std::map<std::string, at::Tensor>& loaded,
                                        dist::Communicator& comm, at::ScalarType dtype,
                                        const at::Device& device) {
  std::vector<at::Tensor> all = tensors_of(loaded);
  auto take = [&loaded](const std::string& n) { return take_tensor(loaded, n); };
  auto linear = [&loaded](const std::string& n) { return LinearWeights::take(loaded, n); };
  LtxTransformerWeights w;
  w.proj_in = linear("proj_in");
  w.time_linear_1 = linear("time_embed.emb.timestep_embedder.linear_1");
  w.time_linear_2 = linear("time_embed.emb.timestep_embedder.linear_2");
  w.time_linear = linear("time_embed.linear");
  w.caption_linear_1 = linear("caption_projection.linear_1");
  w.caption_linear_2 = linear("caption_projection.linear_2");
  w.scale_shift_table = take("scale_shift_table");
  w.proj_out = linear("proj_out");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string b = "transformer_blocks." + std::to_string(i) + ".";
    LtxBlockWeights blk;
    blk.scale_shift_table = take(b + "scale_shift_table");
    for (auto* pair : {&blk.attn1, &blk.attn2}) {
      const std::string a = b + (pair == &blk.attn1 ? "attn1" : "attn2");
      pair->to_q = linear(a + ".to_q");
      pair->to_k = linear(a + ".to_k");
      pair->to_v = linear(a + ".to_v");
      pair->to_out = linear(a + ".to_out.0");
      pair->norm_q = take(a + ".norm_q.weight");
      pair->norm_k = take(a + ".norm_k.weight");
    }
    blk.ff_in = linear(b + "ff.net.0.proj");
    blk.ff_out = linear(b + "ff.net.2");
    w.blocks.push_back(std::move(blk));
  }
  LTX_INTERNAL_ASSERT(loaded.empty(), "weights left over after assembling the transformer");
  LtxTransformer t(config, std::move(w), comm, dtype, device);
  t.weights_ = std::move(all);
  return t;
}

Result<LtxTransformer> LtxTransformer::load(const std::string& path, dist::Communicator& comm,
                                            at::ScalarType dtype, const at::Device& device) {
  std::error_code ec;
  TransformerConfig config;
  if (fs::is_directory(path, ec)) {
    LTX_ASSIGN_OR_RETURN(config, load_transformer_config((fs::path(path) / "config.json").string()));
    LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
    return from_checkpoint(config, ckpt, comm, dtype, device);
  }
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
  auto meta = ckpt.metadata().find("config");
  if (meta != ckpt.metadata().end()) {
    LTX_ASSIGN_OR_RETURN(config, parse_original_transformer_config(meta->second, path));
  } else {
    LTX_LOG(kWarn) << path << ": no `config` metadata; assuming the 2B LTX-Video transformer";
  }
  return from_checkpoint(config, ckpt, comm, dtype, device);
}

LtxTransformer::LtxTransformer(TransformerConfig config, LtxTransformerWeights weights,
                               dist::Communicator& comm, at::ScalarType dtype, at::Device device)
    : config_(std::move(config)),
      w_(std::move(weights)),
      comm_(&comm),
      attention_(comm, config_.num_attention_heads),
      dtype_(dtype),
      device_(device) {
  // On GPUs the CFG pair's samples pipeline their all-to-alls with attention.
  attention_.set_overlap(device_.is_cuda());
}

void LtxTransformer::use_ring(std::unique_ptr<dist::Communicator> ulysses, std::unique_ptr<dist::Communicator> ring,
                              dist::Communicator& whole) {
  LTX_CHECK(ulysses != nullptr && ring != nullptr && ulysses.get() == comm_ &&
                ulysses->size() * ring->size() == whole.size(),
            "use_ring needs the Ulysses sub-group this transformer was loaded on and a ring that together make the group");
  ulysses_ = std::move(ulysses);
  ring_ = std::move(ring);
  comm_ = &whole;
}

std::pair<at::Tensor, at::Tensor> LtxTransformer::embed_timestep(const at::Tensor& timestep,
                                                                 int64_t batch) const {
  auto embed = [&](const at::Tensor& values) {
    at::Tensor s = timestep_sinusoid(values.to(at::kFloat), kTimestepChannels).to(dtype_);
    at::Tensor e = w_.time_linear_2(at::silu(w_.time_linear_1(s)));  // embedded timestep
    return std::make_pair(w_.time_linear(at::silu(e)), e);
  };
  if (timestep.dim() <= 1) {  // one value per sample: embed them as they are (no host synchronisation)
    auto [temb, e] = embed(to_device_async(timestep.reshape(-1), device_));
    return {temb.view({batch, -1, temb.size(-1)}), e.view({batch, -1, e.size(-1)})};
  }
  // Per-token timesteps repeat a few values: embed each distinct one once. The
  // distinct values are found where the timesteps are: on the host for free
  // (then copied without a wait), on a GPU at the cost of a synchronisation.
  at::Tensor flat = timestep.to(at::kFloat).reshape(-1);
  auto [values, inverse, counts] = at::_unique2(flat, /*sorted=*/true, /*return_inverse=*/true,
                                                /*return_counts=*/false);
  (void)counts;
  auto [temb, e] = embed(to_device_async(values, device_));
  const at::Tensor index = to_device_async(inverse.reshape(-1), device_);
  e = e.index_select(0, index);
  temb = temb.index_select(0, index);
  return {temb.view({batch, -1, temb.size(-1)}), e.view({batch, -1, e.size(-1)})};
}

TextConditioning LtxTransformer::prepare_text(const at::Tensor& encoder_hidden_states,
                                              const at::Tensor& encoder_attention_mask) const {
  LTX_CHECK(encoder_hidden_states.dim() == 3 &&
                encoder_hidden_states.size(2) == config_.caption_channels,
            "text embeddings must be [B, L, ", config_.caption_channels, "], got ",
            encoder_hidden_states.sizes());
  LTX_CHECK(encoder_attention_mask.dim() == 2 &&
                encoder_attention_mask.size(0) == encoder_hidden_states.size(0) &&
                encoder_attention_mask.size(1) == encoder_hidden_states.size(1),
            "text mask must be [B, L] = ", encoder_hidden_states.sizes().slice(0, 2), ", got ",
            encoder_attention_mask.sizes());
  const int64_t b = encoder_hidden_states.size(0), l = encoder_hidden_states.size(1);
  at::Tensor c = encoder_hidden_states.to(device_, dtype_);
  at::Tensor ctx = w_.caption_linear_2(gelu_tanh(w_.caption_linear_1(c)));
  TextConditioning text;
  text.bias = ((1 - encoder_attention_mask.to(device_, dtype_)) * -10000.0).view({b, 1, 1, l});
  for (const auto& blk : w_.blocks) {
    at::Tensor k = ops::rms_norm(blk.attn2.to_k(ctx), blk.attn2.norm_k, kQkNormEps);
    at::Tensor v = blk.attn2.to_v(ctx);
    text.cross_kv.push_back({k.view({b, l, num_heads(), head_dim()}), v.view({b, l, num_heads(), head_dim()})});
  }
  return text;
}

at::Tensor LtxTransformer::forward(const LtxForwardArgs& a) const {
  const auto& shard = a.shard;
  LTX_CHECK(a.text != nullptr, "forward needs the text conditioning");
  dist::Communicator& group = a.group != nullptr ? *a.group : *comm_;
  LTX_CHECK(shard.world_size == group.size() && shard.rank == group.rank(),
            "the shard is for rank ", shard.rank, " of ", shard.world_size, ", this is rank ",
            group.rank(), " of ", group.size());
  // A sub-group's Ulysses (guidance-parallel steps): the same heads over fewer ranks.
  std::optional<parallel::UlyssesAttention> sub_attention;
  if (&group != comm_) {
    sub_attention.emplace(group, config_.num_attention_heads);
    sub_attention->set_overlap(attention_.overlap());
  }
  const parallel::UlyssesAttention& attention = sub_attention ? *sub_attention : attention_;
  const bool ring = ring_ != nullptr && &group == comm_;
  const at::Tensor& hs = a.hidden_states;
  LTX_CHECK(hs.dim() == 3 && hs.size(1) == shard.shard_len && hs.size(2) == config_.in_channels,
            "hidden_states must be [B, ", shard.shard_len, ", ", config_.in_channels, "], got ",
            hs.sizes());
  const int64_t b = hs.size(0), n = hs.size(1), d = inner_dim(), heads = num_heads();
  LTX_CHECK(a.timestep.dim() == 1 ? a.timestep.size(0) == b
                                  : (a.timestep.dim() == 2 && a.timestep.size(0) == b &&
                                     a.timestep.size(1) == n),
            "timestep must be [B] or [B, ", n, "], got ", a.timestep.sizes());
  LTX_CHECK(a.rope_cos.dim() == 2 && a.rope_cos.size(0) == n && a.rope_cos.size(1) == d &&
                a.rope_sin.sizes() == a.rope_cos.sizes(),
            "RoPE tables must be [", n, ", ", d, "], got ", a.rope_cos.sizes());
  LTX_CHECK(static_cast<int64_t>(a.text->cross_kv.size()) == config_.num_layers &&
                a.text->bias.size(0) == b,
            "text conditioning does not match this model or batch");
  const int64_t prefix = a.kv_prefix != nullptr && !a.kv_prefix->empty() ? a.kv_prefix->at(0).k.size(1) : 0;
  if (a.kv_prefix != nullptr) {
    LTX_CHECK(static_cast<int64_t>(a.kv_prefix->size()) == config_.num_layers, "KV prefix has ",
              a.kv_prefix->size(), " layers, the model ", config_.num_layers);
  }

  LTX_CHECK(!ring || (prefix == 0 && a.kv_out == nullptr && !a.self_attention_bias.has_value()),
            "Ulysses x ring runs without a KV prefix, KV output or attention bias (streams need --ring-size 1)");
  parallel::AttentionOptions base;
  // Tail padding is dropped from the keys, not masked: no mask, fused SDPA kernels.
  if (shard.padded_len != shard.seq_len) base.valid_keys = shard.seq_len;
  if (a.self_attention_bias.has_value()) {
    at::Tensor bias = a.self_attention_bias->to(device_).to(at::kFloat);
    while (bias.dim() < 4) bias = bias.unsqueeze(0);
    LTX_CHECK(bias.size(2) == shard.seq_len && bias.size(3) == prefix + shard.seq_len,
              "self_attention_bias must cover [", shard.seq_len, ", ", prefix + shard.seq_len,
              "] (queries, prefix + keys), got ", a.self_attention_bias->sizes());
    if (shard.padded_len != shard.seq_len) {
      const int64_t pad = shard.padded_len - shard.seq_len;
      bias = at::constant_pad_nd(bias, {0, pad, 0, pad});  // zero rows/columns for padding
    }
    base.bias = bias;
  }

  const ops::Rope rope{a.rope_cos.to(device_), a.rope_sin.to(device_)};
  at::Tensor h = w_.proj_in(hs.to(device_, dtype_));
  auto [temb, embedded] = embed_timestep(a.timestep, b);
  const int64_t tt = temb.size(1);
  if (a.kv_out != nullptr) a.kv_out->clear();

  for (int64_t i = 0; i < config_.num_layers; ++i) {
    const LtxBlockWeights& blk = w_.blocks[i];
    at::Tensor ada = blk.scale_shift_table.view({1, 1, 6, d}) + temb.view({b, tt, 6, d});
    auto mods = ada.unbind(2);  // shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp

    // 1. self-attention (sequence parallel)
    // Fused: norm + modulation, and q/k norm + weight + RoPE, one pass each (ops/).
    at::Tensor x = ops::rms_norm_modulate(h, mods[1], mods[0], config_.norm_eps);
    at::Tensor q = ops::rms_norm_rope(blk.attn1.to_q(x), blk.attn1.norm_q, kQkNormEps, rope)
                       .view({b, n, heads, head_dim()});
    at::Tensor k = ops::rms_norm_rope(blk.attn1.to_k(x), blk.attn1.norm_k, kQkNormEps, rope)
                       .view({b, n, heads, head_dim()});
    at::Tensor v = blk.attn1.to_v(x).view({b, n, heads, head_dim()});
    parallel::AttentionOptions opts = base;
    if (prefix > 0) {
      opts.prefix_k = a.kv_prefix->at(i).k;
      opts.prefix_v = a.kv_prefix->at(i).v;
    }
    parallel::LocalHeadKv kv;
    at::Tensor attn = ring ? parallel::usp_attention(*ulysses_, *ring_, shard, q, k, v)
                           : attention.forward(q, k, v, opts, a.kv_out != nullptr ? &kv : nullptr);
    if (a.kv_out != nullptr) {
      a.kv_out->push_back({kv.k.narrow(1, 0, shard.seq_len).contiguous(),
                           kv.v.narrow(1, 0, shard.seq_len).contiguous()});
    }
    h = h + blk.attn1.to_out(attn.reshape({b, n, d})) * mods[2];

    // 2. cross-attention to the text: no norm, no modulation, no gate
    at::Tensor q2 = ops::rms_norm(blk.attn2.to_q(h), blk.attn2.norm_q, kQkNormEps);
    q2 = q2.view({b, n, heads, head_dim()}).transpose(1, 2);
    const LayerKv& text_kv = a.text->cross_kv[i];
    at::Tensor cross = compat::scaled_dot_product_attention(
        q2, text_kv.k.transpose(1, 2), text_kv.v.transpose(1, 2), a.text->bias,
        1.0 / std::sqrt(static_cast<double>(head_dim())));
    h = h + blk.attn2.to_out(cross.transpose(1, 2).reshape({b, n, d}));

    // 3. feed-forward
    at::Tensor f = ops::rms_norm_modulate(h, mods[4], mods[3], config_.norm_eps);
    h = h + blk.ff_out(gelu_tanh(blk.ff_in(f))) * mods[5];
  }

  at::Tensor ss = w_.scale_shift_table.view({1, 1, 2, d}) + embedded.unsqueeze(2);
  at::Tensor shift = ss.select(2, 0), scale = ss.select(2, 1);
  h = at::layer_norm(h, {d}, c10::nullopt, c10::nullopt, kFinalNormEps) * (1 + scale) + shift;
  return w_.proj_out(h);
}

at::Tensor LtxTransformer::forward_full(const at::Tensor& hidden_states, const at::Tensor& timestep,
                                        const TextConditioning& text, const LatentGrid& grid,
                                        const RopeSettings& rope) const {
  LTX_CHECK(hidden_states.dim() == 3 && hidden_states.size(1) == grid.num_tokens(),
            "hidden_states must be [B, ", grid.num_tokens(), ", C] for a ", grid.frames, "x",
            grid.height, "x", grid.width, " grid, got ", hidden_states.sizes());
  LtxForwardArgs args;
  args.shard = parallel::SequenceShard::make(grid.num_tokens(), comm_->size(), comm_->rank());
  args.hidden_states = args.shard.take(hidden_states, 1);
  args.timestep = timestep.dim() == 2 ? args.shard.take(timestep, 1) : timestep;
  RopeTables tables = rope_tables(grid, rope, inner_dim(), device_);
  args.rope_cos = args.shard.take(tables.cos, 0);
  args.rope_sin = args.shard.take(tables.sin, 0);
  args.text = &text;
  at::Tensor local = forward(args);
  return parallel::gather_sequence(*comm_, args.shard, local, 1);
}

}  // namespace ltx::pipeline
