// The service's edge: who may call (API key, Host allow-list, the Origin rule,
// CORS), what bodies it reads (JSON depth, multipart/form-data), the OpenAI
// Videos fields and the video object, list pagination, delete and the
// thumbnail variant. No group: ApiService answers from its tables, and work
// "done" is handed to it as the inference thread would.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "service/access_policy.h"
#include "service/api_service.h"
#include "service/json_fields.h"
#include "service/multipart.h"
#include "service/video_request_schema.h"

namespace ltx::service {
namespace {

using nlohmann::json;
using Headers = std::vector<std::pair<std::string, std::string>>;

HttpRequest request(const std::string& method, const std::string& target, Headers headers = {{"host", "127.0.0.1:8080"}},
                    const std::string& body = "") {
  return HttpRequest{method, target, body, std::move(headers), "127.0.0.1"};
}

// ---- access ----

const char* kKey = "0123456789abcdef-key";

std::optional<int> refused(const AccessPolicy& p, const HttpRequest& r) {
  auto e = p.check(r, r.target.substr(0, r.target.find('?')));
  return e ? std::optional<int>(e->http_status) : std::nullopt;
}

TEST(AccessPolicy, HostAllowList) {
  AccessPolicy p(AccessRules{"", {"video.example.com"}, {}});
  for (const char* ok : {"127.0.0.1:8080", "localhost:8080", "LOCALHOST", "[::1]:80", "10.0.0.7", "video.example.com:443"}) {
    EXPECT_FALSE(refused(p, request("GET", "/v1/models", {{"host", ok}}))) << ok;
  }
  // DNS rebinding: a name the attacker controls that resolves to us.
  EXPECT_EQ(refused(p, request("GET", "/v1/models", {{"host", "attacker.example:8080"}})), 403);
  EXPECT_EQ(refused(p, request("GET", "/v1/models", {{"host", "0x7f.1"}})), 403);  // shorthand is no IP literal here
  EXPECT_EQ(refused(p, request("GET", "/v1/models", {})), 400);                   // no Host
  EXPECT_EQ(refused(p, request("GET", "/", {{"host", "a b"}})), 400);
  EXPECT_EQ(refused(p, request("GET", "/", {{"host", "x:99999999"}})), 400);
  EXPECT_EQ(refused(p, request("GET", "/", {{"host", std::string("\xff\xfe", 2)}})), 400);
  AccessPolicy any(AccessRules{"", {"*"}, {}});
  EXPECT_FALSE(refused(any, request("GET", "/", {{"host", "anything.example"}})));
}

TEST(AccessPolicy, StateChangesFromOtherSitesAreRefused) {
  AccessPolicy p(AccessRules{"", {}, {"https://app.example.com"}});
  const Headers host = {{"host", "127.0.0.1:8080"}};
  auto with = [&](Headers extra) {
    Headers h = host;
    for (auto& e : extra) h.push_back(e);
    return h;
  };
  // curl -d and SDKs send no Origin.
  EXPECT_FALSE(refused(p, request("POST", "/v1/videos", host)));
  // The page itself: its origin is the address it was loaded from.
  EXPECT_FALSE(refused(p, request("POST", "/v1/videos", with({{"origin", "http://127.0.0.1:8080"}}))));
  // A configured origin.
  EXPECT_FALSE(refused(p, request("DELETE", "/v1/videos/x", with({{"origin", "https://app.example.com"}}))));
  // Any other site: CSRF.
  EXPECT_EQ(refused(p, request("POST", "/v1/videos", with({{"origin", "http://evil.example"}}))), 403);
  EXPECT_EQ(refused(p, request("POST", "/v1/videos", with({{"origin", "null"}}))), 403);
  EXPECT_EQ(refused(p, request("DELETE", "/v1/streams/s", with({{"origin", "http://127.0.0.1:9999"}}))), 403);
  // Reads are left to CORS (no Allow-Origin for them).
  EXPECT_FALSE(refused(p, request("GET", "/v1/videos", with({{"origin", "http://evil.example"}}))));
  EXPECT_TRUE(p.cors_headers(request("GET", "/v1/videos", with({{"origin", "http://evil.example"}}))).empty());
  auto cors = p.cors_headers(request("GET", "/v1/videos", with({{"origin", "https://app.example.com"}})));
  ASSERT_FALSE(cors.empty());
  EXPECT_EQ(cors[0], (std::pair<std::string, std::string>{"Access-Control-Allow-Origin", "https://app.example.com"}));
  EXPECT_TRUE(p.preflight(request("OPTIONS", "/v1/videos", with({{"origin", "https://app.example.com"}}))));
  EXPECT_FALSE(p.preflight(request("OPTIONS", "/v1/videos", with({{"origin", "http://evil.example"}}))));
}

TEST(AccessPolicy, ApiKey) {
  AccessPolicy p(AccessRules{kKey, {}, {}});
  const std::string bearer = std::string("Bearer ") + kKey;
  EXPECT_FALSE(refused(p, request("GET", "/v1/models", {{"host", "localhost"}, {"authorization", bearer}})));
  EXPECT_FALSE(refused(p, request("GET", "/v1/models", {{"host", "localhost"}, {"authorization", "bearer " + std::string(kKey)}})));
  EXPECT_EQ(refused(p, request("GET", "/v1/models", {{"host", "localhost"}})), 401);
  EXPECT_EQ(refused(p, request("GET", "/metrics", {{"host", "localhost"}})), 401);
  EXPECT_EQ(refused(p, request("POST", "/v1/videos", {{"host", "localhost"}, {"authorization", bearer + "x"}})), 401);
  EXPECT_EQ(refused(p, request("POST", "/v1/videos", {{"host", "localhost"}, {"authorization", bearer.substr(0, 10)}})), 401);
  EXPECT_EQ(refused(p, request("POST", "/v1/videos", {{"host", "localhost"}, {"authorization", std::string("Basic ") + kKey}})), 401);
  // The web page's same-site cookie (EventSource cannot send headers).
  EXPECT_FALSE(refused(p, request("GET", "/v1/videos/x/events",
                                  {{"host", "localhost"}, {"cookie", std::string("a=b; ltx_api_key=") + kKey}})));
  EXPECT_EQ(refused(p, request("GET", "/v1/videos", {{"host", "localhost"}, {"cookie", "ltx_api_key=nope"}})), 401);
  EXPECT_EQ(refused(p, request("POST", "/v1/videos", {{"host", "localhost"}, {"cookie", std::string("ltx_api_key=") + kKey},
                                                       {"origin", "http://evil.example"}})), 403);
  // The page and the health check stay open.
  for (const char* open : {"/", "/index.html", "/healthz"}) {
    EXPECT_FALSE(refused(p, request("GET", open, {{"host", "localhost"}}))) << open;
  }
  EXPECT_EQ(refused(p, request("POST", "/healthz", {{"host", "localhost"}})), 401);
  EXPECT_EQ(p.client_of(request("GET", "/", {{"host", "localhost"}})), "key");
  EXPECT_EQ(AccessPolicy(AccessRules{}).client_of(request("GET", "/")), "127.0.0.1");
}

TEST(AccessPolicy, ConstantTimeCompareIsAnEquality) {
  EXPECT_TRUE(AccessPolicy::constant_time_equal("abc", "abc"));
  EXPECT_TRUE(AccessPolicy::constant_time_equal("", ""));
  EXPECT_FALSE(AccessPolicy::constant_time_equal("abc", "abd"));
  EXPECT_FALSE(AccessPolicy::constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(AccessPolicy::constant_time_equal("abc", ""));
  EXPECT_FALSE(AccessPolicy::constant_time_equal(std::string("a\0b", 3), "a"));
}

// ---- bodies ----

TEST(RequestBodies, JsonNestingIsBoundedBeforeParsing) {
  std::string deep(60000, '[');
  auto r = parse_json_body(deep);
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).http_status, 400);
  EXPECT_NE(std::get<ApiError>(r).message.find("deeper than"), std::string::npos);
  // Brackets inside strings are text.
  std::string text = "{\"a\": \"" + std::string(500, '[') + "\\\"[\"}";
  EXPECT_TRUE(std::holds_alternative<json>(parse_json_body(text)));
  std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_TRUE(std::holds_alternative<json>(parse_json_body(ok)));
  EXPECT_TRUE(std::holds_alternative<ApiError>(parse_json_body("[" + ok + "]")));
}

TEST(RequestBodies, Utf8) {
  EXPECT_TRUE(is_utf8("plain"));
  EXPECT_TRUE(is_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8e\xac"));
  for (const char* bad : {"\xff", "\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80"}) {
    EXPECT_FALSE(is_utf8(bad)) << bad;
  }
}

const char* kBoundary = "----formdata-undici-045177117385";

std::string form(const std::vector<std::pair<std::string, std::string>>& fields, const std::string& file_field = "") {
  std::string b;
  for (const auto& [k, v] : fields) {
    b += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + k + "\"\r\n\r\n" + v + "\r\n";
  }
  if (!file_field.empty()) {
    b += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + file_field +
         "\"; filename=\"ref.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n";
  }
  return b + "--" + kBoundary + "--\r\n";
}

std::string form_type() { return std::string("multipart/form-data; boundary=") + kBoundary; }

TEST(Multipart, ReadsTheSdksWireFormat) {
  auto parts = parse_multipart_form(form({{"model", "sora-2"}, {"prompt", "a cat\r\non two lines"}}, "input_reference"),
                                    form_type());
  ASSERT_TRUE(std::holds_alternative<std::vector<FormPart>>(parts));
  const auto& p = std::get<std::vector<FormPart>>(parts);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].name, "model");
  EXPECT_EQ(p[0].data, "sora-2");
  EXPECT_EQ(p[1].data, "a cat\r\non two lines");
  EXPECT_TRUE(p[2].is_file);
  EXPECT_EQ(p[2].filename, "ref.png");
  EXPECT_EQ(p[2].content_type, "image/png");
  EXPECT_TRUE(is_multipart_form("Multipart/Form-Data; boundary=x"));
  EXPECT_FALSE(is_multipart_form("application/json"));
}

TEST(Multipart, MalformedBodiesAre400) {
  const std::string good = form({{"prompt", "x"}});
  for (const auto& [body, type] : std::vector<std::pair<std::string, std::string>>{
           {good, "multipart/form-data"},                              // no boundary
           {good, "multipart/form-data; boundary=other"},              // wrong boundary
           {good.substr(0, good.size() - 30), form_type()},            // cut short
           {std::string("--") + kBoundary + "\r\nX: y\r\n\r\nz\r\n--" + kBoundary + "--", form_type()},  // no name
           {std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"a\"", form_type()},
           {"", form_type()}}) {
    auto r = parse_multipart_form(body, type);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << body;
    EXPECT_EQ(std::get<ApiError>(r).http_status, 400) << body;
  }
}

// ---- the OpenAI Videos request ----

pipeline::ModelGeometry geometry() {
  pipeline::ModelGeometry g;  // LTX-Video: 32x spatial, 8x temporal
  return g;
}

const ServedModel kServed{"builtin:ltx-video", {"ltx-video"}};

std::variant<VideoCreateRequest, ApiError> create(const std::string& body, const std::string& type = "application/json") {
  return parse_video_create(body, type, geometry(), kServed);
}

ApiError create_error(const std::string& body, const std::string& type = "application/json") {
  auto r = create(body, type);
  EXPECT_TRUE(std::holds_alternative<ApiError>(r)) << body;
  return std::holds_alternative<ApiError>(r) ? std::get<ApiError>(r) : ApiError{};
}

TEST(OpenAiVideos, SecondsAndSizeBecomeFramesAndPixels) {
  auto r = create(R"({"model": "builtin:ltx-video", "prompt": "a cat", "seconds": "4", "size": "512x320"})");
  ASSERT_TRUE(std::holds_alternative<VideoCreateRequest>(r)) << std::get<ApiError>(r).message;
  const auto& v = std::get<VideoCreateRequest>(r);
  EXPECT_EQ(v.request.width, 512);
  EXPECT_EQ(v.request.height, 320);
  // 4 s at the default 25 fps = 100 frames; the nearest 8k+1 is 97.
  EXPECT_EQ(v.request.num_frames, 97);
  EXPECT_EQ(v.seconds, "4");
  auto n = create(R"({"model": "ltx-video", "prompt": "a cat", "seconds": 2, "fps": 24})");
  ASSERT_TRUE(std::holds_alternative<VideoCreateRequest>(n));
  EXPECT_EQ(std::get<VideoCreateRequest>(n).request.num_frames, 49);  // 48 -> 49
  EXPECT_EQ(frames_for_seconds(0.01, 24, 8), 1);
  EXPECT_EQ(frames_for_seconds(1, 25, 8), 25);
}

TEST(OpenAiVideos, MultipartFieldsAreTyped) {
  auto r = create(form({{"model", "builtin:ltx-video"}, {"prompt", "a cat"}, {"seconds", "1"}, {"size", "256x192"},
                        {"num_inference_steps", "3"}, {"guidance_scale", "2.5"}, {"seed", "7"}}),
                  form_type());
  ASSERT_TRUE(std::holds_alternative<VideoCreateRequest>(r)) << std::get<ApiError>(r).message;
  const auto& v = std::get<VideoCreateRequest>(r).request;
  EXPECT_EQ(v.num_steps, 3);
  EXPECT_DOUBLE_EQ(v.guidance_scale, 2.5);
  EXPECT_EQ(v.seed, 7u);
  EXPECT_EQ(v.num_frames, 25);
  EXPECT_EQ(v.width, 256);
  EXPECT_EQ(create_error(form({{"prompt", "x"}, {"num_inference_steps", "three"}}), form_type()).field,
            "num_inference_steps");
  EXPECT_EQ(create_error(form({{"prompt", "x"}, {"seed", "-1"}}), form_type()).field, "seed");
  EXPECT_EQ(create_error(form({{"prompt", "x"}, {"prompt", "y"}}), form_type()).field, "prompt");
  EXPECT_EQ(create_error(form({{"prompt", "\xff"}}), form_type()).field, "prompt");
}

TEST(OpenAiVideos, ErrorsNameTheField) {
  ApiError model = create_error(R"({"model": "sora-2", "prompt": "x"})");
  EXPECT_EQ(model.http_status, 404);
  EXPECT_EQ(model.field, "model");
  EXPECT_NE(model.message.find("sora-2"), std::string::npos);
  EXPECT_NE(model.message.find("builtin:ltx-video"), std::string::npos);
  for (const char* bad : {R"({"prompt": "x", "size": "512"})", R"({"prompt": "x", "size": "512x-320"})",
                          R"({"prompt": "x", "size": "0x320"})", R"({"prompt": "x", "size": 512})",
                          R"({"prompt": "x", "size": "512x320", "width": 256})"}) {
    EXPECT_EQ(create_error(bad).field, "size") << bad;
  }
  EXPECT_EQ(create_error(R"({"prompt": "x", "size": "500x320"})").field, "width");  // not a multiple of 32
  for (const char* bad : {R"({"prompt": "x", "seconds": "four"})", R"({"prompt": "x", "seconds": 0})",
                          R"({"prompt": "x", "seconds": "4", "num_frames": 9})", R"({"prompt": "x", "seconds": []})"}) {
    EXPECT_EQ(create_error(bad).field, "seconds") << bad;
  }
  ApiError ref = create_error(R"({"prompt": "x", "input_reference": {"image_url": "https://x/a.png"}})");
  EXPECT_EQ(ref.http_status, 422);
  EXPECT_EQ(ref.field, "input_reference");
  EXPECT_NE(ref.message.find("not supported by this model"), std::string::npos);
  EXPECT_EQ(create_error(form({{"prompt", "x"}}, "input_reference"), form_type()).field, "input_reference");
  EXPECT_EQ(create_error(form({{"prompt", "x"}, {"input_reference[image_url]", "u"}}), form_type()).field,
            "input_reference");
  EXPECT_EQ(create_error(R"({"prompt": "x", "remix": 1})").field, "remix");  // still no unknown fields
  // The same size given both ways agrees.
  EXPECT_TRUE(std::holds_alternative<VideoCreateRequest>(create(R"({"prompt": "x", "size": "512x320", "width": 512})")));
}

// ---- the service's answers ----

ServiceInfo info() {
  ServiceInfo i;
  i.model = "builtin:ltx-video";
  i.model_aliases = {"ltx-video"};
  i.model_created = 1700000000;
  i.family = "ltx-video";
  i.group_size = 2;
  return i;
}

HttpResponse call(ApiService& api, const std::string& method, const std::string& target, const std::string& body = "",
                  Headers extra = {}) {
  Headers h = {{"host", "127.0.0.1:8080"}};
  for (auto& e : extra) h.push_back(e);
  return api.handle(request(method, target, h, body));
}

json body_of(const HttpResponse& r) { return json::parse(r.body); }

const char* kVideo = R"({"prompt": "p", "width": 64, "height": 64, "num_frames": 9, "num_inference_steps": 2})";

// Runs the next queued job to completion as the group would.
std::string complete_next(ApiService& api) {
  auto w = api.next_work(std::chrono::milliseconds(10));
  EXPECT_TRUE(w.has_value());
  if (!w) return "";
  WorkResult done;
  done.mp4 = "mp4 bytes";
  done.thumbnail_png = "\x89PNG thumbnail";
  done.frame_count = 9;
  api.on_done(*w, done);
  return w->id;
}

TEST(ApiSurface, ModelsListTheServedModel) {
  ApiService api(info(), ServiceConfig{});
  json m = body_of(call(api, "GET", "/v1/models"));
  ASSERT_EQ(m["data"].size(), 1u);
  EXPECT_EQ(m["object"], "list");
  EXPECT_EQ(m["data"][0]["id"], "builtin:ltx-video");
  EXPECT_EQ(m["data"][0]["object"], "model");
  EXPECT_EQ(m["data"][0]["owned_by"], "ltx-worker");
  EXPECT_EQ(m["data"][0]["created"], 1700000000);
}

TEST(ApiSurface, TheVideoObjectHasTheOpenAiFields) {
  ApiService api(info(), ServiceConfig{});
  HttpResponse created = call(api, "POST", "/v1/videos", R"({"prompt": "p", "size": "64x64", "seconds": "0.36"})");
  ASSERT_EQ(created.status, 202) << created.body;
  json v = body_of(created);
  const std::string id = v["id"];
  EXPECT_EQ(id.size(), 4u + 32u) << "vid_ and 128 random bits";
  EXPECT_EQ(v["object"], "video");
  EXPECT_EQ(v["model"], "builtin:ltx-video");
  EXPECT_EQ(v["status"], "queued");
  EXPECT_EQ(v["progress"], 0);
  EXPECT_EQ(v["size"], "64x64");
  EXPECT_EQ(v["seconds"], "0.36");
  EXPECT_EQ(v["num_frames"], 9);  // 0.36 s * 25 fps = 9
  EXPECT_TRUE(v["created_at"].is_number_integer());
  EXPECT_TRUE(v["completed_at"].is_null());
  EXPECT_TRUE(v["error"].is_null());
  complete_next(api);
  json done = body_of(call(api, "GET", "/v1/videos/" + id));
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["progress"], 100);
  EXPECT_TRUE(done["completed_at"].is_number_integer());
  HttpResponse thumb = call(api, "GET", "/v1/videos/" + id + "/content?variant=thumbnail");
  EXPECT_EQ(thumb.status, 200);
  EXPECT_EQ(thumb.content_type, "image/png");
  EXPECT_EQ(thumb.body, "\x89PNG thumbnail");
  EXPECT_EQ(call(api, "GET", "/v1/videos/" + id + "/content").content_type, "video/mp4");
  EXPECT_EQ(call(api, "GET", "/v1/videos/" + id + "/content?variant=video").content_type, "video/mp4");
  EXPECT_EQ(body_of(call(api, "GET", "/v1/videos/" + id + "/content?variant=spritesheet"))["error"]["field"], "variant");
  // A cancelled job reads as failed with its code; the project's status keeps it.
  const std::string other = body_of(call(api, "POST", "/v1/videos", kVideo))["id"];
  json cancelled = body_of(call(api, "DELETE", "/v1/videos/" + other));
  EXPECT_EQ(cancelled["status"], "failed");
  EXPECT_EQ(cancelled["job_status"], "cancelled");
  EXPECT_EQ(cancelled["error"]["code"], "cancelled");
  json deleted = body_of(call(api, "DELETE", "/v1/videos/" + id));
  EXPECT_EQ(deleted, (json{{"id", id}, {"object", "video.deleted"}, {"deleted", true}}));
}

TEST(ApiSurface, ListPaginatesLikeTheSdkExpects) {
  ServiceConfig c;
  c.max_queue = 64;
  ApiService api(info(), c);
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(body_of(call(api, "POST", "/v1/videos", kVideo))["id"]);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 5u);
  json first = body_of(call(api, "GET", "/v1/videos?limit=2&order=asc"));
  ASSERT_EQ(first["data"].size(), 2u);
  EXPECT_EQ(first["data"][0]["id"], ids[0]);
  EXPECT_EQ(first["first_id"], ids[0]);
  EXPECT_EQ(first["last_id"], ids[1]);
  EXPECT_EQ(first["has_more"], true);
  json last = body_of(call(api, "GET", "/v1/videos?limit=2&order=asc&after=" + ids[3]));
  ASSERT_EQ(last["data"].size(), 1u);
  EXPECT_EQ(last["data"][0]["id"], ids[4]);
  EXPECT_EQ(last["has_more"], false);
  json newest = body_of(call(api, "GET", "/v1/videos"));  // desc by default
  EXPECT_EQ(newest["data"][0]["id"], ids[4]);
  EXPECT_EQ(newest["data"].size(), 5u);
  EXPECT_EQ(call(api, "GET", "/v1/videos?limit=0").status, 422);
  EXPECT_EQ(call(api, "GET", "/v1/videos?order=up").status, 422);
  EXPECT_EQ(call(api, "GET", "/v1/videos?after=vid_nope").status, 404);
}

TEST(ApiSurface, AccessRulesApplyToEveryRoute) {
  ServiceConfig c;
  c.api_key = kKey;
  ApiService api(info(), c);
  EXPECT_EQ(call(api, "GET", "/healthz").status, 200);
  EXPECT_EQ(call(api, "GET", "/").status, 200);
  HttpResponse no_key = call(api, "GET", "/v1/models");
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(body_of(no_key)["error"]["type"], "authentication_error");
  bool challenge = false;
  for (const auto& [k, v] : no_key.headers) challenge = challenge || (k == "WWW-Authenticate" && v == "Bearer");
  EXPECT_TRUE(challenge);
  EXPECT_EQ(call(api, "GET", "/v1/models", "", {{"authorization", std::string("Bearer ") + kKey}}).status, 200);
  EXPECT_EQ(call(api, "POST", "/v1/videos", kVideo, {{"authorization", std::string("Bearer ") + kKey},
                                                     {"origin", "http://evil.example"}}).status, 403);
  EXPECT_EQ(call(api, "POST", "/v1/videos", kVideo, {{"authorization", std::string("Bearer ") + kKey}}).status, 202);
}

TEST(ApiSurface, PerClientLimit) {
  ServiceConfig c;
  c.max_client_work = 2;
  ApiService api(info(), c);
  auto from = [&](const std::string& address) {
    return api.handle(HttpRequest{"POST", "/v1/videos", kVideo, {{"host", "127.0.0.1:8080"}}, address});
  };
  EXPECT_EQ(from("10.0.0.1").status, 202);
  EXPECT_EQ(from("10.0.0.1").status, 202);
  HttpResponse third = from("10.0.0.1");
  EXPECT_EQ(third.status, 429);
  EXPECT_NE(body_of(third)["error"]["message"].get<std::string>().find("--max-client-work 2"), std::string::npos);
  EXPECT_EQ(from("10.0.0.2").status, 202) << "another client is not held back";
  complete_next(api);  // one of the first client's jobs ends
  EXPECT_EQ(from("10.0.0.1").status, 202);
  // With an API key every caller is the key's client.
  ServiceConfig keyed = c;
  keyed.api_key = kKey;
  ApiService shared(info(), keyed);
  auto with_key = [&](const std::string& address) {
    return shared.handle(HttpRequest{"POST", "/v1/videos", kVideo,
                                     {{"host", "127.0.0.1"}, {"authorization", std::string("Bearer ") + kKey}}, address});
  };
  EXPECT_EQ(with_key("10.0.0.1").status, 202);
  EXPECT_EQ(with_key("10.0.0.2").status, 202);
  EXPECT_EQ(with_key("10.0.0.3").status, 429);
}

TEST(ApiSurface, NonUtf8PathsAndBodiesGetA4xx) {
  ApiService api(info(), ServiceConfig{});
  HttpResponse r = call(api, "GET", std::string("/v1/videos/\xff\xfe"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NO_THROW(json::parse(r.body));
  HttpResponse p = call(api, "GET", std::string("/\xc3\x28"));
  EXPECT_EQ(p.status, 404);
  EXPECT_NO_THROW(json::parse(p.body));
  EXPECT_EQ(call(api, "POST", "/v1/videos", std::string(100000, '[')).status, 400);
  EXPECT_EQ(call(api, "POST", "/v1/streams", std::string(100000, '{')).status, 400);
  EXPECT_EQ(call(api, "POST", "/v1/videos", "{\"prompt\": \"\xff\"}").status, 400);
}

}  // namespace
}  // namespace ltx::service

namespace ltx::service {
namespace {

TEST(ApiSurface, HealthReportsTheGroupsLiveness) {
  ApiService api(ServiceInfo{}, ServiceConfig{});
  auto health = [&] {
    HttpResponse r = api.handle(HttpRequest{"GET", "/healthz", "", {{"host", "localhost"}}, ""});
    return std::make_pair(r.status, nlohmann::json::parse(r.body));
  };
  EXPECT_FALSE(api.heartbeat_due()) << "just started";
  auto [ok_status, ok] = health();
  EXPECT_EQ(ok_status, 200);
  EXPECT_EQ(ok["group"]["alive"], true);
  api.on_heartbeat_start();
  api.on_heartbeat(unavailable_error("rank 1 does not answer"));
  auto [bad_status, bad] = health();
  EXPECT_EQ(bad_status, 503);
  EXPECT_EQ(bad["status"], "group_unavailable");
  EXPECT_EQ(bad["ready"], false);
  EXPECT_EQ(bad["group"]["error"], "rank 1 does not answer");
  api.on_heartbeat_start();
  api.on_heartbeat(Status());
  EXPECT_EQ(health().first, 200);
}

TEST(ServiceConfig, LimitsAreSizedToTheHost) {
  ServiceConfig c;
  c.size_to_host(20ll << 30, 2);
  EXPECT_EQ(c.max_pixel_frames, (20ll << 30) / 2 / kRank0BytesPerPixelFrame);
  EXPECT_LT(c.max_pixel_frames * kRank0BytesPerPixelFrame, 20ll << 30) << "a job's peak fits in the memory";
  EXPECT_EQ(c.max_kv_bytes_per_rank, (20ll << 30) / 2 / 4);
  ServiceConfig big;
  big.size_to_host(1ll << 40, 1);
  EXPECT_EQ(big.max_pixel_frames, kMaxPixelFramesCap);
  ServiceConfig set;
  set.max_pixel_frames = 64 * 64 * 9;
  set.max_kv_bytes_per_rank = -1;
  set.size_to_host(20ll << 30, 2);
  EXPECT_EQ(set.max_pixel_frames, 64 * 64 * 9) << "explicit values stay";
  EXPECT_EQ(set.max_kv_bytes_per_rank, -1);
  EXPECT_TRUE(set.validate().ok());
  EXPECT_GT(host_available_memory(), 0);
}

TEST(ServiceConfig, GpuMemoryBoundsTheAutomaticLimits) {
  ServiceConfig c;
  c.size_to_host(100ll << 30, 8);  // a big host: 12.5 GiB share per rank
  const int64_t host_kv = c.max_kv_bytes_per_rank, host_pixels = c.max_pixel_frames;
  // 40 GiB free on the tightest GPU after the weights, 30 GiB on rank 0's decoder GPU.
  c.size_to_devices(40ll << 30, 30ll << 30, /*kv_auto=*/true, /*pixels_auto=*/true);
  EXPECT_EQ(c.max_kv_bytes_per_rank, std::min<int64_t>(host_kv, (40ll << 30) / 4));
  EXPECT_EQ(c.max_pixel_frames, std::min<int64_t>(host_pixels, (30ll << 30) / 2 / kRank0BytesPerPixelFrame));
  EXPECT_LT(c.max_pixel_frames * kRank0BytesPerPixelFrame, 30ll << 30) << "a job's decode fits the GPU";
  // A small GPU wins over a big host.
  ServiceConfig small;
  small.size_to_host(100ll << 30, 1);
  small.size_to_devices(4ll << 30, 2ll << 30, true, true);
  EXPECT_EQ(small.max_kv_bytes_per_rank, 1ll << 30);
  EXPECT_EQ(small.max_pixel_frames, (2ll << 30) / 2 / kRank0BytesPerPixelFrame);
  // Explicit limits stay, and CPU parts (0) change nothing.
  ServiceConfig set;
  set.max_kv_bytes_per_rank = 5;
  set.max_pixel_frames = 64 * 64 * 9;
  set.size_to_devices(4ll << 30, 2ll << 30, false, false);
  EXPECT_EQ(set.max_kv_bytes_per_rank, 5);
  EXPECT_EQ(set.max_pixel_frames, 64 * 64 * 9);
  ServiceConfig cpu;
  cpu.size_to_host(20ll << 30, 2);
  const ServiceConfig before = cpu;
  cpu.size_to_devices(0, 0, true, true);
  EXPECT_EQ(cpu.max_kv_bytes_per_rank, before.max_kv_bytes_per_rank);
  EXPECT_EQ(cpu.max_pixel_frames, before.max_pixel_frames);
  EXPECT_EQ(device_available_memory(at::Device(at::kCPU)), 0);
}

}  // namespace
}  // namespace ltx::service
