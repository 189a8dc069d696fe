#include "pipeline/runtime/group_stats.h"

#include "common/check.h"

namespace ltx::pipeline {

at::Tensor group_std_ratio(dist::Communicator* group, const parallel::SequenceShard& shard, const at::Tensor& a,
                           const at::Tensor& b) {
  LTX_CHECK(a.dim() == 3 && a.sizes() == b.sizes(), "std ratio of [B, s, C] shards, got ", a.sizes(), " and ",
            b.sizes());
  LTX_CHECK(group != nullptr || shard.world_size == 1, "a sequence sharded over ", shard.world_size,
            " ranks needs their group for its statistics");
  auto sums = [&](const at::Tensor& x) {
    at::Tensor real = x.narrow(1, 0, shard.valid).to(at::kDouble);
    return at::stack({real.sum({1, 2}), real.pow(2).sum({1, 2})}, 1);  // [B, 2]
  };
  at::Tensor local = at::stack({sums(a), sums(b)}).unsqueeze(0).contiguous();  // [1, 2, B, 2]
  at::Tensor all = group != nullptr && group->size() > 1
                       ? group->all_gather(local.to(group->device())).sum(0).to(a.device())
                       : local.sum(0);  // [2, B, 2]
  const double n = static_cast<double>(shard.seq_len * a.size(2));
  auto std_of = [n](const at::Tensor& s) {
    at::Tensor mean = s.select(1, 0) / n;
    return ((s.select(1, 1) - n * mean * mean) / (n - 1)).clamp_min(0).sqrt();
  };
  return (std_of(all[0]) / std_of(all[1])).to(at::kFloat).view({a.size(0), 1, 1});
}

at::Tensor group_guidance(dist::Communicator* group, const parallel::SequenceShard& shard, const at::Tensor& uncond,
                          const at::Tensor& cond, double scale, double rescale) {
  at::Tensor v = uncond + scale * (cond - uncond);
  if (rescale > 0.0) v = rescale * (v * group_std_ratio(group, shard, cond, v)) + (1.0 - rescale) * v;
  return v;
}

}  // namespace ltx::pipeline
