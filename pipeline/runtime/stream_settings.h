// StreamSettings: what a streaming session is made with (prompts, size, chunk
// length, steps, guidance, seed, cache window and limits, decode settings),
// and their validation on rank 0 before anything reaches the group. Plain
// values; safe to copy between threads.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "pipeline/runtime/text_to_video.h"

namespace ltx::pipeline {

struct StreamSettings {
  std::string prompt;
  std::string negative_prompt;
  int64_t width = 256;
  int64_t height = 192;
  int64_t chunk_frames = 2;   // latent frames per chunk (8 pixel frames each; the first chunk 8n-7)
  int64_t num_steps = 8;
  double guidance_scale = 3.0;
  uint64_t seed = 0;
  double fps = 25.0;
  int64_t window_chunks = 4;
  bool sink = false;
  int64_t max_kv_bytes = 0;   // per rank; 0 = unlimited
  int64_t decode_context = 1; // latent frames of left context when decoding a chunk
  double decode_timestep = 0.05;
  double decode_noise_scale = 0.025;
};

Status validate_stream_settings(const StreamSettings& settings, const ModelGeometry& geometry,
                                const GenerationLimits& limits = {});

}  // namespace ltx::pipeline
