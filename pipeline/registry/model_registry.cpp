#include "pipeline/registry/model_registry.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/logging.h"
#include "parallel/ulysses_attention.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/ltx2/ltx2_family.h"
#include "pipeline/ltx2/ltx2_pipeline.h"
#include "pipeline/ltx2/ltx2_state.h"
#include "pipeline/ltx2/ltx2_stream.h"
#include "pipeline/ltx_video/ltx_video_family.h"
#include "pipeline/runtime/text_to_video.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

const std::vector<const ModelFamily*>& model_families() {
  // One entry per family; the first that recognises a model loads it.
  static const std::vector<const ModelFamily*> families = {&ltx_video_family(), &ltx2_family()};
  return families;
}

namespace {

bool is_builtin(const std::string& spec) { return spec.rfind(kBuiltinPrefix, 0) == 0; }

std::string known_families() {
  std::string out;
  for (const ModelFamily* f : model_families()) out += (out.empty() ? "" : ", ") + f->name();
  return out;
}

Result<const ModelFamily*> family_named(const std::string& name) {
  for (const ModelFamily* f : model_families()) {
    if (f->name() == name) return f;
  }
  return not_found_error("no built-in model '" + std::string(kBuiltinPrefix) + name + "' (families: " +
                         known_families() + ")");
}

std::string cache_base() {
  if (const char* env = std::getenv("LTX_CACHE_DIR")) return env;
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.cache/ltx-worker";
  return "/tmp/ltx-worker-cache";
}

// The family's built-in model in this node's cache, written on first use: to
// a temporary sibling, then renamed, so ranks racing on one node (or nodes
// sharing a file system) never see half a model.
Result<std::string> ensure_builtin(const ModelFamily& family) {
  const fs::path base(cache_base());
  const fs::path dir = base / ("builtin-" + family.name() + "-" + family.builtin_version());
  std::error_code ec;
  if (fs::exists(dir / "model_index.json", ec)) return dir.string();
  fs::create_directories(base, ec);
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  const fs::path tmp = base / ("." + dir.filename().string() + ".tmp." + host + "." + std::to_string(::getpid()));
  LTX_LOG(kInfo) << "writing the built-in " << family.name() << " model to " << dir.string();
  fs::remove_all(tmp, ec);
  LTX_RETURN_IF_ERROR(family.write_builtin(tmp.string()));
  fs::rename(tmp, dir, ec);
  if (ec && !fs::exists(dir / "model_index.json")) {
    fs::remove_all(tmp, ec);
    return unavailable_error("the built-in model cannot be put in place in " + base.string());
  }
  fs::remove_all(tmp, ec);  // another process won the race
  return dir.string();
}

}  // namespace

Result<ModelSource> read_model_source(const std::string& path) {
  ModelSource s;
  s.path = path;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    s.folder = true;
    const fs::path index = fs::path(path) / "model_index.json";
    if (!fs::is_regular_file(index, ec)) {
      return not_found_error(path + ": not a model folder (no readable model_index.json)");
    }
    LTX_ASSIGN_OR_RETURN(std::string text, read_text_file(index.string()));
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (!j.is_object()) return invalid_argument_error(index.string() + ": not a JSON object");
    s.class_name = j.value("_class_name", "");
    return s;
  }
  if (!fs::is_regular_file(path, ec)) return not_found_error(path + ": no such model folder or checkpoint file");
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
  auto meta = ckpt.metadata().find("config");
  if (meta != ckpt.metadata().end()) s.config_metadata = meta->second;
  s.tensor_names = ckpt.names();
  return s;
}

Result<const ModelFamily*> family_for(const ModelSource& source) {
  for (const ModelFamily* f : model_families()) {
    if (f->recognizes(source)) return f;
  }
  if (source.folder) {
    return invalid_argument_error(source.path + ": model_index.json names '" + source.class_name +
                                  "', which no model family of this build loads (families: " + known_families() + ")");
  }
  return invalid_argument_error(source.path + ": a checkpoint of no model family this build knows (families: " +
                                known_families() + ")");
}

Result<std::string> resolve_model_path(const std::string& spec) {
  if (is_builtin(spec)) {
    LTX_ASSIGN_OR_RETURN(const ModelFamily* family, family_named(spec.substr(std::string(kBuiltinPrefix).size())));
    return ensure_builtin(*family);
  }
  if (spec.empty()) return invalid_argument_error("--model must name a model folder, a checkpoint or builtin:NAME");
  std::error_code ec;
  if (fs::is_directory(spec, ec)) {
    if (!fs::is_regular_file(fs::path(spec) / "model_index.json", ec)) {
      return not_found_error("--model " + spec + ": not a model folder (no readable model_index.json)");
    }
    return spec;
  }
  if (fs::is_regular_file(spec, ec)) return spec;
  return not_found_error("--model " + spec + ": no such model folder or checkpoint file (or builtin:NAME; families: " +
                         known_families() + ")");
}

std::string model_display_name(const std::string& spec) {
  if (is_builtin(spec)) return spec;
  fs::path p(spec);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing slashes
  return p.filename().string();
}

Result<Model> load_model(const std::string& spec, dist::Communicator& comm, const PlacementChoice& choice) {
  Model model;
  Status local = catch_to_status([&]() -> Status {
    LTX_ASSIGN_OR_RETURN(std::string path, resolve_model_path(spec));
    LTX_ASSIGN_OR_RETURN(ModelSource source, read_model_source(path));
    LTX_ASSIGN_OR_RETURN(const ModelFamily* family, family_for(source));
    LTX_ASSIGN_OR_RETURN(ModelPlacement placement, ModelPlacement::resolve(choice, comm.device()));
    if (placement.uses_cuda()) allow_tf32_on_cuda();
    LTX_ASSIGN_OR_RETURN(model, family->load(source, comm, placement));
    // Ulysses splits the heads over the group, or over each sub-group of a ring.
    const int ring = std::max(1, model.placement.planning.ring_size);
    LTX_RETURN_IF_ERROR(parallel::validate_head_split(model.geometry.attention_heads, comm.size() / ring));
    model.name = model_display_name(spec);
    return Status();
  });
  LTX_RETURN_IF_ERROR(comm.all_ok(local).with_context("loading model " + model_display_name(spec)));
  return model;
}

std::unique_ptr<VideoPipeline> make_video_pipeline(Model& model, dist::Communicator& comm, PromptEncoder& prompts) {
  if (dynamic_cast<const Ltx2Parts*>(model.parts.get()) != nullptr) {
    return std::make_unique<Ltx2TextToVideo>(model, comm, prompts);
  }
  return std::make_unique<TextToVideo>(model, comm, prompts);
}

Result<std::unique_ptr<Stream>> open_stream(const std::string& id, const StreamSettings& settings, Model& model,
                                            dist::Communicator& comm, PromptEncoder& prompts, KvBudget* budget) {
  if (model.placement.planning.ring_size > 1) {
    return failed_precondition_error(
        "streams need the Ulysses plan (their KV cache is per head); this group runs Ulysses x a ring of " +
        std::to_string(model.placement.planning.ring_size) + " (--ring-size): serve streams with --ring-size 1");
  }
  if (dynamic_cast<const Ltx2Parts*>(model.parts.get()) != nullptr) {
    LTX_ASSIGN_OR_RETURN(auto s, Ltx2StreamSession::create(id, settings, model, comm, prompts, budget));
    return std::unique_ptr<Stream>(std::move(s));
  }
  LTX_ASSIGN_OR_RETURN(auto s, StreamSession::create(id, settings, model, comm, prompts, budget));
  return std::unique_ptr<Stream>(std::move(s));
}

Result<ContinuationState> parse_stream_state(const std::string& document, const StateModelInfo& model,
                                             const BlobStore* store) {
  if (model.geometry.makes_sound()) return ltx2_state_from_json(document, model, store);
  return from_json(document, model, store);
}

Result<std::unique_ptr<Stream>> import_stream(const std::string& id, const ContinuationState* state, Model& model,
                                              dist::Communicator& comm, KvBudget* budget) {
  if (dynamic_cast<const Ltx2Parts*>(model.parts.get()) != nullptr) {
    LTX_ASSIGN_OR_RETURN(auto s, Ltx2StreamSession::import_state(id, state, model, comm, budget));
    return std::unique_ptr<Stream>(std::move(s));
  }
  LTX_ASSIGN_OR_RETURN(auto s, StreamSession::import_state(id, state, model, comm, budget));
  return std::unique_ptr<Stream>(std::move(s));
}

}  // namespace ltx::pipeline
