// ltx-comm-bench: time of all-to-all and broadcast for message sizes
// 64 KiB .. 256 MiB at the group size it runs with; CSV on stdout (rank 0).
//
//   mpirun -n 4 build/ltx-comm-bench [--backend mpi|nccl|auto] [--min-kib 64]
//                                    [--max-mib 256] [--budget-s 2]
//
// size_bytes is the tensor each rank passes in (for all-to-all each rank
// sends size/N to every peer). seconds is the median over repetitions of the
// slowest rank's time; GB/s = size_bytes / seconds / 1e9.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/host_memory.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/world.h"

namespace {

using Clock = std::chrono::steady_clock;

double slowest(const ltx::dist::World& world, double seconds) {
  double out = 0;
  MPI_Allreduce(&seconds, &out, 1, MPI_DOUBLE, MPI_MAX, world.comm());
  return out;
}

template <typename F>
double median_time(const ltx::dist::World& world, ltx::dist::Communicator& comm, int reps, F&& op) {
  std::vector<double> times;
  for (int i = 0; i < reps + 1; ++i) {  // first run is a warm-up
    comm.barrier();
    auto t0 = Clock::now();
    op();
    comm.barrier();  // NCCL: waits for the queued work too
    double s = slowest(world, std::chrono::duration<double>(Clock::now() - t0).count());
    if (i > 0) times.push_back(s);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  ltx::tune_host_allocator();
  ltx::dist::World world(&argc, &argv);
  std::string backend_name = "auto";
  int64_t min_kib = 64, max_mib = 256;
  double budget_s = 2.0;
  for (int i = 1; i < argc; ++i) {
    auto next = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        if (world.is_root()) std::fprintf(stderr, "%s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--backend")) backend_name = next("--backend");
    else if (!std::strcmp(argv[i], "--min-kib")) min_kib = std::stoll(next("--min-kib"));
    else if (!std::strcmp(argv[i], "--max-mib")) max_mib = std::stoll(next("--max-mib"));
    else if (!std::strcmp(argv[i], "--budget-s")) budget_s = std::stod(next("--budget-s"));
    else {
      if (world.is_root()) std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  auto backend = ltx::dist::parse_backend(backend_name);
  if (!backend) {
    if (world.is_root()) std::fprintf(stderr, "--backend must be mpi, nccl or auto\n");
    return 2;
  }
  auto comm_or = ltx::dist::make_communicator(world, *backend);
  if (!comm_or.ok()) {
    if (world.is_root()) std::fprintf(stderr, "%s\n", comm_or.status().to_string().c_str());
    return 1;
  }
  ltx::dist::Communicator& comm = **comm_or;
  const int n = comm.size();
  if (world.is_root()) {
    std::printf("# backend=%s ranks=%d\nop,ranks,size_bytes,seconds,GB_per_s\n", comm.backend_name(), n);
  }
  for (int64_t size = min_kib << 10; size <= (max_mib << 20); size *= 4) {
    const int64_t bytes = size / n * n;  // all-to-all splits equally
    at::Tensor buf = at::ones({bytes}, at::TensorOptions().dtype(at::kByte).device(comm.device()));
    at::Tensor out = at::empty_like(buf);  // reused: this measures transport, not allocation
    // Time one run to pick repetitions that fit the budget (at least 3).
    double once = median_time(world, comm, 1, [&] { comm.all_to_all_into(buf, out); });
    int reps = static_cast<int>(std::clamp(budget_s / std::max(once, 1e-6), 3.0, 50.0));
    double a2a = median_time(world, comm, reps, [&] { comm.all_to_all_into(buf, out); });
    double bc = median_time(world, comm, reps, [&] { comm.broadcast(buf, 0); });
    if (world.is_root()) {
      std::printf("all_to_all,%d,%lld,%.6e,%.3f\n", n, static_cast<long long>(bytes), a2a, bytes / a2a / 1e9);
      std::printf("broadcast,%d,%lld,%.6e,%.3f\n", n, static_cast<long long>(bytes), bc, bytes / bc / 1e9);
      std::fflush(stdout);
    }
  }
  return 0;
}
