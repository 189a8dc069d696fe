// The CUDA implementation of RowOp (row_op.h): one block per row. The block
// reduces the row's sum of squares in fp32 (warp shuffles, then one value per
// warp in shared memory) and writes the row once. Compiled by nvcc without
// torch headers; fused_ops.cpp launches it on torch's current stream.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "ops/row_op.h"

namespace ltx::ops {
namespace {

constexpr int kThreads = 256;

template <typename T>
__device__ __forceinline__ float to_float(T v);
template <>
__device__ __forceinline__ float to_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <>
__device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16(v); }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half(v); }

// The normalized, weighted and modulated value of element j of the row.
template <typename T>
__device__ __forceinline__ float prepared(const RowOp& op, const T* xr, const T* scale, const T* shift,
                                          float inv, int64_t j) {
  float v = to_float(xr[j]) * inv;
  if (op.weight != nullptr) v *= to_float(static_cast<const T*>(op.weight)[j]);
  if (scale != nullptr) v = v * (1.0f + to_float(scale[j])) + to_float(shift[j]);
  return v;
}

template <typename T>
__global__ void row_op_kernel(RowOp op) {
  const int64_t r = blockIdx.x;
  const int64_t d = op.dim;
  const T* xr = static_cast<const T*>(op.x) + r * d;
  T* yr = static_cast<T*>(op.y) + r * d;
  const int64_t b = r / op.seq, p = r % op.seq;

  float inv = 1.0f;
  if (op.normalize) {
    float ss = 0.0f;
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      const float v = to_float(xr[j]);
      ss += v * v;
    }
    for (int offset = 16; offset > 0; offset /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, offset);
    __shared__ float partial[kThreads / 32];
    __shared__ float total;
    if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
      float sum = 0.0f;
      for (int w = 0; w < static_cast<int>(blockDim.x) / 32; ++w) sum += partial[w];
      total = sum;
    }
    __syncthreads();
    inv = rsqrtf(total / static_cast<float>(d) + op.eps);
  }

  const T* scale = nullptr;
  const T* shift = nullptr;
  if (op.scale != nullptr) {
    const int64_t m = b * op.mod_stride_b + p * op.mod_stride_n;
    scale = static_cast<const T*>(op.scale) + m;
    shift = static_cast<const T*>(op.shift) + m;
  }
  if (op.rope == RopeLayout::kNone) {
    for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
      yr[j] = from_float<T>(prepared(op, xr, scale, shift, inv, j));
    }
    return;
  }
  const float* c = op.cos + b * op.rope_stride_b + p * op.rope_stride_n;
  const float* s = op.sin + b * op.rope_stride_b + p * op.rope_stride_n;
  if (op.rope == RopeLayout::kInterleaved) {
    for (int64_t i = threadIdx.x; i < d / 2; i += blockDim.x) {
      const int64_t j = 2 * i;
      const float a = prepared(op, xr, scale, shift, inv, j);
      const float bb = prepared(op, xr, scale, shift, inv, j + 1);
      yr[j] = from_float<T>(a * c[j] - bb * s[j]);
      yr[j + 1] = from_float<T>(bb * c[j + 1] + a * s[j + 1]);
    }
    return;
  }
  const int64_t width = d / op.rope_heads, half = width / 2;
  for (int64_t t = threadIdx.x; t < d / 2; t += blockDim.x) {
    const int64_t h = t / half, i = t % half;
    const int64_t j1 = h * width + i, j2 = j1 + half;
    const float a = prepared(op, xr, scale, shift, inv, j1);
    const float bb = prepared(op, xr, scale, shift, inv, j2);
    yr[j1] = from_float<T>(a * c[t] - bb * s[t]);
    yr[j2] = from_float<T>(bb * c[t] + a * s[t]);
  }
}

}  // namespace

int run_row_op_cuda(const RowOp& op, void* stream) {
  if (op.rows == 0) return 0;
  const dim3 grid(static_cast<unsigned>(op.rows));
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  switch (op.dtype) {
    case RowDtype::kFloat:
      row_op_kernel<float><<<grid, kThreads, 0, s>>>(op);
      break;
    case RowDtype::kBFloat16:
      row_op_kernel<__nv_bfloat16><<<grid, kThreads, 0, s>>>(op);
      break;
    case RowDtype::kHalf:
      row_op_kernel<__half><<<grid, kThreads, 0, s>>>(op);
      break;
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace ltx::ops
