// TextToVideo: one text-to-video generation on the whole group.
//
// Works with any model family through its roles (model/model.h): the
// denoiser and scheduler on every rank, the text conditioner (inside the
// PromptEncoder) and the video decoder on rank 0. TextToVideo::generate() is
// collective: rank 0 encodes the prompts and broadcasts the embeddings, every
// rank denoises its token shard (the same seeded noise on every rank,
// whatever the group size), rank 0 gathers the latents and decodes them. Requests are validated on rank 0
// before any collective (validate_request). One generation at a time per
// group, driven by the thread that owns the communicator.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/model/model.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/video_params.h"
#include "pipeline/runtime/video_generation.h"

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

// Every problem names the field ("width must be a multiple of 32, got 100");
// sizes follow the model's compression factors.
Status validate_request(const GenerationRequest& request, const ModelGeometry& geometry,
                        const GenerationLimits& limits = {});

struct GeneratedVideo {
  at::Tensor frames;   // [F, 3, H, W] in [0, 1] (rank 0 only)
  at::Tensor latents;  // normalised packed latents [1, N, C] (rank 0 only)
  double denoise_seconds = 0;
  double decode_seconds = 0;
};

// step (0-based), steps, seconds of that step.
using ProgressFn = std::function<void(int64_t, int64_t, double)>;

// Cooperative cancellation of one generation on the whole group. `enabled`
// must be the same on every rank: then after every denoising step rank 0 asks
// `requested` (any thread may flip what it reads) and broadcasts the answer,
// so every rank stops at the same step boundary. Costs one 8-byte broadcast
// per step; disabled, it costs nothing.
struct CancelToken {
  bool enabled = false;
  std::function<bool()> requested;  // read on rank 0 only
  // Rank 0 only, for resumable generations (TextToVideo::advance): pause
  // after this step so other work can run; advance() later goes on from it.
  std::function<bool()> yield_requested;
};

// What rank 0 decided after a step; every rank hears the same.
enum class StepVerdict : int64_t { kGoOn = 0, kCancel = 1, kYield = 2 };

// The StepGate of `cancel` on this rank (nullptr when disabled): collective
// per call, it lets the loop go on only on kGoOn and leaves the verdict in
// `*verdict` when given. Rank 0 asks `requested` first, then `yield_requested`.
StepGate group_step_gate(dist::Communicator& comm, const CancelToken& cancel, StepVerdict* verdict = nullptr);

// One generation between its start and its decode, on one rank: its shard of
// the latents, the text conditioning, the schedule and the next step. The
// service keeps one per running video job on every rank, so a long job can
// pause between steps while a stream's chunk runs (TextToVideo::advance).
class GenerationInProgress {
 public:
  int64_t next_step() const { return next_step_; }
  int64_t steps() const { return schedule_.steps(); }
  bool denoised() const { return next_step_ == schedule_.steps(); }

 private:
  friend class TextToVideo;
  GenerationRequest request_;
  LatentGrid grid_;
  std::unique_ptr<PreparedText> text_;
  SigmaSchedule schedule_;
  DenoiseSettings settings_;
  parallel::SequenceShard shard_;
  at::Tensor latents_;  // this rank's shard after next_step_ steps
  int64_t next_step_ = 0;
  double denoise_seconds_ = 0;
};

class TextToVideo {
 public:
  TextToVideo(Model& model, dist::Communicator& comm, PromptEncoder& prompts)
      : model_(model), comm_(comm), prompts_(prompts) {}

  // Collective; every rank passes the same (already validated) request.
  // CANCELLED when `cancel` stopped it (on every rank, at the same step).
  Result<GeneratedVideo> generate(const GenerationRequest& request, const ProgressFn& progress = nullptr,
                                  const CancelToken& cancel = {});

  // generate() in parts, all collective: start() encodes the prompts and
  // draws the noise; advance() runs steps until the last, or until `cancel`
  // stops it (CANCELLED) or rank 0 asks to yield (OK, not denoised yet; call
  // advance() again later, other generations may run in between); finish()
  // gathers and decodes a denoised one. The result equals generate()'s.
  Result<std::unique_ptr<GenerationInProgress>> start(const GenerationRequest& request);
  Status advance(GenerationInProgress& job, const ProgressFn& progress = nullptr, const CancelToken& cancel = {});
  Result<GeneratedVideo> finish(GenerationInProgress& job);

 private:
  Model& model_;
  dist::Communicator& comm_;
  PromptEncoder& prompts_;
};

}  // namespace ltx::pipeline
