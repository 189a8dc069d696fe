// The LTX-2 denoising loop over both streams (diffusers LTX2Pipeline's guided
// one-stage loop; spec ltx2.md §7.3): per step the CFG pair in one batched
// call, the modality-isolation and STG passes when their scales ask for them,
// guidance in x0 space (x0 = x - sigma * v) with each stream's own scales and
// rescale, back to velocity, an Euler step for each stream.
//
// Sequence-parallel: every rank holds its shards of both streams and calls
// ltx2_denoise() together (it is collective); the guidance rescale's
// per-sample standard deviations are reduced across the group, so the result
// does not depend on the group size beyond rounding.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <vector>

#include "pipeline/ltx2/ltx2_transformer.h"
#include "pipeline/schedule/flow_match_scheduler.h"

namespace ltx::pipeline {

struct Ltx2StreamGuidance {
  double cfg = 1.0;       // guidance_scale (> 1 runs the unconditional half)
  double stg = 0.0;       // stg_scale (> 0 runs the perturbed pass)
  double modality = 1.0;  // modality_scale (> 1 runs the isolated pass)
  double rescale = 0.0;   // guidance_rescale
};

struct Ltx2Guidance {
  Ltx2StreamGuidance video, audio;
  std::vector<int64_t> stg_blocks;
  bool cfg() const { return video.cfg > 1.0 || audio.cfg > 1.0; }
  bool stg() const { return video.stg > 0.0 || audio.stg > 0.0; }
  bool modality() const { return video.modality > 1.0 || audio.modality > 1.0; }
};

// What one step saw, on this rank's shards (fp32; undefined when a pass did not run).
struct Ltx2StepTrace {
  at::Tensor video_cfg, audio_cfg;        // [2B, s, C] raw outputs of the CFG call (negative rows first)
  at::Tensor video_isolated, audio_isolated;
  at::Tensor video_velocity, audio_velocity;  // guided velocity handed to the step
  at::Tensor video_latents, audio_latents;    // after the step
};
using Ltx2StepObserver = std::function<void(int64_t step, const Ltx2StepTrace&)>;

struct Ltx2DenoiseArgs {
  // This rank's shards of the normalised packed latents, fp32.
  at::Tensor video;  // [B, video shard, C]
  at::Tensor audio;  // [B, audio shard, Ca]
  parallel::SequenceShard video_shard, audio_shard;
  // RoPE bounds of this rank's tokens for B samples ([B, 3, s, 2], [B, 1, s, 2]).
  at::Tensor video_coords, audio_coords;
  // The prompt (B) and, with CFG, negative + prompt (2B, negative first).
  const Ltx2TextConditioning* prompt = nullptr;
  const Ltx2TextConditioning* cfg_pair = nullptr;
  Ltx2Guidance guidance;
  bool use_cross_timestep = true;
  // Streaming: every layer's cached keys/values of earlier chunks (this
  // rank's heads), attended by every call; batch 2B (negative first) when
  // the guidance runs CFG, else B. The B-sized passes take its positive half.
  const std::vector<Ltx2LayerKv>* kv_prefix = nullptr;
  // A guidance-parallel step (parallel/step_plan.h, CFG with STG and
  // modality isolation both on or both off, no KV prefix): G sub-groups
  // split the passes (in order: unconditional with `negative` (B),
  // conditional, STG, isolated), peer q running passes q, q + G, ...: two
  // sub-groups run unconditional + STG and conditional + isolated, four run
  // one each. `pass_group` is this rank's sub-group (the shards and
  // coordinates are over it) and the G `pass_peers` hold the same tokens and
  // exchange their predictions once per step. cfg_pair is not used then.
  dist::Communicator* pass_group = nullptr;
  dist::Communicator* pass_peers = nullptr;
  const Ltx2TextConditioning* negative = nullptr;
  // Resumable runs: steps [begin_step, schedule.steps()) run; `gate` (asked
  // after each step but the last, the same answer on every rank) may stop
  // the loop early, and `end_step` receives the step it stopped before.
  int64_t begin_step = 0;
  std::function<bool(int64_t)> gate;
  int64_t* end_step = nullptr;
};

struct Ltx2Latents {
  at::Tensor video, audio;  // this rank's shards, fp32
};

// Collective. Runs the steps of `schedule` from args.begin_step on.
Ltx2Latents ltx2_denoise(const Ltx2Transformer& model, const FlowMatchScheduler& scheduler,
                         const SigmaSchedule& schedule, const Ltx2DenoiseArgs& args,
                         const Ltx2StepObserver& observer = nullptr);

// Rows [begin, begin + n) of the batch of every cached key/value.
std::vector<Ltx2LayerKv> narrow_ltx2_kv(const std::vector<Ltx2LayerKv>& kv, int64_t begin, int64_t n);

// Packed audio tokens [B, T, C*M] <-> audio latents [B, C, T, M] (feature c*M + m).
at::Tensor pack_ltx2_audio(const at::Tensor& latents);
at::Tensor unpack_ltx2_audio(const at::Tensor& tokens, int64_t channels);

}  // namespace ltx::pipeline
