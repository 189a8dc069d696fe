// The built-in small model: a random-weight LTX-Video checkpoint written in
// exactly the public diffusers folder layout (model_index.json, transformer/,
// vae/, text_encoder/ (T5), tokenizer/ (a trained SentencePiece model),
// scheduler/), small enough to generate a short video in seconds on two CPU
// cores, with 16 attention heads so that groups of 1, 2, 4, 8 and 16 ranks
// all split them. It is loaded through the same code as real weights (it is
// the LTX-Video family's "builtin:ltx-video"; registry/model_registry.h). The VAE folder
// holds the decoder and latent statistics only (the encoder is not used by
// text-to-video). Deterministic for a seed, so every node that writes it
// writes the same model. Reads and writes files only.
#pragma once

#include <string>

#include "common/status.h"

namespace ltx::pipeline {

// Bumped whenever write_small_model writes something else (names the cache folder).
// v2: 16 attention heads (divisible by groups of 1, 2, 4, 8 and 16).
constexpr const char* kSmallModelVersion = "v2";

// What write_small_model writes: the built-in small model, or random weights
// in the real LTX-Video 2B shapes (the 28-layer transformer and the 0.9.5
// VAE decoder at full width, written in bf16; the T5 keeps T5-XXL's width,
// 4096, but one layer: the transformer and the decoder are what a GPU
// benchmark measures), about 5 GB.
enum class SmallModelShape { kBuiltin, kLtxVideo2B };

// Writes the model into `dir` (created; must not exist yet or be empty).
Status write_small_model(const std::string& dir, uint64_t seed = 0,
                         SmallModelShape shape = SmallModelShape::kBuiltin);

}  // namespace ltx::pipeline
