#include "pipeline/runtime/video_generation.h"

#include "common/check.h"
#include "common/device_sync.h"
#include "common/fail_point.h"
#include "dist/communicator.h"
#include "pipeline/runtime/group_stats.h"

namespace ltx::pipeline {

at::Tensor denoise(const Denoiser& model, const FlowMatchScheduler& scheduler, const SigmaSchedule& schedule,
                   const PreparedText& text, const LatentGrid& grid, double fps,
                   const parallel::SequenceShard& shard, at::Tensor latents, const DenoiseSettings& settings,
                   const StepObserver& observer, const std::vector<LayerKv>* kv_prefix, const StepGate& gate,
                   int64_t begin_step, int64_t* end_step) {
  LTX_CHECK(begin_step >= 0 && begin_step <= schedule.steps(), "begin_step ", begin_step, " is outside [0, ",
            schedule.steps(), "]");
  const int64_t b = latents.size(0);
  const bool cfg = settings.do_cfg();
  const bool split = settings.split_passes();
  LTX_CHECK(!split || (settings.pass_group != nullptr && settings.pass_peers->size() == 2),
            "a split CFG step needs its pass group and two peers");
  const int64_t text_batch = cfg && !split ? 2 * b : b;
  LTX_CHECK(text.batch() == text_batch, "text conditioning has batch ", text.batch(), ", expected ", text_batch,
            cfg && !split ? " ([negative; positive])" : "");
  const at::Device device = model.placement().device;
  std::unique_ptr<DenoiserPositions> positions = model.positions(grid, fps, shard);
  DenoiserCall call;
  call.shard = shard;
  call.group = split ? settings.pass_group : nullptr;
  call.positions = positions.get();
  call.text = &text;
  call.kv_prefix = kv_prefix != nullptr && !kv_prefix->empty() ? kv_prefix : nullptr;
  latents = latents.to(device, at::kFloat);
  if (end_step != nullptr) *end_step = begin_step;
  StepPacer pacer(device);  // the host runs at most one step ahead of the GPU; no sync per step
  for (int64_t i = begin_step; i < schedule.steps(); ++i) {
    fail_point("denoise_step");  // tests of a rank failing alone mid-step (common/fail_point.h)
    at::Tensor x = cfg && !split ? at::cat({latents, latents}, 0) : latents;
    call.latents = x;
    call.timestep = at::full({x.size(0)}, schedule.timesteps[i], at::TensorOptions().dtype(at::kFloat).device(device));
    at::Tensor out = model.forward(call);
    // Split passes: the peers' predictions for these tokens, in pass order
    // ([unconditional; conditional], as the batched step has them).
    if (split) out = settings.pass_peers->all_gather(out.to(settings.pass_peers->device()).contiguous()).to(device);
    at::Tensor v = cfg ? group_guidance(split ? settings.pass_group : settings.group, shard, out.narrow(0, 0, b),
                                        out.narrow(0, b, b), settings.guidance_scale, settings.guidance_rescale)
                       : out;
    latents = scheduler.step(latents, v, schedule, i);
    // Step i is queued, step i - 1 has finished: an observer that reads the
    // clock sees the device's pace; the gate decides while the GPU works.
    pacer.step_queued();
    if (observer) observer(i, out, latents);
    if (end_step != nullptr) *end_step = i + 1;
    // Not after the last step: the result is there, a stop would only waste it.
    if (gate && i + 1 < schedule.steps() && !gate(i)) break;
  }
  return latents;
}

}  // namespace ltx::pipeline
