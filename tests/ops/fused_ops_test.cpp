// The fused operations against their unfused compositions (ops::unfused::),
// on the CPU kernel (row_op_cpu.cpp): fp32 to rounding, bf16/fp16 at least as
// close to the fp32 truth as the composition is, every broadcast and layout
// the transformers use.
#include "ops/fused_ops.h"

#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include "common/check.h"
#include "tests/test_util.h"

namespace ltx::ops {
namespace {

using testing::describe;
using testing::difference;

// In fp32 the fused op equals the composition up to summation order.
void expect_fp32_close(const at::Tensor& fused, const at::Tensor& ref, const char* what) {
  ASSERT_EQ(fused.sizes(), ref.sizes()) << what;
  ASSERT_EQ(fused.scalar_type(), ref.scalar_type()) << what;
  auto d = difference(fused, ref);
  EXPECT_LE(d.rel_l2, 1e-6) << what << ": " << describe(d);
}

// In a reduced dtype the fused op rounds once where the composition rounds
// after every op: it must be no farther from the fp32 truth than the
// composition (plus a hair), and within the dtype's precision.
void expect_reduced_close(const at::Tensor& fused, const at::Tensor& unfused, const at::Tensor& truth,
                          const char* what) {
  ASSERT_EQ(fused.scalar_type(), unfused.scalar_type()) << what;
  auto df = difference(fused.to(at::kFloat), truth);
  auto du = difference(unfused.to(at::kFloat), truth);
  const double bound = fused.scalar_type() == at::kBFloat16 ? 6e-3 : 8e-4;
  EXPECT_LE(df.rel_l2, bound) << what << " fused: " << describe(df);
  EXPECT_LE(df.rel_l2, du.rel_l2 * 1.05 + 1e-5)
      << what << " fused " << describe(df) << " unfused " << describe(du);
}

at::Tensor f32(const at::Tensor& t) { return t.to(at::kFloat); }


Rope interleaved_table(int64_t batch, int64_t seq, int64_t dim) {
  at::Tensor angles = at::randn({batch, seq, dim / 2}) * 3;
  return {angles.cos().repeat_interleave(2, -1), angles.sin().repeat_interleave(2, -1), false, 1};
}

Rope split_table(int64_t batch, int64_t seq, int64_t dim, int64_t heads) {
  at::Tensor angles = at::randn({batch, seq, dim / 2}) * 3;
  return {angles.cos(), angles.sin(), true, heads};
}

class FusedOps : public ::testing::TestWithParam<at::ScalarType> {};

TEST_P(FusedOps, RmsNormEqualsComposition) {
  const at::ScalarType dt = GetParam();
  at::manual_seed(1);
  for (int64_t dim : {48, 2048, 33}) {
    at::Tensor x = (at::randn({2, 7, dim}) * 3 + 0.5).to(dt);
    at::Tensor w = (at::randn({dim}) * 0.2 + 1).to(dt);
    for (bool weighted : {false, true}) {
      std::optional<at::Tensor> weight;
      if (weighted) weight = w;
      at::Tensor fused = rms_norm(x, weight, 1e-6);
      at::Tensor ref = unfused::rms_norm(x, weight, 1e-6);
      if (dt == at::kFloat) {
        expect_fp32_close(fused, ref, "rms_norm");
      } else {
        std::optional<at::Tensor> wf;
        if (weighted) wf = f32(w);
        expect_reduced_close(fused, ref, unfused::rms_norm(f32(x), wf, 1e-6), "rms_norm");
      }
    }
  }
}

TEST_P(FusedOps, ModulateEqualsCompositionPerSampleAndPerToken) {
  const at::ScalarType dt = GetParam();
  at::manual_seed(2);
  const int64_t b = 2, s = 9, d = 64;
  at::Tensor x = (at::randn({b, s, d}) * 2).to(dt);
  for (int64_t t : {int64_t{1}, s}) {
    // As the transformer makes them: unbind of [B, T, 6, D] gives strided views.
    at::Tensor ada = (at::randn({b, t, 6, d}) * 0.3).to(dt);
    auto mods = ada.unbind(2);
    at::Tensor fused = rms_norm_modulate(x, mods[1], mods[0], 1e-6);
    at::Tensor ref = unfused::rms_norm_modulate(x, mods[1], mods[0], 1e-6);
    if (dt == at::kFloat) {
      expect_fp32_close(fused, ref, t == 1 ? "modulate per sample" : "modulate per token");
    } else {
      expect_reduced_close(fused, ref, unfused::rms_norm_modulate(f32(x), f32(mods[1]), f32(mods[0]), 1e-6),
                           "modulate");
    }
  }
  // A scale shared by the batch ([1, 1, D]) and a shift per token.
  at::Tensor scale = at::randn({1, 1, d}).to(dt), shift = at::randn({b, s, d}).to(dt);
  at::Tensor fused = rms_norm_modulate(x, scale, shift, 1e-6);
  at::Tensor ref = unfused::rms_norm_modulate(x, scale, shift, 1e-6);
  if (dt == at::kFloat) expect_fp32_close(fused, ref, "modulate mixed broadcast");
}

TEST_P(FusedOps, RopeEqualsCompositionInBothLayouts) {
  const at::ScalarType dt = GetParam();
  at::manual_seed(3);
  const int64_t b = 2, s = 11, d = 64, heads = 4;
  at::Tensor x = at::randn({b, s, d}).to(dt);
  at::Tensor w = (at::randn({d}) * 0.1 + 1).to(dt);
  struct Case {
    const char* name;
    Rope table;
  };
  Rope shared = interleaved_table(1, s, d);
  shared.cos = shared.cos.squeeze(0);  // [S, D], as LTX-Video's tables
  shared.sin = shared.sin.squeeze(0);
  const Case cases[] = {{"interleaved [S, D]", shared},
                        {"interleaved [B, S, D]", interleaved_table(b, s, d)},
                        {"split [1, S, D/2]", split_table(1, s, d, heads)},
                        {"split [B, S, D/2]", split_table(b, s, d, heads)}};
  for (const Case& c : cases) {
    at::Tensor fused = rope(x, c.table);
    at::Tensor ref = unfused::rope(x, c.table);
    at::Tensor fused_norm = rms_norm_rope(x, w, 1e-6, c.table);
    at::Tensor ref_norm = unfused::rms_norm_rope(x, w, 1e-6, c.table);
    if (dt == at::kFloat) {
      expect_fp32_close(fused, ref, c.name);
      expect_fp32_close(fused_norm, ref_norm, c.name);
    } else {
      expect_reduced_close(fused, ref, unfused::rope(f32(x), c.table), c.name);
      expect_reduced_close(fused_norm, ref_norm, unfused::rms_norm_rope(f32(x), f32(w), 1e-6, c.table),
                           c.name);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedOps, ::testing::Values(at::kFloat, at::kBFloat16, at::kHalf),
                         [](const auto& info) { return std::string(c10::toString(info.param)); });

// The rotation itself, by hand: a pair (a, b) at angle theta becomes
// (a cos - b sin, b cos + a sin); a wrong sign or partner fails here even
// if the composition shared the mistake.
TEST(FusedOpsRope, RotatesPairsByHand) {
  at::Tensor x = at::tensor({1.0f, 2.0f, 3.0f, 4.0f}).view({1, 1, 4});
  const float c = 0.6f, s = 0.8f;
  Rope inter{at::full({1, 4}, c), at::full({1, 4}, s), false, 1};
  at::Tensor y = rope(x, inter).view(-1);
  const float want_i[] = {1 * c - 2 * s, 2 * c + 1 * s, 3 * c - 4 * s, 4 * c + 3 * s};
  for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(y[j].item<float>(), want_i[j]) << j;
  Rope split{at::full({1, 2}, c), at::full({1, 2}, s), true, 1};  // pairs (0, 2), (1, 3)
  y = rope(x, split).view(-1);
  const float want_s[] = {1 * c - 3 * s, 2 * c - 4 * s, 3 * c + 1 * s, 4 * c + 2 * s};
  for (int j = 0; j < 4; ++j) EXPECT_FLOAT_EQ(y[j].item<float>(), want_s[j]) << j;
}

TEST(FusedOpsLayout, NonContiguousInputAndAnyThreadCount) {
  at::manual_seed(4);
  at::Tensor base = at::randn({2, 32, 5});
  at::Tensor x = base.transpose(1, 2);  // [2, 5, 32], not contiguous
  Rope table = interleaved_table(1, 5, 32);
  at::Tensor w = at::randn({32});
  expect_fp32_close(rms_norm_rope(x, w, 1e-6, table), unfused::rms_norm_rope(x, w, 1e-6, table),
                    "transposed input");
  // Each row is one thread's, in a fixed order: bit-identical for any split.
  at::Tensor big = at::randn({3, 257, 96});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  at::Tensor one = rms_norm(big, std::nullopt, 1e-5);
  at::set_num_threads(2);
  at::Tensor two = rms_norm(big, std::nullopt, 1e-5);
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(one, two));
}

TEST(FusedOpsErrors, NameWhatDoesNotFit) {
  at::Tensor x = at::randn({1, 3, 8});
  EXPECT_THROW(rope(at::randn({1, 3, 7}), Rope{at::ones({3, 7}), at::zeros({3, 7}), false, 1}), Error);
  EXPECT_THROW(rope(x, Rope{at::ones({4, 8}), at::zeros({4, 8}), false, 1}), Error);  // 4 positions for 3
  EXPECT_THROW(rope(x, Rope{at::ones({3, 4}), at::zeros({3, 4}), true, 3}), Error);   // 3 heads in 8
  EXPECT_THROW(rms_norm(x, at::ones({7}), 1e-6), Error);
  EXPECT_THROW(rms_norm_modulate(x, at::ones({2, 3, 8}), at::ones({2, 3, 8}), 1e-6), Error);  // 2 samples for 1
  EXPECT_TRUE(has_fused_kernel(at::Device(at::kCPU)));
}

}  // namespace
}  // namespace ltx::ops
