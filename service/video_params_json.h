// The HTTP JSON of a request's parameters (POST /v1/videos, POST
// /v1/streams, and the "request"/"settings" objects of answers), walked from
// the engine's one field list (pipeline/runtime/video_params.h): the JSON
// names are the list's, and a field belongs to jobs, streams or both as the
// list says. Pure functions; any thread.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "pipeline/runtime/video_params.h"
#include "service/api_error.h"

namespace ltx::service {

// Reads the fields `kind` takes from `object` into `params` (absent ones keep
// their defaults); the sound fields only when the model `makes_sound`.
// "prompt" is required; a key the kind (or the model) does not take, or a
// value of the wrong type, is the 422 naming the field.
std::optional<ApiError> read_params(const nlohmann::json& object, pipeline::ParamUse kind, bool makes_sound,
                                    pipeline::VideoParams* params);

// multipart/form-data fields arrive as text: each string value of a field
// `kind` takes that is not a string in the list becomes its JSON type ("30"
// -> 30, "true" -> true); text that is not of the type is the 422 naming the
// field. Other keys are left as they are.
std::optional<ApiError> type_form_fields(nlohmann::json* object, pipeline::ParamUse kind, bool makes_sound);

// Every field `kind` takes, by name.
nlohmann::json params_json(const pipeline::VideoParams& params, pipeline::ParamUse kind, bool makes_sound);

}  // namespace ltx::service
