// The JSON of the streaming-session endpoints, turned into plain structs at
// the HTTP edge: POST /v1/streams (new settings, or a continuation state to
// resume) and POST /v1/streams/{id}/chunks. Unknown fields are refused; every
// error names the field. Pure functions; any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "pipeline/runtime/continuation_state.h"
#include "pipeline/runtime/stream_session.h"
#include "service/api_error.h"

namespace ltx::service {

struct StreamCreateRequest {
  pipeline::StreamSettings settings;                          // new stream, or the resumed state's settings
  std::shared_ptr<const pipeline::ContinuationState> state;   // set when resuming
};

// `body` is either the settings object, or {"state": <continuation state>}
// (a bare continuation-state document is accepted too).
std::variant<StreamCreateRequest, ApiError> parse_stream_request(const std::string& body,
                                                                 const pipeline::StateModelInfo& model,
                                                                 const pipeline::BlobStore* store);

// {"index": N}; an empty body or no index means "the next chunk" (nullopt).
std::variant<std::optional<int64_t>, ApiError> parse_chunk_request(const std::string& body);

}  // namespace ltx::service
