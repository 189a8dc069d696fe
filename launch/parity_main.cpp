// ltx-parity [--dtype fp32|bf16] [--device cpu|cuda] CASE_DIR [CASE_DIR ...]:
// run reference fixture cases through our implementation and print relative
// L2 / max-abs per output. Works alone or under `mpirun -n N` (sequence-parallel
// models run across the group, on the group's device). --dtype runs every case
// in that dtype (bf16 against the fp32 references, with the reduced-precision
// bounds); --device places the components rank 0 runs (text encoders, VAEs,
// vocoder, upsampler; default cpu). TF32 is off: fp32 means fp32. Exit 0 when
// every case passes, 1 when one fails or errors, 2 on usage errors.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/host_memory.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/world.h"
#include "launch/parity_runner.h"

int main(int argc, char** argv) {
  ltx::tune_host_allocator();
  ltx::dist::World world(&argc, &argv);
  const char* usage = "usage: ltx-parity [--dtype fp32|bf16] [--device cpu|cuda] CASE_DIR [CASE_DIR ...]\n";
  ltx::launch::ParityOptions options;
  std::vector<std::string> cases;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--dtype" || a == "--device") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--dtype" && (v == "fp32" || v == "bf16")) {
        options.dtype = v == "fp32" ? at::kFloat : at::kBFloat16;
      } else if (a == "--device" && (v == "cpu" || v == "cuda")) {
        options.component_device = v == "cpu" ? at::Device(at::kCPU) : at::Device(at::kCUDA, 0);
      } else {
        if (world.is_root()) std::fprintf(stderr, "%s: bad value '%s'\n%s", a.c_str(), v.c_str(), usage);
        return 2;
      }
    } else if (a.rfind("--", 0) == 0) {
      if (world.is_root()) std::fprintf(stderr, "unknown option %s\n%s", a.c_str(), usage);
      return 2;
    } else {
      cases.push_back(a);
    }
  }
  if (cases.empty()) {
    if (world.is_root()) std::fprintf(stderr, "%s", usage);
    return 2;
  }
  at::globalContext().setAllowTF32CuBLAS(false);
  at::globalContext().setAllowTF32CuDNN(false);
  auto comm = ltx::dist::make_communicator(world, ltx::dist::Backend::kAuto);
  if (!comm.ok()) {
    if (world.is_root()) std::fprintf(stderr, "%s\n", comm.status().to_string().c_str());
    return 1;
  }
  int failures = 0;
  for (const std::string& dir : cases) {
    auto report = ltx::launch::run_parity_case(dir, **comm, options);
    if (!report.ok()) {
      if (world.is_root()) std::printf("%s: ERROR %s\n", dir.c_str(), report.status().to_string().c_str());
      ++failures;
      continue;
    }
    if (world.is_root()) std::printf("%s", report->to_string().c_str());
    if (!report->pass()) ++failures;
  }
  return failures == 0 ? 0 : 1;
}
