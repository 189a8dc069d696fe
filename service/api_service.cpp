#include "service/api_service.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <nlohmann/json.hpp>

#include "common/logging.h"
#include "service/stream_request_schema.h"
#include "service/video_request_schema.h"
#include "service/video_params_json.h"
#include "service/web_page.h"

namespace ltx::service {

const char* state_name(JobState state) {
  switch (state) {
    case JobState::kQueued: return "queued";
    case JobState::kInProgress: return "in_progress";
    case JobState::kCompleted: return "completed";
    case JobState::kFailed: return "failed";
    case JobState::kCancelled: return "cancelled";
  }
  return "unknown";
}

const char* state_name(StreamState state) {
  switch (state) {
    case StreamState::kOpening: return "opening";
    case StreamState::kReady: return "ready";
    case StreamState::kFailed: return "failed";
  }
  return "unknown";
}
namespace {

using nlohmann::json;
using steady = std::chrono::steady_clock;

constexpr const char* kVideoLane = "videos";     // all video jobs share one lane; each stream has its own
constexpr double kHeartbeatSeconds = 5.0;          // an idle group is pinged this often
constexpr double kHeartbeatTimeoutSeconds = 10.0;  // a ping unanswered this long: the group is not alive

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

// An id no client can guess: the prefix and 128 random bits in hex.
std::string random_id(const char* prefix) {
  static std::mutex mu;
  static std::random_device device;
  std::lock_guard<std::mutex> lock(mu);
  static const char* hex = "0123456789abcdef";
  std::string id = prefix;
  for (int word = 0; word < 4; ++word) {
    uint32_t x = device();
    for (int i = 0; i < 8; ++i, x >>= 4) id += hex[x & 15];
  }
  return id;
}

// The value of `name` in a query string ("" when absent; no decoding beyond
// what ids and numbers need).
std::optional<std::string> query_value(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (kv.rfind(name + "=", 0) == 0) return kv.substr(name.size() + 1);
    if (kv == name) return std::string();
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return std::nullopt;
}

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

double since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

std::string video_topic(const std::string& id) { return "video:" + id; }
std::string stream_topic(const std::string& id) { return "stream:" + id; }

bool query_flag(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    std::string kv = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (kv == name || kv == name + "=true" || kv == name + "=1") return true;
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return false;
}

HttpResponse method_not_allowed(const std::string& method, const std::string& path, const std::string& allow) {
  ApiError e;
  e.http_status = 405;
  e.code = "method_not_allowed";
  e.message = method + " is not allowed on " + path + " (allowed: " + allow + ")";
  HttpResponse r;
  r.status = 405;
  r.body = e.body();
  r.headers.emplace_back("Allow", allow);
  return r;
}

HttpResponse mp4_response(std::string mp4) {
  HttpResponse r;
  r.content_type = "video/mp4";
  r.body = std::move(mp4);
  return r;
}

}  // namespace

ApiService::ApiService(ServiceInfo info, ServiceConfig config)
    : info_(std::move(info)),
      config_(std::move(config)),
      access_(AccessRules{config_.api_key, config_.allowed_hosts, config_.allowed_origins}),
      served_{info_.model, info_.model_aliases},
      policy_{config_.max_queue, config_.job_slice_s} {
  if (config_.max_pixel_frames == 0) config_.size_to_host(host_available_memory(), 1);
  add_routes();
  update_gauges();
}

HttpResponse ApiService::error(const ApiError& e) const {
  HttpResponse r;
  r.status = e.http_status;
  r.body = e.body();
  if (e.http_status == 429 || e.http_status == 503) {
    r.headers.emplace_back("Retry-After", std::to_string(config_.retry_after_s));
  }
  return r;
}

HttpResponse ApiService::error(const Status& s, const std::string& field) const {
  return error(api_error_from_status(s, field));
}

std::optional<ApiError> ApiService::check_size(int64_t steps, int64_t tokens, int64_t pixel_frames,
                                               const std::string& field, const std::string& formula) const {
  if (info_.check_steps) {
    Status model_ok = info_.check_steps(steps, tokens);
    if (!model_ok.ok()) {
      return api_error_from_status(invalid_argument_error("num_inference_steps: " + model_ok.message()),
                                   "num_inference_steps");
    }
  }
  if (pixel_frames > config_.max_pixel_frames) {
    return api_error_from_status(invalid_argument_error(field + ": " + formula + " = " + std::to_string(pixel_frames) +
                                                        " exceeds this server's limit of " +
                                                        std::to_string(config_.max_pixel_frames)),
                                 field);
  }
  return std::nullopt;
}

HttpResponse ApiService::events_of(const std::string& topic, const std::string& what, const std::string& id) {
  auto channel = events_.subscribe(topic);
  if (!channel) return error(not_found_error("no " + what + " " + id), "id");
  HttpResponse later;
  later.later = channel;
  return later;
}

HttpResponse ApiService::handle(const HttpRequest& r) {
  const size_t q = r.target.find('?');
  const std::string path = r.target.substr(0, q);
  const std::string query = q == std::string::npos ? "" : r.target.substr(q + 1);
  const RouteTable::Match match = routes_.match(r.method, path);
  HttpResponse out;
  if (auto preflight = access_.preflight(r)) {
    out = std::move(*preflight);
  } else if (auto refused = access_.check(r, path)) {
    out = error(*refused);
    if (out.status == 401) out.headers.emplace_back("WWW-Authenticate", "Bearer");
  } else if (match.handler != nullptr) {
    out = (*match.handler)(r, match.id, query);
  } else if (!match.allowed.empty()) {
    out = method_not_allowed(r.method, path, match.allowed);
  } else {
    const std::string shown = path.size() > 200 ? path.substr(0, 200) + "..." : path;
    out = error(not_found_error("no route " + r.method.substr(0, 16) + " " + shown));
  }
  for (auto& h : access_.cors_headers(r)) out.headers.push_back(std::move(h));
  // A deferred answer is counted with the status it was accepted with (200).
  metrics_.count_request(match.label, out.later ? 200 : out.status);
  return out;
}

// Every route of the API: docs/api.md lists the same table.
void ApiService::add_routes() {
  using Request = const HttpRequest&;
  using Id = const std::string&;
  auto page = [](Request, Id, Id) {
    HttpResponse page;
    page.content_type = "text/html; charset=utf-8";
    page.body = web_page_html();
    return page;
  };
  routes_.add("GET", "/", page);
  routes_.add("GET", "/index.html", page);
  routes_.add("GET", "/healthz", [this](Request, Id, Id) { return health(); });
  routes_.add("GET", "/metrics", [this](Request, Id, Id) { return metrics_text(); });
  routes_.add("GET", "/v1/models", [this](Request, Id, Id) { return models(); });
  routes_.add("GET", "/v1/videos", [this](Request, Id, Id query) { return list_videos(query); });
  routes_.add("POST", "/v1/videos", [this](Request r, Id, Id query) { return create_video(r, query_flag(query, "wait")); });
  routes_.add("GET", "/v1/videos/{id}", [this](Request, Id id, Id) { return get_video(id); });
  routes_.add("DELETE", "/v1/videos/{id}", [this](Request, Id id, Id) { return delete_video(id); });
  routes_.add("GET", "/v1/videos/{id}/content", [this](Request, Id id, Id query) { return video_content(id, query); });
  routes_.add("GET", "/v1/videos/{id}/events", [this](Request, Id id, Id) { return events_of(video_topic(id), "video", id); });
  routes_.add("GET", "/v1/streams", [this](Request, Id, Id) { return list_streams(); });
  routes_.add("POST", "/v1/streams", [this](Request r, Id, Id) { return create_stream(r); });
  routes_.add("GET", "/v1/streams/{id}", [this](Request, Id id, Id) { return get_stream(id); });
  routes_.add("DELETE", "/v1/streams/{id}", [this](Request, Id id, Id) { return delete_stream(id, "deleted"); });
  routes_.add("POST", "/v1/streams/{id}/chunks", [this](Request r, Id id, Id) { return request_chunk(id, r); });
  routes_.add("GET", "/v1/streams/{id}/state", [this](Request, Id id, Id) { return export_state(id); });
  routes_.add("GET", "/v1/streams/{id}/events", [this](Request, Id id, Id) { return events_of(stream_topic(id), "stream", id); });
}

void ApiService::on_heartbeat_start() {
  std::lock_guard<std::mutex> lock(mu_);
  ping_since_ = steady::now();
}

void ApiService::on_heartbeat(const Status& verdict) {
  std::lock_guard<std::mutex> lock(mu_);
  ping_since_.reset();
  if (verdict.ok()) {
    last_contact_ = steady::now();
    group_error_.clear();
  } else {
    group_error_ = client_message(verdict.message());
  }
}

bool ApiService::heartbeat_due() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !running_ && since(last_contact_) > kHeartbeatSeconds;
}

HttpResponse ApiService::health() {
  std::lock_guard<std::mutex> lock(mu_);
  // The group is alive when its last heartbeat answered and none has been
  // waiting for an answer longer than kHeartbeatTimeout (a rank that hangs).
  const bool ping_stuck = ping_since_ && since(*ping_since_) > kHeartbeatTimeoutSeconds;
  const bool alive = group_error_.empty() && !ping_stuck;
  json group = {{"alive", alive}, {"last_contact_seconds", since(last_contact_)},
                {"busy_seconds", running_ ? since(running_since_) : 0.0}};
  if (!group_error_.empty()) group["error"] = group_error_;
  if (ping_stuck) group["error"] = "a heartbeat has waited " + std::to_string(static_cast<int>(since(*ping_since_))) + " s for the group";
  const bool ready = !shutdown_ && alive;
  json h = {{"status", shutdown_ ? "shutting_down" : alive ? "ok" : "group_unavailable"}, {"ready", ready},
            {"group", group}, {"group_size", info_.group_size},
            {"model", info_.model}, {"family", info_.family}, {"placement", info_.placement},
            {"builtin_model", info_.builtin_model}, {"queue_depth", queue_.size()},
            {"api_key_required", access_.requires_key()},
            {"sessions", open_sessions()}};
  HttpResponse out = json_response(ready ? 200 : 503, h);
  if (!ready) out.headers.emplace_back("Retry-After", std::to_string(config_.retry_after_s));
  return out;
}

HttpResponse ApiService::metrics_text() {
  std::map<std::string, double> gauges;
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t done = 0, failed = 0, cancelled = 0;
    for (const auto& [id, j] : jobs_) {
      done += j.state == JobState::kCompleted;
      failed += j.state == JobState::kFailed;
      cancelled += j.state == JobState::kCancelled;
    }
    gauges["ltx_videos_completed"] = static_cast<double>(done);
    gauges["ltx_videos_failed"] = static_cast<double>(failed);
    gauges["ltx_videos_cancelled"] = static_cast<double>(cancelled);
  }
  HttpResponse out;
  out.content_type = "text/plain; version=0.0.4";
  out.body = metrics_.render(gauges);
  return out;
}

HttpResponse ApiService::models() {
  // One group serves one model: the loaded one.
  json m = {{"id", info_.model}, {"object", "model"}, {"created", info_.model_created}, {"owned_by", "ltx-worker"},
            {"family", info_.family}, {"aliases", info_.model_aliases}, {"group_size", info_.group_size},
            {"audio", info_.geometry.makes_sound()}, {"streams", info_.geometry.streams}};
  if (info_.geometry.makes_sound()) {
    json pipelines = json::array({"one-stage"});
    for (const auto& v : info_.geometry.pipeline_variants) pipelines.push_back(v.name);
    m["audio_sample_rate"] = info_.geometry.audio_sample_rate;
    m["pipelines"] = pipelines;
  }
  return json_response(200, {{"object", "list"}, {"data", json::array({m})}});
}

// The OpenAI list: newest first unless order=asc, `limit` per page (default
// 20, 1..100), `after` an id of the previous page's last item.
HttpResponse ApiService::list_videos(const std::string& query) {
  int64_t limit = 20;
  if (auto v = query_value(query, "limit")) {
    char* end = nullptr;
    limit = std::strtoll(v->c_str(), &end, 10);
    if (v->empty() || end != v->c_str() + v->size() || limit < 1 || limit > 100) {
      return error(invalid_argument_error("limit must be an integer in [1, 100]"), "limit");
    }
  }
  const std::string order = query_value(query, "order").value_or("desc");
  if (order != "asc" && order != "desc") return error(invalid_argument_error("order must be asc or desc"), "order");
  const std::optional<std::string> after = query_value(query, "after");
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Job*> all;
  for (const auto& [id, j] : jobs_) all.push_back(&j);
  std::sort(all.begin(), all.end(), [&](const Job* a, const Job* b) {
    return order == "asc" ? a->order < b->order : a->order > b->order;
  });
  size_t start = 0;
  if (after) {
    auto it = std::find_if(all.begin(), all.end(), [&](const Job* j) { return j->id == *after; });
    if (it == all.end()) {
      return error(not_found_error("after: no video " + after->substr(0, 100) + " (it may have been deleted)"), "after");
    }
    start = static_cast<size_t>(it - all.begin()) + 1;
  }
  json data = json::array();
  for (size_t i = start; i < all.size() && static_cast<int64_t>(data.size()) < limit; ++i) data.push_back(job_json(*all[i]));
  const bool has_more = start + data.size() < all.size();
  json page = {{"object", "list"}, {"data", data}, {"has_more", has_more}, {"first_id", nullptr}, {"last_id", nullptr}};
  if (!data.empty()) {
    page["first_id"] = data.front()["id"];
    page["last_id"] = data.back()["id"];
  }
  return json_response(200, page);
}

HttpResponse ApiService::get_video(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return error(not_found_error("no video " + id), "id");
  return json_response(200, job_json(it->second));
}

HttpResponse ApiService::video_content(const std::string& id, const std::string& query) {
  const std::string variant = query_value(query, "variant").value_or("video");
  if (variant != "video" && variant != "thumbnail") {
    return error(invalid_argument_error("variant must be video or thumbnail, got '" + variant.substr(0, 40) + "'"),
                 "variant");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return error(not_found_error("no video " + id), "id");
  if (it->second.state != JobState::kCompleted) {
    return error(failed_precondition_error("video " + id + " is " + std::string(state_name(it->second.state)) +
                                           ", not completed"));
  }
  if (variant == "thumbnail") {
    HttpResponse out;
    out.content_type = "image/png";
    out.body = it->second.thumbnail_png;
    out.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + id + ".png\"");
    return out;
  }
  HttpResponse out = mp4_response(it->second.mp4);
  out.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + id + ".mp4\"");
  return out;
}

HttpResponse ApiService::list_streams() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const Stream*> all;
  for (const auto& [id, s] : streams_) all.push_back(&s);
  std::sort(all.begin(), all.end(), [](const Stream* a, const Stream* b) { return a->order < b->order; });
  json data = json::array();
  for (const Stream* s : all) data.push_back(stream_json(*s));
  return json_response(200, {{"object", "list"}, {"data", data}});
}

HttpResponse ApiService::get_stream(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return error(not_found_error("no stream " + id), "id");
  return json_response(200, stream_json(it->second));
}

// ---- admission and the queue (mu_ held) ----

Status ApiService::admit_work() const { return policy_.admit(shutdown_, queue_.size()); }

Status ApiService::admit_client(const std::string& client) const {
  if (config_.max_client_work <= 0) return Status();
  int64_t busy = 0;
  for (const auto& [id, j] : jobs_) busy += j.client == client && (j.state == JobState::kQueued || j.state == JobState::kInProgress);
  for (const auto& [id, s] : streams_) busy += s.client == client ? s.in_flight : 0;
  if (busy < config_.max_client_work) return Status();
  const std::string who = access_.requires_key() ? "this API key" : "the client " + client;
  return resource_exhausted_error(who + " has " + std::to_string(busy) + " requests queued or running, its limit " +
                                  "(--max-client-work " + std::to_string(config_.max_client_work) +
                                  "); retry when one has finished");
}

uint64_t ApiService::enqueue(const std::string& owner, Work work, std::shared_ptr<ResponseChannel> reply) {
  work.serial = next_serial_++;
  work.queued_at = steady::now();
  const uint64_t serial = work.serial;
  if (reply) replies_[serial] = std::move(reply);
  queue_.push(owner, std::move(work));
  update_gauges();
  cv_.notify_one();
  return serial;
}

void ApiService::answer(uint64_t serial, HttpResponse response) {
  auto it = replies_.find(serial);
  if (it == replies_.end()) return;
  it->second->finish(std::move(response));
  replies_.erase(it);
}

void ApiService::answer_error(uint64_t serial, const Status& status) { answer(serial, error(status)); }

size_t ApiService::open_sessions() const {
  size_t n = 0;
  for (const auto& [id, s] : streams_) n += s.state != StreamState::kFailed;
  return n;
}

void ApiService::update_gauges() {
  metrics_.set_gauge("ltx_queue_depth", static_cast<double>(queue_.size()), "Work items waiting.");
  metrics_.set_gauge("ltx_active_sessions", static_cast<double>(open_sessions()), "Open streaming sessions.");
  metrics_.set_gauge("ltx_group_size", info_.group_size, "Ranks in the serving group.");
}

// ---- video jobs ----

HttpResponse ApiService::create_video(const HttpRequest& r, bool wait) {
  auto parsed = parse_video_create(r.body, r.header("content-type"), info_.geometry, served_);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error(*e);
  auto& create = std::get<VideoCreateRequest>(parsed);
  auto& req = create.request;
  const int64_t tokens = info_.geometry.grid(req.width, req.height, req.num_frames).num_tokens();
  if (auto e = check_size(req.num_steps, tokens, req.width * req.height * req.num_frames, "num_frames",
                          "width * height * num_frames")) {
    return error(*e);
  }
  std::lock_guard<std::mutex> lock(mu_);
  Status admitted = admit_work();
  if (admitted.ok()) admitted = admit_client(access_.client_of(r));
  if (!admitted.ok()) return error(admitted);
  Job job;
  job.client = access_.client_of(r);
  job.id = random_id("vid_");
  job.order = next_order_++;
  job.request = req;
  job.seconds_asked = create.seconds;
  job.steps = info_.geometry.steps_of(req.pipeline, req.num_steps);
  job.created_unix = unix_now();
  job.created = steady::now();
  Work w;
  w.kind = Work::Kind::kVideo;
  w.id = job.id;
  w.params = req;
  job.cancel = w.cancel;
  std::shared_ptr<ResponseChannel> waiter;
  if (wait) {
    waiter = std::make_shared<ResponseChannel>();
    waiter->on_client_gone([this, id = job.id] { waiter_left(id); });
    job.waiters.push_back(waiter);
  }
  const std::string id = job.id;
  jobs_.emplace(id, std::move(job));
  events_.open(video_topic(id));
  enqueue(kVideoLane, std::move(w), nullptr);
  const Job& j = jobs_.at(id);
  const json created = job_json(j);
  events_.publish(video_topic(id), "queued",
                  json({{"id", id}, {"status", "queued"}, {"queue_position", created.value("queue_position", 0)}}).dump());
  LTX_LOG(kInfo) << "video " << id << " queued (" << req.width << "x" << req.height << ", " << req.num_frames
                 << " frames, " << req.num_steps << " steps)";
  if (wait) {
    HttpResponse later;
    later.later = waiter;
    return later;
  }
  return json_response(202, created);
}

namespace {

// "cancelled ..." followed by why, when something other than a DELETE asked.
std::string cancel_message(const std::string& what, const std::string& reason) {
  return reason.empty() ? what : what + ": " + reason;
}

}  // namespace

ApiService::CancelOutcome ApiService::cancel_video(Job& j) {
  const std::string id = j.id;
  if (j.state == JobState::kQueued) {
    queue_.remove_if([&](const Work& w) { return w.kind == Work::Kind::kVideo && w.id == id; });
    cancel_job(j, "cancelled", cancel_message("cancelled before it started", j.cancel_reason), false);
    return CancelOutcome::kCancelled;
  }
  if (j.state != JobState::kInProgress) return CancelOutcome::kNotActive;
  const bool running = running_ && running_->id == id && runs_video_steps(running_->kind);
  if (!running) {
    // Paused between slices: its queued slice goes, and the group frees it.
    queue_.remove_if([&](const Work& w) { return w.kind == Work::Kind::kVideoSlice && w.id == id; });
    cancel_job(j, "cancelled",
               cancel_message("cancelled after step " + std::to_string(j.step) + " of " + std::to_string(j.steps),
                              j.cancel_reason),
               true);
    return CancelOutcome::kCancelled;
  }
  j.cancel->store(true);  // every rank stops at the next step boundary
  return CancelOutcome::kStopping;
}

void ApiService::waiter_left(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end() || it->second.cancel->load()) return;
  Job& j = it->second;
  if (j.state != JobState::kQueued && j.state != JobState::kInProgress) return;
  j.cancel_reason = "the client waiting for it disconnected";
  LTX_LOG(kInfo) << "video " << id << ": " << j.cancel_reason << "; cancelling it";
  cancel_video(j);
}

HttpResponse ApiService::delete_video(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(id);
  if (it == jobs_.end()) return error(not_found_error("no video " + id), "id");
  Job& j = it->second;
  switch (cancel_video(j)) {
    case CancelOutcome::kCancelled:
      return json_response(200, job_json(j));
    case CancelOutcome::kStopping: {
      json out = job_json(j);
      out["job_status"] = "cancelling";
      return json_response(202, out);
    }
    case CancelOutcome::kNotActive:
      break;
  }
  json out = {{"id", id}, {"object", "video.deleted"}, {"deleted", true}};
  events_.erase(video_topic(id));
  jobs_.erase(it);
  return json_response(200, out);
}

void ApiService::cancel_job(Job& j, const std::string& code, const std::string& message, bool paused_on_group) {
  if (paused_on_group) {
    Work drop;
    drop.kind = Work::Kind::kVideoDrop;
    drop.id = j.id;
    queue_.push_front(kVideoLane, std::move(drop));
    cv_.notify_one();
  }
  j.state = JobState::kCancelled;
  j.error_code = code;
  j.error_message = message;
  finish_job(j);
  update_gauges();
}

void ApiService::finish_job(Job& j) {
  j.finished_order = ++finished_count_;
  j.ended_unix = unix_now();
  if (shutdown_ && j.state == JobState::kCancelled) {
    // Stopped by the drain, not by its client: its waiters get a 503 to retry elsewhere.
    j.error_code = "unavailable";
    if (j.error_message.find("shutting down") == std::string::npos) j.error_message += " (the worker is shutting down)";
  }
  json ev = {{"id", j.id}, {"status", state_name(j.state)}};
  if (j.state == JobState::kCompleted) {
    ev["seconds"] = j.total_s;
    ev["content_url"] = "/v1/videos/" + j.id + "/content";
  } else {
    ev["error"] = {{"code", j.error_code}, {"message", j.error_message}};
  }
  events_.publish(video_topic(j.id), state_name(j.state), ev.dump());
  events_.close(video_topic(j.id));
  for (auto& w : j.waiters) {
    if (j.state == JobState::kCompleted) {
      HttpResponse r = mp4_response(j.mp4);
      r.headers.emplace_back("X-Video-Id", j.id);
      r.headers.emplace_back("X-Video-Seconds", std::to_string(j.total_s));  // on the group
      r.headers.emplace_back("X-Queue-Seconds", std::to_string(j.queue_s));
      w->finish(std::move(r));
    } else {
      Status s = j.error_code == "unavailable" ? unavailable_error("video " + j.id + ": " + j.error_message)
                 : j.state == JobState::kCancelled    ? cancelled_error("video " + j.id + ": " + j.error_message)
                                              : internal_error("video " + j.id + " failed: " + j.error_message);
      HttpResponse r = error(s);
      r.headers.emplace_back("X-Video-Id", j.id);
      w->finish(std::move(r));
    }
  }
  j.waiters.clear();
  prune_jobs();
}

void ApiService::prune_jobs() {
  size_t finished = 0;
  for (const auto& [id, j] : jobs_) finished += j.finished_order > 0;
  while (finished > config_.max_finished_jobs) {
    auto oldest = jobs_.end();
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      if (it->second.finished_order > 0 && (oldest == jobs_.end() || it->second.finished_order < oldest->second.finished_order)) {
        oldest = it;
      }
    }
    events_.erase(video_topic(oldest->first));
    jobs_.erase(oldest);
    --finished;
  }
}

// The OpenAI video object (id, object, model, status, progress, created_at,
// completed_at, size, seconds, error, ...) and the project's richer fields:
// job_status (cancelled stays cancelled there; OpenAI's status says failed),
// progress_steps, request, timings, urls.
json ApiService::job_json(const Job& j) const {
  const auto& q = j.request;
  const bool ended = j.state == JobState::kCompleted || j.state == JobState::kFailed || j.state == JobState::kCancelled;
  const char* status = j.state == JobState::kCancelled ? "failed" : state_name(j.state);
  const int64_t percent = j.state == JobState::kCompleted ? 100
                          : j.steps > 0 ? std::min<int64_t>(99, j.step * 100 / j.steps)
                                        : 0;
  char duration[32];
  std::snprintf(duration, sizeof duration, "%.4g", q.fps > 0 ? static_cast<double>(q.num_frames) / q.fps : 0.0);
  json out = {{"id", j.id},
              {"object", "video"},
              {"model", info_.model},
              {"status", status},
              {"job_status", state_name(j.state)},
              {"progress", percent},
              {"progress_steps", {{"step", j.step}, {"steps", j.steps}}},
              {"created_at", static_cast<int64_t>(j.created_unix)},
              {"completed_at", ended ? json(static_cast<int64_t>(j.ended_unix)) : json(nullptr)},
              {"expires_at", nullptr},
              {"prompt", q.prompt},
              {"size", std::to_string(q.width) + "x" + std::to_string(q.height)},
              {"seconds", j.seconds_asked.empty() ? std::string(duration) : j.seconds_asked},
              {"num_frames", q.num_frames},
              {"duration_seconds", q.fps > 0 ? static_cast<double>(q.num_frames) / q.fps : 0.0},
              {"remixed_from_video_id", nullptr},
              {"error", nullptr},
              {"request", params_json(q, pipeline::kJobParam, info_.geometry.makes_sound())},
              {"timings", {{"queue_seconds", j.queue_s}, {"denoise_seconds", j.denoise_s}, {"decode_seconds", j.decode_s},
                           {"encode_seconds", j.encode_s}, {"total_seconds", j.total_s}}},
              {"events_url", "/v1/videos/" + j.id + "/events"}};
  if (j.state == JobState::kQueued) {
    auto pos = queue_.position([&](const Work& w) { return w.kind == Work::Kind::kVideo && w.id == j.id; });
    out["queue_position"] = pos ? static_cast<int64_t>(*pos) : 0;
  }
  if (j.state == JobState::kCompleted) {
    out["content_url"] = "/v1/videos/" + j.id + "/content";
    out["thumbnail_url"] = "/v1/videos/" + j.id + "/content?variant=thumbnail";
    out["frames"] = j.frames;
    out["audio"] = j.has_audio;
  }
  if (j.state == JobState::kFailed || j.state == JobState::kCancelled) {
    out["error"] = {{"code", j.error_code}, {"message", j.error_message}};
  }
  return out;
}

// ---- streams ----

HttpResponse ApiService::create_stream(const HttpRequest& r) {
  auto parsed = parse_stream_request(r.body, info_.state_model, info_.blob_store);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error(*e);
  auto& req = std::get<StreamCreateRequest>(parsed);
  const auto& s = req.settings;
  const int64_t side = info_.geometry.spatial_compression, t = info_.geometry.temporal_compression;
  if (auto e = check_size(s.num_steps, s.chunk_frames * (s.height / side) * (s.width / side),
                          s.width * s.height * t * s.chunk_frames, "chunk_frames",
                          "width * height * " + std::to_string(t) + " * chunk_frames")) {
    return error(*e);
  }
  std::lock_guard<std::mutex> lock(mu_);
  Status admitted = admit_work();
  if (admitted.ok()) admitted = admit_client(access_.client_of(r));
  if (!admitted.ok()) return error(admitted);
  if (open_sessions() >= config_.max_sessions) {
    return error(resource_exhausted_error("the server holds its limit of " + std::to_string(config_.max_sessions) +
                                          " streaming sessions; delete one or retry later"));
  }
  const std::string id = add_stream(random_id("str_"), access_.client_of(r), req);
  LTX_LOG(kInfo) << "stream " << id << (req.state ? " resumed after chunk " + std::to_string(req.state->last_chunk) : " created");
  HttpResponse out = json_response(201, stream_json(streams_.at(id)));
  out.headers.emplace_back("Location", "/v1/streams/" + id);
  return out;
}

Status ApiService::restore_stream(const std::string& id, StreamCreateRequest req) {
  if (req.state == nullptr) return invalid_argument_error("stream " + id + ": no state to restore");
  std::lock_guard<std::mutex> lock(mu_);
  if (streams_.count(id)) return failed_precondition_error("stream " + id + " exists already");
  add_stream(id, "", req);
  LTX_LOG(kInfo) << "stream " << id << " restored after chunk " << req.state->last_chunk;
  return Status();
}

std::string ApiService::add_stream(const std::string& id, const std::string& client, const StreamCreateRequest& req) {
  Stream st;
  st.id = id;
  st.order = next_order_++;
  st.client = client;
  st.settings = req.settings;
  st.imported = req.state != nullptr;
  st.created_unix = unix_now();
  st.created = st.last_used = steady::now();
  if (req.state) st.accepted = st.done = req.state->last_chunk;
  Work w;
  w.kind = req.state ? Work::Kind::kImportStream : Work::Kind::kOpenStream;
  w.id = id;
  w.params = req.settings;
  w.state = req.state;
  w.cancel = st.cancel;
  st.in_flight = 1;
  streams_.emplace(id, std::move(st));
  events_.open(stream_topic(id));
  events_.publish(stream_topic(id), "created", json({{"id", id}, {"resumed", req.state != nullptr}}).dump());
  enqueue(id, std::move(w), nullptr);
  update_gauges();
  return id;
}

HttpResponse ApiService::request_chunk(const std::string& id, const HttpRequest& r) {
  auto parsed = parse_chunk_request(r.body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return error(*e);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return error(not_found_error("no stream " + id), "id");
  Stream& s = it->second;
  if (s.state == StreamState::kFailed) return error(failed_precondition_error("stream " + id + " failed: " + s.error_message));
  const int64_t index = std::get<std::optional<int64_t>>(parsed).value_or(s.accepted + 1);
  s.last_used = steady::now();
  if (index == s.done && index >= 0) {
    // A repeat of the last chunk: rank 0 still holds it; the group is not involved.
    if (!s.can_repeat) {
      return error(failed_precondition_error("stream " + id + ": chunk " + std::to_string(index) +
                                             " was made before the resume and cannot be repeated; ask for chunk " +
                                             std::to_string(index + 1)),
                   "index");
    }
    HttpResponse out = mp4_response(s.last_mp4);
    out.headers = {{"X-Stream-Id", id}, {"X-Chunk-Index", std::to_string(index)},
                   {"X-First-Frame", std::to_string(s.last_first_frame)}, {"X-Frame-Count", std::to_string(s.last_frames)},
                   {"X-Repeated", "true"}};
    return out;
  }
  if (index != s.accepted + 1) {
    std::string msg = "stream " + id + ": chunk " + std::to_string(index) + " requested; the next chunk is " +
                      std::to_string(s.accepted + 1);
    if (s.accepted >= 0 && s.accepted == s.done) msg += " (or " + std::to_string(s.done) + " to repeat the last one)";
    if (s.accepted > s.done) msg += " (chunks up to " + std::to_string(s.accepted) + " are queued)";
    return error(failed_precondition_error(msg), "index");
  }
  Status admitted = admit_work();
  if (admitted.ok()) admitted = admit_client(access_.client_of(r));
  if (!admitted.ok()) return error(admitted);
  s.accepted = index;
  ++s.in_flight;
  Work w;
  w.kind = Work::Kind::kChunk;
  w.id = id;
  w.index = index;
  w.params = s.settings;
  w.cancel = s.cancel;
  auto reply = std::make_shared<ResponseChannel>();
  enqueue(id, std::move(w), reply);
  events_.publish(stream_topic(id), "chunk_queued", json({{"index", index}}).dump());
  HttpResponse later;
  later.later = reply;
  return later;
}

HttpResponse ApiService::export_state(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return error(not_found_error("no stream " + id), "id");
  Stream& s = it->second;
  if (s.state == StreamState::kFailed) return error(failed_precondition_error("stream " + id + " failed: " + s.error_message));
  if (s.accepted < 0) {
    return error(failed_precondition_error("stream " + id + " has no chunk yet; its state exists after chunk 0"));
  }
  Status admitted = admit_work();
  if (!admitted.ok()) return error(admitted);
  s.last_used = steady::now();
  ++s.in_flight;
  Work w;
  w.kind = Work::Kind::kExportState;
  w.id = id;
  w.params = s.settings;
  w.cancel = s.cancel;
  auto reply = std::make_shared<ResponseChannel>();
  enqueue(id, std::move(w), reply);  // after the stream's queued chunks: the state includes them
  HttpResponse later;
  later.later = reply;
  return later;
}

void ApiService::drop_stream_work(const std::string& id, const Status& why) {
  auto dropped = queue_.remove_if([&](const Work& w) { return w.id == id && w.kind != Work::Kind::kVideo; });
  for (const auto& w : dropped) answer_error(w.serial, why);
  auto it = streams_.find(id);
  if (it != streams_.end()) it->second.in_flight -= static_cast<int64_t>(dropped.size());
}

void ApiService::fail_stream(Stream& s, const std::string& why) {
  s.state = StreamState::kFailed;
  s.error_message = why;
  drop_stream_work(s.id, failed_precondition_error("stream " + s.id + " " + why));
  events_.publish(stream_topic(s.id), "failed", json({{"id", s.id}, {"error", why}}).dump());
  if (s.on_group) {
    // Free whatever the group holds of it (every rank takes part even if its
    // own table has no such session).
    Work w;
    w.kind = Work::Kind::kCloseStream;
    w.id = s.id;
    enqueue(s.id, std::move(w), nullptr);
    s.on_group = false;
  }
}

void ApiService::close_stream(Stream& s, const std::string& reason) {
  const std::string id = s.id;
  s.cancel->store(true);  // a running chunk of it stops at the next step
  drop_stream_work(id, not_found_error("stream " + id + " was " + reason));
  const bool on_group = s.on_group;  // a failed stream was already freed on the group
  events_.publish(stream_topic(id), "closed", json({{"id", id}, {"reason", reason}}).dump());
  events_.erase(stream_topic(id));
  streams_.erase(id);
  if (on_group) {
    Work w;
    w.kind = Work::Kind::kCloseStream;
    w.id = id;
    enqueue(id, std::move(w), nullptr);  // cleanup is never refused for queue space
  }
  update_gauges();
}

HttpResponse ApiService::delete_stream(const std::string& id, const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return error(not_found_error("no stream " + id), "id");
  close_stream(it->second, reason);
  LTX_LOG(kInfo) << "stream " << id << " " << reason;
  return json_response(200, {{"id", id}, {"object", "stream"}, {"deleted", true}});
}

json ApiService::stream_json(const Stream& s) const {
  const auto& p = s.settings;
  json out = {{"id", s.id},
              {"object", "stream"},
              {"status", state_name(s.state)},
              {"created_at", s.created_unix},
              {"resumed", s.imported},
              {"last_chunk", s.done},
              {"next_chunk", s.accepted + 1},
              {"queued_chunks", s.accepted - s.done},
              {"frames_per_chunk", info_.geometry.temporal_compression * p.chunk_frames},
              {"settings", params_json(p, pipeline::kStreamParam, info_.geometry.makes_sound())},
              {"chunks_url", "/v1/streams/" + s.id + "/chunks"},
              {"events_url", "/v1/streams/" + s.id + "/events"},
              {"state_url", "/v1/streams/" + s.id + "/state"}};
  if (s.state == StreamState::kFailed) out["error"] = {{"message", s.error_message}};
  return out;
}

// ---- the inference thread ----

std::optional<Work> ApiService::next_work(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return shutdown_ || !queue_.empty(); });
  if (shutdown_) return std::nullopt;
  std::optional<Work> w = queue_.pop();
  if (!w) return std::nullopt;
  update_gauges();
  metrics_.observe(Metrics::Series::kQueueWaitSeconds, since(w->queued_at));
  running_ = *w;
  running_since_ = steady::now();
  switch (w->kind) {
    case Work::Kind::kVideo: {
      Job& j = jobs_.at(w->id);
      j.state = JobState::kInProgress;
      j.queue_s = since(w->queued_at);
      events_.publish(video_topic(j.id), "in_progress", json({{"id", j.id}, {"queue_seconds", j.queue_s}}).dump());
      break;
    }
    case Work::Kind::kOpenStream:
    case Work::Kind::kImportStream:
      if (auto it = streams_.find(w->id); it != streams_.end()) it->second.on_group = true;
      break;
    case Work::Kind::kChunk:
      events_.publish(stream_topic(w->id), "chunk_started", json({{"index", w->index}}).dump());
      break;
    default: break;
  }
  return w;
}

void ApiService::on_step(const Work& w, int64_t step, int64_t steps, double seconds) {
  metrics_.observe(Metrics::Series::kStepSeconds, seconds);
  std::lock_guard<std::mutex> lock(mu_);
  if (runs_video_steps(w.kind)) {
    auto it = jobs_.find(w.id);
    if (it == jobs_.end()) return;
    it->second.step = step + 1;
    it->second.steps = steps;
    events_.publish(video_topic(w.id), "step", json({{"step", step + 1}, {"steps", steps}, {"seconds", seconds}}).dump());
    if (step + 1 == steps) events_.publish(video_topic(w.id), "decoding", json({{"id", w.id}}).dump());
  } else if (w.kind == Work::Kind::kChunk) {
    events_.publish(stream_topic(w.id), "step",
                    json({{"index", w.index}, {"step", step + 1}, {"steps", steps}, {"seconds", seconds}}).dump());
    if (step + 1 == steps) events_.publish(stream_topic(w.id), "decoding", json({{"index", w.index}}).dump());
  }
}

void ApiService::on_stage(const Work& w, const std::string& stage) {
  if (!runs_video_steps(w.kind)) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (jobs_.count(w.id) == 0) return;
  events_.publish(video_topic(w.id), "stage", json({{"id", w.id}, {"stage", stage}}).dump());
}

void ApiService::on_done(const Work& w, WorkResult res) {
  std::lock_guard<std::mutex> lock(mu_);
  running_.reset();
  last_contact_ = steady::now();  // the group answered
  if (shutdown_ && res.status.code() == StatusCode::kCancelled && !runs_video_steps(w.kind)) {
    // Stopped by the drain, not by its client: a 503 to retry elsewhere (a
    // video job stays cancelled; finish_job answers its waiters 503).
    res.status = unavailable_error("the worker is shutting down; " + res.status.message());
  }
  for (size_t r = 0; r < res.kv_bytes_per_rank.size(); ++r) {
    metrics_.set_gauge("ltx_kv_cache_bytes{rank=\"" + std::to_string(r) + "\"}", static_cast<double>(res.kv_bytes_per_rank[r]),
                       "KV-cache bytes held on each rank, all sessions.");
  }
  metrics_.set_gauge("ltx_prompt_cache_hits", static_cast<double>(res.prompt_cache_hits), "Prompt-encoding cache hits (rank 0).");
  metrics_.set_gauge("ltx_prompt_cache_misses", static_cast<double>(res.prompt_cache_misses), "Prompt-encoding cache misses (rank 0).");
  metrics_.set_gauge("ltx_group_sessions", static_cast<double>(res.sessions), "Sessions the group holds.");
  const bool ok = res.status.ok();
  if (!ok) {
    LTX_LOG(kWarn) << work_kind_name(w.kind) << " " << w.id << ": " << res.status.to_string();
  }

  if (w.kind == Work::Kind::kVideoDrop) return;
  if (runs_video_steps(w.kind)) {
    auto it = jobs_.find(w.id);
    if (it == jobs_.end()) return;
    Job& j = it->second;
    j.total_s += res.seconds;
    if (j.state != JobState::kInProgress) return;  // cancelled while it ran its last slice's bookkeeping
    if (ok && !res.finished && j.cancel->load()) {
      // Cancelled just as it paused: free it on the group instead of resuming.
      cancel_job(j, "cancelled",
                 cancel_message("cancelled after step " + std::to_string(res.next_step) + " of " +
                                    std::to_string(j.steps),
                                j.cancel_reason),
                 true);
      return;
    }
    if (ok && !res.finished) {
      // It yielded to waiting stream work: it resumes first in the video lane
      // once the other lanes had their turn.
      j.step = res.next_step;
      Work next = w;
      next.kind = Work::Kind::kVideoSlice;
      next.index = res.next_step;
      next.serial = next_serial_++;
      next.queued_at = steady::now();
      queue_.push_front(kVideoLane, std::move(next));
      events_.publish(video_topic(j.id), "paused", json({{"id", j.id}, {"next_step", res.next_step}}).dump());
      cv_.notify_one();
      update_gauges();
      return;
    }
    j.denoise_s = res.denoise_seconds;
    j.decode_s = res.decode_seconds;
    j.encode_s = res.encode_seconds;
    if (ok) {
      j.state = JobState::kCompleted;
      j.step = j.steps;
      j.mp4 = std::move(res.mp4);
      j.thumbnail_png = std::move(res.thumbnail_png);
      j.frames = res.frame_count;
      j.has_audio = res.has_audio;
      metrics_.observe(Metrics::Series::kJobSeconds, res.seconds);
    } else {
      const bool cancelled = res.status.code() == StatusCode::kCancelled;
      j.state = cancelled ? JobState::kCancelled : JobState::kFailed;
      j.error_code = api_error_from_status(res.status).code;
      const std::string why = client_message(res.status.message());
      j.error_message = cancelled ? cancel_message(why, j.cancel_reason) : why;
    }
    finish_job(j);
    update_gauges();
    return;
  }

  if (w.kind == Work::Kind::kCloseStream) {  // cleanup of a deleted or failed stream: nobody waits on it
    update_gauges();
    return;
  }
  auto it = streams_.find(w.id);
  if (it == streams_.end()) {
    // Deleted while it ran: the client of a chunk or export still gets an answer.
    answer_error(w.serial, not_found_error("stream " + w.id + " was deleted"));
    return;
  }
  Stream& s = it->second;
  --s.in_flight;
  s.last_used = steady::now();
  const std::string topic = stream_topic(w.id);
  switch (w.kind) {
    case Work::Kind::kOpenStream:
    case Work::Kind::kImportStream:
      if (ok) {
        s.state = StreamState::kReady;
        events_.publish(topic, "ready", json({{"id", s.id}, {"next_chunk", s.accepted + 1}}).dump());
      } else {
        fail_stream(s, "failed to open: " + client_message(res.status.message()));
      }
      break;
    case Work::Kind::kChunk:
      if (ok) {
        s.done = w.index;
        s.can_repeat = true;
        s.last_mp4 = res.mp4;
        s.last_first_frame = res.first_frame;
        s.last_frames = res.frame_count;
        metrics_.observe(Metrics::Series::kChunkSeconds, res.seconds);
        if (!s.first_chunk_seen) {
          s.first_chunk_seen = true;
          if (!s.imported) metrics_.observe(Metrics::Series::kFirstChunkSeconds, since(s.created));
        }
        json ev = {{"index", w.index}, {"first_frame", res.first_frame}, {"frames", res.frame_count},
                   {"audio", res.has_audio}, {"seconds", res.seconds}};
        events_.publish(topic, "chunk_ready", ev.dump());
        HttpResponse out = mp4_response(std::move(res.mp4));
        out.headers = {{"X-Stream-Id", s.id}, {"X-Chunk-Index", std::to_string(w.index)},
                       {"X-First-Frame", std::to_string(res.first_frame)},
                       {"X-Frame-Count", std::to_string(res.frame_count)}, {"X-Repeated", "false"},
                       {"X-Chunk-Seconds", std::to_string(res.seconds)}};
        answer(w.serial, std::move(out));
      } else {
        answer_error(w.serial, res.status);
        s.accepted = s.done;
        drop_stream_work(s.id, failed_precondition_error("stream " + s.id + ": chunk " + std::to_string(w.index) +
                                                         " failed, so later chunks were dropped: " + client_message(res.status.message())));
        events_.publish(topic, "chunk_failed", json({{"index", w.index}, {"error", client_message(res.status.message())}}).dump());
        // These leave the session as it was on every rank; anything else may
        // have left the ranks apart, so the stream ends there.
        const StatusCode code = res.status.code();
        if (code != StatusCode::kCancelled && code != StatusCode::kFailedPrecondition &&
            code != StatusCode::kNotFound && code != StatusCode::kResourceExhausted) {
          fail_stream(s, "chunk " + std::to_string(w.index) + " failed: " + client_message(res.status.message()));
        }
      }
      break;
    case Work::Kind::kExportState:
      if (ok) {
        HttpResponse out;
        out.body = std::move(res.state_json);
        out.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + s.id + ".state.json\"");
        answer(w.serial, std::move(out));
      } else {
        answer_error(w.serial, res.status);
      }
      break;
    default: break;
  }
  update_gauges();
}

bool ApiService::should_yield() const {
  std::lock_guard<std::mutex> lock(mu_);
  const bool job_running = running_ && runs_video_steps(running_->kind);
  return policy_.should_yield(job_running, job_running ? since(running_since_) : 0.0,
                              queue_.has_other_than(kVideoLane));
}

void ApiService::tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const auto now = steady::now();
  std::vector<std::string> idle;
  for (const auto& [id, s] : streams_) {
    if (s.in_flight == 0 && now - s.last_used > std::chrono::seconds(config_.session_idle_s)) idle.push_back(id);
  }
  for (const auto& id : idle) {
    LTX_LOG(kInfo) << "stream " << id << " closed after " << config_.session_idle_s << " s idle";
    close_stream(streams_.at(id), "closed after " + std::to_string(config_.session_idle_s) + " s idle");
  }
  if (now - last_ping_ > std::chrono::seconds(15)) {
    last_ping_ = now;
    events_.ping();
  }
  if (info_.blob_store != nullptr && now - last_prune_ > std::chrono::seconds(30)) {
    last_prune_ = now;
    const auto usage = info_.blob_store->prune(config_.state_max_bytes, config_.state_max_age_s);
    if (usage.pruned_files > 0) {
      LTX_LOG(kInfo) << "blob store: removed " << usage.pruned_files << " blob(s), " << usage.pruned_bytes
                     << " bytes (retention: " << config_.state_max_bytes << " bytes, " << config_.state_max_age_s << " s)";
    }
    blobs_pruned_ += static_cast<double>(usage.pruned_files);
    metrics_.set_gauge("ltx_state_blob_bytes", static_cast<double>(usage.bytes), "Bytes in the state blob store.");
    metrics_.set_gauge("ltx_state_blob_files", static_cast<double>(usage.files), "Blobs in the state blob store.");
    metrics_.set_gauge("ltx_state_blobs_pruned", blobs_pruned_, "Blobs removed by retention since start.");
  }
}

void ApiService::shutdown() {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutdown_) return;
  shutdown_ = true;
  if (running_) {
    running_->cancel->store(true);
    // Its clients hear now, not when the group has stopped it: the group may
    // be gone (a dead rank makes mpirun end the others within seconds).
    const Status going = unavailable_error("the worker is shutting down; retry");
    answer_error(running_->serial, going);
    if (runs_video_steps(running_->kind)) {
      auto it = jobs_.find(running_->id);
      if (it != jobs_.end()) {
        for (auto& waiter : it->second.waiters) {
          HttpResponse r = error(unavailable_error("video " + it->first + ": the worker is shutting down; retry"));
          r.headers.emplace_back("X-Video-Id", it->first);
          waiter->finish(std::move(r));
        }
        it->second.waiters.clear();
      }
    }
  }
  auto dropped = queue_.remove_if([](const Work&) { return true; });
  for (const auto& w : dropped) {
    answer_error(w.serial, unavailable_error("the worker is shutting down"));
    if (runs_video_steps(w.kind)) cancel_job(jobs_.at(w.id), "unavailable", "the worker shut down before it finished", false);
  }
  events_.close_all();
  update_gauges();
  cv_.notify_all();
}

bool ApiService::shutting_down() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shutdown_;
}

}  // namespace ltx::service
