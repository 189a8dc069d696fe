#include "tests/mpi_model_util.h"

#include "common/check.h"
#include "pipeline/registry/model_registry.h"
#include "tests/mpi_test_util.h"

namespace ltx::testing {

std::string builtin_model_dir() {
  static const std::string dir =
      from_root([] { return value_or_throw(pipeline::resolve_model_path(pipeline::kDefaultModel)); });
  return dir;
}

}  // namespace ltx::testing
