// Video files: H.264 MP4 (with an AAC audio track when there is sound)
// through FFmpeg's libraries, WAV files, and PNG frames through libpng, at
// the requested frame rate.
//
// Frames come as a float tensor [F, 3, H, W] in [0, 1] (what decode_video
// returns per sample); sound as a float waveform [channels, samples] in
// [-1, 1] at its sample rate (an AudioTrack). Runs on rank 0; each call owns its FFmpeg contexts (RAII),
// so concurrent calls on different files are safe. Errors name the file and
// the FFmpeg/libpng step that failed.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include "common/status.h"

namespace ltx::pipeline {

// [F, 3, H, W] float in [0, 1] -> [F, H, W, 3] uint8 (rounded).
at::Tensor frames_to_rgb8(const at::Tensor& frames);

// A waveform and its rate. Empty (no samples) means a silent video.
struct AudioTrack {
  at::Tensor samples;  // [channels, samples] float in [-1, 1] (clamped when written)
  int64_t sample_rate = 0;
  bool empty() const { return !samples.defined() || samples.numel() == 0; }
  double seconds() const { return empty() ? 0.0 : static_cast<double>(samples.size(1)) / sample_rate; }
};

// Writes an H.264 (yuv420p) MP4 at `fps`; H and W must be even. With
// `audio`, an AAC track too, fitted to the video's duration (F / fps):
// trimmed, or padded with silence, so both tracks end together (to within
// the AAC frame the encoder rounds up to).
Status write_mp4(const std::string& path, const at::Tensor& frames, double fps, const AudioTrack* audio = nullptr);
// Encodes into memory (for HTTP responses and continuation state).
Result<std::string> encode_mp4(const at::Tensor& frames, double fps, const AudioTrack* audio = nullptr);

// 16-bit PCM WAV of the waveform as it is (no fitting).
Status write_wav(const std::string& path, const AudioTrack& audio);
Result<std::string> encode_wav(const AudioTrack& audio);

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
  double seconds = 0;           // the video stream's duration
  // The first audio stream, when there is one.
  int64_t audio_streams = 0;
  std::string audio_codec;
  int64_t audio_sample_rate = 0;
  int64_t audio_channels = 0;
  int64_t audio_frame_size = 0;  // samples per codec frame (1024 for AAC)
  double audio_seconds = 0;
};
// Opens a video file with FFmpeg, counts its decodable frames and reads its
// streams' durations (tests, tools).
Result<VideoInfo> probe_video(const std::string& path);

}  // namespace ltx::pipeline
