// VideoPipeline: one model family's text-to-video generation on the whole
// group, as the engine, the CLI and the service drive it, whatever the family.
//
// A pipeline is collective: rank 0 encodes the prompts and every rank
// denoises its token shards (the same seeded noise on every rank, whatever
// the group size); rank 0 gathers and decodes. Requests are validated on
// rank 0 before any collective (validate_request). One generation at a time
// per group, driven by the thread that owns the communicator. The registry
// makes the model's pipeline (registry/model_registry.h: make_video_pipeline):
// TextToVideo for LTX-Video (text_to_video.h), the two-stream pipeline for
// LTX-2 (ltx2/ltx2_text_to_video.h).
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/io/video_file.h"
#include "pipeline/model/model.h"
#include "pipeline/runtime/video_params.h"

namespace ltx::pipeline {

// A video job's settings: the one request type (video_params.h).
using GenerationRequest = VideoParams;

// Limits that keep one request within reason for the server.
struct GenerationLimits {
  int64_t max_side = 2048;
  int64_t max_frames = 257;
  int64_t max_steps = 200;
  int64_t max_prompt_bytes = 8192;
};

// The request every field of which is the model family's default (fps,
// guidance and the family's own fields); what the CLI and the HTTP schema
// start from before reading what the client set.
GenerationRequest default_request(const ModelGeometry& geometry);

// Every problem names the field ("width must be a multiple of 32, got 100");
// sizes follow the model's compression factors, the audio fields and the
// pipeline variant what the model has.
Status validate_request(const GenerationRequest& request, const ModelGeometry& geometry,
                        const GenerationLimits& limits = {});

struct GeneratedVideo {
  at::Tensor frames;   // [F, 3, H, W] in [0, 1] (rank 0 only)
  at::Tensor latents;  // normalised packed video latents [1, N, C] (rank 0 only)
  // Families that make sound, when the request asked for it (rank 0 only).
  AudioTrack audio;           // waveform [channels, samples]
  at::Tensor audio_latents;   // normalised packed audio latents [1, T, Ca]
  double denoise_seconds = 0;
  double decode_seconds = 0;  // video and audio
};

// step (0-based, counted over every stage), steps (of every stage), seconds of that step.
using ProgressFn = std::function<void(int64_t, int64_t, double)>;
// A stage begins: "denoise" (one-stage pipelines), "stage1", "upsample",
// "stage2", "video_decode", "audio_decode".
using StageFn = std::function<void(const std::string&)>;

// Cooperative cancellation of one generation on the whole group. `enabled`
// must be the same on every rank: then after every denoising step rank 0 asks
// `requested` (any thread may flip what it reads) and broadcasts the answer,
// so every rank stops at the same step boundary. Costs one 8-byte broadcast
// per step; disabled, it costs nothing.
struct CancelToken {
  bool enabled = false;
  std::function<bool()> requested;  // read on rank 0 only
  // Rank 0 only, for resumable generations (VideoPipeline::advance): pause
  // after this step so other work can run; advance() later goes on from it.
  std::function<bool()> yield_requested;
};

// What rank 0 decided after a step; every rank hears the same.
enum class StepVerdict : int64_t { kGoOn = 0, kCancel = 1, kYield = 2 };

// Asked after each step but the last; false ends the loop there. Every
// rank's gate must answer the same, or the ranks' collectives diverge.
using StepGate = std::function<bool(int64_t step)>;

// The StepGate of `cancel` on this rank (nullptr when disabled): collective
// per call, it lets the loop go on only on kGoOn and leaves the verdict in
// `*verdict` when given. Rank 0 asks `requested` first, then `yield_requested`.
StepGate group_step_gate(dist::Communicator& comm, const CancelToken& cancel, StepVerdict* verdict = nullptr);

// One generation between its start and its decode, on one rank (its shards,
// its conditioning, the next step). The service keeps one per running video
// job on every rank, so a long job can pause between steps while a stream's
// chunk runs.
class VideoJob {
 public:
  virtual ~VideoJob() = default;
  virtual int64_t next_step() const = 0;
  virtual int64_t steps() const = 0;  // over every stage
  bool denoised() const { return next_step() == steps(); }
};

class VideoPipeline {
 public:
  virtual ~VideoPipeline() = default;

  // All collective; every rank passes the same (already validated) request.
  // start() encodes the prompts and draws the noise; advance() runs steps
  // until the last, or until `cancel` stops it (CANCELLED, on every rank at
  // the same step) or rank 0 asks to yield (OK, not denoised yet; call
  // advance() again later, other generations may run in between); finish()
  // gathers and decodes a denoised job. `stage` (optional) hears each stage begin.
  virtual Result<std::unique_ptr<VideoJob>> start(const GenerationRequest& request) = 0;
  virtual Status advance(VideoJob& job, const ProgressFn& progress, const CancelToken& cancel,
                         const StageFn& stage) = 0;
  virtual Result<GeneratedVideo> finish(VideoJob& job, const StageFn& stage) = 0;

  // The three in one (never yields).
  Result<GeneratedVideo> generate(const GenerationRequest& request, const ProgressFn& progress = nullptr,
                                  const CancelToken& cancel = {}, const StageFn& stage = nullptr);
};

}  // namespace ltx::pipeline
