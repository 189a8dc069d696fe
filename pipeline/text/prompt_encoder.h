// PromptEncoder: rank 0 tokenizes and encodes prompts; every rank of the group
// ends with the same embeddings and masks.
//
// Only rank 0 holds a TextEncoder (tokenizer + Gemma 3 or T5 weights); other
// ranks hold none and receive tensors of the right shape and dtype by
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
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/text/gemma3_encoder.h"
#include "pipeline/text/t5_encoder.h"
#include "pipeline/text/tokenizer.h"

namespace ltx::pipeline {

struct EncodedPrompts {
  at::Tensor embeddings;  // [B, T, D] in the encoder's dtype
  at::Tensor mask;        // [B, T] int64, 1 = token
};

// Rank 0's tokenizer plus one text model.
class TextEncoder {
 public:
  static TextEncoder gemma3(Tokenizer tokenizer, Gemma3TextEncoder model);
  // `mask_to_t5`: whether T5 sees the padding mask (LTX-Video's own code: yes;
  // diffusers LTXPipeline: no). The DiT gets the mask either way.
  static TextEncoder t5(Tokenizer tokenizer, T5Encoder model, bool mask_to_t5);

  Result<EncodedPrompts> encode(const std::vector<std::string>& prompts) const;
  // Everything besides the prompt that changes the output (for cache keys).
  const std::string& settings_key() const { return settings_key_; }

 private:
  TextEncoder(Tokenizer tokenizer, std::variant<Gemma3TextEncoder, T5Encoder> model, bool mask_to_t5);
  Tokenizer tokenizer_;
  std::variant<Gemma3TextEncoder, T5Encoder> model_;
  bool mask_to_t5_ = true;
  std::string settings_key_;
};

class PromptEncoder {
 public:
  struct CacheStats {
    int64_t hits = 0;
    int64_t misses = 0;
    int64_t entries = 0;
  };

  // `encoder` must be set on rank 0 and empty on every other rank.
  PromptEncoder(dist::Communicator& comm, std::optional<TextEncoder> encoder, size_t cache_capacity = 64);

  bool has_encoder() const { return encoder_.has_value(); }
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
  std::optional<TextEncoder> encoder_;
  size_t capacity_;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, std::pair<Entry, std::list<std::string>::iterator>> cache_;
  CacheStats stats_;
};

}  // namespace ltx::pipeline
