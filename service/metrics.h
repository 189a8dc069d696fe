// Metrics: counters and histograms of the service, rendered in the Prometheus
// text exposition format for GET /metrics.
//
// Thread-safe (one mutex): HTTP threads count requests, the inference thread
// observes step and job times. Label values are fixed route templates, never
// user input, so the series set stays bounded.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace ltx::service {

class Metrics {
 public:
  Metrics();
  // One HTTP request: route template ("/v1/videos/{id}") and status code.
  void count_request(const std::string& route, int status);
  void observe_step_seconds(double seconds);
  void observe_job_seconds(double seconds);
  void set_queue_depth(int64_t depth);
  // The whole exposition, gauges from `extra` appended ("name value" pairs).
  std::string render(const std::map<std::string, double>& extra_gauges = {}) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<int64_t> counts;  // per bound, then +Inf
    double sum = 0;
    int64_t count = 0;
    void observe(double v);
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> requests_;
  Histogram step_, job_;
  int64_t queue_depth_ = 0;
};

// The route template of a request path (bounded label values).
std::string route_template(const std::string& path);

}  // namespace ltx::service
