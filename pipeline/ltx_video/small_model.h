// The built-in small model: a random-weight LTX-Video checkpoint written in
// exactly the public diffusers folder layout (model_index.json, transformer/,
// vae/, text_encoder/ (T5), tokenizer/ (a trained SentencePiece model),
// scheduler/), small enough to generate a short video in seconds on two CPU
// cores. It is loaded through the same code as real weights. The VAE folder
// holds the decoder and latent statistics only (the encoder is not used by
// text-to-video). Deterministic for a seed. Called on one rank only.
#pragma once

#include <string>

#include "common/status.h"

namespace ltx::pipeline {

// Writes the model into `dir` (created; must not exist yet or be empty).
Status write_small_model(const std::string& dir, uint64_t seed = 0);

// The built-in model's folder: $LTX_CACHE_DIR or ~/.cache/ltx-worker, then
// "small-model-v1". Creates it on first use (atomically: written to a
// temporary sibling, then renamed).
Result<std::string> ensure_builtin_model();

}  // namespace ltx::pipeline
