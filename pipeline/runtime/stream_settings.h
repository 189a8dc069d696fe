// StreamSettings: what a streaming session is made with (prompts, size, chunk
// length, steps, guidance, seed, cache window and limits, decode settings:
// the stream fields of VideoParams), and their validation on rank 0 before
// anything reaches the group. Plain values; safe to copy between threads.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "pipeline/runtime/text_to_video.h"

namespace ltx::pipeline {

// A stream's settings: the one request type (video_params.h).
using StreamSettings = VideoParams;

Status validate_stream_settings(const StreamSettings& settings, const ModelGeometry& geometry,
                                const GenerationLimits& limits = {});

}  // namespace ltx::pipeline
