// The model registry: the families this build knows, picking one for a
// model folder or checkpoint, the built-in models, and loading a model on
// the group.
//
// A model is named like a folder: a path (a diffusers folder with
// model_index.json, or a single .safetensors checkpoint), or
// "builtin:<family>" for that family's built-in random-weight model, which
// each node writes into its own cache on first use ($LTX_CACHE_DIR, else
// ~/.cache/ltx-worker). Adding a family is one entry in model_families()
// (model_registry.cpp). Thread-safe; holds no mutable state.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"
#include "pipeline/model/model.h"
#include "pipeline/model/model_family.h"
#include "pipeline/model/placement.h"
#include "pipeline/runtime/continuation_state.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "pipeline/runtime/stream_session.h"
#include "pipeline/runtime/video_pipeline.h"

namespace ltx::pipeline {

constexpr const char* kBuiltinPrefix = "builtin:";
constexpr const char* kDefaultModel = "builtin:ltx-video";

const std::vector<const ModelFamily*>& model_families();

// Reads what choosing a family needs (model_index.json of a folder; the
// header of a single file). NOT_FOUND names the path.
Result<ModelSource> read_model_source(const std::string& path);
// The family that recognises `source`; INVALID_ARGUMENT lists the known ones.
Result<const ModelFamily*> family_for(const ModelSource& source);

// "builtin:NAME" -> the built-in model's folder on this node (written on
// first use, atomically); a path -> itself when it is a model folder or a
// .safetensors file. Errors name the spec.
Result<std::string> resolve_model_path(const std::string& spec);
// What clients see as the model's id: the spec for built-ins, else the
// folder's or file's name (never a local path).
std::string model_display_name(const std::string& spec);

// Collective: every rank resolves `spec` for itself, resolves `choice`
// against its communicator's device and loads its parts; the group agrees
// (the lowest failing rank's error on every rank). Also refuses a group size
// that does not divide the denoiser's attention heads.
Result<Model> load_model(const std::string& spec, dist::Communicator& comm, const PlacementChoice& choice);

// The pipeline that generates with `model` on the group: the family's own
// when its parts need one (LTX-2's two streams), else TextToVideo over the
// shared roles. Holds references to all three.
std::unique_ptr<VideoPipeline> make_video_pipeline(Model& model, dist::Communicator& comm, PromptEncoder& prompts);

// Collective: opens a stream session `id` of the model's family on this
// rank (StreamSession, or Ltx2StreamSession for LTX-2). `settings` must be
// validated (validate_stream_settings).
Result<std::unique_ptr<Stream>> open_stream(const std::string& id, const StreamSettings& settings, Model& model,
                                            dist::Communicator& comm, PromptEncoder& prompts, KvBudget* budget);

// Rank 0 (any thread): parses and validates a continuation state document in
// the format of the model's family (LTX-Video: the project's stream-state
// document; LTX-2: ltx2.v1). Errors name the field at fault.
Result<ContinuationState> parse_stream_state(const std::string& document, const StateModelInfo& model,
                                             const BlobStore* store);
// Collective: resumes a stream from a parsed state (rank 0 passes it, the
// others nullptr) on a group of any size.
Result<std::unique_ptr<Stream>> import_stream(const std::string& id, const ContinuationState* state, Model& model,
                                              dist::Communicator& comm, KvBudget* budget);

}  // namespace ltx::pipeline
