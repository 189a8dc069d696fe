#include "common/fail_point.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/logging.h"

namespace ltx {
namespace {

struct Point {
  std::string name;
  int64_t hit = 1;
  std::atomic<int64_t> calls{0};
};

int launcher_rank() {
  for (const char* var : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}) {
    if (const char* v = std::getenv(var)) return std::atoi(v);
  }
  return 0;
}

// The points armed for this rank, parsed once.
const std::vector<std::unique_ptr<Point>>& armed() {
  static const std::vector<std::unique_ptr<Point>>* points = [] {
    auto* out = new std::vector<std::unique_ptr<Point>>();
    const char* spec = std::getenv("LTX_FAIL_POINTS");
    if (spec == nullptr || *spec == '\0') return out;
    const int rank = launcher_rank();
    std::stringstream items(spec);
    std::string item;
    while (std::getline(items, item, ',')) {
      const size_t at = item.find('@');
      if (at == std::string::npos || at == 0) {
        LTX_LOG(kWarn) << "LTX_FAIL_POINTS: \"" << item << "\" is not NAME@RANK[#HIT]; ignored";
        continue;
      }
      const size_t hash = item.find('#', at);
      const std::string who = item.substr(at + 1, hash == std::string::npos ? std::string::npos : hash - at - 1);
      if (who != "*" && std::atoi(who.c_str()) != rank) continue;
      auto p = std::make_unique<Point>();
      p->name = item.substr(0, at);
      if (hash != std::string::npos) p->hit = std::max<int64_t>(1, std::atoll(item.c_str() + hash + 1));
      LTX_LOG(kWarn) << "fail point armed on this rank: " << p->name << " at its call " << p->hit;
      out->push_back(std::move(p));
    }
    return out;
  }();
  return *points;
}

}  // namespace

void fail_point(const char* name) {
  const auto& points = armed();
  if (points.empty()) return;
  for (const auto& p : points) {
    if (p->name == name && p->calls.fetch_add(1) + 1 == p->hit) {
      throw Error(StatusCode::kInternal, std::string("injected failure at ") + name);
    }
  }
}

}  // namespace ltx
