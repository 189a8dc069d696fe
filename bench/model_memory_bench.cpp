// ltx-model-memory-bench: host memory of loading a model's weights.
//
// Writes the built-in LTX-Video transformer scaled up (inner width 1024, as
// many layers as make --gb of fp32 weights) in fp32 and in bf16 safetensors,
// then loads each file in a fresh process (this binary again, so nothing of
// the writer's memory counts) onto the CPU in fp32 and reports the peak
// resident set during the load minus the resident set before it, against
// the bytes of the weights as placed. Design rule 5 wants the ratio near 1:
// no second host copy of the model, the file's pages given back tensor by
// tensor. Prints CSV. Linux only (reads /proc/self/status, resets the peak
// through /proc/self/clear_refs).
//
//   ltx-model-memory-bench [--gb 1.0] [--dir /tmp/ltx-memory-bench] [--keep]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "pipeline/dit/ltx_transformer.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"

namespace {
namespace fs = std::filesystem;
using ltx::pipeline::TransformerConfig;

// kB of a /proc/self/status field (VmRSS, VmHWM).
int64_t status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return -1;
}

TransformerConfig scaled_config(double gb) {
  TransformerConfig c;  // the built-in model's shape, wider and deeper
  c.in_channels = c.out_channels = 128;
  c.num_attention_heads = 16;
  c.attention_head_dim = 64;
  c.cross_attention_dim = 1024;
  c.caption_channels = 1024;
  c.num_layers = 1;
  int64_t per_layer = 0;
  for (const auto& e : ltx::pipeline::LtxTransformer::expected_tensors(c)) {
    if (e.name.rfind("transformer_blocks.", 0) == 0) {
      int64_t n = 1;
      for (int64_t d : e.shape) n *= d;
      per_layer += n * 4;
    }
  }
  c.num_layers = std::max<int64_t>(1, static_cast<int64_t>(gb * 1e9 / static_cast<double>(per_layer)));
  return c;
}

void write_model(const fs::path& file, const TransformerConfig& c, at::ScalarType dtype) {
  if (fs::exists(file)) return;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
  ltx::pipeline::NamedTensors tensors;
  for (const auto& e : ltx::pipeline::LtxTransformer::expected_tensors(c)) {
    tensors.emplace_back(e.name, (at::randn(e.shape, gen) * 0.02).to(dtype));
  }
  ltx::throw_if_error(ltx::pipeline::write_safetensors(file.string(), tensors));
}

// The child: load `file` onto the CPU in fp32 and print one CSV row.
int measure(const fs::path& file, const TransformerConfig& c, const std::string& label) {
  ltx::dist::LocalCommunicator alone;
  // Fault in the library code the load runs (conversion kernels of the
  // multi-hundred-MB libtorch), so only the load's own memory is counted.
  (void)at::ones({64}, at::kBFloat16).to(at::kFloat).sum().item<float>();
  (void)at::ones({64}, at::kFloat).to(at::kFloat).sum().item<float>();
  { std::ofstream("/proc/self/clear_refs") << "5"; }  // peak RSS := current RSS
  const int64_t before = status_kb("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  auto ckpt = ltx::value_or_throw(ltx::pipeline::SafetensorsCheckpoint::open(file.string()));
  auto model = ltx::value_or_throw(
      ltx::pipeline::LtxTransformer::from_checkpoint(c, ckpt, alone, at::kFloat, at::Device(at::kCPU)));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t peak = status_kb("VmHWM"), after = status_kb("VmRSS");
  // A weight that stayed a view of the file becomes resident when first read:
  // read every weight once and take the peak again.
  double checksum = 0;
  for (const auto& w : model.weights()) checksum += w.abs().sum().item<double>();
  const int64_t touched_peak = status_kb("VmHWM");
  const double placed = static_cast<double>(ltx::pipeline::bytes_of(model.weights()));
  const double file_bytes = static_cast<double>(fs::file_size(file));
  std::printf("%s,%.0f,%.0f,%.0f,%.0f,%.3f,%.3f,%.2f\n", label.c_str(), file_bytes / 1e6, placed / 1e6,
              (peak - before) * 1024.0 / 1e6, (after - before) * 1024.0 / 1e6, (peak - before) * 1024.0 / placed,
              (touched_peak - before) * 1024.0 / placed, seconds);
  return checksum >= 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  double gb = 1.0;
  std::string dir = "/tmp/ltx-memory-bench", child_file, child_label;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--gb") gb = std::stod(next());
    else if (a == "--dir") dir = next();
    else if (a == "--keep") keep = true;
    else if (a == "--child") { child_file = next(); child_label = next(); }
    else {
      std::fprintf(stderr, "usage: ltx-model-memory-bench [--gb 1.0] [--dir DIR] [--keep]\n");
      return 2;
    }
  }
  at::set_num_threads(1);
  const TransformerConfig config = scaled_config(gb);
  if (!child_file.empty()) return measure(child_file, config, child_label);

  fs::create_directories(dir);
  std::printf("# ltx-model-memory-bench: LTX transformer, %lld layers x inner 1024 (%.2f GB of fp32 weights asked)\n",
              static_cast<long long>(config.num_layers), gb);
  std::printf("case,file_MB,placed_MB,peak_minus_before_MB,after_minus_before_MB,peak_over_placed,peak_after_first_read_over_placed,load_s\n");
  std::fflush(stdout);
  const std::map<std::string, at::ScalarType> cases = {{"fp32_on_disk_to_fp32", at::kFloat},
                                                       {"bf16_on_disk_to_fp32", at::kBFloat16}};
  int rc = 0;
  for (const auto& [label, dtype] : cases) {
    const fs::path file = fs::path(dir) / (label + ".safetensors");
    write_model(file, config, dtype);
    const std::string cmd = "'" + fs::read_symlink("/proc/self/exe").string() + "' --gb " + std::to_string(gb) +
                            " --child '" + file.string() + "' " + label;
    rc |= std::system(cmd.c_str());
    std::fflush(stdout);
    if (!keep) fs::remove(file);
  }
  return rc == 0 ? 0 : 1;
}
