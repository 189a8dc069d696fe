// Case runners behind run_parity_case (internal to launch/): each reads one
// fixture folder's call from case.json and its tensors from io.safetensors,
// runs our implementation and compares every output. Collective where the
// model is (the sequence-parallel transformers).
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"
#include "dist/communicator.h"

namespace ltx::launch {

struct ParityResult;  // parity_runner.h

// Where the runner places the components rank 0 runs when serving (text
// encoders, connectors, VAEs, vocoder, upsampler): the CPU unless
// ParityOptions::component_device says otherwise (set by run_parity_case for
// one case; the runner is single-threaded). The transformers run on the
// communicator's device.
at::Device component_device();

// Relative L2 and max-abs error of `got` against `want` (both made fp64 on CPU).
ParityResult compare(const std::string& name, const at::Tensor& got, const at::Tensor& want,
                     double tol_rel, double tol_abs);

// LTX2VideoTransformer3DModel.forward: every call of case.json "calls" (and
// its "extra_calls"), sequence-parallel over `comm`.
Result<std::vector<ParityResult>> run_ltx2_transformer_case(const std::filesystem::path& dir,
                                                            const nlohmann::json& c, dist::Communicator& comm,
                                                            at::ScalarType dtype);
// LTX2TextConnectors.forward (rank-local, as the text path runs).
Result<std::vector<ParityResult>> run_ltx2_connectors_case(const std::filesystem::path& dir,
                                                           const nlohmann::json& c, at::ScalarType dtype);

// The LTX-2 decoders with one output each (the case's only out.* tensor):
// AutoencoderKLLTX2Audio.decode, LTX2Vocoder.forward,
// LTX2LatentUpsamplerModel.forward. `kind` is the call's class name.
Result<std::vector<ParityResult>> run_ltx2_decoder_case(const std::filesystem::path& dir, const nlohmann::json& c,
                                                        const std::string& kind, at::ScalarType dtype);

// LTX2Pipeline.__call__ (the tiny LTX-2 pipeline): text path, schedule, every
// step's guided predictions and latents, the decoders and the vocoder;
// sequence-parallel over `comm`.
Result<std::vector<ParityResult>> run_ltx2_pipeline_case(const std::filesystem::path& dir, const nlohmann::json& c,
                                                         dist::Communicator& comm, at::ScalarType dtype);

}  // namespace ltx::launch
