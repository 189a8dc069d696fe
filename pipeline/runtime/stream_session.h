// StreamSession: chunk-by-chunk video generation with a KV cache that is
// sharded across the sequence-parallel group, and the table of sessions.
//
// StreamSession is LTX-Video's Stream (the interface below). Every rank
// holds one StreamSession object per session id (in its
// SessionTable): its heads of the KV cache, its token shards of the window's
// clean latents and the prompt's prepared text conditioning. Rank 0 also
// keeps the decode context (the last clean latent frames) and the last chunk's
// frames. next_chunk() is collective: chunk c is denoised with the full
// scheduler loop, attending to the cached chunks (block-causal); its clean
// latents then get one timestep-0 pass whose own K/V are appended. Chunk
// numbers are strict: c = last + 1 proceeds, c = last repeats the last chunk
// without touching the cache, anything else is FAILED_PRECONDITION.
// Sessions share no mutable state except the rank-wide KvBudget counter.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/runtime/kv_cache.h"
#include "pipeline/runtime/stream_settings.h"
#include "pipeline/model/model.h"
#include "pipeline/io/video_file.h"
#include "pipeline/runtime/video_pipeline.h"

namespace ltx::pipeline {

struct StreamChunk {
  int64_t index = -1;
  int64_t first_frame = 0;  // pixel frame of the stream where this chunk starts
  at::Tensor frames;        // [F, 3, H, W] in [0, 1] (rank 0)
  at::Tensor latents;       // normalised packed clean latents of the chunk [1, n, C] (rank 0)
  bool repeated = false;    // true when the request repeated the last chunk
  // Families that make sound (rank 0): the chunk's sound and its latents.
  AudioTrack audio;
  at::Tensor audio_latents;     // normalised packed clean audio latents [1, Tc, Ca]
  int64_t first_audio_frame = 0;  // audio latent frame of the stream where its sound starts
};

struct ContinuationState;
class BlobStore;

// One open stream on one rank, whatever the family: what the engine and the
// session table drive. The registry opens the model's (open_stream in
// registry/model_registry.h): StreamSession for LTX-Video,
// Ltx2StreamSession for LTX-2.
class Stream {
 public:
  virtual ~Stream() = default;
  // Collective; c = last + 1 makes the next chunk, c = last repeats it; a
  // chunk that `cancel` stops is CANCELLED and leaves the session as it was.
  virtual Result<StreamChunk> next_chunk(int64_t index, const ProgressFn& progress, const CancelToken& cancel) = 0;
  // Collective: rank 0 receives the session's continuation state document
  // (parts above `inline_bytes` go to `store` when there is one).
  virtual Result<std::string> export_document(const BlobStore* store, size_t inline_bytes) = 0;
  virtual const std::string& id() const = 0;
  virtual int64_t last_chunk() const = 0;
  virtual int64_t kv_bytes() const = 0;  // this rank's cache
  virtual std::chrono::steady_clock::time_point last_used() const = 0;
};

class StreamSession final : public Stream {
 public:
  // Collective (rank 0 encodes the prompts). `settings` must be validated.
  static Result<std::unique_ptr<StreamSession>> create(const std::string& id, const StreamSettings& settings,
                                                       Model& model, dist::Communicator& comm,
                                                       PromptEncoder& prompts, KvBudget* budget);

  // Collective. See the header comment for the numbering rule. A chunk that
  // `cancel` stops is CANCELLED and leaves the session as it was before it.
  Result<StreamChunk> next_chunk(int64_t index, const ProgressFn& progress = nullptr,
                                 const CancelToken& cancel = {}) override;

  // Collective: rank 0 receives the session's continuation state (every
  // window chunk's clean latents gathered); other ranks get an empty state.
  Result<ContinuationState> export_state();
  // The same as the project's state document (continuation_state.h: to_json).
  Result<std::string> export_document(const BlobStore* store, size_t inline_bytes) override;
  // Collective: rank 0 passes a parsed, validated state, other ranks nullptr.
  // Rank 0 broadcasts it; every rank rebuilds its KV shards by replaying the
  // timestep-0 passes over the window (any group size). A repeat of the last
  // chunk is not available right after an import (its frames are not stored).
  static Result<std::unique_ptr<StreamSession>> import_state(const std::string& id, const ContinuationState* state,
                                                             Model& model, dist::Communicator& comm,
                                                             KvBudget* budget);

  // Test and import hook (collective): rebuild this rank's KV shards from the
  // window's clean latents by replaying the timestep-0 passes chunk by chunk.
  Status rebuild_cache();
  // When set, every chunk first rebuilds the cache from latents (slow; the
  // reference the cached path must equal).
  void set_recompute_past(bool on) { recompute_past_ = on; }

  const std::string& id() const override { return id_; }
  const StreamSettings& settings() const { return settings_; }
  int64_t last_chunk() const override { return last_chunk_; }
  int64_t kv_bytes() const override { return cache_.bytes(); }
  const KvCache& cache() const { return cache_; }
  std::chrono::steady_clock::time_point last_used() const override { return last_used_; }

 private:
  StreamSession(std::string id, StreamSettings settings, Model& model, dist::Communicator& comm,
                KvBudget* budget);
  LatentGrid chunk_grid(int64_t index) const;  // in the cache's (re-based) frame of reference
  Status append_clean(int64_t index, const at::Tensor& clean_shard);
  at::Tensor chunk_noise(int64_t index) const;

  std::string id_;
  StreamSettings settings_;
  Model& model_;
  dist::Communicator& comm_;
  std::unique_ptr<PreparedText> text_;
  at::Tensor text_embeddings_, text_mask_;  // what text_ was made from (for export)
  bool can_repeat_ = true;
  KvCache cache_;
  int64_t base_frame_ = 0;  // global latent frame at the cache's position 0
  int64_t last_chunk_ = -1;
  bool recompute_past_ = false;
  std::map<int64_t, at::Tensor> clean_shards_;  // window chunks' clean latents, this rank's tokens
  at::Tensor decode_context_;                   // rank 0: last clean latent frames [1, C, k, H, W] (normalised)
  StreamChunk last_;                            // rank 0: for repeats
  std::chrono::steady_clock::time_point last_used_;
};

// Strict chunk numbering, every family's: OK for the next chunk (last + 1)
// and for a repeat of the last one when `can_repeat`; otherwise
// FAILED_PRECONDITION saying which chunk may come.
Status check_chunk_number(const std::string& id, int64_t index, int64_t last_chunk, bool can_repeat);

// The sessions of one rank, addressed by id (the same ids on every rank).
class SessionTable {
 public:
  Status add(std::unique_ptr<Stream> session);
  Stream* find(const std::string& id);
  Status erase(const std::string& id);
  // Ids idle longer than `timeout` (rank 0 decides; the group then erases them).
  std::vector<std::string> idle(std::chrono::seconds timeout) const;
  size_t size() const { return sessions_.size(); }

 private:
  std::map<std::string, std::unique_ptr<Stream>> sessions_;
};

}  // namespace ltx::pipeline
