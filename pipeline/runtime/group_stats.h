// Statistics of a sequence sharded over a group, for the guidance rescale
// (diffusers' rescale_noise_cfg: std over every token and channel of each
// sample): reduced across the ranks that share the tokens, with each shard's
// tail padding left out, so a rescaled step equals one rank's.
#pragma once

#include <ATen/ATen.h>

#include "dist/communicator.h"
#include "parallel/sequence_shard.h"

namespace ltx::pipeline {

// std(a) / std(b) per sample [B, 1, 1] (unbiased, over every real token and
// channel of the whole sequence) for this rank's shards a, b [B, s, C] of
// `shard`; one all-gather of fp64 sums over `group` (null: this rank holds
// the whole sequence). Collective over `group`.
at::Tensor group_std_ratio(dist::Communicator* group, const parallel::SequenceShard& shard, const at::Tensor& a,
                           const at::Tensor& b);

// Classifier-free guidance on this rank's shard, uncond + scale (cond -
// uncond), with the rescale (0 disables it) toward the conditional
// prediction's std taken over the whole sequence (group_std_ratio).
at::Tensor group_guidance(dist::Communicator* group, const parallel::SequenceShard& shard, const at::Tensor& uncond,
                          const at::Tensor& cond, double scale, double rescale);

}  // namespace ltx::pipeline
