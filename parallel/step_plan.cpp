#include "parallel/step_plan.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "common/check.h"

namespace ltx::parallel {

LinkFigures LinkFigures::for_backend(const std::string& backend) {
  if (backend == "nccl") return {370.0, 10.0};
  return {15.0, 6.0};
}

Status LinkFigures::validate() const {
  if (!(bandwidth_gbps > 0) || !std::isfinite(bandwidth_gbps)) {
    return invalid_argument_error("link_bandwidth_gbps must be a positive number of GB/s, got " +
                                  std::to_string(bandwidth_gbps));
  }
  if (!(latency_us >= 0) || !std::isfinite(latency_us)) {
    return invalid_argument_error("link_latency_us must be a non-negative number of microseconds, got " +
                                  std::to_string(latency_us));
  }
  return Status();
}

Result<GuidanceParallel> parse_guidance_parallel(const std::string& text) {
  if (text.empty() || text == "auto") return GuidanceParallel::kAuto;
  if (text == "off") return GuidanceParallel::kOff;
  if (text == "on") return GuidanceParallel::kOn;
  return invalid_argument_error("--guidance-parallel must be auto, on or off, got '" + text + "'");
}

const char* guidance_parallel_name(GuidanceParallel mode) {
  switch (mode) {
    case GuidanceParallel::kOff: return "off";
    case GuidanceParallel::kOn: return "on";
    default: return "auto";
  }
}

std::string StepPlan::name() const {
  return guidance_groups == 1 ? "sequence" : "guidance x" + std::to_string(guidance_groups);
}

std::vector<int> feasible_guidance_groups(int ranks, const StepShape& s) {
  std::vector<int> out = {1};
  const int64_t most = s.max_groups > 0 ? std::min<int64_t>(s.max_groups, s.passes) : s.passes;
  for (int g = 2; g <= ranks && g <= most; ++g) {
    if (ranks % g == 0 && s.passes % g == 0 && s.heads % (ranks / g) == 0) out.push_back(g);
  }
  return out;
}

namespace {

double layer_seconds(int n, double batch, const StepShape& s, const LinkFigures& link) {
  if (n <= 1) return 0.0;
  const double bytes = 4.0 * batch * (static_cast<double>(s.tokens) / n) * s.width * s.element_bytes * (n - 1) / n;
  return 2 * link.latency_us * 1e-6 + bytes / (link.bandwidth_gbps * 1e9);
}

// One layer of Ulysses (U = ranks / ring) x a ring: U's all-to-alls over the
// rank's S/N tokens, then ring - 1 shifts of a key and a value block.
double ring_layer_seconds(int ranks, int ring, double batch, const StepShape& s, const LinkFigures& link) {
  const int u = ranks / ring;
  double t = 0;
  if (u > 1) {
    const double bytes = 4.0 * batch * (static_cast<double>(s.tokens) / ranks) * s.width * s.element_bytes * (u - 1) / u;
    t += 2 * link.latency_us * 1e-6 + bytes / (link.bandwidth_gbps * 1e9);
  }
  const double block = 2.0 * batch * (static_cast<double>(s.tokens) / ring) * (static_cast<double>(s.width) / u) *
                       s.element_bytes;
  return t + (ring - 1) * (link.latency_us * 1e-6 + block / (link.bandwidth_gbps * 1e9));
}

}  // namespace

Result<int> resolve_ring_size(int asked, int ranks, int64_t heads) {
  auto fits = [&](int r) { return r >= 1 && ranks % r == 0 && heads % (ranks / r) == 0; };
  if (asked > 0) {
    if (fits(asked)) return asked;
    return invalid_argument_error("--ring-size " + std::to_string(asked) + " does not fit " + std::to_string(ranks) +
                                  " ranks and " + std::to_string(heads) +
                                  " heads: it must divide the ranks, and ranks / ring-size the heads");
  }
  for (int r = 1; r <= ranks; ++r) {
    if (fits(r)) return r;
  }
  return invalid_argument_error("no ring size fits " + std::to_string(ranks) + " ranks and " + std::to_string(heads) +
                                " heads");
}

double predicted_comm_seconds(int ranks, int groups, const StepShape& s, const LinkFigures& link) {
  LTX_CHECK(groups >= 1 && ranks % groups == 0, groups, " sub-groups do not split ", ranks, " ranks");
  const int n = ranks / groups;
  const double batch = static_cast<double>(s.passes) / groups;
  double t = s.layers * (groups == 1 && s.ring > 1 ? ring_layer_seconds(ranks, s.ring, batch, s, link)
                                                   : layer_seconds(n, batch, s, link));
  if (groups > 1) {
    const double piece = batch * (static_cast<double>(s.tokens) / n) * s.channels * s.element_bytes;
    t += link.latency_us * 1e-6 + (groups - 1) * piece / (link.bandwidth_gbps * 1e9);
  }
  return t;
}

StepPlan choose_step_plan(int ranks, const StepShape& s, const LinkFigures& link, GuidanceParallel mode) {
  const std::vector<int> groups = feasible_guidance_groups(ranks, s);
  auto plan = [&](int g) { return StepPlan{g, predicted_comm_seconds(ranks, g, s, link)}; };
  if (mode == GuidanceParallel::kOff) return plan(1);
  if (mode == GuidanceParallel::kOn) return plan(groups.back());
  StepPlan best = plan(1);
  for (int g : groups) {
    StepPlan p = plan(g);
    if (p.comm_seconds < best.comm_seconds) best = p;
  }
  return best;
}

}  // namespace ltx::parallel
