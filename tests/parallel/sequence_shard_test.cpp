#include "parallel/sequence_shard.h"

#include <gtest/gtest.h>

#include "common/check.h"

namespace ltx::parallel {
namespace {

TEST(SequenceShard, SplitsAndPadsTheTail) {
  for (int n : {1, 2, 3, 4, 8}) {
    for (int64_t s : {0, 1, 7, 8, 9, 72, 73}) {
      at::Tensor full = at::arange(s, at::kFloat).view({1, s, 1}).expand({2, s, 3}).contiguous();
      std::vector<at::Tensor> parts;
      int64_t real = 0;
      for (int r = 0; r < n; ++r) {
        auto shard = SequenceShard::make(s, n, r);
        EXPECT_EQ(shard.padded_len % n, 0);
        EXPECT_GE(shard.padded_len, s);
        EXPECT_LT(shard.padded_len - s, n);
        at::Tensor part = shard.take(full, 1);
        EXPECT_EQ(part.size(1), shard.shard_len);
        // Padding rows are zero.
        if (shard.padding() > 0) {
          EXPECT_EQ(part.narrow(1, shard.valid, shard.padding()).abs().sum().item<float>(), 0.0f);
        }
        real += shard.valid;
        parts.push_back(part);
      }
      EXPECT_EQ(real, s);
      auto shard0 = SequenceShard::make(s, n, 0);
      at::Tensor gathered = shard0.unpad(at::cat(parts, 1), 1);
      EXPECT_TRUE(at::equal(gathered, full)) << "n=" << n << " s=" << s;
      at::Tensor mask = shard0.key_padding_mask(at::kCPU);
      EXPECT_EQ(mask.sum().item<int64_t>(), s);
      EXPECT_EQ(mask.size(0), shard0.padded_len);
    }
  }
}

TEST(SequenceShard, RefusesBadArguments) {
  EXPECT_THROW(SequenceShard::make(-1, 2, 0), Error);
  EXPECT_THROW(SequenceShard::make(8, 0, 0), Error);
  EXPECT_THROW(SequenceShard::make(8, 2, 2), Error);
  auto s = SequenceShard::make(8, 2, 0);
  EXPECT_THROW(s.take(at::zeros({7}), 0), Error);
  EXPECT_THROW(s.unpad(at::zeros({9}), 0), Error);
}

}  // namespace
}  // namespace ltx::parallel
