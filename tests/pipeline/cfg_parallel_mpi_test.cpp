// Guidance-parallel steps end to end (parallel/step_plan.h, TextToVideo,
// Ltx2TextToVideo): the group splits into sub-groups that each run some of
// the guidance passes over the whole sequence with Ulysses inside and
// exchange their predictions once per step; the result must equal one rank's
// within 1e-6 (relative L2, fp32). LTX-Video: the CFG pair over two halves,
// with and without the rescale, and the same run decodes with the decode
// shared by the group (each rank a share of the frames), which must equal one
// rank's decode within 1e-5. LTX-2: CFG alone (2 passes) and CFG + STG +
// modality isolation (4 passes over 2 or 4 sub-groups). Ulysses x ring. Run on 1,
// 2, 4 and 8 ranks (the built-in models have 16 heads; 3 latent frames
// leave ranks idle in the shared decode at 4 and 8).
#include <gtest/gtest.h>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "parallel/ulysses_attention.h"
#include "pipeline/ltx2/ltx2_generation.h"
#include "pipeline/ltx2/ltx2_pipeline.h"
#include "pipeline/ltx2/ltx2_rope.h"
#include "pipeline/runtime/guidance_groups.h"
#include "pipeline/registry/model_registry.h"
#include "pipeline/runtime/text_to_video.h"
#include "tests/mpi_model_util.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

// A model (the built-in LTX-Video one unless `dir` says otherwise), its
// prompt encoder and pipeline on one communicator.
struct Engine {
  Model model;
  std::unique_ptr<PromptEncoder> prompts;
  std::unique_ptr<VideoPipeline> pipeline;
  Engine(dist::Communicator& comm, const PlacementChoice& choice, const std::string& dir = testing::builtin_model_dir())
      : model(value_or_throw(load_model(dir, comm, choice))) {
    prompts = std::make_unique<PromptEncoder>(comm, std::move(model.text));
    pipeline = make_video_pipeline(model, comm, *prompts);
  }
  const TextToVideo& text_to_video() const { return dynamic_cast<const TextToVideo&>(*pipeline); }
  const Ltx2TextToVideo& ltx2() const { return dynamic_cast<const Ltx2TextToVideo&>(*pipeline); }
};

GenerationRequest request(const Model& model, double guidance, double rescale = 0.0) {
  GenerationRequest r = default_request(model.geometry);
  r.prompt = "A red kite over a windy beach";
  r.negative_prompt = "blurry, dark";
  r.width = 64;
  r.height = 96;
  r.num_frames = 17;  // 3 latent frames
  r.num_steps = 3;
  r.guidance_scale = guidance;
  r.guidance_rescale = rescale;
  r.seed = 21;
  return r;
}

// One rank alone (rank 0 only): the reference.
GeneratedVideo alone(double guidance, double rescale = 0.0) {
  static dist::LocalCommunicator solo;
  static Engine e(solo, {});
  return value_or_throw(e.pipeline->generate(request(e.model, guidance, rescale)));
}

Engine& group_engine() {
  PlacementChoice choice;
  choice.guidance_parallel = "on";
  choice.decode_parallel = "on";
  static Engine e(testing::mpi_group(), choice);
  return e;
}

void expect_equal_to_one_rank(double guidance) {
  dist::Communicator& g = testing::mpi_group();
  Engine& e = group_engine();
  const GenerationRequest r = request(e.model, guidance);
  const parallel::StepPlan plan = e.text_to_video().plan_for(r);
  const int want_groups = guidance > 1.0 && g.size() % 2 == 0 ? 2 : 1;
  EXPECT_EQ(plan.guidance_groups, want_groups) << plan.name() << " on " << g.size() << " ranks";
  GeneratedVideo got = value_or_throw(e.pipeline->generate(r));
  if (g.rank() != 0) return;
  GeneratedVideo want = alone(guidance);
  const auto dl = testing::difference(got.latents, want.latents);
  EXPECT_LT(dl.rel_l2, 1e-6) << plan.name() << " on " << g.size() << " ranks: latents " << testing::describe(dl);
  ASSERT_EQ(got.frames.sizes(), want.frames.sizes());
  const auto df = testing::difference(got.frames, want.frames);
  EXPECT_LT(df.rel_l2, 1e-5) << "the shared decode on " << g.size() << " ranks: " << testing::describe(df);
}

TEST(CfgParallel, GuidedStepsSplitAcrossHalvesEqualOneRank) { expect_equal_to_one_rank(3.0); }

TEST(CfgParallel, UnguidedRequestsStaySequenceParallel) { expect_equal_to_one_rank(1.0); }

// The guidance rescale's std is over the whole sequence (runtime/group_stats.h),
// with the passes split and with both passes on every rank.
TEST(CfgParallel, RescaledGuidanceEqualsOneRankInEveryPlan) {
  dist::Communicator& g = testing::mpi_group();
  for (const char* mode : {"on", "off"}) {
    PlacementChoice choice;
    choice.guidance_parallel = mode;
    Engine e(g, choice);
    GeneratedVideo got = value_or_throw(e.pipeline->generate(request(e.model, 3.0, 0.7)));
    if (g.rank() != 0) continue;
    GeneratedVideo want = alone(3.0, 0.7);
    const auto d = testing::difference(got.latents, want.latents);
    std::printf("  rescale 0.7, guidance-parallel %s, %d ranks: latents %s\n", mode, g.size(),
                testing::describe(d).c_str());
    EXPECT_LT(d.rel_l2, 1e-6) << mode;
    EXPECT_GT(testing::difference(got.latents, alone(3.0).latents).rel_l2, 1e-4) << "the rescale had no effect";
  }
}

TEST(CfgParallel, PlanFollowsTheChoiceAndTheModel) {
  dist::Communicator& g = testing::mpi_group();
  Engine& e = group_engine();
  const GenerationRequest r = request(e.model, 3.0);
  EXPECT_EQ(e.model.placement.planning.guidance, parallel::GuidanceParallel::kOn);
  // What auto would pick here is what the scaling model says for this shape.
  parallel::StepShape shape;
  const LatentGrid grid = e.model.geometry.grid(r.width, r.height, r.num_frames);
  shape.tokens = grid.num_tokens();
  shape.width = e.model.denoiser->hidden_size();
  shape.layers = e.model.denoiser->num_layers();
  shape.channels = e.model.denoiser->latent_channels();
  shape.heads = e.model.denoiser->attention_heads();
  shape.passes = 2;
  shape.element_bytes = 4;
  const auto link = e.model.placement.planning.link_for(g.backend_name());
  const auto forced = parallel::choose_step_plan(g.size(), shape, link, parallel::GuidanceParallel::kOn);
  EXPECT_EQ(e.text_to_video().plan_for(r).guidance_groups, forced.guidance_groups);
}

// Ulysses x ring (--ring-size): two sub-groups (np2: a pure ring of two;
// np4, np8: Ulysses pairs and quads) and a pure ring over the whole group,
// with CFG and with guidance-parallel halves on top; equal to one rank.
TEST(CfgParallel, UlyssesTimesRingEqualsOneRank) {
  dist::Communicator& g = testing::mpi_group();
  if (g.size() % 2 != 0) GTEST_SKIP() << "a ring of two needs an even group";
  std::vector<int> rings = {2};
  if (g.size() > 2) rings.push_back(g.size());
  for (int ring : rings) {
    PlacementChoice choice;
    choice.ring_size = std::to_string(ring);
    choice.guidance_parallel = "off";
    Engine e(g, choice);
    ASSERT_EQ(e.model.placement.planning.ring_size, ring);
    GeneratedVideo got = value_or_throw(e.pipeline->generate(request(e.model, 3.0)));
    if (g.rank() == 0) {
      GeneratedVideo want = alone(3.0);
      const auto d = testing::difference(got.latents, want.latents);
      std::printf("  Ulysses %d x ring %d: latents %s\n", g.size() / ring, ring, testing::describe(d).c_str());
      EXPECT_LT(d.rel_l2, 1e-6) << "ring " << ring << " on " << g.size() << " ranks";
    }
  }
}

TEST(CfgParallel, StreamsAreRefusedUnderARingByName) {
  dist::Communicator& g = testing::mpi_group();
  if (g.size() < 2) GTEST_SKIP() << "one rank runs no ring";
  PlacementChoice choice;
  choice.ring_size = "2";
  Engine e(g, choice);
  StreamSettings s;
  s.prompt = "a quiet harbor";
  s.width = 64;
  s.height = 64;
  s.chunk_frames = 2;
  s.num_steps = 1;
  auto opened = open_stream("ring", s, e.model, g, *e.prompts, nullptr);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("--ring-size 1"), std::string::npos) << opened.status();
}

// ---- LTX-2 ---------------------------------------------------------------------

std::string ltx2_dir() {
  static const std::string dir = testing::from_root([] { return value_or_throw(resolve_model_path("builtin:ltx2")); });
  return dir;
}

GenerationRequest ltx2_request(const Model& model, bool all_passes) {
  GenerationRequest r = default_request(model.geometry);
  r.prompt = "Waves break on a pebble beach";
  r.negative_prompt = "silence";
  r.num_steps = 3;
  r.seed = 5;
  if (!all_passes) {
    r.stg_scale = r.audio_stg_scale = 0;
    r.modality_scale = r.audio_modality_scale = 1;
  }
  return r;
}

// Through the pipeline: CFG alone (the built-in model's 2 layers hold none of
// the STG blocks, so its default request runs 3 passes, which do not pair).
TEST(CfgParallel, Ltx2CfgPairSplitAcrossHalvesEqualsOneRank) {
  dist::Communicator& g = testing::mpi_group();
  PlacementChoice choice;
  choice.guidance_parallel = "on";
  static Engine e(g, choice, ltx2_dir());
  const GenerationRequest r = ltx2_request(e.model, /*all_passes=*/false);
  const parallel::StepPlan plan = e.ltx2().plan_for(r);
  // The built-in model's 16 video and audio heads split over any half here.
  EXPECT_EQ(plan.guidance_groups, g.size() % 2 == 0 ? 2 : 1) << plan.name() << " on " << g.size() << " ranks";
  EXPECT_EQ(e.ltx2().plan_for(ltx2_request(e.model, /*all_passes=*/true)).guidance_groups, 1)
      << "CFG and isolation without STG: 3 passes do not pair";
  GeneratedVideo got = value_or_throw(e.pipeline->generate(r));
  if (g.rank() != 0) return;
  static dist::LocalCommunicator solo;
  static Engine one(solo, {}, ltx2_dir());
  GeneratedVideo want = value_or_throw(one.pipeline->generate(r));
  const auto dv = testing::difference(got.latents, want.latents);
  const auto da = testing::difference(got.audio_latents, want.audio_latents);
  std::printf("  LTX-2 CFG, %s on %d ranks vs 1: video %s, audio %s\n", plan.name().c_str(), g.size(),
              testing::describe(dv).c_str(), testing::describe(da).c_str());
  EXPECT_LT(dv.rel_l2, 1e-6);
  EXPECT_LT(da.rel_l2, 1e-6);
}

// The denoising loop itself with all four passes (STG in block 1): two
// sub-groups running two passes each and (from 4 ranks) four running one
// each equal the sequence plan's result on the same group.
TEST(CfgParallel, Ltx2FourPassesSplitTwoOrFourWaysEqualTheSequencePlan) {
  dist::Communicator& g = testing::mpi_group();
  if (g.size() % 2 != 0) GTEST_SKIP() << "the sub-groups need an even group";
  static Engine e(g, {}, ltx2_dir());
  const Ltx2Transformer& model = *dynamic_cast<const Ltx2Parts&>(*e.model.parts).transformer;
  const Ltx2TransformerConfig& tc = model.config();
  GuidanceGroups groups(g);
  at::manual_seed(3);  // the same inputs on every rank
  const int64_t len = 8, f = 2, h = 2, w = 3, na = 5;
  const int64_t cv = tc.use_prompt_embeddings ? tc.caption_channels : tc.cross_attention_dim;
  const int64_t ca = tc.use_prompt_embeddings ? tc.caption_channels : tc.audio_cross_attention_dim;
  const at::Tensor vctx = at::randn({2, len, cv}), actx = at::randn({2, len, ca});
  const at::Tensor mask = at::ones({2, len}, at::kLong);
  auto half_of = [](const at::Tensor& t, int64_t i) { return t.narrow(0, i, 1); };
  const auto pair = model.prepare_text(vctx, mask, actx, mask);
  const auto negative = model.prepare_text(half_of(vctx, 0), half_of(mask, 0), half_of(actx, 0), half_of(mask, 0));
  const auto prompt = model.prepare_text(half_of(vctx, 1), half_of(mask, 1), half_of(actx, 1), half_of(mask, 1));
  const at::Tensor video = at::randn({1, f * h * w, tc.in_channels}), audio = at::randn({1, na, tc.audio_in_channels});
  Ltx2Guidance gd;
  gd.video = {3.0, 1.0, 3.0, 0.7};  // cfg, stg, modality, rescale
  gd.audio = {7.0, 1.0, 3.0, 0.7};
  gd.stg_blocks = {1};
  const SigmaSchedule schedule = value_or_throw(e.model.scheduler->schedule(3, f * h * w));
  auto run = [&](dist::Communicator& seq, const GuidanceGroups::Split* split) {
    Ltx2DenoiseArgs a;
    a.video_shard = parallel::SequenceShard::make(f * h * w, seq.size(), seq.rank());
    a.audio_shard = parallel::SequenceShard::make(na, seq.size(), seq.rank());
    a.video = a.video_shard.take(video, 1);
    a.audio = a.audio_shard.take(audio, 1);
    a.video_coords = a.video_shard.take(ltx2_video_coords(1, f, h, w, 24.0, tc), 2);
    a.audio_coords = a.audio_shard.take(ltx2_audio_coords(1, na, tc), 2);
    a.prompt = &prompt;
    a.cfg_pair = &pair;
    a.guidance = gd;
    if (split != nullptr) {
      a.pass_group = split->group;
      a.pass_peers = split->peers;
      a.negative = &negative;
    }
    Ltx2Latents out = ltx2_denoise(model, *e.model.scheduler, schedule, a, nullptr);
    return std::make_pair(parallel::gather_sequence(seq, a.video_shard, out.video, 1),
                          parallel::gather_sequence(seq, a.audio_shard, out.audio, 1));
  };
  const auto whole = run(g, nullptr);
  EXPECT_GT(testing::difference(whole.first, video).rel_l2, 1e-3) << "the loop ran";
  for (int count : {2, 4}) {
    if (g.size() % count != 0) continue;
    const GuidanceGroups::Split split = groups.get(count);
    const auto got = run(*split.group, &split);
    const auto dv = testing::difference(got.first, whole.first);
    const auto da = testing::difference(got.second, whole.second);
    if (g.rank() == 0) {
      std::printf("  LTX-2 4 passes over %d sub-groups vs all on every rank, %d ranks: video %s, audio %s\n", count,
                  g.size(), testing::describe(dv).c_str(), testing::describe(da).c_str());
    }
    EXPECT_LT(dv.rel_l2, 1e-6) << count << " sub-groups";
    EXPECT_LT(da.rel_l2, 1e-6) << count << " sub-groups";
  }
}

}  // namespace
}  // namespace ltx::pipeline
