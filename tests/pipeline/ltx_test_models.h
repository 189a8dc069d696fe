// Test helpers for the LTX transformer: a random-weight checkpoint of any
// config (written in the diffusers layout) and the fixture inputs. Test-only.
#pragma once

#include <string>

#include "pipeline/dit/ltx_transformer.h"

namespace ltx::testing {

// A small transformer config with `heads` heads of 8 channels whose input
// sizes match the reference fixtures (in/out 8 channels, caption 24).
pipeline::TransformerConfig small_transformer_config(int64_t heads, int64_t layers = 2);

// Writes config.json + diffusion_pytorch_model.safetensors with random weights
// (seeded) into a fresh folder and returns it.
std::string write_random_transformer(const pipeline::TransformerConfig& config, uint64_t seed);

// Block-causal additive bias [S, S] for consecutive chunks of the given token
// counts: 0 where chunk(key) <= chunk(query), -inf elsewhere.
at::Tensor block_causal_bias(const std::vector<int64_t>& chunk_tokens);

}  // namespace ltx::testing
