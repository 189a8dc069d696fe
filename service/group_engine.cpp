#include "service/group_engine.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <chrono>

#include "common/check.h"
#include "common/logging.h"
#include "pipeline/io/video_file.h"
#include "pipeline/registry/model_registry.h"
#include "pipeline/runtime/video_params.h"

namespace ltx::service {
namespace {

using clock = std::chrono::steady_clock;

double seconds_since(clock::time_point t0) { return std::chrono::duration<double>(clock::now() - t0).count(); }

}  // namespace

const char* work_kind_name(Work::Kind kind) {
  switch (kind) {
    case Work::Kind::kVideo: return "video";
    case Work::Kind::kVideoSlice: return "video_slice";
    case Work::Kind::kVideoDrop: return "video_drop";
    case Work::Kind::kOpenStream: return "open_stream";
    case Work::Kind::kImportStream: return "import_stream";
    case Work::Kind::kChunk: return "chunk";
    case Work::Kind::kExportState: return "export_state";
    case Work::Kind::kCloseStream: return "close_stream";
  }
  return "unknown";
}

GroupEngine::GroupEngine(pipeline::Model& model, dist::Communicator& comm, pipeline::PromptEncoder& prompts,
                         dist::ControlChannel& channel, GroupEngineOptions options)
    : model_(model),
      comm_(comm),
      prompts_(prompts),
      channel_(channel),
      options_(std::move(options)),
      pipeline_(pipeline::make_video_pipeline(model, comm, prompts)),
      budget_(options_.max_kv_bytes_per_rank) {
  if (!options_.state_dir.empty()) store_.emplace(options_.state_dir);
}

pipeline::StateModelInfo GroupEngine::state_model() const {
  return pipeline::state_model_info(model_);
}

pipeline::ProgressFn GroupEngine::progress_of(const Rank0Item* item) {
  return item != nullptr ? item->progress : pipeline::ProgressFn();
}

pipeline::StageFn GroupEngine::stage_of(const Rank0Item* item) {
  return item != nullptr ? item->stage : pipeline::StageFn();
}

pipeline::CancelToken GroupEngine::cancel_token(const Rank0Item* item) const {
  pipeline::CancelToken token;
  token.enabled = true;  // the same on every rank: the service always runs cancellable work
  if (item != nullptr) {
    auto flag = item->work.cancel;
    const std::atomic<bool>* stop_all = options_.stop_all;
    token.requested = [flag, stop_all] { return flag->load() || (stop_all != nullptr && stop_all->load()); };
    token.yield_requested = options_.should_yield;
  }
  return token;
}

WorkResult GroupEngine::run(const Work& w, const pipeline::ProgressFn& progress, const pipeline::StageFn& stage) {
  LTX_INTERNAL_ASSERT(comm_.rank() == 0, "GroupEngine::run is rank 0's");
  Rank0Item item{w, progress, stage, WorkResult{}, at::Tensor(), pipeline::AudioTrack{}};
  WorkResult& out = item.result;
  const auto t0 = clock::now();
  dist::Command cmd;
  switch (w.kind) {
    case Work::Kind::kVideo: cmd = dist::BeginRequestCommand{w.id, "", pipeline::encode_params(w.params)}; break;
    case Work::Kind::kVideoSlice: cmd = dist::StepCommand{w.id, w.index}; break;
    case Work::Kind::kVideoDrop: cmd = dist::CancelCommand{w.id}; break;
    case Work::Kind::kOpenStream: cmd = dist::OpenStreamCommand{w.id, false, pipeline::encode_params(w.params)}; break;
    case Work::Kind::kImportStream: {
      dist::OpenStreamCommand c;
      c.session_id = w.id;
      c.import_state = true;
      cmd = c;
      break;
    }
    case Work::Kind::kChunk: cmd = dist::StreamChunkCommand{w.id, w.index}; break;
    case Work::Kind::kExportState: cmd = dist::ExportStateCommand{w.id}; break;
    case Work::Kind::kCloseStream: cmd = dist::EndSessionCommand{w.id}; break;
  }
  auto outcome = channel_.execute(cmd, [this, &item](const dist::Command& c) { return handle(c, &item); });
  out.status = outcome.status;
  if (out.status.ok() && item.frames.defined()) {
    const auto te = clock::now();
    const double fps = w.params.fps;
    auto mp4 = pipeline::encode_mp4(item.frames, fps, &item.audio);
    if (mp4.ok()) {
      out.mp4 = std::move(*mp4);
      out.frame_count = item.frames.size(0);
      if (w.kind == Work::Kind::kVideo || w.kind == Work::Kind::kVideoSlice) {
        // The video's first frame, for GET /v1/videos/{id}/content?variant=thumbnail.
        auto png = pipeline::encode_png(item.frames[0]);
        if (png.ok()) out.thumbnail_png = std::move(*png);
        if (!png.ok()) out.status = png.status();
      }
    } else {
      out.status = mp4.status();
    }
    out.encode_seconds = seconds_since(te);
  }
  out.seconds = seconds_since(t0);
  const auto stats = prompts_.cache_stats();
  out.prompt_cache_hits = stats.hits;
  out.prompt_cache_misses = stats.misses;
  out.sessions = sessions_.size();
  return std::move(out);
}

Status GroupEngine::shutdown() {
  return channel_.execute(dist::ShutdownCommand{}, [this](const dist::Command& c) { return handle(c); }).status;
}

Status GroupEngine::ping() {
  return channel_.execute(dist::PingCommand{}, [this](const dist::Command& c) { return handle(c); }).status;
}

Status GroupEngine::serve() {
  return channel_.serve([this](const dist::Command& c) { return handle(c); });
}

Status GroupEngine::handle(const dist::Command& command, Rank0Item* item) {
  if (const auto* c = std::get_if<dist::BeginRequestCommand>(&command)) return run_video(*c, item);
  if (const auto* c = std::get_if<dist::StepCommand>(&command)) return continue_video(*c, item);
  if (const auto* c = std::get_if<dist::CancelCommand>(&command)) {
    if (videos_.erase(c->request_id) == 0) return not_found_error("no paused video " + c->request_id);
    return Status();
  }
  if (const auto* c = std::get_if<dist::OpenStreamCommand>(&command)) return open_stream(*c, item);
  if (const auto* c = std::get_if<dist::StreamChunkCommand>(&command)) return stream_chunk(*c, item);
  if (const auto* c = std::get_if<dist::ExportStateCommand>(&command)) return export_state(*c, item);
  if (const auto* c = std::get_if<dist::EndSessionCommand>(&command)) {
    // Every rank gathers even when it holds no such session, so closing is
    // safe after a failure that left the ranks' tables apart.
    Status erased = sessions_.erase(c->session_id);
    if (comm_.rank() == 0 && !options_.sessions_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove(options_.sessions_dir + "/" + c->session_id + ".json", ec);
    }
    Status kv = share_kv_bytes(item);
    return erased.ok() ? kv : erased;
  }
  if (std::holds_alternative<dist::PingCommand>(command) || std::holds_alternative<dist::ShutdownCommand>(command)) {
    return Status();
  }
  return unimplemented_error(std::string("the service does not run ") +
                             dist::command_type_name(dist::command_type(command)) + " commands");
}

Status GroupEngine::run_video(const dist::BeginRequestCommand& c, Rank0Item* item) {
  // Every rank rebuilds the request from the command's encoded parameters.
  LTX_ASSIGN_OR_RETURN(pipeline::GenerationRequest r, pipeline::decode_params(c.params));
  if (videos_.count(c.request_id)) return failed_precondition_error("video " + c.request_id + " is already running");
  LTX_ASSIGN_OR_RETURN(videos_[c.request_id], pipeline_->start(r));
  return advance_video(c.request_id, item);
}

Status GroupEngine::continue_video(const dist::StepCommand& c, Rank0Item* item) {
  auto it = videos_.find(c.request_id);
  if (it == videos_.end()) return not_found_error("no paused video " + c.request_id);
  if (it->second->next_step() != c.step) {
    return failed_precondition_error("video " + c.request_id + " is at step " + std::to_string(it->second->next_step()) +
                                     " here, rank 0 resumes it at " + std::to_string(c.step));
  }
  return advance_video(c.request_id, item);
}

// Runs a job's steps until it ends, fails or yields; a job that ends or fails
// leaves the table (on every rank alike: the verdicts are broadcast).
Status GroupEngine::advance_video(const std::string& id, Rank0Item* item) {
  pipeline::VideoJob& job = *videos_.at(id);
  Status advanced = pipeline_->advance(job, progress_of(item), cancel_token(item), stage_of(item));
  if (!advanced.ok()) {
    videos_.erase(id);
    return advanced;
  }
  if (!job.denoised()) {
    if (item != nullptr) {
      item->result.finished = false;
      item->result.next_step = job.next_step();
    }
    return Status();
  }
  auto video = pipeline_->finish(job, stage_of(item));
  videos_.erase(id);
  LTX_RETURN_IF_ERROR(video.status());
  if (item != nullptr) {
    item->frames = video->frames;
    item->audio = video->audio;
    item->result.has_audio = !video->audio.empty();
    item->result.denoise_seconds = video->denoise_seconds;
    item->result.decode_seconds = video->decode_seconds;
  }
  return Status();
}

Status GroupEngine::open_stream(const dist::OpenStreamCommand& c, Rank0Item* item) {
  if (sessions_.find(c.session_id) != nullptr) return failed_precondition_error("session " + c.session_id + " already exists");
  // Whatever happens on this rank, every rank meets in share_kv_bytes(), so a
  // failure on one rank after the last collective cannot leave the others
  // waiting in a gather while it reports.
  Status opened = catch_to_status([&]() -> Status { return open_stream_locally(c, item); });
  channel_.settle(opened);  // a rank that failed mid-way must not enter the gather while a peer waits elsewhere
  Status kv = share_kv_bytes(item);
  return opened.ok() ? kv : opened;
}

Status GroupEngine::open_stream_locally(const dist::OpenStreamCommand& c, Rank0Item* item) {
  std::unique_ptr<pipeline::Stream> session;
  if (c.import_state) {
    const pipeline::ContinuationState* state = nullptr;
    if (comm_.rank() == 0) {
      LTX_INTERNAL_ASSERT(item != nullptr && item->work.state != nullptr, "no state to import on rank 0");
      state = item->work.state.get();
    }
    LTX_ASSIGN_OR_RETURN(session, pipeline::import_stream(c.session_id, state, model_, comm_, &budget_));
  } else {
    LTX_ASSIGN_OR_RETURN(pipeline::StreamSettings s, pipeline::decode_params(c.params));
    LTX_ASSIGN_OR_RETURN(session, pipeline::open_stream(c.session_id, s, model_, comm_, prompts_, &budget_));
  }
  if (item != nullptr) item->result.last_chunk = session->last_chunk();
  return sessions_.add(std::move(session));
}

Status GroupEngine::stream_chunk(const dist::StreamChunkCommand& c, Rank0Item* item) {
  pipeline::Stream* s = sessions_.find(c.session_id);
  if (s == nullptr) return not_found_error("no session " + c.session_id);
  const auto t0 = clock::now();
  // As in open_stream: every rank reaches share_kv_bytes() whatever its own
  // chunk did (rank 0's VAE decode runs after the last collective).
  Status made = catch_to_status([&]() -> Status {
    LTX_ASSIGN_OR_RETURN(auto chunk, s->next_chunk(c.index, progress_of(item), cancel_token(item)));
    if (item != nullptr) {
      item->frames = chunk.frames;
      item->audio = chunk.audio;
      item->result.has_audio = !chunk.audio.empty();
      item->result.first_frame = chunk.first_frame;
      item->result.repeated = chunk.repeated;
      item->result.denoise_seconds = seconds_since(t0);
    }
    return Status();
  });
  channel_.settle(made);  // as in open_stream
  Status kv = share_kv_bytes(item);
  if (!options_.sessions_dir.empty()) {  // the same on every rank (serve shares the state folder)
    // Persisting is collective (the export gathers the window): only when
    // every rank made the chunk.
    if (comm_.all_ok(made.ok() && kv.ok() ? Status() : internal_error("the chunk failed on a rank")).ok()) {
      Status saved = persist(*s);
      if (!saved.ok()) {
        LTX_LOG(kWarn) << "session " << c.session_id << ": not persisted: " << saved.message();
      }
    }
  }
  return made.ok() ? kv : made;
}

Status GroupEngine::persist(pipeline::Stream& s) {
  LTX_ASSIGN_OR_RETURN(std::string document, s.export_document(blob_store(), options_.state_inline_bytes));
  if (comm_.rank() != 0) return Status();
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(options_.sessions_dir, ec);
  if (ec) return unavailable_error("sessions folder " + options_.sessions_dir + ": " + ec.message());
  return pipeline::write_file_atomically(options_.sessions_dir + "/" + s.id() + ".json", document,
                                         "sessions folder " + options_.sessions_dir);
}

Status GroupEngine::export_state(const dist::ExportStateCommand& c, Rank0Item* item) {
  pipeline::Stream* s = sessions_.find(c.session_id);
  if (s == nullptr) return not_found_error("no session " + c.session_id);
  LTX_ASSIGN_OR_RETURN(std::string document, s->export_document(blob_store(), options_.state_inline_bytes));
  if (item != nullptr) item->result.state_json = std::move(document);
  return Status();
}

Status GroupEngine::share_kv_bytes(Rank0Item* item) {
  at::Tensor mine = at::full({1}, budget_.used(), at::TensorOptions().dtype(at::kLong).device(comm_.device()));
  at::Tensor all = comm_.gather(mine, 0);
  if (item != nullptr) {
    at::Tensor cpu = all.cpu().contiguous();
    item->result.kv_bytes_per_rank.assign(cpu.data_ptr<int64_t>(), cpu.data_ptr<int64_t>() + cpu.numel());
  }
  return Status();
}

}  // namespace ltx::service
