// ModelFamily: what a model family registers (registry/model_registry.h):
// how to recognise its checkpoints, how to load them into roles under a
// placement, and how to write its built-in random-weight model.
//
// recognizes() and load() read files only; load() runs on every rank (each
// loads its parts: the denoiser everywhere, the text conditioner and the
// decoders on rank 0) and does not agree with the group itself: the registry
// wraps it in one agreement. Implementations hold no state.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/model/model.h"

namespace ltx::pipeline {

// What the registry reads of a path before choosing a family.
struct ModelSource {
  std::string path;
  bool folder = false;
  std::string class_name;                 // folders: model_index.json "_class_name"
  std::string config_metadata;            // single files: the "config" entry of __metadata__ (JSON text)
  std::vector<std::string> tensor_names;  // single files: every tensor name

  // Single files: whether any tensor name contains `part`.
  bool has_tensor_containing(const std::string& part) const {
    for (const auto& n : tensor_names) {
      if (n.find(part) != std::string::npos) return true;
    }
    return false;
  }
};

class ModelFamily {
 public:
  virtual ~ModelFamily() = default;
  virtual std::string name() const = 0;  // "ltx-video"; the built-in model is "builtin:" + name()
  virtual std::string description() const = 0;
  virtual bool recognizes(const ModelSource& source) const = 0;
  // This rank's parts of the model; errors name the file or tensor at fault.
  virtual Result<Model> load(const ModelSource& source, dist::Communicator& comm,
                             const ModelPlacement& placement) const = 0;
  // Writes the built-in model (random weights, public layout) into the empty
  // or new folder `dir`. Deterministic, so every node writes the same model.
  virtual Status write_builtin(const std::string& dir) const = 0;
  // Changes whenever write_builtin() writes something else (cache folder name).
  virtual std::string builtin_version() const = 0;
};

}  // namespace ltx::pipeline
