// RouteTable: the HTTP API's routes as data: a method and a path template
// ("/v1/streams/{id}/chunks") per handler. match() finds a request's route
// and its {id}; a path whose template exists with other methods is a 405
// that lists them (Allow); the matched template is the metrics' route label
// ("other" for paths no route has), so labels never carry ids. Built once
// by ApiService; match() is const and thread-safe.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "service/http_server.h"

namespace ltx::service {

class RouteTable {
 public:
  // `id` is the {id} segment ("" when the template has none); `query` the
  // text after '?'.
  using Handler = std::function<HttpResponse(const HttpRequest& request, const std::string& id,
                                             const std::string& query)>;

  struct Match {
    const Handler* handler = nullptr;  // null: no route for this method (see allowed) or path
    std::string id;
    std::string label = "other";       // the template, for metrics
    std::string allowed;               // the template's methods ("GET, DELETE") when handler is null
  };

  void add(const std::string& method, const std::string& path_template, Handler handler);
  Match match(const std::string& method, const std::string& path) const;

 private:
  struct Route {
    std::string method;
    std::string path_template;
    std::vector<std::string> segments;
    Handler handler;
  };
  static std::vector<std::string> split(const std::string& path);
  static bool fits(const Route& route, const std::vector<std::string>& segments, std::string* id);
  std::vector<Route> routes_;
};

}  // namespace ltx::service
