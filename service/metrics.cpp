#include "service/metrics.h"

#include <sstream>

namespace ltx::service {

void Metrics::Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i]) ++i;
  ++counts[i];
  sum += v;
  ++count;
}

Metrics::Metrics() {
  step_.bounds = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
  step_.counts.assign(step_.bounds.size() + 1, 0);
  job_.bounds = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};
  job_.counts.assign(job_.bounds.size() + 1, 0);
}

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void Metrics::observe_step_seconds(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  step_.observe(s);
}

void Metrics::observe_job_seconds(double s) {
  std::lock_guard<std::mutex> lock(mu_);
  job_.observe(s);
}

void Metrics::set_queue_depth(int64_t d) {
  std::lock_guard<std::mutex> lock(mu_);
  queue_depth_ = d;
}

std::string Metrics::render(const std::map<std::string, double>& extra) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream os;
  os << "# HELP ltx_http_requests_total HTTP requests by route and status.\n"
     << "# TYPE ltx_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    os << "ltx_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  }
  os << "# HELP ltx_queue_depth Video jobs waiting.\n# TYPE ltx_queue_depth gauge\nltx_queue_depth " << queue_depth_ << "\n";
  auto histogram = [&os](const char* name, const char* help, const Histogram& h) {
    os << "# HELP " << name << " " << help << "\n# TYPE " << name << " histogram\n";
    int64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      os << name << "_bucket{le=\"" << h.bounds[i] << "\"} " << cumulative << "\n";
    }
    cumulative += h.counts.back();
    os << name << "_bucket{le=\"+Inf\"} " << cumulative << "\n" << name << "_sum " << h.sum << "\n"
       << name << "_count " << h.count << "\n";
  };
  histogram("ltx_denoise_step_seconds", "Seconds per denoising step (rank 0).", step_);
  histogram("ltx_video_job_seconds", "Seconds per finished video job.", job_);
  for (const auto& [name, value] : extra) os << "# TYPE " << name << " gauge\n" << name << " " << value << "\n";
  return os.str();
}

std::string route_template(const std::string& path) {
  const std::string videos = "/v1/videos/";
  if (path.rfind(videos, 0) == 0) {
    const std::string rest = path.substr(videos.size());
    const size_t slash = rest.find('/');
    return slash == std::string::npos ? videos + "{id}" : videos + "{id}" + rest.substr(slash);
  }
  for (const char* known : {"/healthz", "/metrics", "/v1/models", "/v1/videos", "/"}) {
    if (path == known) return path;
  }
  return "other";
}

}  // namespace ltx::service
