// The model-family seam: placement choices and their resolution, every
// component's weights where its placement says, the registry's family
// detection (folders and single files), built-in names and display names.
#include "pipeline/registry/model_registry.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/check.h"
#include "dist/local_communicator.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/weight_loader.h"
#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

const at::Device kCpu(at::kCPU);

TEST(Placement, DefaultsAndChoicesResolve) {
  ModelPlacement d = ModelPlacement::defaults(kCpu);
  EXPECT_EQ(d.to_string(), "text cpu fp32, denoiser cpu fp32, decoder cpu fp32");
  PlacementChoice c;
  c.dtype = "bf16";
  c.text_dtype = "fp32";
  c.text_device = "cpu";
  auto p = ModelPlacement::resolve(c, kCpu);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->text_encoder.dtype, at::kFloat);
  EXPECT_EQ(p->denoiser.dtype, at::kBFloat16);
  EXPECT_EQ(p->decoder.dtype, at::kBFloat16);
  EXPECT_FALSE(p->uses_cuda());
}

TEST(Placement, BadChoicesNameTheFlag) {
  auto named = [](PlacementChoice c, const std::string& flag) {
    Status s = c.validate();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << flag;
    EXPECT_NE(s.message().find(flag), std::string::npos) << s;
  };
  PlacementChoice c;
  c.dtype = "int8";
  named(c, "--dtype");
  c = {};
  c.text_device = "gpu";
  named(c, "--text-device");
  c = {};
  c.decoder_dtype = "double";
  named(c, "--decoder-dtype");
  c = {};
  c.step_graphs = "yes";
  named(c, "--step-graphs");
  c = {};
  c.guidance_parallel = "always";
  named(c, "--guidance-parallel");
  c = {};
  c.decode_parallel = "2";
  named(c, "--decode-parallel");
  c = {};
  c.ring_size = "1.5";
  named(c, "--ring-size");
  c.ring_size = "4";
  EXPECT_EQ(ModelPlacement::resolve(c, kCpu)->planning.ring_size, 4);
  c = {};
  c.link_bandwidth_gbps = "0";
  c.link_latency_us = "5";
  named(c, "--link-bandwidth-gbps");
  c.link_bandwidth_gbps = "100";
  c.link_latency_us = "-1";
  named(c, "--link-latency-us");
  c.link_latency_us = "";
  named(c, "give both or neither");
  c.link_latency_us = "4";
  EXPECT_EQ(ModelPlacement::resolve(c, kCpu)->planning.link_for("mpi").bandwidth_gbps, 100.0);
  EXPECT_EQ(ModelPlacement::resolve(PlacementChoice{}, kCpu)->planning.link_for("nccl").bandwidth_gbps, 370.0);
  // auto: a shared decode for a GPU decoder only.
  EXPECT_FALSE(ModelPlacement::resolve(PlacementChoice{}, kCpu)->decoder.shared);
  // auto: step graphs for a GPU denoiser only; on: also on a CPU (the replay backend).
  c = {};
  EXPECT_FALSE(ModelPlacement::resolve(c, kCpu)->denoiser.step_graphs);
  c.step_graphs = "on";
  EXPECT_TRUE(ModelPlacement::resolve(c, kCpu)->denoiser.step_graphs);
  if (!at::hasCUDA()) {
    c = {};
    c.decoder_device = "cuda";
    auto p = ModelPlacement::resolve(c, kCpu);
    EXPECT_EQ(p.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(p.status().message().find("--decoder-device"), std::string::npos) << p.status();
  }
}

// Every weight of every component sits on the device and in the dtype its
// placement names (fp32, bf16, and a mix).
TEST(Placement, EveryComponentsWeightsAreWhereItsPlacementSays) {
  dist::LocalCommunicator alone;
  std::vector<PlacementChoice> choices(3);
  choices[1].dtype = "bf16";
  choices[2].text_dtype = "fp32";
  choices[2].denoiser_dtype = "bf16";
  choices[2].decoder_dtype = "fp32";
  choices.push_back(PlacementChoice{});
  choices[3].step_graphs = "on";  // the LTX-Video denoiser records its steps (replay backend on a CPU)
  for (const PlacementChoice& c : choices) {
    auto model = load_model(kDefaultModel, alone, c);
    ASSERT_TRUE(model.ok()) << model.status();
    const ModelPlacement& p = model->placement;
    auto check = [](const char* what, const Placement& want, const Placement& says,
                    const std::vector<at::Tensor>& weights) {
      EXPECT_EQ(says.to_string(), want.to_string()) << what;
      ASSERT_FALSE(weights.empty()) << what;
      for (const auto& w : weights) {
        ASSERT_EQ(w.scalar_type(), want.dtype) << what << " in " << want.to_string();
        ASSERT_EQ(w.device(), want.device) << what;
      }
    };
    check("text encoder", p.text_encoder, model->text->placement(), model->text->weights());
    check("denoiser", p.denoiser, model->denoiser->placement(), model->denoiser->weights());
    check("decoder", p.decoder, model->video_decoder->placement(), model->video_decoder->weights());
    std::printf("  %s: denoiser %.2f MB, text %.2f MB, decoder %.2f MB\n", p.to_string().c_str(),
                bytes_of(model->denoiser->weights()) / 1e6, bytes_of(model->text->weights()) / 1e6,
                bytes_of(model->video_decoder->weights()) / 1e6);
  }
}

TEST(Registry, PicksTheFamilyOfAFolder) {
  auto path = resolve_model_path(kDefaultModel);
  ASSERT_TRUE(path.ok()) << path.status();
  auto source = read_model_source(*path);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_TRUE(source->folder);
  EXPECT_EQ(source->class_name, "LTXPipeline");
  auto family = family_for(*source);
  ASSERT_TRUE(family.ok()) << family.status();
  EXPECT_EQ((*family)->name(), "ltx-video");

  const std::string other = testing::scratch_dir("other_family");
  std::ofstream(other + "/model_index.json") << R"({"_class_name": "SomeOtherPipeline"})";
  auto refused = family_for(value_or_throw(read_model_source(other)));
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("SomeOtherPipeline"), std::string::npos) << refused.status();
  EXPECT_NE(refused.status().message().find("ltx-video"), std::string::npos) << "lists the known families";
}

TEST(Registry, PicksTheFamilyOfASingleFileByTensorNames) {
  const std::string dir = testing::scratch_dir("single_file");
  auto write = [&](const std::string& name, const std::vector<std::string>& tensors) {
    NamedTensors t;
    for (const auto& n : tensors) t.emplace_back(n, at::zeros({2}));
    throw_if_error(write_safetensors(dir + "/" + name, t));
    return dir + "/" + name;
  };
  const std::string ltxv = write("ltx-video-2b.safetensors", {"model.diffusion_model.patchify_proj.weight",
                                                              "model.diffusion_model.adaln_single.linear.weight",
                                                              "vae.decoder.conv_in.conv.weight"});
  auto family = family_for(value_or_throw(read_model_source(ltxv)));
  ASSERT_TRUE(family.ok()) << family.status();
  EXPECT_EQ((*family)->name(), "ltx-video");
  // A whole pipeline needs a text encoder the single file does not have: a
  // clear error, on every rank alike.
  dist::LocalCommunicator alone;
  auto loaded = load_model(ltxv, alone, {});
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("text encoder"), std::string::npos) << loaded.status();

  const std::string av = write("ltx-2-19b.safetensors", {"model.diffusion_model.patchify_proj.weight",
                                                         "model.diffusion_model.audio_patchify_proj.weight"});
  EXPECT_EQ(family_for(value_or_throw(read_model_source(av))).status().code(), StatusCode::kInvalidArgument)
      << "an audio-video checkpoint is not LTX-Video";
  // With the audio-video tensors LTX-2 recognises it; loading a bare
  // single file for generation says what it lacks, on every rank alike.
  const std::string ltx2 = write("ltx-2-19b-dev.safetensors",
                                 {"model.diffusion_model.patchify_proj.weight",
                                  "model.diffusion_model.av_ca_a2v_gate_adaln_single.emb.timestep_embedder.linear_1.weight"});
  auto ltx2_family = family_for(value_or_throw(read_model_source(ltx2)));
  ASSERT_TRUE(ltx2_family.ok()) << ltx2_family.status();
  EXPECT_EQ((*ltx2_family)->name(), "ltx2");
  auto ltx2_loaded = load_model(ltx2, alone, {});
  EXPECT_EQ(ltx2_loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(ltx2_loaded.status().message().find("no Gemma text encoder"), std::string::npos) << ltx2_loaded.status();
}

TEST(Registry, NamesAndErrors) {
  EXPECT_EQ(model_display_name("builtin:ltx-video"), "builtin:ltx-video");
  EXPECT_EQ(model_display_name("/srv/models/LTX-Video-0.9.5/"), "LTX-Video-0.9.5");
  EXPECT_EQ(model_display_name("/srv/ckpt/ltx-video-2b-v0.9.safetensors"), "ltx-video-2b-v0.9.safetensors");
  auto unknown = resolve_model_path("builtin:nope");
  EXPECT_EQ(unknown.status().code(), StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("ltx-video"), std::string::npos) << unknown.status();
  auto missing = resolve_model_path("/nonexistent/model");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("/nonexistent/model"), std::string::npos);
  ASSERT_FALSE(model_families().empty());
  for (const ModelFamily* f : model_families()) {
    EXPECT_FALSE(f->builtin_version().empty()) << f->name();
    auto builtin = resolve_model_path(kBuiltinPrefix + f->name());
    ASSERT_TRUE(builtin.ok()) << builtin.status();
    EXPECT_TRUE(f->recognizes(value_or_throw(read_model_source(*builtin)))) << "its own built-in model";
  }
}

}  // namespace
}  // namespace ltx::pipeline
