#include "launch/stop_signals.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/logging.h"
#include "dist/group_abort.h"

namespace ltx::launch {
namespace {

std::atomic<bool> g_drain{false};
std::atomic<bool> g_root{false};
std::atomic<int64_t> g_launcher_signal_ns{0};  // CLOCK_MONOTONIC of the launcher's first stop signal; 0 = none

int64_t monotonic_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

extern "C" void on_stop_signal(int, siginfo_t* info, void*) {
  // Only async-signal-safe work here: atomics, getppid, clock_gettime.
  const bool from_launcher = info != nullptr && info->si_pid != 0 && info->si_pid == ::getppid();
  if (from_launcher) {
    int64_t none = 0;
    g_launcher_signal_ns.compare_exchange_strong(none, monotonic_ns());
  }
  if (g_root.load() || from_launcher) g_drain.store(true);
}

}  // namespace

void install_stop_signals(bool root) {
  g_root.store(root);
  struct sigaction sa {};
  sa.sa_sigaction = on_stop_signal;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

std::atomic<bool>& drain_requested() { return g_drain; }

bool launcher_stopping() { return g_launcher_signal_ns.load() != 0; }

double launcher_grace_seconds() {
  double timeout = 1.0;  // Open MPI's default odls_base_sigkill_timeout
  if (const char* v = std::getenv("OMPI_MCA_odls_base_sigkill_timeout")) {
    const double t = std::atof(v);
    if (t > 0) timeout = t;
  }
  // A quarter of it, at most 0.25 s, is left for flushing and the exit itself.
  return timeout - std::min(0.25, timeout / 4);
}

void exit_now(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

LauncherKillWatcher::LauncherKillWatcher() {
  const auto grace_ns = static_cast<int64_t>(launcher_grace_seconds() * 1e9);
  thread_ = std::thread([this, grace_ns] {
    while (!done_.load()) {
      const int64_t at = g_launcher_signal_ns.load();
      if (at != 0 && monotonic_ns() - at >= grace_ns) {
        LTX_LOG(kWarn) << "the launcher ends the job (its SIGKILL follows): the running step is abandoned; streams "
                          "are kept as of their last chunk; exiting with 0";
        dist::run_abort_hooks("the launcher ends the job");
        exit_now(0);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
}

LauncherKillWatcher::~LauncherKillWatcher() {
  done_.store(true);
  thread_.join();
}

}  // namespace ltx::launch
