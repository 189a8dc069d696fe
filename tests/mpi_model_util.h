// The built-in small model for MPI test suites that run the pipeline: rank 0
// writes it on first use and every rank gets its folder. Kept apart from
// mpi_test_util.h so the transport's suites link nothing of the pipeline.
// Test-only.
#pragma once

#include <string>

namespace ltx::testing {

// The built-in small model's folder (written by rank 0 on first use).
std::string builtin_model_dir();

}  // namespace ltx::testing
