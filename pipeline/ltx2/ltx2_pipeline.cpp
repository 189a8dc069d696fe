#include "pipeline/ltx2/ltx2_pipeline.h"

#include <chrono>
#include <cmath>
#include <numeric>

#include "common/check.h"
#include "parallel/ulysses_attention.h"
#include "pipeline/ltx2/ltx2_conditioner.h"
#include "pipeline/ltx2/ltx2_generation.h"
#include "pipeline/ltx2/ltx2_rope.h"
#include "pipeline/ltx_video/ltx_video_decoder.h"

namespace ltx::pipeline {
namespace {

using clock = std::chrono::steady_clock;

// diffusers' LTX2Pipeline default spatio_temporal_guidance_blocks.
const std::vector<int64_t> kStgBlocks = {28};

SigmaSchedule fixed_schedule(const std::vector<double>& sigmas, int64_t train_timesteps) {
  SigmaSchedule s;
  for (double v : sigmas) {
    s.sigmas.push_back(static_cast<float>(v));
    s.timesteps.push_back(static_cast<float>(v) * static_cast<float>(train_timesteps));
  }
  s.sigmas.push_back(0.0f);
  return s;
}

}  // namespace

Ltx2Guidance ltx2_request_guidance(const VideoParams& r, const Ltx2TransformerConfig& config) {
  Ltx2Guidance g;
  g.video = {r.guidance_scale, r.stg_scale, r.modality_scale, r.guidance_rescale};
  g.audio = {r.audio_guidance_scale, r.audio_stg_scale, r.audio_modality_scale, r.audio_guidance_rescale};
  g.stg_blocks = kStgBlocks;
  bool any_block = false;
  for (int64_t b : g.stg_blocks) any_block = any_block || (b >= 0 && b < config.num_layers);
  if (!config.perturbed_attn || !any_block) g.video.stg = g.audio.stg = 0.0;
  return g;
}

const std::vector<double>& ltx2_distilled_stage1_sigmas() {
  static const std::vector<double> s = {1.0, 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875};
  return s;
}

const std::vector<double>& ltx2_distilled_stage2_sigmas() {
  static const std::vector<double> s = {0.909375, 0.725, 0.421875};
  return s;
}

std::vector<at::Tensor> Ltx2Parts::weights() const {
  std::vector<at::Tensor> all = transformer->weights();
  auto add = [&all](const std::vector<at::Tensor>& w) { all.insert(all.end(), w.begin(), w.end()); };
  if (audio_decoder) add(audio_decoder->weights());
  if (vocoder) add(vocoder->weights());
  if (upsampler) add(upsampler->weights());
  return all;
}


// One generation on this rank: both streams' shards, the text conditioning,
// the stage it is in and the next step over both stages.
class Ltx2TextToVideo::Job final : public VideoJob {
 public:
  int64_t next_step() const override { return next_; }
  int64_t steps() const override {
    int64_t n = 0;
    for (const auto& s : schedules) n += s.steps();
    return n;
  }
  // The stage of the next step and that step within it.
  std::pair<size_t, int64_t> position() const {
    int64_t k = next_;
    for (size_t i = 0; i < schedules.size(); ++i) {
      if (k < schedules[i].steps() || i + 1 == schedules.size()) return {i, k};
      k -= schedules[i].steps();
    }
    return {0, 0};
  }

  GenerationRequest request;
  bool distilled = false;
  std::vector<SigmaSchedule> schedules;  // one per stage
  std::vector<LatentGrid> grids;         // the video grid of each stage
  int64_t audio_frames = 0;
  size_t stage = 0;  // the stage the shards below belong to
  Ltx2TextConditioning prompt;
  std::optional<Ltx2TextConditioning> cfg_pair;
  std::optional<Ltx2TextConditioning> negative;  // guidance-parallel half 0's unconditional pass
  Ltx2Guidance guidance;
  GuidanceGroups::Split split;        // guidance-parallel sub-groups (null: every pass on every rank)
  dist::Communicator* seq = nullptr;  // the ranks sharing the tokens (the shards are over them)
  parallel::SequenceShard video_shard, audio_shard;
  at::Tensor video_coords, audio_coords;  // this rank's tokens
  at::Tensor video, audio;                // this rank's shards, fp32, normalised
  int64_t next_ = 0;
  double denoise_seconds = 0;
};

Ltx2TextToVideo::Ltx2TextToVideo(Model& model, dist::Communicator& comm, PromptEncoder& prompts)
    : model_(model),
      parts_(dynamic_cast<const Ltx2Parts&>(*model.parts)),
      comm_(comm),
      prompts_(prompts),
      groups_(comm) {}

Result<std::unique_ptr<VideoJob>> Ltx2TextToVideo::start(const GenerationRequest& r) {
  const Ltx2Transformer& model = *parts_.transformer;
  const Ltx2TransformerConfig& tc = model.config();
  const at::Device device = model.device();
  auto job = std::make_unique<Job>();
  job->request = r;
  job->distilled = r.pipeline == "distilled";

  // Guidance: the request's terms for the guided pipeline, none for the distilled one.
  if (!job->distilled) job->guidance = ltx2_request_guidance(r, tc);
  const Ltx2Guidance& g = job->guidance;

  // 1. Text: rank 0 encodes [negative, positive]; every rank receives both contexts.
  LTX_ASSIGN_OR_RETURN(EncodedPrompts text, prompts_.encode(comm_.rank() == 0
                                                                ? std::vector<std::string>{r.negative_prompt, r.prompt}
                                                                : std::vector<std::string>{}));
  auto [vctx, actx] = split_ltx2_contexts(text.embeddings.to(device), parts_.video_context_width);
  at::Tensor mask = text.mask.to(device);
  // The step plan: guidance-parallel sub-groups each run some of the passes.
  const parallel::StepPlan plan = plan_for(r);
  job->seq = &comm_;
  if (plan.guidance_groups > 1) {
    job->split = groups_.get(plan.guidance_groups);
    job->seq = job->split.group;
    if (job->split.peers->rank() == 0) {  // peer 0 runs the unconditional pass
      job->negative = model.prepare_text(vctx.narrow(0, 0, 1), mask.narrow(0, 0, 1), actx.narrow(0, 0, 1),
                                         mask.narrow(0, 0, 1));
    }
  } else if (g.cfg()) {
    job->cfg_pair = model.prepare_text(vctx, mask, actx, mask);
  }
  job->prompt = model.prepare_text(vctx.narrow(0, 1, 1), mask.narrow(0, 1, 1), actx.narrow(0, 1, 1),
                                   mask.narrow(0, 1, 1));

  // 2. Grids and schedules.
  const LatentGrid full = model_.geometry.grid(r.width, r.height, r.num_frames);
  // round(frames / fps * rate / hop / 4) audio latent frames, at least one.
  job->audio_frames = std::max<int64_t>(1, model_.geometry.audio_frame_at(r.num_frames, r.fps));
  if (job->distilled) {
    job->grids = {LatentGrid{full.frames, full.height / 2, full.width / 2, 0}, full};
    const int64_t train = model_.scheduler->config().num_train_timesteps;
    job->schedules = {fixed_schedule(ltx2_distilled_stage1_sigmas(), train),
                      fixed_schedule(ltx2_distilled_stage2_sigmas(), train)};
  } else {
    job->grids = {full};
    LTX_ASSIGN_OR_RETURN(SigmaSchedule s, model_.scheduler->schedule(r.num_steps, full.num_tokens()));
    job->schedules = {s};
  }

  // 3. The same noise on every rank: video [1, C, F, H, W], then audio [1, Ca, T, M].
  const LatentGrid& g0 = job->grids[0];
  auto gen = at::make_generator<at::CPUGeneratorImpl>(r.seed);
  at::Tensor video = pack_latents(at::randn({1, tc.in_channels, g0.frames, g0.height, g0.width}, gen));
  const int64_t ca = parts_.audio_latent_channels;
  at::Tensor audio = pack_ltx2_audio(at::randn({1, ca, job->audio_frames, tc.audio_in_channels / ca}, gen));
  dist::Communicator& seq = *job->seq;
  job->audio_shard = parallel::SequenceShard::make(job->audio_frames, seq.size(), seq.rank());
  job->audio = job->audio_shard.take(audio, 1).to(device);
  job->audio_coords = job->audio_shard.take(ltx2_audio_coords(1, job->audio_frames, tc), 2);
  job->video_shard = parallel::SequenceShard::make(g0.num_tokens(), seq.size(), seq.rank());
  job->video = job->video_shard.take(video, 1).to(device);
  job->video_coords = job->video_shard.take(ltx2_video_coords(1, g0.frames, g0.height, g0.width, r.fps, tc), 2);
  return std::unique_ptr<VideoJob>(std::move(job));
}

Status Ltx2TextToVideo::advance(VideoJob& base, const ProgressFn& progress, const CancelToken& cancel,
                                const StageFn& stage) {
  auto& job = dynamic_cast<Job&>(base);
  const int64_t total = job.steps();
  StepVerdict verdict = StepVerdict::kGoOn;
  StepGate gate = group_step_gate(comm_, cancel, &verdict);
  while (!job.denoised()) {
    auto [s, k] = job.position();
    if (s != job.stage) LTX_RETURN_IF_ERROR(upsample(job, stage));
    if (k == 0 && stage) stage(job.distilled ? (s == 0 ? "stage1" : "stage2") : "denoise");
    const int64_t offset = job.next_ - k;
    auto t0 = clock::now();
    auto last = t0;
    Ltx2DenoiseArgs a;
    a.video = job.video;
    a.audio = job.audio;
    a.video_shard = job.video_shard;
    a.audio_shard = job.audio_shard;
    a.video_coords = job.video_coords;
    a.audio_coords = job.audio_coords;
    a.prompt = &job.prompt;
    a.cfg_pair = job.cfg_pair ? &*job.cfg_pair : nullptr;
    a.guidance = job.guidance;
    if (job.split.peers != nullptr) {
      a.pass_group = job.split.group;
      a.pass_peers = job.split.peers;
      // Only peer 0 runs the unconditional pass; the others need no negative prompt.
      a.negative = job.negative ? &*job.negative : &job.prompt;
    }
    a.use_cross_timestep = true;  // diffusers' LTX2Pipeline
    a.begin_step = k;
    a.gate = gate;
    int64_t end = k;
    a.end_step = &end;
    auto observer = [&](int64_t i, const Ltx2StepTrace&) {
      auto now = clock::now();
      if (progress) progress(offset + i, total, std::chrono::duration<double>(now - last).count());
      last = now;
    };
    Ltx2Latents out = ltx2_denoise(*parts_.transformer, *model_.scheduler, job.schedules[s], a, observer);
    job.video = out.video;
    job.audio = out.audio;
    job.next_ = offset + end;
    job.denoise_seconds += std::chrono::duration<double>(clock::now() - t0).count();
    if (end < job.schedules[s].steps()) {  // the gate stopped the loop
      if (verdict == StepVerdict::kCancel) {
        return cancelled_error("cancelled after step " + std::to_string(job.next_) + " of " + std::to_string(total));
      }
      return Status();  // yielded
    }
  }
  return Status();
}

// Between the stages (collective): the stage-1 video latents to rank 0,
// un-normalised, upsampled x2, normalised, broadcast; both streams re-noised
// to stage 2's first sigma with fresh noise from the seed.
Status Ltx2TextToVideo::upsample(Job& job, const StageFn& stage) {
  if (stage) stage("upsample");
  auto t0 = clock::now();
  const Ltx2TransformerConfig& tc = parts_.transformer->config();
  const at::Device device = parts_.transformer->device();
  const LatentGrid& g1 = job.grids[0];
  const LatentGrid& g2 = job.grids[1];
  at::Tensor video = parallel::gather_sequence(comm_, job.video_shard, job.video, 1);
  at::Tensor up;
  Status local = catch_to_status([&]() -> Status {
    if (comm_.rank() != 0) return Status();
    const auto* decoder = dynamic_cast<const LtxVideoDecoder*>(model_.video_decoder.get());
    if (decoder == nullptr || !parts_.upsampler) return failed_precondition_error("rank 0 has no latent upsampler");
    const LtxVaeDecoder& vae = decoder->vae();
    at::Tensor z = vae.denormalize(unpack_latents(video, g1).to(vae.device(), at::kFloat));
    z = parts_.upsampler->forward(z);
    up = pack_latents(vae.normalize(z.to(vae.device(), at::kFloat)).to(at::kCPU, at::kFloat)).contiguous();
    return Status();
  });
  LTX_RETURN_IF_ERROR(comm_.all_ok(local).with_context("latent upsampler"));
  if (comm_.rank() != 0) up = at::empty({1, g2.num_tokens(), tc.in_channels}, at::TensorOptions().dtype(at::kFloat));
  up = up.to(comm_.device());
  comm_.broadcast(up, 0);

  const double sigma0 = job.schedules[1].sigmas[0];
  auto gen = at::make_generator<at::CPUGeneratorImpl>(job.request.seed + 2);
  at::Tensor video_noise = pack_latents(at::randn({1, tc.in_channels, g2.frames, g2.height, g2.width}, gen));
  const int64_t ca = parts_.audio_latent_channels;
  at::Tensor audio_noise = pack_ltx2_audio(at::randn({1, ca, job.audio_frames, tc.audio_in_channels / ca}, gen));
  job.video_shard = parallel::SequenceShard::make(g2.num_tokens(), comm_.size(), comm_.rank());
  at::Tensor v = job.video_shard.take(up.to(device), 1);
  job.video = sigma0 * job.video_shard.take(video_noise, 1).to(device) + (1.0 - sigma0) * v;
  job.audio = sigma0 * job.audio_shard.take(audio_noise, 1).to(device) + (1.0 - sigma0) * job.audio;
  job.video_coords = job.video_shard.take(ltx2_video_coords(1, g2.frames, g2.height, g2.width, job.request.fps, tc), 2);
  job.stage = 1;
  job.denoise_seconds += std::chrono::duration<double>(clock::now() - t0).count();
  return Status();
}

Result<GeneratedVideo> Ltx2TextToVideo::finish(VideoJob& base, const StageFn& stage) {
  auto& job = dynamic_cast<Job&>(base);
  LTX_CHECK(job.denoised(), "finish() needs a denoised generation, this one is at step ", job.next_, " of ",
            job.steps());
  const GenerationRequest& r = job.request;
  const Ltx2TransformerConfig& tc = parts_.transformer->config();
  GeneratedVideo out;
  out.denoise_seconds = job.denoise_seconds;
  // Rank 0 gathers both streams ([N * 1, shard_len, C] -> [1, N * shard_len, C]) and decodes;
  // when the video decode is shared, every rank gets the video latents and
  // decodes a share of the frames, and rank 0 alone decodes the sound.
  const bool shared = model_.placement.decoder.shared && comm_.size() > 1;
  // Over the ranks sharing the tokens (both halves of a guidance-parallel
  // group hold the same latents; the half with rank 0 gives it the whole).
  dist::Communicator& seq = *job.seq;
  at::Tensor video = shared ? seq.all_gather(job.video.contiguous()) : seq.gather(job.video.contiguous(), 0);
  at::Tensor audio = seq.gather(job.audio.contiguous(), 0);
  DecodeSettings ds;
  ds.decode_timestep = r.decode_timestep;
  ds.decode_noise_scale = r.decode_noise_scale;
  auto t0 = clock::now();
  at::Tensor shared_frames, video_latents;
  if (shared || comm_.rank() == 0) video_latents = job.video_shard.unpad(video.reshape({1, -1, tc.in_channels}), 1).cpu();
  if (shared) {
    if (stage) stage("video_decode");
    LTX_INTERNAL_ASSERT(model_.video_decoder != nullptr, "rank ", comm_.rank(), " has no video decoder");
    LTX_ASSIGN_OR_RETURN(shared_frames,
                         model_.video_decoder->decode_shared(video_latents, job.grids.back(), ds,
                                                             at::make_generator<at::CPUGeneratorImpl>(r.seed + 1), comm_));
  }
  if (comm_.rank() != 0) return out;
  out.latents = video_latents;
  out.audio_latents = job.audio_shard.unpad(audio.reshape({1, -1, tc.audio_in_channels}), 1).cpu();
  LTX_RETURN_IF_ERROR(catch_to_status([&]() -> Status {
    if (shared) {
      out.frames = shared_frames[0].cpu();
    } else {
      if (stage) stage("video_decode");
      auto decode_gen = at::make_generator<at::CPUGeneratorImpl>(r.seed + 1);
      LTX_INTERNAL_ASSERT(model_.video_decoder != nullptr, "rank 0 has no video decoder");
      out.frames = model_.video_decoder->decode(out.latents, job.grids.back(), ds, decode_gen)[0].cpu();
    }
    if (r.audio) {
      if (stage) stage("audio_decode");
      LTX_INTERNAL_ASSERT(parts_.audio_decoder && parts_.vocoder, "rank 0 has no audio decoder");
      const Ltx2AudioDecoder& dec = *parts_.audio_decoder;
      at::Tensor tokens = out.audio_latents * dec.latents_std().to(at::kFloat).cpu() +
                          dec.latents_mean().to(at::kFloat).cpu();
      at::Tensor mel = dec.decode(unpack_ltx2_audio(tokens, parts_.audio_latent_channels));
      out.audio.samples = parts_.vocoder->forward(mel)[0].to(at::kFloat).cpu();
      out.audio.sample_rate = parts_.vocoder->config().output_sampling_rate;
    }
    return Status();
  }).with_context("decoding"));
  out.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  return out;
}

parallel::StepPlan Ltx2TextToVideo::plan_for(const GenerationRequest& r) const {
  if (r.pipeline == "distilled") return parallel::StepPlan{};  // no guidance
  const Ltx2Transformer& model = *parts_.transformer;
  const Ltx2TransformerConfig& tc = model.config();
  const Ltx2Guidance g = ltx2_request_guidance(r, tc);
  const LatentGrid grid = model_.geometry.grid(r.width, r.height, r.num_frames);
  parallel::StepShape shape;
  // The audio tokens ride at the video width (an overestimate of their bytes).
  shape.tokens = grid.num_tokens() + std::max<int64_t>(1, model_.geometry.audio_frame_at(r.num_frames, r.fps));
  shape.width = tc.num_attention_heads * tc.attention_head_dim;
  shape.layers = tc.num_layers;
  shape.channels = tc.in_channels;
  shape.heads = std::gcd(tc.num_attention_heads, tc.audio_num_attention_heads);  // both must split
  // Split only where the passes pair up: CFG, with STG and modality isolation both on or both off.
  shape.passes = g.cfg() && g.stg() == g.modality() ? (g.stg() ? 4 : 2) : 1;
  shape.element_bytes = at::elementSize(model.dtype());
  shape.max_groups = 4;  // one pass per sub-group
  const StepPlanning& planning = model_.placement.planning;
  return parallel::choose_step_plan(comm_.size(), shape, planning.link_for(comm_.backend_name()), planning.guidance);
}

}  // namespace ltx::pipeline
