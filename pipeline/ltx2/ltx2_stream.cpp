#include "pipeline/ltx2/ltx2_stream.h"

#include <chrono>
#include <cmath>
#include <cstdint>

#include "common/check.h"
#include "pipeline/ltx2/ltx2_conditioner.h"
#include "pipeline/ltx2/ltx2_rope.h"
#include "pipeline/ltx2/ltx2_state.h"

namespace ltx::pipeline {
namespace {

constexpr int64_t kKvPerLayer = 4;  // video self, audio self, a2v, v2a

std::vector<LayerKv> flatten(std::vector<Ltx2LayerKv> kv) {
  std::vector<LayerKv> out;
  out.reserve(kv.size() * kKvPerLayer);
  for (auto& l : kv) {
    out.push_back(std::move(l.video_self));
    out.push_back(std::move(l.audio_self));
    out.push_back(std::move(l.a2v));
    out.push_back(std::move(l.v2a));
  }
  return out;
}

}  // namespace

Ltx2StreamSession::Ltx2StreamSession(std::string id, StreamSettings settings, Model& model, dist::Communicator& comm,
                                     KvBudget* budget)
    : id_(std::move(id)),
      settings_(std::move(settings)),
      model_(model),
      parts_(dynamic_cast<const Ltx2Parts&>(*model.parts)),
      comm_(comm),
      cache_(parts_.transformer->config().num_layers * kKvPerLayer,
             KvCacheLimits{settings_.window_chunks, settings_.sink, settings_.max_kv_bytes}, budget) {}

int64_t Ltx2StreamSession::first_frame_of_chunk(int64_t index) const {
  return model_.geometry.chunk_first_frame(settings_.chunk_frames, index);
}

int64_t Ltx2StreamSession::audio_frame_of_chunk(int64_t index) const {
  return model_.geometry.audio_frame_at(first_frame_of_chunk(index), settings_.fps);
}

Result<std::unique_ptr<Ltx2StreamSession>> Ltx2StreamSession::create(const std::string& id,
                                                                     const StreamSettings& settings, Model& model,
                                                                     dist::Communicator& comm, PromptEncoder& prompts,
                                                                     KvBudget* budget) {
  std::unique_ptr<Ltx2StreamSession> s(new Ltx2StreamSession(id, settings, model, comm, budget));
  const Ltx2Transformer& model_dit = *s->parts_.transformer;
  s->guidance_ = ltx2_request_guidance(settings, model_dit.config());
  const Ltx2Guidance& g = s->guidance_;

  LTX_ASSIGN_OR_RETURN(EncodedPrompts text,
                       prompts.encode(comm.rank() == 0 ? std::vector<std::string>{settings.negative_prompt, settings.prompt}
                                                       : std::vector<std::string>{}));
  const bool cfg = g.cfg();
  s->prepare_text(cfg ? text.embeddings : text.embeddings.narrow(0, 1, 1).contiguous(),
                  cfg ? text.mask : text.mask.narrow(0, 1, 1).contiguous());
  return s;
}

void Ltx2StreamSession::prepare_text(const at::Tensor& embeddings, const at::Tensor& mask_in) {
  const Ltx2Transformer& dit = *parts_.transformer;
  const at::Device device = dit.device();
  text_embeddings_ = embeddings.to(device);
  text_mask_ = mask_in.to(device);
  auto [vctx, actx] = split_ltx2_contexts(text_embeddings_, parts_.video_context_width);
  const int64_t b = text_embeddings_.size(0);
  if (guidance_.cfg()) cfg_pair_ = dit.prepare_text(vctx, text_mask_, actx, text_mask_);
  prompt_ = dit.prepare_text(vctx.narrow(0, b - 1, 1), text_mask_.narrow(0, b - 1, 1), actx.narrow(0, b - 1, 1),
                             text_mask_.narrow(0, b - 1, 1));
}

Ltx2DenoiseArgs Ltx2StreamSession::chunk_args(int64_t index) const {
  const Ltx2TransformerConfig& tc = parts_.transformer->config();
  const int64_t side = model_.geometry.spatial_compression, n = settings_.chunk_frames;
  const int64_t h = settings_.height / side, w = settings_.width / side;
  const int64_t a0 = audio_frame_of_chunk(index), ta = audio_frame_of_chunk(index + 1) - a0;
  Ltx2DenoiseArgs a;
  a.video_shard = parallel::SequenceShard::make(n * h * w, comm_.size(), comm_.rank());
  a.audio_shard = parallel::SequenceShard::make(ta, comm_.size(), comm_.rank());
  a.video_coords = a.video_shard.take(ltx2_video_coords(1, n, h, w, settings_.fps, tc, index * n), 2);
  a.audio_coords = a.audio_shard.take(ltx2_audio_coords(1, ta, tc, a0), 2);
  a.prompt = &prompt_;
  a.cfg_pair = cfg_pair_ ? &*cfg_pair_ : nullptr;
  a.guidance = guidance_;
  a.use_cross_timestep = true;
  return a;
}

std::vector<Ltx2LayerKv> Ltx2StreamSession::prefix() const {
  const std::vector<LayerKv>& flat = cache_.prefix();
  std::vector<Ltx2LayerKv> out;
  if (flat.empty()) return out;
  out.reserve(flat.size() / kKvPerLayer);
  for (size_t i = 0; i + kKvPerLayer <= flat.size(); i += kKvPerLayer) {
    out.push_back({flat[i], flat[i + 1], flat[i + 2], flat[i + 3]});
  }
  return out;
}

// The chunk's clean pass (sigma 0; the CFG batch when guidance runs CFG, so
// the prefix serves both halves): only its own K/V are kept.
Status Ltx2StreamSession::append_clean(int64_t index, const at::Tensor& video, const at::Tensor& audio) {
  const Ltx2DenoiseArgs a = chunk_args(index);
  const bool cfg = guidance_.cfg();
  auto two = [cfg](const at::Tensor& x) { return cfg ? at::cat({x, x}, 0) : x; };
  Ltx2ForwardArgs f;
  f.video = {two(video), at::Tensor(), two(a.video_coords), a.video_shard, std::nullopt, std::nullopt};
  f.audio = {two(audio), at::Tensor(), two(a.audio_coords), a.audio_shard, std::nullopt, std::nullopt};
  const int64_t b = f.video.tokens.size(0);
  f.video.timestep = f.audio.timestep = f.sigma = at::zeros({b}, at::TensorOptions().dtype(at::kFloat));
  f.text = cfg ? &*cfg_pair_ : &prompt_;
  f.use_cross_timestep = true;
  const std::vector<Ltx2LayerKv> pre = prefix();
  f.kv_prefix = pre.empty() ? nullptr : &pre;
  std::vector<Ltx2LayerKv> own;
  f.kv_out = &own;
  (void)parts_.transformer->forward(f);
  return cache_.append(index, settings_.chunk_frames, flatten(std::move(own)));
}

Status Ltx2StreamSession::rebuild_cache() {
  cache_.clear();
  for (const auto& [index, clean] : clean_shards_) LTX_RETURN_IF_ERROR(append_clean(index, clean.first, clean.second));
  return Status();
}

Result<StreamChunk> Ltx2StreamSession::next_chunk(int64_t index, const ProgressFn& progress,
                                                      const CancelToken& cancel) {
  last_used_ = std::chrono::steady_clock::now();
  LTX_RETURN_IF_ERROR(check_chunk_number(id_, index, last_chunk_, can_repeat_));
  if (index == last_chunk_) {
    StreamChunk again = last_;
    again.repeated = true;
    return again;
  }
  const Ltx2TransformerConfig& tc = parts_.transformer->config();
  const at::Device device = parts_.transformer->device();
  Ltx2DenoiseArgs a = chunk_args(index);
  const int64_t side = model_.geometry.spatial_compression, n = settings_.chunk_frames;
  const LatentGrid grid{n, settings_.height / side, settings_.width / side, 0};
  const int64_t ta = a.audio_shard.seq_len;

  // The same noise on every rank and group size: one generator per (seed, chunk), video then audio.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(settings_.seed * 1000003ull + static_cast<uint64_t>(index));
  at::Tensor video = pack_latents(at::randn({1, tc.in_channels, n, grid.height, grid.width}, gen));
  const int64_t ca = parts_.audio_latent_channels;
  at::Tensor audio = pack_ltx2_audio(at::randn({1, ca, ta, tc.audio_in_channels / ca}, gen));
  a.video = a.video_shard.take(video, 1).to(device);
  a.audio = a.audio_shard.take(audio, 1).to(device);
  const std::vector<Ltx2LayerKv> pre = prefix();
  a.kv_prefix = pre.empty() ? nullptr : &pre;
  LTX_ASSIGN_OR_RETURN(SigmaSchedule schedule, model_.scheduler->schedule(settings_.num_steps, grid.num_tokens()));
  CancelToken no_yield = cancel;  // a chunk runs to its end or is cancelled; it cannot pause
  no_yield.yield_requested = nullptr;
  a.gate = group_step_gate(comm_, no_yield);
  int64_t end_step = 0;
  a.end_step = &end_step;
  auto last = std::chrono::steady_clock::now();
  auto observer = [&](int64_t i, const Ltx2StepTrace&) {
    auto now = std::chrono::steady_clock::now();
    if (progress) progress(i, schedule.steps(), std::chrono::duration<double>(now - last).count());
    last = now;
  };
  Ltx2Latents clean = ltx2_denoise(*parts_.transformer, *model_.scheduler, schedule, a, observer);
  if (end_step < schedule.steps()) {
    return cancelled_error("session " + id_ + ": chunk " + std::to_string(index) + " cancelled after step " +
                           std::to_string(end_step));
  }

  LTX_RETURN_IF_ERROR(append_clean(index, clean.video, clean.audio));
  clean_shards_[index] = {clean.video, clean.audio};
  for (auto it = clean_shards_.begin(); it != clean_shards_.end();) {
    bool cached = false;
    for (const auto& c : cache_.chunks()) cached = cached || c.index == it->first;
    it = cached ? std::next(it) : clean_shards_.erase(it);
  }

  at::Tensor video_all = comm_.gather(clean.video.contiguous(), 0);
  at::Tensor audio_all = comm_.gather(clean.audio.contiguous(), 0);
  StreamChunk out;
  out.index = index;
  out.first_frame = first_frame_of_chunk(index);
  out.first_audio_frame = audio_frame_of_chunk(index);
  if (comm_.rank() == 0) {
    out.latents = a.video_shard.unpad(video_all.reshape({1, -1, tc.in_channels}), 1).cpu();
    out.audio_latents = a.audio_shard.unpad(audio_all.reshape({1, -1, tc.audio_in_channels}), 1).cpu();
    LTX_RETURN_IF_ERROR(catch_to_status([&]() -> Status {
      decode_on_root(out, grid);
      return Status();
    }).with_context("decoding chunk " + std::to_string(index)));
  }
  last_ = out;
  last_chunk_ = index;
  can_repeat_ = true;
  return out;
}

void Ltx2StreamSession::decode_on_root(StreamChunk& out, const LatentGrid& grid) {
  const ModelGeometry& geometry = model_.geometry;
  // Video: with the last decode_context clean latent frames as left context, whose frames are dropped.
  at::Tensor z = unpack_latents(out.latents, grid);
  const int64_t k = video_context_.defined() ? video_context_.size(2) : 0;
  at::Tensor with_context = k > 0 ? at::cat({video_context_, z}, 2) : z;
  DecodeSettings dec;
  dec.decode_timestep = settings_.decode_timestep;
  dec.decode_noise_scale = settings_.decode_noise_scale;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(settings_.seed * 1000003ull + static_cast<uint64_t>(out.index) + 7919ull);
  LTX_INTERNAL_ASSERT(model_.video_decoder != nullptr, "rank 0 has no video decoder");
  at::Tensor frames = model_.video_decoder->decode(pack_latents(with_context),
                                                   LatentGrid{k + grid.frames, grid.height, grid.width, 0}, dec, gen)[0].cpu();
  const int64_t context_frames = k > 0 ? geometry.pixel_frames(k) : 0;
  out.frames = k > 0 ? frames.narrow(0, context_frames, frames.size(0) - context_frames).contiguous() : frames;
  const int64_t keep = std::min<int64_t>(settings_.decode_context, with_context.size(2));
  video_context_ = keep > 0 ? with_context.narrow(2, with_context.size(2) - keep, keep).contiguous() : at::Tensor();

  // Audio: the causal audio VAE and the vocoder over [context, chunk]; the
  // context's 4k - 3 mel frames (hop samples each) are dropped.
  const Ltx2AudioDecoder& dec_a = *parts_.audio_decoder;
  at::Tensor tokens = out.audio_latents * dec_a.latents_std().to(at::kFloat).cpu() + dec_a.latents_mean().to(at::kFloat).cpu();
  at::Tensor za = unpack_ltx2_audio(tokens, parts_.audio_latent_channels);  // [1, Ca, Tc, M]
  const int64_t ka = audio_context_.defined() ? audio_context_.size(2) : 0;
  at::Tensor za_ctx = ka > 0 ? at::cat({audio_context_, za}, 2) : za;
  if (settings_.audio) {
    at::Tensor wave = parts_.vocoder->forward(dec_a.decode(za_ctx))[0].to(at::kFloat).cpu();  // [channels, samples]
    const int64_t hop = parts_.vocoder->config().hop();
    const int64_t drop = ka > 0 ? (Ltx2AudioVaeConfig::kTimeCompression * ka - 3) * hop : 0;
    out.audio.samples = wave.narrow(1, drop, wave.size(1) - drop).contiguous();
    out.audio.sample_rate = parts_.vocoder->config().output_sampling_rate;
  }
  const int64_t keep_a = std::min<int64_t>(kAudioContextFrames, za_ctx.size(2));
  audio_context_ = za_ctx.narrow(2, za_ctx.size(2) - keep_a, keep_a).contiguous();
}

Result<std::string> Ltx2StreamSession::export_document(const BlobStore* store, size_t inline_bytes) {
  const Ltx2TransformerConfig& tc = parts_.transformer->config();
  ContinuationState state;
  for (const auto& [index, clean] : clean_shards_) {
    const Ltx2DenoiseArgs a = chunk_args(index);
    at::Tensor v = comm_.gather(clean.first.contiguous(), 0);
    at::Tensor au = comm_.gather(clean.second.contiguous(), 0);
    if (comm_.rank() == 0) {
      state.window[index] = a.video_shard.unpad(v.reshape({1, -1, tc.in_channels}), 1).cpu();
      state.audio_window[index] = a.audio_shard.unpad(au.reshape({1, -1, tc.audio_in_channels}), 1).cpu();
    }
  }
  if (comm_.rank() != 0) return std::string();
  state.settings = settings_;
  state.last_chunk = last_chunk_;
  state.base_frame = 0;  // LTX-2 streams keep absolute positions
  state.text_embeddings = text_embeddings_.cpu();
  state.text_mask = text_mask_.cpu();
  if (video_context_.defined()) state.decode_context = video_context_.cpu();
  if (audio_context_.defined()) state.audio_context = audio_context_.cpu();
  if (last_.frames.defined()) {
    for (int64_t f = 0; f < last_.frames.size(0); ++f) {
      LTX_ASSIGN_OR_RETURN(std::string png, encode_png(last_.frames[f]));
      state.trailing_frames_png.push_back(std::move(png));
    }
  }
  // The public audio: the window's latents, denormalised, [1, C, T, M].
  std::vector<at::Tensor> tokens;
  for (const auto& [index, t] : state.audio_window) tokens.push_back(t);
  at::Tensor audio;
  if (!tokens.empty()) {
    const Ltx2AudioDecoder& dec = *parts_.audio_decoder;
    at::Tensor packed = at::cat(tokens, 1) * dec.latents_std().to(at::kFloat).cpu() + dec.latents_mean().to(at::kFloat).cpu();
    audio = unpack_ltx2_audio(packed, parts_.audio_latent_channels);
  }
  return ltx2_state_to_json(state, audio, model_.geometry.audio_sample_rate, state_model_info(model_), store,
                            inline_bytes);
}

Result<std::unique_ptr<Ltx2StreamSession>> Ltx2StreamSession::import_state(const std::string& id,
                                                                           const ContinuationState* state, Model& model,
                                                                           dist::Communicator& comm, KvBudget* budget) {
  // Rank 0 re-serialises the validated resume data; every rank parses the same bytes.
  const StateModelInfo info = state_model_info(model);
  std::string bytes;
  Status serialised;
  if (comm.rank() == 0) {
    LTX_CHECK(state != nullptr, "rank 0 imports a state");
    auto json = to_json(*state, info, nullptr, SIZE_MAX);
    if (json.ok()) {
      bytes = std::move(*json);
    } else {
      serialised = json.status();
    }
  }
  LTX_RETURN_IF_ERROR(comm.root_verdict(serialised, &bytes));
  LTX_ASSIGN_OR_RETURN(ContinuationState st, from_json(bytes, info, nullptr));

  std::unique_ptr<Ltx2StreamSession> s(new Ltx2StreamSession(id, st.settings, model, comm, budget));
  s->guidance_ = ltx2_request_guidance(st.settings, s->parts_.transformer->config());
  const int64_t want_batch = s->guidance_.cfg() ? 2 : 1;
  if (st.text_embeddings.size(0) != want_batch) {
    return invalid_argument_error("state: text.embeddings has batch " + std::to_string(st.text_embeddings.size(0)) +
                                  ", the settings' guidance needs " + std::to_string(want_batch));
  }
  s->prepare_text(st.text_embeddings, st.text_mask);
  s->last_chunk_ = st.last_chunk;
  s->can_repeat_ = false;
  const at::Device device = s->parts_.transformer->device();
  for (const auto& [index, latents] : st.window) {
    const Ltx2DenoiseArgs a = s->chunk_args(index);
    s->clean_shards_[index] = {a.video_shard.take(latents.to(device), 1),
                               a.audio_shard.take(st.audio_window.at(index).to(device), 1)};
  }
  if (comm.rank() == 0) {
    if (st.decode_context.defined()) s->video_context_ = st.decode_context;
    if (st.audio_context.defined()) s->audio_context_ = st.audio_context;
  }
  LTX_RETURN_IF_ERROR(s->rebuild_cache());
  return s;
}

}  // namespace ltx::pipeline
