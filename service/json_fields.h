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

#include "service/api_error.h"

namespace ltx::service {

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
