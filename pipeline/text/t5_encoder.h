// T5Encoder: the T5 v1.1 encoder (transformers T5EncoderModel) used by
// LTX-Video 0.9.x: relative position buckets shared by all layers, unscaled
// attention scores, RMS layer norm without mean or bias, gated GELU, final norm.
//
// Runs on rank 0 only. Immutable after load(); encode() is const.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"

namespace ltx::pipeline {

class T5Encoder {
 public:
  // A folder with config.json and the weights; decoder.* and lm_head.* tensors
  // of a full T5 checkpoint are ignored; the embedding may be stored as
  // shared.weight and/or encoder.embed_tokens.weight.
  static Result<T5Encoder> load(const std::string& folder, at::ScalarType dtype, const at::Device& device);
  static Result<T5Encoder> from_checkpoint(const T5Config& config, const SafetensorsCheckpoint& checkpoint,
                                           at::ScalarType dtype, const at::Device& device);

  const T5Config& config() const { return config_; }

  // input_ids / attention_mask [B, T]; last_hidden_state [B, T, d_model].
  // `use_mask` false attends to pad tokens too (what diffusers LTXPipeline does).
  at::Tensor encode(const at::Tensor& input_ids, const at::Tensor& attention_mask, bool use_mask = true) const;

  // Bucket of each (query i, key j) pair for a length-T sequence, [T, T] int64.
  static at::Tensor relative_position_buckets(int64_t t, int64_t num_buckets, int64_t max_distance,
                                              const at::Device& device);

  // Every weight as placed.
  const std::vector<at::Tensor>& weights() const { return weights_; }

 private:
  struct Block {
    at::Tensor attn_norm, ff_norm;
    LinearWeights q, k, v, o, wi_0, wi_1, wo;
  };
  T5Encoder() = default;
  at::Tensor norm(const at::Tensor& x, const at::Tensor& w) const;

  T5Config config_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::Device(at::kCPU);
  at::Tensor embed_;
  std::vector<at::Tensor> weights_;
  at::Tensor relative_bias_;  // [buckets, heads]
  at::Tensor final_norm_;
  std::vector<Block> blocks_;
};

}  // namespace ltx::pipeline
