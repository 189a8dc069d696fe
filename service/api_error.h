// ApiError: the one mapping from an engine Status to an HTTP status and the
// JSON error body {"error": {"code", "message", "field"}}.
//
// Used by the HTTP layer only (service/). Canonical codes map as users of
// hosted APIs expect: malformed JSON 400, invalid values 422, unknown ids 404,
// out-of-order requests 409, too large 413, full 429 (with Retry-After),
// unavailable 503, unimplemented 501, everything else 500. Pure functions.
#pragma once

#include <string>

#include "common/status.h"

namespace ltx::service {

struct ApiError {
  int http_status = 500;
  std::string code;     // "invalid_value", "not_found", ...
  std::string message;
  std::string field;    // the request field at fault, when there is one
  int retry_after_s = 0;  // for 429 / 503

  // {"error": {"code": ..., "message": ..., "field": ...}}
  std::string body() const;
};

// Maps an engine Status (never OK) to the HTTP error.
// What a client may read of a status's message: no source location
// ("pipeline/x.cpp:12: " prefixes of check failures) and no local file path
// (an absolute path becomes its last component: "/srv/models/m/vae: ..." ->
// "vae: ..."; API paths under /v1/ stay). Every error answer, job error and
// stream event goes through it; the server log keeps the whole message.
std::string client_message(const std::string& message);

ApiError api_error_from_status(const Status& status, const std::string& field = "");
ApiError bad_json_error(const std::string& message);
ApiError too_large_error(size_t limit_bytes);

}  // namespace ltx::service
