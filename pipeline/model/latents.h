// The vocabulary every model family and the runtime share about latents: the
// grid a call covers, the packed token layout, and one attention layer's
// cached keys/values. Plain values and pure functions; no state.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace ltx::pipeline {

// A block of latent frames: `frames` x `height` x `width` latent pixels,
// starting at latent frame `frame_offset` of the whole video or stream (so a
// chunk's positions continue where the previous chunk ended).
struct LatentGrid {
  int64_t frames = 1;
  int64_t height = 1;
  int64_t width = 1;
  int64_t frame_offset = 0;  // global index of this grid's first latent frame

  int64_t num_tokens() const { return frames * height * width; }
};

// [B, C, F, H, W] <-> [B, F*H*W, C] (token order frame-major, patch 1).
at::Tensor pack_latents(const at::Tensor& latents);
at::Tensor unpack_latents(const at::Tensor& packed, const LatentGrid& grid);

// Keys/values of one layer's self-attention for this rank's heads:
// [B, tokens, local heads, head_dim], post-norm and post-RoPE. A stream's KV
// cache holds one per layer per chunk.
struct LayerKv {
  at::Tensor k;
  at::Tensor v;
};

}  // namespace ltx::pipeline
