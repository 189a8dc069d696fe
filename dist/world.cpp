#include "dist/world.h"

#include <unistd.h>

#include <cstdlib>

#include "common/call_check.h"
#include "common/logging.h"

namespace ltx::dist {

bool launched_by_mpi_launcher() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_NTASKS"}) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

World::World(int* argc, char*** argv) {
  int initialized = 0;
  LTX_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    int provided = 0;
    LTX_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided));
    owns_mpi_ = true;
    if (provided < MPI_THREAD_SERIALIZED) {
      LTX_LOG(kWarn) << "MPI provides thread level " << provided
                     << " (< MPI_THREAD_SERIALIZED); MPI must stay on the main thread";
    }
  }
  // Errors come back as codes (checked by LTX_MPI_CHECK), not as an abort inside MPI.
  LTX_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  LTX_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &info_.rank));
  LTX_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &info_.size));
  MPI_Comm local = MPI_COMM_NULL;
  LTX_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank,
                                    MPI_INFO_NULL, &local));
  LTX_MPI_CHECK(MPI_Comm_rank(local, &info_.local_rank));
  LTX_MPI_CHECK(MPI_Comm_size(local, &info_.local_size));
  LTX_MPI_CHECK(MPI_Comm_free(&local));
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) info_.host = host;
  info_.launched_by_mpirun = launched_by_mpi_launcher();
  set_log_rank(info_.rank);
  LTX_LOG(kDebug) << "world rank " << info_.rank << "/" << info_.size << " local "
                  << info_.local_rank << "/" << info_.local_size << " on " << info_.host;
}

World::~World() {
  if (!owns_mpi_) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void World::abort(int code) const {
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

}  // namespace ltx::dist
