// Gemma3TextEncoder: the text tower of Gemma 3 (transformers Gemma3TextModel)
// used as an encoder: scaled embeddings, zero-centred RMSNorm in fp32, q/k
// norms, GQA, sliding-window and global layers with their own RoPE, GeGLU.
//
// Runs on rank 0 only; other ranks never load it. Immutable after load();
// encode() is const and may be called from one thread at a time per model
// (it allocates only its own activations).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"

namespace ltx::pipeline {

struct Gemma3Output {
  at::Tensor last_hidden_state;           // [B, T, D] after the final norm
  std::vector<at::Tensor> hidden_states;  // L+1 entries when asked for, else empty
};

// The text model's tensors (names without the checkpoint's prefix) and shapes.
std::vector<ExpectedTensor> gemma3_expected_tensors(const Gemma3Config& config);

class Gemma3TextEncoder {
 public:
  // A folder with config.json and the weights (*.safetensors, sharded with an
  // index or not). The text-model prefix is found from the key ending in
  // "layers.0.input_layernorm.weight"; tensors outside it (vision tower,
  // projector, lm_head) are ignored.
  static Result<Gemma3TextEncoder> load(const std::string& folder, at::ScalarType dtype,
                                        const at::Device& device);
  static Result<Gemma3TextEncoder> from_checkpoint(const Gemma3Config& config,
                                                   const SafetensorsCheckpoint& checkpoint,
                                                   at::ScalarType dtype, const at::Device& device);

  const Gemma3Config& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }

  // input_ids / attention_mask [B, T] int64 (1 = token). Rows of pad queries
  // stay finite and carry no meaning.
  Gemma3Output encode(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                      bool all_hidden_states) const;

  // Every weight as placed.
  const std::vector<at::Tensor>& weights() const { return weights_; }

 private:
  struct Layer {
    LinearWeights q, k, v, o, gate, up, down;
    at::Tensor q_norm, k_norm;  // [head_dim]
    at::Tensor input_norm, post_attention_norm, pre_feedforward_norm, post_feedforward_norm;
  };
  Gemma3TextEncoder() = default;
  at::Tensor norm(const at::Tensor& x, const at::Tensor& w) const;

  Gemma3Config config_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::Device(at::kCPU);
  at::Tensor embed_;
  std::vector<at::Tensor> weights_;
  at::Tensor final_norm_;
  std::vector<Layer> layers_;
};

}  // namespace ltx::pipeline
