#include "service/video_request_schema.h"

#include <nlohmann/json.hpp>

#include "service/video_params_json.h"

namespace ltx::service {

std::variant<pipeline::GenerationRequest, ApiError> parse_video_request(const std::string& body,
                                                                         const pipeline::ModelGeometry& geometry) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_json_error("the request body is not valid JSON");
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
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

}  // namespace ltx::service
