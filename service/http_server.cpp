#include "service/http_server.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <list>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/version.hpp>

#include "common/check.h"
#include "common/logging.h"
#include "service/api_error.h"

namespace ltx::service {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

bool HttpRequest::has_header(const std::string& name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return true;
  }
  return false;
}

// ResponseChannel

void ResponseChannel::notify(std::unique_lock<std::mutex>& lock) {
  std::function<void()> wake = wake_;
  lock.unlock();
  if (wake) wake();
}

void ResponseChannel::finish(HttpResponse response) {
  std::unique_lock<std::mutex> lock(mu_);
  if (finished_ || events_ || closed_) return;
  finished_ = true;
  response.later.reset();
  pending_.whole = std::move(response);
  notify(lock);
}

void ResponseChannel::open_events() {
  std::unique_lock<std::mutex> lock(mu_);
  if (finished_ || events_ || closed_) return;
  events_ = true;
  pending_.send_head = true;
  notify(lock);
}

void ResponseChannel::send_event(std::string frame) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!events_ || ended_ || closed_) return;
  if (pending_.frames.size() >= kMaxQueuedEvents) {
    // The client is not reading: stop feeding it rather than grow without bound.
    pending_.frames.clear();
    pending_.end = true;
    ended_ = true;
  } else {
    pending_.frames.push_back(std::move(frame));
  }
  notify(lock);
}

void ResponseChannel::end() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!events_ || ended_ || closed_) return;
  ended_ = true;
  pending_.end = true;
  notify(lock);
}

bool ResponseChannel::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_ || ended_ || finished_;
}

void ResponseChannel::attach(std::function<void()> wake) {
  std::unique_lock<std::mutex> lock(mu_);
  wake_ = std::move(wake);
  notify(lock);
}

ResponseChannel::Pending ResponseChannel::take() {
  std::lock_guard<std::mutex> lock(mu_);
  Pending out = std::move(pending_);
  pending_ = Pending{};
  return out;
}

void ResponseChannel::mark_closed() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  wake_ = nullptr;
  gone_callback_ = nullptr;
  pending_ = Pending{};
}

void ResponseChannel::on_client_gone(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  gone_callback_ = std::move(callback);
}

void ResponseChannel::client_gone() {
  std::function<void()> callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_) callback = std::move(gone_callback_);
  }
  mark_closed();
  if (callback) callback();
}

namespace {

constexpr char kEventStreamHead[] =
    "HTTP/1.1 200 OK\r\nServer: ltx-worker\r\nContent-Type: text/event-stream\r\n"
    "Cache-Control: no-cache\r\nConnection: close\r\nX-Accel-Buffering: no\r\n\r\n";

// Sessions waiting on a ResponseChannel are held here (the channel's wake-up
// only holds a weak reference), so stop() can release them while the
// io_context still exists.
class WaitingSessions {
 public:
  void hold(std::shared_ptr<void> s) {
    std::lock_guard<std::mutex> lock(mu_);
    held_.push_back(std::move(s));
  }
  void release(const void* s) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = held_.begin(); it != held_.end(); ++it) {
      if (it->get() == s) {
        held_.erase(it);
        return;
      }
    }
  }
  size_t size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return held_.size();
  }
  void clear() {
    std::vector<std::shared_ptr<void>> gone;
    {
      std::lock_guard<std::mutex> lock(mu_);
      gone.swap(held_);
    }
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<void>> held_;
};

class Session;

// The open connections: their count, and the ones waiting for a request
// (idle keep-alive, or connected without a whole request head yet) in the
// order they became idle, so a new connection past the cap can take the
// place of the one idle longest, as nginx reuses keep-alive connections: a
// crowd of idle connections never locks out a client with a request.
class Connections {
 public:
  size_t open() const { return open_.load(); }
  void opened() { ++open_; }
  void closed() { --open_; }

  using Idle = std::list<std::weak_ptr<Session>>::iterator;
  Idle mark_idle(std::weak_ptr<Session> s) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(s));
    return std::prev(idle_.end());
  }
  void mark_busy(Idle it) {
    std::lock_guard<std::mutex> lock(mu_);
    idle_.erase(it);
  }
  // The session idle longest that is not already being evicted (it is
  // claimed for eviction), or null.
  std::shared_ptr<Session> claim_oldest_idle();

 private:
  std::atomic<size_t> open_{0};
  std::mutex mu_;
  std::list<std::weak_ptr<Session>> idle_;
};

// Log lines of one kind at most once a second; the suppressed count goes
// with the next one.
class RateLimitedLog {
 public:
  void warn(const std::string& line) {
    std::lock_guard<std::mutex> lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::seconds(1)) {
      ++suppressed_;
      return;
    }
    LTX_LOG(kWarn) << line << (suppressed_ > 0 ? " (" + std::to_string(suppressed_) + " more like it suppressed)" : "");
    suppressed_ = 0;
    last_ = now;
  }

 private:
  std::mutex mu_;
  std::chrono::steady_clock::time_point last_{};
  int64_t suppressed_ = 0;
};

std::string canned_error(int status, const char* reason, const ApiError& e, int retry_after_s) {
  const std::string body = e.body();
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nServer: ltx-worker\r\nContent-Type: application/json\r\nConnection: close\r\n";
  if (retry_after_s > 0) out += "Retry-After: " + std::to_string(retry_after_s) + "\r\n";
  return out + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, const HttpHandler& handler, const HttpServerOptions& options,
          WaitingSessions& waiting, Connections& connections)
      : stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        handler_(handler),
        options_(options),
        waiting_(waiting),
        connections_(connections) {
    connections_.opened();
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string();
  }
  ~Session() {
    if (idle_) connections_.mark_busy(*idle_);
    connections_.closed();
  }

  void run() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::read, shared_from_this())); }

  // Once: this idle session will be evicted (Connections' lock held).
  bool claim_eviction() { return !evicting_.exchange(true); }
  // Another connection needs this one's place: closed if it still waits for
  // a request (any thread).
  void evict() {
    net::post(executor_, [self = shared_from_this()] {
      if (!self->idle_) return;  // a request arrived meanwhile
      beast::error_code ec;
      self->stream_.socket().close(ec);
    });
  }

 private:
  void set_idle(bool idle) {
    if (idle && !idle_) idle_ = connections_.mark_idle(weak_from_this());
    if (!idle && idle_) {
      connections_.mark_busy(*idle_);
      idle_.reset();
    }
  }

  void read() {
    if (watching_) {  // the watch on the previous wait ends first (it was cancelled)
      read_after_watch_ = true;
      return;
    }
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(options_.header_limit));
    stream_.expires_after(std::chrono::seconds(options_.read_timeout_s));
    set_idle(true);
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  // A client that sent "Expect: 100-continue" (curl does for large bodies)
  // waits for a go-ahead before the body; a body over the limit was already
  // refused by the parser (413).
  void on_header(beast::error_code ec, std::size_t) {
    set_idle(false);
    if (ec) return on_read(ec, 0);
    if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return net::async_write(stream_, net::buffer(kContinue), [self = shared_from_this()](beast::error_code wec, std::size_t) {
        if (wec) return self->close();
        self->read_body();
      });
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::on_read, shared_from_this()));
  }

  // A request Beast could not parse as HTTP: 400 (or 431 for a head over the
  // limit); nothing to answer for a timeout, a reset or a client that left.
  static bool is_malformed(const beast::error_code& ec) {
    if (ec.category() != beast::http::make_error_code(http::error::bad_method).category()) return false;
    return ec != http::error::end_of_stream && ec != http::error::partial_message && ec != http::error::need_more &&
           ec != http::error::need_buffer && ec != http::error::body_limit;
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return close();
    HttpResponse out;
    keep_alive_ = false;
    if (ec == http::error::body_limit) {
      ApiError e = too_large_error(options_.body_limit);
      out.status = e.http_status;
      out.body = e.body();
    } else if (ec == http::error::header_limit) {
      ApiError e;
      e.http_status = 431;
      e.code = "headers_too_large";
      e.message = "the request line and headers exceed " + std::to_string(options_.header_limit) + " bytes";
      out.status = e.http_status;
      out.body = e.body();
    } else if (is_malformed(ec)) {
      ApiError e;
      e.http_status = 400;
      e.code = "bad_request";
      e.message = "malformed HTTP request: " + ec.message();
      out.status = e.http_status;
      out.body = e.body();
    } else if (ec) {
      return close();  // timeout, reset, a client that left mid-request: nothing to answer
    } else {
      const auto& req = parser_->get();
      keep_alive_ = req.keep_alive();
      HttpRequest r{std::string(req.method_string()), std::string(req.target()), req.body(), {}, remote_};
      for (const auto& field : req) {
        std::string name(field.name_string());
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers.emplace_back(std::move(name), std::string(field.value()));
      }
      try {
        out = handler_(r);
      } catch (...) {
        ApiError e = api_error_from_status(status_from_current_exception());
        out = HttpResponse{e.http_status, "application/json", e.body(), {}, nullptr};
      }
    }
    if (out.later) return wait_for(std::move(out.later));
    write_response(std::move(out));
  }

  void write_response(HttpResponse out) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(out.status), 11);
    res->set(http::field::server, "ltx-worker");
    res->set(http::field::content_type, out.content_type);
    for (const auto& [k, v] : out.headers) res->set(k, v);
    res->keep_alive(keep_alive_);
    res->body() = std::move(out.body);
    res->prepare_payload();
    stream_.expires_after(std::chrono::seconds(options_.read_timeout_s));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code wec, std::size_t) {
      if (wec || !self->keep_alive_) return self->close();
      self->read();
    });
  }

  // The answer comes later through `channel`; until then no timer runs (the
  // work may be queued for minutes), and nothing here blocks a thread.
  void wait_for(std::shared_ptr<ResponseChannel> channel) {
    channel_ = std::move(channel);
    stream_.expires_never();
    waiting_.hold(shared_from_this());
    std::weak_ptr<Session> weak = shared_from_this();
    channel_->attach([weak, executor = executor_] {
      if (auto self = weak.lock()) net::post(executor, [self] { self->pump(); });
    });
    watch();
  }

  // A client waiting for its answer sends nothing, so a read that ends while
  // it waits means it went away (EOF or reset): the channel's producer hears
  // of it. Bytes that do come (a pipelined next request) are kept for the
  // parser, up to kMaxPipelinedBytes. The read goes to the socket itself, not
  // through the stream, so the stream's write timeouts do not touch it.
  static constexpr size_t kMaxPipelinedBytes = 64 << 10;
  void watch() {
    if (watching_ || !channel_ || buffer_.size() >= kMaxPipelinedBytes) return;
    watching_ = true;
    stream_.socket().async_read_some(buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
      self->watching_ = false;
      if (!ec) {
        self->buffer_.commit(n);
        self->watch();
      } else if (ec != net::error::operation_aborted && self->channel_) {
        return self->client_left();
      }
      if (self->read_after_watch_) {
        self->read_after_watch_ = false;
        self->read();
      }
    });
  }

  void stop_watching() {
    beast::error_code ec;
    if (watching_) stream_.socket().cancel(ec);  // only the watch is pending here
  }

  void client_left() {
    done_waiting(/*client_gone=*/true);
    stop_feeding();
    write_next();  // closes once the frame being written, if any, is out
  }

  // Keeps only the frame being written (if any) and ends the connection after it.
  void stop_feeding() {
    while (outbox_.size() > (writing_ ? 1u : 0u)) outbox_.pop_back();
    ending_ = true;
  }

  void pump() {
    if (!channel_) return;
    ResponseChannel::Pending p = channel_->take();
    if (p.whole) {
      done_waiting();
      stop_watching();
      return write_response(std::move(*p.whole));
    }
    if (p.send_head) outbox_.emplace_back(kEventStreamHead);
    for (auto& f : p.frames) outbox_.push_back(std::move(f));
    ending_ = ending_ || p.end;
    if (outbox_.size() > ResponseChannel::kMaxQueuedEvents) {
      stop_feeding();  // the client does not keep up
      done_waiting();
    }
    write_next();
  }

  void write_next() {
    if (writing_) return;
    if (outbox_.empty()) {
      if (ending_) {
        done_waiting();
        return close();
      }
      stream_.expires_never();
      return;
    }
    writing_ = true;
    stream_.expires_after(std::chrono::seconds(options_.read_timeout_s));
    net::async_write(stream_, net::buffer(outbox_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      self->writing_ = false;
      if (ec) {  // the client went away or stopped reading
        self->outbox_.clear();
        return self->client_left();
      }
      self->outbox_.pop_front();
      if (self->channel_) return self->pump();  // takes news and writes the next frame
      self->write_next();
    });
  }

  // The connection is done with its channel; `client_gone` tells the
  // producer that the client left before its answer.
  void done_waiting(bool client_gone = false) {
    if (!channel_) return;
    if (client_gone) {
      channel_->client_gone();
    } else {
      channel_->mark_closed();
    }
    channel_.reset();
    waiting_.release(this);
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stop_watching();  // nothing else is pending when a session closes
  }

  beast::tcp_stream stream_;
  beast::tcp_stream::executor_type executor_;  // a copy: producers post to it without touching stream_
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const HttpHandler& handler_;
  const HttpServerOptions& options_;
  WaitingSessions& waiting_;
  Connections& connections_;
  std::optional<Connections::Idle> idle_;
  std::atomic<bool> evicting_{false};
  std::string remote_;
  bool keep_alive_ = false;
  std::shared_ptr<ResponseChannel> channel_;
  std::deque<std::string> outbox_;
  bool writing_ = false, ending_ = false;
  bool watching_ = false, read_after_watch_ = false;
};

std::shared_ptr<Session> Connections::claim_oldest_idle() {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& weak : idle_) {
    auto s = weak.lock();
    if (s && s->claim_eviction()) return s;
  }
  return nullptr;
}

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  Connections connections;  // before ioc: sessions it still holds count down into it when it goes
  net::io_context ioc;
  WaitingSessions waiting;  // after ioc: released before it is destroyed
  tcp::acceptor acceptor{net::make_strand(ioc)};
  net::steady_timer backoff{acceptor.get_executor()};
  std::chrono::milliseconds backoff_delay{0};
  RateLimitedLog accept_log, cap_log;
  std::vector<std::thread> threads;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // Out of descriptors (or another transient failure): retrying at
        // once would spin; wait, doubling up to a second.
        backoff_delay = std::min(std::chrono::milliseconds(1000),
                                 std::max(std::chrono::milliseconds(10), backoff_delay * 2));
        accept_log.warn("accept failed: " + ec.message() + "; retrying in " + std::to_string(backoff_delay.count()) + " ms");
        backoff.expires_after(backoff_delay);
        backoff.async_wait([this](beast::error_code wec) {
          if (!wec && acceptor.is_open()) accept();
        });
        return;
      }
      backoff_delay = std::chrono::milliseconds(0);
      admit(std::move(socket));
      accept();
    });
  }

  // Past the cap, the connection idle longest makes room; when none is idle
  // the new one is answered 503 and closed.
  void admit(tcp::socket socket) {
    if (options.max_connections > 0 && connections.open() >= options.max_connections) {
      if (auto oldest = connections.claim_oldest_idle()) {
        oldest->evict();
      } else {
        cap_log.warn("connection refused: " + std::to_string(connections.open()) + " connections open (the cap is " +
                     std::to_string(options.max_connections) + ")");
        ApiError e;
        e.http_status = 503;
        e.code = "too_many_connections";
        e.message = "the server holds its limit of " + std::to_string(options.max_connections) +
                    " connections; retry later";
        auto held = std::make_shared<std::pair<tcp::socket, std::string>>(
            std::move(socket), canned_error(503, "Service Unavailable", e, options.retry_after_s));
        net::async_write(held->first, net::buffer(held->second), [held](beast::error_code, std::size_t) {
          beast::error_code ignored;
          held->first.shutdown(tcp::socket::shutdown_both, ignored);
          held->first.close(ignored);
        });
        return;
      }
    }
    std::make_shared<Session>(std::move(socket), handler, options, waiting, connections)->run();
  }
};

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
  stop();
  if (impl_) impl_->waiting.clear();
}

Status HttpServer::start() {
  // Every connection is a descriptor: take the hard limit, and keep the cap
  // below it with room for the model's files, MPI and the blob store, so
  // accept never runs out.
  rlimit nofile{};
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      rlimit raised = nofile;
      raised.rlim_cur = nofile.rlim_max;
      if (setrlimit(RLIMIT_NOFILE, &raised) == 0) nofile = raised;
    }
    constexpr rlim_t kReserved = 256;
    if (nofile.rlim_cur != RLIM_INFINITY && impl_->options.max_connections > 0) {
      const size_t room = nofile.rlim_cur > 2 * kReserved ? static_cast<size_t>(nofile.rlim_cur - kReserved)
                                                          : static_cast<size_t>(nofile.rlim_cur / 2);
      if (impl_->options.max_connections > room) {
        LTX_LOG(kWarn) << "max_connections " << impl_->options.max_connections << " lowered to " << room
                       << ": the descriptor limit is " << nofile.rlim_cur;
        impl_->options.max_connections = room;
      }
    }
  }
  beast::error_code ec;
  auto address = net::ip::make_address(impl_->options.host, ec);
  if (ec) return invalid_argument_error("--host " + impl_->options.host + ": " + ec.message());
  tcp::endpoint endpoint(address, impl_->options.port);
  const std::string where = impl_->options.host + ":" + std::to_string(impl_->options.port);
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return unavailable_error("cannot listen on " + where + ": " + ec.message());
  bound_port_ = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->work.emplace(net::make_work_guard(impl_->ioc));
  for (int i = 0; i < std::max(1, impl_->options.io_threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  }
  return Status();
}

size_t HttpServer::open_connections() const { return impl_ ? impl_->connections.open() : 0; }

void HttpServer::stop_accepting() {
  if (!impl_ || impl_->threads.empty()) return;
  net::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
    impl_->backoff.cancel();
  });
}

void HttpServer::stop() {
  if (!impl_ || impl_->threads.empty()) return;
  stop_accepting();
  // Let answers already handed to channels (errors for cancelled work, the
  // end of event streams) reach their clients, briefly.
  for (int i = 0; i < 100 && impl_->waiting.size() > 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  impl_->work.reset();
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->waiting.clear();
}

}  // namespace ltx::service
