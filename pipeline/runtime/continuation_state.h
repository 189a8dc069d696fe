// ContinuationState: a stream session as one portable JSON document, and the
// blob store that holds its large tensors.
//
// Document: {"kind": "ltx-worker.stream-state", "schema_version": 2,
// "session": {...}, "settings": {...}, "model": {...}, "tensors": {...},
// "trailing_frames_png": [...]}. Tensors (the text conditioning, the clean
// latents of the cached window, the decoder's left context) travel as one
// safetensors file, inline as base64 below a size threshold, otherwise as a
// content-addressed blob id (SHA-256 of the bytes) in a BlobStore folder;
// inline tensors carry their SHA-256 too (version 2; version 1 had none).
// Parsing validates everything (kind, version, base64, checksums, blob ids
// and sizes, every setting as the API validates it, the session position,
// tensor names, dtypes, shapes against the settings and the model, finite
// values, a non-empty text) and returns a clear error naming the field
// (INVALID_ARGUMENT, also for a blob the store lacks); it never touches a
// session. Rank 0 only.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/model/model.h"
#include "pipeline/runtime/stream_settings.h"

namespace ltx::pipeline {

constexpr const char* kStreamStateKind = "ltx-worker.stream-state";
constexpr int kStreamStateVersion = 2;

// Writes `bytes` to `path` atomically: a unique temporary file beside it,
// flushed to disk, renamed into place; on failure the temporary file goes.
// A full disk or a folder that cannot be written is UNAVAILABLE saying which
// (`what` names the folder's role in the message).
Status write_file_atomically(const std::string& path, const std::string& bytes, const std::string& what);

// Content-addressed files in one folder; ids are 64 lowercase hex digits
// (SHA-256), so no id can name a path outside the folder. Writes are atomic
// (a unique temporary file, flushed to disk, renamed into place); a full disk
// or a folder that cannot be written is UNAVAILABLE saying which, and the
// temporary file goes. Retention (prune) deletes by age and total bytes.
class BlobStore {
 public:
  explicit BlobStore(std::string dir) : dir_(std::move(dir)) {}
  Result<std::string> put(const std::string& bytes) const;
  Result<std::string> get(const std::string& id) const;
  static bool valid_id(const std::string& id);
  const std::string& dir() const { return dir_; }

  // Removes the temporary files a crashed writer left; returns how many.
  size_t remove_temporaries() const;
  struct Usage {
    int64_t files = 0, bytes = 0;                // what the store holds after
    int64_t pruned_files = 0, pruned_bytes = 0;  // what this call deleted
  };
  // Deletes blobs written more than `max_age_s` ago (0: no age limit), then
  // the oldest until at most `max_bytes` remain (0: no size limit). A state
  // that names a deleted blob can no longer be resumed (422 naming it).
  Usage prune(int64_t max_bytes, int64_t max_age_s) const;

 private:
  std::string dir_;
};

struct ContinuationState {
  StreamSettings settings;
  int64_t last_chunk = -1;
  int64_t base_frame = 0;
  at::Tensor text_embeddings;            // [B, L, D] (B = 2 with CFG: negative, positive)
  at::Tensor text_mask;                  // [B, L] int64
  std::map<int64_t, at::Tensor> window;  // chunk index -> clean latents [1, tokens, C]
  at::Tensor decode_context;             // [1, C, k, H, W] or undefined
  std::vector<std::string> trailing_frames_png;
  // Models that make sound: the window's clean audio latents (packed,
  // normalised) and the audio decoder's left context (denormalised [1, Ca, k, M]).
  std::map<int64_t, at::Tensor> audio_window;  // chunk index -> [1, audio frames of the chunk, audio_token_channels]
  at::Tensor audio_context;
};

// What the importing model must match.
struct StateModelInfo {
  int64_t latent_channels = 0;
  int64_t caption_channels = 0;
  ModelGeometry geometry;  // sizes a state's settings must fit
};
inline StateModelInfo state_model_info(const Model& model) {
  return {model.geometry.latent_channels, model.geometry.context_channels, model.geometry};
}

Result<std::string> to_json(const ContinuationState& state, const StateModelInfo& model, const BlobStore* store,
                            size_t inline_limit_bytes = 4u << 20);
Result<ContinuationState> from_json(const std::string& json, const StateModelInfo& model, const BlobStore* store);

std::string base64_encode(const std::string& bytes);
Result<std::string> base64_decode(const std::string& text);

}  // namespace ltx::pipeline
