#include "pipeline/nn/embeddings.h"

#include <cmath>

namespace ltx::pipeline {

at::Tensor timestep_sinusoid(const at::Tensor& t, int64_t channels) {
  const int64_t half = channels / 2;
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(t.device());
  at::Tensor exponent = at::arange(0, half, f32) * (-std::log(10000.0)) / static_cast<double>(half);
  at::Tensor args = t.to(at::kFloat).reshape({-1, 1}) * at::exp(exponent).unsqueeze(0);
  return at::cat({at::cos(args), at::sin(args)}, 1);
}

}  // namespace ltx::pipeline
