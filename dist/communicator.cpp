#include "dist/communicator.h"

#include "common/call_check.h"
#include "common/logging.h"
#include "dist/mpi_communicator.h"
#include "dist/nccl_communicator.h"
#include "dist/world.h"

#ifdef LTX_WITH_CUDA
#include "common/cuda_device.h"
#endif

namespace ltx::dist {

void Communicator::check_root(int root) const {
  LTX_CHECK(root >= 0 && root < size(), "root rank ", root, " outside a group of ", size());
}

void Communicator::check_device(const at::Tensor& t, const char* op) const {
  LTX_CHECK(t.defined(), backend_name(), " ", op, ": undefined tensor");
  LTX_CHECK(t.device().type() == device().type(), backend_name(), " ", op, ": tensor on ",
            t.device().str(), ", this backend moves tensors on ", device().str());
}

at::Tensor Communicator::all_to_all(const at::Tensor& input) {
  at::Tensor output = at::empty(input.sizes(), input.options().memory_format(at::MemoryFormat::Contiguous));
  all_to_all_into(input, output);
  return output;
}

at::Tensor Communicator::check_all_to_all(const at::Tensor& input, const at::Tensor& output) const {
  check_device(input, "all_to_all");
  check_device(output, "all_to_all");
  LTX_CHECK(input.dim() >= 1 && input.size(0) % size() == 0, "all_to_all: dim 0 of size ",
            input.dim() ? input.size(0) : 0, " does not split into ", size(), " equal parts");
  LTX_CHECK(output.sizes() == input.sizes() && output.scalar_type() == input.scalar_type() &&
                output.is_contiguous(),
            "all_to_all: output must be contiguous with the input's shape and dtype");
  return input.contiguous();
}

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
        int have = devices > 0 && devices >= world.info().local_size ? 1 : 0, all = 0;
        LTX_MPI_CHECK(MPI_Allreduce(&have, &all, 1, MPI_INT, MPI_MIN, world.comm()));
        use_nccl = all == 1;
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
