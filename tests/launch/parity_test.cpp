#include "launch/parity_runner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "dist/local_communicator.h"
#include "tests/test_util.h"

namespace ltx::launch {
namespace {

// Every reference case whose runner exists must pass; the numbers are printed.
class Parity : public ::testing::TestWithParam<std::string> {};

TEST_P(Parity, MatchesTheReference) {
  dist::LocalCommunicator comm;
  auto report = run_parity_case(testing::fixture_dir(GetParam()), comm);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("%s", report->to_string().c_str());
  EXPECT_TRUE(report->pass()) << report->to_string();
}

INSTANTIATE_TEST_SUITE_P(Transformer, Parity,
                         ::testing::Values("ltx_transformer_f2h2w2", "ltx_transformer_f3h4w6",
                                           "ltx_transformer_f3h4w6_bf16",
                                           "ltx_transformer_f3h4w6_tokentimestep",
                                           "ltx_transformer_f5h2w3"));

INSTANTIATE_TEST_SUITE_P(Ltx2, Parity,
                         ::testing::Values("ltx2_transformer_v20", "ltx2_transformer_v20_bf16", "ltx2_transformer_v23",
                                           "ltx2_text_connectors_v20", "ltx2_text_connectors_v23",
                                           "ltx2_audio_vae_decoder", "ltx2_vocoder", "ltx2_latent_upsampler",
                                           "ltx2_video_vae_decoder_v20_temb", "ltx2_video_vae_decoder_v23",
                                           "ltx2_pipeline_e2e"));

INSTANTIATE_TEST_SUITE_P(TextEncoders, Parity,
                         ::testing::Values("gemma3_text_leftpad", "gemma3_text_rightpad", "t5_encoder"));

// bf16 against the fp32 reference: the text encoders within 3e-2, the LTX-2
// transformers and connectors within 2e-2 (the tolerance each case runner sets).
struct Bf16Case {
  std::string name;
  double tolerance;
};
void PrintTo(const Bf16Case& c, std::ostream* os) { *os << c.name; }

class ParityBf16 : public ::testing::TestWithParam<Bf16Case> {};

TEST_P(ParityBf16, StaysCloseToTheFp32Reference) {
  dist::LocalCommunicator comm;
  ParityOptions options;
  options.dtype = at::kBFloat16;
  auto report = run_parity_case(testing::fixture_dir(GetParam().name), comm, options);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("[bf16] %s", report->to_string().c_str());
  EXPECT_TRUE(report->pass()) << report->to_string();
  for (const auto& r : report->results) {
    if (r.output != "out.attention_mask") {
      EXPECT_DOUBLE_EQ(r.tol_rel_l2, GetParam().tolerance) << r.output;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ltx2, ParityBf16,
                         ::testing::Values(Bf16Case{"ltx2_transformer_v20", 2e-2}, Bf16Case{"ltx2_transformer_v23", 2e-2},
                                           Bf16Case{"ltx2_text_connectors_v20", 2e-2},
                                           Bf16Case{"ltx2_text_connectors_v23", 2e-2}));

INSTANTIATE_TEST_SUITE_P(TextEncoders, ParityBf16,
                         ::testing::Values(Bf16Case{"gemma3_text_leftpad", 3e-2}, Bf16Case{"gemma3_text_rightpad", 3e-2},
                                           Bf16Case{"t5_encoder", 3e-2}));

// The whole LTX-Video pipeline (transformer, scheduler loop, VAE decode) in
// bf16 against the fp32 reference: every output within 3e-2 relative L2.
TEST(ParityBf16Pipeline, WholePipelineStaysCloseToTheFp32Reference) {
  dist::LocalCommunicator comm;
  ParityOptions options;
  options.dtype = at::kBFloat16;
  auto report = run_parity_case(testing::fixture_dir("ltx_pipeline_e2e"), comm, options);
  ASSERT_TRUE(report.ok()) << report.status();
  std::printf("[bf16] %s", report->to_string().c_str());
  EXPECT_TRUE(report->pass()) << report->to_string();
  EXPECT_EQ(report->results.size(), 7u) << "every out.* tensor of the case";
  for (const auto& r : report->results) EXPECT_LE(r.tol_rel_l2, 3e-2) << r.output;
}

INSTANTIATE_TEST_SUITE_P(VaeSchedulerPipeline, Parity,
                         ::testing::Values("ltx_vae_decoder_v090", "ltx_vae_decoder_v095", "flow_match_scheduler",
                                           "ltx_pipeline_e2e"));

TEST(ParityRunner, BadFoldersAreErrors) {
  dist::LocalCommunicator comm;
  EXPECT_EQ(run_parity_case("/nonexistent", comm).status().code(), StatusCode::kNotFound);
  std::string dir = testing::scratch_dir("case");
  std::ofstream(dir + "/case.json") << R"j({"call": "something.else()"})j";
  EXPECT_EQ(run_parity_case(dir, comm).status().code(), StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace ltx::launch
