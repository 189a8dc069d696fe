// The roles every model family provides: the seam between a family's model
// code and the runtime, the engine and the service, which talk to these
// interfaces and never to one model's classes.
//
// * TextConditioner (rank 0): prompts -> the denoiser's context (the text
//   encoder plus whatever turns its output into that context), with masks.
// * Denoiser (every rank): the diffusion transformer with its
//   sequence-parallel plan (heads split across the group) and its KV-prefix
//   hooks for streaming; forward() is collective.
// * VideoDecoder (rank 0): latents -> frames; it owns its compression
//   factors and the latent normalisation.
// A family's scheduler set-up is the FlowMatchScheduler it configures.
// Implementations are immutable after loading (const calls, no hidden state),
// so sessions share one model; the opaque per-request objects they hand out
// (PreparedText, DenoiserPositions) are read-only too.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "parallel/sequence_shard.h"
#include "pipeline/model/latents.h"
#include "pipeline/model/placement.h"

namespace ltx::dist {
class Communicator;
}

namespace ltx::pipeline {

// ---- text ---------------------------------------------------------------------

struct EncodedPrompts {
  at::Tensor embeddings;  // [B, T, D] in the conditioner's dtype
  at::Tensor mask;        // [B, T] int64, 1 = token
};

class TextConditioner {
 public:
  virtual ~TextConditioner() = default;
  // Tokenizes and encodes a batch of prompts (rank 0; not collective).
  virtual Result<EncodedPrompts> encode(const std::vector<std::string>& prompts) const = 0;
  // Everything besides the prompt that changes the output (prompt-cache keys).
  virtual std::string settings_key() const = 0;
  virtual Placement placement() const = 0;
  // Every weight as placed (for checks and memory accounting).
  virtual std::vector<at::Tensor> weights() const = 0;
};

// ---- denoiser -------------------------------------------------------------------

// The prompt's share of every step, made once per request by
// Denoiser::prepare_text (for LTX-Video: the projected caption and every
// layer's cross-attention keys/values).
class PreparedText {
 public:
  virtual ~PreparedText() = default;
  virtual int64_t batch() const = 0;
};

// Position tables of one call's tokens on this rank (RoPE for LTX-Video).
class DenoiserPositions {
 public:
  virtual ~DenoiserPositions() = default;
};

struct DenoiserCall {
  // This rank's tokens of the packed latents [B, shard_len, latent_channels]
  // (padded rows at the tail of the last shard are allowed and ignored).
  at::Tensor latents;
  // Diffusion timesteps in the 0..1000 scale: [B] or per token [B, shard_len].
  at::Tensor timestep;
  const PreparedText* text = nullptr;
  const DenoiserPositions* positions = nullptr;  // made for `shard`
  parallel::SequenceShard shard;
  // The ranks that share this call's sequence (`shard` is over them): a
  // sub-group of the model's group in a guidance-parallel step; null means
  // the model's whole group.
  dist::Communicator* group = nullptr;
  // Streaming: the cached keys/values of earlier chunks for this rank's
  // heads, one per layer, attended by every token of this call.
  const std::vector<LayerKv>* kv_prefix = nullptr;
  // Streaming: receives this call's own keys/values per layer (real tokens
  // only, never the prefix-extended tensors).
  std::vector<LayerKv>* kv_out = nullptr;
  // Optional additive self-attention bias over real tokens [S, P + S].
  std::optional<at::Tensor> self_attention_bias;
};

class Denoiser {
 public:
  virtual ~Denoiser() = default;
  virtual Placement placement() const = 0;
  virtual int64_t latent_channels() const = 0;
  virtual int64_t context_channels() const = 0;  // width of the text embeddings it takes
  virtual int64_t num_layers() const = 0;        // one LayerKv per layer in a KV cache
  // The sequence-parallel plan: attention heads are split evenly across the
  // group, so the group size must divide this.
  virtual int64_t attention_heads() const = 0;
  virtual int64_t hidden_size() const = 0;  // the transformer's inner width (the scaling model's D)
  virtual std::vector<at::Tensor> weights() const = 0;  // as placed

  // Once per request: embeddings [B, L, context_channels] and mask [B, L].
  virtual std::unique_ptr<PreparedText> prepare_text(const at::Tensor& embeddings, const at::Tensor& mask) const = 0;
  // Once per grid: the positions of `shard`'s tokens of `grid` at `fps`.
  virtual std::unique_ptr<DenoiserPositions> positions(const LatentGrid& grid, double fps,
                                                       const parallel::SequenceShard& shard) const = 0;
  // One evaluation on this rank's shard (collective over the group). Returns
  // the velocity for this rank's tokens, [B, shard_len, latent_channels], fp32.
  virtual at::Tensor forward(const DenoiserCall& call) const = 0;
  // KV hook: re-expresses one layer's cached keys (this rank's heads) as if
  // they sat `frames` latent frames earlier, when a stream's window slides.
  virtual void rebase_keys(LayerKv& layer, int64_t frames, double fps) const = 0;
};

// ---- decoders -------------------------------------------------------------------

// Memory-bounded (approximate) decoding in overlapping spatial tiles.
struct VaeTiling {
  int64_t tile_latent = 16;    // tile size in latent pixels (512 px)
  int64_t stride_latent = 14;  // tile stride (448 px); tile - stride = overlap
};

struct DecodeSettings {
  double decode_timestep = 0.05;      // for timestep-conditioned decoders
  double decode_noise_scale = 0.025;  // fresh noise blended into the latents
  std::optional<VaeTiling> tiling;
};

class VideoDecoder {
 public:
  virtual ~VideoDecoder() = default;
  virtual Placement placement() const = 0;
  virtual std::vector<at::Tensor> weights() const = 0;  // as placed
  // Normalised packed latents [B, N, C] of `grid` -> frames [B, F, 3, H, W]
  // in [0, 1], fp32. `generator` draws the decode noise.
  virtual at::Tensor decode(const at::Tensor& latents, const LatentGrid& grid, const DecodeSettings& settings,
                            at::Generator generator) const = 0;
  // The same decode shared by every rank of `comm` (collective; each rank
  // passes the whole `latents` and a generator in the same state): the
  // frames on rank 0, undefined elsewhere.
  virtual Result<at::Tensor> decode_shared(const at::Tensor& latents, const LatentGrid& grid,
                                           const DecodeSettings& settings, at::Generator generator,
                                           dist::Communicator& comm) const = 0;
};

// ---- family parts -----------------------------------------------------------------

// The opaque base of a family's own parts (Model::parts); the family's
// pipeline downcasts to its concrete type. Immutable after loading.
class FamilyParts {
 public:
  virtual ~FamilyParts() = default;
  // Every weight this rank holds (for checks and memory accounting).
  virtual std::vector<at::Tensor> weights() const = 0;
};

}  // namespace ltx::pipeline
