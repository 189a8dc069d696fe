// VideoJobs: the video-job API of rank 0 (POST/GET /v1/videos...) and the
// queue between the HTTP threads and the inference thread.
//
// HTTP threads call handle() (parse, enqueue, answer from the table: never
// blocks on the engine). The inference thread calls next_job() and the
// complete()/fail() callbacks; the table is guarded by one mutex. JSON lives
// here and in the HTTP layer only: the engine gets plain GenerationRequests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "pipeline/text_to_video.h"
#include "service/http_server.h"
#include "service/metrics.h"

namespace ltx::service {

struct ServiceInfo {
  std::string model;
  int group_size = 1;
  size_t max_queue = 16;
};

class VideoJobs {
 public:
  explicit VideoJobs(ServiceInfo info) : info_(std::move(info)) {}

  // Routes: GET /healthz, GET /v1/models, POST /v1/videos, GET /v1/videos,
  // GET /v1/videos/{id}, GET /v1/videos/{id}/content.
  HttpResponse handle(const HttpRequest& request);

  // Inference thread: the next queued job (id and request), or nullopt when
  // `timeout` passes or shutdown() was called.
  std::optional<std::pair<std::string, pipeline::GenerationRequest>> next_job(std::chrono::milliseconds timeout);
  void step(const std::string& id, int64_t step, int64_t steps);
  void complete(const std::string& id, std::string mp4, double seconds);
  void fail(const std::string& id, const Status& status);
  void shutdown();
  bool shutting_down() const;
  Metrics& metrics() { return metrics_; }

 private:
  struct Job {
    std::string id;
    pipeline::GenerationRequest request;
    std::string status = "queued";  // queued, in_progress, completed, failed
    int64_t step = 0, steps = 0;
    std::string mp4;
    std::string error;
    double seconds = 0;
  };
  std::string job_json(const Job& job) const;  // holds mu_

  HttpResponse route(const HttpRequest& request);

  ServiceInfo info_;
  Metrics metrics_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Job> jobs_;
  std::deque<std::string> queue_;
  int64_t next_id_ = 1;
  bool shutdown_ = false;
};

}  // namespace ltx::service
