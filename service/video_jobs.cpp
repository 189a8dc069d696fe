#include "service/video_jobs.h"

#include <nlohmann/json.hpp>

#include "service/api_error.h"
#include "service/video_request_schema.h"

namespace ltx::service {
namespace {

using nlohmann::json;

HttpResponse json_response(int status, const json& body) { return {status, "application/json", body.dump(), {}}; }

HttpResponse error_response(const ApiError& e) {
  HttpResponse r{e.http_status, "application/json", e.body(), {}};
  if (e.retry_after_s > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_s));
  return r;
}

}  // namespace

std::string VideoJobs::job_json(const Job& j) const {
  json out = {{"id", j.id}, {"object", "video"}, {"status", j.status},
              {"progress", {{"step", j.step}, {"steps", j.steps}}},
              {"request", {{"prompt", j.request.prompt}, {"width", j.request.width}, {"height", j.request.height},
                           {"num_frames", j.request.num_frames}, {"num_inference_steps", j.request.num_steps},
                           {"seed", j.request.seed}, {"fps", j.request.fps}}}};
  if (j.status == "queued") {
    int64_t pos = 0;
    for (const auto& q : queue_) {
      if (q == j.id) break;
      ++pos;
    }
    out["queue_position"] = pos;
  }
  if (j.status == "completed") out["seconds"] = j.seconds;
  if (j.status == "failed") out["error"] = j.error;
  return out.dump();
}

HttpResponse VideoJobs::handle(const HttpRequest& r) {
  HttpResponse out = route(r);
  metrics_.count_request(route_template(r.target.substr(0, r.target.find('?'))), out.status);
  return out;
}

HttpResponse VideoJobs::route(const HttpRequest& r) {
  const std::string path = r.target.substr(0, r.target.find('?'));
  if (r.method == "GET" && path == "/metrics") {
    std::map<std::string, double> gauges;
    {
      std::lock_guard<std::mutex> lock(mu_);
      int64_t done = 0, failed = 0;
      for (const auto& [id, j] : jobs_) {
        done += j.status == "completed";
        failed += j.status == "failed";
      }
      gauges["ltx_videos_completed"] = static_cast<double>(done);
      gauges["ltx_videos_failed"] = static_cast<double>(failed);
      gauges["ltx_group_size"] = info_.group_size;
    }
    return {200, "text/plain; version=0.0.4", metrics_.render(gauges), {}};
  }
  if (r.method == "GET" && path == "/healthz") {
    return json_response(200, {{"status", "ok"}, {"ready", true}, {"group_size", info_.group_size}, {"model", info_.model}});
  }
  if (r.method == "GET" && path == "/v1/models") {
    return json_response(200, {{"object", "list"}, {"data", {{{"id", info_.model}, {"object", "model"}}}}});
  }
  if (path == "/v1/videos" && r.method == "POST") {
    auto parsed = parse_video_request(r.body);
    if (auto* e = std::get_if<ApiError>(&parsed)) return error_response(*e);
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) return error_response(api_error_from_status(unavailable_error("the worker is shutting down")));
    if (queue_.size() >= info_.max_queue) {
      return error_response(api_error_from_status(resource_exhausted_error("the queue is full (" + std::to_string(info_.max_queue) + " jobs)")));
    }
    Job job;
    job.id = "vid_" + std::to_string(next_id_++);
    job.request = std::get<pipeline::GenerationRequest>(parsed);
    job.steps = job.request.num_steps;
    queue_.push_back(job.id);
    metrics_.set_queue_depth(static_cast<int64_t>(queue_.size()));
    auto [it, inserted] = jobs_.emplace(job.id, std::move(job));
    cv_.notify_one();
    return {202, "application/json", job_json(it->second), {}};
  }
  if (path == "/v1/videos" && r.method == "GET") {
    std::lock_guard<std::mutex> lock(mu_);
    json data = json::array();
    for (const auto& [id, j] : jobs_) data.push_back(json::parse(job_json(j)));
    return json_response(200, {{"object", "list"}, {"data", data}});
  }
  const std::string prefix = "/v1/videos/";
  if (r.method == "GET" && path.rfind(prefix, 0) == 0) {
    std::string rest = path.substr(prefix.size());
    const bool content = rest.size() > 8 && rest.substr(rest.size() - 8) == "/content";
    if (content) rest = rest.substr(0, rest.size() - 8);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(rest);
    if (it == jobs_.end()) return error_response(api_error_from_status(not_found_error("no video " + rest), "id"));
    if (!content) return {200, "application/json", job_json(it->second), {}};
    if (it->second.status != "completed") {
      return error_response(api_error_from_status(failed_precondition_error("video " + rest + " is " + it->second.status)));
    }
    return {200, "video/mp4", it->second.mp4, {}};
  }
  return error_response(api_error_from_status(not_found_error("no route " + r.method + " " + path)));
}

std::optional<std::pair<std::string, pipeline::GenerationRequest>> VideoJobs::next_job(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return shutdown_ || !queue_.empty(); });
  if (shutdown_ || queue_.empty()) return std::nullopt;
  std::string id = queue_.front();
  queue_.pop_front();
  metrics_.set_queue_depth(static_cast<int64_t>(queue_.size()));
  Job& j = jobs_.at(id);
  j.status = "in_progress";
  return std::make_pair(id, j.request);
}

void VideoJobs::step(const std::string& id, int64_t step, int64_t steps) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it != jobs_.end()) {
    it->second.step = step;
    it->second.steps = steps;
  }
}

void VideoJobs::complete(const std::string& id, std::string mp4, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = jobs_.at(id);
  j.status = "completed";
  j.step = j.steps;
  j.mp4 = std::move(mp4);
  j.seconds = seconds;
  metrics_.observe_job_seconds(seconds);
}

void VideoJobs::fail(const std::string& id, const Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  Job& j = jobs_.at(id);
  j.status = "failed";
  j.error = status.to_string();
}

void VideoJobs::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

bool VideoJobs::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutdown_;
}

}  // namespace ltx::service
