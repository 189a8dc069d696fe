// LTX-Video 3D rotary position embedding (spec ltx-video.md §1.7).
//
// Token coordinates live in one global frame: a call covering latent frames
// [frame_offset, frame_offset + frames) gets the positions those frames have
// in the whole stream, so cached rotated keys of earlier chunks stay valid.
// Tables are fp32 [N, dim] in packed token order (frame-major). Pure
// functions; no state.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "pipeline/model/latents.h"

namespace ltx::pipeline {

struct RopeSettings {
  double frame_rate = 25.0;              // video fps; time is measured in seconds
  int64_t temporal_compression = 8;      // VAE temporal compression x DiT temporal patch
  int64_t spatial_compression = 32;      // VAE spatial compression x DiT patch
  bool causal_temporal_positioning = false;  // first latent frame stands for one pixel frame
  double theta = 10000.0;
  double base_frames = 20.0;   // max positions used for normalisation
  double base_height = 2048.0;
  double base_width = 2048.0;
};

struct RopeTables {
  at::Tensor cos;  // [N, dim] fp32
  at::Tensor sin;  // [N, dim] fp32
};

// Normalised positions [N, 3] (frame, height, width) of every token of the grid.
at::Tensor rope_positions(const LatentGrid& grid, const RopeSettings& settings);

// cos/sin tables for the full inner width `dim` (all heads), on `device`.
RopeTables rope_tables(const LatentGrid& grid, const RopeSettings& settings, int64_t dim,
                       const at::Device& device);

// The same from explicit normalised positions [N, 3] (frame, height, width).
RopeTables rope_tables_from_positions(const at::Tensor& positions, const RopeSettings& settings, int64_t dim,
                                      const at::Device& device);

// Normalised frame-position step of `frames` latent frames (away from frame 0).
double rope_frame_step(const RopeSettings& settings, int64_t frames);

// Rotates interleaved channel pairs of x [..., N, dim] by the tables (fp32
// arithmetic, result in x's dtype).
at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin);

}  // namespace ltx::pipeline
