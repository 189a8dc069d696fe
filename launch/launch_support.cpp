#include "launch/launch_support.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "pipeline/small_model.h"

namespace ltx::launch {

Status share_root_verdict(dist::World& world, const Status& local, std::string* payload) {
  int32_t code = static_cast<int32_t>(local.code());
  MPI_Bcast(&code, 1, MPI_INT32_T, 0, world.comm());
  std::string text = world.is_root() ? (local.ok() ? *payload : local.message()) : std::string();
  int64_t n = static_cast<int64_t>(text.size());
  MPI_Bcast(&n, 1, MPI_INT64_T, 0, world.comm());
  text.resize(n);
  MPI_Bcast(text.data(), static_cast<int>(n), MPI_CHAR, 0, world.comm());
  if (code != 0) return Status(is_known_status_code(code) ? static_cast<StatusCode>(code) : StatusCode::kInternal, text);
  *payload = text;
  return Status();
}

Result<std::string> resolve_model_dir(const std::string& model) {
  if (model.empty()) return pipeline::ensure_builtin_model();
  if (!std::filesystem::is_regular_file(std::filesystem::path(model) / "model_index.json")) {
    return not_found_error("--model " + model + ": not a model folder (no readable model_index.json)");
  }
  return model;
}

void set_rank_threads(const dist::World& world) {
  if (std::getenv("OMP_NUM_THREADS") != nullptr || world.info().local_size <= 1) return;
  at::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / world.info().local_size));
}

}  // namespace ltx::launch
