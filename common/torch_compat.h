// The differences between the libtorch versions we build against, in one place.
//
// Debian ships libtorch 1.13; users also build against libtorch 2.x from a
// PyTorch install. Code elsewhere calls ltx::compat:: instead of testing
// TORCH_VERSION_* itself. Stateless; safe from any thread.
#pragma once

#include <ATen/ATen.h>
#include <c10/util/Optional.h>
#include <torch/version.h>

#include <cmath>
#include <optional>

#define LTX_TORCH_VERSION_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||              \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace ltx::compat {

// scaled_dot_product_attention with an explicit scale exists from 2.1.
constexpr bool kHasFusedSdpa = LTX_TORCH_VERSION_AT_LEAST(2, 1);

// Attention over the last two dims: softmax(q k^T * scale + bias) v.
// q [..., Lq, D], k/v [..., Lk, D]; bias (optional) broadcasts to [..., Lq, Lk]
// and is additive (use -inf or a large negative number to mask).
// On libtorch >= 2.1 this is at::scaled_dot_product_attention (flash or
// memory-efficient kernels on GPU); otherwise the exact math path, whose
// softmax runs in fp32 for reduced-precision inputs, as the fused kernels do.
inline at::Tensor scaled_dot_product_attention(const at::Tensor& q, const at::Tensor& k,
                                               const at::Tensor& v,
                                               const std::optional<at::Tensor>& bias,
                                               double scale) {
#if LTX_TORCH_VERSION_AT_LEAST(2, 1)
  c10::optional<at::Tensor> mask;
  if (bias.has_value()) mask = bias->to(q.scalar_type());
  return at::scaled_dot_product_attention(q, k, v, mask, /*dropout_p=*/0.0, /*is_causal=*/false,
                                          scale);
#else
  const bool reduced = q.scalar_type() == at::kBFloat16 || q.scalar_type() == at::kHalf;
  at::Tensor scores = at::matmul(q, k.transpose(-2, -1));
  if (reduced) scores = scores.to(at::kFloat);
  scores.mul_(scale);
  if (bias.has_value()) scores.add_(bias->to(scores.scalar_type()));
  at::Tensor probs = at::softmax(scores, -1);
  if (reduced) probs = probs.to(q.scalar_type());
  return at::matmul(probs, v);
#endif
}

// Safetensors dtypes that this libtorch cannot represent as a tensor.
constexpr bool kHasFloat8 = LTX_TORCH_VERSION_AT_LEAST(2, 1);
constexpr bool kHasUnsigned16to64 = LTX_TORCH_VERSION_AT_LEAST(2, 3);

}  // namespace ltx::compat
