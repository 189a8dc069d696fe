#include "service/video_request_schema.h"

#include <nlohmann/json.hpp>
#include <set>

namespace ltx::service {
namespace {

using nlohmann::json;

ApiError field_error(const std::string& field, const std::string& message) {
  return api_error_from_status(invalid_argument_error(field + " " + message), field);
}

}  // namespace

std::variant<pipeline::GenerationRequest, ApiError> parse_video_request(const std::string& body) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_json_error("the request body is not valid JSON");
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  static const std::set<std::string> kKnown = {"prompt", "negative_prompt", "width", "height", "num_frames",
                                               "num_inference_steps", "guidance_scale", "guidance_rescale",
                                               "seed", "fps", "decode_timestep", "decode_noise_scale"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (!kKnown.count(it.key())) return field_error(it.key(), "is not a known field");
  }
  pipeline::GenerationRequest r;
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
  for (auto e : {str("prompt", &r.prompt), str("negative_prompt", &r.negative_prompt), integer("width", &r.width),
                 integer("height", &r.height), integer("num_frames", &r.num_frames),
                 integer("num_inference_steps", &r.num_steps), number("guidance_scale", &r.guidance_scale),
                 number("guidance_rescale", &r.guidance_rescale), number("fps", &r.fps),
                 number("decode_timestep", &r.decode_timestep), number("decode_noise_scale", &r.decode_noise_scale)}) {
    if (e) return *e;
  }
  if (j.contains("seed")) {
    if (!j["seed"].is_number_unsigned()) return field_error("seed", "must be a non-negative integer");
    r.seed = j["seed"].get<uint64_t>();
  }
  Status valid = pipeline::validate_request(r);
  if (!valid.ok()) {
    // validate_request's messages start with the field name.
    const std::string& m = valid.message();
    return api_error_from_status(valid, m.substr(0, m.find(' ')));
  }
  return r;
}

}  // namespace ltx::service
