// The LTX-2 text path in the group: rank 0 runs Gemma 3 (every hidden
// state), the feature extraction and both connectors of the built-in LTX-2
// model; every rank receives the same two contexts through the prompt
// encoder, which caches them; each rank splits them for the transformer.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/check.h"
#include "pipeline/ltx2/ltx2_conditioner.h"
#include "pipeline/ltx2/ltx2_small_model.h"
#include "pipeline/runtime/prompt_encoder.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

const std::string& model_dir() {
  static const std::string dir = testing::from_root([] {
    std::string d = testing::scratch_dir("ltx2_text_path") + "/model";
    throw_if_error(write_ltx2_small_model(d, 0));
    return d;
  });
  return dir;
}

TEST(Ltx2TextPath, RankZeroEncodesEveryRankReceivesBothContexts) {
  dist::Communicator& comm = testing::mpi_group();
  std::unique_ptr<TextConditioner> conditioner;
  at::Tensor direct;
  if (comm.rank() == 0) {
    auto c = value_or_throw(Ltx2TextConditioner::load(model_dir(), Placement{}));
    direct = value_or_throw(c->encode({"waves at night", "a red fox"})).embeddings;
    conditioner = std::move(c);
  }
  PromptEncoder encoder(comm, std::move(conditioner));
  auto out = encoder.encode({"waves at night", "a red fox"});
  ASSERT_TRUE(out.ok()) << out.status();
  const Ltx2ConnectorsConfig k = ltx2_small_connectors_config();
  const int64_t vw = k.video_input_dim(), aw = k.audio_input_dim();
  ASSERT_EQ(out->embeddings.sizes(), (at::IntArrayRef{2, kLtx2TextLength, vw + aw}));
  EXPECT_EQ(out->mask.sum().item<int64_t>(), 2 * kLtx2TextLength);  // registers fill the padding
  // Every rank holds rank 0's tensors.
  at::Tensor all = comm.all_gather(out->embeddings.unsqueeze(0).contiguous());
  for (int64_t r = 1; r < all.size(0); ++r) EXPECT_TRUE(all[r].equal(all[0])) << "rank " << r;
  if (comm.rank() == 0) {
    EXPECT_TRUE(out->embeddings.equal(direct));
  }
  auto [video, audio] = split_ltx2_contexts(out->embeddings, vw);
  EXPECT_EQ(video.size(2), vw);
  EXPECT_EQ(audio.size(2), aw);
  // The same prompts again come from rank 0's cache.
  auto again = encoder.encode({"waves at night", "a red fox"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->embeddings.equal(out->embeddings));
  if (comm.rank() == 0) {
    EXPECT_EQ(encoder.cache_stats().hits, 2);
  }
}

}  // namespace
}  // namespace ltx::pipeline
