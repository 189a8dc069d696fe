#include "service/stream_request_schema.h"

#include "pipeline/registry/model_registry.h"
#include "service/json_fields.h"
#include "service/video_params_json.h"

#include <nlohmann/json.hpp>

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
  auto body_json = parse_json_body(body);
  if (auto* e = std::get_if<ApiError>(&body_json)) return *e;
  const json& j = std::get<json>(body_json);
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  if (!model.geometry.streams) {
    return api_error_from_status(pipeline::validate_stream_settings(pipeline::StreamSettings{}, model.geometry));
  }

  const bool bare_state = j.contains("kind");
  if (bare_state || j.contains("state")) {
    if (!bare_state && j.size() != 1) {
      for (auto it = j.begin(); it != j.end(); ++it) {
        if (it.key() != "state") return field_error(it.key(), "cannot be given with state (the state holds the settings)");
      }
    }
    const json& doc = bare_state ? j : j["state"];
    if (!doc.is_object()) return field_error("state", "must be a continuation state object");
    auto parsed = pipeline::parse_stream_state(doc.dump(), model, store);
    if (!parsed.ok()) {
      // ltx2.v1 messages start with the field they name ("payload.segment_index ...").
      const std::string& m = parsed.status().message();
      std::string first = m.substr(0, m.find(' '));
      if (!first.empty() && first.back() == ':') first.pop_back();
      const bool named = first.rfind("payload", 0) == 0 || first == "kind";
      return api_error_from_status(parsed.status(), named ? "state." + first : "state");
    }
    StreamCreateRequest out;
    out.settings = parsed->settings;
    out.state = std::make_shared<const pipeline::ContinuationState>(std::move(parsed).value());
    return out;
  }

  pipeline::StreamSettings s = pipeline::default_request(model.geometry);
  if (auto e = read_params(j, pipeline::kStreamParam, model.geometry.makes_sound(), &s)) return *e;
  Status valid = pipeline::validate_stream_settings(s, model.geometry);
  if (!valid.ok()) return validation_error(valid);
  StreamCreateRequest out;
  out.settings = s;
  return out;
}

std::variant<std::optional<int64_t>, ApiError> parse_chunk_request(const std::string& body) {
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) return std::optional<int64_t>();
  auto body_json = parse_json_body(body);
  if (auto* e = std::get_if<ApiError>(&body_json)) return *e;
  const json& j = std::get<json>(body_json);
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  if (auto e = JsonFields(j).unknown({"index"})) return *e;
  if (!j.contains("index") || j["index"].is_null()) return std::optional<int64_t>();
  if (!j["index"].is_number_integer()) return field_error("index", "must be an integer");
  const int64_t index = j["index"].get<int64_t>();
  if (index < 0) return field_error("index", "must be >= 0, got " + std::to_string(index));
  return std::optional<int64_t>(index);
}

}  // namespace ltx::service
