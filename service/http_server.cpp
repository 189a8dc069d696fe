#include "service/http_server.h"

#include <boost/asio/dispatch.hpp>
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

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, const HttpHandler& handler, const HttpServerOptions& options,
          WaitingSessions& waiting)
      : stream_(std::move(socket)),
        executor_(stream_.get_executor()),
        handler_(handler),
        options_(options),
        waiting_(waiting) {}

  void run() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::read, shared_from_this())); }

 private:
  void read() {
    if (watching_) {  // the watch on the previous wait ends first (it was cancelled)
      read_after_watch_ = true;
      return;
    }
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    stream_.expires_after(std::chrono::seconds(options_.read_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  // A client that sent "Expect: 100-continue" (curl does for large bodies)
  // waits for a go-ahead before the body; a body over the limit was already
  // refused by the parser (413).
  void on_header(beast::error_code ec, std::size_t) {
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

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return close();
    HttpResponse out;
    keep_alive_ = false;
    if (ec == http::error::body_limit) {
      ApiError e = too_large_error(options_.body_limit);
      out.status = e.http_status;
      out.body = e.body();
    } else if (ec) {
      return close();  // timeout, reset, garbage: nothing to answer
    } else {
      const auto& req = parser_->get();
      keep_alive_ = req.keep_alive();
      HttpRequest r{std::string(req.method_string()), std::string(req.target()), req.body()};
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
  bool keep_alive_ = false;
  std::shared_ptr<ResponseChannel> channel_;
  std::deque<std::string> outbox_;
  bool writing_ = false, ending_ = false;
  bool watching_ = false, read_after_watch_ = false;
};

}  // namespace

struct HttpServer::Impl {
  HttpServerOptions options;
  HttpHandler handler;
  net::io_context ioc;
  WaitingSessions waiting;  // after ioc: released before it is destroyed
  tcp::acceptor acceptor{net::make_strand(ioc)};
  std::vector<std::thread> threads;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;

  void accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted) return;
        LTX_LOG(kWarn) << "accept failed: " << ec.message();
      } else {
        std::make_shared<Session>(std::move(socket), handler, options, waiting)->run();
      }
      if (acceptor.is_open()) accept();
    });
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

void HttpServer::stop_accepting() {
  if (!impl_ || impl_->threads.empty()) return;
  net::post(impl_->acceptor.get_executor(), [this] {
    beast::error_code ec;
    impl_->acceptor.close(ec);
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
