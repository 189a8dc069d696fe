#include "pipeline/runtime/text_to_video.h"

#include <chrono>
#include <cmath>

#include "common/check.h"
#include "common/logging.h"
#include "pipeline/runtime/video_generation.h"

namespace ltx::pipeline {

Status validate_request(const GenerationRequest& r, const ModelGeometry& g, const GenerationLimits& l) {
  auto bad = [](const std::string& m) { return invalid_argument_error(m); };
  if (r.prompt.empty()) return bad("prompt must not be empty");
  if (static_cast<int64_t>(r.prompt.size()) > l.max_prompt_bytes ||
      static_cast<int64_t>(r.negative_prompt.size()) > l.max_prompt_bytes) {
    return bad("prompt and negative_prompt must be at most " + std::to_string(l.max_prompt_bytes) + " bytes");
  }
  const int64_t side = g.spatial_compression, t = g.temporal_compression;
  for (auto [name, v] : {std::pair<const char*, int64_t>{"width", r.width}, {"height", r.height}}) {
    if (v <= 0 || v % side != 0) {
      return bad(std::string(name) + " must be a positive multiple of " + std::to_string(side) + ", got " + std::to_string(v));
    }
    if (v > l.max_side) return bad(std::string(name) + " must be at most " + std::to_string(l.max_side) + ", got " + std::to_string(v));
  }
  if (r.num_frames < 1 || (r.num_frames - 1) % t != 0) {
    return bad("num_frames must be " + std::to_string(t) + "k+1 (1, " + std::to_string(t + 1) + ", " +
               std::to_string(2 * t + 1) + ", ...), got " + std::to_string(r.num_frames));
  }
  if (r.num_frames > l.max_frames) return bad("num_frames must be at most " + std::to_string(l.max_frames));
  if (r.num_steps < 1 || r.num_steps > l.max_steps) {
    return bad("num_inference_steps must be in [1, " + std::to_string(l.max_steps) + "], got " + std::to_string(r.num_steps));
  }
  if (!std::isfinite(r.guidance_scale) || r.guidance_scale < 0) {
    return bad("guidance_scale must be a non-negative number, got " + std::to_string(r.guidance_scale));
  }
  if (!(r.guidance_rescale >= 0 && r.guidance_rescale <= 1)) return bad("guidance_rescale must be in [0, 1]");
  if (!(r.fps > 0 && r.fps <= 240)) return bad("fps must be in (0, 240], got " + std::to_string(r.fps));
  if (!(r.decode_timestep >= 0 && r.decode_timestep <= 1)) return bad("decode_timestep must be in [0, 1]");
  if (!(r.decode_noise_scale >= 0 && r.decode_noise_scale <= 1)) return bad("decode_noise_scale must be in [0, 1]");
  return Status();
}

StepGate group_step_gate(dist::Communicator& comm, const CancelToken& cancel, StepVerdict* verdict) {
  if (!cancel.enabled) return nullptr;
  return [&comm, cancel, verdict](int64_t) {
    StepVerdict v = StepVerdict::kGoOn;
    if (comm.rank() == 0) {
      if (cancel.requested && cancel.requested()) v = StepVerdict::kCancel;
      else if (cancel.yield_requested && cancel.yield_requested()) v = StepVerdict::kYield;
    }
    at::Tensor flag = at::full({1}, static_cast<int64_t>(v), at::TensorOptions().dtype(at::kLong).device(comm.device()));
    comm.broadcast(flag, 0);
    v = static_cast<StepVerdict>(flag.item<int64_t>());
    if (verdict != nullptr) *verdict = v;
    return v == StepVerdict::kGoOn;
  };
}

Result<GeneratedVideo> TextToVideo::generate(const GenerationRequest& r, const ProgressFn& progress,
                                             const CancelToken& cancel) {
  CancelToken no_yield = cancel;
  no_yield.yield_requested = nullptr;
  LTX_ASSIGN_OR_RETURN(auto job, start(r));
  LTX_RETURN_IF_ERROR(advance(*job, progress, no_yield));
  return finish(*job);
}

Result<std::unique_ptr<GenerationInProgress>> TextToVideo::start(const GenerationRequest& r) {
  const Denoiser& model = *model_.denoiser;
  auto job = std::make_unique<GenerationInProgress>();
  job->request_ = r;
  job->grid_ = model_.geometry.grid(r.width, r.height, r.num_frames);
  const LatentGrid& grid = job->grid_;
  const int64_t channels = model.latent_channels();
  const bool cfg = r.guidance_scale > 1.0;

  // 1. Text: rank 0 encodes [negative, positive]; everyone receives them.
  LTX_ASSIGN_OR_RETURN(EncodedPrompts text, prompts_.encode(comm_.rank() == 0
                                                                ? std::vector<std::string>{r.negative_prompt, r.prompt}
                                                                : std::vector<std::string>{}));
  at::Tensor emb = cfg ? text.embeddings : text.embeddings.narrow(0, 1, 1);
  at::Tensor mask = cfg ? text.mask : text.mask.narrow(0, 1, 1);
  job->text_ = model.prepare_text(emb, mask);
  const at::Device device = model.placement().device;

  // 2. The same noise on every rank, whatever the group size.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(r.seed);
  at::Tensor noise = at::randn({1, channels, grid.frames, grid.height, grid.width}, gen);
  job->shard_ = parallel::SequenceShard::make(grid.num_tokens(), comm_.size(), comm_.rank());
  job->latents_ = job->shard_.take(pack_latents(noise), 1).to(device);

  LTX_ASSIGN_OR_RETURN(job->schedule_, model_.scheduler->schedule(r.num_steps, grid.num_tokens()));
  job->settings_.guidance_scale = r.guidance_scale;
  job->settings_.guidance_rescale = r.guidance_rescale;
  return job;
}

Status TextToVideo::advance(GenerationInProgress& job, const ProgressFn& progress, const CancelToken& cancel) {
  using clock = std::chrono::steady_clock;
  const Denoiser& model = *model_.denoiser;
  const int64_t steps = job.schedule_.steps();
  if (job.denoised()) return Status();
  auto t0 = clock::now();
  auto last = t0;
  StepObserver observer = [&](int64_t i, const at::Tensor&, const at::Tensor&) {
    auto now = clock::now();
    if (progress) progress(i, steps, std::chrono::duration<double>(now - last).count());
    last = now;
  };
  StepVerdict verdict = StepVerdict::kGoOn;
  StepGate gate = group_step_gate(comm_, cancel, &verdict);
  int64_t end_step = job.next_step_;
  job.latents_ = denoise(model, *model_.scheduler, job.schedule_, *job.text_, job.grid_, job.request_.fps, job.shard_,
                         job.latents_, job.settings_, observer, nullptr, gate, job.next_step_, &end_step);
  job.next_step_ = end_step;
  job.denoise_seconds_ += std::chrono::duration<double>(clock::now() - t0).count();
  if (!job.denoised() && verdict == StepVerdict::kCancel) {
    return cancelled_error("cancelled after step " + std::to_string(end_step) + " of " + std::to_string(steps));
  }
  return Status();
}

Result<GeneratedVideo> TextToVideo::finish(GenerationInProgress& job) {
  using clock = std::chrono::steady_clock;
  LTX_CHECK(job.denoised(), "finish() needs a denoised generation, this one is at step ", job.next_step_, " of ",
            job.steps());
  const GenerationRequest& r = job.request_;
  const int64_t channels = model_.denoiser->latent_channels();

  // Rank 0 gathers and decodes.
  GeneratedVideo out;
  out.denoise_seconds = job.denoise_seconds_;
  at::Tensor gathered = comm_.gather(job.latents_.contiguous(), 0);
  if (comm_.rank() != 0) return out;
  // gather concatenates along dim 0: [N * 1, shard_len, C] -> [1, N * shard_len, C]
  at::Tensor packed = gathered.reshape({1, -1, channels});
  out.latents = job.shard_.unpad(packed, 1).cpu();
  auto t1 = clock::now();
  DecodeSettings ds;
  ds.decode_timestep = r.decode_timestep;
  ds.decode_noise_scale = r.decode_noise_scale;
  auto decode_gen = at::make_generator<at::CPUGeneratorImpl>(r.seed + 1);
  LTX_INTERNAL_ASSERT(model_.video_decoder != nullptr, "rank 0 has no video decoder");
  out.frames = model_.video_decoder->decode(out.latents, job.grid_, ds, decode_gen)[0].cpu();
  out.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return out;
}

}  // namespace ltx::pipeline
