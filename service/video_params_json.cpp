#include "service/video_params_json.h"

#include <set>
#include <string>
#include <type_traits>

#include "service/json_fields.h"

namespace ltx::service {

std::optional<ApiError> read_params(const nlohmann::json& object, pipeline::ParamUse kind, bool makes_sound,
                                    pipeline::VideoParams* params) {
  std::set<std::string> known;
  for_each_param(*params, [&](const char* name, auto&, unsigned uses) {
    if (pipeline::takes_param(uses, kind, makes_sound)) known.insert(name);
  });
  JsonFields f(object);
  if (auto e = f.unknown(known)) return e;
  if (auto e = f.required("prompt")) return e;
  std::optional<ApiError> error;
  for_each_param(*params, [&](const char* name, auto& v, unsigned uses) {
    if (error || !pipeline::takes_param(uses, kind, makes_sound)) return;
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, std::string>) error = f.string(name, &v);
    else if constexpr (std::is_same_v<T, bool>) error = f.boolean(name, &v);
    else if constexpr (std::is_same_v<T, double>) error = f.number(name, &v);
    else if constexpr (std::is_same_v<T, uint64_t>) error = f.non_negative(name, &v);
    else error = f.integer(name, &v);
  });
  return error;
}

nlohmann::json params_json(const pipeline::VideoParams& params, pipeline::ParamUse kind, bool makes_sound) {
  nlohmann::json j = nlohmann::json::object();
  for_each_param(params, [&](const char* name, const auto& v, unsigned uses) {
    if (pipeline::takes_param(uses, kind, makes_sound)) j[name] = v;
  });
  return j;
}

}  // namespace ltx::service
