// Shared pieces of the MPI test suites (they run under mpi_test_main.cpp):
// the process's World, a communicator over the whole group (MPI, or the
// backend named by LTX_TEST_BACKEND=mpi|nccl|auto), and a string that rank 0
// makes and every rank receives. Needs only dist/ (the pipeline's suites add
// mpi_model_util.h). Test-only.
#pragma once

#include <functional>
#include <string>

#include "dist/communicator.h"
#include "dist/world.h"

namespace ltx::testing {

dist::World& mpi_world();
dist::Communicator& mpi_group();
// Runs make() on rank 0 and broadcasts its result to every rank.
std::string from_root(const std::function<std::string()>& make);

}  // namespace ltx::testing
