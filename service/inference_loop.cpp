#include "service/inference_loop.h"

#include <chrono>
#include <string>

#include "common/logging.h"

namespace ltx::service {

void run_inference_loop(ApiService& api, GroupEngine& engine, const std::atomic<bool>& stop) {
  while (!stop.load()) {
    api.tick();  // idle sessions and SSE keep-alives, also under steady load
    auto work = api.next_work(std::chrono::milliseconds(200));
    if (!work) {
      if (api.heartbeat_due() && !stop.load()) {
        api.on_heartbeat_start();
        api.on_heartbeat(engine.ping());
      }
      continue;
    }
    ScopedRequestId tag(work->id);
    const Work& w = *work;
    const double queued_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - w.queued_at).count();
    WorkResult result = engine.run(w, [&api, &w](int64_t i, int64_t n, double s) { api.on_step(w, i, n, s); },
                                   [&api, &w](const std::string& stage) { api.on_stage(w, stage); });
    // One timing line per work item: the raw material of the benchmarks.
    LTX_LOG(kInfo) << work_kind_name(w.kind) << (w.kind == Work::Kind::kChunk ? " " + std::to_string(w.index) : "")
                   << (result.status.ok() ? (result.finished ? " done" : " paused at step " + std::to_string(result.next_step))
                                          : " ended")
                   << ": queued " << queued_s << " s, on the group " << result.seconds << " s (denoise "
                   << result.denoise_seconds << ", decode " << result.decode_seconds << ", mp4 " << result.encode_seconds
                   << ")";
    // A stop that ended this item is the drain's: the API knows before it
    // answers, so the item's clients get 503 rather than "cancelled".
    if (stop.load()) api.shutdown();
    api.on_done(w, std::move(result));
  }
}

}  // namespace ltx::service
