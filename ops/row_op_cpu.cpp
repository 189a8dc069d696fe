#include "ops/row_op.h"

#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <cmath>
#include <vector>

namespace ltx::ops {
namespace {

template <typename T>
float load(const void* p, int64_t i) {
  return static_cast<float>(static_cast<const T*>(p)[i]);
}

template <typename T>
void run_rows(const RowOp& op, int64_t begin, int64_t end) {
  const int64_t d = op.dim;
  std::vector<float> n(static_cast<size_t>(d));
  const T* x = static_cast<const T*>(op.x);
  T* y = static_cast<T*>(op.y);
  for (int64_t r = begin; r < end; ++r) {
    const T* xr = x + r * d;
    const int64_t b = r / op.seq, p = r % op.seq;
    float inv = 1.0f;
    if (op.normalize) {
      double ss = 0;  // fp64 accumulation: exact to well below fp32 rounding
      for (int64_t j = 0; j < d; ++j) {
        const double v = static_cast<float>(xr[j]);
        ss += v * v;
      }
      inv = 1.0f / std::sqrt(static_cast<float>(ss / static_cast<double>(d)) + op.eps);
    }
    for (int64_t j = 0; j < d; ++j) {
      float v = static_cast<float>(xr[j]) * inv;
      if (op.weight != nullptr) v *= load<T>(op.weight, j);
      n[static_cast<size_t>(j)] = v;
    }
    if (op.scale != nullptr) {
      const int64_t m = b * op.mod_stride_b + p * op.mod_stride_n;
      for (int64_t j = 0; j < d; ++j) {
        n[static_cast<size_t>(j)] = n[static_cast<size_t>(j)] * (1.0f + load<T>(op.scale, m + j)) +
                                    load<T>(op.shift, m + j);
      }
    }
    T* yr = y + r * d;
    if (op.rope == RopeLayout::kNone) {
      for (int64_t j = 0; j < d; ++j) yr[j] = static_cast<T>(n[static_cast<size_t>(j)]);
      continue;
    }
    const float* c = op.cos + b * op.rope_stride_b + p * op.rope_stride_n;
    const float* s = op.sin + b * op.rope_stride_b + p * op.rope_stride_n;
    if (op.rope == RopeLayout::kInterleaved) {
      for (int64_t j = 0; j < d; j += 2) {
        const float a = n[static_cast<size_t>(j)], bb = n[static_cast<size_t>(j + 1)];
        yr[j] = static_cast<T>(a * c[j] - bb * s[j]);
        yr[j + 1] = static_cast<T>(bb * c[j + 1] + a * s[j + 1]);
      }
    } else {
      const int64_t width = d / op.rope_heads, half = width / 2;
      for (int64_t h = 0; h < op.rope_heads; ++h) {
        for (int64_t i = 0; i < half; ++i) {
          const int64_t j1 = h * width + i, j2 = j1 + half, t = h * half + i;
          const float a = n[static_cast<size_t>(j1)], bb = n[static_cast<size_t>(j2)];
          yr[j1] = static_cast<T>(a * c[t] - bb * s[t]);
          yr[j2] = static_cast<T>(bb * c[t] + a * s[t]);
        }
      }
    }
  }
}

}  // namespace

void run_row_op_cpu(const RowOp& op) {
  // Rows are independent; a grain of a few rows keeps small calls on one thread.
  const int64_t grain = op.dim >= 1024 ? 4 : 64;
  at::parallel_for(0, op.rows, grain, [&](int64_t begin, int64_t end) {
    switch (op.dtype) {
      case RowDtype::kFloat:
        run_rows<float>(op, begin, end);
        break;
      case RowDtype::kBFloat16:
        run_rows<c10::BFloat16>(op, begin, end);
        break;
      case RowDtype::kHalf:
        run_rows<c10::Half>(op, begin, end);
        break;
    }
  });
}

}  // namespace ltx::ops
