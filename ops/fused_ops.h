// Fused row-wise operations of the diffusion transformers' hot path.
//
// Each replaces a chain of eager ops (one kernel and one pass over memory
// each) by one pass that reads x once, computes in fp32 and rounds once:
// on CUDA the kernel of row_op_cuda.cu, on CPU the loop of row_op_cpu.cpp,
// elsewhere (or for a CUDA tensor in a build without the kernel) the unfused
// composition below. fused_ops_test compares each against its composition.
//
// Shapes: x is [..., S, D] (rows of D; S positions per sample; any leading
// dims are samples). Per-row tensors (scale, shift, RoPE tables) broadcast
// over samples and positions: [B|1, S|1, D]-like, last dim contiguous after
// .contiguous() on that dim. Outputs are new contiguous tensors of x's dtype.
// Stateless; safe from any thread.
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace ltx::ops {

// x * rsqrt(mean(x^2, -1) + eps) [* weight]: the RMSNorm of the transformers'
// q/k norms (weight) and of the blocks' norms (no weight, elementwise_affine
// false). Statistics in fp32.
at::Tensor rms_norm(const at::Tensor& x, const std::optional<at::Tensor>& weight, double eps);

// rms_norm(x) * (1 + scale) + shift: the adaLN modulation before attention and
// feed-forward. scale/shift broadcast to x ([B, 1, D] per sample or [B, S, D]
// per token; strided views such as unbind's are read in place).
at::Tensor rms_norm_modulate(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift,
                             double eps);

// RoPE tables: fp32 cos/sin broadcasting to [B, S, W] with W = D for the
// interleaved layout and W = D / 2 for the split layout (each of `heads`
// heads rotates its halves).
struct Rope {
  at::Tensor cos;
  at::Tensor sin;
  bool split = false;
  int64_t heads = 1;
};

// RoPE of x. With `norm_weight`, first rms_norm(x, weight, eps): the q/k path
// of a self-attention (norm, weight, rotate) in one pass.
at::Tensor rope(const at::Tensor& x, const Rope& rope);
at::Tensor rms_norm_rope(const at::Tensor& x, const at::Tensor& norm_weight, double eps,
                         const Rope& rope);

// The unfused compositions, exactly as eager code writes them (each op rounds
// to x's dtype): the reference of the tests and the fallback.
namespace unfused {
at::Tensor rms_norm(const at::Tensor& x, const std::optional<at::Tensor>& weight, double eps);
at::Tensor rms_norm_modulate(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift,
                             double eps);
at::Tensor rope(const at::Tensor& x, const Rope& rope);
at::Tensor rms_norm_rope(const at::Tensor& x, const at::Tensor& norm_weight, double eps,
                         const Rope& rope);
}  // namespace unfused

// Whether fused kernels serve tensors of this device in this build (CPU:
// always; CUDA: when the kernels and torch's CUDA were both built).
bool has_fused_kernel(const at::Device& device);

}  // namespace ltx::ops
