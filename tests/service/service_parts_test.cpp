// The service's parts that need no server: the fair queue, the SSE hub, the
// stream request schema and the service config.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "service/api_error.h"
#include "service/event_hub.h"
#include "service/fair_queue.h"
#include "service/scheduling_policy.h"
#include "service/service_config.h"
#include "service/stream_request_schema.h"
#include "tests/test_util.h"

namespace ltx::service {
namespace {

// No answer carries a source location or a local path (one rule for every endpoint).
TEST(ApiError, ClientMessagesCarryNoSourceLocationOrLocalPath) {
  EXPECT_EQ(client_message("/work/main/pipeline/dit/ltx_transformer.cpp:233: check `a == b` failed: shard"),
            "check `a == b` failed: shard");
  EXPECT_EQ(client_message("loading model m: /root/.cache/ltx-worker/builtin-ltx-video-v2/vae: missing tensor 'x'"),
            "loading model m: vae: missing tensor 'x'");
  EXPECT_EQ(client_message("config file /etc/ltx/serve.json: port must be an integer"),
            "config file serve.json: port must be an integer");
  EXPECT_EQ(client_message("no stream /v1/streams/str_9 here"), "no stream /v1/streams/str_9 here");
  EXPECT_EQ(client_message("width must be a positive multiple of 32, got 100"),
            "width must be a positive multiple of 32, got 100");
  // A check failure as the engine reports it reaches the client without its origin.
  Status internal;
  try {
    LTX_INTERNAL_ASSERT(1 == 2, "invariant");
  } catch (...) {
    internal = status_from_current_exception();
  }
  ASSERT_NE(internal.message().find(".cpp:"), std::string::npos) << internal;
  ApiError e = api_error_from_status(internal);
  EXPECT_EQ(e.message.find(".cpp:"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("/work/"), std::string::npos) << e.message;
  EXPECT_EQ(e.http_status, 500);
}

TEST(SchedulingPolicy, AdmitsWhileThereIsRoomAndYieldsToWaitingStreams) {
  SchedulingPolicy p{2, 1.0};
  EXPECT_TRUE(p.admit(false, 1).ok());
  EXPECT_EQ(p.admit(false, 2).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(p.admit(true, 0).code(), StatusCode::kUnavailable) << "shutting down wins";
  EXPECT_TRUE(p.should_yield(true, 1.5, true));
  EXPECT_FALSE(p.should_yield(true, 0.5, true)) << "its slice is not used up";
  EXPECT_FALSE(p.should_yield(true, 9.0, false)) << "nothing else waits";
  EXPECT_FALSE(p.should_yield(false, 9.0, true)) << "no video job runs";
  SchedulingPolicy never{2, 0.0};
  EXPECT_FALSE(never.should_yield(true, 99.0, true)) << "job_slice_s = 0 never pauses a job";
}

TEST(FairQueue, ServesOwnersRoundRobinAndKeepsEachOwnersOrder) {
  FairQueue<std::string> q;
  for (int i = 0; i < 4; ++i) q.push("videos", "v" + std::to_string(i));  // a backlog of long jobs
  q.push("stream-a", "a0");
  q.push("stream-a", "a1");
  q.push("stream-b", "b0");
  EXPECT_EQ(q.size(), 7u);
  auto pos = [&](const std::string& x) { return q.position([&](const std::string& s) { return s == x; }); };
  EXPECT_EQ(pos("v0"), 0u);
  EXPECT_EQ(pos("a0"), 1u);
  EXPECT_EQ(pos("b0"), 2u);
  EXPECT_EQ(pos("v1"), 3u);
  EXPECT_EQ(pos("a1"), 4u);
  EXPECT_EQ(pos("v3"), 6u);
  EXPECT_FALSE(pos("zz").has_value());
  std::vector<std::string> order;
  while (auto x = q.pop()) order.push_back(*x);
  EXPECT_EQ(order, (std::vector<std::string>{"v0", "a0", "b0", "v1", "a1", "v2", "v3"}));
  EXPECT_TRUE(q.empty());
  EXPECT_FALSE(q.pop().has_value());
}

TEST(FairQueue, PositionsMatchThePopOrder) {
  FairQueue<int> q;
  const char* owners[] = {"x", "y", "x", "z", "x", "y", "w", "x"};
  for (int i = 0; i < 8; ++i) q.push(owners[i], i);
  std::vector<size_t> predicted(8);
  for (int i = 0; i < 8; ++i) predicted[i] = *q.position([i](int v) { return v == i; });
  for (size_t n = 0; auto x = q.pop(); ++n) EXPECT_EQ(predicted[*x], n) << "item " << *x;
}

TEST(FairQueue, PushFrontResumesFirstInItsLane) {
  FairQueue<std::string> q;
  q.push("videos", "v2");
  q.push("stream", "c0");
  EXPECT_TRUE(q.has_other_than("videos"));
  q.push_front("videos", "v1-rest");  // v1 paused: it goes on before v2
  EXPECT_EQ(*q.pop(), "v1-rest");
  EXPECT_EQ(*q.pop(), "c0");
  EXPECT_FALSE(q.has_other_than("videos"));
  EXPECT_EQ(*q.pop(), "v2");
  q.push_front("videos", "only");
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(*q.pop(), "only");
}

TEST(FairQueue, RemoveIfDropsItemsAndEmptyOwners) {
  FairQueue<std::string> q;
  q.push("a", "a0");
  q.push("b", "b0");
  q.push("a", "a1");
  auto gone = q.remove_if([](const std::string& s) { return s[0] == 'a'; });
  EXPECT_EQ(gone, (std::vector<std::string>{"a0", "a1"}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(*q.pop(), "b0");
  EXPECT_TRUE(q.empty());
}

// Collects what a channel would write.
std::string drain(ResponseChannel& c) {
  auto p = c.take();
  std::string out = p.send_head ? "HEAD\n" : "";
  for (auto& f : p.frames) out += f;
  if (p.end) out += "END";
  return out;
}

TEST(EventHub, LateSubscribersGetTheHistoryInOrderThenLiveEvents) {
  EventHub hub;
  EXPECT_EQ(hub.subscribe("nope"), nullptr);
  hub.open("t");
  hub.publish("t", "queued", R"({"position":0})");
  hub.publish("t", "step", R"({"step":1})");
  auto late = hub.subscribe("t");
  ASSERT_NE(late, nullptr);
  hub.publish("t", "step", R"({"step":2})");
  EXPECT_EQ(drain(*late), "HEAD\nid: 1\nevent: queued\ndata: {\"position\":0}\n\n"
                          "id: 2\nevent: step\ndata: {\"step\":1}\n\n"
                          "id: 3\nevent: step\ndata: {\"step\":2}\n\n");
  hub.close("t");
  EXPECT_EQ(drain(*late), "END");
  auto after = hub.subscribe("t");
  ASSERT_NE(after, nullptr);
  const std::string replay = drain(*after);
  EXPECT_NE(replay.find("id: 3\nevent: step"), std::string::npos) << replay;
  EXPECT_EQ(replay.substr(replay.size() - 3), "END");
  hub.publish("t", "late", "{}");  // after close: dropped
  hub.erase("t");
  EXPECT_EQ(hub.subscribe("t"), nullptr);
}

TEST(EventHub, HistoryKeepsTheLatestEvents) {
  EventHub hub(2);
  hub.open("t");
  for (int i = 1; i <= 3; ++i) hub.publish("t", "e", std::to_string(i));
  auto c = hub.subscribe("t");
  EXPECT_EQ(drain(*c), "HEAD\nid: 2\nevent: e\ndata: 2\n\nid: 3\nevent: e\ndata: 3\n\n");
}

TEST(ResponseChannel, DropsALaggingClientInsteadOfGrowing) {
  ResponseChannel c;
  c.open_events();
  for (size_t i = 0; i < ResponseChannel::kMaxQueuedEvents + 10; ++i) c.send_event("x");
  EXPECT_TRUE(c.closed());
  auto p = c.take();
  EXPECT_TRUE(p.end);
  EXPECT_TRUE(p.frames.empty());
  // A whole response cannot follow an event stream, and finish() happens once.
  ResponseChannel once;
  HttpResponse a;
  a.body = "first";
  once.finish(a);
  HttpResponse b;
  b.body = "second";
  once.finish(b);
  EXPECT_EQ(once.take().whole->body, "first");
}

ApiError stream_error(const std::string& body) {
  auto r = parse_stream_request(body, {16, 32, {}}, nullptr);
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(StreamRequestSchema, SettingsParseAndErrorsNameTheField) {
  auto ok = parse_stream_request(R"({"prompt": "p", "width": 128, "height": 96, "chunk_frames": 3,
                                     "num_inference_steps": 5, "seed": 9, "window": 6, "sink": true})", {16, 32, {}}, nullptr);
  ASSERT_TRUE(std::holds_alternative<StreamCreateRequest>(ok));
  const auto& s = std::get<StreamCreateRequest>(ok).settings;
  EXPECT_EQ(s.width, 128);
  EXPECT_EQ(s.chunk_frames, 3);
  EXPECT_EQ(s.num_steps, 5);
  EXPECT_EQ(s.seed, 9u);
  EXPECT_EQ(s.window_chunks, 6);
  EXPECT_TRUE(s.sink);
  EXPECT_EQ(std::get<StreamCreateRequest>(ok).state, nullptr);

  EXPECT_EQ(stream_error("[1]").http_status, 400);
  EXPECT_EQ(stream_error("{").http_status, 400);
  EXPECT_EQ(stream_error(R"({"width": 64})").field, "prompt");
  EXPECT_EQ(stream_error(R"({"prompt": "p", "widht": 64})").field, "widht");
  EXPECT_EQ(stream_error(R"({"prompt": "p", "width": 100})").field, "width");
  EXPECT_EQ(stream_error(R"({"prompt": "p", "chunk_frames": 0})").field, "chunk_frames");
  EXPECT_EQ(stream_error(R"({"prompt": "p", "window": 0})").field, "window");
  EXPECT_EQ(stream_error(R"({"prompt": "p", "sink": 1})").field, "sink");
  EXPECT_EQ(stream_error(R"({"prompt": "p", "seed": -1})").field, "seed");
  ApiError state = stream_error(R"({"state": {"kind": "ltx-worker.stream-state", "schema_version": 1}})");
  EXPECT_EQ(state.http_status, 422);
  EXPECT_EQ(state.field, "state");
  EXPECT_EQ(stream_error(R"({"state": {}, "prompt": "p"})").field, "prompt");
  EXPECT_EQ(stream_error(R"({"state": 3})").field, "state");
}

TEST(StreamRequestSchema, ChunkIndex) {
  auto idx = [](const std::string& b) { return std::get<std::optional<int64_t>>(parse_chunk_request(b)); };
  EXPECT_EQ(idx(""), std::nullopt);
  EXPECT_EQ(idx("{}"), std::nullopt);
  EXPECT_EQ(idx(R"({"index": 4})"), 4);
  auto err = [](const std::string& b) { return std::get<ApiError>(parse_chunk_request(b)); };
  EXPECT_EQ(err(R"({"index": -2})").field, "index");
  EXPECT_EQ(err(R"({"index": "3"})").field, "index");
  EXPECT_EQ(err(R"({"idx": 3})").field, "idx");
  EXPECT_EQ(err("{oops").http_status, 400);
}

TEST(ServiceConfig, DefaultsAreValidAndEveryBadValueIsNamed) {
  ServiceConfig c;
  EXPECT_TRUE(c.validate().ok());
  c.port = 70000;
  EXPECT_NE(c.validate().message().find("port"), std::string::npos);
  c = ServiceConfig{};
  c.host = "999.1.1.1";
  EXPECT_NE(c.validate().message().find("host"), std::string::npos);
  c.host = "::1";
  EXPECT_TRUE(c.validate().ok());
  c = ServiceConfig{};
  c.max_queue = 0;
  EXPECT_NE(c.validate().message().find("max_queue"), std::string::npos);
  c = ServiceConfig{};
  c.fault_timeout_s = 0;
  EXPECT_NE(c.validate().message().find("fault_timeout_s"), std::string::npos);
  c.fault_timeout_s = 0.5;
  EXPECT_TRUE(c.validate().ok());

  const std::string dir = testing::scratch_dir("service-config");
  const std::string path = dir + "/serve.json";
  std::ofstream(path) << R"({"port": 9000, "max_sessions": 3, "state_dir": "/tmp/x"})";
  ServiceConfig f;
  ASSERT_TRUE(merge_service_config_json(path, &f).ok());
  EXPECT_EQ(f.port, 9000);
  EXPECT_EQ(f.max_sessions, 3u);
  EXPECT_EQ(f.state_dir, "/tmp/x");
  std::ofstream(path) << R"({"max_sesions": 3})";
  Status typo = merge_service_config_json(path, &f);
  EXPECT_NE(typo.message().find("max_sesions is not a known setting"), std::string::npos) << typo;
  std::ofstream(path) << R"({"max_queue": "many"})";
  EXPECT_NE(merge_service_config_json(path, &f).message().find("max_queue"), std::string::npos);
  EXPECT_EQ(merge_service_config_json(dir + "/missing.json", &f).code(), StatusCode::kNotFound);

  // The per-host figures of the scaling model, and the parallel plans.
  std::ofstream(path) << R"({"link_bandwidth_gbps": 25, "link_latency_us": 2.5, "guidance_parallel": "off",
                            "decode_parallel": "on", "ring_size": 2})";
  ServiceConfig links;
  ASSERT_TRUE(merge_service_config_json(path, &links).ok());
  auto figures = links.placement.link_figures();
  ASSERT_TRUE(figures.ok() && figures->has_value()) << figures.status();
  EXPECT_EQ((*figures)->bandwidth_gbps, 25.0);
  EXPECT_EQ((*figures)->latency_us, 2.5);
  auto resolved = pipeline::ModelPlacement::resolve(links.placement, at::Device(at::kCPU));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->planning.guidance, parallel::GuidanceParallel::kOff);
  EXPECT_TRUE(resolved->decoder.shared);
  EXPECT_EQ(resolved->planning.ring_size, 2);
  std::ofstream(path) << R"({"link_bandwidth_gbps": "fast"})";
  EXPECT_NE(merge_service_config_json(path, &f).message().find("link_bandwidth_gbps must be a number"),
            std::string::npos);

  // The model and its placement come from the file too; bad values are named.
  std::ofstream(path) << R"({"model": "builtin:ltx-video", "dtype": "bf16", "text_device": "cpu"})";
  ServiceConfig p;
  ASSERT_TRUE(merge_service_config_json(path, &p).ok());
  EXPECT_EQ(p.model, "builtin:ltx-video");
  EXPECT_EQ(p.placement.dtype, "bf16");
  EXPECT_EQ(p.placement.text_device, "cpu");
  EXPECT_TRUE(p.validate().ok());
  std::ofstream(path) << R"({"decoder_device": "gpu"})";
  ASSERT_TRUE(merge_service_config_json(path, &p).ok());
  EXPECT_NE(p.validate().message().find("--decoder-device"), std::string::npos) << p.validate();
  std::ofstream(path) << R"({"dtype": 16})";
  EXPECT_NE(merge_service_config_json(path, &p).message().find("dtype must be a string"), std::string::npos);
}

}  // namespace
}  // namespace ltx::service
