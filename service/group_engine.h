// GroupEngine: runs the service's work on the whole sequence-parallel group.
//
// Every rank owns one GroupEngine with the loaded model, the prompt encoder
// and its SessionTable (its KV-cache shards of every open stream). Rank 0's
// inference thread calls run(work): it turns the work into one control
// command, which every rank (rank 0 too) executes through handle(); rank 0's
// handlers fill the item's WorkResult, which run() returns (frames encoded as
// MP4, the continuation state as JSON): the engine keeps no per-item state. Other ranks sit in serve() until Shutdown. Work that is cancelled
// stops at the next denoising step boundary on every rank (the CancelToken
// broadcast). Only the thread that owns the communicator calls into this.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "dist/communicator.h"
#include "dist/control_channel.h"
#include "pipeline/runtime/continuation_state.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/stream_session.h"
#include "pipeline/runtime/video_pipeline.h"
#include "service/work.h"

namespace ltx::service {

struct GroupEngineOptions {
  int64_t max_kv_bytes_per_rank = 0;    // 0 or -1 = unlimited
  std::string state_dir;                // blob store of exported states ("" = inline only)
  size_t state_inline_bytes = 4u << 20;
  // When set (the same on every rank), every stream's continuation state is
  // written there after each chunk (atomically, <id>.json) and removed when
  // the stream closes, so a restarted group resumes every session by its id.
  std::string sessions_dir;
  const std::atomic<bool>* stop_all = nullptr;  // rank 0: when set, running work stops at the next step
  // Rank 0, asked after each step of a video job: pause it here so other
  // work can run (the job resumes with a kVideoSlice). Optional.
  std::function<bool()> should_yield;
};

class GroupEngine {
 public:
  GroupEngine(pipeline::Model& model, dist::Communicator& comm, pipeline::PromptEncoder& prompts,
              dist::ControlChannel& channel, GroupEngineOptions options);

  // Rank 0. `progress` gets (step, steps, seconds) of each denoising step,
  // `stage` (optional) the name of each stage of a video job as it begins.
  WorkResult run(const Work& work, const pipeline::ProgressFn& progress, const pipeline::StageFn& stage = nullptr);
  // Rank 0: ends every rank's serve(); returns the group's verdict.
  Status shutdown();
  // Rank 0: one round trip through every rank (the heartbeat).
  Status ping();
  // Ranks other than 0: run commands until Shutdown.
  Status serve();

  // Every rank but rank 0 while it runs an item: one command (the control
  // channel's handler).
  Status handle(const dist::Command& command) { return handle(command, nullptr); }

  pipeline::StateModelInfo state_model() const;
  const pipeline::BlobStore* blob_store() const { return store_ ? &*store_ : nullptr; }

 private:
  // Rank 0's side of the item being run: what it asked for, and what the
  // handlers make for it (returned by run()). Null on the other ranks.
  struct Rank0Item {
    const Work& work;
    const pipeline::ProgressFn& progress;
    const pipeline::StageFn& stage;
    WorkResult result;
    at::Tensor frames;         // encoded as MP4 after the command
    pipeline::AudioTrack audio;  // its sound track, when there is one
  };

  Status handle(const dist::Command& command, Rank0Item* item);
  pipeline::CancelToken cancel_token(const Rank0Item* item) const;
  static pipeline::ProgressFn progress_of(const Rank0Item* item);
  static pipeline::StageFn stage_of(const Rank0Item* item);
  Status run_video(const dist::BeginRequestCommand& c, Rank0Item* item);
  Status continue_video(const dist::StepCommand& c, Rank0Item* item);
  Status advance_video(const std::string& id, Rank0Item* item);
  Status open_stream(const dist::OpenStreamCommand& c, Rank0Item* item);
  Status open_stream_locally(const dist::OpenStreamCommand& c, Rank0Item* item);
  Status stream_chunk(const dist::StreamChunkCommand& c, Rank0Item* item);
  Status export_state(const dist::ExportStateCommand& c, Rank0Item* item);
  // After a chunk every rank made: the session's state to sessions_dir.
  Status persist(pipeline::Stream& s);
  Status share_kv_bytes(Rank0Item* item);  // collective: every rank's KV bytes to rank 0

  pipeline::Model& model_;
  dist::Communicator& comm_;
  pipeline::PromptEncoder& prompts_;
  dist::ControlChannel& channel_;
  GroupEngineOptions options_;
  std::unique_ptr<pipeline::VideoPipeline> pipeline_;  // the model's (registry: make_video_pipeline)
  pipeline::KvBudget budget_;
  pipeline::SessionTable sessions_;
  // Video jobs that yielded between steps, by request id (every rank).
  std::map<std::string, std::unique_ptr<pipeline::VideoJob>> videos_;
  std::optional<pipeline::BlobStore> store_;
};

}  // namespace ltx::service
