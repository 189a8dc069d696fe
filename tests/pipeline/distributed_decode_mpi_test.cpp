// The decode shared by the group (decode_to_frames_shared: every rank
// decodes a consecutive share of the latent frames, a halo frame exchanged
// before every temporal convolution) against the whole decode on one rank,
// for the LTX-Video 0.9.0 / 0.9.5 decoders, LTX-2's 2.0 (reflect padding,
// residual upsamplers, timestep) and 2.3 (temporal and spatial upsamplers)
// decoders, and a 0.9.1-style decoder that injects noise. Frame counts that
// do not divide the group (uneven shares) and fewer frames than ranks (idle
// ranks) included. Run on 1, 2, 4 and 8 ranks.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/ltx2/ltx2_small_model.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

LtxVaeDecoder fixture_vae(const std::string& name) {
  const std::string dir = testing::fixture_dir(name);
  return *LtxVaeDecoder::from_checkpoint(*load_vae_config(dir + "/config.json"),
                                         *SafetensorsCheckpoint::open(dir + "/weights.safetensors"), at::kFloat,
                                         at::kCPU);
}

// The 0.9.5 fixture's structure with noise injected in every block (as
// 0.9.1 does), random weights (the same on every rank).
LtxVaeDecoder noisy_vae() {
  std::ifstream in(testing::fixture_dir("ltx_vae_decoder_v095") + "/config.json");
  std::stringstream text;
  text << in.rdbuf();
  VaeConfig config = *parse_vae_config(text.str(), "v095 config");
  config.decoder_inject_noise.assign(config.decoder_inject_noise.size(), true);
  auto random = ltx2_random_tensors(vae_expected_tensors(config), 5);
  NamedTensors named(random.begin(), random.end());
  for (auto& [name, t] : named) {
    if (name.find("per_channel_scale") != std::string::npos) t = t.abs() + 0.5;  // visible noise
  }
  const std::string path = testing::scratch_dir("noisy_vae") + "/weights.safetensors";
  EXPECT_TRUE(write_safetensors(path, named).ok());
  return *LtxVaeDecoder::from_checkpoint(config, *SafetensorsCheckpoint::open(path), at::kFloat, at::kCPU);
}

// Packed normalised latents [1, F*H*W, C] for `grid`, the same on every rank.
at::Tensor latents(const LtxVaeDecoder& vae, const LatentGrid& grid, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return pack_latents(at::randn({1, vae.config().latent_channels, grid.frames, grid.height, grid.width}, gen));
}

void expect_shared_equals_whole(const LtxVaeDecoder& vae, int64_t frames, const DecodeSettings& settings) {
  dist::Communicator& group = testing::mpi_group();
  const LatentGrid grid{frames, 2, 3};
  const at::Tensor packed = latents(vae, grid, 100 + frames);
  auto shared = decode_to_frames_shared(vae, packed, grid, settings, at::make_generator<at::CPUGeneratorImpl>(9), group);
  ASSERT_TRUE(shared.ok()) << shared.status();
  if (group.rank() != 0) {
    EXPECT_FALSE(shared->defined()) << "only rank 0 gets the frames";
    return;
  }
  at::Tensor whole = decode_to_frames(vae, packed, grid, settings, at::make_generator<at::CPUGeneratorImpl>(9));
  ASSERT_EQ(shared->sizes(), whole.sizes()) << frames << " latent frames on " << group.size() << " ranks";
  const auto d = testing::difference(*shared, whole);
  EXPECT_LT(d.rel_l2, 1e-5) << frames << " latent frames on " << group.size() << " ranks: " << testing::describe(d);
  // Rounding only: convolutions over other frame counts may sum in another
  // order (a wrong halo shows as errors of order 1e-1).
  EXPECT_LT(d.max_abs, 1e-3) << testing::describe(d);
}

TEST(DistributedDecode, LtxVideo090EqualsTheWholeDecode) {
  const LtxVaeDecoder vae = fixture_vae("ltx_vae_decoder_v090");
  for (int64_t frames : {7, 3, 1}) expect_shared_equals_whole(vae, frames, {});
}

TEST(DistributedDecode, LtxVideo095WithTimestepAndDecodeNoise) {
  const LtxVaeDecoder vae = fixture_vae("ltx_vae_decoder_v095");
  ASSERT_TRUE(vae.timestep_conditioned());
  DecodeSettings s;
  s.decode_timestep = 0.05;
  s.decode_noise_scale = 0.3;
  for (int64_t frames : {9, 5}) expect_shared_equals_whole(vae, frames, s);
}

TEST(DistributedDecode, InjectedNoiseIsDrawnAlikeOnEveryRank) {
  const LtxVaeDecoder vae = noisy_vae();
  expect_shared_equals_whole(vae, 6, {});
}

TEST(DistributedDecode, Ltx2Decoders) {
  DecodeSettings s;
  s.decode_noise_scale = 0.1;
  expect_shared_equals_whole(fixture_vae("ltx2_video_vae_decoder_v20_temb"), 7, s);
  expect_shared_equals_whole(fixture_vae("ltx2_video_vae_decoder_v23"), 5, {});
}

TEST(DistributedDecode, FrameSharesCoverTheFramesInOrder) {
  for (int members : {1, 2, 3, 4, 8}) {
    for (int64_t frames : {1, 5, 8, 16, 17}) {
      if (frames < members) continue;
      int64_t next = 0;
      for (int m = 0; m < members; ++m) {
        auto [offset, count] = frame_share(frames, members, m);
        EXPECT_EQ(offset, next);
        EXPECT_GE(count, frames / members);
        EXPECT_LE(count, frames / members + 1);
        next = offset + count;
      }
      EXPECT_EQ(next, frames);
    }
  }
}

TEST(DistributedDecode, TilingIsRefusedByName) {
  const LtxVaeDecoder vae = fixture_vae("ltx_vae_decoder_v090");
  DecodeSettings s;
  s.tiling = VaeTiling{};
  const LatentGrid grid{3, 2, 3};
  auto r = decode_to_frames_shared(vae, latents(vae, grid, 1), grid, s, at::Generator(), testing::mpi_group());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("tiled decode"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace ltx::pipeline
