// FieldReader: typed, checked reads of one JSON object's fields, shared by
// every config parser (model_config.cpp, the LTX-2 configs). Absent or null
// fields keep the caller's default; the first problem becomes the Status,
// naming the source and the field. Header-only; no state beyond the reader.
#pragma once

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace ltx::pipeline {

class FieldReader {
 public:
  using json = nlohmann::json;
  FieldReader(const json& obj, std::string source) : obj_(obj), source_(std::move(source)) {}

  const Status& status() const { return status_; }
  bool has(const char* key) const { return obj_.contains(key) && !obj_.at(key).is_null(); }

  void integer(const char* key, int64_t* out, int64_t min_value = INT64_MIN) {
    const json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_number_integer()) return fail(key, "must be an integer");
    int64_t x = v->get<int64_t>();
    if (x < min_value) return fail(key, "must be at least " + std::to_string(min_value));
    *out = x;
  }
  void number(const char* key, double* out, std::optional<double> exclusive_min = std::nullopt) {
    const json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_number()) return fail(key, "must be a number");
    double x = v->get<double>();
    if (exclusive_min && !(x > *exclusive_min)) {
      return fail(key, "must be greater than " + std::to_string(*exclusive_min));
    }
    *out = x;
  }
  void optional_number(const char* key, std::optional<double>* out) {
    if (!obj_.contains(key)) return;
    const json& v = obj_.at(key);
    if (v.is_null()) {
      *out = std::nullopt;
    } else if (!v.is_number()) {
      fail(key, "must be a number or null");
    } else {
      *out = v.get<double>();
    }
  }
  void boolean(const char* key, bool* out) {
    const json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_boolean()) return fail(key, "must be true or false");
    *out = v->get<bool>();
  }
  void string(const char* key, std::string* out, const std::vector<std::string>& allowed = {}) {
    const json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_string()) return fail(key, "must be a string");
    std::string s = v->get<std::string>();
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), s) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + ("\"" + a + "\"");
      return fail(key, "value \"" + s + "\" is not supported (supported: " + list + ")");
    }
    *out = s;
  }
  void int_list(const char* key, std::vector<int64_t>* out, int64_t min_value = INT64_MIN) {
    const json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(key, "must be a list of integers");
    std::vector<int64_t> r;
    for (const json& e : *v) {
      if (!e.is_number_integer()) return fail(key, "must be a list of integers");
      if (e.get<int64_t>() < min_value) {
        return fail(key, "entries must be at least " + std::to_string(min_value));
      }
      r.push_back(e.get<int64_t>());
    }
    *out = std::move(r);
  }
  void bool_list(const char* key, std::vector<bool>* out) {
    const json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(key, "must be a list of booleans");
    std::vector<bool> r;
    for (const json& e : *v) {
      if (!e.is_boolean()) return fail(key, "must be a list of booleans");
      r.push_back(e.get<bool>());
    }
    *out = std::move(r);
  }
  void string_list(const char* key, std::vector<std::string>* out) {
    const json* v = find(key);
    if (v == nullptr) return;
    if (!v->is_array()) return fail(key, "must be a list of strings");
    std::vector<std::string> r;
    for (const json& e : *v) {
      if (!e.is_string()) return fail(key, "must be a list of strings");
      r.push_back(e.get<std::string>());
    }
    *out = std::move(r);
  }
  // A cross-field rule: `ok` false records `message` against `key`.
  void require(bool ok, const char* key, const std::string& message) {
    if (!ok) fail(key, message);
  }
  void fail(const std::string& key, const std::string& message) {
    if (status_.ok()) status_ = invalid_argument_error(source_ + ": field '" + key + "' " + message);
  }

 private:
  const json* find(const char* key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;  // absent or null: keep the default
    return &*it;
  }

  const json& obj_;
  std::string source_;
  Status status_;
};

inline Result<nlohmann::json> parse_json_object(const std::string& text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid_argument_error(source + ": not well-formed JSON");
  if (!j.is_object()) return invalid_argument_error(source + ": not a JSON object");
  return j;
}

}  // namespace ltx::pipeline
