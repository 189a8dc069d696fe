#include "pipeline/schedule/flow_match_scheduler.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>

#include "common/check.h"

namespace ltx::pipeline {

double FlowMatchScheduler::shift_mu(int64_t seq_len) const {
  const double m = (config_.max_shift - config_.base_shift) /
                   static_cast<double>(config_.max_image_seq_len - config_.base_image_seq_len);
  const double b = config_.base_shift - m * static_cast<double>(config_.base_image_seq_len);
  return static_cast<double>(seq_len) * m + b;
}

Result<SigmaSchedule> FlowMatchScheduler::schedule(int64_t steps, int64_t seq_len) const {
  if (steps < 1) return invalid_argument_error("num_inference_steps must be at least 1, got " + std::to_string(steps));
  if (seq_len < 1) return invalid_argument_error("the token count must be positive, got " + std::to_string(seq_len));
  // numpy.linspace(1, 1/N, N): i * step + start, the last value exact.
  std::vector<double> s(steps, 1.0);
  const double end = 1.0 / static_cast<double>(steps);
  if (steps > 1) {
    const double step = (end - 1.0) / static_cast<double>(steps - 1);
    for (int64_t i = 0; i < steps; ++i) s[i] = static_cast<double>(i) * step + 1.0;
    s[steps - 1] = end;
  }
  return schedule_from_sigmas(s, shift_mu(seq_len));
}

Result<SigmaSchedule> FlowMatchScheduler::schedule_from_sigmas(const std::vector<double>& input, double mu) const {
  if (input.empty()) return invalid_argument_error("the schedule needs at least one sigma");
  for (double v : input) {
    if (!(v > 0.0 && v <= 1.0)) {
      return invalid_argument_error("starting sigmas must lie in (0, 1], got " + std::to_string(v));
    }
  }
  // float32 arithmetic, as the reference does it in numpy float32.
  at::Tensor s = at::tensor(input, at::kDouble).to(at::kFloat);
  if (config_.use_dynamic_shifting) {
    const float emu = static_cast<float>(std::exp(mu));
    if (config_.time_shift_type == "exponential") {
      s = emu / (emu + (1.0f / s - 1.0f));
    } else {
      s = static_cast<float>(mu) / (static_cast<float>(mu) + (1.0f / s - 1.0f));
    }
  } else {
    const float shift = static_cast<float>(config_.shift);
    s = shift * s / (1.0f + (shift - 1.0f) * s);
  }
  if (config_.shift_terminal.has_value()) {
    at::Tensor one_minus = 1.0f - s;
    const float last = one_minus[-1].item<float>();
    const float denom = static_cast<float>(1.0 - *config_.shift_terminal);
    if (last == 0.0f) {
      return invalid_argument_error("the schedule ends at sigma 1, which the terminal stretch cannot rescale "
                                    "(use more steps or disable shift_terminal)");
    }
    at::Tensor scale = at::scalar_tensor(last, at::kFloat) / denom;
    s = 1.0f - one_minus / scale;
  }
  if (!at::isfinite(s).all().item<bool>()) return invalid_argument_error("the sigma schedule is not finite");
  SigmaSchedule out;
  at::Tensor t = s * static_cast<float>(config_.num_train_timesteps);
  out.sigmas.assign(s.data_ptr<float>(), s.data_ptr<float>() + s.numel());
  out.sigmas.push_back(0.0f);
  out.timesteps.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  return out;
}

Result<SigmaSchedule> FlowMatchScheduler::linear_quadratic(int64_t steps, double threshold) const {
  if (steps < 2) return invalid_argument_error("the linear-quadratic schedule needs at least 2 steps");
  if (!(threshold > 0.0 && threshold < 1.0)) return invalid_argument_error("threshold must be in (0, 1)");
  const int64_t l = steps / 2, q = steps - l;
  std::vector<double> u(steps);
  for (int64_t i = 0; i < l; ++i) u[i] = threshold * static_cast<double>(i) / static_cast<double>(l);
  const double d = static_cast<double>(l) - threshold * static_cast<double>(steps);
  const double a = d / (static_cast<double>(l) * q * q);
  const double b = threshold / l - 2.0 * d / (static_cast<double>(q) * q);
  const double c0 = a * l * l;
  for (int64_t i = l; i < steps; ++i) u[i] = a * i * i + b * i + c0;
  SigmaSchedule out;
  for (double v : u) {
    out.sigmas.push_back(static_cast<float>(1.0 - v));
    out.timesteps.push_back(static_cast<float>((1.0 - v) * config_.num_train_timesteps));
  }
  out.sigmas.push_back(0.0f);
  return out;
}

at::Tensor FlowMatchScheduler::step(const at::Tensor& sample, const at::Tensor& velocity,
                                    const SigmaSchedule& schedule, int64_t i) const {
  LTX_CHECK(i >= 0 && i < schedule.steps(), "step ", i, " outside a schedule of ", schedule.steps(), " steps");
  LTX_CHECK(sample.sizes() == velocity.sizes(), "sample ", sample.sizes(), " and velocity ", velocity.sizes(),
            " differ in shape");
  const at::Tensor dt = at::scalar_tensor(schedule.sigmas[i + 1], at::kFloat) -
                        at::scalar_tensor(schedule.sigmas[i], at::kFloat);
  return sample.to(at::kFloat) + dt.to(sample.device()) * velocity.to(at::kFloat);
}

at::Tensor classifier_free_guidance(const at::Tensor& uncond, const at::Tensor& cond, double scale,
                                    double rescale) {
  at::Tensor v = uncond + scale * (cond - uncond);
  if (rescale > 0.0) {
    std::vector<int64_t> dims;
    for (int64_t d = 1; d < cond.dim(); ++d) dims.push_back(d);
    at::Tensor std_cond = cond.std(dims, /*unbiased=*/true, /*keepdim=*/true);
    at::Tensor std_v = v.std(dims, /*unbiased=*/true, /*keepdim=*/true);
    v = rescale * (v * (std_cond / std_v)) + (1.0 - rescale) * v;
  }
  return v;
}

std::string ltx_scheduler_config_json() {
  return nlohmann::json{{"_class_name", "FlowMatchEulerDiscreteScheduler"}, {"base_image_seq_len", 1024},
                        {"base_shift", 0.95}, {"max_image_seq_len", 4096}, {"max_shift", 2.05},
                        {"num_train_timesteps", 1000}, {"shift", 1.0}, {"shift_terminal", 0.1},
                        {"use_dynamic_shifting", true}, {"time_shift_type", "exponential"}}
      .dump(2);
}

}  // namespace ltx::pipeline
