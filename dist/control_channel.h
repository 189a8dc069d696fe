// ControlChannel: rank 0 drives the group with typed commands over MPI.
//
// Rank 0 calls execute(): the encoded command is broadcast, every rank
// (rank 0 included: it is a worker too) decodes the same bytes and runs the
// same handler, and every rank's Status comes back to rank 0. Other ranks sit
// in serve() until a Shutdown command. Because all ranks decode identical
// bytes, a malformed or unknown command fails identically everywhere: nobody
// runs the handler, so no rank enters a collective the others skip, and the
// error reaches rank 0. A rank whose command failed first waits (at most the
// fault timeout) for its peers to finish theirs: when one of them is still
// inside a collective that this rank gave up on, the wait runs out and the
// rank aborts the group (dist/group_abort.h) instead of leaving it hung.
// Uses its own duplicate of the world communicator so
// its messages never mix with tensor traffic. Called from the one thread that
// drives the group on each rank.
#pragma once

#include <mpi.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "dist/command.h"

namespace ltx::dist {

class ControlChannel {
 public:
  // Runs one command on this rank; exceptions are caught and become a Status.
  using Handler = std::function<Status(const Command&)>;

  struct Outcome {
    Status status;                // OK, or the first failure prefixed with its rank
    std::vector<Status> per_rank;  // every rank's own result (rank 0 only)
  };

  explicit ControlChannel(MPI_Comm parent);
  ~ControlChannel();
  ControlChannel(const ControlChannel&) = delete;
  ControlChannel& operator=(const ControlChannel&) = delete;

  int rank() const { return rank_; }
  // How long a rank whose command failed waits for its peers before it
  // aborts the group (every rank should use the same; default 10 s).
  void set_fault_timeout(std::chrono::milliseconds timeout) { fault_timeout_ = timeout; }
  std::chrono::milliseconds fault_timeout() const { return fault_timeout_; }
  int size() const { return size_; }

  // Rank 0 only.
  Outcome execute(const Command& command, const Handler& handler);
  // Rank 0 only: sends raw bytes (tests of malformed commands). Bytes over
  // kMaxCommandBytes are refused on rank 0 before any collective.
  Outcome execute_raw(const std::string& bytes, const Handler& handler);

  // Collective, inside a command too: every rank has got this far, or this
  // rank, whose `local` failed, aborts the group when its peers do not arrive
  // within the fault timeout (they wait in a collective it left). A handler
  // that catches a failure and then goes on to further collectives calls it
  // first. Every command ends with one.
  void settle(const Status& local);

  // Ranks other than 0: receive and run commands until Shutdown (returns OK
  // after reporting it) or until the transport fails (returns that error).
  Status serve(const Handler& handler);

 private:
  Status run_locally(const std::string& bytes, const Handler& handler, bool* shutdown);
  std::vector<Status> report(const Status& local);  // collective; result on rank 0

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  uint64_t sequence_ = 0;
  std::chrono::milliseconds fault_timeout_{10000};
};

}  // namespace ltx::dist
