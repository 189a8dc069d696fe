// Sinusoidal timestep features shared by the transformer's AdaLN-single and
// the VAE decoder's time embedders (diffusers Timesteps with
// flip_sin_to_cos=True, downscale_freq_shift=0). Pure function.
#pragma once

#include <ATen/ATen.h>

namespace ltx::pipeline {

// t [M] (any float dtype) -> [M, channels] fp32: cos of every frequency, then sin.
at::Tensor timestep_sinusoid(const at::Tensor& t, int64_t channels = 256);

}  // namespace ltx::pipeline
