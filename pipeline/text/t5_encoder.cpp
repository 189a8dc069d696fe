#include "pipeline/text/t5_encoder.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/check.h"
#include "common/torch_compat.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

namespace {

std::vector<ExpectedTensor> expected(const T5Config& c) {
  const int64_t d = c.d_model, inner = c.num_heads * c.d_kv;
  std::vector<ExpectedTensor> out = {
      {"shared.weight", {c.vocab_size, d}},
      {"encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
       {c.relative_attention_num_buckets, c.num_heads}},
      {"encoder.final_layer_norm.weight", {d}}};
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
    for (const char* n : {"q", "k", "v"}) out.push_back({p + "0.SelfAttention." + n + ".weight", {inner, d}});
    out.push_back({p + "0.SelfAttention.o.weight", {d, inner}});
    out.push_back({p + "0.layer_norm.weight", {d}});
    out.push_back({p + "1.DenseReluDense.wi_0.weight", {c.d_ff, d}});
    out.push_back({p + "1.DenseReluDense.wi_1.weight", {c.d_ff, d}});
    out.push_back({p + "1.DenseReluDense.wo.weight", {d, c.d_ff}});
    out.push_back({p + "1.layer_norm.weight", {d}});
  }
  return out;
}

}  // namespace

at::Tensor T5Encoder::relative_position_buckets(int64_t t, int64_t num_buckets, int64_t max_distance,
                                                const at::Device& device) {
  auto i64 = at::TensorOptions().dtype(at::kLong).device(device);
  at::Tensor ctx = at::arange(t, i64).unsqueeze(1);
  at::Tensor mem = at::arange(t, i64).unsqueeze(0);
  at::Tensor rel = mem - ctx;  // key - query
  const int64_t half = num_buckets / 2;  // bidirectional: half the buckets per direction
  at::Tensor buckets = (rel > 0).to(at::kLong) * half;
  rel = rel.abs();
  const int64_t max_exact = half / 2;
  at::Tensor is_small = rel < max_exact;
  // Same fp32 operations as the reference, so no pair lands one bucket off.
  at::Tensor large = max_exact + (at::log(rel.to(at::kFloat) / static_cast<float>(max_exact)) /
                                  static_cast<float>(std::log(static_cast<double>(max_distance) / max_exact)) *
                                  static_cast<float>(half - max_exact))
                                     .to(at::kLong);
  large = at::clamp_max(large, half - 1);
  return buckets + at::where(is_small, rel, large);
}

Result<T5Encoder> T5Encoder::load(const std::string& folder, at::ScalarType dtype, const at::Device& device) {
  LTX_ASSIGN_OR_RETURN(auto config, load_t5_config((fs::path(folder) / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(folder));
  return from_checkpoint(config, ckpt, dtype, device);
}

Result<T5Encoder> T5Encoder::from_checkpoint(const T5Config& config, const SafetensorsCheckpoint& ckpt,
                                             at::ScalarType dtype, const at::Device& device) {
  if (dtype != at::kFloat && dtype != at::kBFloat16) {
    return invalid_argument_error(std::string("T5 runs in float32 or bfloat16 (float16 overflows), got ") +
                                  c10::toString(dtype));
  }
  const bool has_shared = ckpt.contains("shared.weight");
  NameMapper mapper = [has_shared](const std::string& raw) -> std::optional<std::string> {
    if (raw.rfind("decoder.", 0) == 0 || raw.rfind("lm_head.", 0) == 0) return std::nullopt;
    if (raw == "encoder.embed_tokens.weight") {
      // The tied copy of shared.weight; used only when shared.weight is absent.
      return has_shared ? std::nullopt : std::optional<std::string>("shared.weight");
    }
    return raw;
  };
  LTX_ASSIGN_OR_RETURN(auto loaded, load_expected_tensors(ckpt, expected(config), mapper,
                                                          "a " + std::to_string(config.num_layers) +
                                                              "-layer T5 encoder",
                                                          dtype, device));
  T5Encoder m;
  m.weights_ = tensors_of(loaded);
  m.config_ = config;
  m.dtype_ = dtype;
  m.device_ = device;
  m.embed_ = take_tensor(loaded, "shared.weight");
  m.relative_bias_ = take_tensor(loaded, "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight");
  m.final_norm_ = take_tensor(loaded, "encoder.final_layer_norm.weight");
  for (int64_t i = 0; i < config.num_layers; ++i) {
    const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
    Block b;
    b.q = LinearWeights::take(loaded, p + "0.SelfAttention.q");
    b.k = LinearWeights::take(loaded, p + "0.SelfAttention.k");
    b.v = LinearWeights::take(loaded, p + "0.SelfAttention.v");
    b.o = LinearWeights::take(loaded, p + "0.SelfAttention.o");
    b.attn_norm = take_tensor(loaded, p + "0.layer_norm.weight");
    b.wi_0 = LinearWeights::take(loaded, p + "1.DenseReluDense.wi_0");
    b.wi_1 = LinearWeights::take(loaded, p + "1.DenseReluDense.wi_1");
    b.wo = LinearWeights::take(loaded, p + "1.DenseReluDense.wo");
    b.ff_norm = take_tensor(loaded, p + "1.layer_norm.weight");
    m.blocks_.push_back(std::move(b));
  }
  LTX_INTERNAL_ASSERT(loaded.empty(), "T5 weights left over after assembling");
  return m;
}

at::Tensor T5Encoder::norm(const at::Tensor& x, const at::Tensor& w) const {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + config_.layer_norm_epsilon);
  return w * y.to(w.scalar_type());
}

at::Tensor T5Encoder::encode(const at::Tensor& input_ids, const at::Tensor& attention_mask, bool use_mask) const {
  LTX_CHECK(input_ids.dim() == 2 && attention_mask.sizes() == input_ids.sizes(),
            "input_ids and attention_mask must both be [B, T], got ", input_ids.sizes(), " and ",
            attention_mask.sizes());
  at::Tensor ids = input_ids.to(device_, at::kLong);
  LTX_CHECK(ids.numel() == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < config_.vocab_size),
            "token ids must be in [0, ", config_.vocab_size, ")");
  const int64_t b = ids.size(0), t = ids.size(1), heads = config_.num_heads, dk = config_.d_kv;
  at::Tensor h = at::embedding(embed_, ids);

  // Position bias [1, H, T, T] shared by every block, plus the key padding mask.
  at::Tensor buckets = relative_position_buckets(t, config_.relative_attention_num_buckets,
                                                 config_.relative_attention_max_distance, device_);
  at::Tensor bias = at::embedding(relative_bias_, buckets).permute({2, 0, 1}).unsqueeze(0).to(at::kFloat);
  if (use_mask) {
    at::Tensor pad = (1 - attention_mask.to(device_).to(at::kFloat)) * std::numeric_limits<float>::lowest();
    bias = bias + pad.view({b, 1, 1, t});
  }
  for (const Block& blk : blocks_) {
    at::Tensor a = norm(h, blk.attn_norm);
    at::Tensor q = blk.q(a).view({b, t, heads, dk}).transpose(1, 2);
    at::Tensor k = blk.k(a).view({b, t, heads, dk}).transpose(1, 2);
    at::Tensor v = blk.v(a).view({b, t, heads, dk}).transpose(1, 2);
    at::Tensor attn = compat::scaled_dot_product_attention(q, k, v, bias, /*scale=*/1.0);
    h = h + blk.o(attn.transpose(1, 2).reshape({b, t, heads * dk}));
    at::Tensor f = norm(h, blk.ff_norm);
    h = h + blk.wo(at::gelu(blk.wi_0(f), "tanh") * blk.wi_1(f));
  }
  return norm(h, final_norm_);
}

}  // namespace ltx::pipeline
