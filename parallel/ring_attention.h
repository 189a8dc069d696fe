// Ring attention: attention over a sequence sharded across a group without
// gathering it. Every rank keeps its queries; the keys and values travel
// around the ring (N - 1 point-to-point shifts), and each block's partial
// result is merged with the running one by the log-sum-exp rule (the online
// softmax of flash attention), in fp32. Exact up to rounding, with O(s)
// memory per rank instead of O(S), and no limit from the head count: the
// second axis of sequence parallelism where Ulysses cannot split further
// (more ranks than heads) or should not (across nodes). usp_attention
// combines the two: Ulysses inside a sub-group, the ring across sub-groups.
// Collective over the communicators given; stateless.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <vector>

#include "dist/communicator.h"
#include "parallel/sequence_shard.h"

namespace ltx::parallel {

struct RingOptions {
  // Real keys in each ring member's block (index = ring rank), the rest of
  // the block is tail padding and never attended. Empty: every key is real.
  std::vector<int64_t> block_valid;
  // [B, N*s] or [N*s] bool over the ring's concatenated blocks, true for keys
  // that may be attended (a user mask), on top of block_valid.
  std::optional<at::Tensor> key_mask;
  std::optional<double> scale;  // default 1/sqrt(D)
};

// q, k, v: this ring member's block [B, s, H, D] (the same s everywhere).
// Returns this block's queries attended over every block's keys: [B, s, H, D]
// in q's dtype. A query row whose keys are all masked gives zeros.
at::Tensor ring_attention(dist::Communicator& ring, const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          const RingOptions& options = {});

// Ulysses x ring over a group split as ring_size sub-groups of `ulysses`
// consecutive ranks (ulysses.size() * ring.size() = the group; rank g is ring
// member g / U, Ulysses member g % U). Each rank holds its shard of the whole
// sequence (`shard`, over the whole group) for all heads, [B, s, H, D]:
// Ulysses gathers a sub-group's U shards for H/U heads, the ring attends
// across the sub-groups, Ulysses returns [B, s, H, D].
at::Tensor usp_attention(dist::Communicator& ulysses, dist::Communicator& ring, const SequenceShard& shard,
                         const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                         std::optional<double> scale = std::nullopt);

}  // namespace ltx::parallel
