#include "service/route_table.h"

namespace ltx::service {

std::vector<std::string> RouteTable::split(const std::string& path) {
  std::vector<std::string> out;
  size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const size_t end = slash == std::string::npos ? path.size() : slash;
    out.push_back(path.substr(start, end - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return out;
}

bool RouteTable::fits(const Route& route, const std::vector<std::string>& segments, std::string* id) {
  if (route.segments.size() != segments.size()) return false;
  for (size_t i = 0; i < segments.size(); ++i) {
    if (route.segments[i] == "{id}") {
      if (segments[i].empty()) return false;
      *id = segments[i];
    } else if (route.segments[i] != segments[i]) {
      return false;
    }
  }
  return true;
}

void RouteTable::add(const std::string& method, const std::string& path_template, Handler handler) {
  routes_.push_back(Route{method, path_template, split(path_template), std::move(handler)});
}

RouteTable::Match RouteTable::match(const std::string& method, const std::string& path) const {
  Match m;
  if (path.empty() || path[0] != '/') return m;
  const std::vector<std::string> segments = split(path);
  for (const Route& r : routes_) {
    std::string id;
    if (!fits(r, segments, &id)) continue;
    m.label = r.path_template;
    if (r.method == method) {
      m.handler = &r.handler;
      m.id = id;
      m.allowed.clear();
      return m;
    }
    m.allowed += (m.allowed.empty() ? "" : ", ") + r.method;
  }
  return m;
}

}  // namespace ltx::service
