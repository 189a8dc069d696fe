#include "service/access_policy.h"

#include <algorithm>
#include <cctype>

#include <boost/asio/ip/address.hpp>

namespace ltx::service {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_safe_method(const std::string& m) { return m == "GET" || m == "HEAD" || m == "OPTIONS"; }

// Routes a browser may load without the key: the page and the health check.
bool is_open_route(const std::string& method, const std::string& path) {
  return (method == "GET" || method == "HEAD") && (path == "/" || path == "/index.html" || path == "/healthz");
}

ApiError refusal(int status, const std::string& code, const std::string& message) {
  ApiError e;
  e.http_status = status;
  e.code = code;
  e.message = message;
  return e;
}

// Printable ASCII with anything else as \xNN, so a message can quote what a
// client sent (which may be any bytes).
std::string printable(const std::string& s, size_t max = 200) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s.substr(0, max)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return s.size() > max ? out + "..." : out;
}

// The value of cookie `name` in a Cookie header, %XX-decoded; nullopt when
// absent.
std::optional<std::string> cookie_value(const std::string& header, const std::string& name) {
  size_t pos = 0;
  while (pos < header.size()) {
    while (pos < header.size() && (header[pos] == ' ' || header[pos] == ';')) ++pos;
    const size_t end = std::min(header.find(';', pos), header.size());
    const std::string pair = header.substr(pos, end - pos);
    if (pair.rfind(name + "=", 0) == 0) {
      const std::string raw = pair.substr(name.size() + 1);
      std::string out;
      for (size_t i = 0; i < raw.size(); ++i) {
        if (raw[i] == '%' && i + 2 < raw.size() && std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
          out += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          out += raw[i];
        }
      }
      return out;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace

AccessPolicy::AccessPolicy(AccessRules rules) : rules_(std::move(rules)) {
  for (auto& h : rules_.allowed_hosts) h = lower(h);
  for (auto& o : rules_.allowed_origins) o = lower(o);
}

bool AccessPolicy::constant_time_equal(const std::string& a, const std::string& b) {
  // Every byte of the longer one is looked at, whatever matches.
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff = static_cast<unsigned char>(diff | (x ^ y));
  }
  return diff == 0;
}

std::optional<std::string> AccessPolicy::host_of(const std::string& header) {
  if (header.empty() || header.size() > 255) return std::nullopt;
  std::string host, port;
  if (header.front() == '[') {
    const size_t close = header.find(']');
    if (close == std::string::npos) return std::nullopt;
    host = header.substr(1, close - 1);
    const std::string rest = header.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
      if (port.empty()) return std::nullopt;
    }
    boost::system::error_code ec;
    boost::asio::ip::make_address_v6(host, ec);
    if (ec) return std::nullopt;
  } else {
    const size_t colon = header.rfind(':');
    host = header.substr(0, colon);
    if (colon != std::string::npos) {
      port = header.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
    if (host.empty()) return std::nullopt;
    for (char c : host) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_')) return std::nullopt;
    }
  }
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return lower(host);
}

bool AccessPolicy::is_ip_literal(const std::string& host) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(host, ec);
  if (ec) return false;
  // make_address accepts some shorthand ("1" or "0x7f.1" on some systems);
  // only dotted quads and IPv6 are literals here.
  if (host.find(':') != std::string::npos) return true;
  return std::count(host.begin(), host.end(), '.') == 3 &&
         std::all_of(host.begin(), host.end(), [](char c) { return c == '.' || (c >= '0' && c <= '9'); });
}

bool AccessPolicy::configured_origin(const std::string& origin) const {
  return std::find(rules_.allowed_origins.begin(), rules_.allowed_origins.end(), lower(origin)) !=
         rules_.allowed_origins.end();
}

bool AccessPolicy::origin_allowed(const std::string& origin, const HttpRequest& r) const {
  const std::string o = lower(origin);
  const std::string host = lower(r.header("host"));
  // The page's own origin: the address the request was sent to.
  if (!host.empty() && (o == "http://" + host || o == "https://" + host)) return true;
  return configured_origin(o);
}

std::optional<ApiError> AccessPolicy::check(const HttpRequest& r, const std::string& path) const {
  // 1. Host (DNS rebinding).
  if (!r.has_header("host")) return refusal(400, "bad_request", "the request has no Host header");
  const auto host = host_of(r.header("host"));
  if (!host) return refusal(400, "bad_request", "the Host header '" + printable(r.header("host")) + "' is malformed");
  const bool any_host = std::find(rules_.allowed_hosts.begin(), rules_.allowed_hosts.end(), "*") != rules_.allowed_hosts.end();
  if (!any_host && !is_ip_literal(*host) && *host != "localhost" &&
      std::find(rules_.allowed_hosts.begin(), rules_.allowed_hosts.end(), *host) == rules_.allowed_hosts.end()) {
    return refusal(403, "host_not_allowed",
                   "the Host '" + *host + "' is not allowed (IP addresses and localhost are; "
                   "serve --allowed-host " + *host + " admits it)");
  }
  // 2. Cross-site state changes (CSRF).
  if (!is_safe_method(r.method) && r.has_header("origin") && !origin_allowed(r.header("origin"), r)) {
    return refusal(403, "origin_not_allowed",
                   "a " + printable(r.method, 16) + " from origin '" + printable(r.header("origin")) +
                       "' is refused: requests that change state may come only from this server's own page "
                       "or an origin allowed with serve --allowed-origin");
  }
  // 3. The API key.
  if (requires_key() && !is_open_route(r.method, path) &&
      !(r.method == "OPTIONS" && r.has_header("origin") && configured_origin(r.header("origin")))) {
    const std::string auth = r.header("authorization");
    // The web page sends the key as a same-site cookie (EventSource and
    // <video> cannot send headers); the Origin rule above keeps other sites'
    // requests out whatever cookies they carry.
    const auto cookie = cookie_value(r.header("cookie"), "ltx_api_key");
    if (auth.empty() && !cookie) {
      return refusal(401, "missing_api_key", "this server needs an API key: send the header Authorization: Bearer KEY");
    }
    const bool bearer_ok = lower(auth.substr(0, 7)) == "bearer " && constant_time_equal(auth.substr(7), rules_.api_key);
    const bool cookie_ok = auth.empty() && cookie && constant_time_equal(*cookie, rules_.api_key);
    if (!bearer_ok && !cookie_ok) {
      return refusal(401, "invalid_api_key", "the API key in the Authorization header (or the page's cookie) is not valid");
    }
  }
  return std::nullopt;
}

std::optional<HttpResponse> AccessPolicy::preflight(const HttpRequest& r) const {
  if (r.method != "OPTIONS" || !r.has_header("origin") || !configured_origin(r.header("origin"))) return std::nullopt;
  HttpResponse out;
  out.status = 204;
  out.content_type = "text/plain";
  out.headers = cors_headers(r);
  out.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS");
  out.headers.emplace_back("Access-Control-Allow-Headers", "Authorization, Content-Type");
  out.headers.emplace_back("Access-Control-Max-Age", "600");
  return out;
}

std::vector<std::pair<std::string, std::string>> AccessPolicy::cors_headers(const HttpRequest& r) const {
  if (!r.has_header("origin") || !configured_origin(r.header("origin"))) return {};
  return {{"Access-Control-Allow-Origin", r.header("origin")}, {"Vary", "Origin"}};
}

std::string AccessPolicy::client_of(const HttpRequest& r) const {
  return requires_key() ? std::string("key") : (r.remote.empty() ? std::string("unknown") : r.remote);
}

}  // namespace ltx::service
