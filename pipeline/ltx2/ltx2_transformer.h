// Ltx2Transformer: the LTX-2 audio-video diffusion transformer (diffusers
// LTX2VideoTransformer3DModel; spec ltx2.md §3), 2.0 and 2.3, sequence-
// parallel over BOTH streams.
//
// Every rank holds the whole model and 1/N of the video tokens and 1/N of the
// audio tokens (each stream split by its own SequenceShard, padded at the
// tail). Per block the communication is (docs/architecture.md has the bytes):
//   video self-attention   Ulysses all-to-all (q, k, v, out) over video heads
//   audio self-attention   Ulysses all-to-all (q, k, v, out) over audio heads
//   text cross-attention   none (the text K/V are replicated)
//   audio-to-video         all-gather of the audio keys/values (short stream)
//   video-to-audio         Ulysses all-to-all of audio q/out, video k/v
// Norms, modulation, feed-forwards and projections are per token and local.
//
// Immutable after load: forward() is const and collective (every rank calls
// it with its shards, in the same order). Stream sessions reuse it with a
// per-layer prefix of cached keys/values for each of the four attentions
// that have sequence keys (Ltx2LayerKv) and receive the call's own.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "parallel/sequence_shard.h"
#include "parallel/ulysses_attention.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"
#include "pipeline/ltx2/ltx2_config.h"
#include "pipeline/ltx2/ltx2_rope.h"
#include "pipeline/model/latents.h"

namespace ltx::pipeline {

// Keys/values one block's attentions keep for later chunks of a stream.
// video_self / audio_self / v2a: this rank's heads (Ulysses), [B, S, h/N, d];
// a2v: all audio heads (every rank attends all of them), [B, S, Ha, da].
struct Ltx2LayerKv {
  LayerKv video_self;
  LayerKv audio_self;
  LayerKv a2v;  // audio keys/values of the audio-to-video attention
  LayerKv v2a;  // video keys/values of the video-to-audio attention
};

// The prompt's share of every step, computed once per request by
// prepare_text(): contexts after the caption projection (2.0) and, when the
// text keys/values do not depend on sigma, every layer's text K/V.
struct Ltx2TextConditioning {
  at::Tensor video_context;  // [B, L, cross_attention_dim] model dtype
  at::Tensor audio_context;  // [B, L, audio_cross_attention_dim]
  at::Tensor video_bias;     // [B, 1, 1, L] additive, (1 - mask) * -10000
  at::Tensor audio_bias;
  std::vector<LayerKv> video_kv;  // per layer, all heads [B, L, H, d]; empty when sigma-dependent
  std::vector<LayerKv> audio_kv;
};

// One stream's share of a call on this rank.
struct Ltx2StreamArgs {
  at::Tensor tokens;    // [B, shard_len, in_channels]; padded rows at the tail are ignored
  at::Tensor timestep;  // [B] or [B, shard_len], the 0..1000 scale
  at::Tensor coords;    // [B, axes, shard_len, 2] RoPE bounds of this rank's tokens (padding: any)
  parallel::SequenceShard shard;
  // Optional additive bias over real tokens for this stream's self-attention,
  // [S, P + S] (P = prefix length), e.g. block-causal.
  std::optional<at::Tensor> self_bias;
  // Optional additive bias of the cross-modal attention whose queries are this
  // stream, over real tokens: [S, P' + S_other] (P' = that attention's prefix).
  std::optional<at::Tensor> cross_bias;
};

struct Ltx2ForwardArgs {
  Ltx2StreamArgs video;
  Ltx2StreamArgs audio;
  at::Tensor sigma;        // [B], same scale as the timestep (diffusers' `sigma`)
  at::Tensor audio_sigma;  // [B]; undefined = sigma
  const Ltx2TextConditioning* text = nullptr;
  bool use_cross_timestep = true;   // a<->v modulation from the other stream's sigma
  bool isolate_modalities = false;  // skip the a<->v attentions (modality guidance pass)
  // STG: in these blocks the self-attention of batch entries with
  // perturbation_mask 0 returns the value projection (1 = unperturbed).
  std::vector<int64_t> stg_blocks;
  at::Tensor perturbation_mask;  // [B] float; undefined = all perturbed
  const std::vector<Ltx2LayerKv>* kv_prefix = nullptr;
  std::vector<Ltx2LayerKv>* kv_out = nullptr;  // receives this call's keys/values (real tokens)
  // The ranks that share this call's sequences (the shards are over them): a
  // sub-group of the model's group in a guidance-parallel step; null means
  // the model's own group.
  dist::Communicator* group = nullptr;
};

struct Ltx2Output {
  at::Tensor video;  // [B, shard_len, out_channels] model dtype
  at::Tensor audio;  // [B, audio shard_len, audio_out_channels]
};

class Ltx2Transformer {
 public:
  // From a diffusers transformer folder (config.json + safetensors) or an
  // original single-file checkpoint (config from its metadata, or inferred
  // from tensor names when it has none). Tensors stream one by one into
  // `dtype` on `device`.
  static Result<Ltx2Transformer> load(const std::string& path, dist::Communicator& comm,
                                      at::ScalarType dtype, const at::Device& device);
  static Result<Ltx2Transformer> from_checkpoint(const Ltx2TransformerConfig& config,
                                                 const SafetensorsCheckpoint& checkpoint,
                                                 dist::Communicator& comm, at::ScalarType dtype,
                                                 const at::Device& device);
  // Weights made in memory (diffusers names), e.g. for benchmarks.
  static Result<Ltx2Transformer> from_tensors(const Ltx2TransformerConfig& config,
                                              const std::map<std::string, at::Tensor>& tensors,
                                              dist::Communicator& comm, at::ScalarType dtype,
                                              const at::Device& device);
  // Expected tensors (diffusers names) and shapes of a config.
  static std::vector<ExpectedTensor> expected_tensors(const Ltx2TransformerConfig& config);
  // Original single-file name -> diffusers name; nullopt for tensors of
  // other components (connectors, VAEs, vocoder, text projection).
  static std::optional<std::string> canonical_name(const std::string& raw);

  const Ltx2TransformerConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  dist::Communicator& communicator() const { return *comm_; }
  const std::vector<at::Tensor>& weights() const { return weights_; }

  // Contexts [B, L, C] (2.0: connector output, caption_channels wide; 2.3:
  // already at the attention widths) and their 0/1 masks [B, L].
  Ltx2TextConditioning prepare_text(const at::Tensor& video_context, const at::Tensor& video_mask,
                                    const at::Tensor& audio_context, const at::Tensor& audio_mask) const;

  // One evaluation on this rank's shards (collective).
  Ltx2Output forward(const Ltx2ForwardArgs& args) const;

  struct Weights;

 private:
  Ltx2Transformer(Ltx2TransformerConfig config, std::shared_ptr<const Weights> weights,
                  dist::Communicator& comm, at::ScalarType dtype, at::Device device);
  static Result<Ltx2Transformer> assemble(const Ltx2TransformerConfig& config,
                                          std::map<std::string, at::Tensor>& loaded,
                                          dist::Communicator& comm, at::ScalarType dtype,
                                          const at::Device& device);
  static Status check_load_arguments(const Ltx2TransformerConfig& config, dist::Communicator& comm,
                                     at::ScalarType dtype);

  Ltx2TransformerConfig config_;
  std::shared_ptr<const Weights> w_;
  std::vector<at::Tensor> weights_;
  dist::Communicator* comm_;
  parallel::UlyssesAttention video_heads_;
  parallel::UlyssesAttention audio_heads_;
  at::ScalarType dtype_;
  at::Device device_;
};

// Whole-sequence convenience (tests, parity runner, benchmarks): shards both
// streams by the communicator's rank, runs forward() and gathers both outputs
// on every rank. Per-token tensors (timesteps [B, N], coords, biases) are
// given for the whole sequences; prefix/kv_out are passed through as they are.
struct Ltx2FullArgs {
  at::Tensor video, audio;                  // [B, Nv, C], [B, Na, Ca]
  at::Tensor timestep, audio_timestep;      // [B] or [B, N]; audio_timestep undefined = timestep
  at::Tensor sigma, audio_sigma;            // [B]
  at::Tensor video_coords, audio_coords;    // [B, 3, Nv, 2], [B, 1, Na, 2]
  const Ltx2TextConditioning* text = nullptr;
  bool use_cross_timestep = true;
  bool isolate_modalities = false;
  std::vector<int64_t> stg_blocks;
  at::Tensor perturbation_mask;
  std::optional<at::Tensor> video_self_bias, audio_self_bias, a2v_bias, v2a_bias;
  const std::vector<Ltx2LayerKv>* kv_prefix = nullptr;
  std::vector<Ltx2LayerKv>* kv_out = nullptr;
};
Ltx2Output ltx2_forward_full(const Ltx2Transformer& model, const Ltx2FullArgs& args);

}  // namespace ltx::pipeline
