// Building blocks shared by the LTX-2 transformer and text connectors
// (internal to pipeline/ltx2): weightless RMS norm, GELU(tanh), the
// AdaLN-single timestep embedder and the LTX-2 attention projections
// (q/k RMS norm across heads, RoPE, per-head output gate). Stateless helpers
// over weights; no communication.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <utility>

#include "common/device_sync.h"
#include "ops/fused_ops.h"
#include "pipeline/io/weight_loader.h"
#include "pipeline/ltx2/ltx2_rope.h"
#include "pipeline/nn/embeddings.h"

namespace ltx::pipeline::ltx2 {

constexpr int64_t kTimestepChannels = 256;
constexpr const char* kDiffusionPrefix = "model.diffusion_model.";  // original single-file prefix


// Weightless RMS norm with fp32 statistics, result in x's dtype (fused: ops/).
inline at::Tensor rms(const at::Tensor& x, double eps) { return ops::rms_norm(x, std::nullopt, eps); }

inline at::Tensor gelu_tanh(const at::Tensor& x) { return at::gelu(x, "tanh"); }


struct AdaLnWeights {
  LinearWeights linear_1, linear_2, linear;
  // (modulation [B, n, rows*D], embedded timestep [B, n, D]) for t [B] or [B, n].
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& t, int64_t batch, at::ScalarType dtype,
                                               const at::Device& device) const {
    auto embed = [&](const at::Tensor& values) {
      at::Tensor e = linear_2(at::silu(linear_1(timestep_sinusoid(values, kTimestepChannels).to(dtype))));
      return std::make_pair(linear(at::silu(e)), e);
    };
    if (t.dim() <= 1) {  // one value per sample: embed them as they are (no host synchronization)
      auto [m, e] = embed(t.to(device).to(at::kFloat).reshape(-1));
      return {m.view({batch, -1, m.size(-1)}), e.view({batch, -1, e.size(-1)})};
    }
    // Per-token timesteps repeat a few values: embed each distinct one once,
    // found where the timesteps are (on the host: no device synchronisation).
    auto uniq = at::_unique2(t.to(at::kFloat).reshape(-1), /*sorted=*/true, /*return_inverse=*/true,
                             /*return_counts=*/false);
    at::Tensor inverse = to_device_async(std::get<1>(uniq).reshape(-1), device);
    auto [m, e] = embed(to_device_async(std::get<0>(uniq), device));
    m = m.index_select(0, inverse);
    e = e.index_select(0, inverse);
    return {m.view({batch, -1, m.size(-1)}), e.view({batch, -1, e.size(-1)})};
  }
  // Every projection row-exact (LinearWeights::exact_rows): the distinct
  // per-token timesteps of a shard are fewer rows than the whole sequence's.
  void set_exact_rows() { linear_1.exact_rows = linear_2.exact_rows = linear.exact_rows = true; }
  static AdaLnWeights take(std::map<std::string, at::Tensor>& w, const std::string& p) {
    return {LinearWeights::take(w, p + ".emb.timestep_embedder.linear_1"),
            LinearWeights::take(w, p + ".emb.timestep_embedder.linear_2"), LinearWeights::take(w, p + ".linear")};
  }
};

struct Ltx2AttentionWeights {
  LinearWeights to_q, to_k, to_v, to_out, to_gate;  // to_gate undefined unless gated
  at::Tensor norm_q, norm_k;
  int64_t heads = 0, head_dim = 0;
  double eps = 1e-6;

  at::Tensor query(const at::Tensor& x, const Ltx2Rope* rope) const {
    return rope != nullptr ? ltx2_norm_rope(to_q(x), norm_q, eps, *rope) : ops::rms_norm(to_q(x), norm_q, eps);
  }
  at::Tensor key(const at::Tensor& x, const Ltx2Rope* rope) const {
    return rope != nullptr ? ltx2_norm_rope(to_k(x), norm_k, eps, *rope) : ops::rms_norm(to_k(x), norm_k, eps);
  }
  at::Tensor value(const at::Tensor& x) const { return to_v(x); }
  at::Tensor split(const at::Tensor& x) const { return x.view({x.size(0), x.size(1), heads, head_dim}); }
  // Per-head gate (2.3) from the query input, then the output projection.
  at::Tensor finish(const at::Tensor& heads_out, const at::Tensor& query_input) const {
    const int64_t b = heads_out.size(0), s = heads_out.size(1);
    at::Tensor o = heads_out.reshape({b, s, heads, head_dim});
    if (to_gate.weight.defined()) o = o * (2.0 * at::sigmoid(to_gate(query_input))).unsqueeze(-1);
    return to_out(o.reshape({b, s, heads * head_dim}));
  }
  // Every projection row-exact (LinearWeights::exact_rows).
  void set_exact_rows() {
    for (LinearWeights* l : {&to_q, &to_k, &to_v, &to_out, &to_gate}) l->exact_rows = true;
  }
  static Ltx2AttentionWeights take(std::map<std::string, at::Tensor>& w, const std::string& p, int64_t heads,
                                   int64_t head_dim, double eps) {
    Ltx2AttentionWeights a;
    a.to_q = LinearWeights::take(w, p + ".to_q");
    a.to_k = LinearWeights::take(w, p + ".to_k");
    a.to_v = LinearWeights::take(w, p + ".to_v");
    a.to_out = LinearWeights::take(w, p + ".to_out.0");
    a.to_gate = LinearWeights::take(w, p + ".to_gate_logits");
    a.norm_q = take_tensor(w, p + ".norm_q.weight");
    a.norm_k = take_tensor(w, p + ".norm_k.weight");
    a.heads = heads;
    a.head_dim = head_dim;
    a.eps = eps;
    return a;
  }
};

}  // namespace ltx::pipeline::ltx2
