// `ltx-worker serve` (also `ltx-worker --model DIR` style flags): the HTTP
// service on rank 0 driving the whole group.
//
//   mpirun -n N ltx-worker serve [--model DIR] [--host 127.0.0.1] [--port 8080]
//
// Rank 0 runs the HTTP server (I/O threads) and, on its main thread, the
// inference loop: it takes queued jobs and executes them on every rank through
// the control channel (BeginRequest). Other ranks serve control commands until
// Shutdown. SIGINT/SIGTERM to rank 0 stop accepting, stop the running work
// at its next step, answer waiting clients 503, shut the group down; every
// rank exits 0. Other ranks ignore those signals but from their launcher,
// whose kill sequence (SIGTERM to mpirun) each rank outlives only briefly:
// launch/stop_signals.h.
#pragma once

#include <string>
#include <vector>

#include "dist/world.h"

namespace ltx::launch {

int run_serve(dist::World& world, const std::vector<std::string>& args);

}  // namespace ltx::launch
