// KvCache holds each cached token once: the concatenated prefix is its
// storage and every chunk's K/V are views of it, across appends, evictions
// (window and sink) and rebases; bytes() and the rank's budget count exactly
// that storage.
#include "pipeline/runtime/kv_cache.h"

#include <gtest/gtest.h>

#include <set>

namespace ltx::pipeline {
namespace {

// Two entries per layer of different token counts (as LTX-2's video and audio).
std::vector<LayerKv> chunk_kv(int64_t index, int64_t entries) {
  std::vector<LayerKv> kv;
  for (int64_t e = 0; e < entries; ++e) {
    const int64_t tokens = e % 2 == 0 ? 6 : 2;
    at::Tensor k = at::full({2, tokens, 3, 4}, static_cast<float>(100 * index + e));
    kv.push_back({k, -k});
  }
  return kv;
}

// Distinct storages the cache's tensors live in, and their bytes.
int64_t held_bytes(const KvCache& cache) {
  std::set<const void*> seen;
  int64_t bytes = 0;
  auto add = [&](const at::Tensor& t) {
    const void* base = t.storage().data();
    if (seen.insert(base).second) bytes += static_cast<int64_t>(t.storage().nbytes());
  };
  for (const auto& l : cache.prefix()) {
    add(l.k);
    add(l.v);
  }
  for (const auto& c : cache.chunks()) {
    for (const auto& l : c.layers) {
      add(l.k);
      add(l.v);
    }
  }
  return bytes;
}

void expect_prefix_is_the_chunks(const KvCache& cache, int64_t entries) {
  ASSERT_EQ(static_cast<int64_t>(cache.prefix().size()), entries);
  for (int64_t e = 0; e < entries; ++e) {
    int64_t offset = 0;
    for (const auto& c : cache.chunks()) {
      const at::Tensor& k = c.layers[e].k;
      EXPECT_EQ(k.storage().data(), cache.prefix()[e].k.storage().data()) << "chunk " << c.index << " holds a copy";
      EXPECT_TRUE(at::equal(k, cache.prefix()[e].k.narrow(1, offset, k.size(1))));
      EXPECT_TRUE(at::equal(c.layers[e].v, -k));
      EXPECT_EQ(k.select(1, 0).flatten()[0].item<float>(), static_cast<float>(100 * c.index + e) )
          << "chunk " << c.index << " entry " << e;
      offset += k.size(1);
    }
    EXPECT_EQ(offset, cache.prefix()[e].k.size(1));
  }
}

TEST(KvCache, EveryTokenIsHeldOnceThroughAppendsAndEvictions) {
  constexpr int64_t kEntries = 4;
  KvBudget budget;
  KvCacheLimits limits;
  limits.window_chunks = 2;
  limits.sink = true;
  KvCache cache(kEntries, limits, &budget);
  for (int64_t i = 0; i < 6; ++i) {
    ASSERT_TRUE(cache.append(i, 1, chunk_kv(i, kEntries)).ok());
    expect_prefix_is_the_chunks(cache, kEntries);
    EXPECT_EQ(held_bytes(cache), cache.bytes()) << "after chunk " << i << ": the cache holds more than it counts";
    EXPECT_EQ(budget.used(), cache.bytes());
  }
  // The sink (chunk 0) and the last two chunks stay.
  ASSERT_EQ(cache.chunks().size(), 3u);
  EXPECT_EQ(cache.chunks()[0].index, 0);
  EXPECT_EQ(cache.chunks()[1].index, 4);
  EXPECT_EQ(cache.chunks()[2].index, 5);
  EXPECT_EQ(cache.evictions(), 3);
  EXPECT_EQ(cache.tokens(), 3 * 6);
  cache.clear();
  EXPECT_EQ(budget.used(), 0);
  EXPECT_TRUE(cache.prefix().empty());
}

TEST(KvCache, RebaseKeepsOneCopy) {
  constexpr int64_t kEntries = 2;
  KvCache cache(kEntries, KvCacheLimits{}, nullptr);
  for (int64_t i = 0; i < 3; ++i) ASSERT_TRUE(cache.append(i, 1, chunk_kv(i, kEntries)).ok());
  // A rotation that returns new tensors (as the denoisers' hooks do) ...
  cache.rebase([](LayerKv& l) {
    l.k = l.k * 2;
    l.v = l.v * 2;
  });
  EXPECT_EQ(held_bytes(cache), cache.bytes());
  for (int64_t e = 0; e < kEntries; ++e) {
    for (const auto& c : cache.chunks()) {
      EXPECT_EQ(c.layers[e].k.storage().data(), cache.prefix()[e].k.storage().data());
      EXPECT_EQ(c.layers[e].k.flatten()[0].item<float>(), 2.0f * static_cast<float>(100 * c.index + e));
    }
  }
  // ... and one that writes in place.
  cache.rebase([](LayerKv& l) { l.k.add_(1); });
  EXPECT_EQ(held_bytes(cache), cache.bytes());
  EXPECT_EQ(cache.chunks()[1].layers[0].k.flatten()[0].item<float>(), 201.0f);
  EXPECT_EQ(cache.prefix()[0].k.narrow(1, 6, 6).flatten()[0].item<float>(), 201.0f);
}

}  // namespace
}  // namespace ltx::pipeline
