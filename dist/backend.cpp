#include "dist/backend.h"

#include "common/check.h"
#include "dist/agreement.h"
#include "dist/mpi_communicator.h"
#include "dist/nccl_communicator.h"
#include "dist/world.h"

#ifdef LTX_WITH_CUDA
#include "common/cuda_device.h"
#endif

namespace ltx::dist {

std::optional<Backend> parse_backend(const std::string& name) {
  if (name == "auto") return Backend::kAuto;
  if (name == "mpi") return Backend::kMpi;
  if (name == "nccl") return Backend::kNccl;
  return std::nullopt;
}

bool nccl_backend_built() {
#ifdef LTX_WITH_NCCL
  return true;
#else
  return false;
#endif
}

Result<std::unique_ptr<Communicator>> make_communicator(const World& world, Backend backend) {
  return [&]() -> Result<std::unique_ptr<Communicator>> {
    try {
      bool use_nccl = backend == Backend::kNccl;
      if (backend == Backend::kAuto && nccl_backend_built()) {
#ifdef LTX_WITH_CUDA
        // Decide together: NCCL only if every rank has a GPU of its own (a
        // node with more ranks than GPUs uses MPI).
        const int devices = cuda_device_count();
        const bool have = devices > 0 && devices >= world.info().local_size;
        use_nccl = agree_all_ok(world.comm(), have ? Status() : unavailable_error("too few GPUs")).ok();
#endif
      }
      if (use_nccl) {
#ifdef LTX_WITH_NCCL
        return std::unique_ptr<Communicator>(
            new NcclCommunicator(world.comm(), world.info().local_rank, world.info().local_size));
#else
        return failed_precondition_error(
            "the NCCL backend was asked for but this build has no NCCL (configure with the CUDA "
            "toolkit and NCCL, LTX_WITH_NCCL=ON)");
#endif
      }
      return std::unique_ptr<Communicator>(new MpiCommunicator(world.comm()));
    } catch (...) {
      return status_from_current_exception();
    }
  }();
}

}  // namespace ltx::dist
