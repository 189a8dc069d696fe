#include "service/video_params_json.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
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

std::optional<ApiError> type_form_fields(nlohmann::json* object, pipeline::ParamUse kind, bool makes_sound) {
  std::optional<ApiError> error;
  pipeline::VideoParams probe;
  for_each_param(probe, [&](const char* name, auto& v, unsigned uses) {
    using T = std::decay_t<decltype(v)>;
    if (error || !pipeline::takes_param(uses, kind, makes_sound) || !object->contains(name)) return;
    nlohmann::json& value = (*object)[name];
    if (!value.is_string()) return;
    const std::string text = value.get<std::string>();
    if constexpr (std::is_same_v<T, std::string>) {
      return;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (text == "true" || text == "1") value = true;
      else if (text == "false" || text == "0") value = false;
      else error = field_error(name, "must be true or false, got '" + text.substr(0, 40) + "'");
    } else if constexpr (std::is_same_v<T, double>) {
      char* end = nullptr;
      errno = 0;
      const double x = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || errno != 0 || !std::isfinite(x)) {
        error = field_error(name, "must be a number, got '" + text.substr(0, 40) + "'");
      } else {
        value = x;
      }
    } else {
      char* end = nullptr;
      errno = 0;
      const long long x = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || end != text.c_str() + text.size() || errno != 0) {
        error = field_error(name, "must be an integer, got '" + text.substr(0, 40) + "'");
      } else if constexpr (std::is_same_v<T, uint64_t>) {
        if (x < 0) error = field_error(name, "must be >= 0, got " + text);
        else value = static_cast<uint64_t>(x);
      } else {
        value = static_cast<int64_t>(x);
      }
    }
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
