#include "pipeline/runtime/stream_session.h"

#include <gtest/gtest.h>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "dist/world.h"
#include "dist/mpi_communicator.h"
#include "pipeline/runtime/continuation_state.h"
#include "pipeline/registry/model_registry.h"
#include "pipeline/runtime/video_generation.h"
#include "tests/mpi_model_util.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

dist::World& world() { return testing::mpi_world(); }
dist::Communicator& group() { return testing::mpi_group(); }
std::string model_dir() { return testing::builtin_model_dir(); }

// A model, its prompt encoder and a KV budget on one communicator.
struct Engine {
  Model model;
  std::unique_ptr<PromptEncoder> prompts;
  KvBudget budget;
  explicit Engine(dist::Communicator& comm) : model(value_or_throw(load_model(model_dir(), comm, {}))) {
    prompts = std::make_unique<PromptEncoder>(comm, std::move(model.text));
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
    EXPECT_EQ(cached->cache().chunks().back().layers[0].k.size(2), engine().model.geometry.attention_heads / group().size()) << "this rank's heads only";
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
  const int64_t used = engine().budget.used();
  EXPECT_GT(used, 0);
  EXPECT_TRUE(table.erase("order").ok());
  EXPECT_EQ(table.size(), 0u);
  EXPECT_LT(engine().budget.used(), used) << "closing a session frees its KV memory on this rank";
}

// Cancellation: rank 0 alone decides (here: after the first step); every rank
// stops at that step, the session stays as it was, and the same chunk then
// equals an uncancelled session's.
TEST(StreamSession, CancelledChunkStopsEveryRankAndChangesNothing) {
  StreamSettings st = settings(21);
  st.num_steps = 4;
  auto s = open("cancel", st);
  auto reference = open("cancel-ref", st);
  int64_t steps_seen = 0;
  CancelToken cancel;
  cancel.enabled = true;  // the same on every rank
  if (world().is_root()) cancel.requested = [&] { return steps_seen >= 1; };
  auto stopped = s->next_chunk(0, [&](int64_t, int64_t, double) { ++steps_seen; }, cancel);
  ASSERT_EQ(stopped.status().code(), StatusCode::kCancelled) << stopped.status();
  EXPECT_EQ(steps_seen, 1) << "every rank stops right after the step rank 0 cancelled at";
  EXPECT_EQ(s->last_chunk(), -1);
  EXPECT_EQ(s->cache().bytes(), 0) << "a cancelled chunk leaves no K/V behind";
  // Not cancelled: the token is consulted and says go on.
  CancelToken go;
  go.enabled = true;
  if (world().is_root()) go.requested = [] { return false; };
  auto made = value_or_throw(s->next_chunk(0, nullptr, go));
  auto want = value_or_throw(reference->next_chunk(0));
  if (world().is_root()) {
    EXPECT_TRUE(at::equal(made.latents, want.latents));
  }
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

// (d) Export after chunk 2 in a group of 2 (or 1), import into this whole
// group and into a single process: chunk 3 equals continuing in the original.
TEST(ContinuationState, ExportImportAcrossGroupSizes) {
  const int origin_size = std::min(2, world().size());
  MPI_Comm sub = MPI_COMM_NULL;
  MPI_Comm_split(world().comm(), world().rank() < origin_size ? 0 : MPI_UNDEFINED, world().rank(), &sub);
  std::string json;
  at::Tensor want;
  if (sub != MPI_COMM_NULL) {
    dist::MpiCommunicator origin(sub);
    Engine e(origin);
    auto s = value_or_throw(StreamSession::create("orig", settings(21), e.model, origin, *e.prompts, &e.budget));
    for (int64_t c = 0; c < 3; ++c) throw_if_error(s->next_chunk(c).status());
    auto state = value_or_throw(s->export_state());
    if (origin.rank() == 0) {
      BlobStore store(testing::scratch_dir("blobs"));
      json = value_or_throw(to_json(state, state_model_info(e.model), &store, /*inline_limit_bytes=*/1u << 20));
      EXPECT_NE(json.find("\"kind\":\"ltx-worker.stream-state\""), std::string::npos);
    }
    want = value_or_throw(s->next_chunk(3)).latents;
    MPI_Comm_free(&sub);
  }
  // Into this whole group.
  std::optional<ContinuationState> parsed;
  if (world().is_root()) parsed = value_or_throw(from_json(json, state_model_info(engine().model), nullptr));
  auto imported = value_or_throw(StreamSession::import_state("imported", parsed ? &*parsed : nullptr, engine().model,
                                                             group(), &engine().budget));
  EXPECT_EQ(imported->last_chunk(), 2);
  EXPECT_EQ(imported->cache().tokens(), 3 * 8) << "the KV shards were rebuilt for this group";
  EXPECT_EQ(imported->next_chunk(2).status().code(), StatusCode::kFailedPrecondition) << "no repeat right after import";
  at::Tensor got = value_or_throw(imported->next_chunk(3)).latents;
  if (!world().is_root()) return;
  auto d = testing::difference(got, want);
  std::printf("  export from %d rank(s), import into %d: chunk 3 %s\n", origin_size, group().size(),
              testing::describe(d).c_str());
  EXPECT_LT(d.rel_l2, 1e-5);
  // Into a single process.
  dist::LocalCommunicator alone;
  Engine single(alone);
  auto one = value_or_throw(StreamSession::import_state("one", &*parsed, single.model, alone, &single.budget));
  auto d1 = testing::difference(value_or_throw(one->next_chunk(3)).latents, want);
  std::printf("  export from %d rank(s), import into 1: chunk 3 %s\n", origin_size, testing::describe(d1).c_str());
  EXPECT_LT(d1.rel_l2, 1e-5);
}

// (f) Bad or foreign state is refused with a clear error; nothing changes.
TEST(ContinuationState, MalformedStatesAreRefused) {
  if (!world().is_root()) return;
  dist::LocalCommunicator alone;
  Engine single(alone);
  auto s = value_or_throw(StreamSession::create("src", settings(3), single.model, alone, *single.prompts, &single.budget));
  throw_if_error(s->next_chunk(0).status());
  throw_if_error(s->next_chunk(1).status());
  ContinuationState state = value_or_throw(s->export_state());
  const StateModelInfo info = state_model_info(single.model);
  BlobStore store(testing::scratch_dir("blobs"));
  const std::string good = value_or_throw(to_json(state, info, nullptr));
  const std::string blobbed = value_or_throw(to_json(state, info, &store, /*inline_limit_bytes=*/16));
  ASSERT_TRUE(from_json(good, info, nullptr).ok());
  ASSERT_TRUE(from_json(blobbed, info, &store).ok());
  SessionTable table;
  ASSERT_TRUE(table.add(std::move(s)).ok());

  auto edit = [](std::string text, const std::string& from, const std::string& to) {
    size_t p = text.find(from);
    EXPECT_NE(p, std::string::npos) << from;
    if (p != std::string::npos) text.replace(p, from.size(), to);
    return text;
  };
  ContinuationState wrong_shape = state;
  wrong_shape.window[1] = at::zeros({1, 7, 16});
  ContinuationState gap = state;
  gap.window.erase(0);
  ContinuationState nan = state;
  nan.window[1] = state.window.at(1).clone();
  nan.window[1].view(-1)[3] = NAN;
  ContinuationState inf_text = state;
  inf_text.text_embeddings = state.text_embeddings.clone();
  inf_text.text_embeddings.view(-1)[0] = INFINITY;
  ContinuationState empty_text = state;
  empty_text.text_mask = at::zeros_like(state.text_mask);
  // One bit of the inline base64 flipped (a letter another), checksum kept.
  auto flip_inline = [](std::string text) {
    const size_t at = text.find("\"inline\":\"") + 10 + 400;
    text[at] = text[at] == 'A' ? 'B' : 'A';
    return text;
  };
  const size_t blob_at = blobbed.find("\"blob\":\"") + 8;
  struct Bad {
    const char* what;
    std::string json;
    const BlobStore* store;
    const char* expected;
  } cases[] = {
      {"not json", "{", nullptr, "not a JSON object"},
      {"foreign kind", edit(good, "ltx-worker.stream-state", "something.else"), nullptr, "kind"},
      {"future version", edit(good, "\"schema_version\":2", "\"schema_version\":3"), nullptr, "schema_version 3"},
      {"version 1 (no checksum)", edit(good, "\"schema_version\":2", "\"schema_version\":1"), nullptr, "schema_version 1"},
      {"bit flip", flip_inline(good), nullptr, "does not match tensors.sha256"},
      {"no checksum", edit(good, "\"sha256\":\"", "\"sha256_\":\""), nullptr, "tensors.sha256"},
      {"NaN latents", value_or_throw(to_json(nan, info, nullptr)), nullptr, "finite floats"},
      {"Inf text", value_or_throw(to_json(inf_text, info, nullptr)), nullptr, "text.embeddings' must hold finite"},
      {"empty text", value_or_throw(to_json(empty_text, info, nullptr)), nullptr, "empty text sequence"},
      {"base frame", edit(good, "\"base_frame\":0", "\"base_frame\":1"), nullptr, "session.base_frame is 1"},
      {"negative seed", edit(good, "\"seed\":", "\"seed\":-"), nullptr, "settings.seed"},
      {"bad base64", edit(good, "\"inline\":\"", "\"inline\":\"!!"), nullptr, "base64"},
      {"tampered size", edit(good, "\"bytes\":", "\"bytes\":1"), nullptr, "tensors.bytes"},
      {"wrong shape", value_or_throw(to_json(wrong_shape, info, nullptr)), nullptr, "has shape [1, 7, 16]"},
      {"window gap", value_or_throw(to_json(gap, info, nullptr)), nullptr, "lacks chunk 0"},
      {"missing blob", edit(blobbed, blobbed.substr(blob_at, 64), std::string(64, 'a')), &store, "not in this server's blob store"},
      {"path escape", edit(blobbed, blobbed.substr(blob_at, 64), "../../etc/passwd"), &store, "not a SHA-256 hex id"},
      {"no blob store", blobbed, nullptr, "none is configured"},
      {"bad settings", edit(good, "\"width\":64", "\"width\":65"), nullptr, "width"},
  };
  for (const auto& c : cases) {
    auto r = from_json(c.json, info, c.store);
    EXPECT_FALSE(r.ok()) << c.what;
    EXPECT_NE(r.status().message().find(c.expected), std::string::npos) << c.what << ": " << r.status();
  }
  EXPECT_EQ(from_json(good, StateModelInfo{8, 32, info.geometry}, nullptr).status().code(), StatusCode::kInvalidArgument) << "another model";
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.find("src")->last_chunk(), 1) << "the table and its session are untouched";
}

// How far chunk-wise decoding (one latent frame of left context) is from
// decoding the whole stream's latents at once, without decode noise.
TEST(StreamSession, ChunkwiseDecodeAgainstWholeVideoDecode) {
  StreamSettings st = settings(13);
  st.decode_noise_scale = 0.0;
  auto s = open("decode", st);
  std::vector<at::Tensor> frames, latents;
  for (int64_t c = 0; c < 4; ++c) {
    auto chunk = value_or_throw(s->next_chunk(c));
    frames.push_back(chunk.frames);
    latents.push_back(chunk.latents);
  }
  if (!world().is_root()) return;
  const int64_t n = st.chunk_frames, h = st.height / 32, w = st.width / 32;
  std::vector<at::Tensor> grids;
  for (const auto& l : latents) grids.push_back(unpack_latents(l, {n, h, w, 0}));
  at::Tensor whole_latents = pack_latents(at::cat(grids, 2));
  DecodeSettings dec;
  dec.decode_timestep = st.decode_timestep;
  dec.decode_noise_scale = 0.0;
  at::Tensor whole = engine().model.video_decoder->decode(whole_latents, {4 * n, h, w, 0}, dec, at::Generator())[0];
  at::Tensor chunked = at::cat(frames, 0);
  ASSERT_EQ(chunked.sizes(), whole.sizes());
  auto d = testing::difference(chunked, whole);
  auto first = testing::difference(frames[0], whole.narrow(0, 0, frames[0].size(0)));
  std::printf("  chunk-wise (context 1) vs whole-video decode: %s; chunk 0 alone: %s\n", testing::describe(d).c_str(),
              testing::describe(first).c_str());
  EXPECT_TRUE(at::isfinite(chunked).all().item<bool>());
  EXPECT_GT(d.rel_l2, 0.0) << "the decoder looks ahead, so chunk-wise decoding is approximate";
  EXPECT_LT(d.rel_l2, 0.5);
}

TEST(StreamSettings, ValidationNamesTheField) {
  StreamSettings s = settings();
  const ModelGeometry g = engine().model.geometry;
  EXPECT_TRUE(validate_stream_settings(s, g).ok());
  s.chunk_frames = 0;
  EXPECT_NE(validate_stream_settings(s, g).message().find("chunk_frames"), std::string::npos);
  s = settings();
  s.window_chunks = 0;
  EXPECT_NE(validate_stream_settings(s, g).message().find("window"), std::string::npos);
  s = settings();
  s.width = 65;
  EXPECT_NE(validate_stream_settings(s, g).message().find("width"), std::string::npos);
}

}  // namespace
}  // namespace ltx::pipeline
