#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "pipeline/runtime/stream_settings.h"
#include "service/api_error.h"
#include "service/metrics.h"
#include "service/route_table.h"
#include "service/video_request_schema.h"

namespace ltx::service {
namespace {

ApiError error_of(const std::string& body) {
  auto r = parse_video_request(body, pipeline::ModelGeometry{});
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(ApiError, MapsEveryCanonicalCode) {
  EXPECT_EQ(api_error_from_status(invalid_argument_error("x")).http_status, 422);
  EXPECT_EQ(api_error_from_status(not_found_error("x")).http_status, 404);
  EXPECT_EQ(api_error_from_status(failed_precondition_error("x")).http_status, 409);
  EXPECT_EQ(api_error_from_status(resource_exhausted_error("x")).http_status, 429);
  EXPECT_GT(api_error_from_status(resource_exhausted_error("x")).retry_after_s, 0);
  EXPECT_EQ(api_error_from_status(unavailable_error("x")).http_status, 503);
  EXPECT_EQ(api_error_from_status(deadline_exceeded_error("x")).http_status, 504);
  EXPECT_EQ(api_error_from_status(unimplemented_error("x")).http_status, 501);
  EXPECT_EQ(api_error_from_status(internal_error("x")).http_status, 500);
  EXPECT_EQ(bad_json_error("x").http_status, 400);
  EXPECT_EQ(too_large_error(10).http_status, 413);
  auto body = nlohmann::json::parse(api_error_from_status(invalid_argument_error("width bad"), "width").body());
  EXPECT_EQ(body["error"]["code"], "invalid_value");
  EXPECT_EQ(body["error"]["message"], "width bad");
  EXPECT_EQ(body["error"]["field"], "width");
  EXPECT_TRUE(nlohmann::json::parse(bad_json_error("x").body())["error"]["field"].is_null());
}

// The sound fields exist for models that make sound only; the distilled
// pipeline refuses a step count; the family's defaults fill what is absent.
TEST(VideoRequestSchema, SoundFieldsFollowTheModel) {
  EXPECT_EQ(error_of(R"({"prompt": "x", "audio": false})").field, "audio") << "a silent model takes no audio field";
  pipeline::ModelGeometry av;
  av.audio_sample_rate = 24000;
  av.pipeline_variants = {pipeline::PipelineVariant{"distilled", 11}};
  auto ok = parse_video_request(R"({"prompt": "x", "audio": false, "audio_guidance_scale": 5})", av);
  ASSERT_TRUE(std::holds_alternative<pipeline::GenerationRequest>(ok));
  const auto& r = std::get<pipeline::GenerationRequest>(ok);
  EXPECT_FALSE(r.audio);
  EXPECT_EQ(r.audio_guidance_scale, 5);
  EXPECT_EQ(r.fps, 24.0) << "LTX-2's default frame rate";
  EXPECT_EQ(r.guidance_rescale, 0.7) << "LTX-2's default rescale";
  auto err = [&](const std::string& body) {
    auto v = parse_video_request(body, av);
    EXPECT_TRUE(std::holds_alternative<ApiError>(v)) << body;
    return std::holds_alternative<ApiError>(v) ? std::get<ApiError>(v) : ApiError{};
  };
  EXPECT_EQ(err(R"({"prompt": "x", "pipeline": "distilled", "num_inference_steps": 8})").field, "num_inference_steps");
  EXPECT_EQ(err(R"({"prompt": "x", "pipeline": "turbo"})").field, "pipeline");
  EXPECT_EQ(err(R"({"prompt": "x", "pipeline": "distilled", "width": 96, "height": 64})").field, "width");
  EXPECT_EQ(err(R"({"prompt": "x", "audio_modality_scale": -1})").field, "audio_modality_scale");
  EXPECT_EQ(err(R"({"prompt": "x", "audio_guidance_rescale": 1.5})").field, "audio_guidance_rescale");
  EXPECT_EQ(err(R"({"prompt": "x", "audio": 1})").field, "audio");
  pipeline::ModelGeometry no_upsampler = av;
  no_upsampler.pipeline_variants.clear();
  auto v = parse_video_request(R"({"prompt": "x", "pipeline": "distilled"})", no_upsampler);
  ASSERT_TRUE(std::holds_alternative<ApiError>(v));
  EXPECT_NE(std::get<ApiError>(v).message.find("latent_upsampler"), std::string::npos);
}

// A stream of a model that makes sound needs an audio latent frame in every
// chunk: refused on rank 0, naming chunk_frames.
TEST(StreamSettings, EveryChunkOfASoundModelCarriesAudio) {
  pipeline::ModelGeometry av;
  av.audio_sample_rate = 24000;
  av.audio_token_channels = 128;
  av.audio_latents_per_second = 25;
  pipeline::StreamSettings s = pipeline::default_request(av);
  s.prompt = "x";
  s.chunk_frames = 1;
  EXPECT_TRUE(pipeline::validate_stream_settings(s, av).ok()) << "24 fps: 1 pixel frame -> 1 audio frame";
  s.fps = 240;
  Status bad = pipeline::validate_stream_settings(s, av);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message().rfind("chunk_frames", 0), 0u) << bad;
  s.chunk_frames = 2;
  EXPECT_TRUE(pipeline::validate_stream_settings(s, av).ok()) << pipeline::validate_stream_settings(s, av);
}

TEST(VideoRequestSchema, ParsesAValidRequest) {
  auto r = parse_video_request(R"({"prompt": "waves", "width": 512, "height": 320, "num_frames": 25,
      "num_inference_steps": 20, "guidance_scale": 3.5, "seed": 7, "fps": 24})", pipeline::ModelGeometry{});
  ASSERT_TRUE(std::holds_alternative<pipeline::GenerationRequest>(r));
  const auto& g = std::get<pipeline::GenerationRequest>(r);
  EXPECT_EQ(g.prompt, "waves");
  EXPECT_EQ(g.width, 512);
  EXPECT_EQ(g.num_frames, 25);
  EXPECT_EQ(g.num_steps, 20);
  EXPECT_DOUBLE_EQ(g.guidance_scale, 3.5);
  EXPECT_EQ(g.seed, 7u);
}

TEST(VideoRequestSchema, ErrorsNameTheFieldWithTheRightStatus) {
  EXPECT_EQ(error_of("{").http_status, 400);
  EXPECT_EQ(error_of("[1]").http_status, 400);
  ApiError missing = error_of(R"({"width": 64})");
  EXPECT_EQ(missing.http_status, 422);
  EXPECT_EQ(missing.field, "prompt");
  ApiError typo = error_of(R"({"prompt": "x", "widht": 64})");
  EXPECT_EQ(typo.field, "widht");
  ApiError type = error_of(R"({"prompt": "x", "width": "wide"})");
  EXPECT_EQ(type.field, "width");
  EXPECT_EQ(type.http_status, 422);
  ApiError value = error_of(R"({"prompt": "x", "width": 100})");
  EXPECT_EQ(value.field, "width");
  EXPECT_NE(value.message.find("multiple of 32"), std::string::npos) << value.message;
  EXPECT_EQ(error_of(R"({"prompt": "x", "num_frames": 10})").field, "num_frames");
  EXPECT_EQ(error_of(R"({"prompt": "x", "num_inference_steps": 0})").field, "num_inference_steps");
  EXPECT_EQ(error_of(R"({"prompt": "x", "guidance_scale": -1})").field, "guidance_scale");
  EXPECT_EQ(error_of(R"({"prompt": "x", "seed": -5})").field, "seed");
  EXPECT_EQ(error_of(R"({"prompt": ""})").field, "prompt");
}

// The route table matches templates, names the methods a path allows, and
// is the source of the metrics' bounded route labels.
TEST(RouteTable, MatchesTemplatesAndLabelsRequests) {
  RouteTable t;
  auto answer = [](int status) {
    return [status](const HttpRequest&, const std::string&, const std::string&) {
      HttpResponse r;
      r.status = status;
      return r;
    };
  };
  t.add("GET", "/", answer(200));
  t.add("GET", "/v1/videos/{id}", answer(201));
  t.add("DELETE", "/v1/videos/{id}", answer(202));
  t.add("GET", "/v1/videos/{id}/content", answer(203));
  auto m = t.match("DELETE", "/v1/videos/vid_7");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.id, "vid_7");
  EXPECT_EQ(m.label, "/v1/videos/{id}");
  EXPECT_EQ((*m.handler)(HttpRequest{}, m.id, "").status, 202);
  auto wrong = t.match("POST", "/v1/videos/vid_7");
  EXPECT_EQ(wrong.handler, nullptr);
  EXPECT_EQ(wrong.allowed, "GET, DELETE");
  EXPECT_EQ(wrong.label, "/v1/videos/{id}");
  EXPECT_EQ(t.match("GET", "/").label, "/");
  for (const char* unknown : {"/evil/../path", "/v1/videos/vid_7/bogus", "/v1/videos//content", "", "v1/videos"}) {
    auto none = t.match("GET", unknown);
    EXPECT_EQ(none.handler, nullptr) << unknown;
    EXPECT_TRUE(none.allowed.empty()) << unknown;
    EXPECT_EQ(none.label, "other") << unknown;
  }
}

TEST(Metrics, RendersPrometheusText) {
  Metrics m;
  m.count_request("/v1/videos/{id}/content", 200);
  m.count_request("/v1/videos/{id}/content", 200);
  m.count_request("other", 404);
  m.count_request("/v1/streams/{id}/chunks", 200);
  m.count_request("other", 404);
  m.observe(Metrics::Series::kStepSeconds, 0.2);
  m.observe(Metrics::Series::kStepSeconds, 3.0);
  m.observe(Metrics::Series::kFirstChunkSeconds, 1.5);
  m.set_gauge("ltx_queue_depth", 4, "Work items waiting.");
  m.set_gauge("ltx_kv_cache_bytes{rank=\"0\"}", 100);
  m.set_gauge("ltx_kv_cache_bytes{rank=\"1\"}", 200);
  std::string text = m.render({{"ltx_group_size", 2}});
  EXPECT_NE(text.find("ltx_http_requests_total{route=\"/v1/videos/{id}/content\",status=\"200\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("ltx_http_requests_total{route=\"other\",status=\"404\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("ltx_http_requests_total{route=\"/v1/streams/{id}/chunks\",status=\"200\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("ltx_stream_first_chunk_seconds_count 1"), std::string::npos) << text;
  // One TYPE line for a labelled family.
  const std::string type = "# TYPE ltx_kv_cache_bytes gauge\n";
  ASSERT_NE(text.find(type), std::string::npos) << text;
  EXPECT_EQ(text.find(type, text.find(type) + 1), std::string::npos) << text;
  EXPECT_NE(text.find("ltx_kv_cache_bytes{rank=\"1\"} 200"), std::string::npos) << text;
  EXPECT_NE(text.find("ltx_denoise_step_seconds_bucket{le=\"0.25\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("ltx_denoise_step_seconds_bucket{le=\"+Inf\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("ltx_denoise_step_seconds_count 2"), std::string::npos);
  EXPECT_NE(text.find("ltx_queue_depth 4"), std::string::npos);
  EXPECT_NE(text.find("ltx_group_size 2"), std::string::npos);
}

}  // namespace
}  // namespace ltx::service
