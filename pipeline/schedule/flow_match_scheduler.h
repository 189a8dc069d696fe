// FlowMatchScheduler: the flow-matching Euler scheduler exactly as diffusers'
// LTXPipeline drives FlowMatchEulerDiscreteScheduler (resolution-dependent
// shift mu from the token count, terminal stretch, timesteps = sigma * 1000),
// the LinearQuadratic schedule of the distilled checkpoints, the Euler update
// and classifier-free guidance with optional rescale.
//
// Deterministic and stateless: a schedule is a value every rank computes
// identically from (steps, token count); step() is a pure function.
#pragma once

#include <ATen/ATen.h>

#include <string>

#include <optional>
#include <vector>

#include "common/status.h"
#include "pipeline/io/model_config.h"

namespace ltx::pipeline {

struct SigmaSchedule {
  std::vector<float> sigmas;     // N + 1 values, decreasing, the last is 0
  std::vector<float> timesteps;  // N values, sigma * num_train_timesteps (the DiT's input)
  int64_t steps() const { return static_cast<int64_t>(timesteps.size()); }
};

class FlowMatchScheduler {
 public:
  explicit FlowMatchScheduler(SchedulerConfig config) : config_(std::move(config)) {}
  const SchedulerConfig& config() const { return config_; }

  // mu for a sequence of `seq_len` DiT tokens (linear, not clamped).
  double shift_mu(int64_t seq_len) const;

  // The LTXPipeline schedule: linspace(1, 1/N, N), shifted (dynamic: mu from
  // seq_len; otherwise the static `shift`), stretched to shift_terminal.
  Result<SigmaSchedule> schedule(int64_t steps, int64_t seq_len) const;
  // The same from explicit starting sigmas and mu (what set_timesteps(sigmas, mu) does).
  Result<SigmaSchedule> schedule_from_sigmas(const std::vector<double>& sigmas, double mu) const;
  // The LinearQuadratic schedule (threshold 0.025, no shift).
  Result<SigmaSchedule> linear_quadratic(int64_t steps, double threshold = 0.025) const;

  // Euler step i: sample + (sigma[i+1] - sigma[i]) * velocity, in fp32.
  at::Tensor step(const at::Tensor& sample, const at::Tensor& velocity, const SigmaSchedule& schedule,
                  int64_t i) const;

 private:
  SchedulerConfig config_;
};

// The LTX pipelines' scheduler/scheduler_config.json (dynamic shift 0.95 ..
// 2.05 over 1024 .. 4096 tokens, terminal 0.1), as the built-in models write it.
std::string ltx_scheduler_config_json();

// Classifier-free guidance: uncond + scale * (cond - uncond); with rescale
// phi > 0 the result is mixed with its std-matched version
// (phi * v * std(cond) / std(v) + (1 - phi) * v, std over all non-batch dims).
at::Tensor classifier_free_guidance(const at::Tensor& uncond, const at::Tensor& cond, double scale,
                                    double rescale = 0.0);

}  // namespace ltx::pipeline
