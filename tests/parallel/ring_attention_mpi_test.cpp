// Ring attention and Ulysses x ring (parallel/ring_attention.h) against plain
// attention on one process: uneven shards (tail padding, blocks with no real
// key at all), a user key mask, head counts the group does not divide, on
// 1, 2, 4 and 8 ranks.
#include "parallel/ring_attention.h"

#include <gtest/gtest.h>

#include "common/check.h"
#include "dist/timed_communicator.h"
#include "parallel/ulysses_attention.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::parallel {
namespace {

dist::Communicator& comm() { return testing::mpi_group(); }

struct Case {
  int64_t batch, seq, heads;
  bool mask;
};

class Ring : public ::testing::TestWithParam<Case> {};

TEST_P(Ring, EqualsSingleProcessAttention) {
  const Case c = GetParam();
  dist::Communicator& g = comm();
  const int n = g.size();
  const int64_t d = 8;
  at::manual_seed(500 + c.seq);  // the same full tensors on every rank
  at::Tensor q = at::randn({c.batch, c.seq, c.heads, d}), k = at::randn({c.batch, c.seq, c.heads, d});
  at::Tensor v = at::randn({c.batch, c.seq, c.heads, d});
  at::Tensor user = at::ones({c.batch, c.seq}, at::kBool);
  if (c.mask) user.narrow(1, 0, std::min<int64_t>(2, c.seq)).fill_(false);
  if (c.mask && c.batch > 1) user[1][c.seq - 1] = false;
  AttentionOptions ref;
  if (c.mask) ref.key_padding_mask = user;
  at::Tensor want = reference_attention(q, k, v, ref);

  const auto shard = SequenceShard::make(c.seq, n, g.rank());
  RingOptions o;
  for (int r = 0; r < n; ++r) o.block_valid.push_back(SequenceShard::make(c.seq, n, r).valid);
  if (c.mask) {
    at::Tensor padded = at::zeros({c.batch, shard.padded_len}, at::kBool);
    padded.narrow(1, 0, c.seq).copy_(user);
    o.key_mask = padded.to(g.device());
  }
  dist::TimedCommunicator timed(g);
  at::Tensor local = ring_attention(timed, shard.take(q, 1).to(g.device()), shard.take(k, 1).to(g.device()),
                                    shard.take(v, 1).to(g.device()), o);
  EXPECT_EQ(timed.calls(), n - 1) << "ring shifts";
  at::Tensor got = gather_sequence(g, shard, local, 1).cpu();
  auto diff = testing::difference(got, want);
  if (g.rank() == 0) std::printf("  ring B%lld S%lld H%lld%s: %s\n", static_cast<long long>(c.batch),
                                 static_cast<long long>(c.seq), static_cast<long long>(c.heads), c.mask ? " mask" : "",
                                 testing::describe(diff).c_str());
  EXPECT_LT(diff.rel_l2, 1e-5) << testing::describe(diff);
}

INSTANTIATE_TEST_SUITE_P(Shapes, Ring,
                         ::testing::Values(Case{1, 16, 4, false},  // divides by 1, 2, 4, 8
                                           Case{2, 19, 3, false},  // uneven shards, 3 heads (no Ulysses split)
                                           Case{2, 23, 5, true},   // a user mask
                                           Case{1, 3, 2, false}),  // fewer tokens than ranks: empty blocks
                         [](const auto& info) {
                           const Case& c = info.param;
                           return "B" + std::to_string(c.batch) + "_S" + std::to_string(c.seq) + "_H" +
                                  std::to_string(c.heads) + (c.mask ? "_mask" : "");
                         });

// Ulysses inside sub-groups of U consecutive ranks, the ring across them.
TEST(Usp, UlyssesTimesRingEqualsSingleProcessAttention) {
  dist::Communicator& g = comm();
  const int n = g.size();
  for (int u : {1, 2, 4}) {
    if (n % u != 0) continue;
    auto ulysses = g.split(g.rank() / u, g.rank());
    auto ring = g.split(g.rank() % u, g.rank());
    ASSERT_EQ(ulysses->size(), u);
    ASSERT_EQ(ring->size(), n / u);
    for (int64_t seq : {int64_t{21}, int64_t{32}}) {
      at::manual_seed(900 + seq);
      const int64_t b = 2, h = 4, d = 8;
      at::Tensor q = at::randn({b, seq, h, d}), k = at::randn({b, seq, h, d}), v = at::randn({b, seq, h, d});
      at::Tensor want = reference_attention(q, k, v);
      const auto shard = SequenceShard::make(seq, n, g.rank());
      at::Tensor local = usp_attention(*ulysses, *ring, shard, shard.take(q, 1).to(g.device()),
                                       shard.take(k, 1).to(g.device()), shard.take(v, 1).to(g.device()));
      at::Tensor got = gather_sequence(g, shard, local, 1).cpu();
      auto diff = testing::difference(got, want);
      if (g.rank() == 0) std::printf("  usp %d x %d, S%lld: %s\n", u, n / u, static_cast<long long>(seq),
                                     testing::describe(diff).c_str());
      EXPECT_LT(diff.rel_l2, 1e-5) << u << " x " << n / u << " S" << seq << ": " << testing::describe(diff);
    }
  }
}

TEST(RingErrors, ShapesAndBlocksAreChecked) {
  dist::Communicator& g = comm();
  at::Tensor x = at::zeros({1, 2, 2, 4}, g.device());
  EXPECT_THROW(ring_attention(g, x, at::zeros({1, 3, 2, 4}, g.device()), x), Error);
  RingOptions o;
  o.block_valid.assign(g.size() + 1, 2);
  EXPECT_THROW(ring_attention(g, x, x, x, o), Error);
}

}  // namespace
}  // namespace ltx::parallel
