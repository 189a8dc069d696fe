// Work and WorkResult: what rank 0's inference thread takes from the service
// queue and runs on the group, and what comes back.
//
// Plain structs (no JSON, no HTTP): ApiService makes Work from validated
// requests on an HTTP thread; GroupEngine turns it into control commands and
// runs it on every rank; ApiService then answers from the WorkResult. The
// cancel flag is the one thing both threads touch while the work runs.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/runtime/continuation_state.h"
#include "pipeline/runtime/stream_session.h"
#include "pipeline/runtime/video_pipeline.h"

namespace ltx::service {

struct Work {
  // kVideo starts a job and runs it until it ends or yields; kVideoSlice
  // resumes a yielded job at step `index`; kVideoDrop frees a yielded job
  // that was cancelled between slices.
  enum class Kind { kVideo, kVideoSlice, kVideoDrop, kOpenStream, kImportStream, kChunk, kExportState, kCloseStream };
  Kind kind = Kind::kVideo;
  std::string id;       // video job or stream id
  int64_t index = 0;    // kChunk: the chunk; kVideoSlice: the step it resumes at
  pipeline::VideoParams params;                         // kVideo (and its slices), kOpenStream, kChunk
  std::shared_ptr<const pipeline::ContinuationState> state;  // kImportStream
  std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  std::chrono::steady_clock::time_point queued_at = std::chrono::steady_clock::now();
  uint64_t serial = 0;  // unique per work item
};

struct WorkResult {
  Status status;
  bool finished = true;       // kVideo/kVideoSlice: false when the job yielded before its last step
  int64_t next_step = 0;      // ... and the step it will resume at
  std::string mp4;            // kVideo, kChunk
  std::string thumbnail_png;  // kVideo: its first frame
  int64_t first_frame = 0;    // kChunk
  int64_t frame_count = 0;    // kVideo, kChunk
  bool has_audio = false;     // kVideo, kChunk: the MP4 has a sound track
  bool repeated = false;      // kChunk
  int64_t last_chunk = -1;    // kImportStream: the imported session's last chunk
  std::string state_json;     // kExportState
  double seconds = 0;         // on the group, for the whole item
  double denoise_seconds = 0;  // for a chunk: its whole next_chunk (denoise and rank 0's decode)
  double decode_seconds = 0;
  double encode_seconds = 0;  // MP4 encoding on rank 0
  std::vector<int64_t> kv_bytes_per_rank;  // after the item, every rank's KV cache bytes
  int64_t prompt_cache_hits = 0, prompt_cache_misses = 0;  // rank 0's prompt cache, totals
  size_t sessions = 0;        // sessions open on the group after the item
};

const char* work_kind_name(Work::Kind kind);

// Work that runs a video job's steps on the group.
inline bool runs_video_steps(Work::Kind k) { return k == Work::Kind::kVideo || k == Work::Kind::kVideoSlice; }

}  // namespace ltx::service
