#include "pipeline/runtime/guidance_groups.h"

#include "common/check.h"
#include "common/logging.h"

namespace ltx::pipeline {

GuidanceGroups::Split GuidanceGroups::get(int groups) {
  auto it = splits_.find(groups);
  if (it == splits_.end()) {
    LTX_CHECK(groups >= 2 && comm_.size() % groups == 0, groups, " guidance sub-groups do not split ", comm_.size(),
              " ranks");
    const int n = comm_.size() / groups, r = comm_.rank();
    auto group = comm_.split(r / n, r);
    auto peers = comm_.split(r % n, r);
    LTX_LOG(kInfo) << "guidance-parallel sub-groups: rank " << r << " is peer " << peers->rank() << " of " << groups
                   << ", rank " << group->rank() << " of " << group->size() << " in its sub-group";
    it = splits_.emplace(groups, std::make_pair(std::move(group), std::move(peers))).first;
  }
  return {it->second.first.get(), it->second.second.get()};
}

}  // namespace ltx::pipeline
