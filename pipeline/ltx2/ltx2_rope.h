// LTX-2 rotary position embedding (spec ltx2.md §3.6, text-encoders.md §2.6).
//
// Positions are per token [start, end) bounds in physical units (seconds for
// time, pixels for space), so the two streams meet on one time axis. A table
// is fp32 cos/sin over `dim` channels of `heads` heads: "split" layout gives
// [B, N, dim/2] (head h owns entries h*d/2 ... (h+1)*d/2 - 1, padding in
// front), "interleaved" [B, N, dim]. Tables are per token, so a rank builds
// them for its own shard only. Pure functions; no state.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "pipeline/ltx2/ltx2_config.h"

namespace ltx::pipeline {

struct Ltx2Rope {
  at::Tensor cos;  // fp32, see above
  at::Tensor sin;
  int64_t heads = 1;
  Ltx2RopeLayout layout = Ltx2RopeLayout::kSplit;
};

struct Ltx2RopeSpec {
  int64_t dim = 0;              // channels rotated (all heads)
  int64_t heads = 1;            // heads sharing the table (split layout bands)
  std::vector<double> max_pos;  // one per position axis
  double theta = 10000.0;
  bool double_precision = true;
  Ltx2RopeLayout layout = Ltx2RopeLayout::kSplit;
};

// Video bounds [B, 3, F*H*W, 2] (frame-major tokens) for latent frames
// [frame_offset, frame_offset + frames), as LTX2Pipeline prepares them.
at::Tensor ltx2_video_coords(int64_t batch, int64_t frames, int64_t height, int64_t width, double fps,
                             const Ltx2TransformerConfig& config, int64_t frame_offset = 0);
// Audio bounds [B, 1, T, 2] (seconds) for audio latent frames [shift, shift + frames).
at::Tensor ltx2_audio_coords(int64_t batch, int64_t frames, const Ltx2TransformerConfig& config,
                             int64_t shift = 0);

// Tables from bounds [B, axes, N, 2] (midpoints are taken) or positions [B, axes, N].
Ltx2Rope ltx2_rope(const at::Tensor& coords, const Ltx2RopeSpec& spec, const at::Device& device);

// Rotates x [B, N, dim] (q or k, all heads) by the table; fp32 arithmetic,
// result in x's dtype.
at::Tensor ltx2_apply_rope(const at::Tensor& x, const Ltx2Rope& rope);
// rms_norm(x) * weight, then ltx2_apply_rope, in one pass (ops/fused_ops.h).
at::Tensor ltx2_norm_rope(const at::Tensor& x, const at::Tensor& weight, double eps, const Ltx2Rope& rope);

}  // namespace ltx::pipeline
