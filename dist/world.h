// World: the MPI runtime of this process and who it is in the serving group.
//
// One World per process, created first thing in main() (and in the MPI test
// main) and destroyed last; it owns MPI_Init/MPI_Finalize. It works under
// mpirun (Open MPI, MPICH) and as a single process without a launcher
// (MPI singleton). The node-local rank picks the GPU. Only the thread that
// created it, or one thread at a time (MPI_THREAD_SERIALIZED), may call MPI.
#pragma once

#include <mpi.h>

#include <string>

namespace ltx::dist {

struct WorldInfo {
  int rank = 0;
  int size = 1;
  int local_rank = 0;  // rank among the processes on this node
  int local_size = 1;
  std::string host;
  bool launched_by_mpirun = false;  // false for a singleton process
};

class World {
 public:
  // Initialises MPI (unless something else already did) and reads the group.
  // Throws ltx::Error (UNAVAILABLE) when MPI cannot start.
  World(int* argc, char*** argv);
  ~World();
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  const WorldInfo& info() const { return info_; }
  int rank() const { return info_.rank; }
  int size() const { return info_.size; }
  bool is_root() const { return info_.rank == 0; }
  MPI_Comm comm() const { return MPI_COMM_WORLD; }
  // Ends every process of the job (used only when a rank cannot continue safely).
  [[noreturn]] void abort(int code) const;

 private:
  WorldInfo info_;
  bool owns_mpi_ = false;
};

// True when the environment says a launcher (mpirun, srun) started us.
bool launched_by_mpi_launcher();

}  // namespace ltx::dist
