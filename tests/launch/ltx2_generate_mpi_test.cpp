// LTX-2 end to end on the group: the built-in model's one-stage (guided:
// CFG, modality guidance, rescale) and distilled two-stage pipelines give the
// single process's latents and frames on 1, 2 and 4 ranks (the distilled run
// with the video decode shared by the group); the MP4 carries the sound;
// a paused job resumes to the same result; the CLI writes MP4 and WAV.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "common/check.h"
#include "dist/backend.h"
#include "dist/local_communicator.h"
#include "dist/world.h"
#include "launch/generate_command.h"
#include "pipeline/io/video_file.h"
#include "pipeline/registry/model_registry.h"
#include "tests/mpi_test_util.h"
#include "tests/test_util.h"

namespace ltx::launch {
namespace {

dist::World& world() { return testing::mpi_world(); }

std::string ltx2_dir() {
  static const std::string dir =
      testing::from_root([] { return value_or_throw(pipeline::resolve_model_path("builtin:ltx2")); });
  return dir;
}

pipeline::GenerationRequest request(const pipeline::ModelGeometry& g) {
  pipeline::GenerationRequest r = pipeline::default_request(g);
  r.prompt = "Rain drums on a tin roof while thunder rolls";
  r.negative_prompt = "silence";
  r.seed = 7;
  return r;  // the defaults otherwise: 256x192, 17 frames, 8 steps, the guidance terms of diffusers' LTX2Pipeline
}

struct Group {
  explicit Group(dist::Communicator& c, const pipeline::PlacementChoice& choice = {}) : comm(c), choice(choice) {}
  dist::Communicator& comm;
  pipeline::PlacementChoice choice;
  pipeline::Model model = value_or_throw(pipeline::load_model(ltx2_dir(), comm, choice));
  pipeline::PromptEncoder prompts{comm, std::move(model.text)};
  std::unique_ptr<pipeline::VideoPipeline> pipe = pipeline::make_video_pipeline(model, comm, prompts);
};

// With `shared_decode` every rank decodes a share of the video frames
// (--decode-parallel on), else rank 0 decodes alone.
void expect_same_as_one_process(const pipeline::GenerationRequest& r, const std::vector<std::string>& stages_want,
                                bool shared_decode = false) {
  auto comm = value_or_throw(dist::make_communicator(world(), dist::Backend::kMpi));
  pipeline::PlacementChoice choice;
  choice.decode_parallel = shared_decode ? "on" : "off";
  Group g(*comm, choice);
  ASSERT_TRUE(g.model.geometry.makes_sound());
  std::vector<std::string> stages;
  int64_t steps_seen = 0;
  auto video = g.pipe->generate(r, [&](int64_t, int64_t, double) { ++steps_seen; }, {},
                                [&](const std::string& s) { stages.push_back(s); });
  ASSERT_TRUE(video.ok()) << video.status();
  EXPECT_EQ(steps_seen, g.model.geometry.steps_of(r.pipeline, r.num_steps));
  if (!world().is_root()) return;
  EXPECT_EQ(stages, stages_want);
  ASSERT_EQ(video->frames.sizes(), (std::vector<int64_t>{17, 3, 192, 256}));
  ASSERT_FALSE(video->audio.empty());
  EXPECT_EQ(video->audio.sample_rate, 24000);
  EXPECT_EQ(video->audio.samples.size(0), 2);

  dist::LocalCommunicator alone;
  Group single(alone);
  auto want = value_or_throw(single.pipe->generate(r));
  auto dv = testing::difference(video->latents, want.latents);
  auto da = testing::difference(video->audio_latents, want.audio_latents);
  auto dw = testing::difference(video->audio.samples, want.audio.samples);
  auto df = testing::difference(video->frames, want.frames);
  std::printf("  %s, N=%d vs 1: video latents %s, audio latents %s, waveform %s, frames (%s decode) %s\n",
              r.pipeline.c_str(), comm->size(), testing::describe(dv).c_str(), testing::describe(da).c_str(),
              testing::describe(dw).c_str(), shared_decode ? "shared" : "rank 0", testing::describe(df).c_str());
  EXPECT_LT(df.rel_l2, 1e-5);
  // Sharding changes the fp32 rounding of the per-token GEMMs (~1e-7 per
  // forward) and the guidance amplifies it; the audio stream's projections
  // are row-exact (LinearWeights::exact_rows), else its CFG 7 would take
  // audio to 1e-6.
  EXPECT_LT(dv.rel_l2, 1e-6);
  EXPECT_LT(da.rel_l2, 1e-6);
  // The waveform is printed, not compared: the random-weight vocoder ends in
  // tanh of huge activations, so a 1e-7 change of the latents can flip a
  // saturated sample near a zero crossing from -1 to 1.

  // The MP4 has one H.264 and one AAC stream of the same duration (to one AAC frame).
  const std::string path = testing::scratch_dir("ltx2-mp4") + "/v.mp4";
  ASSERT_TRUE(pipeline::write_mp4(path, video->frames, r.fps, &video->audio).ok());
  auto info = value_or_throw(pipeline::probe_video(path));
  EXPECT_EQ(info.frames, 17);
  EXPECT_EQ(info.audio_streams, 1);
  EXPECT_EQ(info.audio_codec, "aac");
  EXPECT_LE(std::abs(info.audio_seconds - info.seconds), 1024.0 / 24000.0);
}

TEST(Ltx2Generation, OneStageSameLatentsForEveryGroupSize) {
  dist::LocalCommunicator probe;
  pipeline::GenerationRequest r = request(value_or_throw(pipeline::load_model(ltx2_dir(), probe, {})).geometry);
  expect_same_as_one_process(r, {"denoise", "video_decode", "audio_decode"});
}

TEST(Ltx2Generation, DistilledTwoStageSameLatentsForEveryGroupSize) {
  dist::LocalCommunicator probe;
  pipeline::GenerationRequest r = request(value_or_throw(pipeline::load_model(ltx2_dir(), probe, {})).geometry);
  r.pipeline = "distilled";
  expect_same_as_one_process(r, {"stage1", "upsample", "stage2", "video_decode", "audio_decode"},
                             /*shared_decode=*/true);
}

// The guidance terms change the result (the test above can fail), and
// audio: false decodes no sound.
TEST(Ltx2Generation, GuidanceTermsMatterAndAudioCanBeOff) {
  auto comm = value_or_throw(dist::make_communicator(world(), dist::Backend::kMpi));
  Group g(*comm);
  pipeline::GenerationRequest r = request(g.model.geometry);
  r.num_steps = 3;
  auto base = value_or_throw(g.pipe->generate(r));
  r.modality_scale = 1.0;
  r.audio = false;
  auto other = value_or_throw(g.pipe->generate(r));
  if (!world().is_root()) return;
  EXPECT_GT(testing::difference(base.latents, other.latents).rel_l2, 1e-4) << "modality guidance had no effect";
  EXPECT_TRUE(other.audio.empty());
  EXPECT_TRUE(other.audio_latents.defined());
}

// A two-stage job that yields at every step ends with the latents it makes in one go.
TEST(Ltx2Generation, PausedTwoStageJobResumesToTheSameResult) {
  auto comm = value_or_throw(dist::make_communicator(world(), dist::Backend::kMpi));
  Group g(*comm);
  pipeline::GenerationRequest r = request(g.model.geometry);
  r.pipeline = "distilled";
  auto whole = value_or_throw(g.pipe->generate(r));
  pipeline::CancelToken token;
  token.enabled = true;
  if (world().is_root()) {
    token.requested = [] { return false; };
    token.yield_requested = [] { return true; };
  }
  auto job = value_or_throw(g.pipe->start(r));
  int64_t slices = 0;
  while (!job->denoised()) {
    ASSERT_TRUE(g.pipe->advance(*job, nullptr, token, nullptr).ok());
    ++slices;
  }
  // A slice ends after every step but the last of each stage: 7 in stage 1,
  // then stage 1's last step, the upsampler and stage 2's first step in one,
  // then one per remaining step.
  EXPECT_EQ(slices, 10);
  auto resumed = value_or_throw(g.pipe->finish(*job, nullptr));
  if (world().is_root()) {
    EXPECT_TRUE(at::equal(resumed.latents, whole.latents));
    EXPECT_TRUE(at::equal(resumed.audio_latents, whole.audio_latents));
  }
}

TEST(Ltx2GenerateCommand, WritesMp4WithSoundAndWav) {
  const std::string dir = testing::from_root([] { return testing::scratch_dir("ltx2-gen"); });
  std::vector<std::string> common = {"--prompt", "Birds sing at dawn", "--model", "builtin:ltx2", "--width", "64",
                                     "--height", "64", "--frames", "9", "--steps", "2"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = common;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  EXPECT_EQ(run_generate(world(), with({"--out", dir + "/v.mp4"})), 0);
  EXPECT_EQ(run_generate(world(), with({"--out", dir + "/a.wav"})), 0);
  EXPECT_EQ(run_generate(world(), with({"--out", dir + "/x.mp4", "--pipeline", "distilled"})), 2) << "--steps refused";
  EXPECT_EQ(run_generate(world(), with({"--out", dir + "/y.mp4", "--pipeline", "three-stage"})), 2);
  if (!world().is_root()) return;
  auto info = value_or_throw(pipeline::probe_video(dir + "/v.mp4"));
  EXPECT_EQ(info.audio_streams, 1);
  EXPECT_LE(std::abs(info.audio_seconds - info.seconds), 1024.0 / 24000.0);
  std::ifstream wav(dir + "/a.wav", std::ios::binary);
  std::string head(4, '\0');
  wav.read(head.data(), 4);
  EXPECT_EQ(head, "RIFF");
}

}  // namespace
}  // namespace ltx::launch
