// Video files: H.264 MP4 through FFmpeg's libraries, and PNG frames through
// libpng, at the requested frame rate.
//
// Frames come as a float tensor [F, 3, H, W] in [0, 1] (what decode_video
// returns per sample). Runs on rank 0; each call owns its FFmpeg contexts (RAII),
// so concurrent calls on different files are safe. Errors name the file and
// the FFmpeg/libpng step that failed.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "common/status.h"

namespace ltx::pipeline {

// [F, 3, H, W] float in [0, 1] -> [F, H, W, 3] uint8 (rounded).
at::Tensor frames_to_rgb8(const at::Tensor& frames);

// Writes an H.264 (yuv420p) MP4 at `fps`; H and W must be even.
Status write_mp4(const std::string& path, const at::Tensor& frames, double fps);
// Encodes into memory (for HTTP responses and continuation state).
Result<std::string> encode_mp4(const at::Tensor& frames, double fps);

// One PNG per frame: dir/frame_00000.png, ...
Status write_png_frames(const std::string& dir, const at::Tensor& frames);
// One frame [3, H, W] as PNG bytes.
Result<std::string> encode_png(const at::Tensor& frame);

struct VideoInfo {
  int64_t frames = 0;
  int64_t width = 0;
  int64_t height = 0;
  double fps = 0;
  std::string codec;
};
// Opens a video file with FFmpeg and counts its decodable frames (tests, tools).
Result<VideoInfo> probe_video(const std::string& path);

}  // namespace ltx::pipeline
