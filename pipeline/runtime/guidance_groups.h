// GuidanceGroups: the two halves of a group that a guidance-parallel step
// splits its passes over (parallel/step_plan.h), made once and kept: `half`
// holds consecutive ranks (one node's when ranks fill nodes in order) and
// shares the tokens of its passes; `peers` are the two ranks at the same place
// in each half, which exchange their predictions once per step (peer 0 runs
// the unconditional pass). Owned by a pipeline; not thread-safe (the
// inference thread drives it).
#pragma once

#include <memory>

#include "dist/communicator.h"
#include "parallel/step_plan.h"

namespace ltx::pipeline {

class GuidanceGroups {
 public:
  explicit GuidanceGroups(dist::Communicator& comm) : comm_(comm) {}

  // Collective on the first call (every rank of the group calls it for the
  // same request: the plan is the same everywhere); a no-op afterwards.
  void ensure();
  dist::Communicator& half() const { return *half_; }
  dist::Communicator& peers() const { return *peers_; }

 private:
  dist::Communicator& comm_;
  std::unique_ptr<dist::Communicator> half_, peers_;
};

}  // namespace ltx::pipeline
