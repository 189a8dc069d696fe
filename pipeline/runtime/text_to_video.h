// TextToVideo: the LTX-Video pipeline (video_pipeline.h) through the shared
// roles (model/model.h): the denoiser and scheduler on every rank, the text
// conditioner (inside the PromptEncoder) and the video decoder on rank 0.
// generate() is collective: rank 0 encodes the prompts and broadcasts the
// embeddings, every rank denoises its token shard, rank 0 gathers the latents
// and decodes them.
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "dist/communicator.h"
#include "pipeline/model/model.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/video_generation.h"
#include "pipeline/runtime/video_pipeline.h"

namespace ltx::pipeline {

// One generation between its start and its decode, on one rank: its shard of
// the latents, the text conditioning, the schedule and the next step. The
// service keeps one per running video job on every rank, so a long job can
// pause between steps while a stream's chunk runs (TextToVideo::advance).
class GenerationInProgress final : public VideoJob {
 public:
  int64_t next_step() const override { return next_step_; }
  int64_t steps() const override { return schedule_.steps(); }

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

class TextToVideo final : public VideoPipeline {
 public:
  TextToVideo(Model& model, dist::Communicator& comm, PromptEncoder& prompts)
      : model_(model), comm_(comm), prompts_(prompts) {}

  Result<std::unique_ptr<VideoJob>> start(const GenerationRequest& request) override;
  Status advance(VideoJob& job, const ProgressFn& progress, const CancelToken& cancel, const StageFn& stage) override;
  Result<GeneratedVideo> finish(VideoJob& job, const StageFn& stage) override;

 private:
  Model& model_;
  dist::Communicator& comm_;
  PromptEncoder& prompts_;
};

}  // namespace ltx::pipeline
