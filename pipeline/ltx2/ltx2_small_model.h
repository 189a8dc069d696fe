// The built-in tiny LTX-2 model and the checkpoint writers behind it.
//
// write_ltx2_small_model writes random weights in the public diffusers folder
// layout of Lightricks/LTX-2 (model_index.json with LTX2Pipeline,
// transformer/, connectors/, text_encoder/ (a tiny Gemma 3), tokenizer/ (a
// trained SentencePiece model with Gemma's special ids), vae/ (decoder and
// latent statistics), audio_vae/ (decoder and statistics), vocoder/ (24 kHz),
// latent_upsampler/ (x2 spatial), scheduler/), read back through the same loaders as the released weights.
// Its heads split over groups of 1, 2, 4, 8 and 16 ranks.
// write_ltx2_single_file writes the original single-file naming
// (`model.diffusion_model.*`, `text_embedding_projection.*`, optional
// `config` metadata in the original keys), for loader tests and tools.
// Deterministic for a seed (every node writes the same model). Files only.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/weight_loader.h"
#include "pipeline/ltx2/ltx2_config.h"

namespace ltx::pipeline {

// Bumped whenever write_ltx2_small_model writes something else (names the cache folder).
// v2: vae/, audio_vae/ and vocoder/ written too. v3: latent_upsampler/ too.
constexpr const char* kLtx2SmallModelVersion = "v3";

// The built-in model's structure (LTX-2.0 layout, shrunk).
Ltx2TransformerConfig ltx2_small_transformer_config();
Ltx2ConnectorsConfig ltx2_small_connectors_config();

// Random tensors for `expected` with a sensible scale per role (weights
// 1/sqrt(fan_in), norms near 1, tables 0.1), the same for a seed everywhere.
std::map<std::string, at::Tensor> ltx2_random_tensors(const std::vector<ExpectedTensor>& expected, uint64_t seed,
                                                      at::ScalarType dtype = at::kFloat,
                                                      const at::Device& device = at::kCPU);

// diffusers config.json texts.
std::string ltx2_transformer_config_json(const Ltx2TransformerConfig& config);
std::string ltx2_connectors_config_json(const Ltx2ConnectorsConfig& config);
// The original `config` metadata (a "transformer" object in the original keys).
std::string ltx2_original_config_json(const Ltx2TransformerConfig& transformer,
                                      const Ltx2ConnectorsConfig& connectors);
// diffusers name -> original single-file name.
std::string ltx2_original_transformer_name(const std::string& diffusers_name);
std::string ltx2_original_connectors_name(const std::string& diffusers_name);

// Writes the model into `dir` (created; must not exist yet or be empty).
Status write_ltx2_small_model(const std::string& dir, uint64_t seed = 0);

// One .safetensors file holding the transformer and the connectors in the
// original naming; with `config` metadata when `with_metadata`.
Status write_ltx2_single_file(const std::string& path, const Ltx2TransformerConfig& transformer,
                              const Ltx2ConnectorsConfig& connectors, uint64_t seed, bool with_metadata);

}  // namespace ltx::pipeline
