// UlyssesAttention: self-attention over a sequence sharded across the group.
//
// Each rank holds q/k/v for its sequence shard and all heads, [B, S/N, H, D].
// One all-to-all turns that into the whole (padded) sequence for H/N local
// heads, [B, S, H/N, D]; attention runs there (optionally with a prefix of
// cached past keys/values for the local heads, a key-padding mask and an
// additive bias); a second all-to-all returns [B, S/N, H, D]. With one rank it
// is plain attention. Stateless apart from the communicator it borrows; every
// rank must call forward() with matching shapes (it is a collective).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "parallel/sequence_shard.h"

namespace ltx::parallel {

// OK when `group_size` divides `num_heads`; otherwise an error that says so,
// for start-up validation.
Status validate_head_split(int64_t num_heads, int group_size);

struct AttentionOptions {
  // [B, S_pad] (or [S_pad]) bool over the gathered padded sequence, true for
  // real tokens; padded keys get -inf, so they never change a real token.
  std::optional<at::Tensor> key_padding_mask;
  // Only the first `valid_keys` gathered keys are real, the rest is the
  // sequence's tail padding: the padding keys are dropped instead of masked,
  // so attention without a bias needs no mask at all and stays on the fused
  // (flash / cuDNN) kernels. Prefer it to key_padding_mask for tail padding.
  std::optional<int64_t> valid_keys;
  // Additive bias broadcastable to [B, H, S_pad, P + S_pad] for ALL heads (its
  // head dim, when not 1, is sliced to this rank's heads). P = prefix length.
  std::optional<at::Tensor> bias;
  // Cached keys/values of earlier tokens for this rank's heads, [B, P, H/N, D];
  // always attended (no padding inside a prefix).
  std::optional<at::Tensor> prefix_k;
  std::optional<at::Tensor> prefix_v;
  // Softmax scale; default 1/sqrt(D).
  std::optional<double> scale;
};

// This call's own keys/values after the first all-to-all: the whole padded
// sequence for this rank's heads, [B, S_pad, H/N, D] (never prefix-extended).
struct LocalHeadKv {
  at::Tensor k;
  at::Tensor v;
};

class UlyssesAttention {
 public:
  // Throws ltx::Error (INVALID_ARGUMENT) when the group size does not divide num_heads.
  UlyssesAttention(dist::Communicator& comm, int64_t num_heads);

  int64_t num_heads() const { return num_heads_; }
  // Overlap communication with attention over a batch of two or more (the
  // CFG pair): each sample's q/k/v travel in their own all-to-all, started
  // together; sample j's attention runs while the later samples' data moves
  // and its result starts back while the next sample computes (a pipeline
  // over the batch; Communicator::start_all_to_all). Equal to the unsplit
  // path up to the attention kernel's batching. Off by default; the
  // transformers turn it on for GPU groups.
  void set_overlap(bool on) { overlap_ = on; }
  bool overlap() const { return overlap_; }
  int64_t local_heads() const { return num_heads_ / comm_.size(); }
  // Index of this rank's first head.
  int64_t first_local_head() const { return local_heads() * comm_.rank(); }

  // [B, s, H, D] sequence shard -> [B, N*s, H/N, D] head shard (collective).
  at::Tensor sequence_to_heads(const at::Tensor& x) const;
  // The same for several tensors of one shape ([B, s, H, D] each) with ONE
  // all-to-all: q, k and v of self-attention travel together, so a layer
  // makes one collective there instead of three (same bytes, a third of the
  // launches and latencies). Bit-identical to calling sequence_to_heads on each.
  std::vector<at::Tensor> sequence_to_heads(const std::vector<at::Tensor>& xs) const;
  // [B, N*s, H/N, D] head shard -> [B, s, H, D] sequence shard (collective).
  at::Tensor heads_to_sequence(const at::Tensor& x) const;

  // q, k, v: [B, s, H, D] on this rank (s = shard length, padded); q, k and v
  // go out in one all-to-all (k and v alone when q's length differs). Returns
  // [B, s, H, D]. Cross-attention between two sharded sequences works the
  // same way: q [B, sq, H, D] and k/v [B, skv, H, D] of another length (the
  // key padding mask then covers the gathered keys). When `kv_out` is given it receives this call's own k/v for
  // the local heads (see LocalHeadKv).
  at::Tensor forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const AttentionOptions& options = {}, LocalHeadKv* kv_out = nullptr) const;

 private:
  at::Tensor forward_pipelined(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const AttentionOptions& options, LocalHeadKv* kv_out) const;

  dist::Communicator& comm_;
  int64_t num_heads_;
  bool overlap_ = false;
};

// Plain single-process attention with the same conventions (q [B, Sq, H, D],
// k/v [B, Skv, H, D], all heads): the reference the parallel path must equal,
// and the local attention of queries against replicated keys.
at::Tensor reference_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const AttentionOptions& options = {});

// Every rank's shard of `local` (its rows along `dim`) concatenated and the
// padding dropped: the full sequence on every rank (collective).
at::Tensor gather_sequence(dist::Communicator& comm, const SequenceShard& shard,
                           const at::Tensor& local, int64_t dim);

}  // namespace ltx::parallel
