#include "pipeline/runtime/prompt_encoder.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/check.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/text/gemma3_conditioner.h"
#include "pipeline/text/t5_conditioner.h"
#include "pipeline/text/tokenizer.h"
#include "dist/world.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

dist::Communicator& group() { return testing::mpi_group(); }

// Rank 0 trains a small tokenizer (ids below the fixtures' vocabulary of 300)
// and every rank receives the same model bytes.
const std::string& tokenizer_bytes() {
  static const std::string bytes = testing::from_root([] {
    std::string dir = testing::scratch_dir("spm");
    throw_if_error(train_sentencepiece("--input=" + testing::test_data_path("tokenizer_corpus.txt") +
                                       " --model_prefix=" + dir +
                                       "/tok --vocab_size=200 --character_coverage=1.0 --pad_id=0 --eos_id=1"
                                       " --bos_id=2 --unk_id=3 --minloglevel=2 --num_threads=1"));
    std::ifstream in(dir + "/tok.model", std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  });
  return bytes;
}

std::unique_ptr<TextConditioner> make_encoder(bool gemma) {
  if (gemma) {
    auto tok = value_or_throw(Tokenizer::from_serialized(tokenizer_bytes(), TokenizerRules::gemma(16), "test"));
    auto model = value_or_throw(Gemma3TextEncoder::from_checkpoint(
        value_or_throw(load_gemma3_config(testing::fixture_dir("gemma3_text_leftpad") + "/config.json")),
        value_or_throw(SafetensorsCheckpoint::open(testing::fixture_dir("gemma3_text_leftpad") + "/weights.safetensors")),
        at::kFloat, at::kCPU));
    return std::make_unique<Gemma3TextConditioner>(std::move(tok), std::move(model), Placement{});
  }
  auto tok = value_or_throw(Tokenizer::from_serialized(tokenizer_bytes(), TokenizerRules::t5(16), "test"));
  auto model = value_or_throw(T5Encoder::from_checkpoint(
      value_or_throw(load_t5_config(testing::fixture_dir("t5_encoder") + "/config.json")),
      value_or_throw(SafetensorsCheckpoint::open(testing::fixture_dir("t5_encoder") + "/weights.safetensors")),
      at::kFloat, at::kCPU));
  return std::make_unique<T5TextConditioner>(std::move(tok), std::move(model), /*mask_to_t5=*/true, Placement{});
}

class PromptEncoderTest : public ::testing::TestWithParam<bool> {};

TEST_P(PromptEncoderTest, RankZeroEncodesEveryRankReceives) {
  const bool gemma = GetParam();
  dist::Communicator& g = group();
  std::unique_ptr<TextConditioner> mine;
  if (g.rank() == 0) mine = make_encoder(gemma);
  PromptEncoder encoder(g, std::move(mine));
  EXPECT_EQ(encoder.has_encoder(), g.rank() == 0) << "only rank 0 holds encoder weights";

  const std::vector<std::string> prompts = {"A red fox runs through a snowy forest", "  Snow falls softly  "};
  auto got = encoder.encode(g.rank() == 0 ? prompts : std::vector<std::string>{});
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->embeddings.sizes(), (std::vector<int64_t>{2, 16, gemma ? 64 : 32}));
  EXPECT_EQ(got->embeddings.scalar_type(), at::kFloat);
  EXPECT_EQ(got->mask.scalar_type(), at::kLong);

  // A single-process encode with the same model gives identical tensors.
  auto want = make_encoder(gemma)->encode(prompts);
  ASSERT_TRUE(want.ok()) << want.status();
  EXPECT_TRUE(at::equal(got->embeddings, want->embeddings));
  EXPECT_TRUE(at::equal(got->mask, want->mask));

  // A repeated prompt comes from rank 0's cache, with the same result.
  auto again = encoder.encode(g.rank() == 0 ? std::vector<std::string>{prompts[1], "A new one"} : std::vector<std::string>{});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(at::equal(again->embeddings[0], want->embeddings[1]));
  if (g.rank() == 0) {
    EXPECT_EQ(encoder.cache_stats().hits, 1);
    EXPECT_EQ(encoder.cache_stats().misses, 3);
  }

  // Rank 0's failure reaches every rank as the same error; nobody hangs.
  auto bad = encoder.encode({});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("no prompts"), std::string::npos) << bad.status();
  g.barrier();
}

INSTANTIATE_TEST_SUITE_P(Families, PromptEncoderTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Gemma3" : "T5"; });

TEST(PromptEncoder, EncoderOnAnotherRankIsRefused) {
  if (group().rank() == 0) {
    EXPECT_THROW(PromptEncoder(group(), nullptr), Error);
  } else {
    EXPECT_THROW(PromptEncoder(group(), make_encoder(true)), Error);
  }
}

}  // namespace
}  // namespace ltx::pipeline
