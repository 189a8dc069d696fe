// Ltx2LatentUpsampler: the x2 spatial latent upsampler between the two stages
// of the LTX-2 pipelines (diffusers LTX2LatentUpsamplerModel; spec ltx2.md
// §6). Works on un-normalised latents [B, C, F, H, W] -> [B, C, F, 2H, 2W].
// The 2.0 layout (rational resampler, `upsampler.conv.*`) and the 2.3 one
// (`upsampler.0.*`, the same function) load; other scales or a temporal
// upsampler are refused naming the field. Rank 0; immutable after load.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"

namespace ltx::pipeline {

struct Ltx2UpsamplerConfig {
  int64_t in_channels = 128;
  int64_t mid_channels = 1024;
  int64_t num_blocks_per_stage = 4;
  bool use_rational_resampler = true;
};

Result<Ltx2UpsamplerConfig> parse_ltx2_upsampler_config(const std::string& json_text, const std::string& source);

class Ltx2LatentUpsampler {
 public:
  // A folder with config.json + safetensors, or a bare file (`ltx-2-spatial-
  // upscaler-x2-1.0.safetensors`: the released 2.0 structure, or its
  // `config` metadata when present).
  static Result<Ltx2LatentUpsampler> load(const std::string& path, at::ScalarType dtype, const at::Device& device);
  static Result<Ltx2LatentUpsampler> from_checkpoint(const Ltx2UpsamplerConfig& config,
                                                     const SafetensorsCheckpoint& ckpt, at::ScalarType dtype,
                                                     const at::Device& device);
  static std::vector<ExpectedTensor> expected_tensors(const Ltx2UpsamplerConfig& config);

  const Ltx2UpsamplerConfig& config() const { return config_; }
  const std::vector<at::Tensor>& weights() const { return weights_; }

  // [B, C, F, H, W] -> [B, C, F, 2H, 2W], fp32.
  at::Tensor forward(const at::Tensor& latents) const;

 private:
  Ltx2LatentUpsampler() = default;
  Ltx2UpsamplerConfig config_;
  std::vector<at::Tensor> weights_;
  std::map<std::string, at::Tensor> w_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
};

}  // namespace ltx::pipeline
