#include "pipeline/stream_session.h"

#include <gtest/gtest.h>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "dist/world.h"
#include "pipeline/small_model.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

dist::World& world() {
  static dist::World w(nullptr, nullptr);
  return w;
}

dist::Communicator& group() {
  static std::unique_ptr<dist::Communicator> c = value_or_throw(dist::make_communicator(world(), dist::Backend::kMpi));
  return *c;
}

std::string model_dir() {
  static std::string dir = [] {
    std::string d;
    if (world().is_root()) d = value_or_throw(ensure_builtin_model());
    int64_t n = static_cast<int64_t>(d.size());
    MPI_Bcast(&n, 1, MPI_INT64_T, 0, world().comm());
    d.resize(n);
    MPI_Bcast(d.data(), static_cast<int>(n), MPI_CHAR, 0, world().comm());
    return d;
  }();
  return dir;
}

// A model, its prompt encoder and a KV budget on one communicator.
struct Engine {
  LtxVideoModel model;
  std::unique_ptr<PromptEncoder> prompts;
  KvBudget budget;
  explicit Engine(dist::Communicator& comm)
      : model(value_or_throw(LtxVideoModel::load(model_dir(), comm, at::kFloat))) {
    std::optional<TextEncoder> enc = std::move(model.text_encoder);
    prompts = std::make_unique<PromptEncoder>(comm, std::move(enc));
  }
};

Engine& engine() {
  static Engine e(group());
  return e;
}

StreamSettings settings(uint64_t seed = 5, int64_t window = 4) {
  StreamSettings s;
  s.prompt = "A slow pan across a quiet harbor";
  s.negative_prompt = "blurry";
  s.width = 64;
  s.height = 64;
  s.chunk_frames = 2;
  s.num_steps = 2;
  s.guidance_scale = 3.0;
  s.seed = seed;
  s.window_chunks = window;
  return s;
}

std::unique_ptr<StreamSession> open(const std::string& id, const StreamSettings& s) {
  return value_or_throw(StreamSession::create(id, s, engine().model, group(), *engine().prompts, &engine().budget));
}

// Rank 0's latents of a chunk as a comparable tensor (undefined elsewhere).
at::Tensor latents_of(StreamSession& s, int64_t index) {
  auto c = s.next_chunk(index);
  throw_if_error(c.status());
  return c->latents;
}

TEST(StreamSession, CacheEqualsRecomputeAndHoldsExactlyTheWindow) {
  auto cached = open("cached", settings());
  auto recompute = open("recompute", settings());
  recompute->set_recompute_past(true);
  const int64_t per_chunk = 2 * 2 * 2;  // frames x H x W latent tokens
  for (int64_t c = 0; c < 4; ++c) {
    at::Tensor a = latents_of(*cached, c);
    at::Tensor b = latents_of(*recompute, c);
    // (b) exactly the window's tokens, never duplicates.
    EXPECT_EQ(cached->cache().tokens(), (c + 1) * per_chunk) << "after chunk " << c;
    EXPECT_EQ(static_cast<int64_t>(cached->cache().chunks().size()), c + 1);
    EXPECT_EQ(cached->cache().chunks().back().layers[0].k.size(2), 4 / group().size()) << "this rank's heads only";
    if (world().is_root()) {
      auto d = testing::difference(a, b);
      std::printf("  N=%d chunk %lld cached vs recomputed: %s\n", group().size(), static_cast<long long>(c),
                  testing::describe(d).c_str());
      EXPECT_LT(d.rel_l2, 1e-5);
    }
  }
}

TEST(StreamSession, WindowSlidesEvictsAndCountsAndMatchesTheSingleProcess) {
  auto s = open("window", settings(9, /*window=*/2));
  // The same stream recomputing the window's K/V at fresh positions every chunk
  // agrees with the cached path, whose keys were rotated when the window slid,
  // to fp32 RoPE precision: the highest frequencies turn ~1e4 rad, where one
  // fp32 rounding of the angle is ~1e-3 rad (measured: ~3e-3 relative).
  auto fresh = open("window-fresh", settings(9, 2));
  fresh->set_recompute_past(true);
  std::vector<at::Tensor> chunks;
  for (int64_t c = 0; c < 5; ++c) {
    chunks.push_back(latents_of(*s, c));
    at::Tensor f = latents_of(*fresh, c);
    if (world().is_root()) {
      auto d = testing::difference(chunks.back(), f);
      std::printf("  N=%d chunk %lld re-based cache vs fresh positions: %s\n", group().size(),
                  static_cast<long long>(c), testing::describe(d).c_str());
      EXPECT_LT(d.rel_l2, 1e-2);
    }
    EXPECT_EQ(static_cast<int64_t>(s->cache().chunks().size()), std::min<int64_t>(c + 1, 2));
    EXPECT_EQ(s->cache().evictions(), std::max<int64_t>(0, c - 1));
    EXPECT_EQ(s->cache().chunks().front().index, std::max<int64_t>(0, c - 1));
  }
  if (!world().is_root()) return;
  // The same stream in a single process.
  dist::LocalCommunicator alone;
  Engine single(alone);
  auto one = value_or_throw(StreamSession::create("w1", settings(9, 2), single.model, alone, *single.prompts, &single.budget));
  for (int64_t c = 0; c < 5; ++c) {
    auto d = testing::difference(chunks[c], value_or_throw(one->next_chunk(c)).latents);
    std::printf("  N=%d chunk %lld vs single process: %s\n", group().size(), static_cast<long long>(c),
                testing::describe(d).c_str());
    EXPECT_LT(d.rel_l2, 1e-5);
  }
}

TEST(StreamSession, InterleavedSessionsEqualEachAlone) {
  auto a = open("a", settings(1));
  auto b = open("b", settings(2));
  std::vector<at::Tensor> ia, ib;
  for (int64_t c = 0; c < 3; ++c) {
    ia.push_back(latents_of(*a, c));
    ib.push_back(latents_of(*b, c));
  }
  auto a2 = open("a2", settings(1));
  for (int64_t c = 0; c < 3; ++c) {
    at::Tensor alone = latents_of(*a2, c);
    if (world().is_root()) {
      EXPECT_TRUE(at::equal(alone, ia[c])) << "chunk " << c;
    }
  }
  auto b2 = open("b2", settings(2));
  for (int64_t c = 0; c < 3; ++c) {
    at::Tensor alone = latents_of(*b2, c);
    if (world().is_root()) {
      EXPECT_TRUE(at::equal(alone, ib[c])) << "chunk " << c;
    }
  }
}

TEST(StreamSession, ChunkNumberingRepeatsAndErrors) {
  auto s = open("order", settings());
  auto skip = s->next_chunk(1);
  EXPECT_EQ(skip.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(skip.status().message().find("the next chunk is 0"), std::string::npos) << skip.status();
  auto first = value_or_throw(s->next_chunk(0));
  EXPECT_FALSE(first.repeated);
  const int64_t bytes = s->cache().bytes();
  auto again = value_or_throw(s->next_chunk(0));
  EXPECT_TRUE(again.repeated);
  EXPECT_EQ(s->cache().bytes(), bytes) << "a repeat never advances the cache";
  EXPECT_EQ(s->last_chunk(), 0);
  if (world().is_root()) {
    EXPECT_TRUE(at::equal(again.frames, first.frames));
    EXPECT_EQ(first.frames.size(0), 9) << "chunk 0: 8n-7 frames";
  }
  auto second = value_or_throw(s->next_chunk(1));
  if (world().is_root()) {
    EXPECT_EQ(second.frames.size(0), 16) << "later chunks: 8n frames";
    EXPECT_EQ(second.first_frame, 9);
  }
  EXPECT_EQ(s->next_chunk(0).status().code(), StatusCode::kFailedPrecondition) << "going back is an error";
  EXPECT_EQ(s->next_chunk(5).status().code(), StatusCode::kFailedPrecondition);

  SessionTable table;
  EXPECT_TRUE(table.add(std::move(s)).ok());
  EXPECT_NE(table.find("order"), nullptr);
  EXPECT_EQ(table.find("nope"), nullptr);
  EXPECT_EQ(table.erase("nope").code(), StatusCode::kNotFound);
  EXPECT_TRUE(table.erase("order").ok());
  EXPECT_EQ(table.size(), 0u);
}

TEST(StreamSession, KvBudgetRefusesAndChangesNothing) {
  KvBudget tiny(1);  // one byte per rank
  auto s = value_or_throw(StreamSession::create("budget", settings(), engine().model, group(), *engine().prompts, &tiny));
  auto c = s->next_chunk(0);
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(s->cache().bytes(), 0);
  EXPECT_EQ(s->last_chunk(), -1);
  EXPECT_EQ(tiny.used(), 0);
}

TEST(StreamSettings, ValidationNamesTheField) {
  StreamSettings s = settings();
  EXPECT_TRUE(validate_stream_settings(s).ok());
  s.chunk_frames = 0;
  EXPECT_NE(validate_stream_settings(s).message().find("chunk_frames"), std::string::npos);
  s = settings();
  s.window_chunks = 0;
  EXPECT_NE(validate_stream_settings(s).message().find("window"), std::string::npos);
  s = settings();
  s.width = 65;
  EXPECT_NE(validate_stream_settings(s).message().find("width"), std::string::npos);
}

}  // namespace
}  // namespace ltx::pipeline
