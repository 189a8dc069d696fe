#include "service/scheduling_policy.h"

#include <string>

namespace ltx::service {

Status SchedulingPolicy::admit(bool shutting_down, size_t queued) const {
  if (shutting_down) return unavailable_error("the worker is shutting down");
  if (queued >= max_queue) {
    return resource_exhausted_error("the queue is full (" + std::to_string(max_queue) + " work items)");
  }
  return Status();
}

bool SchedulingPolicy::should_yield(bool job_running, double running_s, bool other_lane_waits) const {
  return job_slice_s > 0 && job_running && running_s >= job_slice_s && other_lane_waits;
}

}  // namespace ltx::service
