#include "pipeline/runtime/video_generation.h"

#include "common/check.h"
#include "common/device_sync.h"

namespace ltx::pipeline {

at::Tensor pack_latents(const at::Tensor& latents) {
  LTX_CHECK(latents.dim() == 5, "latents must be [B, C, F, H, W], got ", latents.sizes());
  const int64_t b = latents.size(0), c = latents.size(1);
  return latents.permute({0, 2, 3, 4, 1}).reshape({b, -1, c}).contiguous();
}

at::Tensor unpack_latents(const at::Tensor& packed, const LatentGrid& g) {
  LTX_CHECK(packed.dim() == 3 && packed.size(1) == g.num_tokens(), "packed latents must be [B, ", g.num_tokens(),
            ", C], got ", packed.sizes());
  return packed.reshape({packed.size(0), g.frames, g.height, g.width, packed.size(2)})
      .permute({0, 4, 1, 2, 3})
      .contiguous();
}

at::Tensor denoise(const LtxTransformer& model, const FlowMatchScheduler& scheduler, const SigmaSchedule& schedule,
                   const TextConditioning& text, const LatentGrid& grid, const RopeSettings& rope,
                   const parallel::SequenceShard& shard, at::Tensor latents, const DenoiseSettings& settings,
                   const StepObserver& observer, const std::vector<LayerKv>* kv_prefix, const StepGate& gate,
                   int64_t begin_step, int64_t* end_step) {
  LTX_CHECK(begin_step >= 0 && begin_step <= schedule.steps(), "begin_step ", begin_step, " is outside [0, ",
            schedule.steps(), "]");
  const int64_t b = latents.size(0);
  const bool cfg = settings.do_cfg();
  LTX_CHECK(text.bias.size(0) == (cfg ? 2 * b : b), "text conditioning has batch ", text.bias.size(0), ", expected ",
            cfg ? 2 * b : b, cfg ? " ([negative; positive])" : "");
  RopeTables tables = rope_tables(grid, rope, model.inner_dim(), model.device());
  LtxForwardArgs args;
  args.shard = shard;
  args.rope_cos = shard.take(tables.cos, 0);
  args.rope_sin = shard.take(tables.sin, 0);
  args.text = &text;
  args.kv_prefix = kv_prefix != nullptr && !kv_prefix->empty() ? kv_prefix : nullptr;
  latents = latents.to(model.device(), at::kFloat);
  if (end_step != nullptr) *end_step = begin_step;
  for (int64_t i = begin_step; i < schedule.steps(); ++i) {
    at::Tensor x = cfg ? at::cat({latents, latents}, 0) : latents;
    args.hidden_states = x.to(model.dtype());
    args.timestep = at::full({x.size(0)}, schedule.timesteps[i], at::TensorOptions().dtype(at::kFloat).device(model.device()));
    at::Tensor out = model.forward(args).to(at::kFloat);
    at::Tensor v = cfg ? classifier_free_guidance(out.narrow(0, 0, b), out.narrow(0, b, b), settings.guidance_scale,
                                                  settings.guidance_rescale)
                       : out;
    latents = scheduler.step(latents, v, schedule, i);
    if (observer) {
      wait_for_device(latents.device());  // an observer that reads the clock times finished work
      observer(i, out, latents);
    }
    if (end_step != nullptr) *end_step = i + 1;
    // Not after the last step: the result is there, a stop would only waste it.
    if (gate && i + 1 < schedule.steps() && !gate(i)) break;
  }
  return latents;
}

at::Tensor decode_video(const LtxVaeDecoder& vae, const at::Tensor& latents, const LatentGrid& grid,
                        const DecodeSettings& s, at::Generator generator, const std::optional<at::Tensor>& noise,
                        at::Tensor* decoder_input) {
  at::Tensor z = vae.denormalize(unpack_latents(latents.to(at::kFloat), grid));
  std::optional<at::Tensor> t;
  if (vae.timestep_conditioned()) {
    if (s.decode_noise_scale > 0) {
      at::Tensor n = noise.has_value() ? noise->to(z.device(), at::kFloat)
                                       : at::randn(z.sizes(), generator.defined() ? generator : at::detail::getDefaultCPUGenerator(),
                                                   z.options());
      LTX_CHECK(n.sizes() == z.sizes(), "decode noise must be ", z.sizes(), ", got ", n.sizes());
      z = (1.0 - s.decode_noise_scale) * z + s.decode_noise_scale * n;
    }
    t = at::full({z.size(0)}, s.decode_timestep, z.options());
  }
  if (decoder_input != nullptr) *decoder_input = z;
  at::Tensor video = s.tiling ? vae.decode_tiled(z, t, *s.tiling, generator) : vae.decode(z, t, generator);
  return (video / 2 + 0.5).clamp(0.0, 1.0).permute({0, 2, 1, 3, 4}).contiguous();  // [B, F, 3, H, W]
}

}  // namespace ltx::pipeline
