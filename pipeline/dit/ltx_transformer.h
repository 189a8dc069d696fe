// LtxTransformer: the LTX-Video diffusion transformer (diffusers
// LTXVideoTransformer3DModel), sequence-parallel and ready for a KV cache.
//
// Immutable after load(): forward() is const and takes everything a call
// needs through its arguments (tokens of this rank's shard, timesteps, text
// conditioning, RoPE tables, an optional cached KV prefix per layer), so any
// number of sessions can share one model with no hidden state. Every rank of
// the group holds the whole model and calls forward() with its shard; the only
// communication is the Ulysses all-to-all inside self-attention (collective:
// all ranks call forward together). The communicator is borrowed and must
// outlive the model.
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
#include "pipeline/dit/ltx_rope.h"
#include "pipeline/model/latents.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"

namespace ltx::pipeline {

struct LtxAttentionWeights {
  LinearWeights to_q, to_k, to_v, to_out;
  at::Tensor norm_q;  // [inner]
  at::Tensor norm_k;  // [inner]
};

struct LtxBlockWeights {
  at::Tensor scale_shift_table;  // [6, inner]
  LtxAttentionWeights attn1;     // self-attention
  LtxAttentionWeights attn2;     // cross-attention
  LinearWeights ff_in;           // ff.net.0.proj
  LinearWeights ff_out;          // ff.net.2
};

struct LtxTransformerWeights {
  LinearWeights proj_in;
  LinearWeights time_linear_1, time_linear_2;  // time_embed.emb.timestep_embedder.linear_{1,2}
  LinearWeights time_linear;                   // time_embed.linear (6 modulation chunks)
  LinearWeights caption_linear_1, caption_linear_2;
  at::Tensor scale_shift_table;  // [2, inner]
  LinearWeights proj_out;
  std::vector<LtxBlockWeights> blocks;
};

// The prompt's share of every step: projected caption, its attention bias and
// the cross-attention keys/values of every layer. Computed once per request
// (and per guidance branch) by prepare_text(); read-only afterwards.
struct TextConditioning {
  at::Tensor bias;                 // [B, 1, 1, L], (1 - mask) * -10000 in the model dtype
  std::vector<LayerKv> cross_kv;   // per layer, all heads: [B, L, H, head_dim]
};

struct LtxForwardArgs {
  // This rank's tokens of the packed latents, [B, shard_len, in_channels]
  // (padded rows at the tail of the last shard are allowed and ignored).
  at::Tensor hidden_states;
  // Diffusion timesteps in the 0..1000 scale: [B] or per token [B, shard_len].
  at::Tensor timestep;
  const TextConditioning* text = nullptr;
  // RoPE tables for this rank's tokens, [shard_len, inner] (fp32).
  at::Tensor rope_cos, rope_sin;
  // Which tokens of the whole sequence this rank holds.
  parallel::SequenceShard shard;
  // The ranks that share this call's sequence (`shard` is over them): a
  // sub-group of the model's group under guidance-parallel steps; null means
  // the model's own group.
  dist::Communicator* group = nullptr;
  // Optional per-layer prefix of cached keys/values for this rank's heads,
  // attended by every token of this call ([B, P, H/N, head_dim] each).
  const std::vector<LayerKv>* kv_prefix = nullptr;
  // Optional additive self-attention bias over real tokens, [S, P + S]
  // (or [B, 1|H, S, P + S]); e.g. a block-causal mask. Padding is added here.
  std::optional<at::Tensor> self_attention_bias;
  // When set, receives this call's own keys/values per layer (real tokens
  // only, [B, S, H/N, head_dim]; never the prefix-extended tensors).
  std::vector<LayerKv>* kv_out = nullptr;
};

class LtxTransformer {
 public:
  // Loads from a diffusers folder (config.json + diffusion_pytorch_model*.safetensors,
  // sharded with an index too) or an original single-file checkpoint (.safetensors
  // with a `config` metadata entry; `model.diffusion_model.` prefix and `vae.*`
  // tensors accepted). Each tensor is read straight into `dtype` on `device`.
  static Result<LtxTransformer> load(const std::string& path, dist::Communicator& comm,
                                     at::ScalarType dtype, const at::Device& device);
  // Builds from config + checkpoint already opened (same checks as load()).
  static Result<LtxTransformer> from_checkpoint(const TransformerConfig& config,
                                                const SafetensorsCheckpoint& checkpoint,
                                                dist::Communicator& comm, at::ScalarType dtype,
                                                const at::Device& device);
  // Builds from named tensors in diffusers naming (same checks as load());
  // each is converted to `dtype` on `device`. Used by tools and benchmarks
  // that make weights in memory.
  static Result<LtxTransformer> from_tensors(const TransformerConfig& config,
                                             const std::map<std::string, at::Tensor>& tensors,
                                             dist::Communicator& comm, at::ScalarType dtype,
                                             const at::Device& device);
  // The expected tensor names (diffusers naming) and shapes for a config.
  static std::vector<ExpectedTensor> expected_tensors(const TransformerConfig& config);

  const TransformerConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  dist::Communicator& communicator() const { return *comm_; }
  // Ulysses x ring (parallel/ring_attention.h: usp_attention): this
  // transformer was loaded on `ulysses`, one of the sub-groups of consecutive
  // ranks of `whole`; attention then crosses the `ring` of those sub-groups
  // (rank g is ring member g / U), and the shards are over `whole`. For more
  // ranks than heads. Jobs only: a KV prefix, a KV output or an attention
  // bias need Ulysses alone (streams). Takes the sub-groups.
  void use_ring(std::unique_ptr<dist::Communicator> ulysses, std::unique_ptr<dist::Communicator> ring,
                dist::Communicator& whole);
  int ring_size() const { return ring_ != nullptr ? ring_->size() : 1; }
  int64_t num_heads() const { return config_.num_attention_heads; }
  int64_t head_dim() const { return config_.attention_head_dim; }
  int64_t inner_dim() const { return config_.inner_dim(); }
  // Every weight (as placed: the model's device and dtype).
  const std::vector<at::Tensor>& weights() const { return weights_; }

  // Projects the caption and computes every layer's cross-attention K/V.
  // encoder_hidden_states [B, L, caption_channels]; mask [B, L] (1 = token).
  TextConditioning prepare_text(const at::Tensor& encoder_hidden_states,
                                const at::Tensor& encoder_attention_mask) const;

  // One denoiser evaluation on this rank's shard (collective). Returns the
  // velocity for this rank's tokens, [B, shard_len, out_channels], model dtype.
  at::Tensor forward(const LtxForwardArgs& args) const;

  // Single-call convenience for whole sequences: shards `hidden_states`
  // [B, N, C] and per-token timesteps by this communicator's rank, runs
  // forward(), and gathers the full output [B, N, out_channels] on every rank.
  at::Tensor forward_full(const at::Tensor& hidden_states, const at::Tensor& timestep,
                          const TextConditioning& text, const LatentGrid& grid,
                          const RopeSettings& rope) const;

 private:
  LtxTransformer(TransformerConfig config, LtxTransformerWeights weights, dist::Communicator& comm,
                 at::ScalarType dtype, at::Device device);
  // Assembles the model from validated, converted tensors (diffusers names).
  static LtxTransformer assemble(const TransformerConfig& config,
                                 std::map<std::string, at::Tensor>& loaded,
                                 dist::Communicator& comm, at::ScalarType dtype,
                                 const at::Device& device);
  static Status check_load_arguments(const TransformerConfig& config, dist::Communicator& comm,
                                     at::ScalarType dtype);

  // (temb [B, T', 6*inner], embedded [B, T', inner]) for timesteps [B] or [B, n].
  std::pair<at::Tensor, at::Tensor> embed_timestep(const at::Tensor& timestep, int64_t batch) const;

  TransformerConfig config_;
  LtxTransformerWeights w_;
  std::vector<at::Tensor> weights_;
  dist::Communicator* comm_;
  parallel::UlyssesAttention attention_;
  std::unique_ptr<dist::Communicator> ulysses_, ring_;  // Ulysses x ring only
  at::ScalarType dtype_;
  at::Device device_;
};

}  // namespace ltx::pipeline
