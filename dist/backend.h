// Choosing the data-plane backend of a serving group and making its
// Communicator: MPI for CPU tensors, NCCL for CUDA tensors. Called once per
// process by the thread that drives the group, on every rank (collective).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/status.h"
#include "dist/communicator.h"

namespace ltx::dist {

class World;

enum class Backend { kAuto, kMpi, kNccl };
// "auto", "mpi", "nccl"; nullopt otherwise.
std::optional<Backend> parse_backend(const std::string& name);

// NCCL when asked (an error on every rank if not built, or without a GPU
// for each rank), MPI when asked, and for kAuto: NCCL when built and every
// node has a GPU for each of its ranks, else MPI. The World must outlive the
// communicator.
Result<std::unique_ptr<Communicator>> make_communicator(const World& world, Backend backend);

// Whether this build has the NCCL backend.
bool nccl_backend_built();

}  // namespace ltx::dist
