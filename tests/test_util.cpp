#include "tests/test_util.h"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <sstream>

namespace ltx::testing {
namespace fs = std::filesystem;

std::string fixture_dir(const std::string& name) {
  return std::string(LTX_SHARED_DIR) + "/fixtures/reference/" + name;
}

std::string test_data_path(const std::string& name) {
  return std::string(LTX_TEST_DATA_DIR) + "/" + name;
}

std::string scratch_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path p = fs::temp_directory_path() /
               ("ltx-test-" + tag + "-" + std::to_string(::getpid()) + "-" +
                std::to_string(counter.fetch_add(1)));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

Difference difference(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kCPU).to(at::kDouble);
  at::Tensor y = b.to(at::kCPU).to(at::kDouble);
  Difference d;
  double denom = y.norm().item<double>();
  double num = (x - y).norm().item<double>();
  d.rel_l2 = denom > 0 ? num / denom : num;
  d.max_abs = x.numel() ? (x - y).abs().max().item<double>() : 0.0;
  return d;
}

std::string describe(const Difference& d) {
  std::ostringstream os;
  os.precision(3);
  os << std::scientific << "rel_l2=" << d.rel_l2 << " max_abs=" << d.max_abs;
  return os.str();
}

}  // namespace ltx::testing
