// The LTX-2 audio decoding path (spec ltx2.md §5): the audio VAE decoder
// (latents [B, C, T, M'] -> log-mel [B, 2, 4T-3, mel_bins]; causal along time,
// pixel norm, no attention) and the 2.0 HiFi-GAN-style vocoder (mel ->
// stereo waveform at its output sample rate). LTX-2.3's bandwidth-extension
// vocoder is refused with an error that names it.
//
// Both load from a diffusers folder (config.json + safetensors: audio_vae/,
// vocoder/) or from an original single-file checkpoint (`audio_vae.*`,
// `vocoder.*`; the released structure). They run on rank 0 where the
// decoders are placed; immutable after load, no communication.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"

namespace ltx::pipeline {

struct Ltx2AudioVaeConfig {
  int64_t base_channels = 128;
  std::vector<int64_t> ch_mult = {1, 2, 4};
  int64_t num_res_blocks = 2;  // blocks per level = num_res_blocks + 1
  int64_t latent_channels = 8;
  int64_t output_channels = 2;
  int64_t mel_bins = 64;
  int64_t sample_rate = 16000;
  int64_t mel_hop_length = 160;
  // Latent frames to mel frames (4 in every release).
  static constexpr int64_t kTimeCompression = 4;
};

struct Ltx2VocoderConfig {
  int64_t in_channels = 128;
  int64_t hidden_channels = 1024;
  int64_t out_channels = 2;
  std::vector<int64_t> upsample_kernel_sizes = {16, 15, 8, 4, 4};
  std::vector<int64_t> upsample_factors = {6, 5, 2, 2, 2};
  std::vector<int64_t> resnet_kernel_sizes = {3, 7, 11};
  std::vector<std::vector<int64_t>> resnet_dilations = {{1, 3, 5}, {1, 3, 5}, {1, 3, 5}};
  double leaky_relu_negative_slope = 0.1;
  std::string final_act_fn = "tanh";  // "tanh", "clamp" or "" (none)
  bool final_bias = true;
  int64_t output_sampling_rate = 24000;
  int64_t hop() const;  // waveform samples per mel frame (product of the factors)
};

Result<Ltx2AudioVaeConfig> parse_ltx2_audio_vae_config(const std::string& json_text, const std::string& source);
Result<Ltx2VocoderConfig> parse_ltx2_vocoder_config(const std::string& json_text, const std::string& source);

class Ltx2AudioDecoder {
 public:
  // A diffusers audio_vae/ folder, or an original single file (`audio_vae.*`).
  static Result<Ltx2AudioDecoder> load(const std::string& path, at::ScalarType dtype, const at::Device& device);
  static Result<Ltx2AudioDecoder> from_checkpoint(const Ltx2AudioVaeConfig& config, const SafetensorsCheckpoint& ckpt,
                                                  at::ScalarType dtype, const at::Device& device);
  static std::vector<ExpectedTensor> expected_tensors(const Ltx2AudioVaeConfig& config);

  const Ltx2AudioVaeConfig& config() const { return config_; }
  const std::vector<at::Tensor>& weights() const { return weights_; }
  // Per-feature statistics of the packed tokens [B, T, C*M'] (base_channels each).
  const at::Tensor& latents_mean() const { return mean_; }
  const at::Tensor& latents_std() const { return std_; }

  // Denormalised latents [B, latent_channels, T, M'] -> mel [B, out, 4T-3, mel_bins], fp32.
  at::Tensor decode(const at::Tensor& z) const;

  struct Weights;

 private:
  Ltx2AudioDecoder() = default;
  Ltx2AudioVaeConfig config_;
  std::shared_ptr<const Weights> w_;
  std::vector<at::Tensor> weights_;
  at::Tensor mean_, std_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
};

class Ltx2Vocoder {
 public:
  // A diffusers vocoder/ folder, or an original single file (`vocoder.*`).
  static Result<Ltx2Vocoder> load(const std::string& path, at::ScalarType dtype, const at::Device& device);
  static Result<Ltx2Vocoder> from_checkpoint(const Ltx2VocoderConfig& config, const SafetensorsCheckpoint& ckpt,
                                             at::ScalarType dtype, const at::Device& device);
  static std::vector<ExpectedTensor> expected_tensors(const Ltx2VocoderConfig& config);

  const Ltx2VocoderConfig& config() const { return config_; }
  const std::vector<at::Tensor>& weights() const { return weights_; }

  // mel [B, channels, T, mel_bins] (the audio VAE's layout) -> waveform
  // [B, out_channels, T * hop], fp32.
  at::Tensor forward(const at::Tensor& mel) const;

 private:
  Ltx2Vocoder() = default;
  Ltx2VocoderConfig config_;
  std::vector<at::Tensor> weights_;
  std::map<std::string, at::Tensor> w_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
};

}  // namespace ltx::pipeline
