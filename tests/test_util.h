// Helpers shared by the test suites: where the fixtures are, how far two
// tensors are apart (relative L2 and max-abs, printed by parity tests), and a
// scratch folder per test. Test-only code.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace ltx::testing {

// ../shared/fixtures/reference/<name> (LTX_SHARED_DIR at configure time).
std::string fixture_dir(const std::string& name);
// tests/data/<name>
std::string test_data_path(const std::string& name);
// A fresh empty folder under the build's temp area, unique per test and process.
std::string scratch_dir(const std::string& tag);

struct Difference {
  double rel_l2 = 0;   // ||a - b|| / ||b||
  double max_abs = 0;  // max |a - b|
};
// Compares in float64; b is the reference.
Difference difference(const at::Tensor& a, const at::Tensor& b);
std::string describe(const Difference& d);

}  // namespace ltx::testing
