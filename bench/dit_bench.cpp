// ltx-dit-bench: one denoiser forward of the LTX transformer at the real 2B
// configuration (random weights), for a token count and the group size it
// runs with; prints per-step time with a compute/communication split.
//
//   mpirun -n N build/ltx-dit-bench --tokens 1024 [--layers 28] [--steps 3]
//          [--text-len 128] [--dtype f32|bf16] [--backend mpi|nccl|auto]
//
// --layers below 28 builds fewer blocks and scales the per-layer time to 28
// (the blocks are identical). Time is the slowest rank's; "comm" is the time
// inside collectives on that rank (all-to-alls, including waiting for peers).
#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/check.h"
#include "common/host_memory.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/timed_communicator.h"
#include "dist/world.h"
#include "pipeline/dit/ltx_transformer.h"

namespace {

double max_over_ranks(const ltx::dist::World& w, double v) {
  double out = 0;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, w.comm());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  ltx::tune_host_allocator();
  ltx::dist::World world(&argc, &argv);
  int64_t tokens = 1024, layers = 28, steps = 3, text_len = 128;
  std::string dtype_name = "f32", backend_name = "auto";
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        if (world.is_root()) std::fprintf(stderr, "%s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    std::string a = argv[i];
    if (a == "--tokens") tokens = std::stoll(value());
    else if (a == "--layers") layers = std::stoll(value());
    else if (a == "--steps") steps = std::stoll(value());
    else if (a == "--text-len") text_len = std::stoll(value());
    else if (a == "--dtype") dtype_name = value();
    else if (a == "--backend") backend_name = value();
    else {
      if (world.is_root()) std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (tokens < 1 || layers < 1 || layers > 28 || steps < 1 || text_len < 1 ||
      (dtype_name != "f32" && dtype_name != "bf16")) {
    if (world.is_root()) std::fprintf(stderr, "bad arguments (tokens>0, 1<=layers<=28, steps>0, dtype f32|bf16)\n");
    return 2;
  }
  auto backend = ltx::dist::parse_backend(backend_name);
  auto base = ltx::dist::make_communicator(world, backend.value_or(ltx::dist::Backend::kAuto));
  if (!backend || !base.ok()) {
    if (world.is_root()) std::fprintf(stderr, "cannot make a %s communicator\n", backend_name.c_str());
    return 1;
  }
  ltx::dist::TimedCommunicator comm(**base);
  const at::ScalarType dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
  const at::Device device = comm.device();

  ltx::pipeline::TransformerConfig config;  // the public 2B model
  config.num_layers = layers;
  auto t_init = std::chrono::steady_clock::now();
  std::map<std::string, at::Tensor> weights;
  at::manual_seed(0);  // same weights on every rank
  for (const auto& [name, shape] : ltx::pipeline::LtxTransformer::expected_tensors(config)) {
    at::Tensor t = at::randn(shape, at::TensorOptions().dtype(dtype).device(device));
    if (shape.size() == 2 && name.find("scale_shift_table") == std::string::npos) {
      t.div_(std::sqrt(static_cast<double>(shape[1])));
    } else {
      t.mul_(0.1);
    }
    weights[name] = t;
  }
  auto model_or = ltx::pipeline::LtxTransformer::from_tensors(config, weights, comm, dtype, device);
  weights.clear();
  if (!model_or.ok()) {
    if (world.is_root()) std::fprintf(stderr, "%s\n", model_or.status().to_string().c_str());
    return 1;
  }
  const auto& model = *model_or;
  double init_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_init).count();

  // A roughly square latent grid with `tokens` tokens: frames x height x width.
  ltx::pipeline::LatentGrid grid{1, 1, tokens, 0};
  auto shard = ltx::parallel::SequenceShard::make(tokens, comm.size(), comm.rank());
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  auto text = model.prepare_text(at::randn({1, text_len, config.caption_channels}, opts),
                                 at::ones({1, text_len}, opts));
  auto tables = ltx::pipeline::rope_tables(grid, {}, model.inner_dim(), device);
  ltx::pipeline::LtxForwardArgs args;
  args.shard = shard;
  args.hidden_states = at::randn({1, shard.shard_len, config.in_channels}, opts);
  args.timestep = at::full({1}, 500.0, at::TensorOptions().device(device));
  args.rope_cos = shard.take(tables.cos, 0);
  args.rope_sin = shard.take(tables.sin, 0);
  args.text = &text;

  model.forward(args);  // warm-up
  double total = 0, comm_s = 0;
  for (int64_t s = 0; s < steps; ++s) {
    comm.barrier();
    comm.reset();
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor out = model.forward(args);
    (void)out.sum().item<double>();  // wait for the device
    total += max_over_ranks(world, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    comm_s += max_over_ranks(world, comm.seconds());
  }
  total /= steps;
  comm_s /= steps;
  const double scale28 = 28.0 / layers;
  if (world.is_root()) {
    std::printf("# ltx-dit-bench: 2B config, %lld/28 layers built, dtype %s, backend %s, init %.1fs\n",
                static_cast<long long>(layers), dtype_name.c_str(), comm.backend_name(), init_s);
    std::printf("ranks,tokens,tokens_per_rank,layers,step_s,comm_s,compute_s,step_s_28_layers,comm_s_28_layers\n");
    std::printf("%d,%lld,%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.4f\n", comm.size(), static_cast<long long>(tokens),
                static_cast<long long>(shard.shard_len), static_cast<long long>(layers), total, comm_s,
                total - comm_s, total * scale28, comm_s * scale28);
  }
  return 0;
}
