// The LTX-2 transformer sequence-parallel over both streams: on 1, 2 and 4
// ranks it must give the single-process forward (fp32, 1e-6 relative L2) for
// token counts that do not divide the group, with masks in both streams, in
// the 2.0 and 2.3 structures, with STG and modality isolation; and a chunk
// attending the previous chunk's cached keys/values must equal one
// block-causal forward over both chunks.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "pipeline/ltx2/ltx2_small_model.h"
#include "pipeline/ltx2/ltx2_transformer.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

dist::LocalCommunicator& alone() {
  static dist::LocalCommunicator c;
  return c;
}

Ltx2TransformerConfig config(bool v23) {
  Ltx2TransformerConfig c = ltx2_small_transformer_config();
  c.caption_channels = 24;
  if (v23) {
    c.gated_attn = c.audio_gated_attn = true;
    c.cross_attn_mod = c.audio_cross_attn_mod = true;
    c.use_prompt_embeddings = false;
    c.perturbed_attn = true;
  }
  return c;
}

Ltx2Transformer make(const Ltx2TransformerConfig& c, dist::Communicator& comm) {
  auto weights = ltx2_random_tensors(Ltx2Transformer::expected_tensors(c), 11);
  return value_or_throw(Ltx2Transformer::from_tensors(c, weights, comm, at::kFloat, at::kCPU));
}

struct Case {
  Ltx2FullArgs args;
  at::Tensor video_ctx, audio_ctx, video_mask, audio_mask;
};

// Batch 2, video 3x3x5 = 45 tokens, audio 17 tokens (neither divides 2 or 4),
// left-padded text masks that differ between the streams and the samples.
Case make_case(const Ltx2TransformerConfig& c, int64_t frames = 3, int64_t audio = 17, int64_t frame_offset = 0,
               int64_t audio_shift = 0) {
  at::manual_seed(5 + frame_offset);
  Case k;
  const int64_t b = 2, h = 3, w = 5, l = 8;
  k.args.video = at::randn({b, frames * h * w, c.in_channels});
  k.args.audio = at::randn({b, audio, c.audio_in_channels});
  k.args.timestep = at::tensor({700.0f, 250.0f});
  k.args.sigma = k.args.timestep;
  k.args.audio_sigma = at::tensor({400.0f, 900.0f});
  k.args.audio_timestep = k.args.audio_sigma;
  k.args.video_coords = ltx2_video_coords(b, frames, h, w, 24.0, c, frame_offset);
  k.args.audio_coords = ltx2_audio_coords(b, audio, c, audio_shift);
  const int64_t in_v = c.use_prompt_embeddings ? c.caption_channels : c.cross_attention_dim;
  const int64_t in_a = c.use_prompt_embeddings ? c.caption_channels : c.audio_cross_attention_dim;
  at::manual_seed(99);
  k.video_ctx = at::randn({b, l, in_v});
  k.audio_ctx = at::randn({b, l, in_a});
  k.video_mask = at::ones({b, l}, at::kLong);
  k.audio_mask = at::ones({b, l}, at::kLong);
  k.video_mask.index_put_({0, at::indexing::Slice(0, 3)}, 0);
  k.audio_mask.index_put_({1, at::indexing::Slice(0, 5)}, 0);
  return k;
}

void expect_close(const at::Tensor& got, const at::Tensor& want, double tol, const std::string& what) {
  auto d = testing::difference(got, want);
  EXPECT_LE(d.rel_l2, tol) << what << ": " << testing::describe(d);
}

void expect_parallel_equals_single(bool v23, bool isolate, bool stg, bool per_token) {
  const Ltx2TransformerConfig c = config(v23);
  Ltx2Transformer group_model = make(c, testing::mpi_group());
  Ltx2Transformer single_model = make(c, alone());
  Case k = make_case(c);
  if (per_token) k.args.timestep = at::linspace(0, 900, 45).view({1, 45}).repeat({2, 1});
  k.args.isolate_modalities = isolate;
  if (stg) {
    k.args.stg_blocks = {1};
    k.args.perturbation_mask = at::tensor({1.0f, 0.0f});
  }
  auto text_g = group_model.prepare_text(k.video_ctx, k.video_mask, k.audio_ctx, k.audio_mask);
  auto text_s = single_model.prepare_text(k.video_ctx, k.video_mask, k.audio_ctx, k.audio_mask);
  Ltx2FullArgs ag = k.args, as = k.args;
  ag.text = &text_g;
  as.text = &text_s;
  Ltx2Output got = ltx2_forward_full(group_model, ag);
  Ltx2Output want = ltx2_forward_full(single_model, as);
  const std::string what = std::string(v23 ? "2.3" : "2.0") + (isolate ? " isolated" : "") + (stg ? " stg" : "") +
                           (per_token ? " per-token" : "") + " on " + std::to_string(testing::mpi_group().size()) +
                           " ranks";
  expect_close(got.video, want.video, 1e-6, what + " video");
  expect_close(got.audio, want.audio, 1e-6, what + " audio");
  EXPECT_GT(want.video.abs().max().item<double>(), 0.1);
}

TEST(Ltx2SequenceParallel, V20EqualsSingleRankWithUnevenTokensAndMasks) { expect_parallel_equals_single(false, false, false, false); }
TEST(Ltx2SequenceParallel, V20PerTokenTimesteps) { expect_parallel_equals_single(false, false, false, true); }
TEST(Ltx2SequenceParallel, V20ModalityIsolation) { expect_parallel_equals_single(false, true, false, false); }
TEST(Ltx2SequenceParallel, V23GatedPromptModulatedWithStg) { expect_parallel_equals_single(true, false, true, false); }

// Block-causal bias over two chunks: key chunk <= query chunk.
at::Tensor block_causal(const at::Tensor& query_chunk, const at::Tensor& key_chunk) {
  at::Tensor allowed = key_chunk.view({1, -1}) <= query_chunk.view({-1, 1});
  return at::zeros(allowed.sizes()).masked_fill_(allowed.logical_not(), -std::numeric_limits<float>::infinity());
}

void expect_kv_prefix_equals_block_causal(bool v23) {
  const Ltx2TransformerConfig c = config(v23);
  Ltx2Transformer model = make(c, testing::mpi_group());
  // Chunk 1: video frames [0, 2), audio [0, 9); chunk 2: frames [2, 4), audio [9, 17).
  const int64_t hw = 15, f1 = 2, f2 = 2, a1 = 9, a2 = 8;
  Case whole = make_case(c, f1 + f2, a1 + a2);
  auto text = model.prepare_text(whole.video_ctx, whole.video_mask, whole.audio_ctx, whole.audio_mask);
  const at::Tensor vchunk = at::cat({at::zeros({f1 * hw}), at::ones({f2 * hw})});
  const at::Tensor achunk = at::cat({at::zeros({a1}), at::ones({a2})});
  Ltx2FullArgs full = whole.args;
  full.text = &text;
  full.video_self_bias = block_causal(vchunk, vchunk);
  full.audio_self_bias = block_causal(achunk, achunk);
  full.a2v_bias = block_causal(vchunk, achunk);
  full.v2a_bias = block_causal(achunk, vchunk);
  Ltx2Output reference = ltx2_forward_full(model, full);

  auto slice = [](const at::Tensor& t, int64_t dim, int64_t begin, int64_t len) {
    return t.narrow(dim, begin, len).contiguous();
  };
  Ltx2FullArgs first = whole.args;
  first.text = &text;
  first.video = slice(whole.args.video, 1, 0, f1 * hw);
  first.audio = slice(whole.args.audio, 1, 0, a1);
  first.video_coords = slice(whole.args.video_coords, 2, 0, f1 * hw);
  first.audio_coords = slice(whole.args.audio_coords, 2, 0, a1);
  std::vector<Ltx2LayerKv> cache;
  first.kv_out = &cache;
  Ltx2Output out1 = ltx2_forward_full(model, first);
  ASSERT_EQ(static_cast<int64_t>(cache.size()), c.num_layers);

  Ltx2FullArgs second = first;
  second.kv_out = nullptr;
  second.kv_prefix = &cache;
  second.video = slice(whole.args.video, 1, f1 * hw, f2 * hw);
  second.audio = slice(whole.args.audio, 1, a1, a2);
  second.video_coords = slice(whole.args.video_coords, 2, f1 * hw, f2 * hw);
  second.audio_coords = slice(whole.args.audio_coords, 2, a1, a2);
  Ltx2Output out2 = ltx2_forward_full(model, second);

  const std::string what = std::string(v23 ? "2.3" : "2.0") + " on " + std::to_string(testing::mpi_group().size()) + " ranks";
  expect_close(out1.video, slice(reference.video, 1, 0, f1 * hw), 1e-6, what + " chunk 1 video");
  expect_close(out1.audio, slice(reference.audio, 1, 0, a1), 1e-6, what + " chunk 1 audio");
  expect_close(out2.video, slice(reference.video, 1, f1 * hw, f2 * hw), 1e-6, what + " chunk 2 video");
  expect_close(out2.audio, slice(reference.audio, 1, a1, a2), 1e-6, what + " chunk 2 audio");
  // The prefix matters: without it chunk 2 is a different function.
  second.kv_prefix = nullptr;
  Ltx2Output alone2 = ltx2_forward_full(model, second);
  EXPECT_GT(testing::difference(alone2.video, slice(reference.video, 1, f1 * hw, f2 * hw)).rel_l2, 1e-3);
}

TEST(Ltx2KvPrefix, V20ChunkWithCachedPrefixEqualsBlockCausalForward) { expect_kv_prefix_equals_block_causal(false); }
TEST(Ltx2KvPrefix, V23ChunkWithCachedPrefixEqualsBlockCausalForward) { expect_kv_prefix_equals_block_causal(true); }

}  // namespace
}  // namespace ltx::pipeline
