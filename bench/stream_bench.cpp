// ltx-stream-bench: per-chunk time against chunk index for a stream session
// (KV cache sharded across the group), time to first chunk, KV bytes per rank.
//
//   mpirun -n N build/ltx-stream-bench [--model DIR] [--chunks 12] [--window 4]
//          [--width 512] [--height 320] [--chunk-frames 2] [--steps 4]
//
// Without --model the built-in small model is used. Times are rank 0's wall
// time for next_chunk() (denoise + timestep-0 pass + decode); CSV on stdout.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/check.h"
#include "common/host_memory.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/world.h"
#include "pipeline/registry/model_registry.h"
#include "pipeline/runtime/stream_session.h"

static int bench_main(int argc, char** argv) {
  ltx::tune_host_allocator();
  ltx::dist::World world(&argc, &argv);
  std::string model_dir;
  int64_t chunks = 12;
  ltx::pipeline::StreamSettings s;
  s.prompt = "A slow pan across a quiet harbor with fishing boats";
  s.width = 512;
  s.height = 320;
  s.chunk_frames = 2;
  s.num_steps = 4;
  s.window_chunks = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i], v = argv[i + 1];
    if (a == "--model") model_dir = v;
    else if (a == "--chunks") chunks = std::stoll(v);
    else if (a == "--window") s.window_chunks = std::stoll(v);
    else if (a == "--width") s.width = std::stoll(v);
    else if (a == "--height") s.height = std::stoll(v);
    else if (a == "--chunk-frames") s.chunk_frames = std::stoll(v);
    else if (a == "--steps") s.num_steps = std::stoll(v);
    else {
      if (world.is_root()) std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  if (model_dir.empty()) model_dir = ltx::pipeline::kDefaultModel;  // each node finds or writes its own
  auto comm = ltx::value_or_throw(ltx::dist::make_communicator(world, ltx::dist::Backend::kAuto));
  auto model = ltx::value_or_throw(ltx::pipeline::load_model(model_dir, *comm, {}));
  // The same verdict on every rank (the arguments are the same everywhere).
  ltx::Status valid = ltx::pipeline::validate_stream_settings(s, model.geometry);
  if (!valid.ok() || chunks < 1) {
    if (world.is_root()) std::fprintf(stderr, "%s\n", valid.ok() ? "--chunks must be >= 1" : valid.to_string().c_str());
    return 2;
  }
  ltx::pipeline::PromptEncoder prompts(*comm, std::move(model.text));
  ltx::pipeline::KvBudget budget;
  auto t_start = std::chrono::steady_clock::now();
  auto session = ltx::value_or_throw(ltx::pipeline::StreamSession::create("bench", s, model, *comm, prompts, &budget));
  if (world.is_root()) {
    std::printf("# ltx-stream-bench: %d rank(s) (%s), %lldx%lld, %lld latent frames/chunk, %lld steps, window %lld\n",
                comm->size(), comm->backend_name(), static_cast<long long>(s.width), static_cast<long long>(s.height),
                static_cast<long long>(s.chunk_frames), static_cast<long long>(s.num_steps),
                static_cast<long long>(s.window_chunks));
    std::printf("chunk,seconds,since_start_s,kv_tokens,kv_bytes_rank0,evictions\n");
  }
  for (int64_t c = 0; c < chunks; ++c) {
    comm->barrier();
    auto t0 = std::chrono::steady_clock::now();
    ltx::throw_if_error(session->next_chunk(c).status());
    auto t1 = std::chrono::steady_clock::now();
    if (world.is_root()) {
      std::printf("%lld,%.4f,%.4f,%lld,%lld,%lld\n", static_cast<long long>(c),
                  std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t1 - t_start).count(),
                  static_cast<long long>(session->cache().tokens()), static_cast<long long>(session->cache().bytes()),
                  static_cast<long long>(session->cache().evictions()));
      std::fflush(stdout);
    }
  }
  return 0;
}

// A bad setting (too few steps for the scheduler's terminal stretch, say) is
// reported and exits 1 instead of aborting.
int main(int argc, char** argv) {
  try {
    return bench_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ltx-stream-bench: %s\n", e.what());
    return 1;
  }
}
