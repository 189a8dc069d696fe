// GuidanceGroups: the sub-groups a guidance-parallel step splits its passes
// over (parallel/step_plan.h), made once per count and kept. For G
// sub-groups, `group` holds N/G consecutive ranks (one node's when ranks
// fill nodes in order) that share the tokens of their passes; `peers` are the
// G ranks at the same place in each sub-group, which exchange their
// predictions once per step (peer q runs passes q, q + G, ...: peer 0 the
// unconditional one). Owned by a pipeline; not thread-safe (the inference
// thread drives it).
#pragma once

#include <map>
#include <memory>
#include <utility>

#include "dist/communicator.h"

namespace ltx::pipeline {

class GuidanceGroups {
 public:
  explicit GuidanceGroups(dist::Communicator& comm) : comm_(comm) {}

  struct Split {
    dist::Communicator* group = nullptr;
    dist::Communicator* peers = nullptr;
  };
  // The split into `groups` sub-groups (groups must divide the group size).
  // Collective the first time a count is asked for (every rank asks for the
  // same count for a request: the plan is the same everywhere).
  Split get(int groups);

 private:
  dist::Communicator& comm_;
  std::map<int, std::pair<std::unique_ptr<dist::Communicator>, std::unique_ptr<dist::Communicator>>> splits_;
};

}  // namespace ltx::pipeline
