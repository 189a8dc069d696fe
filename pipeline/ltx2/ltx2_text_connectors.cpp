#include "pipeline/ltx2/ltx2_text_connectors.h"

#include <cmath>
#include <filesystem>
#include <limits>

#include "common/check.h"
#include "parallel/ulysses_attention.h"
#include "pipeline/ltx2/ltx2_layers.h"
#include "pipeline/ltx2/ltx2_rope.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;
using ltx2::Ltx2AttentionWeights;
using ltx2::gelu_tanh;
using ltx2::rms;

namespace {

constexpr double kEps = 1e-6;

struct ConnectorBlock {
  Ltx2AttentionWeights attn;
  LinearWeights ff_in, ff_out;
};

struct Connector {
  Ltx2ConnectorConfig config;
  at::Tensor registers;  // [R, D] or undefined
  std::vector<ConnectorBlock> blocks;
};

}  // namespace

struct Ltx2TextConnectors::Weights {
  LinearWeights text_proj_in;                         // 2.0
  LinearWeights video_text_proj_in, audio_text_proj_in;  // 2.3
  Connector video, audio;
};

std::optional<std::string> Ltx2TextConnectors::canonical_name(const std::string& raw) {
  std::string n = raw;
  if (starts_with(n, ltx2::kDiffusionPrefix)) {
    n = n.substr(std::string(ltx2::kDiffusionPrefix).size());
    if (!starts_with(n, "video_embeddings_connector.") && !starts_with(n, "audio_embeddings_connector.")) {
      return std::nullopt;  // the transformer's
    }
  }
  if (starts_with(n, "text_embedding_projection.")) {
    n = n.substr(std::string("text_embedding_projection.").size());
    if (starts_with(n, "aggregate_embed.")) return "text_proj_in." + n.substr(16);
    if (starts_with(n, "video_aggregate_embed.")) return "video_text_proj_in." + n.substr(22);
    if (starts_with(n, "audio_aggregate_embed.")) return "audio_text_proj_in." + n.substr(22);
    return std::nullopt;
  }
  if (starts_with(n, "video_embeddings_connector.")) n = "video_connector." + n.substr(27);
  if (starts_with(n, "audio_embeddings_connector.")) n = "audio_connector." + n.substr(27);
  if (!starts_with(n, "video_connector.") && !starts_with(n, "audio_connector.") &&
      !starts_with(n, "text_proj_in.") && !starts_with(n, "video_text_proj_in.") &&
      !starts_with(n, "audio_text_proj_in.")) {
    return std::nullopt;
  }
  replace_all(&n, ".transformer_1d_blocks.", ".transformer_blocks.");
  replace_all(&n, ".q_norm.", ".norm_q.");
  replace_all(&n, ".k_norm.", ".norm_k.");
  return n;
}

std::vector<ExpectedTensor> Ltx2TextConnectors::expected_tensors(const Ltx2ConnectorsConfig& c) {
  std::vector<ExpectedTensor> out;
  auto linear = [&out](const std::string& name, int64_t o, int64_t i, bool bias) {
    out.push_back({name + ".weight", {o, i}});
    if (bias) out.push_back({name + ".bias", {o}});
  };
  if (c.per_modality_projections) {
    linear("video_text_proj_in", c.video_hidden_dim, c.feature_dim(), c.proj_bias);
    linear("audio_text_proj_in", c.audio_hidden_dim, c.feature_dim(), c.proj_bias);
  } else {
    linear("text_proj_in", c.caption_channels, c.feature_dim(), c.proj_bias);
  }
  for (auto [name, conn] : {std::pair<std::string, const Ltx2ConnectorConfig*>{"video_connector", &c.video},
                            std::pair<std::string, const Ltx2ConnectorConfig*>{"audio_connector", &c.audio}}) {
    const int64_t d = conn->inner_dim();
    if (conn->num_learnable_registers > 0) out.push_back({name + ".learnable_registers", {conn->num_learnable_registers, d}});
    for (int64_t i = 0; i < conn->num_layers; ++i) {
      const std::string b = name + ".transformer_blocks." + std::to_string(i) + ".";
      for (const char* p : {"to_q", "to_k", "to_v", "to_out.0"}) linear(b + "attn1." + p, d, d, true);
      out.push_back({b + "attn1.norm_q.weight", {d}});
      out.push_back({b + "attn1.norm_k.weight", {d}});
      if (conn->gated_attn) linear(b + "attn1.to_gate_logits", conn->num_attention_heads, d, true);
      linear(b + "ff.net.0.proj", 4 * d, d, true);
      linear(b + "ff.net.2", d, 4 * d, true);
    }
  }
  return out;
}

Ltx2TextConnectors::Ltx2TextConnectors(Ltx2ConnectorsConfig config, std::shared_ptr<const Weights> weights,
                                       at::ScalarType dtype, at::Device device)
    : config_(std::move(config)), w_(std::move(weights)), dtype_(dtype), device_(device) {}

Result<Ltx2TextConnectors> Ltx2TextConnectors::from_checkpoint(const Ltx2ConnectorsConfig& c,
                                                               const SafetensorsCheckpoint& ckpt,
                                                               at::ScalarType dtype, const at::Device& device) {
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) {
    return invalid_argument_error(std::string("connector dtype must be float32, bfloat16 or float16, got ") +
                                  c10::toString(dtype));
  }
  LTX_ASSIGN_OR_RETURN(auto loaded, load_expected_tensors(ckpt, expected_tensors(c), canonical_name,
                                                          "LTX-" + c.variant() + " text connectors", dtype, device));
  std::vector<at::Tensor> all = tensors_of(loaded);
  auto w = std::make_shared<Weights>();
  if (c.per_modality_projections) {
    w->video_text_proj_in = LinearWeights::take(loaded, "video_text_proj_in");
    w->audio_text_proj_in = LinearWeights::take(loaded, "audio_text_proj_in");
  } else {
    w->text_proj_in = LinearWeights::take(loaded, "text_proj_in");
  }
  for (auto [name, conn, cfg] : {std::tuple<std::string, Connector*, const Ltx2ConnectorConfig*>{"video_connector", &w->video, &c.video},
                                 std::tuple<std::string, Connector*, const Ltx2ConnectorConfig*>{"audio_connector", &w->audio, &c.audio}}) {
    conn->config = *cfg;
    conn->registers = take_tensor(loaded, name + ".learnable_registers");
    for (int64_t i = 0; i < cfg->num_layers; ++i) {
      const std::string b = name + ".transformer_blocks." + std::to_string(i) + ".";
      ConnectorBlock blk;
      blk.attn = Ltx2AttentionWeights::take(loaded, b + "attn1", cfg->num_attention_heads, cfg->attention_head_dim, kEps);
      blk.ff_in = LinearWeights::take(loaded, b + "ff.net.0.proj");
      blk.ff_out = LinearWeights::take(loaded, b + "ff.net.2");
      conn->blocks.push_back(std::move(blk));
    }
  }
  if (!loaded.empty()) {
    return internal_error("tensor '" + loaded.begin()->first + "' left over after assembling the connectors");
  }
  Ltx2TextConnectors t(c, std::move(w), dtype, device);
  t.weights_ = std::move(all);
  return t;
}

Result<Ltx2TextConnectors> Ltx2TextConnectors::load(const std::string& path, at::ScalarType dtype,
                                                    const at::Device& device) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    LTX_ASSIGN_OR_RETURN(auto config, load_ltx2_connectors_config((fs::path(path) / "config.json").string()));
    LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
    return from_checkpoint(config, ckpt, dtype, device);
  }
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
  Ltx2ConnectorsConfig config;
  auto meta = ckpt.metadata().find("config");
  if (meta != ckpt.metadata().end()) {
    LTX_ASSIGN_OR_RETURN(auto configs, parse_ltx2_original_config(meta->second, path));
    config = configs.connectors;
  } else {
    std::map<std::string, std::vector<int64_t>> shapes;
    for (const auto& n : ckpt.names()) shapes[n] = ckpt.find(n)->shape;
    LTX_ASSIGN_OR_RETURN(auto configs, infer_ltx2_original_config(shapes, path));
    config = configs.connectors;
  }
  // The number of stacked hidden states is the text projection's input width
  // over the Gemma width (49 for Gemma 3 12B).
  const std::string proj = std::string("text_embedding_projection.") +
                           (config.per_modality_projections ? "video_aggregate_embed.weight" : "aggregate_embed.weight");
  const SafetensorsEntry* e = ckpt.find(proj);
  if (e == nullptr) return invalid_argument_error(path + ": missing tensor '" + proj + "' (the text projection)");
  if (e->shape.size() != 2 || e->shape[1] % config.caption_channels != 0) {
    return invalid_argument_error(path + ": tensor '" + proj + "' must be [out, " +
                                  std::to_string(config.caption_channels) + " x hidden states]");
  }
  config.text_proj_in_factor = e->shape[1] / config.caption_channels;
  return from_checkpoint(config, ckpt, dtype, device);
}

namespace {

// One connector over [B, L, D] with the additive mask [B, 1, 1, L].
std::pair<at::Tensor, at::Tensor> run_connector(const Connector& conn, const Ltx2ConnectorsConfig& c,
                                                at::Tensor h, at::Tensor additive_mask) {
  const int64_t b = h.size(0), l = h.size(1);
  if (conn.registers.defined()) {
    const int64_t r = conn.registers.size(0);
    LTX_CHECK(l % r == 0, "the text length ", l, " must be a multiple of the connector's ", r, " registers");
    at::Tensor registers = conn.registers.repeat({l / r, 1});  // [L, D], position p -> register p mod R
    at::Tensor binary = (additive_mask.view({b, l}) >= -9000.0).to(at::kLong);
    at::Tensor order = std::get<1>(at::sort(1 - binary, /*stable=*/true, /*dim=*/1, /*descending=*/false));
    at::Tensor front = at::gather(h, 1, order.unsqueeze(-1).expand({b, l, h.size(2)}));
    at::Tensor valid = binary.sum(1, /*keepdim=*/true);
    at::Tensor front_mask = (at::arange(l, binary.options()).unsqueeze(0) < valid).unsqueeze(-1);
    h = at::where(front_mask, front, registers.unsqueeze(0).expand({b, l, h.size(2)}).to(h.scalar_type()));
    additive_mask = at::zeros_like(additive_mask);
  }
  Ltx2RopeSpec spec;
  spec.dim = conn.config.inner_dim();
  spec.heads = conn.config.num_attention_heads;
  spec.max_pos = {c.rope_base_seq_len};
  spec.theta = c.rope_theta;
  spec.double_precision = c.rope_double_precision;
  spec.layout = c.rope_layout;
  at::Tensor positions = at::arange(l, at::TensorOptions().dtype(at::kFloat)).view({1, 1, l}).expand({b, 1, l});
  Ltx2Rope rope = ltx2_rope(positions, spec, h.device());
  parallel::AttentionOptions options;
  options.bias = additive_mask;
  for (const ConnectorBlock& blk : conn.blocks) {
    at::Tensor x = rms(h, kEps);
    const Ltx2AttentionWeights& a = blk.attn;
    at::Tensor o = parallel::reference_attention(a.split(a.query(x, &rope)), a.split(a.key(x, &rope)),
                                                 a.split(a.value(x)), options);
    h = h + a.finish(o, x);
    h = h + blk.ff_out(gelu_tanh(blk.ff_in(rms(h, kEps))));
  }
  return {rms(h, kEps), additive_mask};
}

}  // namespace

Ltx2TextConnectors::Output Ltx2TextConnectors::forward(const at::Tensor& hidden_states, const at::Tensor& mask,
                                                       bool left_padding, double scale_factor) const {
  const Ltx2ConnectorsConfig& c = config_;
  LTX_CHECK((hidden_states.dim() == 3 && hidden_states.size(2) == c.feature_dim()) ||
                (hidden_states.dim() == 4 && hidden_states.size(2) == c.caption_channels &&
                 hidden_states.size(3) == c.text_proj_in_factor),
            "text encoder hidden states must be [B, L, ", c.feature_dim(), "] or [B, L, ", c.caption_channels, ", ",
            c.text_proj_in_factor, "], got ", hidden_states.sizes());
  const int64_t b = hidden_states.size(0), l = hidden_states.size(1), ch = c.caption_channels;
  LTX_CHECK(mask.dim() == 2 && mask.size(0) == b && mask.size(1) == l, "text mask must be [B, L] = [", b, ", ", l,
            "], got ", mask.sizes());
  at::Tensor x = hidden_states.to(device_).view({b, l, ch, c.text_proj_in_factor});
  at::Tensor m = mask.to(device_).to(at::kLong);
  at::Tensor video_in, audio_in;
  if (c.per_modality_projections) {
    x = x.to(dtype_);
    at::Tensor y = x * at::rsqrt(x.pow(2).mean(2, /*keepdim=*/true) + kEps);
    y = at::where(m.to(at::kBool).view({b, l, 1}), y.flatten(2), at::zeros({}, y.options()));
    video_in = w_->video_text_proj_in(y * std::sqrt(static_cast<double>(c.video_hidden_dim) / ch));
    audio_in = w_->audio_text_proj_in(y * std::sqrt(static_cast<double>(c.audio_hidden_dim) / ch));
  } else {
    const at::ScalarType in_type = x.scalar_type();
    at::Tensor lengths = m.sum(-1);
    at::Tensor index = at::arange(l, m.options()).unsqueeze(0);
    at::Tensor valid = left_padding ? index >= (l - lengths).unsqueeze(1) : index < lengths.unsqueeze(1);
    at::Tensor v4 = valid.view({b, l, 1, 1});
    at::Tensor sum = x.masked_fill(v4.logical_not(), 0.0).sum({1, 2}, /*keepdim=*/true);
    at::Tensor mean = sum / ((lengths * ch).view({b, 1, 1, 1}) + kEps);
    at::Tensor lo = x.masked_fill(v4.logical_not(), std::numeric_limits<double>::infinity()).amin({1, 2}, true);
    at::Tensor hi = x.masked_fill(v4.logical_not(), -std::numeric_limits<double>::infinity()).amax({1, 2}, true);
    at::Tensor y = (x - mean) / (hi - lo + kEps) * scale_factor;
    y = y.flatten(2).masked_fill(valid.view({b, l, 1}).logical_not(), 0.0).to(in_type);
    video_in = audio_in = w_->text_proj_in(y.to(dtype_));
  }
  const at::ScalarType text_type = video_in.scalar_type();
  const double big = text_type == at::kBFloat16 ? 3.3895313892515355e38
                     : text_type == at::kHalf   ? 65504.0
                                                : static_cast<double>(std::numeric_limits<float>::max());
  at::Tensor additive = ((m - 1).to(text_type) * big).view({b, 1, 1, l});
  auto [video, video_mask] = run_connector(w_->video, c, video_in, additive);
  at::Tensor binary = (video_mask < 1e-6).to(at::kLong).view({b, l});
  video = video * binary.view({b, l, 1}).to(video.scalar_type());
  auto audio = run_connector(w_->audio, c, audio_in, additive).first;
  return {video, audio, binary};
}

}  // namespace ltx::pipeline
