// AccessPolicy: who may call the API, checked on rank 0 before any route runs.
//
// * API key (optional): every route but GET /, /index.html and /healthz needs
//   `Authorization: Bearer KEY` (compared in constant time; the web page
//   sends it as the same-site cookie ltx_api_key instead); 401 otherwise.
// * Host allow-list, against DNS rebinding: a request's Host must be an IP
//   literal (a rebinding attack needs a name it controls), localhost, or a
//   configured name; 403 otherwise, 400 without a Host.
// * No CSRF: a state-changing request (anything but GET, HEAD, OPTIONS) that
//   carries an Origin must come from the page's own origin (the Host it was
//   sent to) or a configured origin; browsers always send Origin on such
//   requests, curl and SDKs send none, so `curl -d` keeps working.
// * CORS only for configured origins: their preflight (OPTIONS) is answered
//   and their responses carry Access-Control-Allow-Origin.
// The client key of a request (its API key when one is configured, else its
// address) is what per-client limits count. Immutable; any thread.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "service/api_error.h"
#include "service/http_server.h"

namespace ltx::service {

struct AccessRules {
  std::string api_key;
  std::vector<std::string> allowed_hosts;    // names besides IP literals and localhost; "*" = any
  std::vector<std::string> allowed_origins;  // "scheme://host[:port]"
};

class AccessPolicy {
 public:
  explicit AccessPolicy(AccessRules rules);

  bool requires_key() const { return !rules_.api_key.empty(); }
  // The refusal of `r` for `path` (its target without the query), or nullopt.
  std::optional<ApiError> check(const HttpRequest& r, const std::string& path) const;
  // OPTIONS from an allowed cross-site origin: the preflight answer (204);
  // nullopt when `r` is not one (the route table answers it then).
  std::optional<HttpResponse> preflight(const HttpRequest& r) const;
  // Access-Control-Allow-Origin and Vary for a response to an allowed
  // cross-site origin; nothing otherwise.
  std::vector<std::pair<std::string, std::string>> cors_headers(const HttpRequest& r) const;
  // Per-client limits count by this: "key" when an API key is configured
  // (every caller holds the same one), else the client's address.
  std::string client_of(const HttpRequest& r) const;

  // Helpers, public for tests.
  // The host part of a Host header ("[::1]:8080" -> "::1", "A.b:80" -> "a.b");
  // nullopt when it is not a well-formed host[:port].
  static std::optional<std::string> host_of(const std::string& host_header);
  static bool is_ip_literal(const std::string& host);
  static bool constant_time_equal(const std::string& a, const std::string& b);

 private:
  bool origin_allowed(const std::string& origin, const HttpRequest& r) const;
  bool configured_origin(const std::string& origin) const;

  AccessRules rules_;
};

}  // namespace ltx::service
