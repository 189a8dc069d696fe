// Ltx2StreamSession: LTX-2 video with sound, chunk by chunk, with a KV cache
// of both streams sharded across the group.
//
// Chunk c is chunk_frames latent video frames and the audio latent frames
// that cover the same time: audio latent frames [A(c), A(c+1)) with
// A(c) = round(t(c) * rate / (hop * 4)), t(c) the chunk's first pixel frame
// over fps, so the chunks' audio laid end to end is the whole stream's.
// Positions are absolute (the video at latent frame c * chunk_frames, the
// audio at A(c)); the window's chunks stay where they were made.
//
// Every rank keeps, per window chunk and per layer, the four K/V of LTX-2's
// sequence attentions (Ltx2LayerKv: video self and audio self and the
// video keys of video-to-audio for this rank's heads, the audio keys of
// audio-to-video whole), appended from each chunk's clean timestep-0 pass
// and counted in a KvCache (window, sink, byte limits, the rank's budget).
// A chunk is denoised with the guided loop (ltx2_denoise) attending to the
// cached chunks. Rank 0 decodes each chunk's video with left context (as
// LTX-Video streams do) and its audio with kAudioContextFrames latent frames
// of left context through the causal audio VAE and the vocoder, dropping the
// context's samples. Chunk numbers are strict as in StreamSession.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/io/video_file.h"
#include "pipeline/ltx2/ltx2_generation.h"
#include "pipeline/ltx2/ltx2_pipeline.h"
#include "pipeline/model/model.h"
#include "pipeline/runtime/kv_cache.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/stream_session.h"
#include "pipeline/runtime/stream_settings.h"
#include "pipeline/runtime/video_pipeline.h"

namespace ltx::pipeline {

class Ltx2StreamSession final : public Stream {
 public:
  // Audio latent frames of left context when decoding a chunk's sound.
  static constexpr int64_t kAudioContextFrames = 32;

  // Collective (rank 0 encodes the prompts). `settings` must be validated;
  // `model.parts` must be Ltx2Parts.
  static Result<std::unique_ptr<Ltx2StreamSession>> create(const std::string& id, const StreamSettings& settings,
                                                           Model& model, dist::Communicator& comm,
                                                           PromptEncoder& prompts, KvBudget* budget);

  // Collective; c = last + 1 makes the next chunk, c = last repeats it.
  // The chunk carries its sound (audio, audio_latents, first_audio_frame).
  Result<StreamChunk> next_chunk(int64_t index, const ProgressFn& progress = nullptr,
                                 const CancelToken& cancel = {}) override;
  // Collective: rank 0 receives the session's `ltx2.v1` document
  // (ltx2_state.h), every window chunk of both streams gathered.
  Result<std::string> export_document(const BlobStore* store, size_t inline_bytes) override;
  // Collective: rank 0 passes a parsed, validated state, other ranks nullptr.
  // Rank 0 broadcasts its resume data; every rank rebuilds its KV shards by
  // replaying the clean passes over the window (any group size). The last
  // chunk cannot be repeated right after an import.
  static Result<std::unique_ptr<Ltx2StreamSession>> import_state(const std::string& id, const ContinuationState* state,
                                                                 Model& model, dist::Communicator& comm,
                                                                 KvBudget* budget);

  // Collective: rebuilds this rank's cache from the window's clean latents
  // (the reference the cached path must equal, and the import path).
  Status rebuild_cache();
  // Test hook: forgets every cached K/V (the window's latents stay), so the
  // next chunk attends to nothing earlier.
  void clear_cache() { cache_.clear(); }

  // The audio latent frame where chunk `index` starts (A(c) above).
  int64_t audio_frame_of_chunk(int64_t index) const;
  // The pixel frame where chunk `index` starts.
  int64_t first_frame_of_chunk(int64_t index) const;

  const std::string& id() const override { return id_; }
  const StreamSettings& settings() const { return settings_; }
  int64_t last_chunk() const override { return last_chunk_; }
  int64_t kv_bytes() const override { return cache_.bytes(); }
  std::chrono::steady_clock::time_point last_used() const override { return last_used_; }
  const KvCache& cache() const { return cache_; }

 private:
  Ltx2StreamSession(std::string id, StreamSettings settings, Model& model, dist::Communicator& comm,
                    KvBudget* budget);
  Status append_clean(int64_t index, const at::Tensor& video, const at::Tensor& audio);
  // Both contexts from the conditioner's embeddings ([negative; positive] with CFG, else [positive]).
  void prepare_text(const at::Tensor& embeddings, const at::Tensor& mask);
  Ltx2DenoiseArgs chunk_args(int64_t index) const;  // shards, coords, text, guidance of chunk `index`
  std::vector<Ltx2LayerKv> prefix() const;          // the cache as the transformer takes it
  void decode_on_root(StreamChunk& out, const LatentGrid& grid);

  std::string id_;
  StreamSettings settings_;
  Model& model_;
  const Ltx2Parts& parts_;
  dist::Communicator& comm_;
  at::Tensor text_embeddings_, text_mask_;  // what the conditioning was made from (for export)
  bool can_repeat_ = true;
  Ltx2TextConditioning prompt_;
  std::optional<Ltx2TextConditioning> cfg_pair_;
  Ltx2Guidance guidance_;
  KvCache cache_;  // four LayerKv per layer, flattened (video self, audio self, a2v, v2a)
  int64_t last_chunk_ = -1;
  // Window chunks' clean latents, this rank's tokens of each stream.
  std::map<int64_t, std::pair<at::Tensor, at::Tensor>> clean_shards_;
  at::Tensor video_context_;  // rank 0: last clean video latent frames [1, C, k, H, W] (normalised)
  at::Tensor audio_context_;  // rank 0: last clean audio latents [1, Ca, k, M] (denormalised)
  StreamChunk last_;          // rank 0: for repeats
  std::chrono::steady_clock::time_point last_used_ = std::chrono::steady_clock::now();
};

}  // namespace ltx::pipeline
