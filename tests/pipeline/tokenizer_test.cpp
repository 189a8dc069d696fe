#include "pipeline/text/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

// Trains a small model once from tests/data (Gemma-style special ids, byte
// fallback so unseen characters survive).
const std::string& model_path() {
  static const std::string path = [] {
    std::string dir = testing::scratch_dir("spm");
    Status st = train_sentencepiece(
        "--input=" + testing::test_data_path("tokenizer_corpus.txt") + " --model_prefix=" + dir +
        "/tok --vocab_size=400 --model_type=unigram --character_coverage=1.0 --byte_fallback=true"
        " --pad_id=0 --eos_id=1 --bos_id=2 --unk_id=3 --minloglevel=2");
    if (!st.ok()) throw std::runtime_error(st.to_string());
    return dir + "/tok.model";
  }();
  return path;
}

Tokenizer make(const TokenizerRules& rules) {
  auto t = Tokenizer::load(model_path(), rules);
  if (!t.ok()) throw std::runtime_error(t.status().to_string());
  return std::move(t).value();
}

TEST(Tokenizer, GemmaRules) {
  Tokenizer tok = make(TokenizerRules::gemma(16));
  EXPECT_EQ(tok.bos_id(), 2);
  EXPECT_EQ(tok.pad_id(), 0);
  auto ids = *tok.ids("  A red fox runs  \n");
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 2) << "BOS first";
  EXPECT_NE(ids.back(), tok.eos_id()) << "no EOS";
  EXPECT_EQ(ids, *tok.ids("A red fox runs")) << "prompt is stripped";
  auto batch = *tok.encode({"A red fox runs", "A golden retriever catches a frisbee"});
  ASSERT_EQ(batch.input_ids.sizes(), (std::vector<int64_t>{2, 16}));
  // Left padding: pads first, then the ids.
  const int64_t n = static_cast<int64_t>(ids.size());
  EXPECT_EQ(batch.attention_mask[0].sum().item<int64_t>(), n);
  EXPECT_EQ(batch.attention_mask[0][15].item<int64_t>(), 1);
  EXPECT_EQ(batch.attention_mask[0][0].item<int64_t>(), 0);
  EXPECT_EQ(batch.input_ids[0][0].item<int64_t>(), 0);
  EXPECT_EQ(batch.input_ids[0][16 - n].item<int64_t>(), 2);
}

TEST(Tokenizer, T5Rules) {
  Tokenizer tok = make(TokenizerRules::t5(16));
  auto ids = *tok.ids("A red fox runs");
  EXPECT_EQ(ids.back(), tok.eos_id()) << "EOS last";
  EXPECT_NE(ids.front(), tok.bos_id()) << "no BOS";
  EXPECT_NE(*tok.ids(" A red fox runs"), *tok.ids("A red fox runs  x")) << "not stripped";
  auto batch = *tok.encode({"A red fox runs"});
  const int64_t n = static_cast<int64_t>(ids.size());
  // Right padding.
  EXPECT_EQ(batch.attention_mask[0].narrow(0, 0, n).sum().item<int64_t>(), n);
  EXPECT_EQ(batch.attention_mask[0].narrow(0, n, 16 - n).sum().item<int64_t>(), 0);
  EXPECT_EQ(batch.input_ids[0][n - 1].item<int64_t>(), tok.eos_id());
}

TEST(Tokenizer, TruncationKeepsTheLimit) {
  std::string long_prompt;
  for (int i = 0; i < 50; ++i) long_prompt += "A slow pan across a quiet harbor. ";
  Tokenizer gemma = make(TokenizerRules::gemma(12));
  auto g = *gemma.ids(long_prompt);
  EXPECT_EQ(g.size(), 12u);
  EXPECT_EQ(g.front(), 2);
  Tokenizer t5 = make(TokenizerRules::t5(12));
  auto t = *t5.ids(long_prompt);
  EXPECT_EQ(t.size(), 12u);
  EXPECT_EQ(t.back(), t5.eos_id());
  auto batch = *t5.encode({long_prompt});
  EXPECT_EQ(batch.attention_mask.sum().item<int64_t>(), 12);
}

TEST(Tokenizer, EmptyAndNonAsciiPrompts) {
  Tokenizer gemma = make(TokenizerRules::gemma(8));
  EXPECT_EQ(*gemma.ids(""), std::vector<int64_t>{2});
  EXPECT_EQ(*gemma.ids("   "), std::vector<int64_t>{2});
  Tokenizer t5 = make(TokenizerRules::t5(8));
  EXPECT_EQ(*t5.ids(""), std::vector<int64_t>{1});
  Tokenizer wide = make(TokenizerRules::gemma(64));
  const std::string text = "Café au lait, 東京の夜景 🚀";
  auto ids = *wide.ids(text);
  EXPECT_GT(ids.size(), 3u);
  EXPECT_EQ(wide.decode(ids), text) << "byte fallback keeps unseen characters";
}

TEST(Tokenizer, BadModelsAndRulesAreErrors) {
  EXPECT_EQ(Tokenizer::load("/nonexistent/tokenizer.model", TokenizerRules::gemma()).status().code(),
            StatusCode::kNotFound);
  std::string dir = testing::scratch_dir("badspm");
  std::ofstream(dir + "/tokenizer.model") << "not a model";
  EXPECT_EQ(Tokenizer::load(dir + "/tokenizer.model", TokenizerRules::gemma()).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(Tokenizer::load(model_path(), TokenizerRules::gemma(1)).ok());
  EXPECT_FALSE(make(TokenizerRules::gemma(8)).encode({}).ok());
}

}  // namespace
}  // namespace ltx::pipeline
