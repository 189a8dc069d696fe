#include "service/api_error.h"

#include <nlohmann/json.hpp>
#include <cctype>
#include <cstring>

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

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_source_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' || c == '+' || c == '-';
}
// Ends a path token: space, quotes, parentheses, ':' and ','.
bool ends_path(char c) { return is_space(c) || c == '\'' || c == '"' || c == '(' || c == ')' || c == ':' || c == ','; }

// Drops "dir/file.cpp:123: " source locations. One pass, linear.
std::string drop_source_locations(const std::string& m) {
  static const char* kExtensions[] = {".cpp:", ".cc:", ".h:", ".hpp:", ".cu:", ".cuh:"};
  std::string out;
  size_t copied = 0;
  for (size_t i = 0; i < m.size(); ++i) {
    if (m[i] != '.') continue;
    for (const char* ext : kExtensions) {
      const size_t n = std::strlen(ext);
      if (m.compare(i, n, ext) != 0) continue;
      size_t digits = i + n, end = digits;
      while (end < m.size() && std::isdigit(static_cast<unsigned char>(m[end]))) ++end;
      if (end == digits || m.compare(end, 2, ": ") != 0) continue;
      size_t start = i;
      while (start > copied && is_source_char(m[start - 1])) --start;
      if (start == i) continue;  // no file name before the extension
      out.append(m, copied, start - copied);
      copied = end + 2;
      i = copied - 1;
      break;
    }
  }
  return out + m.substr(copied);
}

// An absolute path (after a start, a space, a quote, '(' or '=') becomes its
// last component; API paths (/v1/...) stay. One pass, linear.
std::string shorten_paths(const std::string& m) {
  std::string out;
  size_t i = 0;
  while (i < m.size()) {
    const bool starts = m[i] == '/' && (i == 0 || is_space(m[i - 1]) || m[i - 1] == '\'' || m[i - 1] == '"' ||
                                         m[i - 1] == '(' || m[i - 1] == '=');
    if (!starts) {
      out += m[i++];
      continue;
    }
    size_t end = i;
    while (end < m.size() && !ends_path(m[end])) ++end;
    const std::string run = m.substr(i, end - i);
    // The last '/' with a name after it: everything up to it goes.
    size_t cut = std::string::npos;
    for (size_t k = run.size(); k-- > 0;) {
      if (run[k] == '/' && k + 1 < run.size() && run[k + 1] != '/') {
        cut = k;
        break;
      }
    }
    if (run.compare(0, 4, "/v1/") == 0 || cut == std::string::npos) {
      out += run;
    } else {
      out += run.substr(cut + 1);
    }
    i = end;
  }
  return out;
}

}  // namespace

std::string client_message(const std::string& message) {
  // Linear scans (a regex on a client's 16 KiB path took seconds): source
  // locations go, absolute paths keep their last component.
  return shorten_paths(drop_source_locations(message));
}

ApiError api_error_from_status(const Status& status, const std::string& field) {
  ApiError e;
  e.message = client_message(status.message());
  // Messages may quote what a client sent: a bounded echo.
  if (e.message.size() > 2000) e.message = e.message.substr(0, 2000) + "...";
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
