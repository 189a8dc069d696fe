#include "parallel/ulysses_attention.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/check.h"
#include "dist/timed_communicator.h"
#include "dist/world.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::parallel {
namespace {

dist::Communicator& comm() { return testing::mpi_group(); }

struct Case {
  int64_t batch;
  int64_t seq;
  int64_t heads;
  bool mask;    // a user key mask hiding some real tokens
  bool bias;    // an additive per-head bias
  int64_t prefix;  // cached past tokens
};

std::string name_of(const Case& c) {
  return "B" + std::to_string(c.batch) + "_S" + std::to_string(c.seq) + "_H" +
         std::to_string(c.heads) + (c.mask ? "_mask" : "") + (c.bias ? "_bias" : "") + "_P" +
         std::to_string(c.prefix);
}

class Ulysses : public ::testing::TestWithParam<Case> {};

TEST_P(Ulysses, EqualsSingleProcessAttention) {
  const Case c = GetParam();
  dist::Communicator& g = comm();
  const int n = g.size();
  const int64_t d = 16;
  const auto opts = at::TensorOptions().dtype(at::kFloat).device(g.device());
  // Identical inputs on every rank (same seed), then each rank keeps its shard.
  at::manual_seed(1000 + c.seq);
  at::Tensor q = at::randn({c.batch, c.seq, c.heads, d}).to(opts.device());
  at::Tensor k = at::randn({c.batch, c.seq, c.heads, d}).to(opts.device());
  at::Tensor v = at::randn({c.batch, c.seq, c.heads, d}).to(opts.device());
  at::Tensor pk = at::randn({c.batch, c.prefix, c.heads, d}).to(opts.device());
  at::Tensor pv = at::randn({c.batch, c.prefix, c.heads, d}).to(opts.device());
  at::Tensor user_mask = at::ones({c.batch, c.seq}, at::kBool);
  if (c.mask) user_mask.narrow(1, c.seq / 3, 2).fill_(false);
  if (c.mask && c.batch > 1) user_mask[1][c.seq - 1] = false;
  at::Tensor bias = at::randn({c.batch, c.heads, c.seq, c.prefix + c.seq});

  AttentionOptions ref_opts;
  if (c.mask) ref_opts.key_padding_mask = user_mask.to(g.device());
  if (c.bias) ref_opts.bias = bias.to(g.device());
  if (c.prefix > 0) {
    ref_opts.prefix_k = pk;
    ref_opts.prefix_v = pv;
  }
  at::Tensor want = reference_attention(q, k, v, ref_opts);

  const auto shard = SequenceShard::make(c.seq, n, g.rank());
  UlyssesAttention attn(g, c.heads);
  AttentionOptions par;
  at::Tensor padded_mask = at::zeros({c.batch, shard.padded_len}, at::kBool);
  padded_mask.narrow(1, 0, c.seq).copy_(user_mask);
  par.key_padding_mask = padded_mask.to(g.device());
  if (c.bias) {
    at::Tensor pb = at::zeros({c.batch, c.heads, shard.padded_len, c.prefix + shard.padded_len});
    pb.narrow(2, 0, c.seq).narrow(3, 0, c.prefix + c.seq).copy_(bias);
    par.bias = pb.to(g.device());
  }
  if (c.prefix > 0) {
    par.prefix_k = pk.narrow(2, attn.first_local_head(), attn.local_heads()).contiguous();
    par.prefix_v = pv.narrow(2, attn.first_local_head(), attn.local_heads()).contiguous();
  }
  LocalHeadKv kv;
  at::Tensor local = attn.forward(shard.take(q, 1), shard.take(k, 1), shard.take(v, 1), par, &kv);
  ASSERT_EQ(local.sizes(), (std::vector<int64_t>{c.batch, shard.shard_len, c.heads, d}));
  // The returned k/v are this call's own, for the local heads, without the prefix.
  ASSERT_EQ(kv.k.sizes(), (std::vector<int64_t>{c.batch, shard.padded_len, attn.local_heads(), d}));
  EXPECT_TRUE(at::equal(kv.k.narrow(1, 0, c.seq).cpu(),
                        k.narrow(2, attn.first_local_head(), attn.local_heads()).cpu()));

  at::Tensor got = gather_sequence(g, shard, local, 1);
  auto diff = testing::difference(got, want);
  if (g.rank() == 0) std::printf("  %s: %s\n", name_of(c).c_str(), testing::describe(diff).c_str());
  EXPECT_LT(diff.rel_l2, 1e-6) << testing::describe(diff);
  EXPECT_TRUE(at::isfinite(got).all().item<bool>());

  // The pipelined path (one all-to-all per sample, started together, each
  // sample's result sent back while the next computes): the same result, the
  // same returned K/V, and 2 collectives per sample.
  if (c.batch > 1) {
    dist::TimedCommunicator timed(g);
    UlyssesAttention piped(timed, c.heads);
    piped.set_overlap(true);
    LocalHeadKv kv2;
    at::Tensor local2 = piped.forward(shard.take(q, 1), shard.take(k, 1), shard.take(v, 1), par, &kv2);
    EXPECT_EQ(timed.calls(), n == 1 ? 0 : 2 * c.batch) << "collectives of the pipelined path";
    at::Tensor got2 = gather_sequence(g, shard, local2, 1);
    auto diff2 = testing::difference(got2, want);
    EXPECT_LT(diff2.rel_l2, 1e-6) << "pipelined: " << testing::describe(diff2);
    EXPECT_TRUE(at::equal(kv2.k, kv.k) && at::equal(kv2.v, kv.v)) << "pipelined path's own K/V";
  }

  // Tail padding dropped from the keys (valid_keys) instead of masked: the
  // same result without a mask (the path the transformers take).
  if (!c.mask) {
    AttentionOptions dropped = par;
    dropped.key_padding_mask.reset();
    dropped.valid_keys = c.seq;
    at::Tensor got2 = gather_sequence(g, shard, attn.forward(shard.take(q, 1), shard.take(k, 1), shard.take(v, 1), dropped), 1);
    auto diff2 = testing::difference(got2, want);
    EXPECT_LT(diff2.rel_l2, 1e-6) << "valid_keys: " << testing::describe(diff2);
  }

  // The gathered output is bit-identical on every rank.
  at::Tensor from_root = got.clone();
  g.broadcast(from_root, 0);
  EXPECT_TRUE(at::equal(from_root, got));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, Ulysses,
    ::testing::Values(Case{1, 16, 4, false, false, 0},   // divides by 2 and 4
                      Case{1, 17, 4, false, false, 0},   // does not divide
                      Case{2, 23, 8, true, false, 0},    // batch 2, user mask
                      Case{2, 24, 4, false, true, 0},    // bias
                      Case{1, 13, 4, true, true, 5},     // mask + bias + KV prefix
                      Case{2, 30, 8, false, false, 12},  // KV prefix, batch 2
                      Case{1, 3, 4, false, false, 2}),   // fewer tokens than ranks at N=4
    [](const auto& info) { return name_of(info.param); });

// q, k and v travel in one all-to-all; the result must be bit-identical to
// three separate ones, in fp32 and bf16, and a self-attention layer must make
// two collectives (one out, one back) instead of four.
TEST(UlyssesPacked, OneAllToAllEqualsThree) {
  dist::Communicator& g = comm();
  for (at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    dist::TimedCommunicator timed(g);
    UlyssesAttention u(timed, 8);
    at::manual_seed(77 + g.rank());  // each rank its own shard
    const int64_t s = 5, d = 8;
    std::vector<at::Tensor> xs;
    for (int i = 0; i < 3; ++i) {
      xs.push_back(at::randn({2, s, 8, d}).to(dtype).to(g.device()));
    }
    std::vector<at::Tensor> packed = u.sequence_to_heads(xs);
    ASSERT_EQ(packed.size(), 3u);
    for (int i = 0; i < 3; ++i) {
      at::Tensor one = u.sequence_to_heads(xs[i]);
      EXPECT_EQ(packed[i].sizes(), one.sizes());
      EXPECT_TRUE(at::equal(packed[i], one)) << "tensor " << i << " dtype " << dtype;
    }
    // Non-contiguous inputs (a transposed view) pack the same way.
    at::Tensor strided = at::randn({2, 8, s, d}).to(dtype).to(g.device()).transpose(1, 2);
    std::vector<at::Tensor> two = u.sequence_to_heads(std::vector<at::Tensor>{strided, xs[0]});
    EXPECT_TRUE(at::equal(two[0], u.sequence_to_heads(strided.contiguous())));

    timed.reset();
    AttentionOptions none;
    at::Tensor out = u.forward(xs[0], xs[1], xs[2], none);
    EXPECT_EQ(out.sizes(), xs[0].sizes());
    EXPECT_EQ(timed.calls(), g.size() == 1 ? 0 : 2) << "collectives of one self-attention";
  }
  // Shapes that differ are refused by name, before any collective.
  UlyssesAttention u(g, 8);
  std::vector<at::Tensor> bad{at::zeros({1, 2, 8, 4}, g.device()), at::zeros({1, 3, 8, 4}, g.device())};
  EXPECT_THROW(u.sequence_to_heads(bad), Error);
}

TEST(UlyssesStartup, GroupSizeMustDivideHeads) {
  dist::Communicator& g = comm();
  EXPECT_TRUE(validate_head_split(32, g.size()).ok());
  if (g.size() == 1) GTEST_SKIP() << "a group of 1 splits any head count";
  Status bad = validate_head_split(g.size() * 2 + 1, g.size());
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("cannot split"), std::string::npos) << bad;
  EXPECT_THROW(UlyssesAttention(g, g.size() * 2 + 1), Error);
}

}  // namespace
}  // namespace ltx::parallel
