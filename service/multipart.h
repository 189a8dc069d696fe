// multipart/form-data request bodies (RFC 7578), as the OpenAI SDKs send
// POST /v1/videos: the parts' names, file names, types and bytes. Pure; any
// thread. A malformed body is a 400 naming what is wrong.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "service/api_error.h"

namespace ltx::service {

struct FormPart {
  std::string name;
  std::string filename;      // set for a file part
  bool is_file = false;      // the part had a filename parameter
  std::string content_type;  // the part's own Content-Type ("" when absent)
  std::string data;
};

// True when the Content-Type header names multipart/form-data.
bool is_multipart_form(const std::string& content_type);

// At most kMaxParts parts, each head at most kMaxPartHead bytes.
constexpr size_t kMaxFormParts = 64;
constexpr size_t kMaxFormPartHead = 4096;
std::variant<std::vector<FormPart>, ApiError> parse_multipart_form(const std::string& body,
                                                                   const std::string& content_type);

}  // namespace ltx::service
