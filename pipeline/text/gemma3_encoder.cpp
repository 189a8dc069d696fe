#include "pipeline/text/gemma3_encoder.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/check.h"
#include "common/torch_compat.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

std::vector<ExpectedTensor> gemma3_expected_tensors(const Gemma3Config& c) {
  const int64_t d = c.hidden_size, hd = c.head_dim;
  std::vector<ExpectedTensor> out = {{"embed_tokens.weight", {c.vocab_size, d}}, {"norm.weight", {d}}};
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    out.push_back({p + "self_attn.q_proj.weight", {c.num_attention_heads * hd, d}});
    out.push_back({p + "self_attn.k_proj.weight", {c.num_key_value_heads * hd, d}});
    out.push_back({p + "self_attn.v_proj.weight", {c.num_key_value_heads * hd, d}});
    out.push_back({p + "self_attn.o_proj.weight", {d, c.num_attention_heads * hd}});
    out.push_back({p + "self_attn.q_norm.weight", {hd}});
    out.push_back({p + "self_attn.k_norm.weight", {hd}});
    for (const char* n : {"input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
                          "post_feedforward_layernorm"}) {
      out.push_back({p + n + ".weight", {d}});
    }
    out.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, d}});
    out.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, d}});
    out.push_back({p + "mlp.down_proj.weight", {d, c.intermediate_size}});
  }
  return out;
}

namespace {

// cos/sin [T, head_dim] in fp32 for positions 0..T-1 (non-interleaved halves).
std::pair<at::Tensor, at::Tensor> rope_table(int64_t t, int64_t head_dim, const Gemma3Config::Rope& rope,
                                             const at::Device& device) {
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor exponent = at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong).device(device))
                            .to(at::kFloat) / static_cast<double>(head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(rope.theta, exponent);
  if (rope.type == "linear") inv_freq = inv_freq / rope.factor;
  at::Tensor freqs = at::arange(t, f32).unsqueeze(1) * inv_freq.unsqueeze(0);  // [T, hd/2]
  at::Tensor emb = at::cat({freqs, freqs}, 1);
  return {emb.cos(), emb.sin()};
}

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({x.narrow(-1, half, half).neg(), x.narrow(-1, 0, half)}, -1);
}

}  // namespace

Result<Gemma3TextEncoder> Gemma3TextEncoder::load(const std::string& folder, at::ScalarType dtype,
                                                  const at::Device& device) {
  LTX_ASSIGN_OR_RETURN(auto config, load_gemma3_config((fs::path(folder) / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(folder));
  return from_checkpoint(config, ckpt, dtype, device);
}

Result<Gemma3TextEncoder> Gemma3TextEncoder::from_checkpoint(const Gemma3Config& config,
                                                             const SafetensorsCheckpoint& ckpt,
                                                             at::ScalarType dtype,
                                                             const at::Device& device) {
  if (dtype != at::kFloat && dtype != at::kBFloat16) {
    return invalid_argument_error(std::string("Gemma 3 runs in float32 or bfloat16 (float16 overflows), got ") +
                                  c10::toString(dtype));
  }
  // The text model's prefix: whatever precedes "layers.0.input_layernorm.weight".
  std::string prefix;
  bool found = false;
  const std::string anchor = "layers.0.input_layernorm.weight";
  for (const auto& n : ckpt.names()) {
    if (n.size() >= anchor.size() && n.compare(n.size() - anchor.size(), anchor.size(), anchor) == 0 &&
        n.find("vision") == std::string::npos) {
      prefix = n.substr(0, n.size() - anchor.size());
      found = true;
      break;
    }
  }
  if (!found) return invalid_argument_error(ckpt.source() + ": no Gemma 3 text layers (no tensor '*" + anchor + "')");
  NameMapper mapper = [prefix](const std::string& raw) -> std::optional<std::string> {
    if (raw.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
    return raw.substr(prefix.size());
  };
  LTX_ASSIGN_OR_RETURN(auto loaded, load_expected_tensors(ckpt, gemma3_expected_tensors(config), mapper,
                                                          "a " + std::to_string(config.num_hidden_layers) +
                                                              "-layer Gemma 3 text model",
                                                          dtype, device));
  Gemma3TextEncoder m;
  m.weights_ = tensors_of(loaded);
  m.config_ = config;
  m.dtype_ = dtype;
  m.device_ = device;
  m.embed_ = take_tensor(loaded, "embed_tokens.weight");
  m.final_norm_ = take_tensor(loaded, "norm.weight");
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    Layer l;
    l.q = LinearWeights::take(loaded, p + "self_attn.q_proj");
    l.k = LinearWeights::take(loaded, p + "self_attn.k_proj");
    l.v = LinearWeights::take(loaded, p + "self_attn.v_proj");
    l.o = LinearWeights::take(loaded, p + "self_attn.o_proj");
    l.q_norm = take_tensor(loaded, p + "self_attn.q_norm.weight");
    l.k_norm = take_tensor(loaded, p + "self_attn.k_norm.weight");
    l.input_norm = take_tensor(loaded, p + "input_layernorm.weight");
    l.post_attention_norm = take_tensor(loaded, p + "post_attention_layernorm.weight");
    l.pre_feedforward_norm = take_tensor(loaded, p + "pre_feedforward_layernorm.weight");
    l.post_feedforward_norm = take_tensor(loaded, p + "post_feedforward_layernorm.weight");
    l.gate = LinearWeights::take(loaded, p + "mlp.gate_proj");
    l.up = LinearWeights::take(loaded, p + "mlp.up_proj");
    l.down = LinearWeights::take(loaded, p + "mlp.down_proj");
    m.layers_.push_back(std::move(l));
  }
  LTX_INTERNAL_ASSERT(loaded.empty(), "Gemma 3 weights left over after assembling");
  return m;
}

at::Tensor Gemma3TextEncoder::norm(const at::Tensor& x, const at::Tensor& w) const {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + config_.rms_norm_eps);
  return (y * (1.0 + w.to(at::kFloat))).to(x.scalar_type());
}

Gemma3Output Gemma3TextEncoder::encode(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                       bool all_hidden_states) const {
  LTX_CHECK(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(),
            "input_ids and attention_mask must both be [B, T], got ", input_ids.sizes(), " and ",
            attention_mask.sizes());
  at::Tensor ids = input_ids.to(device_, at::kLong);
  LTX_CHECK(ids.numel() == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < config_.vocab_size),
            "token ids must be in [0, ", config_.vocab_size, ")");
  const int64_t b = ids.size(0), t = ids.size(1), hd = config_.head_dim;
  const int64_t hq = config_.num_attention_heads, hkv = config_.num_key_value_heads;

  // Embeddings times sqrt(D), the scale rounded to the weight dtype first.
  at::Tensor scale = at::scalar_tensor(std::sqrt(static_cast<double>(config_.hidden_size)),
                                       at::TensorOptions().dtype(dtype_).device(device_));
  at::Tensor h = at::embedding(embed_, ids) * scale;

  // Masks: causal + padding, and the window on sliding layers. Finite minimum,
  // so fully masked (pad) query rows stay finite.
  const float neg = std::numeric_limits<float>::lowest();
  at::Tensor pos = at::arange(t, at::TensorOptions().dtype(at::kLong).device(device_));
  at::Tensor causal = pos.unsqueeze(0) <= pos.unsqueeze(1);  // [q, k]
  at::Tensor window = causal & (pos.unsqueeze(1) - pos.unsqueeze(0) < config_.sliding_window);
  at::Tensor keys = attention_mask.to(device_).to(at::kBool).view({b, 1, 1, t});
  auto bias_of = [&](const at::Tensor& allowed) {
    return at::zeros({b, 1, t, t}, at::TensorOptions().dtype(at::kFloat).device(device_))
        .masked_fill_((allowed.view({1, 1, t, t}) & keys).logical_not(), neg);
  };
  const at::Tensor bias_full = bias_of(causal), bias_sliding = bias_of(window);
  auto [cos_full, sin_full] = rope_table(t, hd, config_.rope_full, device_);
  auto [cos_slide, sin_slide] = rope_table(t, hd, config_.rope_sliding, device_);
  const double scaling = 1.0 / std::sqrt(config_.query_pre_attn_scalar);

  Gemma3Output out;
  if (all_hidden_states) out.hidden_states.push_back(h);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& l = layers_[i];
    const bool sliding = config_.sliding_layers[i];
    const at::Tensor cos = (sliding ? cos_slide : cos_full).to(dtype_);
    const at::Tensor sin = (sliding ? sin_slide : sin_full).to(dtype_);

    at::Tensor a = norm(h, l.input_norm);
    at::Tensor q = norm(l.q(a).view({b, t, hq, hd}), l.q_norm).transpose(1, 2);  // [B, Hq, T, hd]
    at::Tensor k = norm(l.k(a).view({b, t, hkv, hd}), l.k_norm).transpose(1, 2);
    at::Tensor v = l.v(a).view({b, t, hkv, hd}).transpose(1, 2);
    q = q * cos + rotate_half(q) * sin;
    k = k * cos + rotate_half(k) * sin;
    if (hq != hkv) {
      k = k.repeat_interleave(hq / hkv, 1);
      v = v.repeat_interleave(hq / hkv, 1);
    }
    at::Tensor attn = compat::scaled_dot_product_attention(q, k, v, sliding ? bias_sliding : bias_full, scaling);
    attn = l.o(attn.transpose(1, 2).reshape({b, t, hq * hd}));
    h = h + norm(attn, l.post_attention_norm);

    at::Tensor m = norm(h, l.pre_feedforward_norm);
    m = l.down(at::gelu(l.gate(m), "tanh") * l.up(m));
    h = h + norm(m, l.post_feedforward_norm);
    if (all_hidden_states && i + 1 < layers_.size()) out.hidden_states.push_back(h);
  }
  out.last_hidden_state = norm(h, final_norm_);
  if (all_hidden_states) out.hidden_states.push_back(out.last_hidden_state);
  return out;
}

}  // namespace ltx::pipeline
