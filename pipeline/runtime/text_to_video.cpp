#include "pipeline/runtime/text_to_video.h"

#include <algorithm>
#include <chrono>

#include "common/check.h"
#include "common/logging.h"
#include "pipeline/runtime/video_generation.h"

namespace ltx::pipeline {

Result<std::unique_ptr<VideoJob>> TextToVideo::start(const GenerationRequest& r) {
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
  // 2. The step plan: under guidance-parallel steps each half of the group
  // runs one CFG pass (its half of the text) over the whole sequence.
  job->sequence_group_ = &comm_;
  job->settings_.group = &comm_;
  at::Tensor emb = cfg ? text.embeddings : text.embeddings.narrow(0, 1, 1);
  at::Tensor mask = cfg ? text.mask : text.mask.narrow(0, 1, 1);
  if (plan_for(r).guidance_groups == 2) {
    const GuidanceGroups::Split split = groups_.get(2);
    const int64_t pass = split.peers->rank();  // 0 unconditional, 1 conditional
    emb = emb.narrow(0, pass, 1);
    mask = mask.narrow(0, pass, 1);
    job->sequence_group_ = split.group;
    job->settings_.pass_group = split.group;
    job->settings_.pass_peers = split.peers;
  }
  job->text_ = model.prepare_text(emb, mask);
  const at::Device device = model.placement().device;

  // 3. The same noise on every rank, whatever the group size.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(r.seed);
  at::Tensor noise = at::randn({1, channels, grid.frames, grid.height, grid.width}, gen);
  dist::Communicator& seq = *job->sequence_group_;
  job->shard_ = parallel::SequenceShard::make(grid.num_tokens(), seq.size(), seq.rank());
  job->latents_ = job->shard_.take(pack_latents(noise), 1).to(device);

  LTX_ASSIGN_OR_RETURN(job->schedule_, model_.scheduler->schedule(r.num_steps, grid.num_tokens()));
  job->settings_.guidance_scale = r.guidance_scale;
  job->settings_.guidance_rescale = r.guidance_rescale;
  return std::unique_ptr<VideoJob>(std::move(job));
}

Status TextToVideo::advance(VideoJob& base, const ProgressFn& progress, const CancelToken& cancel,
                            const StageFn& stage) {
  using clock = std::chrono::steady_clock;
  auto& job = dynamic_cast<GenerationInProgress&>(base);
  const Denoiser& model = *model_.denoiser;
  const int64_t steps = job.schedule_.steps();
  if (job.denoised()) return Status();
  if (stage && job.next_step_ == 0) stage("denoise");
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

Result<GeneratedVideo> TextToVideo::finish(VideoJob& base, const StageFn& stage) {
  using clock = std::chrono::steady_clock;
  auto& job = dynamic_cast<GenerationInProgress&>(base);
  LTX_CHECK(job.denoised(), "finish() needs a denoised generation, this one is at step ", job.next_step_, " of ",
            job.steps());
  const GenerationRequest& r = job.request_;
  const int64_t channels = model_.denoiser->latent_channels();

  // Rank 0 gathers and decodes, or every rank decodes a share of the frames.
  GeneratedVideo out;
  out.denoise_seconds = job.denoise_seconds_;
  const bool shared = model_.placement.decoder.shared && comm_.size() > 1;
  // Over the ranks sharing the tokens (both halves hold the same latents
  // under split passes; the half with rank 0 gives rank 0 the whole).
  dist::Communicator& seq = *job.sequence_group_;
  at::Tensor gathered = shared ? seq.all_gather(job.latents_.contiguous()) : seq.gather(job.latents_.contiguous(), 0);
  if (!shared && comm_.rank() != 0) return out;
  // gather concatenates along dim 0: [N * 1, shard_len, C] -> [1, N * shard_len, C]
  at::Tensor packed = gathered.reshape({1, -1, channels});
  at::Tensor latents = job.shard_.unpad(packed, 1).cpu();
  if (stage) stage("video_decode");
  auto t1 = clock::now();
  DecodeSettings ds;
  ds.decode_timestep = r.decode_timestep;
  ds.decode_noise_scale = r.decode_noise_scale;
  auto decode_gen = at::make_generator<at::CPUGeneratorImpl>(r.seed + 1);
  LTX_INTERNAL_ASSERT(model_.video_decoder != nullptr, "rank ", comm_.rank(), " has no video decoder");
  at::Tensor frames;
  if (shared) {
    LTX_ASSIGN_OR_RETURN(frames, model_.video_decoder->decode_shared(latents, job.grid_, ds, decode_gen, comm_));
    if (comm_.rank() != 0) return out;
  } else {
    frames = model_.video_decoder->decode(latents, job.grid_, ds, decode_gen);
  }
  out.latents = latents;
  out.frames = frames[0].cpu();
  out.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return out;
}

parallel::StepPlan TextToVideo::plan_for(const GenerationRequest& r) const {
  const Denoiser& model = *model_.denoiser;
  const LatentGrid grid = model_.geometry.grid(r.width, r.height, r.num_frames);
  parallel::StepShape shape;
  shape.tokens = grid.num_tokens();
  shape.width = model.hidden_size();
  shape.layers = model.num_layers();
  shape.channels = model.latent_channels();
  shape.heads = model.attention_heads();
  shape.passes = r.guidance_scale > 1.0 ? 2 : 1;
  shape.element_bytes = at::elementSize(model.placement().dtype);
  shape.max_groups = 2;  // the CFG pair
  const StepPlanning& planning = model_.placement.planning;
  shape.ring = std::max(1, planning.ring_size);
  return parallel::choose_step_plan(comm_.size(), shape, planning.link_for(comm_.backend_name()), planning.guidance);
}

}  // namespace ltx::pipeline
