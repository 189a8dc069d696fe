// Stop signals of a serving rank, and the launcher's kill sequence.
//
// Rank 0 drains on SIGINT or SIGTERM from anyone (its own pid, the
// supervisor, the terminal): no new work, running work stops at the next
// step, waiting clients get 503, the group shuts down, every rank exits 0.
// Other ranks leave that to rank 0 and ignore those signals, except from
// their launcher.
//
// A SIGTERM or SIGINT from the launcher (the parent process: mpirun, or
// orted on other nodes) is Open MPI's kill sequence: mpirun itself got
// SIGTERM (systemd, a container runtime) or a rank died or aborted. SIGKILL
// follows after odls_base_sigkill_timeout (1 s unless the MCA parameter says
// otherwise), whatever the ranks are doing. So each rank drains as far as it
// can until just before that (the deadline) and then exits 0 on its own:
// the running step is abandoned, its clients were answered 503 at the
// signal, and streams are on disk as of their last chunk (--state-dir). A
// rank that finishes its drain in time also exits at once, without
// MPI_Finalize, which would wait on a launcher that is tearing the job down.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace ltx::launch {

// Installs the handlers (SIGINT, SIGTERM); `root` is rank 0.
void install_stop_signals(bool root);

// Rank 0: a drain was asked for (by any stop signal).
std::atomic<bool>& drain_requested();

// Any rank: the launcher's kill sequence has begun.
bool launcher_stopping();

// Seconds from the launcher's signal to this rank's own exit: the launcher's
// SIGKILL timeout less a margin (OMPI_MCA_odls_base_sigkill_timeout, else 1 s).
double launcher_grace_seconds();

// Flushes stdout and stderr and ends the process with `code` at once (no
// destructors, no MPI_Finalize). For a rank whose launcher is ending the job.
[[noreturn]] void exit_now(int code);

// Watches for the launcher's kill on its own thread while the rank runs:
// at the deadline, if the rank has not ended by then, runs the group abort
// hooks (NCCL communicators), logs and calls exit_now(0). Destroying the
// watcher stops it.
class LauncherKillWatcher {
 public:
  LauncherKillWatcher();
  ~LauncherKillWatcher();
  LauncherKillWatcher(const LauncherKillWatcher&) = delete;
  LauncherKillWatcher& operator=(const LauncherKillWatcher&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace ltx::launch
