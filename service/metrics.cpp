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
  auto add = [this](Series s, const char* name, const char* help, std::vector<double> bounds) {
    Histogram h;
    h.name = name;
    h.help = help;
    h.bounds = std::move(bounds);
    h.counts.assign(h.bounds.size() + 1, 0);
    histograms_[s] = h;
  };
  add(Series::kStepSeconds, "ltx_denoise_step_seconds", "Seconds per denoising step (rank 0).",
      {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30});
  add(Series::kChunkSeconds, "ltx_stream_chunk_seconds", "Seconds per streamed chunk, on the group.",
      {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120});
  add(Series::kFirstChunkSeconds, "ltx_stream_first_chunk_seconds",
      "Seconds from creating a stream to its first chunk being ready.", {0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300});
  add(Series::kJobSeconds, "ltx_video_job_seconds", "Seconds per finished video job, on the group.",
      {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600});
  add(Series::kQueueWaitSeconds, "ltx_queue_wait_seconds", "Seconds a work item waited in the queue.",
      {0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300});
}

void Metrics::count_request(const std::string& route, int status) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{route, status}];
}

void Metrics::observe(Series series, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  histograms_.at(series).observe(seconds);
}

void Metrics::set_gauge(const std::string& name, double value, const std::string& help) {
  std::lock_guard<std::mutex> lock(mu_);
  gauges_[name] = {value, help};
}

std::string Metrics::render(const std::map<std::string, double>& extra) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::ostringstream os;
  os << "# HELP ltx_http_requests_total HTTP requests by route and status.\n"
     << "# TYPE ltx_http_requests_total counter\n";
  for (const auto& [key, n] : requests_) {
    os << "ltx_http_requests_total{route=\"" << key.first << "\",status=\"" << key.second << "\"} " << n << "\n";
  }
  for (const auto& [series, h] : histograms_) {
    os << "# HELP " << h.name << " " << h.help << "\n# TYPE " << h.name << " histogram\n";
    int64_t cumulative = 0;
    for (size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      os << h.name << "_bucket{le=\"" << h.bounds[i] << "\"} " << cumulative << "\n";
    }
    cumulative += h.counts.back();
    os << h.name << "_bucket{le=\"+Inf\"} " << cumulative << "\n" << h.name << "_sum " << h.sum << "\n"
       << h.name << "_count " << h.count << "\n";
  }
  // One TYPE line per metric family (labels stripped).
  std::map<std::string, double> all = extra;
  std::map<std::string, std::string> helps;
  for (const auto& [name, v] : gauges_) {
    all[name] = v.first;
    if (!v.second.empty()) helps[name.substr(0, name.find('{'))] = v.second;
  }
  std::string family;
  for (const auto& [name, value] : all) {
    const std::string f = name.substr(0, name.find('{'));
    if (f != family) {
      family = f;
      if (helps.count(f)) os << "# HELP " << f << " " << helps[f] << "\n";
      os << "# TYPE " << f << " gauge\n";
    }
    os << name << " " << value << "\n";
  }
  return os.str();
}

}  // namespace ltx::service
