#include "pipeline/ltx_video/small_model.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "common/logging.h"
#include "pipeline/dit/ltx_transformer.h"
#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/schedule/flow_match_scheduler.h"
#include "pipeline/text/tokenizer.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// Text the tokenizer is trained on (sentencepiece needs a corpus; byte
// fallback covers everything outside it).
constexpr const char* kCorpus =
    "A red fox runs through a snowy forest at dawn, cinematic lighting.\n"
    "A slow pan across a quiet harbor with fishing boats and gulls.\n"
    "Close-up of raindrops falling on a window, city lights blurred behind.\n"
    "An astronaut walks on the surface of the moon, dust rising with each step.\n"
    "Time-lapse of clouds rolling over mountain peaks at sunset.\n"
    "A golden retriever catches a frisbee in a sunny park.\n"
    "Waves crash against black volcanic rocks under a stormy sky.\n"
    "A busy street market in the evening, lanterns glowing, people shopping.\n"
    "Macro shot of a honeybee collecting pollen from a purple flower.\n"
    "A vintage train crosses a stone bridge in the countryside.\n"
    "Northern lights dance over a frozen lake. Children fly colorful kites on a windy beach.\n";

constexpr int64_t kVocab = 384;

Status write_json(const fs::path& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  return out ? Status() : resource_exhausted_error(path.string() + ": write failed");
}

// Random tensor with a sensible scale for its role.
at::Tensor random_weight(const std::string& name, const std::vector<int64_t>& shape, at::Generator& gen) {
  at::Tensor t = at::randn(shape, gen);
  if (name.find("norm") != std::string::npos || name.find("layer_norm") != std::string::npos) return at::ones(shape);
  if (name.find("scale_shift_table") != std::string::npos) return t * 0.1;
  if (name == "latents_mean") return at::zeros(shape);
  if (name == "latents_std") return at::ones(shape);
  if (name.find("timestep_scale_multiplier") != std::string::npos) return at::full(shape, 1000.0);
  if (name.find("relative_attention_bias") != std::string::npos) return t * 0.1;
  if (shape.size() >= 2) {
    int64_t fan_in = 1;
    for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
    if (name.find("shared.weight") != std::string::npos) return t;
    return t / std::sqrt(static_cast<double>(fan_in));
  }
  return t * 0.02;  // biases
}

}  // namespace

Status write_small_model(const std::string& dir_str, uint64_t seed, SmallModelShape shape) {
  const bool real = shape == SmallModelShape::kLtxVideo2B;
  // The 2B layout is written in bf16 (half the bytes; the loaders convert).
  auto stored = [real](at::Tensor t) { return real ? t.to(at::kBFloat16) : t; };
  return catch_to_status([&]() -> Status {
    const fs::path dir(dir_str);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return invalid_argument_error(dir_str + ": cannot create: " + ec.message());
    if (!fs::is_empty(dir, ec)) return failed_precondition_error(dir_str + ": not empty");
    for (const char* sub : {"transformer", "vae", "text_encoder", "tokenizer", "scheduler"}) {
      fs::create_directories(dir / sub);
    }
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);

    // Tokenizer: T5-style ids (pad 0, eos 1, unk 2, no bos).
    const fs::path corpus = dir / "tokenizer" / "corpus.txt";
    std::ofstream(corpus) << kCorpus;
    LTX_RETURN_IF_ERROR(train_sentencepiece(
        "--input=" + corpus.string() + " --model_prefix=" + (dir / "tokenizer" / "spiece").string() +
        " --vocab_size=" + std::to_string(kVocab) +
        " --model_type=unigram --character_coverage=1.0 --byte_fallback=true --pad_id=0 --eos_id=1 --unk_id=2"
        " --bos_id=-1 --num_threads=1 --minloglevel=2"));
    fs::remove(corpus);
    fs::remove(dir / "tokenizer" / "spiece.vocab");
    LTX_RETURN_IF_ERROR(write_json(dir / "tokenizer" / "tokenizer_config.json",
                                   {{"tokenizer_class", "T5Tokenizer"}, {"model_max_length", 128},
                                    {"pad_token", "<pad>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}}));

    // Text encoder: a tiny T5 v1.1 encoder.
    const int64_t d_model = real ? 4096 : 32, heads = real ? 64 : 4, d_kv = real ? 64 : 8, d_ff = real ? 10240 : 64,
                  t5_layers = real ? 1 : 2, buckets = 32;
    LTX_RETURN_IF_ERROR(write_json(dir / "text_encoder" / "config.json",
                                   {{"architectures", {"T5EncoderModel"}}, {"model_type", "t5"},
                                    {"vocab_size", kVocab}, {"d_model", d_model}, {"d_kv", d_kv}, {"d_ff", d_ff},
                                    {"num_layers", t5_layers}, {"num_heads", heads},
                                    {"relative_attention_num_buckets", buckets},
                                    {"relative_attention_max_distance", 128}, {"layer_norm_epsilon", 1e-6},
                                    {"feed_forward_proj", "gated-gelu"}, {"dense_act_fn", "gelu_new"},
                                    {"is_gated_act", true}, {"pad_token_id", 0}, {"eos_token_id", 1}}));
    NamedTensors t5;
    auto t5_add = [&](const std::string& n, std::vector<int64_t> s) { t5.emplace_back(n, stored(random_weight(n, s, gen))); };
    t5_add("shared.weight", {kVocab, d_model});
    t5_add("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", {buckets, heads});
    t5_add("encoder.final_layer_norm.weight", {d_model});
    for (int64_t i = 0; i < t5_layers; ++i) {
      const std::string p = "encoder.block." + std::to_string(i) + ".layer.";
      for (const char* n : {"q", "k", "v"}) t5_add(p + "0.SelfAttention." + n + ".weight", {heads * d_kv, d_model});
      t5_add(p + "0.SelfAttention.o.weight", {d_model, heads * d_kv});
      t5_add(p + "0.layer_norm.weight", {d_model});
      t5_add(p + "1.DenseReluDense.wi_0.weight", {d_ff, d_model});
      t5_add(p + "1.DenseReluDense.wi_1.weight", {d_ff, d_model});
      t5_add(p + "1.DenseReluDense.wo.weight", {d_model, d_ff});
      t5_add(p + "1.layer_norm.weight", {d_model});
    }
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "text_encoder" / "model.safetensors").string(), t5));

    // Transformer: the 2B architecture, shrunk.
    TransformerConfig tc;
    tc.in_channels = tc.out_channels = real ? 128 : 16;
    tc.num_attention_heads = real ? 32 : 16;
    tc.attention_head_dim = real ? 64 : 4;
    tc.cross_attention_dim = real ? 2048 : 64;
    tc.num_layers = real ? 28 : 2;
    tc.caption_channels = d_model;
    LTX_RETURN_IF_ERROR(write_json(dir / "transformer" / "config.json",
                                   {{"_class_name", "LTXVideoTransformer3DModel"}, {"_diffusers_version", "0.32.0"},
                                    {"in_channels", tc.in_channels}, {"out_channels", tc.out_channels},
                                    {"patch_size", 1}, {"patch_size_t", 1},
                                    {"num_attention_heads", tc.num_attention_heads},
                                    {"attention_head_dim", tc.attention_head_dim},
                                    {"cross_attention_dim", tc.cross_attention_dim}, {"num_layers", tc.num_layers},
                                    {"caption_channels", tc.caption_channels}, {"activation_fn", "gelu-approximate"},
                                    {"qk_norm", "rms_norm_across_heads"}, {"norm_elementwise_affine", false},
                                    {"norm_eps", 1e-6}, {"attention_bias", true}, {"attention_out_bias", true}}));
    NamedTensors dit;
    for (const auto& e : LtxTransformer::expected_tensors(tc)) {
      dit.emplace_back(e.name, stored(random_weight(e.name, e.shape, gen)));
    }
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "transformer" / "diffusion_pytorch_model.safetensors").string(), dit));

    // VAE: the 0.9.5 decoder structure, shrunk; decoder and latent statistics.
    json vae_config = {{"_class_name", "AutoencoderKLLTXVideo"}, {"_diffusers_version", "0.32.0"},
                       {"in_channels", 3}, {"out_channels", 3}, {"latent_channels", tc.in_channels},
                       {"block_out_channels", real ? json{128, 256, 512, 1024, 2048} : json{8, 16, 32, 64, 64}},
                       {"decoder_block_out_channels", real ? json{256, 512, 1024} : json{16, 32, 64}},
                       {"layers_per_block", real ? json{4, 6, 6, 2, 2} : json{1, 1, 1, 1, 1}},
                       {"decoder_layers_per_block", real ? json{5, 5, 5, 5} : json{1, 1, 1, 1}},
                       {"spatio_temporal_scaling", {true, true, true, true}},
                       {"decoder_spatio_temporal_scaling", {true, true, true}},
                       {"decoder_inject_noise", {false, false, false, false}},
                       {"downsample_type", {"spatial", "temporal", "spatiotemporal", "spatiotemporal"}},
                       {"upsample_residual", {true, true, true}}, {"upsample_factor", {2, 2, 2}},
                       {"timestep_conditioning", true}, {"patch_size", 4}, {"patch_size_t", 1},
                       {"resnet_norm_eps", 1e-6}, {"scaling_factor", 1.0}, {"encoder_causal", true},
                       {"decoder_causal", false}, {"spatial_compression_ratio", 32}, {"temporal_compression_ratio", 8}};
    LTX_RETURN_IF_ERROR(write_json(dir / "vae" / "config.json", vae_config));
    LTX_ASSIGN_OR_RETURN(VaeConfig vc, parse_vae_config(vae_config.dump(), "small model vae"));
    NamedTensors vae;
    for (const auto& e : vae_expected_tensors(vc)) vae.emplace_back(e.name, stored(random_weight(e.name, e.shape, gen)));
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "vae" / "diffusion_pytorch_model.safetensors").string(), vae));

    LTX_RETURN_IF_ERROR(write_json(dir / "scheduler" / "scheduler_config.json", json::parse(ltx_scheduler_config_json())));
    LTX_RETURN_IF_ERROR(write_json(dir / "model_index.json",
                                   {{"_class_name", "LTXPipeline"}, {"_diffusers_version", "0.32.0"},
                                    {"scheduler", {"diffusers", "FlowMatchEulerDiscreteScheduler"}},
                                    {"text_encoder", {"transformers", "T5EncoderModel"}},
                                    {"tokenizer", {"transformers", "T5Tokenizer"}},
                                    {"transformer", {"diffusers", "LTXVideoTransformer3DModel"}},
                                    {"vae", {"diffusers", "AutoencoderKLLTXVideo"}}}));
    return Status();
  });
}

}  // namespace ltx::pipeline
