// The scaling model's plan choice (parallel/step_plan.h): each plan wins
// where the equations say it should, and the arithmetic matches a hand count
// (the same numbers scripts/scaling-model's self-test checks).
#include <gtest/gtest.h>

#include "parallel/step_plan.h"

namespace ltx::parallel {
namespace {

StepShape ltx_video_2b(int64_t tokens = 6144, int64_t passes = 2) {
  return {tokens, 2048, 28, 128, 32, passes, 2};
}

TEST(StepPlan, HandCountedCommunication) {
  const StepShape s{8, 4, 1, 2, 4, 2, 2};
  const LinkFigures link{256e-9, 0.5e6};  // 256 bytes/s, 0.5 s
  // Sequence plan on 2 ranks: 4 tensors x 2 passes x 4 tokens x 4 wide x 2
  // bytes x 1/2 = 128 bytes, plus two latencies.
  EXPECT_NEAR(predicted_comm_seconds(2, 1, s, link), 0.5 + 1.0, 1e-9);
  // Guidance x2 on 2 ranks: no all-to-all; one exchange of 1 pass x 8 tokens
  // x 2 channels x 2 bytes = 32 bytes plus a latency.
  EXPECT_NEAR(predicted_comm_seconds(2, 2, s, link), 0.5 + 32.0 / 256.0, 1e-9);
  EXPECT_EQ(predicted_comm_seconds(1, 1, s, link), 0.0);
}

TEST(StepPlan, FeasiblePlansFollowRanksPassesAndHeads) {
  EXPECT_EQ(feasible_guidance_groups(8, ltx_video_2b()), (std::vector<int>{1, 2}));
  EXPECT_EQ(feasible_guidance_groups(3, ltx_video_2b()), (std::vector<int>{1}));
  EXPECT_EQ(feasible_guidance_groups(4, ltx_video_2b(6144, 1)), (std::vector<int>{1})) << "no guidance, no split";
  StepShape ltx2 = ltx_video_2b();
  ltx2.passes = 4;
  EXPECT_EQ(feasible_guidance_groups(8, ltx2), (std::vector<int>{1, 2, 4}));
  ltx2.max_groups = 2;  // what the caller can run
  EXPECT_EQ(feasible_guidance_groups(8, ltx2), (std::vector<int>{1, 2}));
  StepShape few_heads = ltx_video_2b();
  few_heads.heads = 2;
  // 8 ranks: neither 8 nor 4 ranks per sub-group divide 2 heads.
  EXPECT_EQ(feasible_guidance_groups(8, few_heads), (std::vector<int>{1}));
  // 4 ranks, 2 heads: only two sub-groups of two ranks split the heads.
  EXPECT_EQ(feasible_guidance_groups(4, few_heads), (std::vector<int>{1, 2}));
}

TEST(StepPlan, GuidanceWinsOnNvlinkAtVideoSizes) {
  const LinkFigures nvlink = LinkFigures::for_backend("nccl");
  for (int n : {2, 4, 8}) {
    StepPlan p = choose_step_plan(n, ltx_video_2b(), nvlink, GuidanceParallel::kAuto);
    EXPECT_EQ(p.guidance_groups, 2) << n << " ranks: " << p.name();
    EXPECT_LT(p.comm_seconds, predicted_comm_seconds(n, 1, ltx_video_2b(), nvlink));
  }
  StepShape ltx2 = ltx_video_2b();
  ltx2.passes = 4;
  ltx2.width = 4096;
  ltx2.layers = 48;
  EXPECT_EQ(choose_step_plan(8, ltx2, nvlink, GuidanceParallel::kAuto).guidance_groups, 4);
}

TEST(StepPlan, SequenceWinsWhereTheExchangeCostsMoreThanItSaves) {
  // A tiny request on a slow-latency link (between nodes): the layers'
  // all-to-alls move few bytes, so the exchange's extra latency is not
  // paid back and the sequence plan is faster.
  const LinkFigures infiniband{25.0, 100.0};
  const StepShape tiny = ltx_video_2b(16);
  StepPlan p = choose_step_plan(4, tiny, infiniband, GuidanceParallel::kAuto);
  EXPECT_EQ(p.guidance_groups, 1) << p.name();
  EXPECT_LT(predicted_comm_seconds(4, 1, tiny, infiniband), predicted_comm_seconds(4, 2, tiny, infiniband));
  // A forced plan overrides the model.
  EXPECT_EQ(choose_step_plan(4, tiny, infiniband, GuidanceParallel::kOn).guidance_groups, 2);
  // Off, or where no split is feasible, it is the sequence plan.
  EXPECT_EQ(choose_step_plan(8, ltx_video_2b(), LinkFigures::for_backend("nccl"), GuidanceParallel::kOff)
                .guidance_groups,
            1);
  EXPECT_EQ(choose_step_plan(3, ltx_video_2b(), infiniband, GuidanceParallel::kOn).guidance_groups, 1);
}

TEST(StepPlan, RingSizeFollowsTheHeadsOrTheFlag) {
  EXPECT_EQ(*resolve_ring_size(0, 8, 32), 1) << "the heads split: Ulysses alone";
  EXPECT_EQ(*resolve_ring_size(0, 64, 32), 2) << "64 ranks, 32 heads: two sub-groups of 32";
  EXPECT_EQ(*resolve_ring_size(0, 12, 8), 3) << "12 ranks, 8 heads: three sub-groups of 4";
  EXPECT_EQ(*resolve_ring_size(4, 8, 32), 4);
  auto bad = resolve_ring_size(3, 8, 32);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--ring-size 3"), std::string::npos) << bad.status();
  EXPECT_EQ(*resolve_ring_size(0, 7, 2), 7) << "7 ranks, 2 heads: only a pure ring fits";
}

TEST(StepPlan, RingCommunicationHandCounted) {
  // 4 ranks as 2 x 2: per layer the Ulysses pair's all-to-alls over the
  // rank's 2 tokens (4 tensors x 1 pass x 2 tokens x 4 wide x 2 bytes x 1/2 =
  // 32 bytes + 2 latencies), then one shift of a key and a value block
  // (2 x 1 x 4 tokens x 2 wide x 2 bytes = 32 bytes + a latency).
  StepShape s{8, 4, 1, 2, 4, 1, 2};
  s.ring = 2;
  const LinkFigures link{256e-9, 0.5e6};
  EXPECT_NEAR(predicted_comm_seconds(4, 1, s, link), (1.0 + 32.0 / 256) + (0.5 + 32.0 / 256), 1e-9);
  // A pure ring of 4: three shifts of 2 x 2 tokens x 4 wide x 2 bytes = 32 bytes.
  s.ring = 4;
  EXPECT_NEAR(predicted_comm_seconds(4, 1, s, link), 3 * (0.5 + 32.0 / 256), 1e-9);
}

TEST(StepPlan, NamesAndFlags) {
  EXPECT_EQ(StepPlan{}.name(), "sequence");
  EXPECT_EQ((StepPlan{2, 0}).name(), "guidance x2");
  EXPECT_EQ(*parse_guidance_parallel(""), GuidanceParallel::kAuto);
  EXPECT_EQ(*parse_guidance_parallel("on"), GuidanceParallel::kOn);
  auto bad = parse_guidance_parallel("yes");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--guidance-parallel"), std::string::npos);
  EXPECT_FALSE((LinkFigures{0, 1}).validate().ok());
  EXPECT_FALSE((LinkFigures{1, -1}).validate().ok());
  EXPECT_TRUE(LinkFigures::for_backend("mpi").validate().ok());
}

}  // namespace
}  // namespace ltx::parallel
