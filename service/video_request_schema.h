// The JSON of POST /v1/videos, turned into a plain GenerationRequest at the
// HTTP edge (JSON never crosses into the engine). Unknown fields are refused
// (a typo must not silently fall back to a default); every error names the
// field. Pure function; any thread.
#pragma once

#include <string>
#include <variant>

#include "pipeline/runtime/video_pipeline.h"
#include "service/api_error.h"

namespace ltx::service {

// Either the request or the HTTP error to answer with.
// Sizes are checked against the model's compression factors.
std::variant<pipeline::GenerationRequest, ApiError> parse_video_request(const std::string& body,
                                                                         const pipeline::ModelGeometry& geometry);

}  // namespace ltx::service
