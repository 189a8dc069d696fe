// ltx-parity CASE_DIR [CASE_DIR ...]: run reference fixture cases through our
// implementation and print relative L2 / max-abs per output. Works alone or
// under `mpirun -n N` (sequence-parallel models run across the group). Exit 0
// when every case passes, 1 when one fails or errors, 2 on usage errors.
#include <cstdio>
#include <memory>

#include "common/check.h"
#include "common/host_memory.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/world.h"
#include "launch/parity_runner.h"

int main(int argc, char** argv) {
  ltx::tune_host_allocator();
  ltx::dist::World world(&argc, &argv);
  if (argc < 2) {
    if (world.is_root()) std::fprintf(stderr, "usage: ltx-parity CASE_DIR [CASE_DIR ...]\n");
    return 2;
  }
  auto comm = ltx::dist::make_communicator(world, ltx::dist::Backend::kAuto);
  if (!comm.ok()) {
    if (world.is_root()) std::fprintf(stderr, "%s\n", comm.status().to_string().c_str());
    return 1;
  }
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    auto report = ltx::launch::run_parity_case(argv[i], **comm);
    if (!report.ok()) {
      if (world.is_root()) std::printf("%s: ERROR %s\n", argv[i], report.status().to_string().c_str());
      ++failures;
      continue;
    }
    if (world.is_root()) std::printf("%s", report->to_string().c_str());
    if (!report->pass()) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
