#include "service/json_fields.h"

namespace ltx::service {

ApiError field_error(const std::string& field, const std::string& message) {
  return api_error_from_status(invalid_argument_error(field + " " + message), field);
}

std::optional<ApiError> JsonFields::unknown(const std::set<std::string>& known) const {
  for (auto it = j_.begin(); it != j_.end(); ++it) {
    if (!known.count(it.key())) return field_error(it.key(), "is not a known field");
  }
  return std::nullopt;
}

std::optional<ApiError> JsonFields::required(const char* k) const {
  if (!j_.contains(k)) return field_error(k, "is required");
  return std::nullopt;
}

std::optional<ApiError> JsonFields::string(const char* k, std::string* out) const {
  if (!j_.contains(k)) return std::nullopt;
  if (!j_[k].is_string()) return field_error(k, "must be a string");
  *out = j_[k].get<std::string>();
  return std::nullopt;
}

std::optional<ApiError> JsonFields::integer(const char* k, int64_t* out) const {
  if (!j_.contains(k)) return std::nullopt;
  if (!j_[k].is_number_integer()) return field_error(k, "must be an integer");
  *out = j_[k].get<int64_t>();
  return std::nullopt;
}

std::optional<ApiError> JsonFields::number(const char* k, double* out) const {
  if (!j_.contains(k)) return std::nullopt;
  if (!j_[k].is_number()) return field_error(k, "must be a number");
  *out = j_[k].get<double>();
  return std::nullopt;
}

std::optional<ApiError> JsonFields::non_negative(const char* k, uint64_t* out) const {
  if (!j_.contains(k)) return std::nullopt;
  if (!j_[k].is_number_unsigned()) return field_error(k, "must be a non-negative integer");
  *out = j_[k].get<uint64_t>();
  return std::nullopt;
}

std::optional<ApiError> JsonFields::boolean(const char* k, bool* out) const {
  if (!j_.contains(k)) return std::nullopt;
  if (!j_[k].is_boolean()) return field_error(k, "must be true or false");
  *out = j_[k].get<bool>();
  return std::nullopt;
}

}  // namespace ltx::service
