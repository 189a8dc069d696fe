// The text-to-video generation loop on a sequence-parallel group, as diffusers'
// LTXPipeline runs it: packing, the denoising loop with classifier-free
// guidance on this rank's token shard, and the decode of the final latents.
//
// Every rank runs denoise() on its shard with identical schedules and text
// conditioning (a collective: the transformer's all-to-alls); decode() runs on
// the rank that owns the VAE (rank 0). Stateless functions; all state comes in
// through the arguments.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <optional>

#include "parallel/sequence_shard.h"
#include "pipeline/schedule/flow_match_scheduler.h"
#include "pipeline/dit/ltx_transformer.h"
#include "pipeline/decode/ltx_vae_decoder.h"

namespace ltx::pipeline {

// [B, C, F, H, W] <-> [B, F*H*W, C] (token order frame-major, patch 1).
at::Tensor pack_latents(const at::Tensor& latents);
at::Tensor unpack_latents(const at::Tensor& packed, const LatentGrid& grid);

struct DenoiseSettings {
  double guidance_scale = 3.0;    // classifier-free guidance when > 1
  double guidance_rescale = 0.0;  // 0 disables the rescale
  bool do_cfg() const { return guidance_scale > 1.0; }
};

// Called after each step with this rank's raw transformer output (the [2B]
// CFG batch, or [B]) and its latents after the step; for progress and tests.
using StepObserver = std::function<void(int64_t step, const at::Tensor& model_output, const at::Tensor& latents)>;

// Asked after each step but the last (after the observer); false ends the
// loop there. Every rank's gate must answer the same (see group_step_gate in
// text_to_video.h), or the ranks' collectives diverge.
using StepGate = std::function<bool(int64_t step)>;

// Runs the whole scheduler loop on this rank's shard `latents` [B, shard_len,
// C] (fp32). `text` must hold the [negative; positive] batch when CFG is on,
// else the positive batch. `kv_prefix` (streaming) is the cached K/V of earlier
// chunks for this rank's heads, with the same batch as the model input.
// Runs steps [begin_step, steps) and returns the latents after the last one
// it ran; `end_step` (when given) receives the step it stopped before, which
// is less than schedule.steps() when `gate` stopped the loop. Resuming with
// begin_step = that value continues exactly where it stopped.
at::Tensor denoise(const LtxTransformer& model, const FlowMatchScheduler& scheduler,
                   const SigmaSchedule& schedule, const TextConditioning& text, const LatentGrid& grid,
                   const RopeSettings& rope, const parallel::SequenceShard& shard, at::Tensor latents,
                   const DenoiseSettings& settings, const StepObserver& observer = nullptr,
                   const std::vector<LayerKv>* kv_prefix = nullptr, const StepGate& gate = nullptr,
                   int64_t begin_step = 0, int64_t* end_step = nullptr);

struct DecodeSettings {
  double decode_timestep = 0.05;     // for timestep-conditioned VAEs
  double decode_noise_scale = 0.025; // fresh noise blended into the latents (after de-normalising, as diffusers)
  std::optional<VaeTiling> tiling;   // memory-bounded (approximate) decoding
};

// Normalised packed latents [B, N, C] -> frames [B, F, 3, H, W] in [0, 1].
// `noise` (same shape as the unpacked latents) replaces the generator draw when given.
at::Tensor decode_video(const LtxVaeDecoder& vae, const at::Tensor& latents, const LatentGrid& grid,
                        const DecodeSettings& settings, at::Generator generator = at::Generator(),
                        const std::optional<at::Tensor>& noise = std::nullopt,
                        at::Tensor* decoder_input = nullptr);

}  // namespace ltx::pipeline
