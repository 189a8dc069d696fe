#include "service/api_error.h"

#include <nlohmann/json.hpp>
#include <regex>

namespace ltx::service {

std::string ApiError::body() const {
  nlohmann::json e = {{"code", code}, {"message", message}};
  e["field"] = field.empty() ? nlohmann::json(nullptr) : nlohmann::json(field);
  // The OpenAI error shape's names too, so its SDKs read the error.
  e["param"] = e["field"];
  e["type"] = http_status == 401 ? "authentication_error"
              : http_status == 429 ? "rate_limit_error"
              : http_status >= 500 ? "server_error"
                                   : "invalid_request_error";
  // A message may quote what a client sent, which need not be UTF-8.
  return nlohmann::json{{"error", e}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string client_message(const std::string& message) {
  static const std::regex source_location(R"(([A-Za-z0-9_./+-]+\.(cpp|cc|h|hpp|cu|cuh):[0-9]+: ))");
  static const std::regex local_path(R"((^|[\s'"(=])(/(?!v1/)[^\s'"():,]*/)([^\s'"():,/]+))");
  std::string out = std::regex_replace(message, source_location, "");
  return std::regex_replace(out, local_path, "$1$3");
}

ApiError api_error_from_status(const Status& status, const std::string& field) {
  ApiError e;
  e.message = client_message(status.message());
  e.field = field;
  switch (status.code()) {
    case StatusCode::kInvalidArgument: e.http_status = 422; e.code = "invalid_value"; break;
    case StatusCode::kNotFound: e.http_status = 404; e.code = "not_found"; break;
    case StatusCode::kFailedPrecondition: e.http_status = 409; e.code = "conflict"; break;
    case StatusCode::kCancelled: e.http_status = 409; e.code = "cancelled"; break;
    case StatusCode::kResourceExhausted: e.http_status = 429; e.code = "capacity"; e.retry_after_s = 5; break;
    case StatusCode::kUnavailable: e.http_status = 503; e.code = "unavailable"; e.retry_after_s = 5; break;
    case StatusCode::kDeadlineExceeded: e.http_status = 504; e.code = "timeout"; break;
    case StatusCode::kUnimplemented: e.http_status = 501; e.code = "not_implemented"; break;
    case StatusCode::kOk:
    case StatusCode::kInternal:
    default: e.http_status = 500; e.code = "internal"; break;
  }
  return e;
}

ApiError bad_json_error(const std::string& message) {
  ApiError e;
  e.http_status = 400;
  e.code = "bad_json";
  e.message = message;
  return e;
}

ApiError too_large_error(size_t limit_bytes) {
  ApiError e;
  e.http_status = 413;
  e.code = "too_large";
  e.message = "the request body exceeds " + std::to_string(limit_bytes) + " bytes";
  return e;
}

}  // namespace ltx::service
