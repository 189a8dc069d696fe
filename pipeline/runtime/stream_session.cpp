#include "pipeline/runtime/stream_session.h"

#include "common/check.h"
#include "common/logging.h"
#include "pipeline/runtime/continuation_state.h"
#include "pipeline/runtime/video_generation.h"

namespace ltx::pipeline {

StreamSession::StreamSession(std::string id, StreamSettings settings, Model& model, dist::Communicator& comm,
                             KvBudget* budget)
    : id_(std::move(id)),
      settings_(std::move(settings)),
      model_(model),
      comm_(comm),
      cache_(model.denoiser->num_layers(),
             KvCacheLimits{settings_.window_chunks, settings_.sink, settings_.max_kv_bytes}, budget),
      last_used_(std::chrono::steady_clock::now()) {}

Result<std::unique_ptr<StreamSession>> StreamSession::create(const std::string& id, const StreamSettings& settings,
                                                             Model& model, dist::Communicator& comm,
                                                             PromptEncoder& prompts, KvBudget* budget) {
  std::unique_ptr<StreamSession> s(new StreamSession(id, settings, model, comm, budget));
  const bool cfg = settings.guidance_scale > 1.0;
  LTX_ASSIGN_OR_RETURN(EncodedPrompts text,
                       prompts.encode(comm.rank() == 0 ? std::vector<std::string>{settings.negative_prompt, settings.prompt}
                                                       : std::vector<std::string>{}));
  s->text_embeddings_ = cfg ? text.embeddings : text.embeddings.narrow(0, 1, 1).contiguous();
  s->text_mask_ = cfg ? text.mask : text.mask.narrow(0, 1, 1).contiguous();
  s->text_ = model.denoiser->prepare_text(s->text_embeddings_, s->text_mask_);
  return s;
}

LatentGrid StreamSession::chunk_grid(int64_t index) const {
  const int64_t side = model_.geometry.spatial_compression;
  return LatentGrid{settings_.chunk_frames, settings_.height / side, settings_.width / side,
                    index * settings_.chunk_frames - base_frame_};
}

at::Tensor StreamSession::chunk_noise(int64_t index) const {
  // One generator per (seed, chunk): the same noise on every rank and group size.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(settings_.seed * 1000003ull + static_cast<uint64_t>(index));
  const LatentGrid g = chunk_grid(index);
  return pack_latents(at::randn({1, model_.denoiser->latent_channels(), g.frames, g.height, g.width}, gen));
}

Status StreamSession::append_clean(int64_t index, const at::Tensor& clean) {
  const Denoiser& model = *model_.denoiser;
  const LatentGrid g = chunk_grid(index);
  const bool cfg = settings_.guidance_scale > 1.0;
  DenoiserCall call;
  call.shard = parallel::SequenceShard::make(g.num_tokens(), comm_.size(), comm_.rank());
  std::unique_ptr<DenoiserPositions> positions = model.positions(g, settings_.fps, call.shard);
  call.positions = positions.get();
  call.latents = cfg ? at::cat({clean, clean}, 0) : clean;
  call.timestep = at::zeros({call.latents.size(0)}, at::TensorOptions().dtype(at::kFloat).device(model.placement().device));
  call.text = text_.get();
  const auto& prefix = cache_.prefix();
  call.kv_prefix = prefix.empty() ? nullptr : &prefix;
  std::vector<LayerKv> own;
  call.kv_out = &own;
  (void)model.forward(call);  // the clean pass: only its own K/V are kept
  return cache_.append(index, g.frames, std::move(own));
}

Status StreamSession::rebuild_cache() {
  cache_.clear();
  for (const auto& [index, clean] : clean_shards_) LTX_RETURN_IF_ERROR(append_clean(index, clean));
  return Status();
}

Result<StreamChunk> StreamSession::next_chunk(int64_t index, const ProgressFn& progress, const CancelToken& cancel) {
  last_used_ = std::chrono::steady_clock::now();
  LTX_RETURN_IF_ERROR(check_chunk_number(id_, index, last_chunk_, can_repeat_));
  if (index == last_chunk_) {
    StreamChunk again = last_;
    again.repeated = true;
    return again;
  }
  if (recompute_past_) LTX_RETURN_IF_ERROR(rebuild_cache());
  const Denoiser& model = *model_.denoiser;
  const ModelGeometry& geometry = model_.geometry;
  const LatentGrid g = chunk_grid(index);
  auto shard = parallel::SequenceShard::make(g.num_tokens(), comm_.size(), comm_.rank());
  LTX_ASSIGN_OR_RETURN(SigmaSchedule schedule, model_.scheduler->schedule(settings_.num_steps, g.num_tokens()));
  DenoiseSettings ds;
  ds.guidance_scale = settings_.guidance_scale;
  ds.group = &comm_;
  auto last = std::chrono::steady_clock::now();
  StepObserver observer = [&](int64_t i, const at::Tensor&, const at::Tensor&) {
    auto now = std::chrono::steady_clock::now();
    if (progress) progress(i, schedule.steps(), std::chrono::duration<double>(now - last).count());
    last = now;
  };
  const auto& prefix = cache_.prefix();
  CancelToken no_yield = cancel;  // a chunk runs to its end or is cancelled; it cannot pause
  no_yield.yield_requested = nullptr;
  int64_t end_step = 0;
  at::Tensor clean = denoise(model, *model_.scheduler, schedule, *text_, g, settings_.fps, shard,
                             shard.take(chunk_noise(index), 1), ds, observer, prefix.empty() ? nullptr : &prefix,
                             group_step_gate(comm_, no_yield), 0, &end_step);
  if (end_step < schedule.steps()) {
    return cancelled_error("session " + id_ + ": chunk " + std::to_string(index) + " cancelled after step " +
                           std::to_string(end_step));
  }

  // The chunk's clean timestep-0 pass feeds the cache; then slide the window.
  LTX_RETURN_IF_ERROR(append_clean(index, clean));
  clean_shards_[index] = clean;
  for (auto it = clean_shards_.begin(); it != clean_shards_.end();) {
    bool cached = false;
    for (const auto& c : cache_.chunks()) cached = cached || c.index == it->first;
    it = cached ? std::next(it) : clean_shards_.erase(it);
  }
  if (!settings_.sink && !cache_.chunks().empty()) {
    const int64_t new_base = cache_.chunks().front().index * settings_.chunk_frames;
    if (new_base != base_frame_) {
      const int64_t frames = new_base - base_frame_;
      const double fps = settings_.fps;
      cache_.rebase([&model, frames, fps](LayerKv& layer) { model.rebase_keys(layer, frames, fps); });
      base_frame_ = new_base;
    }
  }

  // Rank 0 decodes the chunk with left context and drops the context's frames.
  at::Tensor gathered = comm_.gather(clean.contiguous(), 0);
  StreamChunk out;
  out.index = index;
  const int64_t n = settings_.chunk_frames;
  // Chunk 0 decodes to pixel_frames(n) frames, every later one to t*n (the
  // first latent frame of a video stands for one pixel frame, the others for t).
  out.first_frame = geometry.chunk_first_frame(n, index);
  if (comm_.rank() == 0) {
    const int64_t channels = model.latent_channels();
    out.latents = shard.unpad(gathered.reshape({1, -1, channels}), 1).cpu();
    at::Tensor z = unpack_latents(out.latents, LatentGrid{n, g.height, g.width, 0});
    const int64_t k = decode_context_.defined() ? decode_context_.size(2) : 0;
    at::Tensor with_context = k > 0 ? at::cat({decode_context_, z}, 2) : z;
    DecodeSettings dec;
    dec.decode_timestep = settings_.decode_timestep;
    dec.decode_noise_scale = settings_.decode_noise_scale;
    auto gen = at::make_generator<at::CPUGeneratorImpl>(settings_.seed * 1000003ull + static_cast<uint64_t>(index) + 7919ull);
    LTX_INTERNAL_ASSERT(model_.video_decoder != nullptr, "rank 0 has no video decoder");
    at::Tensor frames = model_.video_decoder->decode(pack_latents(with_context), LatentGrid{k + n, g.height, g.width, 0},
                                                     dec, gen)[0].cpu();
    // The context's own frames (pixel_frames(k) of them) are dropped.
    const int64_t context_frames = k > 0 ? geometry.pixel_frames(k) : 0;
    out.frames = k > 0 ? frames.narrow(0, context_frames, frames.size(0) - context_frames).contiguous() : frames;
    const int64_t keep = std::min<int64_t>(settings_.decode_context, with_context.size(2));
    decode_context_ = keep > 0 ? with_context.narrow(2, with_context.size(2) - keep, keep).contiguous() : at::Tensor();
  }
  last_ = out;
  last_chunk_ = index;
  can_repeat_ = true;
  return out;
}

Result<ContinuationState> StreamSession::export_state() {
  ContinuationState state;
  const int64_t channels = model_.denoiser->latent_channels();
  for (const auto& [index, clean] : clean_shards_) {
    const LatentGrid g = chunk_grid(index);
    auto shard = parallel::SequenceShard::make(g.num_tokens(), comm_.size(), comm_.rank());
    at::Tensor all = comm_.gather(clean.contiguous(), 0);
    if (comm_.rank() == 0) state.window[index] = shard.unpad(all.reshape({1, -1, channels}), 1).cpu();
  }
  if (comm_.rank() != 0) return state;
  state.settings = settings_;
  state.last_chunk = last_chunk_;
  state.base_frame = base_frame_;
  state.text_embeddings = text_embeddings_.cpu();
  state.text_mask = text_mask_.cpu();
  if (decode_context_.defined()) state.decode_context = decode_context_.cpu();
  return state;
}

Result<std::unique_ptr<StreamSession>> StreamSession::import_state(const std::string& id, const ContinuationState* state,
                                                                   Model& model, dist::Communicator& comm,
                                                                   KvBudget* budget) {
  // Rank 0 re-serialises the validated state; every rank parses the same bytes.
  const StateModelInfo info = state_model_info(model);
  std::string bytes;
  Status serialised;
  if (comm.rank() == 0) {
    LTX_CHECK(state != nullptr, "rank 0 imports a state");
    auto json = to_json(*state, info, nullptr);
    if (json.ok()) {
      bytes = std::move(*json);
    } else {
      serialised = json.status();
    }
  }
  LTX_RETURN_IF_ERROR(comm.root_verdict(serialised, &bytes));
  LTX_ASSIGN_OR_RETURN(ContinuationState st, from_json(bytes, info, nullptr));

  std::unique_ptr<StreamSession> s(new StreamSession(id, st.settings, model, comm, budget));
  const at::Device device = model.denoiser->placement().device;
  s->text_embeddings_ = st.text_embeddings.to(device);
  s->text_mask_ = st.text_mask.to(device);
  s->text_ = model.denoiser->prepare_text(s->text_embeddings_, s->text_mask_);
  s->base_frame_ = st.base_frame;
  s->last_chunk_ = st.last_chunk;
  s->can_repeat_ = false;
  for (const auto& [index, latents] : st.window) {
    const LatentGrid g = s->chunk_grid(index);
    auto shard = parallel::SequenceShard::make(g.num_tokens(), comm.size(), comm.rank());
    s->clean_shards_[index] = shard.take(latents.to(device), 1);
  }
  if (comm.rank() == 0 && st.decode_context.defined()) s->decode_context_ = st.decode_context;
  LTX_RETURN_IF_ERROR(s->rebuild_cache());
  return s;
}

Result<std::string> StreamSession::export_document(const BlobStore* store, size_t inline_bytes) {
  LTX_ASSIGN_OR_RETURN(ContinuationState state, export_state());
  if (comm_.rank() != 0) return std::string();
  return to_json(state, state_model_info(model_), store, inline_bytes);
}

Status check_chunk_number(const std::string& id, int64_t index, int64_t last_chunk, bool can_repeat) {
  if (index == last_chunk && index >= 0) {
    if (can_repeat) return Status();
    return failed_precondition_error("session " + id + ": chunk " + std::to_string(index) +
                                     " was made before the import and cannot be repeated; ask for chunk " +
                                     std::to_string(index + 1));
  }
  if (index != last_chunk + 1) {
    return failed_precondition_error("session " + id + ": chunk " + std::to_string(index) +
                                     " requested; the next chunk is " + std::to_string(last_chunk + 1) +
                                     (last_chunk >= 0 ? " (or " + std::to_string(last_chunk) + " to repeat the last one)" : ""));
  }
  return Status();
}

Status SessionTable::add(std::unique_ptr<Stream> session) {
  const std::string id = session->id();
  if (sessions_.count(id)) return failed_precondition_error("session " + id + " already exists");
  sessions_.emplace(id, std::move(session));
  return Status();
}

Stream* SessionTable::find(const std::string& id) {
  auto it = sessions_.find(id);
  return it == sessions_.end() ? nullptr : it->second.get();
}

Status SessionTable::erase(const std::string& id) {
  if (sessions_.erase(id) == 0) return not_found_error("no session " + id);
  return Status();
}

std::vector<std::string> SessionTable::idle(std::chrono::seconds timeout) const {
  std::vector<std::string> out;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, s] : sessions_) {
    if (now - s->last_used() > timeout) out.push_back(id);
  }
  return out;
}

}  // namespace ltx::pipeline
