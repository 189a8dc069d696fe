// ApiService: the HTTP API of rank 0 (video jobs, streaming sessions, SSE,
// health, metrics, the web page) and the fair queue between the HTTP threads
// and the inference thread.
//
// HTTP threads call handle(): parse and validate (every request is checked
// here, on rank 0, before any collective starts), enqueue, and answer from
// the tables; work whose answer comes later (a chunk, a state export, a
// synchronous video) gets a ResponseChannel filled by the inference thread.
// The inference thread calls next_work(), on_step() and on_done(), and tick()
// when idle (idle-session sweep, SSE keep-alives). One mutex guards the
// tables; no call blocks on the engine. JSON lives here and in the schemas:
// the engine only sees Work.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "pipeline/runtime/continuation_state.h"
#include "service/access_policy.h"
#include "service/api_error.h"
#include "service/event_hub.h"
#include "service/fair_queue.h"
#include "service/http_server.h"
#include "service/metrics.h"
#include "service/route_table.h"
#include "service/scheduling_policy.h"
#include "service/service_config.h"
#include "service/stream_request_schema.h"
#include "service/video_request_schema.h"
#include "service/work.h"

namespace ltx::service {

// A video job's life: queued -> in_progress (possibly paused and resumed
// between slices) -> completed | failed | cancelled (a queued job can be
// cancelled at once). The names are the API's "status" values.
enum class JobState { kQueued, kInProgress, kCompleted, kFailed, kCancelled };
// A stream's: opening -> ready (chunks) | failed.
enum class StreamState { kOpening, kReady, kFailed };
const char* state_name(JobState state);
const char* state_name(StreamState state);

struct ServiceInfo {
  std::string model;      // the model's name as clients see it (never a local path)
  std::vector<std::string> model_aliases;  // other names requests may give as "model"
  int64_t model_created = 0;               // Unix seconds: when the model's files were made (/v1/models "created")
  std::string family;     // its family, e.g. "ltx-video"
  std::string placement;  // where its components run, e.g. "text cpu fp32, denoiser cpu fp32, decoder cpu fp32"
  pipeline::ModelGeometry geometry;  // compression factors the request sizes follow
  int group_size = 1;
  bool builtin_model = false;  // the random-weight stand-in (its videos are noise)
  pipeline::StateModelInfo state_model;
  const pipeline::BlobStore* blob_store = nullptr;  // for resuming states with blob tensors
  // The model's own checks of a step count for a token count (its scheduler),
  // so a request the group would refuse is a 422 here, before any collective.
  // Called on HTTP threads: must be thread-safe. Optional.
  std::function<Status(int64_t steps, int64_t tokens)> check_steps;
};

class ApiService {
 public:
  ApiService(ServiceInfo info, ServiceConfig config);

  // HTTP threads.
  HttpResponse handle(const HttpRequest& request);

  // At start, before serving: a stream an earlier run of the group persisted
  // (GroupEngineOptions::sessions_dir), resumed under its own id; its import
  // is queued first, so its next chunk is the one it would have made.
  Status restore_stream(const std::string& id, StreamCreateRequest request);

  // The inference thread: the next work item in round-robin order, or nullopt
  // when `timeout` passes or shutdown() was called.
  std::optional<Work> next_work(std::chrono::milliseconds timeout);
  void on_step(const Work& work, int64_t step, int64_t steps, double seconds);
  // A stage of a video job begins: a "stage" event ("denoise", "stage1",
  // "upsample", "stage2", "video_decode", "audio_decode").
  void on_stage(const Work& work, const std::string& stage);
  void on_done(const Work& work, WorkResult result);
  void tick();
  // The inference thread's heartbeat through the group (when idle): a ping
  // begins, and ends with its verdict. /healthz reports the group's liveness
  // from these and from the running item.
  void on_heartbeat_start();
  void on_heartbeat(const Status& verdict);
  // True when the group has been idle long enough to need a heartbeat.
  bool heartbeat_due() const;
  // The inference thread, after each step of a video job: true when the job
  // has run job_slice_s since it (re)started and a stream's work is waiting,
  // so the job pauses and the stream goes first (round-robin at step level).
  bool should_yield() const;

  // Stops taking work: queued items are cancelled (their clients answered),
  // the running one is asked to stop, event streams end. Any thread.
  void shutdown();
  bool shutting_down() const;
  Metrics& metrics() { return metrics_; }

 private:
  struct Job {
    std::string id;
    uint64_t order = 0;  // creation order (lists are in it)
    std::string client;  // AccessPolicy::client_of its creator (per-client limits)
    pipeline::GenerationRequest request;
    std::string seconds_asked;  // the OpenAI `seconds` as given ("" when num_frames decided)
    JobState state = JobState::kQueued;
    int64_t step = 0, steps = 0;
    std::string mp4;
    std::string thumbnail_png;
    int64_t frames = 0;
    bool has_audio = false;  // its MP4 has a sound track
    std::string error_code, error_message;
    double created_unix = 0, ended_unix = 0;
    std::chrono::steady_clock::time_point created;
    double queue_s = 0, denoise_s = 0, decode_s = 0, encode_s = 0, total_s = 0;
    std::shared_ptr<std::atomic<bool>> cancel;
    std::vector<std::shared_ptr<ResponseChannel>> waiters;  // POST ?wait=true
    std::string cancel_reason;  // why it is cancelled, when no DELETE asked for it
    uint64_t finished_order = 0;
  };
  struct Stream {
    std::string id;
    uint64_t order = 0;
    std::string client;  // AccessPolicy::client_of its creator
    pipeline::StreamSettings settings;
    bool imported = false;
    StreamState state = StreamState::kOpening;
    int64_t accepted = -1;           // highest chunk index queued or made
    int64_t done = -1;               // last chunk made
    bool can_repeat = false;         // rank 0 holds the last chunk's MP4
    std::string last_mp4;
    int64_t last_first_frame = 0, last_frames = 0;
    int64_t in_flight = 0;           // its queued and running work items
    bool on_group = false;           // its open work has started: the group may hold it
    bool first_chunk_seen = false;
    std::string error_message;
    double created_unix = 0;
    std::chrono::steady_clock::time_point created, last_used;
    std::shared_ptr<std::atomic<bool>> cancel = std::make_shared<std::atomic<bool>>(false);
  };

  void add_routes();
  HttpResponse health();
  HttpResponse metrics_text();
  HttpResponse models();
  HttpResponse list_videos(const std::string& query);
  HttpResponse get_video(const std::string& id);
  HttpResponse video_content(const std::string& id, const std::string& query);
  HttpResponse list_streams();
  HttpResponse get_stream(const std::string& id);
  HttpResponse create_video(const HttpRequest& request, bool wait);
  HttpResponse delete_video(const std::string& id);
  HttpResponse create_stream(const HttpRequest& request);
  HttpResponse request_chunk(const std::string& id, const HttpRequest& request);
  HttpResponse export_state(const std::string& id);
  HttpResponse delete_stream(const std::string& id, const std::string& reason);
  HttpResponse error(const ApiError& e) const;
  HttpResponse error(const Status& s, const std::string& field = "") const;
  // The model's step check and this server's size limit for `steps` over
  // `tokens`, `pixel_frames` (= `formula`, reported on `field`).
  std::optional<ApiError> check_size(int64_t steps, int64_t tokens, int64_t pixel_frames, const std::string& field,
                                     const std::string& formula) const;
  HttpResponse events_of(const std::string& topic, const std::string& what, const std::string& id);

  // All below hold mu_.
  Status admit_work() const;  // queue space, not shutting down
  // `client`'s queued and running items below --max-client-work.
  Status admit_client(const std::string& client) const;
  // A new stream (opened, or imported from req.state) with its open work
  // queued; returns its id. For create_stream and restore_stream.
  std::string add_stream(const std::string& id, const std::string& client, const StreamCreateRequest& req);
  uint64_t enqueue(const std::string& owner, Work work, std::shared_ptr<ResponseChannel> reply);
  void answer(uint64_t serial, HttpResponse response);
  void answer_error(uint64_t serial, const Status& status);
  void drop_stream_work(const std::string& id, const Status& why);
  void close_stream(Stream& s, const std::string& reason);  // erases it; queues the group's cleanup
  void fail_stream(Stream& s, const std::string& why);      // keeps it as failed; frees it on the group
  void finish_job(Job& job);
  // Cancels a queued, paused or running job (a running one stops at its next
  // step boundary: kStopping); kNotActive when it already ended.
  enum class CancelOutcome { kCancelled, kStopping, kNotActive };
  CancelOutcome cancel_video(Job& job);
  // The client of a POST ?wait=true went away before its answer: the job goes.
  void waiter_left(const std::string& id);
  // Ends a job that is not running on the group right now; a paused one
  // (`paused_on_group`) is also freed on every rank.
  void cancel_job(Job& job, const std::string& code, const std::string& message, bool paused_on_group);
  void prune_jobs();
  nlohmann::json job_json(const Job& job) const;
  nlohmann::json stream_json(const Stream& stream) const;
  size_t open_sessions() const;
  void update_gauges();

  ServiceInfo info_;
  ServiceConfig config_;
  AccessPolicy access_;
  ServedModel served_;
  Metrics metrics_;
  RouteTable routes_;  // built once in the constructor; read-only after
  SchedulingPolicy policy_;
  EventHub events_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  FairQueue<Work> queue_;
  std::map<uint64_t, std::shared_ptr<ResponseChannel>> replies_;  // by work serial
  std::map<std::string, Job> jobs_;
  std::map<std::string, Stream> streams_;
  std::optional<Work> running_;
  std::chrono::steady_clock::time_point running_since_;
  uint64_t next_order_ = 1;
  uint64_t next_serial_ = 1, finished_count_ = 0;
  bool shutdown_ = false;
  std::chrono::steady_clock::time_point last_ping_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_prune_{};  // the blob store's retention, every 30 s
  std::chrono::steady_clock::time_point last_contact_ = std::chrono::steady_clock::now();  // the group last answered
  std::optional<std::chrono::steady_clock::time_point> ping_since_;  // a heartbeat in flight
  std::string group_error_;  // the last heartbeat's failure ("" = none)
  double blobs_pruned_ = 0;
};

}  // namespace ltx::service
