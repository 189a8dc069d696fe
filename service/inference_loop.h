// The inference loop: rank 0's main thread between the HTTP front-end and
// the group. It takes one work item at a time from the ApiService (fair
// round-robin lanes), runs it on every rank through the GroupEngine, writes
// one timing line per item and hands the result back to the ApiService,
// until `stop` is set; idle ticks sweep idle sessions and keep event streams
// alive. Rank 0 only; the other ranks sit in GroupEngine::serve().
#pragma once

#include <atomic>

#include "service/api_service.h"
#include "service/group_engine.h"

namespace ltx::service {

void run_inference_loop(ApiService& api, GroupEngine& engine, const std::atomic<bool>& stop);

}  // namespace ltx::service
