#include "service/video_request_schema.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "service/json_fields.h"
#include "service/multipart.h"
#include "service/video_params_json.h"

namespace ltx::service {

using nlohmann::json;

bool ServedModel::answers_to(const std::string& model) const {
  return model == name || std::find(aliases.begin(), aliases.end(), model) != aliases.end();
}

int64_t frames_for_seconds(double seconds, double fps, int64_t t) {
  const double frames = seconds * fps;
  const int64_t k = std::max<int64_t>(0, std::llround((frames - 1) / static_cast<double>(t)));
  return k * t + 1;
}

namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

ApiError not_supported_reference() {
  return field_error("input_reference",
                     "is not supported by this model: it makes video from a prompt alone; send the prompt without it");
}

// The form's text parts as a JSON object of strings.
std::variant<json, ApiError> form_object(const std::string& body, const std::string& content_type) {
  auto parts = parse_multipart_form(body, content_type);
  if (auto* e = std::get_if<ApiError>(&parts)) return *e;
  json object = json::object();
  for (const FormPart& p : std::get<std::vector<FormPart>>(parts)) {
    if (starts_with(p.name, "input_reference")) return not_supported_reference();
    if (!is_utf8(p.name)) return bad_json_error("a form field's name is not UTF-8");
    if (p.is_file) return field_error(p.name, "must be a text field, not a file");
    if (!is_utf8(p.data)) return field_error(p.name, "must be UTF-8 text");
    if (object.contains(p.name)) return field_error(p.name, "is given more than once");
    object[p.name] = p.data;
  }
  return object;
}

// Takes the OpenAI fields out of `object`, into project fields.
std::optional<ApiError> take_openai_fields(json* object, const pipeline::ModelGeometry& geometry,
                                           const ServedModel& served, std::string* seconds_text) {
  json& j = *object;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (starts_with(it.key(), "input_reference")) return not_supported_reference();
  }
  if (j.contains("model")) {
    if (!j["model"].is_string()) return field_error("model", "must be a string");
    const std::string model = j["model"].get<std::string>();
    if (!served.answers_to(model)) {
      ApiError e = api_error_from_status(
          not_found_error("model '" + model.substr(0, 200) + "' is not served here; this group serves '" +
                          served.name + "' (GET /v1/models)"),
          "model");
      e.code = "model_not_found";
      return e;
    }
    j.erase("model");
  }
  if (j.contains("size")) {
    const json& v = j["size"];
    if (!v.is_string()) return field_error("size", "must be a string WIDTHxHEIGHT, e.g. \"768x512\"");
    const std::string size = v.get<std::string>();
    const size_t x = size.find('x');
    char* end = nullptr;
    long long w = -1, h = -1;
    if (x != std::string::npos && x > 0 && x < 6 && size.size() - x - 1 > 0 && size.size() - x - 1 < 6) {
      w = std::strtoll(size.c_str(), &end, 10);
      if (end != size.c_str() + x) w = -1;
      h = std::strtoll(size.c_str() + x + 1, &end, 10);
      if (end != size.c_str() + size.size()) h = -1;
    }
    if (w <= 0 || h <= 0 || size.find_first_of("+- ") != std::string::npos) {
      return field_error("size", "must be WIDTHxHEIGHT with positive integers, e.g. \"768x512\", got '" +
                                     size.substr(0, 40) + "'");
    }
    for (const auto& [key, value] : {std::pair<const char*, long long>{"width", w}, {"height", h}}) {
      if (j.contains(key) && !(j[key].is_number_integer() && j[key].get<long long>() == value)) {
        return field_error("size", "'" + size + "' disagrees with " + key + " " + j[key].dump());
      }
      j[key] = value;
    }
    j.erase("size");
  }
  if (j.contains("seconds")) {
    const json& v = j["seconds"];
    double seconds = NAN;
    if (v.is_number()) {
      seconds = v.get<double>();
      *seconds_text = v.dump();
    } else if (v.is_string()) {
      *seconds_text = v.get<std::string>();
      char* end = nullptr;
      seconds = std::strtod(seconds_text->c_str(), &end);
      if (seconds_text->empty() || end != seconds_text->c_str() + seconds_text->size()) seconds = NAN;
    }
    if (!(seconds > 0) || !std::isfinite(seconds) || seconds > 3600) {
      return field_error("seconds", "must be a number of seconds above 0 (a string such as \"4\" or a number), got " +
                                        v.dump().substr(0, 40));
    }
    double fps = pipeline::default_request(geometry).fps;
    if (j.contains("fps")) {
      if (!j["fps"].is_number()) return field_error("fps", "must be a number");
      fps = j["fps"].get<double>();
      if (!(fps > 0)) return field_error("fps", "must be above 0");
    }
    const int64_t frames = frames_for_seconds(seconds, fps, geometry.temporal_compression);
    if (j.contains("num_frames") && !(j["num_frames"].is_number_integer() && j["num_frames"].get<int64_t>() == frames)) {
      return field_error("seconds", *seconds_text + " s at " + json(fps).dump() + " fps is " + std::to_string(frames) +
                                        " frames, which disagrees with num_frames " + j["num_frames"].dump());
    }
    j["num_frames"] = frames;
    j.erase("seconds");
  }
  return std::nullopt;
}

// The project's fields of a JSON object (the OpenAI ones already taken out).
std::variant<pipeline::GenerationRequest, ApiError> read_request(const json& j, const pipeline::ModelGeometry& geometry) {
  pipeline::GenerationRequest r = pipeline::default_request(geometry);
  if (auto e = read_params(j, pipeline::kJobParam, geometry.makes_sound(), &r)) return *e;
  if (r.pipeline == "distilled" && j.contains("num_inference_steps")) {
    return api_error_from_status(
        invalid_argument_error("num_inference_steps: the distilled pipeline's sigmas are fixed (8 steps at half size, "
                               "3 at full size); leave the field out"),
        "num_inference_steps");
  }
  Status valid = pipeline::validate_request(r, geometry);
  if (!valid.ok()) {
    // validate_request's messages start with the field name.
    const std::string& m = valid.message();
    return api_error_from_status(valid, m.substr(0, m.find(' ')));
  }
  return r;
}

}  // namespace

std::variant<VideoCreateRequest, ApiError> parse_video_create(const std::string& body, const std::string& content_type,
                                                              const pipeline::ModelGeometry& geometry,
                                                              const ServedModel& served) {
  json j;
  const bool form = is_multipart_form(content_type);
  if (form) {
    auto object = form_object(body, content_type);
    if (auto* e = std::get_if<ApiError>(&object)) return *e;
    j = std::move(std::get<json>(object));
    if (auto e = type_form_fields(&j, pipeline::kJobParam, geometry.makes_sound())) return *e;
  } else {
    auto parsed = parse_json_body(body);
    if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
    j = std::move(std::get<json>(parsed));
    if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  }
  VideoCreateRequest out;
  if (auto e = take_openai_fields(&j, geometry, served, &out.seconds)) return *e;
  auto request = read_request(j, geometry);
  if (auto* e = std::get_if<ApiError>(&request)) return *e;
  out.request = std::get<pipeline::GenerationRequest>(request);
  return out;
}

std::variant<pipeline::GenerationRequest, ApiError> parse_video_request(const std::string& body,
                                                                         const pipeline::ModelGeometry& geometry) {
  auto parsed = parse_json_body(body);
  if (auto* e = std::get_if<ApiError>(&parsed)) return *e;
  const json& j = std::get<json>(parsed);
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  return read_request(j, geometry);
}

}  // namespace ltx::service
