#include "dist/world.h"

#include <unistd.h>

#include <cstdlib>

#include "common/call_check.h"
#include "common/check.h"
#include "common/logging.h"

namespace ltx::dist {

namespace {

// The node this process is on, as a color for MPI_Comm_split: LTX_NODE_ID
// (a non-negative integer) where set, for launchers that cannot report
// shared-memory domains and for tests that emulate several nodes on one
// machine (mpirun app contexts: `-x LTX_NODE_ID=0 ... : -x LTX_NODE_ID=1 ...`);
// -1 when unset; -2 when set but not such an integer.
int node_id_override() {
  const char* env = std::getenv("LTX_NODE_ID");
  if (env == nullptr) return -1;
  char* end = nullptr;
  const long v = std::strtol(env, &end, 10);
  if (end == env || *end != '\0' || v < 0 || v > 1000000) return -2;
  return static_cast<int>(v);
}

}  // namespace

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
  // The node split: MPI's shared-memory domains, or LTX_NODE_ID set on every
  // rank (checked together, so no rank splits alone).
  const int node_id = node_id_override();
  int lowest = node_id, highest = node_id;
  LTX_MPI_CHECK(MPI_Allreduce(&node_id, &lowest, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
  LTX_MPI_CHECK(MPI_Allreduce(&node_id, &highest, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
  // Every rank reaches the same verdict, so every rank leaves MPI alike.
  auto refuse = [this](const char* why) {
    if (owns_mpi_) MPI_Finalize();
    throw Error(StatusCode::kInvalidArgument, why);
  };
  if (lowest == -2) refuse("LTX_NODE_ID must be a non-negative integer");
  if (lowest == -1 && highest >= 0) refuse("LTX_NODE_ID is set on some ranks only: set it on every rank or none");
  MPI_Comm local = MPI_COMM_NULL;
  if (node_id >= 0) {
    LTX_MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, node_id, info_.rank, &local));
  } else {
    LTX_MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &local));
  }
  LTX_MPI_CHECK(MPI_Comm_rank(local, &info_.local_rank));
  LTX_MPI_CHECK(MPI_Comm_size(local, &info_.local_size));
  LTX_MPI_CHECK(MPI_Comm_free(&local));
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) == 0) info_.host = host;
  info_.launched_by_mpirun = launched_by_mpi_launcher();
  set_log_rank(info_.rank);
  LTX_LOG(kDebug) << "world rank " << info_.rank << "/" << info_.size << " local "
                  << info_.local_rank << "/" << info_.local_size << " on " << info_.host
                  << (node_id >= 0 ? " (node " + std::to_string(node_id) + " from LTX_NODE_ID)" : std::string());
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
