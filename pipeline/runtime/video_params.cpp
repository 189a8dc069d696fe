#include "pipeline/runtime/video_params.h"

#include <type_traits>

#include "dist/wire.h"

namespace ltx::pipeline {

std::string encode_params(const VideoParams& params) {
  dist::WireWriter w;
  for_each_param(params, [&w](const char*, const auto& v, unsigned) {
    using T = std::decay_t<decltype(v)>;
    if constexpr (std::is_same_v<T, std::string>) w.str(v);
    else if constexpr (std::is_same_v<T, bool>) w.flag(v);
    else if constexpr (std::is_same_v<T, double>) w.f64(v);
    else if constexpr (std::is_same_v<T, uint64_t>) w.u64(v);
    else w.i64(v);
  });
  return std::move(w.bytes());
}

Result<VideoParams> decode_params(const std::string& bytes) {
  VideoParams params;
  dist::WireReader r(bytes);
  std::string bad;
  for_each_param(params, [&r, &bad](const char* name, auto& v, unsigned) {
    if (!bad.empty()) return;
    using T = std::decay_t<decltype(v)>;
    bool ok;
    if constexpr (std::is_same_v<T, std::string>) ok = r.str(&v);
    else if constexpr (std::is_same_v<T, bool>) ok = r.flag(&v);
    else if constexpr (std::is_same_v<T, double>) ok = r.f64(&v);
    else if constexpr (std::is_same_v<T, uint64_t>) ok = r.u64(&v);
    else ok = r.i64(&v);
    if (!ok) bad = name;
  });
  if (!bad.empty()) return invalid_argument_error("request parameters: field '" + bad + "' is truncated or malformed");
  if (!r.done()) return invalid_argument_error("request parameters: unexpected trailing bytes");
  return params;
}

}  // namespace ltx::pipeline
