#include "service/video_request_schema.h"

#include <nlohmann/json.hpp>
#include <set>

#include "service/json_fields.h"

namespace ltx::service {

std::variant<pipeline::GenerationRequest, ApiError> parse_video_request(const std::string& body,
                                                                         const pipeline::ModelGeometry& geometry) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad_json_error("the request body is not valid JSON");
  if (!j.is_object()) return bad_json_error("the request body must be a JSON object");
  static const std::set<std::string> kKnown = {"prompt", "negative_prompt", "width", "height", "num_frames",
                                               "num_inference_steps", "guidance_scale", "guidance_rescale",
                                               "seed", "fps", "decode_timestep", "decode_noise_scale"};
  JsonFields f(j);
  pipeline::GenerationRequest r;
  for (auto e : {f.unknown(kKnown), f.required("prompt"), f.string("prompt", &r.prompt),
                 f.string("negative_prompt", &r.negative_prompt), f.integer("width", &r.width),
                 f.integer("height", &r.height), f.integer("num_frames", &r.num_frames),
                 f.integer("num_inference_steps", &r.num_steps), f.number("guidance_scale", &r.guidance_scale),
                 f.number("guidance_rescale", &r.guidance_rescale), f.number("fps", &r.fps),
                 f.number("decode_timestep", &r.decode_timestep),
                 f.number("decode_noise_scale", &r.decode_noise_scale), f.non_negative("seed", &r.seed)}) {
    if (e) return *e;
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
