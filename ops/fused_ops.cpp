#include "ops/fused_ops.h"

#include <vector>

#include "common/check.h"
#include "ops/row_op.h"

#if defined(LTX_OPS_CUDA_KERNELS) && defined(LTX_TORCH_HAS_CUDA)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define LTX_OPS_CUDA_DISPATCH 1
#endif

namespace ltx::ops {
namespace {

std::optional<RowDtype> row_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return RowDtype::kFloat;
    case at::kBFloat16:
      return RowDtype::kBFloat16;
    case at::kHalf:
      return RowDtype::kHalf;
    default:
      return std::nullopt;
  }
}

// A per-row tensor broadcast to [B, S, W] (B samples of S positions), cast to
// `dtype` with a contiguous last dim. Returns it with its sample and position
// strides (0 where broadcast).
struct RowTable {
  at::Tensor t;
  int64_t stride_b = 0, stride_n = 0;
};

RowTable row_table(const at::Tensor& table, int64_t samples, int64_t seq, int64_t width,
                   at::ScalarType dtype, const at::Device& device, const char* what) {
  at::Tensor t = table.to(device, dtype);
  LTX_CHECK(t.dim() >= 1 && t.size(-1) == width, what, " must end in ", width, ", got ", table.sizes());
  if (t.stride(-1) != 1) t = t.contiguous();
  while (t.dim() < 3) t = t.unsqueeze(0);
  if (t.dim() > 3) {  // [..., S, W]: fold the sample dims (they must merge as a view)
    std::vector<int64_t> sizes{-1, t.size(-2), width};
    t = t.reshape(sizes);
  }
  LTX_CHECK((t.size(0) == samples || t.size(0) == 1) && (t.size(1) == seq || t.size(1) == 1), what,
            " ", table.sizes(), " does not broadcast to [", samples, ", ", seq, ", ", width, "]");
  RowTable r;
  r.stride_b = t.size(0) == 1 ? 0 : t.stride(0);
  r.stride_n = t.size(1) == 1 ? 0 : t.stride(1);
  r.t = t;
  return r;
}

bool fused_here(const at::Tensor& x) {
  return row_dtype(x.scalar_type()).has_value() && has_fused_kernel(x.device()) && x.dim() >= 1 &&
         x.numel() > 0;
}

// Shapes of x as (samples, seq, dim).
void row_shape(const at::Tensor& x, int64_t* samples, int64_t* seq, int64_t* dim) {
  *dim = x.size(-1);
  *seq = x.dim() >= 2 ? x.size(-2) : 1;
  *samples = *dim * *seq == 0 ? 0 : x.numel() / (*dim * *seq);
}

void run(RowOp& op, const at::Tensor& x) {
  if (x.is_cpu()) {
    run_row_op_cpu(op);
    return;
  }
#ifdef LTX_OPS_CUDA_DISPATCH
  c10::cuda::CUDAGuard guard(x.device());  // the launch goes to x's GPU
  const int err = run_row_op_cuda(op, c10::cuda::getCurrentCUDAStream(x.device().index()).stream());
  LTX_CHECK(err == 0, "fused row kernel launch failed (cudaError ", err, ")");
#else
  LTX_CHECK(false, "no fused kernel for ", x.device(), " in this build");
#endif
}

struct Prepared {
  RowOp op;
  at::Tensor x, y;
  std::vector<at::Tensor> keep;  // tables converted for the call
};

Prepared prepare(const at::Tensor& input) {
  Prepared p;
  p.x = input.contiguous();
  p.y = at::empty_like(p.x, p.x.options().memory_format(at::MemoryFormat::Contiguous));
  int64_t samples = 0, seq = 0, dim = 0;
  row_shape(p.x, &samples, &seq, &dim);
  p.op.dtype = *row_dtype(p.x.scalar_type());
  p.op.x = p.x.data_ptr();
  p.op.y = p.y.data_ptr();
  p.op.rows = samples * seq;
  p.op.dim = dim;
  p.op.seq = seq;
  return p;
}

void add_norm(Prepared& p, const std::optional<at::Tensor>& weight, double eps) {
  p.op.normalize = true;
  p.op.eps = static_cast<float>(eps);
  if (weight.has_value()) {
    at::Tensor w = weight->to(p.x.device(), p.x.scalar_type()).contiguous();
    LTX_CHECK(w.numel() == p.op.dim, "norm weight has ", w.numel(), " values for rows of ", p.op.dim);
    p.op.weight = w.data_ptr();
    p.keep.push_back(w);
  }
}

void add_rope(Prepared& p, const Rope& rope) {
  const int64_t samples = p.op.seq == 0 ? 0 : p.op.rows / p.op.seq;
  LTX_CHECK(p.op.dim % 2 == 0, "RoPE needs an even width, got ", p.op.dim);
  int64_t width = p.op.dim;
  if (rope.split) {
    LTX_CHECK(rope.heads >= 1 && p.op.dim % (2 * rope.heads) == 0, "split RoPE over ", rope.heads,
              " heads does not divide the width ", p.op.dim);
    width = p.op.dim / 2;
  }
  RowTable c = row_table(rope.cos, samples, p.op.seq, width, at::kFloat, p.x.device(), "RoPE cos");
  RowTable s = row_table(rope.sin, samples, p.op.seq, width, at::kFloat, p.x.device(), "RoPE sin");
  LTX_CHECK(c.stride_b == s.stride_b && c.stride_n == s.stride_n && c.t.sizes() == s.t.sizes(),
            "RoPE cos ", rope.cos.sizes(), " and sin ", rope.sin.sizes(), " differ");
  p.op.rope = rope.split ? RopeLayout::kSplit : RopeLayout::kInterleaved;
  p.op.rope_heads = rope.split ? rope.heads : 1;
  p.op.cos = c.t.data_ptr<float>();
  p.op.sin = s.t.data_ptr<float>();
  p.op.rope_stride_b = c.stride_b;
  p.op.rope_stride_n = c.stride_n;
  p.keep.push_back(c.t);
  p.keep.push_back(s.t);
}

at::Tensor finish(Prepared& p, const at::Tensor& input) {
  run(p.op, p.x);
  return p.y.view(input.sizes());
}

}  // namespace

bool has_fused_kernel(const at::Device& device) {
  if (device.is_cpu()) return true;
#ifdef LTX_OPS_CUDA_DISPATCH
  return device.is_cuda();
#else
  return false;
#endif
}

at::Tensor rms_norm(const at::Tensor& x, const std::optional<at::Tensor>& weight, double eps) {
  if (!fused_here(x)) return unfused::rms_norm(x, weight, eps);
  Prepared p = prepare(x);
  add_norm(p, weight, eps);
  return finish(p, x);
}

at::Tensor rms_norm_modulate(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift,
                             double eps) {
  if (!fused_here(x)) return unfused::rms_norm_modulate(x, scale, shift, eps);
  Prepared p = prepare(x);
  add_norm(p, std::nullopt, eps);
  const int64_t samples = p.op.seq == 0 ? 0 : p.op.rows / p.op.seq;
  RowTable sc = row_table(scale, samples, p.op.seq, p.op.dim, p.x.scalar_type(), p.x.device(), "scale");
  RowTable sh = row_table(shift, samples, p.op.seq, p.op.dim, p.x.scalar_type(), p.x.device(), "shift");
  if (sc.stride_b != sh.stride_b || sc.stride_n != sh.stride_n) {
    // Different layouts (one per token, one per sample, say): give both the
    // full [B, S, D] layout.
    for (RowTable* t : {&sc, &sh}) {
      t->t = t->t.expand({samples, p.op.seq, p.op.dim}).contiguous();
      t->stride_b = t->t.stride(0);
      t->stride_n = t->t.stride(1);
    }
  }
  p.op.scale = sc.t.data_ptr();
  p.op.shift = sh.t.data_ptr();
  p.op.mod_stride_b = sc.stride_b;
  p.op.mod_stride_n = sc.stride_n;
  p.keep.push_back(sc.t);
  p.keep.push_back(sh.t);
  return finish(p, x);
}

at::Tensor rope(const at::Tensor& x, const Rope& r) {
  if (!fused_here(x)) return unfused::rope(x, r);
  Prepared p = prepare(x);
  add_rope(p, r);
  return finish(p, x);
}

at::Tensor rms_norm_rope(const at::Tensor& x, const at::Tensor& norm_weight, double eps, const Rope& r) {
  if (!fused_here(x)) return unfused::rms_norm_rope(x, norm_weight, eps, r);
  Prepared p = prepare(x);
  add_norm(p, norm_weight, eps);
  add_rope(p, r);
  return finish(p, x);
}

namespace unfused {

at::Tensor rms_norm(const at::Tensor& x, const std::optional<at::Tensor>& weight, double eps) {
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor n = (xf * at::rsqrt(xf.pow(2).mean(-1, /*keepdim=*/true) + eps)).to(x.scalar_type());
  return weight.has_value() ? n * weight->to(x.device(), x.scalar_type()) : n;
}

at::Tensor rms_norm_modulate(const at::Tensor& x, const at::Tensor& scale, const at::Tensor& shift,
                             double eps) {
  return rms_norm(x, std::nullopt, eps) * (1 + scale) + shift;
}

at::Tensor rope(const at::Tensor& x, const Rope& r) {
  LTX_CHECK(x.size(-1) % 2 == 0, "RoPE needs an even width, got ", x.size(-1));
  at::Tensor xf = x.to(at::kFloat);
  const at::Tensor cos = r.cos.to(x.device(), at::kFloat), sin = r.sin.to(x.device(), at::kFloat);
  std::vector<int64_t> lead(xf.sizes().begin(), xf.sizes().end() - 1);
  if (r.split) {
    const int64_t h = r.heads, half = x.size(-1) / (2 * h);
    std::vector<int64_t> v = lead, t = lead;
    v.insert(v.end(), {h, 2, half});
    at::Tensor pairs = xf.reshape(v);
    std::vector<int64_t> tv(cos.sizes().begin(), cos.sizes().end() - 1);
    tv.insert(tv.end(), {h, 1, half});
    at::Tensor c = cos.reshape(tv), s = sin.reshape(tv);
    at::Tensor x1 = pairs.narrow(-2, 0, 1), x2 = pairs.narrow(-2, 1, 1);
    at::Tensor rotated = at::cat({-x2, x1}, -2);
    return (pairs * c + rotated * s).reshape(x.sizes()).to(x.scalar_type());
  }
  std::vector<int64_t> v = lead;
  v.insert(v.end(), {x.size(-1) / 2, 2});
  at::Tensor pairs = xf.reshape(v);
  at::Tensor rotated = at::stack({pairs.select(-1, 1).neg(), pairs.select(-1, 0)}, -1).flatten(-2);
  return (xf * cos + rotated * sin).to(x.scalar_type());
}

at::Tensor rms_norm_rope(const at::Tensor& x, const at::Tensor& norm_weight, double eps, const Rope& r) {
  return unfused::rope(unfused::rms_norm(x, norm_weight, eps), r);
}

}  // namespace unfused
}  // namespace ltx::ops
