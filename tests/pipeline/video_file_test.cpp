#include "pipeline/io/video_file.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "pipeline/ltx_video/small_model.h"
#include "pipeline/registry/model_registry.h"
#include "pipeline/runtime/text_to_video.h"
#include "dist/local_communicator.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

at::Tensor gradient_frames(int64_t n, int64_t h, int64_t w) {
  at::Tensor t = at::linspace(0, 1, w).view({1, 1, 1, w}).expand({n, 3, h, w}).clone();
  for (int64_t i = 0; i < n; ++i) t[i][0].fill_(static_cast<double>(i) / n);
  return t;
}

TEST(VideoFile, Mp4DecodesBackWithTheRightShapeAndRate) {
  std::string path = testing::scratch_dir("mp4") + "/v.mp4";
  ASSERT_TRUE(write_mp4(path, gradient_frames(9, 64, 96), 24.0).ok());
  auto info = probe_video(path);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->frames, 9);
  EXPECT_EQ(info->width, 96);
  EXPECT_EQ(info->height, 64);
  EXPECT_NEAR(info->fps, 24.0, 1e-6);
  EXPECT_EQ(info->codec, "h264");
  auto bytes = encode_mp4(gradient_frames(3, 32, 32), 25.0);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  EXPECT_EQ(bytes->substr(4, 4), "ftyp");
}

AudioTrack sine(int64_t channels, int64_t samples, int64_t rate) {
  at::Tensor t = at::arange(samples, at::kFloat) / static_cast<double>(rate);
  return {at::sin(t * 2 * M_PI * 440).unsqueeze(0).repeat({channels, 1}) * 0.5, rate};
}

// The MP4 carries one H.264 and one AAC stream whose durations agree to
// within one AAC frame, whether the sound is shorter or longer than the video.
TEST(VideoFile, Mp4WithAudioHasBothTracksOfTheSameDuration) {
  const std::string dir = testing::scratch_dir("mp4-audio");
  for (int64_t samples : {16560, 30000}) {  // 17 frames at 24 fps last 17000 samples at 24 kHz
    const std::string path = dir + "/av" + std::to_string(samples) + ".mp4";
    AudioTrack audio = sine(2, samples, 24000);
    ASSERT_TRUE(write_mp4(path, gradient_frames(17, 64, 96), 24.0, &audio).ok());
    auto info = probe_video(path);
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->frames, 17);
    EXPECT_EQ(info->audio_streams, 1);
    EXPECT_EQ(info->audio_codec, "aac");
    EXPECT_EQ(info->audio_sample_rate, 24000);
    EXPECT_EQ(info->audio_channels, 2);
    EXPECT_NEAR(info->seconds, 17.0 / 24.0, 1e-3);
    EXPECT_LE(std::abs(info->audio_seconds - info->seconds), 1024.0 / 24000.0)
        << "video " << info->seconds << " s, audio " << info->audio_seconds << " s";
  }
  std::string plain = dir + "/plain.mp4";
  ASSERT_TRUE(write_mp4(plain, gradient_frames(3, 32, 32), 25.0).ok());
  EXPECT_EQ(probe_video(plain)->audio_streams, 0);
  AudioTrack bad{at::zeros({2, 100}), 100};
  EXPECT_FALSE(write_mp4(dir + "/bad.mp4", gradient_frames(3, 32, 32), 25.0, &bad).ok()) << "rate 100";
}

TEST(VideoFile, WavHeaderAndSamples) {
  AudioTrack audio{at::tensor({0.0f, 0.5f, -1.0f, 2.0f}).view({2, 2}), 24000};
  auto wav = encode_wav(audio);
  ASSERT_TRUE(wav.ok()) << wav.status();
  ASSERT_EQ(wav->size(), 44u + 8u);
  EXPECT_EQ(wav->substr(0, 4), "RIFF");
  EXPECT_EQ(wav->substr(8, 8), "WAVEfmt ");
  auto at16 = [&](size_t off) { return static_cast<int16_t>(static_cast<uint8_t>((*wav)[off]) | (static_cast<uint8_t>((*wav)[off + 1]) << 8)); };
  EXPECT_EQ(at16(22), 2);  // channels
  // Interleaved: L0 R0 L1 R1 = 0, -1, 0.5, 1 (clamped).
  EXPECT_EQ(at16(44), 0);
  EXPECT_EQ(at16(46), -32767);
  EXPECT_EQ(at16(48), 16384);
  EXPECT_EQ(at16(50), 32767);
  EXPECT_FALSE(encode_wav(AudioTrack{}).ok());
}

// Identical frames must give identical bytes whatever the heap holds and
// whichever thread encodes (the service encodes on its inference thread while
// other work has used the heap).
TEST(VideoFile, Mp4BytesDependOnlyOnTheFrames) {
  at::manual_seed(3);
  const at::Tensor frames = at::rand({17, 3, 128, 128});
  auto first = encode_mp4(frames, 25.0);
  ASSERT_TRUE(first.ok()) << first.status();
  for (int round = 0; round < 6; ++round) {
    {  // leave the heap full of garbage of many sizes
      std::vector<at::Tensor> junk;
      for (int i = 0; i < 64; ++i) junk.push_back(at::rand({(i % 7 + 1) * 4099}) * 1e6);
    }
    std::string again;
    std::thread t([&] {
      auto r = encode_mp4(frames.clone(), 25.0);
      if (r.ok()) again = *r;
    });
    t.join();
    ASSERT_EQ(again.size(), first->size()) << "round " << round;
    EXPECT_TRUE(again == *first) << "round " << round;
  }
}

TEST(VideoFile, PngFramesAndErrors) {
  std::string dir = testing::scratch_dir("png");
  ASSERT_TRUE(write_png_frames(dir, gradient_frames(2, 16, 24)).ok());
  EXPECT_TRUE(std::filesystem::exists(dir + "/frame_00001.png"));
  auto png = encode_png(gradient_frames(1, 8, 8)[0]);
  ASSERT_TRUE(png.ok());
  EXPECT_EQ(png->substr(1, 3), "PNG");
  EXPECT_FALSE(write_mp4(dir + "/odd.mp4", gradient_frames(2, 15, 16), 25).ok()) << "odd height";
  EXPECT_FALSE(write_mp4(dir + "/x.mp4", at::zeros({2, 4, 16, 16}), 25).ok()) << "4 channels";
  EXPECT_FALSE(write_mp4(dir + "/x.mp4", gradient_frames(2, 16, 16), 0).ok()) << "fps 0";
  EXPECT_FALSE(write_mp4("/nonexistent/dir/x.mp4", gradient_frames(2, 16, 16), 25).ok());
  EXPECT_FALSE(probe_video(dir + "/frame_00001.png.missing").ok());
}

TEST(SmallModel, WritesThePublicLayoutAndLoadsThroughTheSameCode) {
  std::string dir = testing::scratch_dir("small") + "/model";
  ASSERT_TRUE(write_small_model(dir, 3).ok());
  for (const char* f : {"model_index.json", "transformer/config.json", "transformer/diffusion_pytorch_model.safetensors",
                        "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "text_encoder/config.json",
                        "text_encoder/model.safetensors", "tokenizer/spiece.model", "scheduler/scheduler_config.json"}) {
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  }
  dist::LocalCommunicator alone;
  auto model = load_model(dir, alone, {});
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(model->family, "ltx-video");
  EXPECT_EQ(model->geometry.attention_heads, 16) << "groups of 1, 2, 4, 8 and 16 ranks split the heads";
  EXPECT_EQ(model->geometry.spatial_compression, 32);
  EXPECT_EQ(model->geometry.temporal_compression, 8);
  EXPECT_FALSE(write_small_model(dir).ok()) << "refuses a non-empty folder";
}

TEST(GenerationRequest, ValidationNamesTheField) {
  GenerationRequest r;
  r.prompt = "x";
  const ModelGeometry g;  // 32 x 32 pixels and 8 frames per latent voxel
  EXPECT_TRUE(validate_request(r, g).ok());
  auto field = [&](auto edit, const std::string& name) {
    GenerationRequest bad = r;
    edit(bad);
    Status st = validate_request(bad, g);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(st.message().find(name), std::string::npos) << st;
  };
  field([](auto& b) { b.width = 100; }, "width");
  field([](auto& b) { b.height = 0; }, "height");
  field([](auto& b) { b.width = 4096; }, "width");
  field([](auto& b) { b.num_frames = 10; }, "num_frames");
  field([](auto& b) { b.num_steps = 0; }, "num_inference_steps");
  field([](auto& b) { b.guidance_scale = -1; }, "guidance_scale");
  field([](auto& b) { b.fps = 0; }, "fps");
  field([](auto& b) { b.prompt = ""; }, "prompt");
}

// Sizes follow the model's compression factors, not fixed numbers.
TEST(GenerationRequest, SizesFollowTheModelsCompression) {
  GenerationRequest r;
  r.prompt = "x";
  r.width = 48;
  r.height = 80;
  r.num_frames = 13;
  ModelGeometry fine;
  fine.spatial_compression = 16;
  fine.temporal_compression = 4;
  EXPECT_TRUE(validate_request(r, fine).ok());
  Status coarse = validate_request(r, ModelGeometry{});
  EXPECT_NE(coarse.message().find("multiple of 32"), std::string::npos) << coarse;
  r.num_frames = 11;
  EXPECT_NE(validate_request(r, fine).message().find("4k+1"), std::string::npos);
  EXPECT_EQ(fine.grid(48, 80, 13).num_tokens(), 4 * 5 * 3);
}

}  // namespace
}  // namespace ltx::pipeline
