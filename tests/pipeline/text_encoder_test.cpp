#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pipeline/text/gemma3_encoder.h"
#include "pipeline/text/t5_encoder.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {
namespace fs = std::filesystem;

// Copies a fixture model into a folder of its own, with edits to its tensors
// (rename/drop/reshape) and its config text.
std::string edited_copy(const std::string& fixture, const std::function<void(NamedTensors&)>& edit_tensors,
                        const std::function<void(std::string&)>& edit_config = nullptr) {
  const std::string src = testing::fixture_dir(fixture);
  auto file = *SafetensorsFile::open(src + "/weights.safetensors");
  NamedTensors tensors;
  for (const auto& n : file->names()) tensors.emplace_back(n, *file->tensor(n));
  if (edit_tensors) edit_tensors(tensors);
  std::string dir = testing::scratch_dir("encoder");
  EXPECT_TRUE(write_safetensors(dir + "/model.safetensors", tensors).ok());
  std::string config = *read_text_file(src + "/config.json");
  if (edit_config) edit_config(config);
  std::ofstream(dir + "/config.json") << config;
  return dir;
}

void replace(std::string& s, const std::string& a, const std::string& b) {
  size_t p = s.find(a);
  ASSERT_NE(p, std::string::npos) << a;
  s.replace(p, a.size(), b);
}

TEST(Gemma3Load, AcceptsPrefixedMultimodalLayouts) {
  // transformers >= 4.52 naming: model.language_model.*, plus vision and lm_head tensors to skip.
  std::string dir = edited_copy("gemma3_text_leftpad", [](NamedTensors& t) {
    for (auto& p : t) p.first = "model.language_model." + p.first;
    t.emplace_back("model.vision_tower.vision_model.embeddings.patch_embedding.weight", at::zeros({2, 2}));
    t.emplace_back("lm_head.weight", at::zeros({2, 2}));
  });
  auto m = Gemma3TextEncoder::load(dir, at::kFloat, at::kCPU);
  ASSERT_TRUE(m.ok()) << m.status();
  auto io = *SafetensorsFile::open(testing::fixture_dir("gemma3_text_leftpad") + "/io.safetensors");
  auto out = m->encode(*io->tensor("in.input_ids"), *io->tensor("in.attention_mask"), true);
  EXPECT_EQ(out.hidden_states.size(), 5u);
  EXPECT_TRUE(at::isfinite(out.last_hidden_state).all().item<bool>()) << "pad rows stay finite";
}

TEST(Gemma3Load, ErrorsNameTheTensorOrField) {
  auto missing = Gemma3TextEncoder::load(edited_copy("gemma3_text_leftpad", [](NamedTensors& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "layers.1.self_attn.k_norm.weight"; }), t.end());
  }), at::kFloat, at::kCPU);
  EXPECT_NE(missing.status().message().find("missing tensor 'layers.1.self_attn.k_norm.weight'"), std::string::npos)
      << missing.status();
  auto shape = Gemma3TextEncoder::load(edited_copy("gemma3_text_leftpad", [](NamedTensors& t) {
    for (auto& p : t) {
      if (p.first == "layers.0.mlp.up_proj.weight") p.second = at::zeros({127, 64});
    }
  }), at::kFloat, at::kCPU);
  EXPECT_NE(shape.status().message().find("'layers.0.mlp.up_proj.weight' has shape [127, 64], expected [128, 64]"),
            std::string::npos) << shape.status();
  auto unexpected = Gemma3TextEncoder::load(edited_copy("gemma3_text_leftpad", [](NamedTensors& t) {
    t.emplace_back("layers.9.mlp.up_proj.weight", at::zeros({1}));
  }), at::kFloat, at::kCPU);
  EXPECT_NE(unexpected.status().message().find("unexpected tensor 'layers.9.mlp.up_proj.weight'"), std::string::npos)
      << unexpected.status();
  auto field = Gemma3TextEncoder::load(edited_copy("gemma3_text_leftpad", nullptr, [](std::string& c) {
    replace(c, "\"gelu_pytorch_tanh\"", "\"relu\"");
  }), at::kFloat, at::kCPU);
  EXPECT_NE(field.status().message().find("field 'hidden_activation'"), std::string::npos) << field.status();
  EXPECT_FALSE(Gemma3TextEncoder::load(testing::fixture_dir("gemma3_text_leftpad"), at::kHalf, at::kCPU).ok());
}

TEST(T5Load, EmbeddingAliasesAndErrors) {
  // Only the tied copy encoder.embed_tokens.weight stored, plus decoder tensors to ignore.
  std::string dir = edited_copy("t5_encoder", [](NamedTensors& t) {
    for (auto& p : t) {
      if (p.first == "shared.weight") p.first = "encoder.embed_tokens.weight";
    }
    t.emplace_back("decoder.block.0.layer.0.SelfAttention.q.weight", at::zeros({2, 2}));
  });
  auto m = T5Encoder::load(dir, at::kFloat, at::kCPU);
  ASSERT_TRUE(m.ok()) << m.status();
  auto missing = T5Encoder::load(edited_copy("t5_encoder", [](NamedTensors& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "encoder.final_layer_norm.weight"; }), t.end());
  }), at::kFloat, at::kCPU);
  EXPECT_NE(missing.status().message().find("missing tensor 'encoder.final_layer_norm.weight'"), std::string::npos)
      << missing.status();
  auto field = T5Encoder::load(edited_copy("t5_encoder", nullptr, [](std::string& c) {
    replace(c, "\"gated-gelu\"", "\"relu\"");
  }), at::kFloat, at::kCPU);
  EXPECT_NE(field.status().message().find("field 'feed_forward_proj'"), std::string::npos) << field.status();
}

TEST(T5, RelativePositionBucketsMatchTheReferenceFormula) {
  at::Tensor b = T5Encoder::relative_position_buckets(300, 32, 128, at::kCPU);
  // query 0: key 0 -> 0, keys 1..7 -> 17..23 (positive half), key 8 -> 24, far keys -> 31
  EXPECT_EQ(b[0][0].item<int64_t>(), 0);
  EXPECT_EQ(b[0][1].item<int64_t>(), 17);
  EXPECT_EQ(b[0][7].item<int64_t>(), 23);
  EXPECT_EQ(b[0][8].item<int64_t>(), 24);
  EXPECT_EQ(b[0][16].item<int64_t>(), 26);  // 8 + floor(log(2)/log(16)*8) = 10 -> 16 + 10
  EXPECT_EQ(b[0][299].item<int64_t>(), 31);
  // negative offsets use the first half
  EXPECT_EQ(b[5][0].item<int64_t>(), 5);
  EXPECT_EQ(b[299][0].item<int64_t>(), 15);
}

}  // namespace
}  // namespace ltx::pipeline
