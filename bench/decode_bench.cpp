// ltx-decode-bench: the VAE decode shared by the group (every rank decodes a
// consecutive share of the latent frames, pipeline/decode/ltx_vae_decoder.h:
// decode_to_frames_shared) against N, with each rank's peak memory.
//
//   mpirun -n N build/ltx-decode-bench --vae DIR [--frames 16] [--height 8] [--width 8]
//          [--dtype f32|bf16] [--repeat 2]
//
// DIR is a diffusers vae/ folder (the built-in model's, or one from
// `ltx-make-small-model --shape ltx-video-2b`); frames, height and width are
// latent sizes (16 x 16 x 24 is 121 frames at 768x512). Prints one CSV row
// per rank: the decode time (the last repeat; the first warms up), and the
// growth of the process's peak resident memory over the first decode (VmHWM
// after it less VmRSS before it, the peak reset first through
// /proc/self/clear_refs; host memory: on a GPU the decode's memory is the
// device's and this says little).
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "common/check.h"
#include "common/host_memory.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/world.h"
#include "pipeline/decode/ltx_vae_decoder.h"

namespace {

// A /proc/self/status field in bytes (VmRSS, VmHWM), -1 when unknown.
int64_t status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1)) * 1024;
  }
  return -1;
}

void reset_peak() {
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current RSS
}

}  // namespace

int main(int argc, char** argv) {
  ltx::tune_host_allocator();
  ltx::dist::World world(&argc, &argv);
  std::string vae_dir, dtype_name = "f32";
  int64_t frames = 16, height = 8, width = 8, repeat = 2;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        if (world.is_root()) std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    const std::string a = argv[i];
    if (a == "--vae") vae_dir = value();
    else if (a == "--frames") frames = std::stoll(value());
    else if (a == "--height") height = std::stoll(value());
    else if (a == "--width") width = std::stoll(value());
    else if (a == "--dtype") dtype_name = value();
    else if (a == "--repeat") repeat = std::stoll(value());
    else {
      if (world.is_root()) std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (vae_dir.empty() || frames < 1 || height < 1 || width < 1 || repeat < 1 ||
      (dtype_name != "f32" && dtype_name != "bf16")) {
    if (world.is_root()) {
      std::fprintf(stderr, "usage: ltx-decode-bench --vae DIR [--frames F] [--height H] [--width W] "
                           "[--dtype f32|bf16] [--repeat R] (latent sizes, all >= 1)\n");
    }
    return 2;
  }
  auto made = ltx::dist::make_communicator(world, ltx::dist::Backend::kAuto);
  if (!made.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", world.rank(), made.status().to_string().c_str());
    return 1;
  }
  std::unique_ptr<ltx::dist::Communicator> comm = std::move(*made);
  const at::Device device = comm->device();
  const at::ScalarType dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
  auto vae = ltx::pipeline::LtxVaeDecoder::load(vae_dir, dtype, device);
  if (!vae.ok()) {
    std::fprintf(stderr, "rank %d: %s\n", world.rank(), vae.status().to_string().c_str());
    return 1;
  }
  const ltx::pipeline::LatentGrid grid{frames, height, width};
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  const at::Tensor latents =
      ltx::pipeline::pack_latents(at::randn({1, vae->config().latent_channels, frames, height, width}, gen));
  double seconds = 0;
  int64_t rss_before = 0, peak = 0;
  for (int64_t r = 0; r < repeat; ++r) {
    comm->barrier();
    if (r == 0) {
      // Memory on the first decode: later ones reuse the heap it grew
      // (common/host_memory.h keeps large blocks).
      reset_peak();
      rss_before = status_bytes("VmRSS");
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto frames_out = ltx::pipeline::decode_to_frames_shared(*vae, latents, grid, {},
                                                             at::make_generator<at::CPUGeneratorImpl>(2), *comm);
    LTX_CHECK(frames_out.ok(), frames_out.status().to_string());
    comm->barrier();
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r == 0) peak = status_bytes("VmHWM");
  }
  // Rows in rank order.
  for (int r = 0; r < world.size(); ++r) {
    if (r == world.rank()) {
      if (r == 0) std::printf("ranks,rank,latent_frames,latent_height,latent_width,dtype,decode_s,peak_rss_growth_mb\n");
      std::printf("%d,%d,%lld,%lld,%lld,%s,%.3f,%.1f\n", world.size(), r, static_cast<long long>(frames),
                  static_cast<long long>(height), static_cast<long long>(width), dtype_name.c_str(), seconds,
                  (peak - rss_before) / 1048576.0);
      std::fflush(stdout);
    }
    comm->barrier();
  }
  return 0;
}
