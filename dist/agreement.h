// Group agreement over MPI, the control plane: the two questions that every
// step which can fail on some ranks only must settle before the next
// collective, so no rank enters a collective that a peer has given up on.
//
// * agree_all_ok: did every rank succeed? (a load, a device selection, a
//   request's local work)
// * share_root_verdict: rank 0 decided (validated the arguments, read a
//   file); every rank takes its verdict, and its payload when it is OK.
//
// Both are collective over `comm` (every rank calls them, in the same order),
// check every MPI call (a transport failure throws ltx::Error naming the
// call), and are called by the one thread that drives the group. The
// Communicator backends expose them as all_ok()/root_verdict(); code that
// runs before a Communicator exists calls them on the world directly.
#pragma once

#include <mpi.h>

#include <string>

#include "common/status.h"

namespace ltx::dist {

// OK on every rank when every rank's `local` is OK. Otherwise a failing rank
// returns its own `local` and every other rank returns the lowest failing
// rank's error (same code, message prefixed with "rank r: ").
Status agree_all_ok(MPI_Comm comm, const Status& local);

// Every rank returns `root`'s `local`. When it is OK and `payload` is given,
// root's `*payload` is copied into every rank's `*payload` (other ranks'
// payloads are left alone on an error).
Status share_root_verdict(MPI_Comm comm, const Status& local, std::string* payload = nullptr, int root = 0);

// MPI_Comm_split, checked; `color` must be non-negative (a caller error).
MPI_Comm split_comm(MPI_Comm comm, int color, int key);

// Collective: the part of `comm` whose ranks passed `color` (ranked by
// `key`), handed to make(part) while it exists; the part is freed afterwards
// (a communicator made from it keeps its own duplicate). For
// Communicator::split of the MPI-bootstrapped backends.
template <typename Make>
auto with_split(MPI_Comm comm, int color, int key, Make&& make) {
  MPI_Comm part = split_comm(comm, color, key);
  struct Free {
    MPI_Comm* c;
    ~Free() { MPI_Comm_free(c); }
  } free_part{&part};
  return make(part);
}

}  // namespace ltx::dist
