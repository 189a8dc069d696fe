#include "service/video_request_schema.h"

#include <nlohmann/json.hpp>

#include "service/video_params_json.h"

namespace ltx::service {

std::variant<pipeline::GenerationRequest, ApiError> parse_video_request(const std::string& body,
                                                                         const pipeline::ModelGeometry& geometry) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_json_error("the request body is not valid JSON");
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  pipeline::GenerationRequest r;
  if (auto e = read_params(j, pipeline::kJobParam, &r)) return *e;
  Status valid = pipeline::validate_request(r, geometry);
  if (!valid.ok()) {
    // validate_request's messages start with the field name.
    const std::string& m = valid.message();
    return api_error_from_status(valid, m.substr(0, m.find(' ')));
  }
  return r;
}

}  // namespace ltx::service
