#include "pipeline/runtime/kv_cache.h"

#include "common/check.h"

namespace ltx::pipeline {

bool KvBudget::try_reserve(int64_t bytes) {
  int64_t cur = used_.load();
  while (true) {
    if (limit_ > 0 && cur + bytes > limit_) return false;
    if (used_.compare_exchange_weak(cur, cur + bytes)) return true;
  }
}

KvCache::KvCache(int64_t num_layers, KvCacheLimits limits, KvBudget* budget)
    : num_layers_(num_layers), limits_(limits), budget_(budget) {
  LTX_CHECK(limits_.window_chunks >= 1, "the KV window must hold at least one chunk, got ", limits_.window_chunks);
}

KvCache::~KvCache() { clear(); }

void KvCache::clear() {
  if (budget_ != nullptr) budget_->release(bytes_);
  chunks_.clear();
  bytes_ = 0;
  prefix_.clear();
}

Status KvCache::append(int64_t index, int64_t frames, std::vector<LayerKv> kv) {
  LTX_CHECK(static_cast<int64_t>(kv.size()) == num_layers_, "a chunk needs K/V for ", num_layers_, " layers, got ",
            kv.size());
  LTX_CHECK(chunks_.empty() || index > chunks_.back().index, "chunk ", index, " appended after chunk ",
            chunks_.back().index);
  Chunk c;
  c.index = index;
  c.frames = frames;
  c.tokens = kv[0].k.size(1);
  for (const auto& l : kv) {
    // Entries may hold different streams (LTX-2 keeps video and audio
    // keys per layer); each one's keys and values agree.
    LTX_CHECK(l.k.defined() && l.v.sizes() == l.k.sizes(), "a cached entry's keys and values differ in shape");
    c.bytes += static_cast<int64_t>(l.k.nbytes() + l.v.nbytes());
  }
  c.layers = std::move(kv);
  // What stays after eviction decides the charge: evict first in a dry run.
  int64_t freed = 0;
  std::vector<size_t> evict;
  const size_t keep = static_cast<size_t>(limits_.window_chunks) + (limits_.sink ? 1 : 0);
  {
    size_t count = chunks_.size() + 1;
    size_t pos = limits_.sink ? 1 : 0;
    while (count > keep && pos < chunks_.size()) {
      evict.push_back(pos);
      freed += chunks_[pos].bytes;
      ++pos;
      --count;
    }
  }
  const int64_t after = bytes_ - freed + c.bytes;
  if (limits_.max_bytes > 0 && after > limits_.max_bytes) {
    return resource_exhausted_error("the session's KV cache would need " + std::to_string(after) +
                                    " bytes on this rank, over its limit of " + std::to_string(limits_.max_bytes));
  }
  if (budget_ != nullptr && !budget_->try_reserve(c.bytes)) {
    return resource_exhausted_error("the worker's KV memory budget (" + std::to_string(budget_->limit()) +
                                    " bytes per rank) is full");
  }
  for (auto it = evict.rbegin(); it != evict.rend(); ++it) evict_at(*it);
  bytes_ += c.bytes;
  chunks_.push_back(std::move(c));
  restore();
  return Status();
}

void KvCache::evict_at(size_t position) {
  bytes_ -= chunks_[position].bytes;
  if (budget_ != nullptr) budget_->release(chunks_[position].bytes);
  chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(position));
  ++evictions_;
}

// One tensor per entry holds every cached token, in chunk order; each chunk's
// K/V become views of it, so the chunk tensors it was made from are freed and
// every token is held once (the budget's count). The copy happens once per
// change of the cache (an append, an eviction, a rebase), never per forward.
void KvCache::restore() {
  prefix_.clear();
  if (chunks_.empty()) return;
  for (int64_t e = 0; e < num_layers_; ++e) {
    std::vector<at::Tensor> ks, vs;
    for (const auto& c : chunks_) {
      ks.push_back(c.layers[e].k);
      vs.push_back(c.layers[e].v);
    }
    prefix_.push_back({at::cat(ks, 1), at::cat(vs, 1)});
  }
  for (int64_t e = 0; e < num_layers_; ++e) {
    int64_t offset = 0;
    for (auto& c : chunks_) {
      const int64_t n = c.layers[e].k.size(1);
      c.layers[e] = {prefix_[e].k.narrow(1, offset, n), prefix_[e].v.narrow(1, offset, n)};
      offset += n;
    }
  }
}

const std::vector<LayerKv>& KvCache::prefix() const { return prefix_; }

int64_t KvCache::tokens() const {
  int64_t t = 0;
  for (const auto& c : chunks_) t += c.tokens;
  return t;
}

void KvCache::rebase(const std::function<void(LayerKv&)>& rotate) {
  if (chunks_.empty()) return;
  for (auto& c : chunks_) {
    for (auto& l : c.layers) rotate(l);
  }
  restore();
}

}  // namespace ltx::pipeline
