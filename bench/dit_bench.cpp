// ltx-dit-bench: one denoiser forward at a released configuration (random
// weights), for the group size it runs with; prints per-step time with a
// compute/communication split.
//
// LTX-Video 2B (default):
//   mpirun -n N build/ltx-dit-bench --tokens 1024 [--layers 28] [--steps 3]
//          [--text-len 128] [--batch 1] [--dtype f32|bf16] [--backend mpi|nccl|auto]
//   (--batch 2 is a CFG pair: the pipeline's guided step is one batch-2 forward)
// LTX-2 19B (2.0) or 22B (2.3) audio-video transformer:
//   mpirun -n N build/ltx-dit-bench --model ltx2 --width 384 --height 256 --frames 121 --fps 24
//          [--variant 2.0|2.3] [--batch 2] [--layers 48] [--text-len 1024] [--steps 1] [--dtype f32|bf16]
//   Video tokens (F-1)/8+1 x H/32 x W/32 and audio tokens round(frames/fps*25)
//   are derived as the pipeline derives them; batch 2 is the CFG pair.
//
// --ring-size R (LTX-Video) runs Ulysses inside R sub-groups x ring attention
// across them (LtxTransformer::use_ring), e.g. for more ranks than heads.
// --guidance-groups G runs the guidance-parallel plan (parallel/step_plan.h):
// G sub-groups of N/G consecutive ranks each run B/G of the batch over the
// whole sequence, and the G ranks holding the same tokens all-gather their
// outputs; the default 1 is the sequence plan (every rank the whole batch).
//
// --layers below the model's depth builds fewer blocks and scales the
// per-layer time to the full depth (the blocks are identical). Time is the
// slowest rank's; "comm" is the time inside collectives on that rank
// (all-to-alls and all-gathers, including waiting for peers).
#include <ATen/ATen.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/host_memory.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/timed_communicator.h"
#include "dist/world.h"
#include "pipeline/dit/ltx_transformer.h"
#include "pipeline/ltx2/ltx2_small_model.h"
#include "pipeline/ltx2/ltx2_transformer.h"

namespace {

double max_over_ranks(const ltx::dist::World& w, double v) {
  double out = 0;
  MPI_Allreduce(&v, &out, 1, MPI_DOUBLE, MPI_MAX, w.comm());
  return out;
}


struct Ltx2Options {
  int64_t width = 384, height = 256, frames = 121, batch = 2, layers = 48, steps = 1, text_len = 1024;
  double fps = 24.0;
  std::string variant = "2.0";
};

// The communicators of a plan: `seq` shares the tokens (the whole group, or a
// guidance sub-group), `peers` the ranks holding the same tokens (null for
// the sequence plan). Both timed.
struct PlanComms {
  ltx::dist::TimedCommunicator* seq = nullptr;
  ltx::dist::TimedCommunicator* peers = nullptr;
  int groups = 1;
  std::vector<ltx::dist::TimedCommunicator*> more;  // Ulysses x ring: the sub-group and the ring
  double seconds() const {
    double t = seq->seconds() + (peers != nullptr ? peers->seconds() : 0.0);
    for (auto* c : more) t += c->seconds();
    return t;
  }
  void reset() {
    seq->reset();
    if (peers != nullptr) peers->reset();
    for (auto* c : more) c->reset();
  }
  at::Tensor exchange(const at::Tensor& out) const { return peers != nullptr ? peers->all_gather(out.contiguous()) : out; }
};

int run_ltx2(const ltx::dist::World& world, PlanComms plan, const Ltx2Options& o, at::ScalarType dtype,
             const std::string& dtype_name) {
  ltx::dist::TimedCommunicator& comm = *plan.seq;
  using namespace ltx::pipeline;
  Ltx2TransformerConfig config;  // the released 19B structure
  const int64_t depth = config.num_layers;
  if (o.variant == "2.3") {
    config.gated_attn = config.audio_gated_attn = config.cross_attn_mod = config.audio_cross_attn_mod = true;
    config.use_prompt_embeddings = false;
  }
  config.num_layers = o.layers;
  const at::Device device = comm.device();
  auto t_init = std::chrono::steady_clock::now();
  auto weights = ltx2_random_tensors(Ltx2Transformer::expected_tensors(config), 0, dtype, device);
  auto model_or = Ltx2Transformer::from_tensors(config, weights, comm, dtype, device);
  weights.clear();
  if (!model_or.ok()) {
    if (world.is_root()) std::fprintf(stderr, "%s\n", model_or.status().to_string().c_str());
    return 1;
  }
  const auto& model = *model_or;
  const double init_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_init).count();

  const int64_t f = (o.frames - 1) / 8 + 1, h = o.height / 32, w = o.width / 32;
  const int64_t nv = f * h * w;
  const int64_t na = static_cast<int64_t>(std::nearbyint(static_cast<double>(o.frames) / o.fps * 25.0));
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  at::manual_seed(1);
  const int64_t cv = config.use_prompt_embeddings ? config.caption_channels : config.cross_attention_dim;
  const int64_t ca = config.use_prompt_embeddings ? config.caption_channels : config.audio_cross_attention_dim;
  const int64_t batch = o.batch / plan.groups;  // this sub-group's passes
  at::Tensor mask = at::ones({batch, o.text_len}, at::TensorOptions().dtype(at::kLong).device(device));
  auto text = model.prepare_text(at::randn({batch, o.text_len, cv}, opts), mask,
                                 at::randn({batch, o.text_len, ca}, opts), mask);
  Ltx2ForwardArgs args;
  args.video.shard = ltx::parallel::SequenceShard::make(nv, comm.size(), comm.rank());
  args.audio.shard = ltx::parallel::SequenceShard::make(na, comm.size(), comm.rank());
  args.video.tokens = at::randn({batch, args.video.shard.shard_len, config.in_channels}, opts);
  args.audio.tokens = at::randn({batch, args.audio.shard.shard_len, config.audio_in_channels}, opts);
  args.video.timestep = args.audio.timestep = args.sigma = at::full({batch}, 500.0, at::TensorOptions().device(device));
  args.video.coords = args.video.shard.take(ltx2_video_coords(batch, f, h, w, o.fps, config), 2);
  args.audio.coords = args.audio.shard.take(ltx2_audio_coords(batch, na, config), 2);
  args.text = &text;

  model.forward(args);  // warm-up
  double total = 0, comm_s = 0;
  for (int64_t s = 0; s < o.steps; ++s) {
    MPI_Barrier(world.comm());
    plan.reset();
    auto t0 = std::chrono::steady_clock::now();
    Ltx2Output out = model.forward(args);
    at::Tensor video = plan.exchange(out.video), audio = plan.exchange(out.audio);
    (void)(video.sum().item<double>() + audio.sum().item<double>());  // wait for the device
    total += max_over_ranks(world, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    comm_s += max_over_ranks(world, plan.seconds());
  }
  total /= o.steps;
  comm_s /= o.steps;
  const double scale = static_cast<double>(depth) / static_cast<double>(o.layers);
  if (world.is_root()) {
    std::printf("# ltx-dit-bench: LTX-%s audio-video transformer, %lld/%lld layers built, %lldx%lld px, %lld frames at "
                "%.0f fps, batch %lld, text %lld, dtype %s, backend %s, init %.1fs\n",
                o.variant.c_str(), static_cast<long long>(o.layers), static_cast<long long>(depth),
                static_cast<long long>(o.width), static_cast<long long>(o.height), static_cast<long long>(o.frames),
                o.fps, static_cast<long long>(o.batch), static_cast<long long>(o.text_len), dtype_name.c_str(),
                comm.backend_name(), init_s);
    std::printf("ranks,video_tokens,audio_tokens,video_tokens_per_rank,audio_tokens_per_rank,layers,step_s,comm_s,"
                "compute_s,step_s_%lld_layers,comm_s_%lld_layers,guidance_groups\n",
                static_cast<long long>(depth), static_cast<long long>(depth));
    std::printf("%d,%lld,%lld,%lld,%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.4f,%d\n", world.size(), static_cast<long long>(nv),
                static_cast<long long>(na), static_cast<long long>(args.video.shard.shard_len),
                static_cast<long long>(args.audio.shard.shard_len), static_cast<long long>(o.layers), total, comm_s,
                total - comm_s, total * scale, comm_s * scale, plan.groups);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  ltx::tune_host_allocator();
  ltx::dist::World world(&argc, &argv);
  int64_t tokens = 1024, layers = 28, steps = 3, text_len = 128, video_batch = 1;
  std::string dtype_name = "f32", backend_name = "auto", model_name = "ltx-video";
  Ltx2Options ltx2;
  bool layers_given = false, text_given = false, steps_given = false;
  int guidance_groups = 1, ring_size = 1;
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
    else if (a == "--layers") layers = std::stoll(value()), layers_given = true;
    else if (a == "--steps") steps = std::stoll(value()), steps_given = true;
    else if (a == "--text-len") text_len = std::stoll(value()), text_given = true;
    else if (a == "--model") model_name = value();
    else if (a == "--width") ltx2.width = std::stoll(value());
    else if (a == "--height") ltx2.height = std::stoll(value());
    else if (a == "--frames") ltx2.frames = std::stoll(value());
    else if (a == "--fps") ltx2.fps = std::stod(value());
    else if (a == "--batch") ltx2.batch = video_batch = std::stoll(value());
    else if (a == "--variant") ltx2.variant = value();
    else if (a == "--dtype") dtype_name = value();
    else if (a == "--backend") backend_name = value();
    else if (a == "--guidance-groups") guidance_groups = std::stoi(value());
    else if (a == "--ring-size") ring_size = std::stoi(value());
    else {
      if (world.is_root()) std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (model_name == "ltx2") {
    if (layers_given) ltx2.layers = layers;
    if (text_given) ltx2.text_len = text_len;
    if (steps_given) ltx2.steps = steps;
    if (ltx2.layers < 1 || ltx2.layers > 48 || ltx2.steps < 1 || ltx2.text_len < 1 || ltx2.batch < 1 ||
        ltx2.width < 32 || ltx2.width % 32 != 0 || ltx2.height < 32 || ltx2.height % 32 != 0 || ltx2.frames < 1 ||
        (ltx2.frames - 1) % 8 != 0 || !(ltx2.fps > 0) || (ltx2.variant != "2.0" && ltx2.variant != "2.3") ||
        (dtype_name != "f32" && dtype_name != "bf16")) {
      if (world.is_root()) {
        std::fprintf(stderr, "bad arguments (1<=layers<=48, width/height multiples of 32, frames 8k+1, fps>0, "
                             "variant 2.0|2.3, dtype f32|bf16)\n");
      }
      return 2;
    }
  } else if (model_name != "ltx-video") {
    if (world.is_root()) std::fprintf(stderr, "--model must be ltx-video or ltx2, got %s\n", model_name.c_str());
    return 2;
  }
  if (tokens < 1 || layers < 1 || (model_name == "ltx-video" && layers > 28) || steps < 1 || text_len < 1 || video_batch < 1 ||
      (dtype_name != "f32" && dtype_name != "bf16")) {
    if (world.is_root()) std::fprintf(stderr, "bad arguments (tokens>0, 1<=layers<=28, steps>0, batch>0, dtype f32|bf16)\n");
    return 2;
  }
  auto backend = ltx::dist::parse_backend(backend_name);
  auto base = ltx::dist::make_communicator(world, backend.value_or(ltx::dist::Backend::kAuto));
  if (!backend || !base.ok()) {
    if (world.is_root()) std::fprintf(stderr, "cannot make a %s communicator\n", backend_name.c_str());
    return 1;
  }
  const int64_t batch_all = model_name == "ltx2" ? ltx2.batch : video_batch;
  const int n = world.size();
  if (guidance_groups < 1 || n % guidance_groups != 0 || batch_all % guidance_groups != 0) {
    if (world.is_root()) {
      std::fprintf(stderr, "--guidance-groups %d must divide the ranks (%d) and the batch (%lld)\n", guidance_groups,
                   n, static_cast<long long>(batch_all));
    }
    return 2;
  }
  if (ring_size < 1 || n % ring_size != 0 || (ring_size > 1 && (guidance_groups > 1 || model_name != "ltx-video"))) {
    if (world.is_root()) {
      std::fprintf(stderr, "--ring-size %d must divide the ranks (%d), with LTX-Video and one guidance group\n",
                   ring_size, n);
    }
    return 2;
  }
  std::unique_ptr<ltx::dist::Communicator> sub, peer_group;
  if (guidance_groups > 1) {
    const int per = n / guidance_groups;
    sub = (*base)->split(world.rank() / per, world.rank());
    peer_group = (*base)->split(world.rank() % per, world.rank());
  }
  ltx::dist::TimedCommunicator comm(sub != nullptr ? *sub : **base);
  std::optional<ltx::dist::TimedCommunicator> peers;
  if (peer_group != nullptr) peers.emplace(*peer_group);
  PlanComms plan{&comm, peers ? &*peers : nullptr, guidance_groups, {}};
  const at::ScalarType dtype = dtype_name == "bf16" ? at::kBFloat16 : at::kFloat;
  const at::Device device = comm.device();
  if (model_name == "ltx2") return run_ltx2(world, plan, ltx2, dtype, dtype_name);

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
  // Ulysses x ring: the transformer on a timed Ulysses sub-group, then the ring.
  std::unique_ptr<ltx::dist::Communicator> ulysses_raw, ring_raw;
  std::unique_ptr<ltx::dist::TimedCommunicator> ulysses, ring;
  if (ring_size > 1) {
    const int u = n / ring_size;
    ulysses_raw = (*base)->split(world.rank() / u, world.rank());
    ring_raw = (*base)->split(world.rank() % u, world.rank());
    ulysses = std::make_unique<ltx::dist::TimedCommunicator>(*ulysses_raw);
    ring = std::make_unique<ltx::dist::TimedCommunicator>(*ring_raw);
    plan.more = {ulysses.get(), ring.get()};
  }
  auto model_or = ltx::pipeline::LtxTransformer::from_tensors(config, weights, ulysses ? *ulysses : comm, dtype, device);
  weights.clear();
  if (!model_or.ok()) {
    if (world.is_root()) std::fprintf(stderr, "%s\n", model_or.status().to_string().c_str());
    return 1;
  }
  if (ring_size > 1) model_or->use_ring(std::move(ulysses), std::move(ring), comm);
  const auto& model = *model_or;
  double init_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_init).count();

  // A roughly square latent grid with `tokens` tokens: frames x height x width.
  ltx::pipeline::LatentGrid grid{1, 1, tokens, 0};
  auto shard = ltx::parallel::SequenceShard::make(tokens, comm.size(), comm.rank());
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  const int64_t b = video_batch / guidance_groups;  // this sub-group's passes
  auto text = model.prepare_text(at::randn({b, text_len, config.caption_channels}, opts),
                                 at::ones({b, text_len}, opts));
  auto tables = ltx::pipeline::rope_tables(grid, {}, model.inner_dim(), device);
  ltx::pipeline::LtxForwardArgs args;
  args.shard = shard;
  args.hidden_states = at::randn({b, shard.shard_len, config.in_channels}, opts);
  args.timestep = at::full({b}, 500.0, at::TensorOptions().device(device));
  args.rope_cos = shard.take(tables.cos, 0);
  args.rope_sin = shard.take(tables.sin, 0);
  args.text = &text;

  model.forward(args);  // warm-up
  double total = 0, comm_s = 0;
  for (int64_t s = 0; s < steps; ++s) {
    MPI_Barrier(world.comm());
    plan.reset();
    auto t0 = std::chrono::steady_clock::now();
    at::Tensor out = plan.exchange(model.forward(args));
    (void)out.sum().item<double>();  // wait for the device
    total += max_over_ranks(world, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    comm_s += max_over_ranks(world, plan.seconds());
  }
  total /= steps;
  comm_s /= steps;
  const double scale28 = 28.0 / layers;
  if (world.is_root()) {
    std::printf("# ltx-dit-bench: 2B config, %lld/28 layers built, batch %lld, dtype %s, backend %s, init %.1fs\n",
                static_cast<long long>(layers), static_cast<long long>(video_batch), dtype_name.c_str(),
                comm.backend_name(), init_s);
    std::printf("ranks,tokens,tokens_per_rank,layers,step_s,comm_s,compute_s,step_s_28_layers,comm_s_28_layers,"
                "guidance_groups,ring_size\n");
    std::printf("%d,%lld,%lld,%lld,%.4f,%.4f,%.4f,%.4f,%.4f,%d,%d\n", world.size(), static_cast<long long>(tokens),
                static_cast<long long>(shard.shard_len), static_cast<long long>(layers), total, comm_s,
                total - comm_s, total * scale28, comm_s * scale28, guidance_groups, ring_size);
  }
  return 0;
}
