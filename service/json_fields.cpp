#include "service/json_fields.h"

namespace ltx::service {

std::variant<nlohmann::json, ApiError> parse_json_body(const std::string& body, const std::string& what) {
  // A linear scan of the bytes: depth counts brackets outside strings.
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return bad_json_error(what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_json_error(what + " is not valid JSON");
  return j;
}

bool is_utf8(const std::string& s) {
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 1, cp = c & 0x1fu;
    } else if ((c & 0xf0) == 0xe0) {
      len = 2, cp = c & 0x0fu;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 3, cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + len >= n) return false;
    for (size_t k = 1; k <= len; ++k) {
      const unsigned char d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3fu);
    }
    if (len == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) return false;
    if (len == 3 && (cp < 0x10000 || cp > 0x10ffff)) return false;
    i += len + 1;
  }
  return true;
}

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
