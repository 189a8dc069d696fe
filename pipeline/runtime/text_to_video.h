// TextToVideo: the LTX-Video pipeline (video_pipeline.h) through the shared
// roles (model/model.h): the denoiser and scheduler on every rank, the text
// conditioner (inside the PromptEncoder) and the video decoder on rank 0.
// generate() is collective: rank 0 encodes the prompts and broadcasts the
// embeddings, every rank denoises its token shard (a guided step either runs
// both CFG passes on every rank or, under the guidance-parallel plan, one
// pass per half of the group: parallel/step_plan.h), rank 0 gathers the
// latents and decodes them (or every rank decodes a share of the frames when
// the decode is shared).
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "dist/communicator.h"
#include "pipeline/model/model.h"
#include "pipeline/runtime/guidance_groups.h"
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
  dist::Communicator* sequence_group_ = nullptr;  // the ranks sharing the tokens (shard_ is over them)
  parallel::SequenceShard shard_;
  at::Tensor latents_;  // this rank's shard after next_step_ steps
  int64_t next_step_ = 0;
  double denoise_seconds_ = 0;
};

class TextToVideo final : public VideoPipeline {
 public:
  TextToVideo(Model& model, dist::Communicator& comm, PromptEncoder& prompts)
      : model_(model), comm_(comm), prompts_(prompts), groups_(comm) {}

  Result<std::unique_ptr<VideoJob>> start(const GenerationRequest& request) override;
  Status advance(VideoJob& job, const ProgressFn& progress, const CancelToken& cancel, const StageFn& stage) override;
  Result<GeneratedVideo> finish(VideoJob& job, const StageFn& stage) override;

  // The plan start() picks for a request (the same on every rank; no collective).
  parallel::StepPlan plan_for(const GenerationRequest& request) const;

 private:
  Model& model_;
  dist::Communicator& comm_;
  PromptEncoder& prompts_;
  GuidanceGroups groups_;  // made on the first split step
};

}  // namespace ltx::pipeline
