// Loading LTX-2 from both layouts: tiny checkpoints written here in the
// diffusers folder naming and in the original single-file naming (with and
// without `config` metadata) load into the same model, and what is wrong in
// a checkpoint is an error that names the tensor or the field.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/ltx2/ltx2_audio.h"
#include "pipeline/ltx2/ltx2_small_model.h"
#include "pipeline/ltx2/ltx2_text_connectors.h"
#include "pipeline/ltx2/ltx2_transformer.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {
namespace fs = std::filesystem;

dist::LocalCommunicator& alone() {
  static dist::LocalCommunicator c;
  return c;
}

void write_text(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

Ltx2TransformerConfig v23_transformer() {
  Ltx2TransformerConfig c = ltx2_small_transformer_config();
  c.gated_attn = c.audio_gated_attn = c.cross_attn_mod = c.audio_cross_attn_mod = true;
  c.use_prompt_embeddings = false;
  c.perturbed_attn = true;
  return c;
}

Ltx2ConnectorsConfig v23_connectors(const Ltx2TransformerConfig& t) {
  Ltx2ConnectorsConfig k = ltx2_small_connectors_config();
  k.per_modality_projections = true;
  k.proj_bias = true;
  k.video_hidden_dim = t.inner_dim();
  k.audio_hidden_dim = t.audio_inner_dim();
  k.video.num_attention_heads = t.inner_dim() / 8;
  k.audio.num_attention_heads = t.audio_inner_dim() / 8;
  k.video.gated_attn = k.audio.gated_attn = true;
  return k;
}

// A diffusers folder pair (transformer/, connectors/) from the same seeds the
// single-file writer uses, so both layouts hold the same weights.
fs::path write_diffusers(const std::string& tag, const Ltx2TransformerConfig& t, const Ltx2ConnectorsConfig& k,
                         uint64_t seed) {
  fs::path dir = testing::scratch_dir(tag);
  fs::create_directories(dir / "transformer");
  fs::create_directories(dir / "connectors");
  write_text(dir / "transformer" / "config.json", ltx2_transformer_config_json(t));
  write_text(dir / "connectors" / "config.json", ltx2_connectors_config_json(k));
  NamedTensors tw, kw;
  for (auto& [n, w] : ltx2_random_tensors(Ltx2Transformer::expected_tensors(t), seed)) tw.emplace_back(n, w);
  for (auto& [n, w] : ltx2_random_tensors(Ltx2TextConnectors::expected_tensors(k), seed + 1)) kw.emplace_back(n, w);
  EXPECT_TRUE(write_safetensors((dir / "transformer" / "diffusion_pytorch_model.safetensors").string(), tw).ok());
  EXPECT_TRUE(write_safetensors((dir / "connectors" / "diffusion_pytorch_model.safetensors").string(), kw).ok());
  return dir;
}

// Both models' outputs on one fixed input.
struct Outputs {
  at::Tensor video, audio, text_video, text_audio;
};

Outputs run(const Ltx2Transformer& t, const Ltx2TextConnectors& k) {
  at::manual_seed(3);
  const auto& kc = k.config();
  const int64_t l = 16;
  at::Tensor hidden = at::randn({1, l, kc.feature_dim()});
  at::Tensor mask = at::ones({1, l}, at::kLong);
  mask.index_put_({0, at::indexing::Slice(0, 5)}, 0);
  auto ctx = k.forward(hidden, mask);
  auto text = t.prepare_text(ctx.video, ctx.mask, ctx.audio, ctx.mask);
  const auto& c = t.config();
  Ltx2FullArgs a;
  a.video = at::randn({1, 2 * 2 * 3, c.in_channels});
  a.audio = at::randn({1, 5, c.audio_in_channels});
  a.timestep = a.sigma = at::tensor({600.0f});
  a.video_coords = ltx2_video_coords(1, 2, 2, 3, 24.0, c);
  a.audio_coords = ltx2_audio_coords(1, 5, c);
  a.text = &text;
  auto out = ltx2_forward_full(t, a);
  return {out.video, out.audio, ctx.video, ctx.audio};
}

void expect_same(const Outputs& a, const Outputs& b) {
  EXPECT_TRUE(a.video.equal(b.video));
  EXPECT_TRUE(a.audio.equal(b.audio));
  EXPECT_TRUE(a.text_video.equal(b.text_video));
  EXPECT_TRUE(a.text_audio.equal(b.text_audio));
}

void expect_both_layouts_agree(const Ltx2TransformerConfig& t, const Ltx2ConnectorsConfig& k, const std::string& tag) {
  fs::path dir = write_diffusers(tag, t, k, 21);
  auto dt = Ltx2Transformer::load((dir / "transformer").string(), alone(), at::kFloat, at::kCPU);
  auto dk = Ltx2TextConnectors::load((dir / "connectors").string(), at::kFloat, at::kCPU);
  ASSERT_TRUE(dt.ok()) << dt.status();
  ASSERT_TRUE(dk.ok()) << dk.status();
  EXPECT_EQ(dt->config().variant(), t.variant());
  Outputs want = run(*dt, *dk);
  for (bool meta : {true, false}) {
    const std::string file = (dir / (meta ? "ltx-2-meta.safetensors" : "ltx-2-bare.safetensors")).string();
    ASSERT_TRUE(write_ltx2_single_file(file, t, k, 21, meta).ok());
    auto st = Ltx2Transformer::load(file, alone(), at::kFloat, at::kCPU);
    auto sk = Ltx2TextConnectors::load(file, at::kFloat, at::kCPU);
    ASSERT_TRUE(st.ok()) << st.status();
    if (!meta && k.per_modality_projections) {
      // 2.3 keeps no tensor that gives the Gemma width: without metadata the
      // released 3840 is assumed, and this tiny file's text projection is
      // named as not fitting it.
      ASSERT_FALSE(sk.ok());
      EXPECT_NE(sk.status().message().find("text_embedding_projection.video_aggregate_embed.weight"),
                std::string::npos) << sk.status();
      EXPECT_EQ(st->config().variant(), t.variant());
      continue;
    }
    ASSERT_TRUE(sk.ok()) << sk.status();
    EXPECT_EQ(st->config().num_layers, t.num_layers);
    EXPECT_EQ(st->config().variant(), t.variant()) << (meta ? "metadata" : "inferred from the tensor names");
    EXPECT_EQ(sk->config().text_proj_in_factor, k.text_proj_in_factor);
    expect_same(run(*st, *sk), want);
  }
}

TEST(Ltx2Loading, V20DiffusersFolderAndSingleFileGiveTheSameModel) {
  // 2.0 files without metadata are read as the released 32-head layout.
  Ltx2TransformerConfig t = ltx2_small_transformer_config();
  t.num_attention_heads = t.audio_num_attention_heads = 32;
  t.attention_head_dim = 4;
  t.audio_attention_head_dim = 2;
  t.cross_attention_dim = t.inner_dim();
  t.audio_cross_attention_dim = t.audio_inner_dim();
  t.caption_channels = 128;
  Ltx2ConnectorsConfig k = ltx2_small_connectors_config();
  k.caption_channels = 128;
  k.video.num_attention_heads = k.audio.num_attention_heads = 1;
  k.video.attention_head_dim = k.audio.attention_head_dim = 128;
  expect_both_layouts_agree(t, k, "ltx2_v20");
}

TEST(Ltx2Loading, V23DiffusersFolderAndSingleFileGiveTheSameModel) {
  Ltx2TransformerConfig t = v23_transformer();
  expect_both_layouts_agree(t, v23_connectors(t), "ltx2_v23");
}

TEST(Ltx2Loading, TheBuiltInModelLoadsThroughTheDiffusersLoaders) {
  fs::path dir = testing::scratch_dir("ltx2_builtin");
  fs::remove_all(dir);
  Status written = write_ltx2_small_model(dir.string(), 0);
  ASSERT_TRUE(written.ok()) << written;
  auto t = Ltx2Transformer::load((dir / "transformer").string(), alone(), at::kFloat, at::kCPU);
  auto k = Ltx2TextConnectors::load((dir / "connectors").string(), at::kFloat, at::kCPU);
  ASSERT_TRUE(t.ok()) << t.status();
  ASSERT_TRUE(k.ok()) << k.status();
  EXPECT_EQ(t->config().num_attention_heads % 16, 0);
  EXPECT_EQ(t->config().audio_num_attention_heads % 16, 0);
  Outputs o = run(*t, *k);
  EXPECT_TRUE(o.video.isfinite().all().item<bool>());
  EXPECT_TRUE(o.audio.isfinite().all().item<bool>());
  // The decoders: 2 latent frames of 2x2 -> 9 frames of 64x64; 9 audio latent
  // frames -> 33 mel frames -> 33 x 240 samples at 24 kHz.
  auto vae = LtxVaeDecoder::load((dir / "vae").string(), at::kFloat, at::kCPU);
  auto audio = Ltx2AudioDecoder::load((dir / "audio_vae").string(), at::kFloat, at::kCPU);
  auto vocoder = Ltx2Vocoder::load((dir / "vocoder").string(), at::kFloat, at::kCPU);
  ASSERT_TRUE(vae.ok()) << vae.status();
  ASSERT_TRUE(audio.ok()) << audio.status();
  ASSERT_TRUE(vocoder.ok()) << vocoder.status();
  EXPECT_EQ(vae->config().latent_channels, t->config().in_channels);
  at::Tensor frames = vae->decode(at::randn({1, t->config().in_channels, 2, 2, 2}), std::nullopt);
  EXPECT_EQ(frames.sizes(), (at::IntArrayRef{1, 3, 9, 64, 64}));
  const auto& ac = audio->config();
  EXPECT_EQ(ac.latent_channels * ac.mel_bins / 4, t->config().audio_in_channels);
  at::Tensor mel = audio->decode(at::randn({1, ac.latent_channels, 9, ac.mel_bins / 4}));
  EXPECT_EQ(mel.sizes(), (at::IntArrayRef{1, 2, 33, ac.mel_bins}));
  at::Tensor wave = vocoder->forward(mel);
  EXPECT_EQ(wave.sizes(), (at::IntArrayRef{1, 2, 33 * 240}));
  EXPECT_EQ(vocoder->config().output_sampling_rate, 24000);
  EXPECT_TRUE(wave.isfinite().all().item<bool>());
}

// The RoPE bounds the pipeline derives equal the ones the reference passed,
// bit for bit (a one-ulp difference in a time coordinate moves the highest
// RoPE frequencies by ~1e-4 rad and the outputs by ~1e-5).
TEST(Ltx2Coordinates, EqualTheReferencePipelinesBitForBit) {
  auto io = value_or_throw(SafetensorsFile::open(testing::fixture_dir("ltx2_transformer_v20") + "/io.safetensors"));
  const Ltx2TransformerConfig c = value_or_throw(
      load_ltx2_transformer_config(testing::fixture_dir("ltx2_transformer_v20") + "/config.json"));
  // b2: grid 2x3x4 at 24 fps, 9 audio frames; odd: 3x3x5 at 25 fps, 17 audio frames.
  EXPECT_TRUE(ltx2_video_coords(2, 2, 3, 4, 24.0, c).equal(value_or_throw(io->tensor("in.b2.video_coords"))));
  EXPECT_TRUE(ltx2_audio_coords(2, 9, c).equal(value_or_throw(io->tensor("in.b2.audio_coords"))));
  EXPECT_TRUE(ltx2_video_coords(1, 3, 3, 5, 25.0, c).equal(value_or_throw(io->tensor("in.odd.video_coords"))));
  EXPECT_TRUE(ltx2_audio_coords(1, 17, c).equal(value_or_throw(io->tensor("in.odd.audio_coords"))));
}

// ---- named errors --------------------------------------------------------------

std::string load_error(const std::string& path) {
  auto t = Ltx2Transformer::load(path, alone(), at::kFloat, at::kCPU);
  EXPECT_FALSE(t.ok()) << path;
  return t.ok() ? "" : t.status().message();
}

TEST(Ltx2LoadingErrors, AMissingTensorIsNamed) {
  const Ltx2TransformerConfig t = ltx2_small_transformer_config();
  fs::path dir = write_diffusers("ltx2_missing", t, ltx2_small_connectors_config(), 1);
  NamedTensors tw;
  for (auto& [n, w] : ltx2_random_tensors(Ltx2Transformer::expected_tensors(t), 1)) {
    if (n != "transformer_blocks.1.audio_to_video_attn.to_k.weight") tw.emplace_back(n, w);
  }
  ASSERT_TRUE(write_safetensors((dir / "transformer" / "diffusion_pytorch_model.safetensors").string(), tw).ok());
  EXPECT_NE(load_error((dir / "transformer").string()).find("transformer_blocks.1.audio_to_video_attn.to_k.weight"),
            std::string::npos);
}

TEST(Ltx2LoadingErrors, AWrongShapeIsNamed) {
  const Ltx2TransformerConfig t = ltx2_small_transformer_config();
  fs::path dir = write_diffusers("ltx2_shape", t, ltx2_small_connectors_config(), 1);
  NamedTensors tw;
  for (auto& [n, w] : ltx2_random_tensors(Ltx2Transformer::expected_tensors(t), 1)) {
    tw.emplace_back(n, n == "audio_proj_in.weight" ? at::zeros({3, 3}) : w);
  }
  ASSERT_TRUE(write_safetensors((dir / "transformer" / "diffusion_pytorch_model.safetensors").string(), tw).ok());
  const std::string e = load_error((dir / "transformer").string());
  EXPECT_NE(e.find("audio_proj_in.weight"), std::string::npos) << e;
}

TEST(Ltx2LoadingErrors, AnUnknownRopeLayoutIsNamed) {
  fs::path dir = write_diffusers("ltx2_rope", ltx2_small_transformer_config(), ltx2_small_connectors_config(), 1);
  std::string text = ltx2_transformer_config_json(ltx2_small_transformer_config());
  text.replace(text.find("\"split\""), 7, "\"spiral\"");
  write_text(dir / "transformer" / "config.json", text);
  const std::string e = load_error((dir / "transformer").string());
  EXPECT_NE(e.find("'rope_type'"), std::string::npos) << e;
  EXPECT_NE(e.find("spiral"), std::string::npos) << e;
}

TEST(Ltx2LoadingErrors, AnUnknownVariantWithoutMetadataIsNamed) {
  // A file whose block tables have 7 rows is neither 2.0 (6) nor 2.3 (9).
  const Ltx2TransformerConfig t = ltx2_small_transformer_config();
  fs::path file = testing::scratch_dir("ltx2_variant") + "/ltx-2-odd.safetensors";
  NamedTensors all;
  for (auto& [n, w] : ltx2_random_tensors(Ltx2Transformer::expected_tensors(t), 1)) {
    at::Tensor x = n == "transformer_blocks.0.scale_shift_table" ? at::zeros({7, t.inner_dim()}) : w;
    all.emplace_back(ltx2_original_transformer_name(n), x);
  }
  ASSERT_TRUE(write_safetensors(file.string(), all).ok());
  const std::string e = load_error(file.string());
  EXPECT_NE(e.find("transformer_blocks.0.scale_shift_table"), std::string::npos) << e;
  EXPECT_NE(e.find("7 rows"), std::string::npos) << e;
}

TEST(Ltx2LoadingErrors, APartialSetOfVariantSwitchesIsNamed) {
  const Ltx2TransformerConfig t = ltx2_small_transformer_config();
  std::string meta = ltx2_original_config_json(t, ltx2_small_connectors_config());
  meta.insert(meta.find("{", 1) + 1, "\"caption_proj_before_connector\":true,");
  auto r = parse_ltx2_original_config(meta, "x.safetensors");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'caption_proj_before_connector'"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace ltx::pipeline
