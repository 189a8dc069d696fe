// StepGraph (pipeline/runtime/step_graph.h) on the CPU backend: the refresh
// logic a CUDA graph relies on. A recorded step must read this step's inputs,
// never the ones it was recorded with: the KV prefix of a stream changes every
// chunk (new contents, and new storage whenever the cache rebuilds it) while
// its shape stays the same once the window is full, which is exactly when a
// graph replays. Equality with eager is bitwise (the same body on the same
// values; on a GPU, where the recording is a CUDA graph, within 1e-6); on 1 and
// 2 ranks the recorded body includes the all-to-alls. Runs on the group's
// device (the GPU check runs it with NCCL: real CUDA graphs).
#include "pipeline/runtime/step_graph.h"

#include <gtest/gtest.h>

#include <cstring>

#include "common/check.h"
#include "pipeline/dit/ltx_rope.h"
#include "pipeline/ltx_video/ltx_denoiser.h"
#include "tests/mpi_test_util.h"
#include "tests/pipeline/ltx_test_models.h"

namespace ltx::pipeline {
namespace {

dist::Communicator& comm() { return testing::mpi_group(); }

TEST(StepGraphCore, RefreshesEveryInputBeforeEveryReplay) {
  StepGraph graph(make_replay_backend(), at::kCPU, /*warmup=*/1, /*max_entries=*/2);
  at::Tensor w = at::randn({4, 3});
  auto make_body = [&]() -> StepGraph::Body {
    return [w](const std::vector<at::Tensor>& s) { return at::matmul(s[0], w) + s[1].sum(0); };
  };
  auto eager = [&](const at::Tensor& x, const at::Tensor& kv) { return at::matmul(x, w) + kv.sum(0); };
  at::Tensor kv = at::randn({5, 3});
  for (int step = 0; step < 6; ++step) {
    at::Tensor x = at::randn({2, 4});
    if (step == 3) kv = at::randn({5, 3});  // the cache rebuilt its storage
    if (step == 4) kv.mul_(-2);             // the cache changed in place
    at::Tensor got = graph.run("toy", {x, kv}, make_body);
    EXPECT_TRUE(at::equal(got, eager(x, kv))) << "step " << step;
  }
  EXPECT_EQ(graph.stats().eager_runs, 1);
  EXPECT_EQ(graph.stats().captures, 1);
  EXPECT_EQ(graph.stats().replays, 5);
  EXPECT_EQ(graph.stats().bytes_refreshed, 6 * (8 + 15) * 4);

  // The output belongs to the caller: the next replay does not overwrite it.
  at::Tensor x = at::randn({2, 4});
  at::Tensor first = graph.run("toy", {x, kv}, make_body);
  at::Tensor keep = first.clone();
  graph.run("toy", {at::randn({2, 4}), kv}, make_body);
  EXPECT_TRUE(at::equal(first, keep));

  // A new shape is a new entry; the least recently used goes beyond two.
  graph.run("toy", {at::randn({3, 4}), kv}, make_body);
  graph.run("toy", {at::randn({1, 4}), kv}, make_body);
  EXPECT_EQ(graph.entries(), 2u);
  EXPECT_EQ(graph.stats().evictions, 1);
  EXPECT_EQ(graph.stats().captures, 1);  // the new entries are still warming up
}

// A recording that fails, here or on another rank (the agreement says so),
// is a GraphRecordingError on every rank at the same step; the step's own
// errors are not.
TEST(StepGraphCore, RecordingFailuresAreAgreedAndNamed) {
  class FailingBackend final : public GraphBackend {
   public:
    const char* name() const override { return "failing"; }
    std::unique_ptr<GraphRecording> record(const std::function<void()>&) override {
      throw GraphRecordingError(std::make_exception_ptr(std::runtime_error("capture refused")));
    }
  };
  auto body = []() -> StepGraph::Body { return [](const std::vector<at::Tensor>& s) { return s[0] * 2; }; };
  at::Tensor x = at::ones({3});
  StepGraph failing(std::make_unique<FailingBackend>(), at::kCPU, /*warmup=*/0);
  EXPECT_THROW(failing.run("k", {x}, body), GraphRecordingError);
  StepGraph vetoed(make_replay_backend(), at::kCPU, /*warmup=*/0, 4, [](bool) { return false; });
  EXPECT_THROW(vetoed.run("k", {x}, body), GraphRecordingError);
  EXPECT_EQ(vetoed.stats().captures, 0);
  StepGraph fine(make_replay_backend(), at::kCPU, /*warmup=*/0, 4, [](bool ok) { return ok; });
  EXPECT_TRUE(at::equal(fine.run("k", {x}, body), x * 2));
  auto bad_body = []() -> StepGraph::Body {
    return [](const std::vector<at::Tensor>&) -> at::Tensor { throw std::runtime_error("the step's own error"); };
  };
  StepGraph eager(make_replay_backend(), at::kCPU, /*warmup=*/1);
  try {
    eager.run("k", {x}, bad_body);
    ADD_FAILURE() << "no error";
  } catch (const GraphRecordingError&) {
    ADD_FAILURE() << "a step's own error was taken for a recording failure";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the step's own error");
  }
}

// Two denoisers on the same weights, one replaying recorded steps: a stream
// of chunks whose KV prefix changes every chunk at a fixed shape.
TEST(StepGraphDenoiser, ReplayAfterTheCacheChangedUsesTheNewKv) {
  dist::Communicator& g = comm();
  const TransformerConfig config = testing::small_transformer_config(/*heads=*/4, /*layers=*/2);
  // Written by rank 0, its path shared over MPI (whatever the data plane).
  const std::string dir = testing::from_root([&] { return testing::write_random_transformer(config, 11); });

  auto load = [&](bool graphs) {
    auto t = LtxTransformer::load(dir, g, at::kFloat, g.device());
    LTX_CHECK(t.ok(), t.status().to_string());
    return LtxDenoiser(std::move(*t), RopeSettings{}, graphs);
  };
  LtxDenoiser eager = load(false);
  LtxDenoiser graphed = load(true);
  ASSERT_NE(graphed.step_graph(), nullptr);
  EXPECT_STREQ(graphed.step_graph()->backend_name(), g.device().is_cuda() ? "cuda-graph" : "replay");
  const at::Device dev = g.device();
  // Bitwise on a CPU (the same body on the same values); a CUDA graph replays
  // the same kernels, but allow for a library choosing another algorithm.
  auto same = [&](const at::Tensor& a, const at::Tensor& b) {
    if (!dev.is_cuda()) return at::equal(a, b);
    return at::allclose(a, b, /*rtol=*/1e-6, /*atol=*/1e-6);
  };

  at::manual_seed(5);  // every rank the same values
  const int64_t b = 2, text_len = 6, prefix = 7;
  at::Tensor emb = at::randn({b, text_len, config.caption_channels}).to(dev);
  at::Tensor mask = at::ones({b, text_len}, at::kLong);
  mask[1][text_len - 1] = 0;
  mask = mask.to(dev);
  auto text_e = eager.prepare_text(emb, mask);
  auto text_g = graphed.prepare_text(emb, mask);
  const LatentGrid grid{2, 2, 3, 4};
  const auto shard = parallel::SequenceShard::make(grid.num_tokens(), g.size(), g.rank());
  auto pos_e = eager.positions(grid, 25.0, shard);
  auto pos_g = graphed.positions(grid, 25.0, shard);
  const int64_t local_heads = 4 / g.size(), head_dim = 8;

  at::Tensor previous;
  std::vector<LayerKv> kv;
  for (int chunk = 0; chunk < 5; ++chunk) {
    // A new prefix every chunk (new storage, as the cache rebuilds it); at
    // chunk 3 the old tensors are changed in place instead.
    if (chunk != 3) {
      kv.clear();
      for (int64_t l = 0; l < config.num_layers; ++l) {
        kv.push_back({at::randn({b, prefix, local_heads, head_dim}).to(dev),
                      at::randn({b, prefix, local_heads, head_dim}).to(dev)});
      }
    } else {
      for (LayerKv& layer : kv) layer.k.add_(1.0);
    }
    DenoiserCall call;
    call.latents = at::randn({b, shard.shard_len, config.in_channels}).to(dev);
    call.timestep = at::full({b}, 900.0f - 100.0f * static_cast<float>(chunk)).to(dev);
    call.shard = shard;
    call.kv_prefix = &kv;
    call.text = text_e.get();
    call.positions = pos_e.get();
    at::Tensor want = eager.forward(call);
    call.text = text_g.get();
    call.positions = pos_g.get();
    at::Tensor got = graphed.forward(call);
    EXPECT_TRUE(same(got, want)) << "chunk " << chunk << ": the replay read other inputs than eager";
    // With the old prefix the answer differs: the test sees a stale replay.
    if (chunk > 0) {
      EXPECT_FALSE(same(got, previous)) << "chunk " << chunk;
    }
    previous = got;
  }
  const StepGraph::Stats& s = graphed.step_graph()->stats();
  EXPECT_EQ(s.eager_runs, 1);
  EXPECT_EQ(s.captures, 1);
  EXPECT_EQ(s.replays, 4);

  // A forward that fills a KV output runs eagerly (once per chunk, not a step).
  std::vector<LayerKv> out;
  DenoiserCall call;
  call.latents = at::randn({b, shard.shard_len, config.in_channels}).to(dev);
  call.timestep = at::full({b}, 0.0f).to(dev);
  call.shard = shard;
  call.text = text_g.get();
  call.positions = pos_g.get();
  call.kv_out = &out;
  graphed.forward(call);
  EXPECT_EQ(graphed.step_graph()->stats().replays, 4);
  EXPECT_EQ(out.size(), static_cast<size_t>(config.num_layers));
}

}  // namespace
}  // namespace ltx::pipeline
