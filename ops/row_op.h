// RowOp: the one fused row-wise kernel behind ops/fused_ops.h, described as
// plain data so that the CPU loop (row_op_cpu.cpp) and the CUDA kernel
// (row_op_cuda.cu, compiled by nvcc without torch headers) read the same
// description.
//
// For every row r of x ([rows, dim], contiguous) it computes, in fp32:
//   n = normalize ? x * rsqrt(mean(x^2) + eps) : x     (statistics in fp32)
//   n = weight ? n * weight : n                          (weight [dim])
//   n = scale ? n * (1 + scale[row]) + shift[row] : n    (adaLN modulate)
//   y = cos ? n * cos[row] + rotate(n) * sin[row] : n    (RoPE)
// and writes y in x's dtype: one read of x, one write of y, one rounding.
// Row r is (sample r / seq, position r % seq); scale/shift/cos/sin rows are
// found by their sample and position strides (0 broadcasts).
#pragma once

#include <cstdint>

namespace ltx::ops {

enum class RowDtype : int { kFloat = 0, kBFloat16 = 1, kHalf = 2 };

// Interleaved: pairs (2i, 2i+1), the table is as wide as x (LTX-Video, LTX-2
// "interleaved"). Split: each head's first and second halves pair up (i, i+r)
// and the table holds heads * r angles (LTX-2 "split").
enum class RopeLayout : int { kNone = 0, kInterleaved = 1, kSplit = 2 };

struct RowOp {
  RowDtype dtype = RowDtype::kFloat;  // of x, y, weight, scale, shift
  const void* x = nullptr;
  void* y = nullptr;
  int64_t rows = 0;
  int64_t dim = 0;
  int64_t seq = 1;  // positions per sample: row r = (r / seq, r % seq)

  bool normalize = false;
  float eps = 1e-6f;
  const void* weight = nullptr;  // [dim] or null

  const void* scale = nullptr;  // null: no modulation
  const void* shift = nullptr;  // required with scale
  int64_t mod_stride_b = 0, mod_stride_n = 0;  // elements; last dim contiguous

  RopeLayout rope = RopeLayout::kNone;
  const float* cos = nullptr;  // fp32 tables
  const float* sin = nullptr;
  int64_t rope_stride_b = 0, rope_stride_n = 0;
  int64_t rope_heads = 1;  // split layout only
};

// The CPU implementation (any thread count; each row is computed by one
// thread in a fixed order, so results do not depend on how rows are split).
void run_row_op_cpu(const RowOp& op);

#ifdef LTX_OPS_CUDA_KERNELS
// The CUDA implementation on `stream` (a cudaStream_t). Returns the launch's
// cudaError_t as int (0 = success).
int run_row_op_cuda(const RowOp& op, void* stream);
#endif

}  // namespace ltx::ops
