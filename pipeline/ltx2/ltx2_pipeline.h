// The LTX-2 text-to-video-with-sound pipelines on the group (spec ltx2.md
// §7.4), as the engine, the CLI and the service run them (VideoPipeline,
// runtime/video_pipeline.h):
//
// * "one-stage" (the default; diffusers LTX2Pipeline): the guided loop of
//   ltx2_denoise() at the requested size, the request's step count over the
//   model's shifted schedule.
// * "distilled" (the original DistilledPipeline; diffusers' two-stage
//   recipe): stage 1 at half width and height over the fixed 8-step list
//   without guidance; the video latents un-normalised, through the x2 latent
//   upsampler and normalised again (rank 0, then broadcast); stage 2 at the
//   full size over the fixed 3-step list, video and audio re-noised to its
//   first sigma; the stage-2 video and the stage-2 audio are decoded (what
//   both the distilled original and diffusers' recipe keep).
//
// Every rank holds the transformer and its shards of both streams (video
// tokens and audio tokens, each split by its own SequenceShard); rank 0
// holds the text conditioner, the video VAE, the audio VAE, the vocoder and
// the upsampler (Ltx2Parts) and decodes. The noise is drawn on the CPU from
// the request's seed, video first, then audio (diffusers' order), the same on
// every rank whatever the group size, so 1, 2 and 4 ranks give the same
// latents to rounding.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "dist/communicator.h"
#include "pipeline/ltx2/ltx2_audio.h"
#include "pipeline/ltx2/ltx2_generation.h"
#include "pipeline/ltx2/ltx2_latent_upsampler.h"
#include "pipeline/ltx2/ltx2_transformer.h"
#include "pipeline/model/model.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/guidance_groups.h"
#include "pipeline/runtime/video_pipeline.h"

namespace ltx::pipeline {

// The distilled lists (spec ltx2.md §7.2), without the final 0.
const std::vector<double>& ltx2_distilled_stage1_sigmas();
const std::vector<double>& ltx2_distilled_stage2_sigmas();

// The guidance terms of a request's one-stage pipeline (diffusers'
// LTX2Pipeline: STG in block 28). Without perturbed attention (2.0
// conversions) or without that block the STG pass equals the conditional
// pass, so its term is 0 and the pass is skipped: the same result.
Ltx2Guidance ltx2_request_guidance(const VideoParams& request, const Ltx2TransformerConfig& config);

// LTX-2's parts beyond the shared roles (Model::parts).
struct Ltx2Parts final : FamilyParts {
  std::shared_ptr<const Ltx2Transformer> transformer;  // every rank
  int64_t video_context_width = 0;  // channels of the video context in the conditioner's embeddings
  int64_t audio_latent_channels = 0;  // C of the audio latents [B, C, T, M]
  // Rank 0 (the decoders' placement).
  std::optional<Ltx2AudioDecoder> audio_decoder;
  std::optional<Ltx2Vocoder> vocoder;
  std::optional<Ltx2LatentUpsampler> upsampler;  // when the folder has latent_upsampler/

  std::vector<at::Tensor> weights() const override;
};

class Ltx2TextToVideo final : public VideoPipeline {
 public:
  // `model.parts` must be Ltx2Parts.
  Ltx2TextToVideo(Model& model, dist::Communicator& comm, PromptEncoder& prompts);

  Result<std::unique_ptr<VideoJob>> start(const GenerationRequest& request) override;
  Status advance(VideoJob& job, const ProgressFn& progress, const CancelToken& cancel, const StageFn& stage) override;
  Result<GeneratedVideo> finish(VideoJob& job, const StageFn& stage) override;

  // The step plan start() picks for a request (the same on every rank; no
  // collective): guidance-parallel sub-groups (2, or 4 for one pass each)
  // when the guided pipeline's passes pair up (CFG, with STG and modality
  // isolation both on or both off) and the scaling model (or
  // --guidance-parallel on) says so.
  parallel::StepPlan plan_for(const GenerationRequest& request) const;

 private:
  class Job;
  Status upsample(Job& job, const StageFn& stage);

  Model& model_;
  const Ltx2Parts& parts_;
  dist::Communicator& comm_;
  PromptEncoder& prompts_;
  GuidanceGroups groups_;  // made on the first split step of each sub-group count
};

}  // namespace ltx::pipeline
