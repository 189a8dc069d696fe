#include "pipeline/runtime/guidance_groups.h"

#include "common/check.h"
#include "common/logging.h"

namespace ltx::pipeline {

void GuidanceGroups::ensure() {
  if (half_ != nullptr) return;
  LTX_CHECK(comm_.size() % 2 == 0, "guidance-parallel halves need an even group, this one has ", comm_.size());
  const int n = comm_.size() / 2, r = comm_.rank();
  half_ = comm_.split(r / n, r);
  peers_ = comm_.split(r % n, r);
  LTX_LOG(kInfo) << "guidance-parallel halves: rank " << r << " runs pass " << peers_->rank() << " as rank "
                 << half_->rank() << " of " << half_->size();
}

}  // namespace ltx::pipeline
