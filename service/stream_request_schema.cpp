#include "service/stream_request_schema.h"

#include <nlohmann/json.hpp>
#include <set>

namespace ltx::service {
namespace {

using nlohmann::json;

ApiError field_error(const std::string& field, const std::string& message) {
  return api_error_from_status(invalid_argument_error(field + " " + message), field);
}

// The settings validators' messages start with the field name.
ApiError validation_error(const Status& s) {
  const std::string& m = s.message();
  return api_error_from_status(s, m.substr(0, m.find(' ')));
}

}  // namespace

std::variant<StreamCreateRequest, ApiError> parse_stream_request(const std::string& body,
                                                                 const pipeline::StateModelInfo& model,
                                                                 const pipeline::BlobStore* store) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_json_error("the request body is not valid JSON");
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");

  const bool bare_state = j.contains("kind");
  if (bare_state || j.contains("state")) {
    if (!bare_state && j.size() != 1) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() != "state") return field_error(it.key(), "cannot be given with state (the state holds the settings)");
      }
    }
    const json& doc = bare_state ? j : j["state"];
    if (!doc.is_object()) return field_error("state", "must be a continuation state object");
    auto parsed = pipeline::from_json(doc.dump(), model, store);
    if (!parsed.ok()) return api_error_from_status(parsed.status(), "state");
    StreamCreateRequest out;
    out.settings = parsed->settings;
    out.state = std::make_shared<const pipeline::ContinuationState>(std::move(parsed).value());
    return out;
  }

  static const std::set<std::string> kKnown = {
      "prompt", "negative_prompt", "width", "height", "chunk_frames", "num_inference_steps", "guidance_scale",
      "seed", "fps", "window", "sink", "max_kv_bytes", "decode_context", "decode_timestep", "decode_noise_scale"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!kKnown.count(it.key())) return field_error(it.key(), "is not a known field");
  }
  pipeline::StreamSettings s;
  auto str = [&](const char* k, std::string* out) -> std::optional<ApiError> {
    if (!j.contains(k)) return std::nullopt;
    if (!j[k].is_string()) return field_error(k, "must be a string");
    *out = j[k].get<std::string>();
    return std::nullopt;
  };
  auto integer = [&](const char* k, int64_t* out) -> std::optional<ApiError> {
    if (!j.contains(k)) return std::nullopt;
    if (!j[k].is_number_integer()) return field_error(k, "must be an integer");
    *out = j[k].get<int64_t>();
    return std::nullopt;
  };
  auto number = [&](const char* k, double* out) -> std::optional<ApiError> {
    if (!j.contains(k)) return std::nullopt;
    if (!j[k].is_number()) return field_error(k, "must be a number");
    *out = j[k].get<double>();
    return std::nullopt;
  };
  if (!j.contains("prompt")) return field_error("prompt", "is required");
  for (auto e : {str("prompt", &s.prompt), str("negative_prompt", &s.negative_prompt), integer("width", &s.width),
                 integer("height", &s.height), integer("chunk_frames", &s.chunk_frames),
                 integer("num_inference_steps", &s.num_steps), number("guidance_scale", &s.guidance_scale),
                 number("fps", &s.fps), integer("window", &s.window_chunks), integer("max_kv_bytes", &s.max_kv_bytes),
                 integer("decode_context", &s.decode_context), number("decode_timestep", &s.decode_timestep),
                 number("decode_noise_scale", &s.decode_noise_scale)}) {
    if (e) return *e;
  }
  if (j.contains("seed")) {
    if (!j["seed"].is_number_unsigned()) return field_error("seed", "must be a non-negative integer");
    s.seed = j["seed"].get<uint64_t>();
  }
  if (j.contains("sink")) {
    if (!j["sink"].is_boolean()) return field_error("sink", "must be true or false");
    s.sink = j["sink"].get<bool>();
  }
  Status valid = pipeline::validate_stream_settings(s);
  if (!valid.ok()) return validation_error(valid);
  StreamCreateRequest out;
  out.settings = s;
  return out;
}

std::variant<std::optional<int64_t>, ApiError> parse_chunk_request(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return std::optional<int64_t>();
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_json_error("the request body is not valid JSON");
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "index") return field_error(it.key(), "is not a known field");
  }
  if (!j.contains("index") || j["index"].is_null()) return std::optional<int64_t>();
  if (!j["index"].is_number_integer()) return field_error("index", "must be an integer");
  const int64_t index = j["index"].get<int64_t>();
  if (index < 0) return field_error("index", "must be >= 0, got " + std::to_string(index));
  return std::optional<int64_t>(index);
}

}  // namespace ltx::service
