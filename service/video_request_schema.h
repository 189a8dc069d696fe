// POST /v1/videos, turned into a plain GenerationRequest at the HTTP edge
// (JSON never crosses into the engine). The body is JSON, or
// multipart/form-data as the OpenAI SDKs send it; the OpenAI Videos fields
// (model, prompt, seconds, size, input_reference) sit beside the project's
// own (num_frames, width, height, ...), and where both say the same thing they
// must agree. Unknown fields are refused (a typo must not silently fall back
// to a default); every error names the field. Pure functions; any thread.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "pipeline/runtime/video_pipeline.h"
#include "service/api_error.h"

namespace ltx::service {

// The model a group serves, as requests may name it.
struct ServedModel {
  std::string name;                  // what /v1/models lists
  std::vector<std::string> aliases;  // other names requests may use (e.g. the family)
  bool answers_to(const std::string& model) const;
};

struct VideoCreateRequest {
  pipeline::GenerationRequest request;
  std::string seconds;  // `seconds` as the client gave it ("" when absent)
};

// `content_type` picks the encoding (multipart/form-data, else JSON). Sizes
// are checked against the model's compression factors; `seconds` becomes a
// frame count by the request's fps and the model's frame-count rule (the
// nearest k * temporal_compression + 1).
std::variant<VideoCreateRequest, ApiError> parse_video_create(const std::string& body, const std::string& content_type,
                                                              const pipeline::ModelGeometry& geometry,
                                                              const ServedModel& served);

// A JSON body with the project's fields only (no model check).
std::variant<pipeline::GenerationRequest, ApiError> parse_video_request(const std::string& body,
                                                                         const pipeline::ModelGeometry& geometry);

// The frame count `seconds` of video at `fps` comes to under the model's
// rule (at least 1 frame).
int64_t frames_for_seconds(double seconds, double fps, int64_t temporal_compression);

}  // namespace ltx::service
