#include "launch/serve_command.h"

#include <unistd.h>

#include <atomic>
#include <boost/program_options.hpp>
#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <limits>
#include <sstream>
#include <thread>

#include "common/call_check.h"
#include "common/check.h"
#include "common/logging.h"
#include "dist/agreement.h"
#include "dist/backend.h"
#include "dist/communicator.h"
#include "dist/control_channel.h"
#include "dist/group_abort.h"
#include "launch/launch_support.h"
#include "launch/stop_signals.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/video_pipeline.h"
#include "pipeline/registry/model_registry.h"
#include "service/api_service.h"
#include "service/group_engine.h"
#include "service/http_server.h"
#include "service/inference_loop.h"
#include "service/service_config.h"

namespace ltx::launch {
namespace po = boost::program_options;

namespace {

// When the model's files were written (the folder's or file's modification
// time), for /v1/models; a built-in model: now.
// The streams an earlier run of the group persisted: each is resumed under
// its id. A document that no longer parses (another model, a removed blob)
// is set aside as <id>.json.bad, with the reason in the log.
void restore_sessions(const std::string& dir, const service::ServiceInfo& info, service::ApiService* api) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.find(".tmp.") != std::string::npos) {
      fs::remove(it->path(), ec);
      continue;
    }
    if (name.size() < 6 || name.substr(name.size() - 5) != ".json") continue;
    const std::string id = name.substr(0, name.size() - 5);
    std::ifstream in(it->path(), std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto state = pipeline::parse_stream_state(text, info.state_model, info.blob_store);
    Status restored = state.status();
    if (state.ok()) {
      service::StreamCreateRequest req;
      req.settings = state->settings;
      req.state = std::make_shared<const pipeline::ContinuationState>(std::move(state).value());
      restored = api->restore_stream(id, std::move(req));
    }
    if (!restored.ok()) {
      LTX_LOG(kWarn) << "session " << id << " not restored: " << restored.message() << " (set aside as " << name << ".bad)";
      fs::rename(it->path(), it->path().string() + ".bad", ec);
    }
  }
}

int64_t model_created_unix(const std::string& spec) {
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch());
  if (spec.rfind(pipeline::kBuiltinPrefix, 0) == 0) return now.count();
  auto path = pipeline::resolve_model_path(spec);
  if (!path.ok()) return now.count();
  std::error_code ec;
  const auto written = std::filesystem::last_write_time(*path, ec);
  if (ec) return now.count();
  const auto system = std::chrono::system_clock::now() + (written - std::filesystem::file_time_type::clock::now());
  return std::chrono::duration_cast<std::chrono::seconds>(system.time_since_epoch()).count();
}

// Every rank logs how it ends. Under the launcher's kill sequence the rank
// ends here and now (launch/stop_signals.h): MPI_Finalize would wait on a
// launcher that is tearing the job down, and its SIGKILL is near.
int exit_code_of_rank(int code) {
  if (launcher_stopping()) {
    LTX_LOG(kInfo) << "serve: the group stopped (the launcher ends the job); exiting with " << code;
    exit_now(code);
  }
  LTX_LOG(kInfo) << "serve: the group stopped; exiting with " << code;
  return code;
}

}  // namespace

int run_serve(dist::World& world, const std::vector<std::string>& args) {
  service::ServiceConfig cfg;
  std::string backend = "auto", config_file;
  po::options_description desc("ltx-worker serve");
  desc.add_options()("help,h", "show this help")
      ("model", po::value(&cfg.model), "model folder (diffusers layout), checkpoint file or builtin:NAME; default: builtin:ltx-video")
      ("config", po::value(&config_file), "JSON file of settings (the names below with _ for -); flags win")
      ("host", po::value(&cfg.host)->default_value(cfg.host), "address to listen on")
      ("port", po::value(&cfg.port)->default_value(cfg.port), "port (0 picks a free one)")
      ("backend", po::value(&backend)->default_value(backend), "mpi|nccl|auto")
      ("io-threads", po::value(&cfg.io_threads)->default_value(cfg.io_threads), "HTTP I/O threads")
      ("io-timeout", po::value(&cfg.io_timeout_s)->default_value(cfg.io_timeout_s), "seconds to read a request or write a response")
      ("max-body-bytes", po::value(&cfg.max_body_bytes)->default_value(cfg.max_body_bytes), "larger request bodies get 413")
      ("max-queue", po::value(&cfg.max_queue)->default_value(cfg.max_queue), "queued work items before 429")
      ("max-sessions", po::value(&cfg.max_sessions)->default_value(cfg.max_sessions), "open streaming sessions before 429")
      ("max-client-work", po::value(&cfg.max_client_work)->default_value(cfg.max_client_work), "one client's queued and running items before 429 (a client is its API key, else its address; 0 = no limit)")
      ("max-pixel-frames", po::value(&cfg.max_pixel_frames)->default_value(cfg.max_pixel_frames), "width*height*frames of one job or chunk (0 = sized to rank 0's memory, and its decoder GPU's)")
      ("max-finished-jobs", po::value(&cfg.max_finished_jobs)->default_value(cfg.max_finished_jobs), "finished videos kept for download")
      ("session-idle", po::value(&cfg.session_idle_s)->default_value(cfg.session_idle_s), "seconds before an unused stream is closed")
      ("max-kv-bytes-per-rank", po::value(&cfg.max_kv_bytes_per_rank)->default_value(cfg.max_kv_bytes_per_rank), "KV-cache budget per rank (0 = a quarter of each rank's share of the host's memory, and of the smallest free GPU memory, -1 = none)")
      ("state-dir", po::value(&cfg.state_dir), "folder for large continuation-state tensors (default: inline in the JSON)")
      ("state-max-bytes", po::value(&cfg.state_max_bytes)->default_value(cfg.state_max_bytes), "the blob store's size; the oldest blobs go beyond it (0 = no limit)")
      ("state-max-age", po::value(&cfg.state_max_age_s)->default_value(cfg.state_max_age_s), "seconds a blob is kept after its last use (0 = no limit)")
      ("state-inline-bytes", po::value(&cfg.state_inline_bytes)->default_value(cfg.state_inline_bytes), "tensors up to this size stay inline")
      ("retry-after", po::value(&cfg.retry_after_s)->default_value(cfg.retry_after_s), "Retry-After seconds of 429/503 answers")
      ("job-slice", po::value(&cfg.job_slice_s)->default_value(cfg.job_slice_s), "seconds a video job runs before it pauses for a waiting stream (0 = never)")
      ("fault-timeout", po::value(&cfg.fault_timeout_s)->default_value(cfg.fault_timeout_s), "seconds a rank whose step failed alone waits for its peers before it aborts the group")
      ("max-connections", po::value(&cfg.max_connections)->default_value(cfg.max_connections), "open HTTP connections (past it the longest idle one is closed, else 503)")
      ("api-key", po::value(&cfg.api_key), "bearer token every route but /, /index.html and /healthz requires (default: $LTX_API_KEY, else none)")
      ("allowed-host", po::value(&cfg.allowed_hosts)->composing(), "a Host name to accept besides IP literals and localhost (repeatable; * = any)")
      ("allowed-origin", po::value(&cfg.allowed_origins)->composing(), "a cross-site origin allowed to call the API, with CORS (repeatable)");
  add_placement_options(desc, &cfg.placement);
  po::variables_map vm;
  Status verdict;
  try {
    po::store(po::command_line_parser(args).options(desc).run(), vm);
    if (vm.count("config") && world.is_root()) {
      // The file fills what the flags left at their defaults (rank 0 reads it;
      // the settings other ranks need come from rank 0 below).
      config_file = vm["config"].as<std::string>();
      service::ServiceConfig from_file;
      Status read = service::merge_service_config_json(config_file, &from_file);
      if (!read.ok()) throw std::runtime_error(read.message());
      cfg = from_file;
      po::variables_map explicit_only;
      for (const auto& [name, value] : vm) {
        if (!value.defaulted()) explicit_only.insert({name, value});
      }
      vm = std::move(explicit_only);
    }
    po::notify(vm);
  } catch (const std::exception& e) {
    verdict = invalid_argument_error(e.what());
  }
  if (vm.count("help")) {
    if (world.is_root()) std::cout << desc;
    return 0;
  }
  std::string model_spec;
  if (cfg.api_key.empty()) {
    if (const char* key = std::getenv("LTX_API_KEY")) cfg.api_key = key;
  }
  bool auto_pixels = false, auto_kv = false;
  if (world.is_root() && verdict.ok()) {
    // Limits left at 0 follow the host's memory (rank 0's host; every rank
    // of it shares that memory).
    const int ranks_here = std::max(1, world.info().local_size);
    auto_pixels = cfg.max_pixel_frames == 0;
    auto_kv = cfg.max_kv_bytes_per_rank == 0;
    const int64_t available = service::host_available_memory();
    cfg.size_to_host(available, ranks_here);
    if (auto_pixels || auto_kv) {
      LTX_LOG(kInfo) << "limits sized to " << available / (1 << 20) << " MiB available for " << ranks_here
                     << " rank(s) here: max_pixel_frames " << cfg.max_pixel_frames << " (at "
                     << service::kRank0BytesPerPixelFrame << " bytes each), max_kv_bytes_per_rank "
                     << cfg.max_kv_bytes_per_rank;
    }
    verdict = cfg.validate();
    if (verdict.ok() && !dist::parse_backend(backend)) verdict = invalid_argument_error("--backend must be mpi, nccl or auto");
    if (verdict.ok()) {
      auto spec = check_model_spec(cfg.model);
      verdict = spec.status();
      if (spec.ok()) model_spec = *spec;
    }
  }
  // Rank 0's model spec and the settings every rank's engine must share
  // (the KV budget decides what each rank refuses; the placement where each
  // rank puts its parts), one per line.
  std::string shared = model_spec + "\n" + std::to_string(cfg.max_kv_bytes_per_rank) + "\n" +
                       std::to_string(cfg.state_inline_bytes) + "\n" + cfg.state_dir + "\n" +
                       std::to_string(cfg.fault_timeout_s) + "\n" + (auto_kv ? "1" : "0") + "\n" +
                       encode_placement(cfg.placement);
  verdict = dist::share_root_verdict(world.comm(), verdict, &shared);
  if (!verdict.ok()) {
    if (world.is_root()) std::fprintf(stderr, "ltx-worker serve: %s\n", verdict.message().c_str());
    return 2;
  }
  {
    std::istringstream lines(shared);
    std::string kv, inline_bytes;
    std::getline(lines, model_spec);
    std::getline(lines, kv);
    std::getline(lines, inline_bytes);
    std::getline(lines, cfg.state_dir);
    std::string fault_timeout;
    std::getline(lines, fault_timeout);
    cfg.fault_timeout_s = std::stod(fault_timeout);
    std::string kv_was_auto;
    std::getline(lines, kv_was_auto);
    auto_kv = kv_was_auto == "1";
    std::string rest((std::istreambuf_iterator<char>(lines)), std::istreambuf_iterator<char>());
    cfg.placement = value_or_throw(decode_placement(rest));
    cfg.max_kv_bytes_per_rank = std::stoll(kv);
    cfg.state_inline_bytes = static_cast<size_t>(std::stoull(inline_bytes));
  }
  set_rank_threads(world);
  install_stop_signals(world.is_root());
  LauncherKillWatcher kill_watcher;  // mpirun's SIGTERM: exit 0 before its SIGKILL
  std::atomic<bool>& stop = drain_requested();

  auto comm_or = dist::make_communicator(world, *dist::parse_backend(backend));
  if (!comm_or.ok()) {
    std::fprintf(stderr, "ltx-worker serve [rank %d]: %s\n", world.rank(), comm_or.status().to_string().c_str());
    return 1;
  }
  dist::Communicator& comm = **comm_or;
  auto model_or = pipeline::load_model(model_spec, comm, cfg.placement);
  if (!model_or.ok()) {
    std::fprintf(stderr, "ltx-worker serve [rank %d]: %s\n", world.rank(), model_or.status().to_string().c_str());
    return 1;
  }
  pipeline::Model& m = *model_or;
  {
    // GPU memory bounds the limits sized to the host, now that the weights
    // are in it: the smallest free memory of the group's denoiser devices
    // (KV caches), rank 0's decoder device (a job's decode).
    int64_t free_here = service::device_available_memory(m.placement.denoiser.device);
    int64_t mine = free_here > 0 ? free_here : std::numeric_limits<int64_t>::max(), least = mine;
    LTX_MPI_CHECK(MPI_Allreduce(&mine, &least, 1, MPI_INT64_T, MPI_MIN, world.comm()));
    const int64_t denoiser_free = least == std::numeric_limits<int64_t>::max() ? 0 : least;
    const int64_t decoder_free = world.is_root() ? service::device_available_memory(m.placement.decoder.device) : 0;
    const int64_t kv_before = cfg.max_kv_bytes_per_rank, pixels_before = cfg.max_pixel_frames;
    cfg.size_to_devices(denoiser_free, decoder_free, auto_kv, auto_pixels);
    if (world.is_root() && (cfg.max_kv_bytes_per_rank != kv_before || cfg.max_pixel_frames != pixels_before)) {
      LTX_LOG(kInfo) << "limits sized to GPU memory (" << denoiser_free / (1 << 20) << " MiB free on the smallest denoiser "
                     << "device, " << decoder_free / (1 << 20) << " MiB on rank 0's decoder device): max_pixel_frames "
                     << cfg.max_pixel_frames << ", max_kv_bytes_per_rank " << cfg.max_kv_bytes_per_rank;
    }
  }
  pipeline::PromptEncoder prompts(comm, std::move(m.text));
  dist::ControlChannel channel(world.comm());
  service::GroupEngineOptions engine_options;
  engine_options.max_kv_bytes_per_rank = cfg.max_kv_bytes_per_rank;
  engine_options.state_dir = cfg.state_dir;
  engine_options.state_inline_bytes = cfg.state_inline_bytes;
  if (!cfg.state_dir.empty()) engine_options.sessions_dir = cfg.state_dir + "/sessions";
  engine_options.stop_all = &stop;
  service::ApiService* api_for_engine = nullptr;  // rank 0's, set below
  engine_options.should_yield = [&api_for_engine] { return api_for_engine != nullptr && api_for_engine->should_yield(); };
  service::GroupEngine engine(m, comm, prompts, channel, engine_options);

  channel.set_fault_timeout(std::chrono::milliseconds(static_cast<int64_t>(cfg.fault_timeout_s * 1000)));
  if (!world.is_root()) {
    Status served = engine.serve();
    if (!served.ok()) std::fprintf(stderr, "ltx-worker serve [rank %d]: %s\n", world.rank(), served.to_string().c_str());
    return exit_code_of_rank(served.ok() ? 0 : 1);
  }

  // From here on rank 0 only (other ranks returned from engine.serve()).
  if (const pipeline::BlobStore* store = engine.blob_store()) {
    const size_t left = store->remove_temporaries();
    if (left > 0) {
      LTX_LOG(kInfo) << "blob store " << store->dir() << ": removed " << left << " temporary file(s) left by a crash";
    }
  }
  service::ServiceInfo info;
  info.model = m.name;
  info.family = m.family;
  // Requests may name the model by its family too; a built-in one also
  // without the "builtin:" prefix.
  for (const std::string& alias : {m.family, m.name.rfind(pipeline::kBuiltinPrefix, 0) == 0
                                                 ? m.name.substr(std::string(pipeline::kBuiltinPrefix).size())
                                                 : std::string()}) {
    if (!alias.empty() && alias != m.name &&
        std::find(info.model_aliases.begin(), info.model_aliases.end(), alias) == info.model_aliases.end()) {
      info.model_aliases.push_back(alias);
    }
  }
  info.model_created = model_created_unix(model_spec);
  info.geometry = m.geometry;
  info.placement = m.placement.to_string();
  info.group_size = comm.size();
  info.builtin_model = model_spec.rfind(pipeline::kBuiltinPrefix, 0) == 0;
  info.state_model = engine.state_model();
  info.blob_store = engine.blob_store();
  const pipeline::FlowMatchScheduler* scheduler = m.scheduler.get();  // immutable: safe from HTTP threads
  info.check_steps = [scheduler](int64_t steps, int64_t tokens) { return scheduler->schedule(steps, tokens).status(); };
  service::ApiService api(info, cfg);
  api_for_engine = &api;
  // Should this rank abort the group, its waiting clients hear it first.
  struct AbortHook {
    int id;
    ~AbortHook() { dist::remove_abort_hook(id); }
  } answer_on_abort{dist::add_abort_hook([&api, &stop](const std::string&) {
    if (stop.load()) return;  // a stop signal came first: the clients have had their 503
    api.shutdown();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the I/O threads write the 503s
  })};
  restore_sessions(engine_options.sessions_dir, info, &api);
  service::HttpServerOptions http;
  http.host = cfg.host;
  http.port = static_cast<uint16_t>(cfg.port);
  http.body_limit = cfg.max_body_bytes;
  http.io_threads = cfg.io_threads;
  http.read_timeout_s = cfg.io_timeout_s;
  http.max_connections = cfg.max_connections;
  http.retry_after_s = cfg.retry_after_s;
  service::HttpServer server(http, [&api](const service::HttpRequest& r) { return api.handle(r); });
  Status listening = server.start();
  if (!listening.ok()) {
    std::fprintf(stderr, "ltx-worker serve: %s\n", listening.to_string().c_str());
    (void)engine.shutdown();  // the listen error is what the user needs to see
    return 1;
  }
  std::printf("ltx-worker: listening on http://%s:%u (rank 0 pid %d, %d rank(s), model %s)\n", cfg.host.c_str(),
              static_cast<unsigned>(server.port()), static_cast<int>(::getpid()), comm.size(), m.name.c_str());
  std::fflush(stdout);
  // For a supervisor (scripts/supervise): where to send SIGTERM to drain.
  const char* pid_file = std::getenv("LTX_PID_FILE");
  if (pid_file != nullptr && *pid_file != '\0') std::ofstream(pid_file, std::ios::trunc) << ::getpid() << "\n";

  // A stop signal reaches the API at once, not when the running item ends:
  // its clients get their 503 while the process still can answer (mpirun
  // kills a group within seconds when a rank dies).
  std::atomic<bool> loop_done{false};
  std::thread stop_watcher([&api, &loop_done, &stop] {
    while (!loop_done.load() && !stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (stop.load()) api.shutdown();
  });
  service::run_inference_loop(api, engine, stop);
  loop_done.store(true);
  stop_watcher.join();
  LTX_LOG(kInfo) << "shutting down: no new requests, stopping the group";
  api.shutdown();
  server.stop();
  Status bye = engine.shutdown();
  if (!bye.ok()) std::fprintf(stderr, "ltx-worker serve: %s\n", bye.to_string().c_str());
  return exit_code_of_rank(bye.ok() ? 0 : 1);
}

}  // namespace ltx::launch
