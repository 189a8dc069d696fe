// ApiService without a group: HTTP requests in, Work out, WorkResults back in.
// Covers the bookkeeping the black-box suite can only reach by timing: a job
// paused between slices and cancelled there, the yield decision, a stream
// whose chunk fails unexpectedly, repeats answered on rank 0, lane order,
// and the answers at shutdown.
#include "service/api_service.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

namespace ltx::service {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

HttpResponse call(ApiService& api, const std::string& method, const std::string& target, const std::string& body = "") {
  return api.handle(HttpRequest{method, target, body, {{"host", "127.0.0.1:8080"}}, "127.0.0.1"});
}

json body_of(const HttpResponse& r) { return json::parse(r.body); }

Work next(ApiService& api) {
  auto w = api.next_work(milliseconds(10));
  EXPECT_TRUE(w.has_value());
  return w.value_or(Work{});
}

// The whole response a deferred channel was finished with.
HttpResponse answer_of(const HttpResponse& r) {
  EXPECT_NE(r.later, nullptr);
  auto p = r.later->take();
  EXPECT_TRUE(p.whole.has_value());
  return p.whole.value_or(HttpResponse{});
}

ServiceInfo info() {
  ServiceInfo i;
  i.model = "m";
  i.group_size = 2;
  return i;
}

ServiceConfig config() {
  ServiceConfig c;
  c.job_slice_s = 0.01;
  return c;
}

const char* kVideo = R"({"prompt": "p", "width": 64, "height": 64, "num_frames": 9, "num_inference_steps": 6})";
const char* kStream = R"({"prompt": "p", "width": 64, "height": 64, "num_inference_steps": 2})";

TEST(ApiService, PausedJobResumesFirstAndCancelledWhilePausedIsFreedOnTheGroup) {
  ApiService api(info(), config());
  const std::string vid = body_of(call(api, "POST", "/v1/videos", kVideo))["id"];
  Work w = next(api);
  ASSERT_EQ(w.kind, Work::Kind::kVideo);
  EXPECT_FALSE(api.should_yield()) << "nothing else waits";
  const std::string sid = body_of(call(api, "POST", "/v1/streams", kStream))["id"];
  std::this_thread::sleep_for(milliseconds(20));
  EXPECT_TRUE(api.should_yield()) << "a stream waits and the slice is used up";

  WorkResult paused;
  paused.finished = false;
  paused.next_step = 3;
  api.on_done(w, paused);
  EXPECT_EQ(body_of(call(api, "GET", "/v1/videos/" + vid))["progress_steps"]["step"], 3);
  EXPECT_EQ(body_of(call(api, "GET", "/v1/videos/" + vid))["status"], "in_progress");
  // The stream's open goes first, then the job resumes at step 3.
  Work open = next(api);
  EXPECT_EQ(open.kind, Work::Kind::kOpenStream);
  EXPECT_EQ(open.id, sid);
  api.on_done(open, WorkResult{});
  Work slice = next(api);
  EXPECT_EQ(slice.kind, Work::Kind::kVideoSlice);
  EXPECT_EQ(slice.index, 3);
  EXPECT_EQ(slice.params.num_steps, 6) << "a slice carries the request";

  // Paused again, then cancelled while paused: cancelled at once, freed on the group.
  api.on_done(slice, paused);
  auto del = call(api, "DELETE", "/v1/videos/" + vid);
  EXPECT_EQ(del.status, 200);
  EXPECT_EQ(body_of(del)["job_status"], "cancelled");
  Work drop = next(api);
  EXPECT_EQ(drop.kind, Work::Kind::kVideoDrop);
  EXPECT_EQ(drop.id, vid);
  EXPECT_FALSE(api.next_work(milliseconds(1)).has_value()) << "its slice is gone";
}

TEST(ApiService, CancelRequestedJustAsTheJobPausedFreesIt) {
  ApiService api(info(), config());
  const std::string vid = body_of(call(api, "POST", "/v1/videos", kVideo))["id"];
  Work w = next(api);
  auto del = call(api, "DELETE", "/v1/videos/" + vid);
  EXPECT_EQ(del.status, 202) << "running: it is asked to stop";
  EXPECT_TRUE(w.cancel->load());
  WorkResult paused;  // it paused before it saw the flag
  paused.finished = false;
  paused.next_step = 2;
  api.on_done(w, paused);
  EXPECT_EQ(body_of(call(api, "GET", "/v1/videos/" + vid))["job_status"], "cancelled");
  EXPECT_EQ(next(api).kind, Work::Kind::kVideoDrop);
}

TEST(ApiService, ASynchronousJobWhoseClientLeftIsCancelled) {
  ApiService api(info(), config());
  // Queued: it goes at once and never reaches the group.
  HttpResponse queued = call(api, "POST", "/v1/videos?wait=true", kVideo);
  ASSERT_NE(queued.later, nullptr);
  queued.later->client_gone();
  json listed = body_of(call(api, "GET", "/v1/videos"))["data"][0];
  EXPECT_EQ(listed["job_status"], "cancelled");
  EXPECT_NE(listed["error"]["message"].get<std::string>().find("client waiting for it disconnected"),
            std::string::npos)
      << listed;
  EXPECT_FALSE(api.next_work(milliseconds(1)).has_value());

  // Running: every rank is asked to stop; the group's answer ends it, with the reason.
  HttpResponse running = call(api, "POST", "/v1/videos?wait=true", kVideo);
  Work w = next(api);
  running.later->client_gone();
  EXPECT_TRUE(w.cancel->load());
  WorkResult stopped;
  stopped.status = cancelled_error("cancelled after step 2 of 6");
  api.on_done(w, stopped);
  json job = body_of(call(api, "GET", "/v1/videos/" + w.id));
  EXPECT_EQ(job["job_status"], "cancelled");
  EXPECT_EQ(job["error"]["message"], "cancelled after step 2 of 6: the client waiting for it disconnected");

  // Finished before the client left: nothing changes.
  HttpResponse done = call(api, "POST", "/v1/videos?wait=true", kVideo);
  Work d = next(api);
  api.on_done(d, WorkResult{});
  done.later->client_gone();
  EXPECT_EQ(body_of(call(api, "GET", "/v1/videos/" + d.id))["status"], "completed");
}

TEST(ApiService, ChunkBookkeepingRepeatsOnRankZeroAndAnUnexpectedFailureEndsTheStream) {
  ApiService api(info(), config());
  const std::string sid = body_of(call(api, "POST", "/v1/streams", kStream))["id"];
  const std::string chunks = "/v1/streams/" + sid + "/chunks";
  api.on_done(next(api), WorkResult{});  // opened
  auto c0 = call(api, "POST", chunks, R"({"index": 0})");
  ASSERT_NE(c0.later, nullptr);
  EXPECT_EQ(call(api, "POST", chunks, R"({"index": 0})").status, 409) << "chunk 0 is queued, not made";
  auto c1 = call(api, "POST", chunks, "");  // no index: the next one, queued behind chunk 0
  ASSERT_NE(c1.later, nullptr);
  EXPECT_EQ(call(api, "POST", chunks, R"({"index": 5})").status, 409);

  Work w0 = next(api);
  WorkResult made;
  made.mp4 = "mp4-of-chunk-0";
  made.frame_count = 9;
  api.on_done(w0, made);
  auto a0 = answer_of(c0);
  EXPECT_EQ(a0.status, 200);
  EXPECT_EQ(a0.body, "mp4-of-chunk-0");
  // Chunk 1 fails in a way that may leave the ranks apart: the stream ends.
  Work w1 = next(api);
  EXPECT_EQ(w1.index, 1);
  WorkResult broken;
  broken.status = internal_error("rank 1: out of memory");
  api.on_done(w1, broken);
  EXPECT_EQ(answer_of(c1).status, 500);
  auto info = body_of(call(api, "GET", "/v1/streams/" + sid));
  EXPECT_EQ(info["status"], "failed");
  Work close = next(api);
  EXPECT_EQ(close.kind, Work::Kind::kCloseStream) << "the group frees what it holds of it";
  EXPECT_EQ(call(api, "POST", chunks, R"({"index": 1})").status, 409);
  auto health = body_of(call(api, "GET", "/healthz"));
  EXPECT_EQ(health["sessions"], 0) << "a failed stream does not count against the session limit";
}

TEST(ApiService, RepeatOfTheLastChunkIsAnsweredWithoutTheGroup) {
  ApiService api(info(), config());
  const std::string sid = body_of(call(api, "POST", "/v1/streams", kStream))["id"];
  const std::string chunks = "/v1/streams/" + sid + "/chunks";
  api.on_done(next(api), WorkResult{});
  auto c0 = call(api, "POST", chunks, R"({"index": 0})");
  WorkResult made;
  made.mp4 = "bytes";
  made.frame_count = 9;
  api.on_done(next(api), made);
  auto again = call(api, "POST", chunks, R"({"index": 0})");
  EXPECT_EQ(again.later, nullptr);
  EXPECT_EQ(again.body, "bytes");
  bool repeated = false;
  for (const auto& [k, v] : again.headers) repeated = repeated || (k == "X-Repeated" && v == "true");
  EXPECT_TRUE(repeated);
  EXPECT_FALSE(api.next_work(milliseconds(1)).has_value()) << "no work for a repeat";
}

TEST(ApiService, ShutdownAnswersEveryoneWaiting) {
  ApiService api(info(), config());
  auto sync = call(api, "POST", "/v1/videos?wait=true", kVideo);
  const std::string sid = body_of(call(api, "POST", "/v1/streams", kStream))["id"];
  auto chunk = call(api, "POST", "/v1/streams/" + sid + "/chunks", "");
  api.shutdown();
  EXPECT_EQ(answer_of(sync).status, 503);
  EXPECT_EQ(answer_of(chunk).status, 503);
  EXPECT_EQ(call(api, "GET", "/healthz").status, 503);
  EXPECT_EQ(call(api, "POST", "/v1/videos", kVideo).status, 503);
  EXPECT_FALSE(api.next_work(milliseconds(1)).has_value());
}

TEST(ApiService, ServerLimitsAreCheckedBeforeAnythingIsQueued) {
  ServiceConfig c = config();
  c.max_pixel_frames = 64 * 64 * 9;
  c.max_queue = 1;
  ServiceInfo checked = info();
  checked.check_steps = [](int64_t steps, int64_t) {
    return steps < 2 ? invalid_argument_error("needs 2 steps or more") : Status();
  };
  ApiService api(checked, c);
  auto big = call(api, "POST", "/v1/videos", R"({"prompt": "p", "width": 64, "height": 64, "num_frames": 17})");
  EXPECT_EQ(big.status, 422);
  EXPECT_EQ(body_of(big)["error"]["field"], "num_frames");
  auto one = call(api, "POST", "/v1/videos", R"({"prompt": "p", "width": 64, "height": 64, "num_frames": 9, "num_inference_steps": 1})");
  EXPECT_EQ(one.status, 422);
  EXPECT_EQ(body_of(one)["error"]["field"], "num_inference_steps");
  EXPECT_EQ(call(api, "POST", "/v1/videos", kVideo).status, 202);
  auto full = call(api, "POST", "/v1/videos", kVideo);
  EXPECT_EQ(full.status, 429);
  bool retry = false;
  for (const auto& [k, v] : full.headers) retry = retry || k == "Retry-After";
  EXPECT_TRUE(retry);
  EXPECT_EQ(body_of(call(api, "GET", "/v1/videos"))["data"].size(), 1u);
}

}  // namespace
}  // namespace ltx::service
