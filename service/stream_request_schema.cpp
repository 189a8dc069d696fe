#include "service/stream_request_schema.h"

#include "service/json_fields.h"

#include <nlohmann/json.hpp>
#include <set>

namespace ltx::service {
namespace {

using nlohmann::json;

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
  JsonFields f(j);
  pipeline::StreamSettings s;
  for (auto e : {f.unknown(kKnown), f.required("prompt"), f.string("prompt", &s.prompt),
                 f.string("negative_prompt", &s.negative_prompt), f.integer("width", &s.width),
                 f.integer("height", &s.height), f.integer("chunk_frames", &s.chunk_frames),
                 f.integer("num_inference_steps", &s.num_steps), f.number("guidance_scale", &s.guidance_scale),
                 f.number("fps", &s.fps), f.integer("window", &s.window_chunks),
                 f.integer("max_kv_bytes", &s.max_kv_bytes), f.integer("decode_context", &s.decode_context),
                 f.number("decode_timestep", &s.decode_timestep), f.number("decode_noise_scale", &s.decode_noise_scale),
                 f.non_negative("seed", &s.seed), f.boolean("sink", &s.sink)}) {
    if (e) return *e;
  }
  Status valid = pipeline::validate_stream_settings(s, model.geometry);
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
  if (auto e = JsonFields(j).unknown({"index"})) return *e;
  if (!j.contains("index") || j["index"].is_null()) return std::optional<int64_t>();
  if (!j["index"].is_number_integer()) return field_error("index", "must be an integer");
  const int64_t index = j["index"].get<int64_t>();
  if (index < 0) return field_error("index", "must be >= 0, got " + std::to_string(index));
  return std::optional<int64_t>(index);
}

}  // namespace ltx::service
