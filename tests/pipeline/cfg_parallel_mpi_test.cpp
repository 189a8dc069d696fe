// Guidance-parallel steps end to end (parallel/step_plan.h, TextToVideo):
// the group splits into two halves that each run one CFG pass over the
// whole sequence with Ulysses inside and exchange their predictions once per
// step; the video must equal one rank's within 1e-6 (relative L2, fp32). The
// same run decodes with the decode shared by the group (each rank a share of
// the frames), which must equal one rank's decode within 1e-5. Run on 1, 2,
// 4 and 8 ranks (the built-in model has 16 heads; 3 latent frames leave
// ranks idle in the shared decode at 4 and 8).
#include <gtest/gtest.h>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "pipeline/registry/model_registry.h"
#include "pipeline/runtime/text_to_video.h"
#include "tests/mpi_model_util.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

struct Engine {
  Model model;
  std::unique_ptr<PromptEncoder> prompts;
  std::unique_ptr<VideoPipeline> pipeline;
  Engine(dist::Communicator& comm, const PlacementChoice& choice)
      : model(value_or_throw(load_model(testing::builtin_model_dir(), comm, choice))) {
    prompts = std::make_unique<PromptEncoder>(comm, std::move(model.text));
    pipeline = make_video_pipeline(model, comm, *prompts);
  }
  const TextToVideo& text_to_video() const { return dynamic_cast<const TextToVideo&>(*pipeline); }
};

GenerationRequest request(const Model& model, double guidance) {
  GenerationRequest r = default_request(model.geometry);
  r.prompt = "A red kite over a windy beach";
  r.negative_prompt = "blurry, dark";
  r.width = 64;
  r.height = 96;
  r.num_frames = 17;  // 3 latent frames
  r.num_steps = 3;
  r.guidance_scale = guidance;
  r.seed = 21;
  return r;
}

// One rank alone (rank 0 only): the reference.
GeneratedVideo alone(double guidance) {
  static dist::LocalCommunicator solo;
  static Engine e(solo, {});
  return value_or_throw(e.pipeline->generate(request(e.model, guidance)));
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

}  // namespace
}  // namespace ltx::pipeline
