// LtxVaeDecoder: the LTX video VAE decoder (diffusers
// AutoencoderKLLTXVideo.decode) for the 0.9.0 block structure and the
// timestep-conditioned 0.9.1 / 0.9.5 ones, and the LTX-2 video VAE decoder
// (AutoencoderKLLTX2Video.decode: 2.0 with reflect padding and residual
// upsamplers, 2.3 with spatial / temporal upsamplers), plus the per-channel
// latent statistics the pipeline normalises with.
//
// Runs on rank 0, or on every rank of a group that shares the frames
// (decode_share, decode_to_frames_shared: exact, a halo frame exchanged
// before every temporal convolution). Immutable after load; decode() is
// const and takes its noise generator explicitly (0.9.1 injects noise), so
// concurrent callers never share state. bf16 models run their 3D
// convolutions in fp32 on CPU (see decode()); the timestep path is fp32.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/model_config.h"
#include "pipeline/model/latents.h"
#include "pipeline/model/roles.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"

namespace ltx::dist {
class Communicator;
}

namespace ltx::pipeline {

// The tensors (diffusers names, shapes) a decoder with this config loads.
std::vector<ExpectedTensor> vae_expected_tensors(const VaeConfig& config);

class LtxVaeDecoder {
 public:
  // A diffusers vae/ folder (config.json + weights) or an original single-file
  // checkpoint (config metadata, `vae.` prefixed tensors are not supported yet:
  // see load()'s error).
  static Result<LtxVaeDecoder> load(const std::string& folder, at::ScalarType dtype, const at::Device& device);
  // Ignores encoder.* tensors (the decoder does not need them).
  static Result<LtxVaeDecoder> from_checkpoint(const VaeConfig& config, const SafetensorsCheckpoint& checkpoint,
                                               at::ScalarType dtype, const at::Device& device);

  const VaeConfig& config() const { return config_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  // Every weight as placed (the latent statistics are kept apart, in fp32).
  const std::vector<at::Tensor>& weights() const { return weights_; }
  bool timestep_conditioned() const { return config_.timestep_conditioning; }

  // Latent statistics: normalised = (z - mean) / std * scaling_factor and back.
  at::Tensor normalize(const at::Tensor& z) const;
  at::Tensor denormalize(const at::Tensor& z_normalized) const;

  // z: un-normalised latents [B, C, F, H, W]; timestep: [B] decode timestep in
  // [0, 1] (required when timestep-conditioned, ignored otherwise). Returns
  // [B, 3, 8(F-1)+1, 32H, 32W], nominally in [-1, 1], in fp32.
  at::Tensor decode(const at::Tensor& z, const std::optional<at::Tensor>& timestep,
                    at::Generator generator = at::Generator()) const;

  // One member's part of a decode shared by `group` (collective over it): z
  // holds consecutive latent frames of the whole [B, C, F, H, W], member 0
  // the first, every member at least one; each member's frames in member
  // order. Returns this member's output frames, equal to their rows of the
  // whole decode (member 0: 1 + r (f - 1), the others r f for f latent
  // frames and temporal ratio r): non-causal temporal convolutions read one
  // neighbouring frame across each inner boundary, exchanged over `group`
  // (send_recv); norms, modulation and noise are per frame. `generator` must
  // be in the same state on every member.
  at::Tensor decode_share(const at::Tensor& z, const std::optional<at::Tensor>& timestep, dist::Communicator& group,
                          at::Generator generator = at::Generator()) const;

  // Memory-bounded decode: overlapping spatial tiles, linearly blended seams.
  // Approximate (tiles do not see each other's context beyond the overlap);
  // equal to decode() when one tile covers the latent.
  at::Tensor decode_tiled(const at::Tensor& z, const std::optional<at::Tensor>& timestep,
                          const VaeTiling& tiling = {}, at::Generator generator = at::Generator()) const;

 private:
  struct Conv {
    at::Tensor weight, bias;
  };
  struct ResBlock {
    Conv conv1, conv2;
    at::Tensor norm3_weight, norm3_bias;  // only when in != out
    Conv shortcut;                        // only when in != out
    at::Tensor scale_shift_table;         // [4, C] when timestep-conditioned
    at::Tensor noise_scale1, noise_scale2;  // [C, 1, 1] when injecting noise
  };
  struct TimeEmbedder {
    LinearWeights linear_1, linear_2;
    bool defined() const { return linear_1.weight.defined(); }
  };
  struct Upsampler {
    Conv conv;
    bool residual = false;
    int64_t factor = 1;
    std::array<int64_t, 3> stride = {2, 2, 2};  // (time, height, width)
  };
  struct UpBlock {
    std::optional<ResBlock> conv_in;
    TimeEmbedder time_embedder;
    std::optional<Upsampler> upsampler;
    std::vector<ResBlock> resnets;
  };

  LtxVaeDecoder() = default;
  // `group`: the members sharing the frames (decode_share), nullptr when
  // this call holds them all.
  at::Tensor run(const at::Tensor& z, const std::optional<at::Tensor>& timestep, at::Generator gen,
                 dist::Communicator* group) const;
  at::Tensor conv3d(const at::Tensor& x, const Conv& c, dist::Communicator* group) const;
  at::Tensor res_block(const at::Tensor& x, const ResBlock& b, const at::Tensor& temb, at::Generator& gen,
                       dist::Communicator* group) const;
  at::Tensor upsample(const at::Tensor& x, const Upsampler& u, dist::Communicator* group) const;
  at::Tensor embed(const TimeEmbedder& e, const at::Tensor& timestep) const;

  VaeConfig config_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::Device(at::kCPU);
  Conv conv_in_, conv_out_;
  TimeEmbedder mid_time_embedder_;
  std::vector<ResBlock> mid_resnets_;
  std::vector<UpBlock> up_blocks_;
  TimeEmbedder final_time_embedder_;
  at::Tensor final_scale_shift_table_;
  at::Tensor timestep_scale_multiplier_;
  at::Tensor latents_mean_, latents_std_;
  std::vector<at::Tensor> weights_;
};

// The LTX pipelines' decode of normalised packed latents [B, N, C] of `grid`
// to frames [B, F, 3, H, W] in [0, 1] (fp32, on the decoder's device):
// de-normalise, blend in decode noise and pass the decode timestep when the
// decoder is timestep-conditioned, decode (tiled when asked), rescale.
// `noise` (the unpacked latents' shape) replaces the generator's draw when
// given; `trace` receives what the decoder saw.
struct DecodeTrace {
  at::Tensor z;         // [B, C, F, H, W]: unpacked, de-normalised, noised
  at::Tensor timestep;  // [B] decode timestep (undefined unless timestep-conditioned)
};
at::Tensor decode_to_frames(const LtxVaeDecoder& vae, const at::Tensor& latents, const LatentGrid& grid,
                            const DecodeSettings& settings, at::Generator generator = at::Generator(),
                            const std::optional<at::Tensor>& noise = std::nullopt, DecodeTrace* trace = nullptr);

// The same decode shared by every rank of `comm` (collective): each decodes
// a consecutive share of the latent frames (decode_share; ranks beyond the
// frame count idle) and rank 0 gathers the frames. Every rank passes the
// whole `latents` and a generator in the same state. Equal to
// decode_to_frames up to rounding; the result on rank 0, undefined elsewhere.
// Not with tiling (INVALID_ARGUMENT names the conflict).
Result<at::Tensor> decode_to_frames_shared(const LtxVaeDecoder& vae, const at::Tensor& latents, const LatentGrid& grid,
                                           const DecodeSettings& settings, at::Generator generator,
                                           dist::Communicator& comm);

// Consecutive shares of `frames` latent frames over `members` (the first
// frames % members members hold one more): {offset, count} of `member`.
std::pair<int64_t, int64_t> frame_share(int64_t frames, int members, int member);

}  // namespace ltx::pipeline
