// JsonFields: reading a request's fields from a JSON object at the HTTP edge.
// Each reader leaves its target alone when the field is absent and returns
// the 422 error naming the field when the type is wrong; unknown() refuses
// fields the schema does not know (a typo must not fall back to a default).
// Used by the request schemas only; pure, any thread.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "service/api_error.h"

namespace ltx::service {

// Request bodies nest at most this deep; deeper ones are refused (400)
// before the parser sees them (60,000 levels of '[' would exhaust a stack).
constexpr int kMaxJsonDepth = 64;

// A request body as JSON, or the 400 error: nesting deeper than
// kMaxJsonDepth, or not JSON. `what` names the document in the message.
std::variant<nlohmann::json, ApiError> parse_json_body(const std::string& body,
                                                       const std::string& what = "the request body");

// True when `s` is well-formed UTF-8 (form fields arrive as bytes).
bool is_utf8(const std::string& s);

// 422 invalid_value: "<field> <message>", with the field named.
ApiError field_error(const std::string& field, const std::string& message);

class JsonFields {
 public:
  explicit JsonFields(const nlohmann::json& object) : j_(object) {}

  std::optional<ApiError> unknown(const std::set<std::string>& known) const;
  std::optional<ApiError> required(const char* key) const;
  std::optional<ApiError> string(const char* key, std::string* out) const;
  std::optional<ApiError> integer(const char* key, int64_t* out) const;
  std::optional<ApiError> number(const char* key, double* out) const;
  std::optional<ApiError> non_negative(const char* key, uint64_t* out) const;
  std::optional<ApiError> boolean(const char* key, bool* out) const;

 private:
  const nlohmann::json& j_;
};

}  // namespace ltx::service
