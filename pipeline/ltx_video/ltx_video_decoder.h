// LtxVideoDecoder: the LTX-Video VAE decoder (decode/ltx_vae_decoder.h) as
// the family's VideoDecoder role. Rank 0 only (every rank when the decode
// is shared); owns the decoder; immutable
// after construction.
#pragma once

#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/model/roles.h"

namespace ltx::pipeline {

class LtxVideoDecoder final : public VideoDecoder {
 public:
  explicit LtxVideoDecoder(LtxVaeDecoder vae) : vae_(std::move(vae)) {}

  const LtxVaeDecoder& vae() const { return vae_; }
  Placement placement() const override { return {vae_.device(), vae_.dtype()}; }
  std::vector<at::Tensor> weights() const override { return vae_.weights(); }
  at::Tensor decode(const at::Tensor& latents, const LatentGrid& grid, const DecodeSettings& settings,
                    at::Generator generator) const override {
    return decode_to_frames(vae_, latents, grid, settings, generator);
  }
  Result<at::Tensor> decode_shared(const at::Tensor& latents, const LatentGrid& grid, const DecodeSettings& settings,
                                   at::Generator generator, dist::Communicator& comm) const override {
    return decode_to_frames_shared(vae_, latents, grid, settings, generator, comm);
  }

 private:
  LtxVaeDecoder vae_;
};

}  // namespace ltx::pipeline
