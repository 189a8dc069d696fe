#include "tests/mpi_test_util.h"

#include <cstdlib>
#include <memory>

#include "common/check.h"
#include "dist/agreement.h"
#include "dist/backend.h"

namespace ltx::testing {

dist::World& mpi_world() {
  static dist::World w(nullptr, nullptr);  // MPI is already up (mpi_test_main); this reads the group
  return w;
}

dist::Communicator& mpi_group() {
  static std::unique_ptr<dist::Communicator> c = [] {
    const char* env = std::getenv("LTX_TEST_BACKEND");
    auto backend = dist::parse_backend(env ? env : "mpi");
    LTX_CHECK(backend.has_value(), "LTX_TEST_BACKEND must be mpi, nccl or auto");
    return value_or_throw(dist::make_communicator(mpi_world(), *backend));
  }();
  return *c;
}

std::string from_root(const std::function<std::string()>& make) {
  std::string s;
  Status made;
  if (mpi_world().is_root()) made = catch_to_status([&] { s = make(); });
  throw_if_error(dist::share_root_verdict(mpi_world().comm(), made, &s));
  return s;
}

}  // namespace ltx::testing
