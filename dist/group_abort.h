// Group-wide abort: what a rank does when its own failure may have left its
// peers waiting inside a collective.
//
// A collective that one rank has given up on never completes on the others,
// with MPI and NCCL alike: a step that threw on one rank alone (out of
// memory, a device fault, a bug) would leave the rest of the group waiting
// for ever. So a rank whose command failed settles with its peers before it
// reports (ControlChannel): it waits for them on the control plane for at
// most the fault timeout. Peers that failed alike arrive and the error is
// reported as usual; otherwise the rank aborts the group: its abort hooks
// run (every NCCL communicator of the process is aborted, so no GPU kernel
// keeps spinning; rank 0 answers its waiting clients 503), the reason is
// logged, and MPI_Abort ends every rank of the job. Open MPI's launcher then
// signals the other ranks, which drain what they can (launch/stop_signals.h);
// a supervisor restarts the group, and streams resume from their last
// persisted chunk.
#pragma once

#include <mpi.h>

#include <chrono>
#include <functional>
#include <string>

namespace ltx::dist {

// Run once, in registration order, when this process aborts the group or is
// about to be killed by its launcher. Each must be quick and must not use
// MPI. Thread-safe.
using AbortHook = std::function<void(const std::string& reason)>;
int add_abort_hook(AbortHook hook);
void remove_abort_hook(int id);

// The hooks, at most once per process (later calls return at once).
void run_abort_hooks(const std::string& reason) noexcept;

// Logs `reason`, runs the hooks and calls MPI_Abort(MPI_COMM_WORLD, code).
// From the thread that drives the group.
[[noreturn]] void abort_group(const std::string& reason, int code = 70);

// Enters a non-blocking barrier on `comm` and polls it until every rank has
// entered it (true) or `timeout` has passed (false: the barrier stays
// pending, and the caller must abort). From the thread that drives the group.
bool barrier_within(MPI_Comm comm, std::chrono::milliseconds timeout);

}  // namespace ltx::dist
