#include "dist/group_abort.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstdio>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/call_check.h"
#include "common/logging.h"

namespace ltx::dist {
namespace {

struct Hooks {
  std::mutex mu;
  int next_id = 1;
  std::vector<std::pair<int, AbortHook>> hooks;
};

Hooks& hooks() {
  static Hooks* h = new Hooks();  // never destroyed: hooks may run during exit
  return *h;
}

std::atomic<bool> g_hooks_ran{false};

}  // namespace

int add_abort_hook(AbortHook hook) {
  Hooks& h = hooks();
  std::lock_guard<std::mutex> lock(h.mu);
  h.hooks.emplace_back(h.next_id, std::move(hook));
  return h.next_id++;
}

void remove_abort_hook(int id) {
  Hooks& h = hooks();
  std::lock_guard<std::mutex> lock(h.mu);
  for (auto it = h.hooks.begin(); it != h.hooks.end(); ++it) {
    if (it->first == id) {
      h.hooks.erase(it);
      return;
    }
  }
}

void run_abort_hooks(const std::string& reason) noexcept {
  if (g_hooks_ran.exchange(true)) return;
  std::vector<AbortHook> copy;
  {
    Hooks& h = hooks();
    std::lock_guard<std::mutex> lock(h.mu);
    for (auto& [id, hook] : h.hooks) copy.push_back(hook);
  }
  for (auto& hook : copy) {
    try {
      hook(reason);
    } catch (...) {
      // an abort goes on whatever one hook does
    }
  }
}

void abort_group(const std::string& reason, int code) {
  int rank = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  LTX_LOG(kError) << "aborting the group: " << reason;
  run_abort_hooks(reason);
  std::fflush(stdout);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; should it, the process still ends
}

bool barrier_within(MPI_Comm comm, std::chrono::milliseconds timeout) {
  MPI_Request request = MPI_REQUEST_NULL;
  LTX_MPI_CHECK(MPI_Ibarrier(comm, &request));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::microseconds(50);
  while (true) {
    int done = 0;
    LTX_MPI_CHECK(MPI_Test(&request, &done, MPI_STATUS_IGNORE));
    if (done) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
  }
}

}  // namespace ltx::dist
