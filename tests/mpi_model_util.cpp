#include "tests/mpi_model_util.h"

#include "common/check.h"
#include "pipeline/ltx_video/small_model.h"
#include "tests/mpi_test_util.h"

namespace ltx::testing {

std::string builtin_model_dir() {
  static const std::string dir = from_root([] { return value_or_throw(pipeline::ensure_builtin_model()); });
  return dir;
}

}  // namespace ltx::testing
