// Metrics: counters, gauges and histograms of the service, rendered in the
// Prometheus text exposition format for GET /metrics.
//
// Thread-safe (one mutex): HTTP threads count requests, the inference thread
// observes step, chunk and job times. Label values are fixed route templates
// and rank numbers, never user input, so the series set stays bounded.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ltx::service {

class Metrics {
 public:
  enum class Series { kStepSeconds, kChunkSeconds, kFirstChunkSeconds, kJobSeconds, kQueueWaitSeconds };

  Metrics();
  // One HTTP request: route template ("/v1/videos/{id}") and status code.
  void count_request(const std::string& route, int status);
  void observe(Series series, double seconds);
  // A gauge; `name` may carry labels: ltx_kv_cache_bytes{rank="1"}.
  void set_gauge(const std::string& name, double value, const std::string& help = "");
  // The whole exposition, gauges from `extra` appended ("name value" pairs).
  std::string render(const std::map<std::string, double>& extra_gauges = {}) const;

 private:
  struct Histogram {
    const char* name = "";
    const char* help = "";
    std::vector<double> bounds;
    std::vector<int64_t> counts;  // per bound, then +Inf
    double sum = 0;
    int64_t count = 0;
    void observe(double v);
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  std::map<Series, Histogram> histograms_;
  std::map<std::string, std::pair<double, std::string>> gauges_;  // name -> value, help
};

}  // namespace ltx::service
