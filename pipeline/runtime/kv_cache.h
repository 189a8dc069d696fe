// KvCache: one streaming session's cached self-attention keys/values on one
// rank (this rank's heads only), chunk by chunk.
//
// Owned by its session object and passed down explicitly; nothing global
// (design rule 2). Only a chunk's own K/V are appended, never a
// prefix-extended tensor (rule 1). It keeps a window of the last W chunks,
// optionally plus the first chunk as an attention sink; evictions are
// explicit and counted. Bytes are charged to the session's limit and to the
// rank-wide KvBudget; an append that would exceed either is refused and
// changes nothing. Keys are stored post-RoPE in a frame of reference that
// starts at the oldest cached chunk; rebase() rotates them when the window
// slides (through the denoiser's hook) so positions stay in the trained range. Used by one thread at a time.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <vector>

#include "common/status.h"
#include "pipeline/model/latents.h"

namespace ltx::pipeline {

// Rank-wide accounting of KV bytes across sessions (thread-safe).
class KvBudget {
 public:
  explicit KvBudget(int64_t limit_bytes = 0) : limit_(limit_bytes) {}  // 0 = unlimited
  bool try_reserve(int64_t bytes);
  void release(int64_t bytes) { used_.fetch_sub(bytes); }
  int64_t used() const { return used_.load(); }
  int64_t limit() const { return limit_; }

 private:
  const int64_t limit_;
  std::atomic<int64_t> used_{0};
};

struct KvCacheLimits {
  int64_t window_chunks = 4;  // chunks kept (besides the sink)
  bool sink = false;          // keep chunk 0 for ever
  int64_t max_bytes = 0;      // per session on this rank; 0 = unlimited
};

class KvCache {
 public:
  struct Chunk {
    int64_t index = 0;
    int64_t frames = 0;  // latent frames
    int64_t tokens = 0;  // of the first entry (LTX-2: the video stream's)
    int64_t bytes = 0;
    std::vector<LayerKv> layers;  // [B, tokens, local heads, head_dim]
  };

  KvCache(int64_t num_layers, KvCacheLimits limits, KvBudget* budget);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  // Appends chunk `index` (one LayerKv per layer, or per entry: a family may
  // keep several per layer, e.g. LTX-2's four; exactly that chunk's tokens),
  // then evicts beyond the window. RESOURCE_EXHAUSTED leaves the cache as it was.
  Status append(int64_t index, int64_t frames, std::vector<LayerKv> kv);
  // Per-layer concatenation of the cached chunks (sink first); empty when
  // none. It is the cache's storage: chunks()' K/V are views of it, so each
  // token is held once and bytes() counts all the cache holds.
  const std::vector<LayerKv>& prefix() const;
  // Applies `rotate` to every cached layer (the denoiser's rebase_keys hook,
  // when the window slides and positions move back).
  void rebase(const std::function<void(LayerKv&)>& rotate);
  void clear();

  const std::vector<Chunk>& chunks() const { return chunks_; }
  int64_t tokens() const;
  int64_t bytes() const { return bytes_; }
  int64_t evictions() const { return evictions_; }
  const KvCacheLimits& limits() const { return limits_; }

 private:
  void evict_at(size_t position);
  void restore();  // rebuilds prefix_ from chunks_ and points the chunks at it
  int64_t num_layers_;
  KvCacheLimits limits_;
  KvBudget* budget_;
  std::vector<Chunk> chunks_;
  int64_t bytes_ = 0;
  int64_t evictions_ = 0;
  std::vector<LayerKv> prefix_;
};

}  // namespace ltx::pipeline
