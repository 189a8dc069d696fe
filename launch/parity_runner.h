// The fixture runner behind `ltx-parity CASE_DIR`: runs one reference case of
// ../shared/fixtures/reference/ through our implementation and compares every
// output by relative L2 and max-abs error against the case's tolerance.
//
// A case folder holds case.json (what was called), config.json,
// weights.safetensors and io.safetensors (inputs "in.*", outputs "out.*").
// Runs on every rank of the communicator's group (sequence-parallel models are
// collective); the comparison is made on the gathered outputs. Case kinds are
// added as their models land; an unknown kind is UNIMPLEMENTED.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"

namespace ltx::launch {

struct ParityResult {
  std::string output;  // "out.sample"
  double rel_l2 = 0;
  double max_abs = 0;
  double tol_rel_l2 = 0;
  double tol_max_abs = 0;  // 0 = not checked
  bool pass() const { return rel_l2 <= tol_rel_l2 && (tol_max_abs <= 0 || max_abs <= tol_max_abs); }
};

struct ParityReport {
  std::string case_name;
  std::string call;
  std::vector<ParityResult> results;
  bool pass() const;
  std::string to_string() const;  // one line per output
};

struct ParityOptions {
  // Run the model in this dtype instead of the case's (e.g. bf16 against an
  // fp32 reference); the tolerance becomes the reduced-precision one.
  std::optional<at::ScalarType> dtype;
  // Where the components rank 0 runs go (default: the CPU, as a CPU group
  // serves them); the transformers always run on the communicator's device.
  std::optional<at::Device> component_device;
};

// Runs the case in `case_dir` on the group of `comm`.
Result<ParityReport> run_parity_case(const std::string& case_dir, dist::Communicator& comm,
                                     const ParityOptions& options = {});

}  // namespace ltx::launch
