// Ltx2TextConnectors: Gemma 3 hidden states -> the LTX-2 transformer's video
// and audio text contexts (diffusers LTX2TextConnectors; text-encoders.md §2).
//
// Feature extraction over all stacked hidden states (2.0: per-sample,
// per-layer masked mean/range norm and one projection; 2.3: per-token RMS
// norm and one projection per stream), then one connector per stream
// (learnable registers replace the padding, pre-norm 1-D transformer blocks
// with split RoPE, final RMS norm). The output mask is all ones when the
// connectors have registers. Runs where the text encoder is placed (rank 0);
// no communication. Immutable after load; forward() is const.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"
#include "pipeline/ltx2/ltx2_config.h"

namespace ltx::pipeline {

class Ltx2TextConnectors {
 public:
  // From a diffusers connectors/ folder (config.json + safetensors) or an
  // original single-file checkpoint (`model.diffusion_model.*_embeddings_connector.*`
  // and `text_embedding_projection.*`; config from the metadata or inferred).
  static Result<Ltx2TextConnectors> load(const std::string& path, at::ScalarType dtype, const at::Device& device);
  static Result<Ltx2TextConnectors> from_checkpoint(const Ltx2ConnectorsConfig& config,
                                                    const SafetensorsCheckpoint& checkpoint,
                                                    at::ScalarType dtype, const at::Device& device);
  static std::vector<ExpectedTensor> expected_tensors(const Ltx2ConnectorsConfig& config);
  // Original single-file name -> diffusers name; nullopt for other components.
  static std::optional<std::string> canonical_name(const std::string& raw);

  const Ltx2ConnectorsConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  const std::vector<at::Tensor>& weights() const { return weights_; }

  struct Output {
    at::Tensor video;  // [B, L, video width]
    at::Tensor audio;  // [B, L, audio width]
    at::Tensor mask;   // [B, L] int64, 1 = attended by the transformer
  };
  // hidden_states: Gemma's stacked hidden states, [B, L, C * NL] (feature
  // index c * NL + l, as LTX2Pipeline packs them) or [B, L, C, NL]; mask
  // [B, L] 0/1 with contiguous padding on `left_padding`'s side.
  Output forward(const at::Tensor& hidden_states, const at::Tensor& mask, bool left_padding = true,
                 double scale_factor = 8.0) const;

  struct Weights;

 private:
  Ltx2TextConnectors(Ltx2ConnectorsConfig config, std::shared_ptr<const Weights> weights,
                     at::ScalarType dtype, at::Device device);

  Ltx2ConnectorsConfig config_;
  std::shared_ptr<const Weights> w_;
  std::vector<at::Tensor> weights_;
  at::ScalarType dtype_;
  at::Device device_;
};

}  // namespace ltx::pipeline
