#include "launch/serve_command.h"

#include "launch/launch_support.h"

#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "common/check.h"
#include "common/logging.h"
#include "dist/communicator.h"
#include "dist/control_channel.h"
#include "pipeline/prompt_encoder.h"
#include "pipeline/text_to_video.h"
#include "pipeline/video_file.h"
#include "service/http_server.h"
#include "service/video_jobs.h"

namespace ltx::launch {
namespace po = boost::program_options;

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int) { g_stop.store(true); }

}  // namespace

int run_serve(dist::World& world, const std::vector<std::string>& args) {
  std::string model, host = "127.0.0.1", backend = "auto";
  int port = 8080;
  size_t max_queue = 16;
  po::options_description desc("ltx-worker serve");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&model), "model folder (diffusers layout); default: the built-in small model")
      ("host", po::value(&host)->default_value(host), "address to listen on")
      ("port", po::value(&port)->default_value(port), "port (0 picks a free one)")
      ("max-queue", po::value(&max_queue)->default_value(max_queue), "queued jobs before 429")
      ("backend", po::value(&backend)->default_value(backend), "mpi|nccl|auto");
  po::variables_map vm;
  Status verdict;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    verdict = invalid_argument_error(e.what());
  }
  if (vm.count("help")) {
    if (world.is_root()) std::cout << desc;
    return 0;
  }
  std::string model_dir;
  if (world.is_root() && verdict.ok()) {
    if (port < 0 || port > 65535) verdict = invalid_argument_error("--port must be in [0, 65535]");
    else if (!dist::parse_backend(backend)) verdict = invalid_argument_error("--backend must be mpi, nccl or auto");
    else {
      auto dir = resolve_model_dir(model);
      verdict = dir.status();
      if (dir.ok()) model_dir = *dir;
    }
  }
  verdict = share_root_verdict(world, verdict, &model_dir);
  if (!verdict.ok()) {
    if (world.is_root()) std::fprintf(stderr, "ltx-worker serve: %s\n", verdict.message().c_str());
    return 2;
  }
  set_rank_threads(world);
  if (world.is_root()) {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
  } else {
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
  }

  auto comm_or = dist::make_communicator(world, *dist::parse_backend(backend));
  if (!comm_or.ok()) {
    std::fprintf(stderr, "ltx-worker serve [rank %d]: %s\n", world.rank(), comm_or.status().to_string().c_str());
    return 1;
  }
  dist::Communicator& comm = **comm_or;
  auto model_or = pipeline::LtxVideoModel::load(model_dir, comm, at::kFloat);
  if (!model_or.ok()) {
    std::fprintf(stderr, "ltx-worker serve [rank %d]: %s\n", world.rank(), model_or.status().to_string().c_str());
    return 1;
  }
  pipeline::LtxVideoModel& m = *model_or;
  std::optional<pipeline::TextEncoder> encoder = std::move(m.text_encoder);
  m.text_encoder.reset();
  pipeline::PromptEncoder prompts(comm, std::move(encoder));
  pipeline::TextToVideo t2v(m, comm, prompts);
  dist::ControlChannel channel(world.comm());

  service::VideoJobs jobs({model_dir, comm.size(), max_queue});
  // The request rank 0 is running (rank 0 knows the prompt; others get the
  // numbers from the command) and where its frames go.
  std::string current_id;
  pipeline::GenerationRequest current;
  at::Tensor frames;
  auto handler = [&](const dist::Command& cmd) -> Status {
    const auto* begin = std::get_if<dist::BeginRequestCommand>(&cmd);
    if (begin == nullptr) return Status();
    pipeline::GenerationRequest r = world.is_root() ? current : pipeline::GenerationRequest{};
    if (!world.is_root()) {
      r.width = begin->width;
      r.height = begin->height;
      r.num_frames = begin->num_frames;
      r.num_steps = begin->num_steps;
      r.guidance_scale = begin->guidance_scale;
      r.guidance_rescale = begin->guidance_rescale;
      r.seed = begin->seed;
      r.fps = begin->fps;
    }
    auto video = t2v.generate(r, [&](int64_t i, int64_t n, double seconds) {
      if (world.is_root()) {
        jobs.step(current_id, i + 1, n);
        jobs.metrics().observe_step_seconds(seconds);
      }
    });
    LTX_RETURN_IF_ERROR(video.status());
    if (world.is_root()) frames = video->frames;
    return Status();
  };

  if (!world.is_root()) {
    Status served = channel.serve(handler);
    if (!served.ok()) std::fprintf(stderr, "ltx-worker serve [rank %d]: %s\n", world.rank(), served.to_string().c_str());
    return served.ok() ? 0 : 1;
  }

  service::HttpServerOptions opts;
  opts.host = host;
  opts.port = static_cast<uint16_t>(port);
  service::HttpServer server(opts, [&jobs](const service::HttpRequest& r) { return jobs.handle(r); });
  Status listening = server.start();
  if (!listening.ok()) {
    std::fprintf(stderr, "ltx-worker serve: %s\n", listening.to_string().c_str());
    channel.execute(dist::ShutdownCommand{}, handler);
    return 1;
  }
  std::printf("ltx-worker: listening on http://%s:%u (rank 0 pid %d, %d rank(s), model %s)\n", host.c_str(),
              static_cast<unsigned>(server.port()), static_cast<int>(::getpid()), comm.size(), model_dir.c_str());
  std::fflush(stdout);
  while (!g_stop.load()) {
    auto job = jobs.next_job(std::chrono::milliseconds(200));
    if (!job) continue;
    current_id = job->first;
    current = job->second;
    ScopedRequestId tag(current_id);
    auto t0 = std::chrono::steady_clock::now();
    dist::BeginRequestCommand cmd{current_id, "", current.width, current.height, current.num_frames,
                                  current.num_steps, current.guidance_scale, current.seed,
                                  current.guidance_rescale, current.fps};
    auto outcome = channel.execute(cmd, handler);
    if (!outcome.status.ok()) {
      jobs.fail(current_id, outcome.status);
      continue;
    }
    auto mp4 = pipeline::encode_mp4(frames, current.fps);
    if (!mp4.ok()) {
      jobs.fail(current_id, mp4.status());
      continue;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    LTX_LOG(kInfo) << "video done in " << secs << " s";
    jobs.complete(current_id, std::move(*mp4), secs);
  }
  LTX_LOG(kInfo) << "shutting down: no new requests, stopping the group";
  jobs.shutdown();
  server.stop();
  auto bye = channel.execute(dist::ShutdownCommand{}, handler);
  return bye.status.ok() ? 0 : 1;
}

}  // namespace ltx::launch
