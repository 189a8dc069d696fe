// HttpServer: an HTTP/1.1 server on Boost.Beast and Asio, run by rank 0.
//
// Each connection is a shared_ptr session on its own strand with per-operation
// timeouts, a request body limit (413 beyond it) and keep-alive. Handlers run
// on the I/O threads and must be quick: they parse, enqueue and answer from
// tables; the engine runs elsewhere (the inference thread), so a slow or
// vanished client never stalls the group. stop() stops accepting, closes the
// listener and joins the I/O threads. Exceptions never leave a handler: an
// escaping one becomes a 500.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ltx::service {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;        // 0 picks a free port (see HttpServer::port())
  size_t body_limit = 8 << 20;
  int io_threads = 2;
  int read_timeout_s = 30;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts the I/O threads; UNAVAILABLE names the address
  // when it cannot bind.
  Status start();
  uint16_t port() const { return bound_port_; }
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t bound_port_ = 0;
};

}  // namespace ltx::service
