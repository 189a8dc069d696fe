// The denoising loop on a sequence-parallel group, as diffusers' LTXPipeline
// runs it: classifier-free guidance on this rank's token shard with any
// family's Denoiser and the flow-matching scheduler.
//
// Every rank runs denoise() on its shard with identical schedules and text
// conditioning (a collective: the denoiser's all-to-alls). Stateless
// functions; all state comes in through the arguments.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>

#include "parallel/sequence_shard.h"
#include "pipeline/model/latents.h"
#include "pipeline/model/roles.h"
#include "pipeline/runtime/video_pipeline.h"
#include "pipeline/schedule/flow_match_scheduler.h"

namespace ltx::pipeline {

struct DenoiseSettings {
  double guidance_scale = 3.0;    // classifier-free guidance when > 1
  double guidance_rescale = 0.0;  // 0 disables the rescale
  // A guidance-parallel step (parallel/step_plan.h): this rank's sub-group
  // `pass_group` runs one CFG pass over the whole sequence (the shard is over
  // it; member g of `pass_peers`, the ranks holding the same tokens, runs
  // pass g: 0 unconditional, 1 conditional), and the peers exchange their
  // predictions once per step. The text then holds this pass's batch only.
  // Null: every rank runs both passes, batched.
  dist::Communicator* pass_group = nullptr;
  dist::Communicator* pass_peers = nullptr;
  // The ranks that share the tokens when the passes are not split: the
  // rescale's statistics are over the whole sequence (runtime/group_stats.h).
  // Null: this rank holds the whole sequence.
  dist::Communicator* group = nullptr;
  bool do_cfg() const { return guidance_scale > 1.0; }
  bool split_passes() const { return do_cfg() && pass_peers != nullptr; }
};

// Called after each step with this rank's raw transformer output (the [2B]
// CFG batch, or [B]) and its latents after the step; for progress and tests.
using StepObserver = std::function<void(int64_t step, const at::Tensor& model_output, const at::Tensor& latents)>;


// Runs the whole scheduler loop on this rank's shard `latents` [B, shard_len,
// C] (fp32) of `grid` at `fps`. `text` must hold the [negative; positive]
// batch when CFG is on (this pass's batch when the passes are split), else
// the positive batch. `kv_prefix` (streaming) is the cached K/V of earlier
// chunks for this rank's heads, with the same batch as the model input.
// Runs steps [begin_step, steps) and returns the latents after the last one
// it ran; `end_step` (when given) receives the step it stopped before, which
// is less than schedule.steps() when `gate` stopped the loop. Resuming with
// begin_step = that value continues exactly where it stopped.
at::Tensor denoise(const Denoiser& model, const FlowMatchScheduler& scheduler,
                   const SigmaSchedule& schedule, const PreparedText& text, const LatentGrid& grid,
                   double fps, const parallel::SequenceShard& shard, at::Tensor latents,
                   const DenoiseSettings& settings, const StepObserver& observer = nullptr,
                   const std::vector<LayerKv>* kv_prefix = nullptr, const StepGate& gate = nullptr,
                   int64_t begin_step = 0, int64_t* end_step = nullptr);

}  // namespace ltx::pipeline
