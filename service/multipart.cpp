#include "service/multipart.h"

#include <cctype>

namespace ltx::service {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

// The parameter `key` of a header value such as `form-data; name="x"`
// (quoted or token); `found` says whether it was there.
std::string parameter(const std::string& value, const std::string& key, bool* found) {
  *found = false;
  size_t pos = value.find(';');
  while (pos != std::string::npos && pos < value.size()) {
    size_t start = pos + 1;
    while (start < value.size() && (value[start] == ' ' || value[start] == '\t')) ++start;
    const size_t eq = value.find('=', start);
    if (eq == std::string::npos) return "";
    const std::string k = lower(trim(value.substr(start, eq - start)));
    std::string v;
    size_t next;
    if (eq + 1 < value.size() && value[eq + 1] == '"') {
      size_t i = eq + 2;
      for (; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        v += value[i];
      }
      next = value.find(';', i);
    } else {
      next = value.find(';', eq + 1);
      v = trim(value.substr(eq + 1, next == std::string::npos ? std::string::npos : next - eq - 1));
    }
    if (k == key) {
      *found = true;
      return v;
    }
    pos = next;
  }
  return "";
}

ApiError malformed(const std::string& what) { return bad_json_error("the multipart/form-data body is malformed: " + what); }

}  // namespace

bool is_multipart_form(const std::string& content_type) {
  return lower(trim(content_type.substr(0, content_type.find(';')))) == "multipart/form-data";
}

std::variant<std::vector<FormPart>, ApiError> parse_multipart_form(const std::string& body,
                                                                   const std::string& content_type) {
  bool has = false;
  const std::string boundary = parameter(content_type, "boundary", &has);
  if (!has || boundary.empty() || boundary.size() > 200) {
    return malformed("the Content-Type has no boundary parameter (1 to 200 characters)");
  }
  const std::string delimiter = "--" + boundary;
  // The first delimiter opens the body (a preamble before it is ignored).
  size_t pos = body.rfind(delimiter, 0) == 0 ? 0 : body.find("\r\n" + delimiter);
  if (pos == std::string::npos) return malformed("no part starts with the boundary");
  pos = body.find(delimiter, pos) + delimiter.size();
  std::vector<FormPart> parts;
  const std::string next_delimiter = "\r\n" + delimiter;
  while (true) {
    if (body.compare(pos, 2, "--") == 0) break;  // the closing delimiter
    if (body.compare(pos, 2, "\r\n") != 0) return malformed("a boundary line does not end with CRLF");
    pos += 2;
    if (parts.size() == kMaxFormParts) return malformed("more than " + std::to_string(kMaxFormParts) + " parts");
    const size_t head_end = body.find("\r\n\r\n", pos);
    if (head_end == std::string::npos || head_end - pos > kMaxFormPartHead) {
      return malformed("part " + std::to_string(parts.size() + 1) + " has no complete header block");
    }
    FormPart part;
    bool named = false;
    size_t line = pos;
    while (line < head_end) {
      size_t eol = body.find("\r\n", line);
      if (eol == std::string::npos || eol > head_end) eol = head_end;
      const std::string header = body.substr(line, eol - line);
      const size_t colon = header.find(':');
      if (colon == std::string::npos) return malformed("a part header has no colon");
      const std::string name = lower(trim(header.substr(0, colon)));
      const std::string value = trim(header.substr(colon + 1));
      if (name == "content-disposition") {
        if (lower(trim(value.substr(0, value.find(';')))) != "form-data") {
          return malformed("a part's Content-Disposition is not form-data");
        }
        part.name = parameter(value, "name", &named);
        part.filename = parameter(value, "filename", &part.is_file);
      } else if (name == "content-type") {
        part.content_type = value;
      }
      line = eol + 2;
    }
    if (!named || part.name.empty()) return malformed("part " + std::to_string(parts.size() + 1) + " has no name");
    const size_t data_start = head_end + 4;
    const size_t end = body.find(next_delimiter, data_start);
    if (end == std::string::npos) return malformed("part '" + part.name + "' is not closed by the boundary");
    part.data = body.substr(data_start, end - data_start);
    parts.push_back(std::move(part));
    pos = end + next_delimiter.size();
  }
  return parts;
}

}  // namespace ltx::service
