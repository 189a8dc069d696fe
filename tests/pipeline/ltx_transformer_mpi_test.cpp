#include <gtest/gtest.h>

#include <filesystem>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "dist/world.h"
#include "parallel/step_plan.h"
#include "pipeline/dit/ltx_transformer.h"
#include "tests/pipeline/ltx_test_models.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

dist::Communicator& group() { return testing::mpi_group(); }

dist::LocalCommunicator& alone() {
  static dist::LocalCommunicator c;
  return c;
}

struct Inputs {
  std::string name;
  LatentGrid grid;
  at::Tensor hidden, text, mask, timestep;
};

Inputs fixture_inputs(const std::string& name, int64_t f, int64_t h, int64_t w) {
  auto io = *SafetensorsFile::open(testing::fixture_dir(name) + "/io.safetensors");
  return {name, {f, h, w, 0}, *io->tensor("in.hidden_states"), *io->tensor("in.encoder_hidden_states"),
          *io->tensor("in.encoder_attention_mask"), *io->tensor("in.timestep")};
}

std::vector<Inputs> all_inputs() {
  std::vector<Inputs> v = {fixture_inputs("ltx_transformer_f2h2w2", 2, 2, 2),
                           fixture_inputs("ltx_transformer_f3h4w6", 3, 4, 6),
                           fixture_inputs("ltx_transformer_f3h4w6_tokentimestep", 3, 4, 6),
                           fixture_inputs("ltx_transformer_f5h2w3", 5, 2, 3)};
  // An odd token count (15) from the f5h2w3 inputs: the h = 0 row of every frame.
  Inputs odd = v.back();
  odd.name = "f5h2w3_rows_h0";
  odd.grid = {5, 1, 3, 0};
  odd.hidden = odd.hidden.view({2, 5, 2, 3, 8}).select(2, 0).reshape({2, 15, 8}).contiguous();
  v.push_back(odd);
  return v;
}

void expect_parallel_equals_single(const std::string& model_dir, const std::string& label) {
  auto parallel = value_or_throw(LtxTransformer::load(model_dir, group(), at::kFloat, at::kCPU));
  auto single = value_or_throw(LtxTransformer::load(model_dir, alone(), at::kFloat, at::kCPU));
  for (const Inputs& in : all_inputs()) {
    auto text_p = parallel.prepare_text(in.text, in.mask);
    auto text_s = single.prepare_text(in.text, in.mask);
    at::Tensor got = parallel.forward_full(in.hidden, in.timestep, text_p, in.grid, {});
    at::Tensor want = single.forward_full(in.hidden, in.timestep, text_s, in.grid, {});
    auto d = testing::difference(got, want);
    if (group().rank() == 0) {
      std::printf("  %s, %s, N=%d, tokens=%lld: %s\n", label.c_str(), in.name.c_str(), group().size(),
                  static_cast<long long>(in.grid.num_tokens()), testing::describe(d).c_str());
    }
    EXPECT_LT(d.rel_l2, 1e-6) << label << " " << in.name;
  }
}

TEST(LtxTransformerParallel, FixtureModelEqualsSingleRank) {
  // The fixture models have 2 heads: a group of 4 cannot split them (checked below).
  if (2 % group().size() != 0) {
    auto r = LtxTransformer::load(testing::fixture_dir("ltx_transformer_f3h4w6"), group(), at::kFloat, at::kCPU);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find("cannot split 2 attention heads"), std::string::npos) << r.status();
    return;
  }
  // The fixture folder also holds io.safetensors: point the loader at a copy
  // of the weights in a folder of their own.
  std::string dir = testing::scratch_dir("fixture-model");
  std::filesystem::copy_file(testing::fixture_dir("ltx_transformer_f3h4w6") + "/config.json", dir + "/config.json");
  std::filesystem::copy_file(testing::fixture_dir("ltx_transformer_f3h4w6") + "/weights.safetensors",
                             dir + "/diffusion_pytorch_model.safetensors");
  expect_parallel_equals_single(dir, "fixture weights");
}

// More ranks than heads: the 2-head fixture model as Ulysses inside
// sub-groups x ring attention across them (--ring-size auto's choice), on
// every fixture input (uneven shards, per-token timesteps, text masks).
TEST(LtxTransformerParallel, RingPastTheHeadCountEqualsSingleRank) {
  dist::Communicator& g = group();
  const int ring = value_or_throw(parallel::resolve_ring_size(g.size() > 2 ? 0 : g.size(), g.size(), 2));
  const int u = g.size() / ring;
  std::string dir = testing::scratch_dir("fixture-model-ring");
  std::filesystem::copy_file(testing::fixture_dir("ltx_transformer_f3h4w6") + "/config.json", dir + "/config.json");
  std::filesystem::copy_file(testing::fixture_dir("ltx_transformer_f3h4w6") + "/weights.safetensors",
                             dir + "/diffusion_pytorch_model.safetensors");
  std::unique_ptr<dist::Communicator> ulysses = g.split(g.rank() / u, g.rank());
  std::unique_ptr<dist::Communicator> ring_group = g.split(g.rank() % u, g.rank());
  auto parallel = value_or_throw(LtxTransformer::load(dir, *ulysses, at::kFloat, at::kCPU));
  parallel.use_ring(std::move(ulysses), std::move(ring_group), g);
  EXPECT_EQ(parallel.ring_size(), ring);
  auto single = value_or_throw(LtxTransformer::load(dir, alone(), at::kFloat, at::kCPU));
  for (const Inputs& in : all_inputs()) {
    at::Tensor got = parallel.forward_full(in.hidden, in.timestep, parallel.prepare_text(in.text, in.mask), in.grid, {});
    at::Tensor want = single.forward_full(in.hidden, in.timestep, single.prepare_text(in.text, in.mask), in.grid, {});
    auto d = testing::difference(got, want);
    if (g.rank() == 0) {
      std::printf("  2 heads, Ulysses %d x ring %d, %s: %s\n", u, ring, in.name.c_str(), testing::describe(d).c_str());
    }
    EXPECT_LT(d.rel_l2, 1e-6) << in.name;
  }
}

TEST(LtxTransformerParallel, FourHeadModelEqualsSingleRank) {
  // Same seed on every rank: identical weights everywhere, each rank its own folder.
  expect_parallel_equals_single(testing::write_random_transformer(testing::small_transformer_config(4, 2), 11),
                                "random 4-head");
}

// The KV hooks under sequence parallelism: chunk 1 with chunk 0's cached
// local-head K/V as prefix equals the single-process block-causal forward.
TEST(LtxTransformerParallel, ChunkedWithShardedKvEqualsWholeSequence) {
  auto dir = testing::write_random_transformer(testing::small_transformer_config(4, 2), 5);
  auto par = value_or_throw(LtxTransformer::load(dir, group(), at::kFloat, at::kCPU));
  auto one = value_or_throw(LtxTransformer::load(dir, alone(), at::kFloat, at::kCPU));
  at::manual_seed(9);
  const int64_t b = 1, f0 = 1, f1 = 2, hh = 1, ww = 5, s0 = f0 * hh * ww, s1 = f1 * hh * ww;  // 5 and 10 tokens
  at::Tensor x0 = at::randn({b, s0, 8}), x1 = at::randn({b, s1, 8}), text = at::randn({b, 4, 24});
  at::Tensor mask = at::ones({b, 4});
  RopeSettings rope;

  auto cond1 = one.prepare_text(text, mask);
  LtxForwardArgs whole;
  whole.shard = parallel::SequenceShard::make(s0 + s1, 1, 0);
  whole.hidden_states = at::cat({x0, x1}, 1);
  whole.timestep = at::cat({at::zeros({b, s0}), at::full({b, s1}, 640.0)}, 1);
  auto tw = rope_tables({f0 + f1, hh, ww, 0}, rope, one.inner_dim(), at::kCPU);
  whole.rope_cos = tw.cos;
  whole.rope_sin = tw.sin;
  whole.text = &cond1;
  whole.self_attention_bias = testing::block_causal_bias({s0, s1});
  at::Tensor want = one.forward(whole).narrow(1, s0, s1);

  auto cond = par.prepare_text(text, mask);
  auto run_chunk = [&](const at::Tensor& x, const at::Tensor& t, LatentGrid grid,
                       const std::vector<LayerKv>* prefix, std::vector<LayerKv>* out) {
    LtxForwardArgs a;
    a.shard = parallel::SequenceShard::make(grid.num_tokens(), group().size(), group().rank());
    a.hidden_states = a.shard.take(x, 1);
    a.timestep = t;
    auto tables = rope_tables(grid, rope, par.inner_dim(), at::kCPU);
    a.rope_cos = a.shard.take(tables.cos, 0);
    a.rope_sin = a.shard.take(tables.sin, 0);
    a.text = &cond;
    a.kv_prefix = prefix;
    a.kv_out = out;
    return parallel::gather_sequence(group(), a.shard, par.forward(a), 1);
  };
  std::vector<LayerKv> cache;
  run_chunk(x0, at::zeros({b}), {f0, hh, ww, 0}, nullptr, &cache);
  ASSERT_EQ(cache[0].k.size(2), 4 / group().size()) << "each rank caches only its heads";
  ASSERT_EQ(cache[0].k.size(1), s0) << "padding never enters the cache";
  at::Tensor got = run_chunk(x1, at::full({b}, 640.0), {f1, hh, ww, f0}, &cache, nullptr);
  auto d = testing::difference(got, want);
  if (group().rank() == 0) std::printf("  chunked N=%d vs whole: %s\n", group().size(), testing::describe(d).c_str());
  EXPECT_LT(d.rel_l2, 1e-6);
}

}  // namespace
}  // namespace ltx::pipeline
