#include "pipeline/dit/ltx_rope.h"

#include <cmath>
#include <vector>

#include "common/check.h"
#include "ops/fused_ops.h"

namespace ltx::pipeline {

at::Tensor rope_positions(const LatentGrid& g, const RopeSettings& s) {
  LTX_CHECK(g.frames > 0 && g.height > 0 && g.width > 0, "latent grid must be non-empty, got ",
            g.frames, "x", g.height, "x", g.width);
  LTX_CHECK(g.frame_offset >= 0, "frame offset must be non-negative, got ", g.frame_offset);
  LTX_CHECK(s.frame_rate > 0, "frame rate must be positive, got ", s.frame_rate);
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor f = at::arange(g.frame_offset, g.frame_offset + g.frames, f32);
  at::Tensor h = at::arange(g.height, f32);
  at::Tensor w = at::arange(g.width, f32);
  at::Tensor pf;
  if (s.causal_temporal_positioning) {
    // Pixel frame of latent frame k: max(0, 8k + 1 - 8), then seconds.
    pf = (f * static_cast<double>(s.temporal_compression) + 1.0 -
          static_cast<double>(s.temporal_compression))
             .clamp_min(0.0) /
         s.frame_rate / s.base_frames;
  } else {
    // diffusers LTXPipeline: f * (compression / fps) / base_frames.
    pf = f * static_cast<float>(s.temporal_compression / s.frame_rate) / s.base_frames;
  }
  at::Tensor ph = h * static_cast<double>(s.spatial_compression) / s.base_height;
  at::Tensor pw = w * static_cast<double>(s.spatial_compression) / s.base_width;
  auto mesh = at::meshgrid({pf, ph, pw}, "ij");
  return at::stack({mesh[0].reshape(-1), mesh[1].reshape(-1), mesh[2].reshape(-1)}, 1);
}

RopeTables rope_tables(const LatentGrid& grid, const RopeSettings& s, int64_t dim,
                       const at::Device& device) {
  return rope_tables_from_positions(rope_positions(grid, s), s, dim, device);
}

double rope_frame_step(const RopeSettings& s, int64_t frames) {
  return static_cast<double>(frames * s.temporal_compression) / s.frame_rate / s.base_frames;
}

RopeTables rope_tables_from_positions(const at::Tensor& positions, const RopeSettings& s, int64_t dim,
                                      const at::Device& device) {
  LTX_CHECK(dim >= 6 && dim % 2 == 0, "RoPE width must be even and at least 6, got ", dim);
  LTX_CHECK(positions.dim() == 2 && positions.size(1) == 3, "positions must be [N, 3], got ", positions.sizes());
  const int64_t k = dim / 6;
  const int64_t pad = dim % 6;
  auto f32 = at::TensorOptions().dtype(at::kFloat);
  at::Tensor pos = positions.to(at::kCPU, at::kFloat);
  // omega_k = theta ** linspace(0, 1, K) * pi / 2, in fp32 as the reference.
  at::Tensor omega = at::pow(s.theta, at::linspace(0.0, 1.0, k, f32)) * (M_PI / 2.0);
  // [N, 3, K] -> frequency-major, axis-minor [N, K*3]
  at::Tensor angles = omega.view({1, 1, k}) * (pos.unsqueeze(-1) * 2 - 1);
  angles = angles.transpose(1, 2).reshape({pos.size(0), 3 * k});
  at::Tensor cos = angles.cos().repeat_interleave(2, 1);
  at::Tensor sin = angles.sin().repeat_interleave(2, 1);
  if (pad > 0) {
    cos = at::cat({at::ones({pos.size(0), pad}, f32), cos}, 1);
    sin = at::cat({at::zeros({pos.size(0), pad}, f32), sin}, 1);
  }
  return {cos.to(device), sin.to(device)};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  LTX_CHECK(x.size(-1) == cos.size(-1) && x.size(-1) % 2 == 0, "RoPE table width ", cos.size(-1),
            " does not match the input width ", x.size(-1));
  return ops::rope(x, ops::Rope{cos, sin});
}

}  // namespace ltx::pipeline
