#include <gtest/gtest.h>

#include <filesystem>

#include "common/check.h"
#include "dist/backend.h"
#include "dist/local_communicator.h"
#include "dist/world.h"
#include "launch/generate_command.h"
#include "pipeline/registry/model_registry.h"
#include "pipeline/runtime/text_to_video.h"
#include "pipeline/io/video_file.h"
#include "tests/mpi_model_util.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::launch {
namespace {

dist::World& world() { return testing::mpi_world(); }
std::string model_dir() { return testing::builtin_model_dir(); }

pipeline::GenerationRequest request() {
  pipeline::GenerationRequest r;
  r.prompt = "A golden retriever catches a frisbee in a sunny park";
  r.negative_prompt = "blurry";
  r.width = 96;
  r.height = 64;
  r.num_frames = 9;
  r.num_steps = 3;
  r.guidance_scale = 3.0;
  r.seed = 42;
  return r;
}

// The built-in model loaded on the whole group, ready to generate.
struct GroupModel {
  std::unique_ptr<dist::Communicator> comm = value_or_throw(dist::make_communicator(world(), dist::Backend::kMpi));
  pipeline::Model model = value_or_throw(pipeline::load_model(model_dir(), *comm, {}));
  pipeline::PromptEncoder prompts{*comm, std::move(model.text)};
  pipeline::TextToVideo t2v{model, *comm, prompts};
};

// The same video from this group and from a single process.
TEST(Generation, SameVideoForEveryGroupSize) {
  GroupModel g;
  pipeline::TextToVideo& group = g.t2v;
  int steps_seen = 0;
  auto video = group.generate(request(), [&](int64_t, int64_t, double) { ++steps_seen; });
  ASSERT_TRUE(video.ok()) << video.status();
  EXPECT_EQ(steps_seen, 3) << "progress once per step on every rank";
  if (!world().is_root()) {
    EXPECT_FALSE(video->frames.defined());
    return;
  }
  ASSERT_EQ(video->frames.sizes(), (std::vector<int64_t>{9, 3, 64, 96}));

  dist::LocalCommunicator alone;
  auto single_model = value_or_throw(pipeline::load_model(model_dir(), alone, {}));
  pipeline::PromptEncoder single_prompts(alone, std::move(single_model.text));
  pipeline::TextToVideo single(single_model, alone, single_prompts);
  auto want = single.generate(request());
  ASSERT_TRUE(want.ok()) << want.status();

  auto d = testing::difference(video->latents, want->latents);
  at::Tensor a = pipeline::frames_to_rgb8(video->frames).to(at::kInt);
  at::Tensor b = pipeline::frames_to_rgb8(want->frames).to(at::kInt);
  const int levels = (a - b).abs().max().item<int>();
  std::printf("  N=%d vs 1: latents %s, frames differ by at most %d level(s)\n", g.comm->size(),
              testing::describe(d).c_str(), levels);
  EXPECT_LT(d.rel_l2, 1e-5);
  EXPECT_LE(levels, 1);
}

// A cancel that rank 0 alone asks for stops every rank after the same step.
TEST(Generation, CancelStopsEveryRankAtTheSameStep) {
  GroupModel g;
  pipeline::TextToVideo& group = g.t2v;
  int steps_seen = 0;
  pipeline::CancelToken cancel;
  cancel.enabled = true;
  if (world().is_root()) cancel.requested = [&] { return steps_seen >= 2; };
  auto video = group.generate(request(), [&](int64_t, int64_t, double) { ++steps_seen; }, cancel);
  ASSERT_EQ(video.status().code(), StatusCode::kCancelled) << video.status();
  EXPECT_NE(video.status().message().find("after step 2 of 3"), std::string::npos) << video.status();
  EXPECT_EQ(steps_seen, 2) << "rank " << world().rank() << " ran past the cancelled step";
  // The group is in step afterwards: the next request runs to the end.
  auto next = group.generate(request());
  ASSERT_TRUE(next.ok()) << next.status();
}

// A job that yields every other step, with another job run in its pauses,
// ends with exactly the video it makes in one go.
TEST(Generation, PausedJobResumesToTheSameVideo) {
  GroupModel g;
  pipeline::TextToVideo& group = g.t2v;
  pipeline::GenerationRequest r = request();
  r.num_steps = 5;
  auto whole = value_or_throw(group.generate(r));

  int64_t steps_since_yield = 0;
  pipeline::CancelToken token;
  token.enabled = true;
  if (world().is_root()) {
    token.requested = [] { return false; };
    token.yield_requested = [&] { return ++steps_since_yield % 2 == 0; };
  }
  auto job = value_or_throw(group.start(r));
  std::vector<int64_t> pauses;
  while (!job->denoised()) {
    ASSERT_TRUE(group.advance(*job, nullptr, token, nullptr).ok());
    pauses.push_back(job->next_step());
    pipeline::GenerationRequest other = request();
    other.seed = 77;
    ASSERT_TRUE(group.generate(other).ok());  // other work between the slices
  }
  EXPECT_EQ(pauses, (std::vector<int64_t>{2, 4, 5})) << "rank " << world().rank();
  auto resumed = value_or_throw(group.finish(*job, nullptr));
  if (world().is_root()) {
    EXPECT_TRUE(at::equal(resumed.latents, whole.latents));
    EXPECT_TRUE(at::equal(resumed.frames, whole.frames));
  }
}

TEST(GenerateCommand, WritesAPlayableMp4) {
  // Rank 0's scratch path on every rank (the ranks' own names differ in
  // length with their pids, so each rank must not broadcast its own).
  const std::string out = testing::from_root([] { return testing::scratch_dir("gen") + "/video.mp4"; });
  int rc = run_generate(world(), {"--prompt", "Waves crash against black rocks", "--model", model_dir(), "--width",
                                  "64", "--height", "64", "--frames", "9", "--steps", "2", "--out", out});
  EXPECT_EQ(rc, 0);
  if (world().is_root()) {
    auto info = pipeline::probe_video(out);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->frames, 9);
    EXPECT_EQ(info->width, 64);
    EXPECT_EQ(info->codec, "h264");
  }
}

TEST(GenerateCommand, StreamModeWritesAVideoMadeChunkByChunk) {
  const std::string out = testing::from_root([] { return testing::scratch_dir("gen") + "/stream.mp4"; });
  int rc = run_generate(world(), {"--prompt", "Northern lights", "--model", model_dir(), "--width", "64", "--height",
                                  "64", "--steps", "2", "--stream", "--chunks", "3", "--chunk-frames", "2",
                                  "--window", "2", "--out", out});
  EXPECT_EQ(rc, 0);
  if (world().is_root()) {
    auto info = pipeline::probe_video(out);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->frames, 9 + 16 + 16) << "chunk 0: 8n-7 frames, later chunks 8n";
  }
}

TEST(GenerateCommand, BadInputEndsEveryRankWithAClearError) {
  const std::vector<std::vector<std::string>> bad = {
      {"--prompt", "x", "--width", "100"},
      {"--prompt", "x", "--frames", "10"},
      {"--prompt", "x", "--steps", "0"},
      {"--prompt", "x", "--guidance", "-1"},
      {"--prompt", "x", "--model", "/nonexistent/model"},
      {"--width", "64"},  // no prompt
      {"--prompt", "x", "--out", "video.avi"},
      {"--prompt", "x", "--no-such-flag"},
      {"--prompt", "x", "--stream", "--chunks", "0"},
      {"--prompt", "x", "--stream", "--window", "0"},
  };
  for (const auto& args : bad) {
    ::testing::internal::CaptureStderr();
    int rc = run_generate(world(), args);
    std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(rc, 2) << args[args.size() - 1];
    if (world().is_root()) {
      EXPECT_NE(err.find("ltx-worker generate:"), std::string::npos) << err;
    }
  }
  MPI_Barrier(world().comm());  // and nobody is stuck in a collective
}

}  // namespace
}  // namespace ltx::launch
