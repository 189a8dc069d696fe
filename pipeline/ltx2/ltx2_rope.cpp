#include "pipeline/ltx2/ltx2_rope.h"

#include <cmath>

#include "common/check.h"
#include "ops/fused_ops.h"

namespace ltx::pipeline {

at::Tensor ltx2_video_coords(int64_t batch, int64_t frames, int64_t height, int64_t width, double fps,
                             const Ltx2TransformerConfig& c, int64_t frame_offset) {
  LTX_CHECK(batch > 0 && frames > 0 && height > 0 && width > 0 && fps > 0, "bad video grid ", frames, "x",
            height, "x", width, " at ", fps, " fps");
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor f = at::arange(frame_offset, frame_offset + frames, f32);
  at::Tensor h = at::arange(height, f32);
  at::Tensor w = at::arange(width, f32);
  auto grid = at::meshgrid({f, h, w}, "ij");
  at::Tensor start = at::stack({grid[0], grid[1], grid[2]}, 0).reshape({3, -1});  // [3, N]
  at::Tensor end = start + 1;
  at::Tensor scale = at::tensor({static_cast<float>(c.vae_scale_factors[0]), static_cast<float>(c.vae_scale_factors[1]),
                                 static_cast<float>(c.vae_scale_factors[2])}, f32).view({3, 1});
  at::Tensor bounds = at::stack({start * scale, end * scale}, -1);  // [3, N, 2]
  at::Tensor t = (bounds.select(0, 0) + static_cast<double>(c.causal_offset - c.vae_scale_factors[0])).clamp_min(0);
  bounds.select(0, 0).copy_(t / fps);
  return bounds.unsqueeze(0).repeat({batch, 1, 1, 1}).contiguous();
}

at::Tensor ltx2_audio_coords(int64_t batch, int64_t frames, const Ltx2TransformerConfig& c, int64_t shift) {
  LTX_CHECK(batch > 0 && frames > 0, "bad audio length ", frames);
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor g = at::arange(shift, shift + frames, f32);
  const double sf = static_cast<double>(c.audio_scale_factor);
  const double off = static_cast<double>(c.causal_offset) - sf;
  // mel frame * hop / rate, in this order and in fp32 as the reference does:
  // the highest RoPE frequencies (~1.6e4 rad per unit) see a one-ulp change.
  const double hop = static_cast<double>(c.audio_hop_length), rate = static_cast<double>(c.audio_sampling_rate);
  at::Tensor start = (g * sf + off).clamp_min(0) * hop / rate;
  at::Tensor end = ((g + 1) * sf + off).clamp_min(0) * hop / rate;
  return at::stack({start, end}, -1).view({1, 1, frames, 2}).expand({batch, 1, frames, 2}).contiguous();
}

Ltx2Rope ltx2_rope(const at::Tensor& coords, const Ltx2RopeSpec& spec, const at::Device& device) {
  const int64_t axes = static_cast<int64_t>(spec.max_pos.size());
  LTX_CHECK(coords.dim() == 4 ? coords.size(3) == 2 : coords.dim() == 3,
            "RoPE coordinates must be [B, axes, N, 2] bounds or [B, axes, N] positions, got ", coords.sizes());
  LTX_CHECK(coords.size(1) == axes, "RoPE coordinates have ", coords.size(1), " axes, the table ", axes);
  LTX_CHECK(spec.dim % 2 == 0 && spec.heads > 0 && (spec.dim / 2) % spec.heads == 0,
            "RoPE width ", spec.dim, " does not split into ", spec.heads, " heads");
  at::Tensor c = coords.to(device).to(at::kFloat);
  at::Tensor pos = c.dim() == 4 ? (c.select(3, 0) + c.select(3, 1)) / 2.0 : c;  // [B, axes, N]
  std::vector<at::Tensor> per_axis;
  for (int64_t a = 0; a < axes; ++a) per_axis.push_back(pos.select(1, a) / spec.max_pos[a]);
  at::Tensor grid = at::stack(per_axis, -1);  // [B, N, axes]
  const int64_t k = spec.dim / (2 * axes);
  const auto fdt = spec.double_precision ? at::kDouble : at::kFloat;
  at::Tensor lin = at::linspace(0.0, 1.0, k, at::TensorOptions().dtype(fdt).device(device));
  at::Tensor freqs = (at::pow(spec.theta, lin) * (M_PI / 2.0)).to(at::kFloat);  // [K]
  at::Tensor ang = (grid.unsqueeze(-1) * 2 - 1) * freqs;  // [B, N, axes, K]
  ang = ang.transpose(-1, -2).flatten(2);                 // [B, N, K*axes], frequency-major
  Ltx2Rope r;
  r.heads = spec.heads;
  r.layout = spec.layout;
  at::Tensor cos = ang.cos(), sin = ang.sin();
  const int64_t b = ang.size(0), n = ang.size(1);
  if (spec.layout == Ltx2RopeLayout::kSplit) {
    const int64_t pad = spec.dim / 2 - k * axes;
    if (pad > 0) {
      cos = at::cat({at::ones({b, n, pad}, cos.options()), cos}, -1);
      sin = at::cat({at::zeros({b, n, pad}, sin.options()), sin}, -1);
    }
  } else {
    cos = cos.repeat_interleave(2, -1);
    sin = sin.repeat_interleave(2, -1);
    const int64_t pad = spec.dim % (2 * axes);
    if (pad > 0) {
      cos = at::cat({at::ones({b, n, pad}, cos.options()), cos}, -1);
      sin = at::cat({at::zeros({b, n, pad}, sin.options()), sin}, -1);
    }
  }
  r.cos = cos.contiguous();
  r.sin = sin.contiguous();
  return r;
}

namespace {
// The table as ops::Rope, after checking it covers x ([B, N, dim]).
ops::Rope fused_table(const at::Tensor& x, const Ltx2Rope& rope) {
  LTX_CHECK(x.dim() == 3, "RoPE input must be [B, N, dim], got ", x.sizes());
  const int64_t b = x.size(0), n = x.size(1), dim = x.size(2);
  LTX_CHECK(rope.cos.size(1) == n && (rope.cos.size(0) == b || rope.cos.size(0) == 1),
            "RoPE table ", rope.cos.sizes(), " does not cover input ", x.sizes());
  const bool split = rope.layout == Ltx2RopeLayout::kSplit;
  LTX_CHECK(rope.cos.size(2) * (split ? 2 : 1) == dim, split ? "split" : "interleaved", " RoPE table width ",
            rope.cos.size(2), " for input width ", dim);
  return ops::Rope{rope.cos, rope.sin, split, split ? rope.heads : 1};
}
}  // namespace

at::Tensor ltx2_apply_rope(const at::Tensor& x, const Ltx2Rope& rope) { return ops::rope(x, fused_table(x, rope)); }

at::Tensor ltx2_norm_rope(const at::Tensor& x, const at::Tensor& weight, double eps, const Ltx2Rope& rope) {
  return ops::rms_norm_rope(x, weight, eps, fused_table(x, rope));
}

}  // namespace ltx::pipeline
