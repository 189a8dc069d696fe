// HttpServer: an HTTP/1.1 server on Boost.Beast and Asio, run by rank 0.
//
// Each connection is a shared_ptr session on its own strand with per-operation
// timeouts, a request body limit (413 beyond it), a header limit (431),
// malformed requests answered 400, and keep-alive. Connections past a cap are
// answered 503 and closed; accept errors (out of descriptors) back off and are
// logged at most once a second. Handlers run
// on the I/O threads and must be quick: they parse, enqueue and answer from
// tables; the engine runs elsewhere (the inference thread), so a slow or
// vanished client never stalls the group. A handler that cannot answer at
// once returns a ResponseChannel that another thread fills later: one whole
// response (a finished chunk) or a server-sent event stream. stop() stops
// accepting, closes the listener and joins the I/O threads. Exceptions never
// leave a handler: an escaping one becomes a 500.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"

namespace ltx::service {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, as bytes (not necessarily UTF-8)
  std::string body;
  // The request's headers as received, names lower-cased.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string remote;  // the client's address ("" when unknown)

  // The first header named `name` (lower-case), or "" when absent.
  std::string header(const std::string& name) const;
  bool has_header(const std::string& name) const;
};

class ResponseChannel;

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // When set, the connection waits for this channel instead of writing the
  // fields above.
  std::shared_ptr<ResponseChannel> later;
};

// A response produced after the handler returned, from any thread. Either
// finish() once (a whole response; the connection then stays keep-alive), or
// open_events() and then send_event()... and end() (text/event-stream; the
// connection closes after it). Thread-safe. A channel whose client went away,
// or fell more than kMaxQueuedEvents behind, reports closed() and drops what
// it is given, so a producer never blocks on a client. A waiting client that
// closes its connection is noticed at once (the connection keeps a read open
// while it waits), and the producer can be told (on_client_gone).
class ResponseChannel {
 public:
  static constexpr size_t kMaxQueuedEvents = 4096;

  void finish(HttpResponse response);
  void open_events();
  void send_event(std::string frame);  // one SSE frame, "event: ...\ndata: ...\n\n"
  void end();
  bool closed() const;
  // `callback` runs once, on an I/O thread and without this channel's lock,
  // if the client goes away before a whole response was given to finish().
  void on_client_gone(std::function<void()> callback);

  // For the connection (server side only).
  struct Pending {
    std::optional<HttpResponse> whole;
    bool send_head = false;
    std::deque<std::string> frames;
    bool end = false;
  };
  // `wake` is called (from the producer's thread) whenever there is news.
  void attach(std::function<void()> wake);
  Pending take();
  void mark_closed();  // the connection is done with the channel
  void client_gone();  // the client closed the connection while it waited

 private:
  void notify(std::unique_lock<std::mutex>& lock);
  mutable std::mutex mu_;
  std::function<void()> wake_;
  std::function<void()> gone_callback_;
  Pending pending_;
  bool events_ = false, head_taken_ = false, finished_ = false, ended_ = false, closed_ = false;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;        // 0 picks a free port (see HttpServer::port())
  size_t body_limit = 8 << 20;
  size_t header_limit = 16 << 10;  // request line and headers; larger ones get 431
  int io_threads = 2;
  int read_timeout_s = 30;     // reading a request, and writing any response
  // Open connections at most; one more is answered 503 (Retry-After) and
  // closed. 0 = no cap.
  size_t max_connections = 1024;
  int retry_after_s = 5;
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
  size_t open_connections() const;
  // Stops accepting and closes the listener; open connections may still finish
  // their responses until stop().
  void stop_accepting();
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t bound_port_ = 0;
};

}  // namespace ltx::service
