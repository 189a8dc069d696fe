// The `ltx2.v1` continuation state of LTX-2 streams (spec ltx2.md §9, the
// FastVideo envelope): {"kind": "ltx2.v1", "payload": {...}} with the
// payload's public fields (segment index, conditioning settings, the last
// chunk's frames as base64 PNG, the window's audio latents [1, C, T, M] as a
// base64 safetensors file holding the tensor "t"; parts above 2 MiB go to
// the blob store when there is one, frames in FastVideo's multi-frame blob
// layout) and, under payload.metadata["ltx_worker"], this project's exact
// resume data: its own stream-state document (continuation_state.h: the
// settings, the text conditioning, both streams' window latents, the decode
// contexts, the chunk numbering), validated as for LTX-Video.
//
// A document without that key (written by another system) is refused naming
// it: continuing from re-encoded frames needs the LTX-2 video VAE encoder,
// which is not built. Pure functions of their arguments; rank 0 (HTTP
// threads for parsing).
#pragma once

#include <string>

#include "common/status.h"
#include "pipeline/runtime/continuation_state.h"

namespace ltx::pipeline {

constexpr const char* kLtx2StateKind = "ltx2.v1";
constexpr const char* kLtx2StateMetadataKey = "ltx_worker";
constexpr size_t kLtx2InlineBytes = 2u << 20;  // FastVideo's DEFAULT_INLINE_THRESHOLD_BYTES

// `audio_latents` is the window's audio [1, C, T, M] (denormalised), the
// payload's public audio; `sample_rate` the vocoder's.
Result<std::string> ltx2_state_to_json(const ContinuationState& state, const at::Tensor& audio_latents,
                                       int64_t sample_rate, const StateModelInfo& model, const BlobStore* store,
                                       size_t inline_limit_bytes);
// Validates the envelope and every payload field (errors name it,
// "payload.audio_conditioning_strength"), then the project's metadata.
Result<ContinuationState> ltx2_state_from_json(const std::string& json, const StateModelInfo& model,
                                               const BlobStore* store);

}  // namespace ltx::pipeline
