// SchedulingPolicy: the service's decisions about work, kept beside the
// FairQueue they read. Admission: does a new work item fit (not shutting
// down, room in the queue)? Yield: should the running video job pause at its
// next step so a waiting stream's work runs (it has run job_slice_s and
// another lane waits)? The queue's round-robin order is the third rule.
// Pure functions over what the caller passes; ApiService calls them with its
// mutex held.
#pragma once

#include <cstddef>

#include "common/status.h"

namespace ltx::service {

struct SchedulingPolicy {
  size_t max_queue = 16;
  double job_slice_s = 1.0;  // 0 = a job never pauses

  // UNAVAILABLE while shutting down, RESOURCE_EXHAUSTED when the queue is full.
  Status admit(bool shutting_down, size_t queued) const;
  // `job_running`: a video job's steps are running, for `running_s` seconds
  // since it (re)started; `other_lane_waits`: the queue holds work of another lane.
  bool should_yield(bool job_running, double running_s, bool other_lane_waits) const;
};

}  // namespace ltx::service
