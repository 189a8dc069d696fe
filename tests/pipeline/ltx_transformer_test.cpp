#include "pipeline/dit/ltx_transformer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "tests/pipeline/ltx_test_models.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {
namespace fs = std::filesystem;

dist::LocalCommunicator& local() {
  static dist::LocalCommunicator c;
  return c;
}

struct FixtureCase {
  TransformerConfig config;
  std::shared_ptr<const SafetensorsFile> io;
  std::string dir;
};

FixtureCase fixture(const std::string& name) {
  FixtureCase f;
  f.dir = testing::fixture_dir(name);
  f.config = *load_transformer_config(f.dir + "/config.json");
  f.io = *SafetensorsFile::open(f.dir + "/io.safetensors");
  return f;
}

at::Tensor io(const FixtureCase& f, const std::string& name) { return *f.io->tensor(name); }

TEST(LtxRope, MatchesTheSpecGoldenValues) {
  LatentGrid grid{3, 4, 5, 0};
  RopeSettings rope;  // fps 25, no causal fix
  RopeTables t = rope_tables(grid, rope, 2048, at::kCPU);
  const int64_t n = (1 * 4 + 2) * 5 + 3;  // f=1, h=2, w=3 -> 33
  const float cos_want[] = {1, 1, 0.050244f, 0.050244f, 0.098017f, 0.098017f, 0.14673f, 0.14673f};
  const float sin_want[] = {0, 0, -0.998737f, -0.998737f, -0.995185f, -0.995185f, -0.989177f, -0.989177f};
  for (int i = 0; i < 8; ++i) {
    EXPECT_NEAR(t.cos[n][i].item<float>(), cos_want[i], 2e-5) << i;
    EXPECT_NEAR(t.sin[n][i].item<float>(), sin_want[i], 2e-5) << i;
  }
}

TEST(LtxRope, GlobalFrameOffsetContinuesTheGrid) {
  RopeSettings rope;
  RopeTables whole = rope_tables({5, 2, 3, 0}, rope, 48, at::kCPU);
  RopeTables tail = rope_tables({2, 2, 3, 3}, rope, 48, at::kCPU);
  EXPECT_TRUE(at::allclose(tail.cos, whole.cos.narrow(0, 18, 12)));
  EXPECT_TRUE(at::allclose(tail.sin, whole.sin.narrow(0, 18, 12)));
  rope.causal_temporal_positioning = true;
  at::Tensor pos = rope_positions({3, 1, 1, 0}, rope);
  EXPECT_FLOAT_EQ(pos[0][0].item<float>(), 0.0f);                 // frame 0 -> pixel frame 0
  EXPECT_NEAR(pos[1][0].item<float>(), 1.0 / 25 / 20, 1e-7);      // frame 1 -> pixel frame 1
  EXPECT_NEAR(pos[2][0].item<float>(), 9.0 / 25 / 20, 1e-7);      // frame 2 -> pixel frame 9
}

// Loads the fixture weights renamed to the original single-file naming (with
// the model.diffusion_model. prefix, a VAE tensor and a config metadata entry):
// same model, same output.
TEST(LtxTransformerLoad, OriginalSingleFileNamingGivesTheSameModel) {
  FixtureCase f = fixture("ltx_transformer_f3h4w6");
  auto weights = *SafetensorsFile::open(f.dir + "/weights.safetensors");
  NamedTensors renamed;
  for (const auto& name : weights->names()) {
    std::string n = name;
    auto rep = [&n](const std::string& a, const std::string& b) {
      size_t p = n.find(a);
      if (p != std::string::npos) n.replace(p, a.size(), b);
    };
    rep("proj_in.", "patchify_proj.");
    rep("time_embed.", "adaln_single.");
    rep(".norm_q.", ".q_norm.");
    rep(".norm_k.", ".k_norm.");
    renamed.emplace_back("model.diffusion_model." + n, *weights->tensor(name));
  }
  renamed.emplace_back("vae.decoder.conv_in.weight", at::zeros({2, 2}));
  std::string dir = testing::scratch_dir("single");
  const std::string meta = R"({"transformer": {"num_attention_heads": 2, "attention_head_dim": 16,
      "cross_attention_dim": 32, "num_layers": 2, "caption_channels": 24, "in_channels": 8,
      "out_channels": 8, "qk_norm": "rms_norm", "positional_embedding_type": "rope"}, "vae": {}})";
  ASSERT_TRUE(write_safetensors(dir + "/ltx-video.safetensors", renamed, {{"config", meta}}).ok());
  auto original = LtxTransformer::load(dir + "/ltx-video.safetensors", local(), at::kFloat, at::kCPU);
  ASSERT_TRUE(original.ok()) << original.status();
  auto diffusers = LtxTransformer::from_checkpoint(
      f.config, *SafetensorsCheckpoint::open(f.dir + "/weights.safetensors"), local(), at::kFloat, at::kCPU);
  ASSERT_TRUE(diffusers.ok()) << diffusers.status();
  auto text_a = original->prepare_text(io(f, "in.encoder_hidden_states"), io(f, "in.encoder_attention_mask"));
  auto text_b = diffusers->prepare_text(io(f, "in.encoder_hidden_states"), io(f, "in.encoder_attention_mask"));
  LatentGrid grid{3, 4, 6, 0};
  at::Tensor a = original->forward_full(io(f, "in.hidden_states"), io(f, "in.timestep"), text_a, grid, {});
  at::Tensor b = diffusers->forward_full(io(f, "in.hidden_states"), io(f, "in.timestep"), text_b, grid, {});
  EXPECT_TRUE(at::equal(a, b));
  auto diff = testing::difference(a, io(f, "out.sample"));
  EXPECT_LT(diff.rel_l2, 1e-5) << testing::describe(diff);
}

class LoadErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = testing::small_transformer_config(2, 1);
    dir_ = testing::write_random_transformer(config_, 1);
    tensors_ = *SafetensorsFile::open(dir_ + "/diffusion_pytorch_model.safetensors");
  }
  Status load_with(const std::function<void(NamedTensors&)>& edit) {
    NamedTensors t;
    for (const auto& n : tensors_->names()) t.emplace_back(n, *tensors_->tensor(n));
    edit(t);
    std::string dir = testing::scratch_dir("bad");
    fs::copy_file(dir_ + "/config.json", dir + "/config.json");
    EXPECT_TRUE(write_safetensors(dir + "/diffusion_pytorch_model.safetensors", t).ok());
    return LtxTransformer::load(dir, local(), at::kFloat, at::kCPU).status();
  }
  TransformerConfig config_;
  std::string dir_;
  std::shared_ptr<const SafetensorsFile> tensors_;
};

TEST_F(LoadErrors, MissingUnexpectedAndMisshapenTensorsAreNamed) {
  EXPECT_TRUE(LtxTransformer::load(dir_, local(), at::kFloat, at::kCPU).ok());
  Status missing = load_with([](NamedTensors& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "transformer_blocks.0.attn2.norm_k.weight"; }), t.end());
  });
  EXPECT_NE(missing.message().find("missing tensor 'transformer_blocks.0.attn2.norm_k.weight'"), std::string::npos) << missing;
  Status unexpected = load_with([](NamedTensors& t) { t.emplace_back("transformer_blocks.1.attn1.to_q.weight", at::zeros({16, 16})); });
  EXPECT_NE(unexpected.message().find("unexpected tensor 'transformer_blocks.1.attn1.to_q.weight'"), std::string::npos) << unexpected;
  Status shape = load_with([](NamedTensors& t) {
    for (auto& p : t) {
      if (p.first == "proj_out.weight") p.second = at::zeros({8, 15});
    }
  });
  EXPECT_NE(shape.message().find("'proj_out.weight' has shape [8, 15], expected [8, 16]"), std::string::npos) << shape;
  Status dtype = load_with([](NamedTensors& t) {
    for (auto& p : t) {
      if (p.first == "proj_out.bias") p.second = at::zeros({8}, at::kLong);
    }
  });
  EXPECT_NE(dtype.message().find("not floating point"), std::string::npos) << dtype;
  EXPECT_EQ(LtxTransformer::load("/nonexistent", local(), at::kFloat, at::kCPU).status().code(), StatusCode::kNotFound);
}

TEST_F(LoadErrors, ShardedDiffusersFolderLoads) {
  NamedTensors a, b;
  int i = 0;
  std::string index = R"({"metadata": {}, "weight_map": {)";
  for (const auto& n : tensors_->names()) {
    const bool first = (i++ % 2) == 0;
    (first ? a : b).emplace_back(n, *tensors_->tensor(n));
    index += (i > 1 ? "," : "") + ("\"" + n + "\": \"diffusion_pytorch_model-0000" + (first ? "1" : "2") + "-of-00002.safetensors\"");
  }
  index += "}}";
  std::string dir = testing::scratch_dir("sharded");
  fs::copy_file(dir_ + "/config.json", dir + "/config.json");
  ASSERT_TRUE(write_safetensors(dir + "/diffusion_pytorch_model-00001-of-00002.safetensors", a).ok());
  ASSERT_TRUE(write_safetensors(dir + "/diffusion_pytorch_model-00002-of-00002.safetensors", b).ok());
  std::ofstream(dir + "/diffusion_pytorch_model.safetensors.index.json") << index;
  auto m = LtxTransformer::load(dir, local(), at::kBFloat16, at::kCPU);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->dtype(), at::kBFloat16);
}

// One forward over two chunks with a block-causal mask equals the second
// chunk's forward given the first chunk's returned keys/values as prefix.
TEST(LtxTransformerKvHooks, ChunkWithPrefixEqualsBlockCausalWholeSequence) {
  auto config = testing::small_transformer_config(4, 2);
  auto model = *LtxTransformer::load(testing::write_random_transformer(config, 7), local(), at::kFloat, at::kCPU);
  at::manual_seed(3);
  const int64_t b = 2, f0 = 2, f1 = 3, hh = 2, ww = 3, per_frame = hh * ww;
  const int64_t s0 = f0 * per_frame, s1 = f1 * per_frame;
  at::Tensor x0 = at::randn({b, s0, 8}), x1 = at::randn({b, s1, 8});
  at::Tensor text = at::randn({b, 5, 24});
  at::Tensor mask = at::ones({b, 5}, at::kLong);
  mask[1][4] = 0;
  auto cond = model.prepare_text(text, mask);
  at::Tensor t1 = at::tensor({700.0f, 350.0f});
  RopeSettings rope;

  // Whole sequence: chunk 0 clean (t = 0), chunk 1 at t1, block-causal.
  LtxForwardArgs whole;
  whole.shard = parallel::SequenceShard::make(s0 + s1, 1, 0);
  whole.hidden_states = at::cat({x0, x1}, 1);
  whole.timestep = at::cat({at::zeros({b, s0}), t1.unsqueeze(1).expand({b, s1})}, 1);
  auto tw = rope_tables({f0 + f1, hh, ww, 0}, rope, model.inner_dim(), at::kCPU);
  whole.rope_cos = tw.cos;
  whole.rope_sin = tw.sin;
  whole.text = &cond;
  whole.self_attention_bias = testing::block_causal_bias({s0, s1});
  at::Tensor out_whole = model.forward(whole);

  // Chunk 0 alone at t = 0: its own K/V per layer.
  std::vector<LayerKv> cache;
  LtxForwardArgs c0;
  c0.shard = parallel::SequenceShard::make(s0, 1, 0);
  c0.hidden_states = x0;
  c0.timestep = at::zeros({b});
  auto tt0 = rope_tables({f0, hh, ww, 0}, rope, model.inner_dim(), at::kCPU);
  c0.rope_cos = tt0.cos;
  c0.rope_sin = tt0.sin;
  c0.text = &cond;
  c0.kv_out = &cache;
  at::Tensor out0 = model.forward(c0);
  ASSERT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache[0].k.sizes(), (std::vector<int64_t>{b, s0, 4, 8}));  // the chunk's own tokens only

  // Chunk 1 with the prefix and a global frame offset.
  std::vector<LayerKv> own;
  LtxForwardArgs c1;
  c1.shard = parallel::SequenceShard::make(s1, 1, 0);
  c1.hidden_states = x1;
  c1.timestep = t1;
  auto tt1 = rope_tables({f1, hh, ww, f0}, rope, model.inner_dim(), at::kCPU);
  c1.rope_cos = tt1.cos;
  c1.rope_sin = tt1.sin;
  c1.text = &cond;
  c1.kv_prefix = &cache;
  c1.kv_out = &own;
  at::Tensor out1 = model.forward(c1);
  EXPECT_EQ(own[1].k.size(1), s1) << "kv_out must hold only this call's tokens, never the prefix";

  auto d0 = testing::difference(out0, out_whole.narrow(1, 0, s0));
  auto d1 = testing::difference(out1, out_whole.narrow(1, s0, s1));
  std::printf("  chunk 0: %s\n  chunk 1: %s\n", testing::describe(d0).c_str(), testing::describe(d1).c_str());
  EXPECT_LT(d0.rel_l2, 1e-6);
  EXPECT_LT(d1.rel_l2, 1e-6);

  // Without the prefix the second chunk differs: the test can fail.
  c1.kv_prefix = nullptr;
  c1.kv_out = nullptr;
  EXPECT_GT(testing::difference(model.forward(c1), out_whole.narrow(1, s0, s1)).rel_l2, 1e-3);
}

TEST(LtxTransformerForward, RejectsMismatchedArguments) {
  auto config = testing::small_transformer_config(2, 1);
  auto model = *LtxTransformer::load(testing::write_random_transformer(config, 2), local(), at::kFloat, at::kCPU);
  auto cond = model.prepare_text(at::randn({1, 3, 24}), at::ones({1, 3}));
  EXPECT_THROW(model.prepare_text(at::randn({1, 3, 25}), at::ones({1, 3})), Error);
  EXPECT_THROW(model.forward_full(at::randn({1, 5, 8}), at::ones({1}), cond, {1, 2, 3, 0}, {}), Error);
  EXPECT_THROW(model.forward_full(at::randn({1, 6, 8}), at::ones({2}), cond, {1, 2, 3, 0}, {}), Error);
  EXPECT_NO_THROW(model.forward_full(at::randn({1, 6, 8}), at::ones({1}), cond, {1, 2, 3, 0}, {}));
}

}  // namespace
}  // namespace ltx::pipeline
