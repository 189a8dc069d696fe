#include "launch/launch_support.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "pipeline/ltx_video/small_model.h"

namespace ltx::launch {

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
