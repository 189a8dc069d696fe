// ltx-load-bench: request overhead of a running `ltx-worker serve` under
// concurrent clients. Each client is a thread with one keep-alive connection
// (Beast, synchronous) issuing its requests back to back; the bench prints
// one CSV row: target, clients, requests, wall seconds, requests/s, latency
// mean/p50/p90/p99 in ms, and for videos the mean group seconds per video
// (the server's X-Video-Seconds), so overhead = latency - group time - queue.
//
//   build/ltx-load-bench --port 8080 --target healthz --clients 8 --requests 200
//   build/ltx-load-bench --port 8080 --target video --clients 8 --requests 4
//
// A benchmark, never a test; it talks to 127.0.0.1 only by default.
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct Sample {
  double seconds = 0;
  double group_seconds = 0;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1", target = "healthz", body;
  int port = 8080, clients = 1, requests = 100;
  namespace po = boost::program_options;
  po::options_description desc("ltx-load-bench");
  desc.add_options()("help,h", "show this help")
      ("host", po::value(&host)->default_value(host), "server address")
      ("port", po::value(&port)->default_value(port), "server port")
      ("target", po::value(&target)->default_value(target), "healthz | video (a synchronous tiny generation)")
      ("clients", po::value(&clients)->default_value(clients), "concurrent clients (threads, one connection each)")
      ("requests", po::value(&requests)->default_value(requests), "requests per client")
      ("body", po::value(&body), "JSON of the video request (default: 64x64, 9 frames, 2 steps)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ltx-load-bench: %s\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc;
    return 0;
  }
  if (target != "healthz" && target != "video") {
    std::fprintf(stderr, "ltx-load-bench: --target must be healthz or video\n");
    return 2;
  }
  if (clients < 1 || clients > 1024 || requests < 1) {
    std::fprintf(stderr, "ltx-load-bench: --clients must be in [1, 1024] and --requests >= 1\n");
    return 2;
  }
  if (body.empty()) body = R"({"prompt":"load","width":64,"height":64,"num_frames":9,"num_inference_steps":2})";

  std::mutex mu;
  std::vector<Sample> samples;
  std::atomic<int> failures{0};
  std::string first_error;
  auto client = [&]() {
    try {
      net::io_context ioc;
      tcp::resolver resolver(ioc);
      beast::tcp_stream stream(ioc);
      stream.connect(resolver.resolve(host, std::to_string(port)));
      beast::flat_buffer buffer;
      for (int i = 0; i < requests; ++i) {
        http::request<http::string_body> req(target == "video" ? http::verb::post : http::verb::get,
                                             target == "video" ? "/v1/videos?wait=true" : "/healthz", 11);
        req.set(http::field::host, host);
        req.keep_alive(true);
        if (target == "video") {
          req.body() = body;
          req.prepare_payload();
        }
        const auto t0 = std::chrono::steady_clock::now();
        http::write(stream, req);
        http::response<http::string_body> res;
        http::read(stream, buffer, res);
        Sample s;
        s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (res.result_int() != 200) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) first_error = std::to_string(res.result_int()) + " " + res.body().substr(0, 200);
          ++failures;
          continue;
        }
        auto it = res.find("X-Video-Seconds");
        if (it != res.end()) s.group_seconds = std::stod(std::string(it->value()));
        std::lock_guard<std::mutex> lock(mu);
        samples.push_back(s);
      }
    } catch (const std::exception& e) {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = e.what();
      failures += requests;
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) threads.emplace_back(client);
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (failures > 0) {
    std::fprintf(stderr, "ltx-load-bench: %d request(s) failed; first: %s\n", failures.load(), first_error.c_str());
    return 1;
  }
  std::vector<double> ms;
  double group = 0;
  for (const auto& s : samples) {
    ms.push_back(1000 * s.seconds);
    group += s.group_seconds;
  }
  const double mean = std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size());
  std::printf("%s,%d,%zu,%.3f,%.1f,%.3f,%.3f,%.3f,%.3f,%.4f\n", target.c_str(), clients, samples.size(), wall,
              static_cast<double>(samples.size()) / wall, mean, percentile(ms, 0.5), percentile(ms, 0.9),
              percentile(ms, 0.99), group / static_cast<double>(samples.size()));
  return 0;
}
