// PromptEncoder: rank 0 tokenizes and encodes prompts; every rank of the group
// ends with the same embeddings and masks.
//
// Only rank 0 holds the model's TextConditioner (tokenizer and text encoder,
// whatever the family); other ranks hold none and receive tensors of the right shape and dtype by
// broadcast. Rank 0 first broadcasts a small header (status, shapes, dtype),
// so an encoding failure on rank 0 becomes the same error on every rank and
// no rank waits for tensors that never come. A small LRU cache on rank 0,
// keyed by (encoder settings, prompt), skips re-encoding repeated prompts.
// encode() is collective and, like every collective here, called by the one
// thread that drives the group.
#pragma once

#include <ATen/ATen.h>

#include <list>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/model/roles.h"

namespace ltx::pipeline {

class PromptEncoder {
 public:
  struct CacheStats {
    int64_t hits = 0;
    int64_t misses = 0;
    int64_t entries = 0;
  };

  // `conditioner` must be set on rank 0 and null on every other rank.
  PromptEncoder(dist::Communicator& comm, std::unique_ptr<TextConditioner> conditioner, size_t cache_capacity = 64);

  bool has_encoder() const { return encoder_ != nullptr; }
  // Collective. `prompts` is read on rank 0 only. Returns the same tensors on
  // every rank, on the communicator's device.
  Result<EncodedPrompts> encode(const std::vector<std::string>& prompts);
  CacheStats cache_stats() const { return stats_; }

 private:
  Result<EncodedPrompts> encode_on_root(const std::vector<std::string>& prompts);

  struct Entry {
    at::Tensor embeddings;  // [T, D]
    at::Tensor mask;        // [T]
  };
  dist::Communicator& comm_;
  std::unique_ptr<TextConditioner> encoder_;
  size_t capacity_;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, std::pair<Entry, std::list<std::string>::iterator>> cache_;
  CacheStats stats_;
};

}  // namespace ltx::pipeline
