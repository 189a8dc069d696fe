#include "pipeline/io/model_config.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace ltx::pipeline {
namespace {

void expect_field_error(const Status& st, const std::string& field) {
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("field '" + field + "'"), std::string::npos) << st;
  EXPECT_NE(st.message().find("cfg.json"), std::string::npos) << st;
}

TEST(ModelConfig, ParsesTheFixtureConfigs) {
  auto t = load_transformer_config(testing::fixture_dir("ltx_transformer_f2h2w2") + "/config.json");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->num_layers, 2);
  EXPECT_EQ(t->num_attention_heads, 2);
  EXPECT_EQ(t->attention_head_dim, 16);
  EXPECT_EQ(t->caption_channels, 24);
  EXPECT_EQ(t->inner_dim(), 32);

  auto v = load_vae_config(testing::fixture_dir("ltx_vae_decoder_v090") + "/config.json");
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_FALSE(v->timestep_conditioning);
  EXPECT_EQ(v->spatial_compression_ratio, 32);  // null in the file, derived
  EXPECT_EQ(v->temporal_compression_ratio, 8);
  auto v5 = load_vae_config(testing::fixture_dir("ltx_vae_decoder_v095") + "/config.json");
  ASSERT_TRUE(v5.ok()) << v5.status();
  EXPECT_TRUE(v5->timestep_conditioning);
  EXPECT_EQ(v5->decoder_block_out_channels, (std::vector<int64_t>{8, 16, 32}));

  auto s = load_scheduler_config(testing::fixture_dir("flow_match_scheduler") + "/config.json");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->use_dynamic_shifting);
  ASSERT_TRUE(s->shift_terminal.has_value());
  EXPECT_DOUBLE_EQ(*s->shift_terminal, 0.1);

  auto g = load_gemma3_config(testing::fixture_dir("gemma3_text_leftpad") + "/config.json");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->sliding_layers, (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(g->rope_full.type, "linear");
  EXPECT_DOUBLE_EQ(g->rope_full.factor, 8.0);
  EXPECT_DOUBLE_EQ(g->rope_full.theta, 1e6);
  EXPECT_DOUBLE_EQ(g->rope_sliding.theta, 1e4);
  EXPECT_DOUBLE_EQ(g->query_pre_attn_scalar, 24);

  auto t5 = load_t5_config(testing::fixture_dir("t5_encoder") + "/config.json");
  ASSERT_TRUE(t5.ok()) << t5.status();
  EXPECT_EQ(t5->d_model, 32);
  EXPECT_EQ(t5->relative_attention_num_buckets, 32);
}

TEST(ModelConfig, DefaultsAreThe2BModel) {
  auto t = parse_transformer_config("{}", "cfg.json");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->num_layers, 28);
  EXPECT_EQ(t->inner_dim(), 2048);
  EXPECT_EQ(t->caption_channels, 4096);
}

TEST(ModelConfig, GemmaLegacyFieldsAndLayerRule) {
  auto g = parse_gemma3_config(
      R"({"text_config":{"num_hidden_layers":12,"rope_theta":1000000.0,"rope_local_base_freq":10000.0,
          "rope_scaling":{"rope_type":"linear","factor":8.0}}})",
      "cfg.json");
  ASSERT_TRUE(g.ok()) << g.status();
  ASSERT_EQ(g->sliding_layers.size(), 12u);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(g->sliding_layers[i], (i + 1) % 6 != 0) << i;
  EXPECT_DOUBLE_EQ(g->rope_full.factor, 8.0);
  EXPECT_DOUBLE_EQ(g->rope_full.theta, 1e6);
}

TEST(ModelConfig, ErrorsNameTheField) {
  expect_field_error(parse_transformer_config(R"({"num_layers":"many"})", "cfg.json").status(), "num_layers");
  expect_field_error(parse_transformer_config(R"({"num_layers":0})", "cfg.json").status(), "num_layers");
  expect_field_error(parse_transformer_config(R"({"activation_fn":"relu"})", "cfg.json").status(), "activation_fn");
  expect_field_error(parse_transformer_config(R"({"patch_size":2})", "cfg.json").status(), "patch_size");
  expect_field_error(parse_transformer_config(R"({"norm_eps":-1})", "cfg.json").status(), "norm_eps");
  expect_field_error(parse_vae_config(R"({"decoder_layers_per_block":[1,2]})", "cfg.json").status(),
                     "decoder_layers_per_block");
  expect_field_error(parse_vae_config(R"({"decoder_inject_noise":[1,0]})", "cfg.json").status(),
                     "decoder_inject_noise");
  expect_field_error(parse_scheduler_config(R"({"time_shift_type":"cosine"})", "cfg.json").status(),
                     "time_shift_type");
  expect_field_error(parse_scheduler_config(R"({"use_karras_sigmas":true})", "cfg.json").status(),
                     "use_karras_sigmas");
  expect_field_error(parse_scheduler_config(R"({"shift_terminal":1.5})", "cfg.json").status(), "shift_terminal");
  expect_field_error(parse_gemma3_config(R"({"hidden_activation":"silu"})", "cfg.json").status(),
                     "hidden_activation");
  expect_field_error(parse_gemma3_config(R"({"num_hidden_layers":2,"layer_types":["sliding_attention"]})",
                                         "cfg.json").status(),
                     "layer_types");
  expect_field_error(parse_gemma3_config(R"({"num_attention_heads":3,"num_key_value_heads":2})", "cfg.json")
                         .status(),
                     "num_key_value_heads");
  expect_field_error(parse_t5_config(R"({"feed_forward_proj":"relu"})", "cfg.json").status(), "feed_forward_proj");
  Status bad_json = parse_t5_config("{", "cfg.json").status();
  EXPECT_NE(bad_json.message().find("not well-formed JSON"), std::string::npos);
  EXPECT_EQ(load_t5_config("/nonexistent/config.json").status().code(), StatusCode::kNotFound);
}

TEST(ModelConfig, SchedulerNullTerminalDisablesStretch) {
  auto s = parse_scheduler_config(R"({"shift_terminal":null})", "cfg.json");
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->shift_terminal.has_value());
}

}  // namespace
}  // namespace ltx::pipeline
