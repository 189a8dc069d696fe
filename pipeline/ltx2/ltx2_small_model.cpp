#include "pipeline/ltx2/ltx2_small_model.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/check.h"
#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/ltx2/ltx2_audio.h"
#include "pipeline/ltx2/ltx2_latent_upsampler.h"
#include "pipeline/schedule/flow_match_scheduler.h"
#include "pipeline/ltx2/ltx2_layers.h"
#include "pipeline/ltx2/ltx2_text_connectors.h"
#include "pipeline/ltx2/ltx2_transformer.h"
#include "pipeline/text/gemma3_encoder.h"
#include "pipeline/text/tokenizer.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kCorpus =
    "A red fox runs through a snowy forest at dawn while wind whistles in the pines.\n"
    "Waves crash against black volcanic rocks, thunder rolls under a stormy sky.\n"
    "A jazz trio plays in a smoky club; the crowd claps along to the drums.\n"
    "A kettle whistles on the stove as rain taps on the kitchen window.\n"
    "A busy street market in the evening, lanterns glowing, vendors calling out.\n"
    "A vintage train crosses a stone bridge, its horn echoing through the valley.\n"
    "Children laugh and fly colorful kites on a windy beach as gulls cry overhead.\n";

constexpr int64_t kVocab = 320;
constexpr int64_t kGemmaHidden = 32;
constexpr int64_t kGemmaLayers = 2;

Status write_json(const fs::path& path, const json& j) {
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  return out ? Status() : resource_exhausted_error(path.string() + ": write failed");
}

json transformer_json(const Ltx2TransformerConfig& c) {
  return {{"_class_name", "LTX2VideoTransformer3DModel"}, {"_diffusers_version", "0.40.0"},
          {"in_channels", c.in_channels}, {"out_channels", c.out_channels},
          {"patch_size", 1}, {"patch_size_t", 1},
          {"num_attention_heads", c.num_attention_heads}, {"attention_head_dim", c.attention_head_dim},
          {"cross_attention_dim", c.cross_attention_dim},
          {"audio_in_channels", c.audio_in_channels}, {"audio_out_channels", c.audio_out_channels},
          {"audio_patch_size", 1}, {"audio_patch_size_t", 1},
          {"audio_num_attention_heads", c.audio_num_attention_heads},
          {"audio_attention_head_dim", c.audio_attention_head_dim},
          {"audio_cross_attention_dim", c.audio_cross_attention_dim},
          {"num_layers", c.num_layers}, {"caption_channels", c.caption_channels},
          {"activation_fn", "gelu-approximate"}, {"qk_norm", "rms_norm_across_heads"},
          {"norm_elementwise_affine", false}, {"norm_eps", c.norm_eps},
          {"attention_bias", c.attention_bias}, {"attention_out_bias", c.attention_out_bias},
          {"ff_bias", c.ff_bias}, {"audio_ff_bias", c.audio_ff_bias},
          {"rope_theta", c.rope_theta}, {"rope_double_precision", c.rope_double_precision},
          {"rope_type", c.rope_layout == Ltx2RopeLayout::kSplit ? "split" : "interleaved"},
          {"causal_offset", c.causal_offset}, {"pos_embed_max_pos", c.pos_embed_max_pos},
          {"base_height", c.base_height}, {"base_width", c.base_width},
          {"audio_pos_embed_max_pos", c.audio_pos_embed_max_pos}, {"vae_scale_factors", c.vae_scale_factors},
          {"audio_scale_factor", c.audio_scale_factor}, {"audio_sampling_rate", c.audio_sampling_rate},
          {"audio_hop_length", c.audio_hop_length},
          {"timestep_scale_multiplier", c.timestep_scale_multiplier},
          {"cross_attn_timestep_scale_multiplier", c.cross_attn_timestep_scale_multiplier},
          {"gated_attn", c.gated_attn}, {"audio_gated_attn", c.audio_gated_attn},
          {"cross_attn_mod", c.cross_attn_mod}, {"audio_cross_attn_mod", c.audio_cross_attn_mod},
          {"use_prompt_embeddings", c.use_prompt_embeddings},
          {"use_prompt_adaln_single", c.use_prompt_adaln_single}, {"perturbed_attn", c.perturbed_attn}};
}

json connectors_json(const Ltx2ConnectorsConfig& c) {
  return {{"_class_name", "LTX2TextConnectors"}, {"_diffusers_version", "0.40.0"},
          {"caption_channels", c.caption_channels}, {"text_proj_in_factor", c.text_proj_in_factor},
          {"video_connector_num_attention_heads", c.video.num_attention_heads},
          {"video_connector_attention_head_dim", c.video.attention_head_dim},
          {"video_connector_num_layers", c.video.num_layers},
          {"video_connector_num_learnable_registers", c.video.num_learnable_registers},
          {"video_gated_attn", c.video.gated_attn},
          {"audio_connector_num_attention_heads", c.audio.num_attention_heads},
          {"audio_connector_attention_head_dim", c.audio.attention_head_dim},
          {"audio_connector_num_layers", c.audio.num_layers},
          {"audio_connector_num_learnable_registers", c.audio.num_learnable_registers},
          {"audio_gated_attn", c.audio.gated_attn},
          {"connector_rope_base_seq_len", c.rope_base_seq_len}, {"rope_theta", c.rope_theta},
          {"rope_double_precision", c.rope_double_precision},
          {"rope_type", c.rope_layout == Ltx2RopeLayout::kSplit ? "split" : "interleaved"},
          {"causal_temporal_positioning", false}, {"per_modality_projections", c.per_modality_projections},
          {"video_hidden_dim", c.video_hidden_dim}, {"audio_hidden_dim", c.audio_hidden_dim},
          {"proj_bias", c.proj_bias}};
}

}  // namespace

Ltx2TransformerConfig ltx2_small_transformer_config() {
  Ltx2TransformerConfig c;
  c.in_channels = c.out_channels = 16;
  c.audio_in_channels = c.audio_out_channels = 16;
  c.num_attention_heads = 16;
  c.attention_head_dim = 8;
  c.audio_num_attention_heads = 16;
  c.audio_attention_head_dim = 4;
  c.cross_attention_dim = c.inner_dim();
  c.audio_cross_attention_dim = c.audio_inner_dim();
  c.num_layers = 2;
  c.caption_channels = kGemmaHidden;
  return c;
}

Ltx2ConnectorsConfig ltx2_small_connectors_config() {
  Ltx2ConnectorsConfig c;
  c.caption_channels = kGemmaHidden;
  c.text_proj_in_factor = kGemmaLayers + 1;
  c.video.num_attention_heads = c.audio.num_attention_heads = 4;
  c.video.attention_head_dim = c.audio.attention_head_dim = 8;
  c.video.num_layers = c.audio.num_layers = 2;
  c.video.num_learnable_registers = c.audio.num_learnable_registers = 8;
  return c;
}

std::map<std::string, at::Tensor> ltx2_random_tensors(const std::vector<ExpectedTensor>& expected, uint64_t seed,
                                                      at::ScalarType dtype, const at::Device& device) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  std::map<std::string, at::Tensor> out;
  for (const auto& e : expected) {
    const std::string& n = e.name;
    at::Tensor t = at::randn(e.shape, gen);
    if (n.find("norm") != std::string::npos && e.shape.size() == 1) {
      t = 1.0 + 0.1 * t;
    } else if (n.find("scale_shift_table") != std::string::npos) {
      t = t * 0.1;
    } else if (n.find("learnable_registers") != std::string::npos) {
      t = at::rand(e.shape, gen) * 2.0 - 1.0;
    } else if (e.shape.size() >= 2) {
      t = t / std::sqrt(static_cast<double>(e.shape[1]));
    } else {
      t = t * 0.02;
    }
    out[n] = t.to(device, dtype);
  }
  return out;
}

std::string ltx2_transformer_config_json(const Ltx2TransformerConfig& c) { return transformer_json(c).dump(2); }
std::string ltx2_connectors_config_json(const Ltx2ConnectorsConfig& c) { return connectors_json(c).dump(2); }

std::string ltx2_original_config_json(const Ltx2TransformerConfig& c, const Ltx2ConnectorsConfig& k) {
  json t = {{"num_attention_heads", c.num_attention_heads}, {"attention_head_dim", c.attention_head_dim},
            {"in_channels", c.in_channels}, {"out_channels", c.out_channels}, {"num_layers", c.num_layers},
            {"cross_attention_dim", c.cross_attention_dim}, {"norm_eps", c.norm_eps},
            {"positional_embedding_theta", c.rope_theta},
            {"positional_embedding_max_pos", {static_cast<int64_t>(c.pos_embed_max_pos),
                                              static_cast<int64_t>(c.base_height), static_cast<int64_t>(c.base_width)}},
            {"timestep_scale_multiplier", c.timestep_scale_multiplier},
            {"audio_num_attention_heads", c.audio_num_attention_heads},
            {"audio_attention_head_dim", c.audio_attention_head_dim}, {"audio_in_channels", c.audio_in_channels},
            {"audio_out_channels", c.audio_out_channels}, {"audio_cross_attention_dim", c.audio_cross_attention_dim},
            {"audio_positional_embedding_max_pos", {static_cast<int64_t>(c.audio_pos_embed_max_pos)}},
            {"av_ca_timestep_scale_multiplier", c.cross_attn_timestep_scale_multiplier},
            {"rope_type", c.rope_layout == Ltx2RopeLayout::kSplit ? "split" : "interleaved"},
            {"frequencies_precision", c.rope_double_precision ? "float64" : "float32"},
            {"apply_gated_attention", c.gated_attn}, {"cross_attention_adaln", c.cross_attn_mod},
            {"use_prompt_adaln_single", c.use_prompt_adaln_single}, {"caption_channels", c.caption_channels},
            {"standardization_norm", "rms_norm"}, {"qk_norm", "rms_norm"}, {"norm_elementwise_affine", false},
            {"positional_embedding_type", "rope"}, {"use_audio_video_cross_attention", true}, {"share_ff", false},
            {"av_cross_ada_norm", true}, {"use_middle_indices_grid", true},
            {"connector_num_attention_heads", k.video.num_attention_heads},
            {"connector_attention_head_dim", k.video.attention_head_dim},
            {"connector_num_layers", k.video.num_layers},
            {"connector_num_learnable_registers", k.video.num_learnable_registers},
            {"connector_apply_gated_attention", k.video.gated_attn},
            {"audio_connector_num_attention_heads", k.audio.num_attention_heads},
            {"audio_connector_attention_head_dim", k.audio.attention_head_dim},
            {"audio_connector_num_layers", k.audio.num_layers},
            {"connector_positional_embedding_max_pos", {static_cast<int64_t>(k.rope_base_seq_len)}}};
  if (!c.use_prompt_embeddings) {
    t["caption_proj_before_connector"] = true;
    t["caption_projection_first_linear"] = false;
    t["caption_proj_input_norm"] = false;
    t["caption_projection_second_linear"] = false;
  }
  return json{{"transformer", t}}.dump();
}

std::string ltx2_original_transformer_name(const std::string& diffusers_name) {
  std::string n = diffusers_name;
  if (starts_with(n, "proj_in.")) n = "patchify_proj." + n.substr(8);
  if (starts_with(n, "audio_proj_in.")) n = "audio_patchify_proj." + n.substr(14);
  if (starts_with(n, "time_embed.")) n = "adaln_single." + n.substr(11);
  if (starts_with(n, "audio_time_embed.")) n = "audio_adaln_single." + n.substr(17);
  if (starts_with(n, "prompt_adaln.")) n = "prompt_adaln_single." + n.substr(13);
  if (starts_with(n, "audio_prompt_adaln.")) n = "audio_prompt_adaln_single." + n.substr(19);
  replace_all(&n, "av_cross_attn_video_scale_shift", "av_ca_video_scale_shift_adaln_single");
  replace_all(&n, "av_cross_attn_audio_scale_shift", "av_ca_audio_scale_shift_adaln_single");
  replace_all(&n, "av_cross_attn_video_a2v_gate", "av_ca_a2v_gate_adaln_single");
  replace_all(&n, "av_cross_attn_audio_v2a_gate", "av_ca_v2a_gate_adaln_single");
  replace_all(&n, "video_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_video");
  replace_all(&n, "audio_a2v_cross_attn_scale_shift_table", "scale_shift_table_a2v_ca_audio");
  replace_all(&n, ".norm_q.", ".q_norm.");
  replace_all(&n, ".norm_k.", ".k_norm.");
  return ltx2::kDiffusionPrefix + n;
}

std::string ltx2_original_connectors_name(const std::string& diffusers_name) {
  std::string n = diffusers_name;
  if (starts_with(n, "text_proj_in.")) return "text_embedding_projection.aggregate_embed." + n.substr(13);
  if (starts_with(n, "video_text_proj_in.")) return "text_embedding_projection.video_aggregate_embed." + n.substr(19);
  if (starts_with(n, "audio_text_proj_in.")) return "text_embedding_projection.audio_aggregate_embed." + n.substr(19);
  if (starts_with(n, "video_connector.")) n = "video_embeddings_connector." + n.substr(16);
  if (starts_with(n, "audio_connector.")) n = "audio_embeddings_connector." + n.substr(16);
  replace_all(&n, ".transformer_blocks.", ".transformer_1d_blocks.");
  replace_all(&n, ".norm_q.", ".q_norm.");
  replace_all(&n, ".norm_k.", ".k_norm.");
  return ltx2::kDiffusionPrefix + n;
}

Status write_ltx2_single_file(const std::string& path, const Ltx2TransformerConfig& t,
                              const Ltx2ConnectorsConfig& k, uint64_t seed, bool with_metadata) {
  return catch_to_status([&]() -> Status {
    NamedTensors all;
    for (const auto& [n, w] : ltx2_random_tensors(Ltx2Transformer::expected_tensors(t), seed)) {
      all.emplace_back(ltx2_original_transformer_name(n), w);
    }
    for (const auto& [n, w] : ltx2_random_tensors(Ltx2TextConnectors::expected_tensors(k), seed + 1)) {
      all.emplace_back(ltx2_original_connectors_name(n), w);
    }
    std::map<std::string, std::string> meta;
    if (with_metadata) meta["config"] = ltx2_original_config_json(t, k);
    return write_safetensors(path, all, meta);
  });
}

Status write_ltx2_small_model(const std::string& dir_str, uint64_t seed) {
  return catch_to_status([&]() -> Status {
    const fs::path dir(dir_str);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return invalid_argument_error(dir_str + ": cannot create: " + ec.message());
    if (!fs::is_empty(dir, ec)) return failed_precondition_error(dir_str + ": not empty");
    for (const char* sub : {"transformer", "connectors", "text_encoder", "tokenizer", "scheduler"}) {
      fs::create_directories(dir / sub);
    }

    // Tokenizer with Gemma's special ids (pad 0, eos 1, bos 2, unk 3).
    const fs::path corpus = dir / "tokenizer" / "corpus.txt";
    std::ofstream(corpus) << kCorpus;
    LTX_RETURN_IF_ERROR(train_sentencepiece(
        "--input=" + corpus.string() + " --model_prefix=" + (dir / "tokenizer" / "tokenizer").string() +
        " --vocab_size=" + std::to_string(kVocab) +
        " --model_type=unigram --character_coverage=1.0 --byte_fallback=true --pad_id=0 --eos_id=1 --bos_id=2"
        " --unk_id=3 --num_threads=1 --minloglevel=2"));
    fs::remove(corpus);
    fs::remove(dir / "tokenizer" / "tokenizer.vocab");
    LTX_RETURN_IF_ERROR(write_json(dir / "tokenizer" / "tokenizer_config.json",
                                   {{"tokenizer_class", "GemmaTokenizer"}, {"padding_side", "left"},
                                    {"pad_token", "<pad>"}, {"eos_token", "<eos>"}, {"bos_token", "<bos>"},
                                    {"unk_token", "<unk>"}, {"add_bos_token", true}, {"add_eos_token", false}}));

    // Text encoder: a tiny Gemma 3 text model (all hidden states feed the connectors).
    Gemma3Config g;
    g.vocab_size = kVocab;
    g.hidden_size = kGemmaHidden;
    g.intermediate_size = 64;
    g.num_hidden_layers = kGemmaLayers;
    g.num_attention_heads = 2;
    g.num_key_value_heads = 1;
    g.head_dim = 16;
    g.query_pre_attn_scalar = 16;
    g.sliding_window = 64;
    LTX_RETURN_IF_ERROR(write_json(dir / "text_encoder" / "config.json",
                                   {{"architectures", {"Gemma3ForCausalLM"}}, {"model_type", "gemma3_text"},
                                    {"vocab_size", g.vocab_size}, {"hidden_size", g.hidden_size},
                                    {"intermediate_size", g.intermediate_size},
                                    {"num_hidden_layers", g.num_hidden_layers},
                                    {"num_attention_heads", g.num_attention_heads},
                                    {"num_key_value_heads", g.num_key_value_heads}, {"head_dim", g.head_dim},
                                    {"query_pre_attn_scalar", g.query_pre_attn_scalar}, {"rms_norm_eps", 1e-6},
                                    {"sliding_window", g.sliding_window},
                                    {"layer_types", {"sliding_attention", "full_attention"}},
                                    {"rope_theta", 1000000.0}, {"rope_local_base_freq", 10000.0},
                                    {"hidden_activation", "gelu_pytorch_tanh"}, {"pad_token_id", 0},
                                    {"eos_token_id", 1}, {"bos_token_id", 2}}));
    NamedTensors gemma;
    for (const auto& [n, w] : ltx2_random_tensors(gemma3_expected_tensors(g), seed)) {
      // Gemma's norms are zero-centred (x * (1 + w)): small weights.
      gemma.emplace_back("model." + n, n.find("norm") != std::string::npos ? w - 1.0 : w);
    }
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "text_encoder" / "model.safetensors").string(), gemma));

    const Ltx2ConnectorsConfig k = ltx2_small_connectors_config();
    LTX_RETURN_IF_ERROR(write_json(dir / "connectors" / "config.json", connectors_json(k)));
    NamedTensors conn;
    for (const auto& [n, w] : ltx2_random_tensors(Ltx2TextConnectors::expected_tensors(k), seed + 1)) conn.emplace_back(n, w);
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "connectors" / "diffusion_pytorch_model.safetensors").string(), conn));

    const Ltx2TransformerConfig t = ltx2_small_transformer_config();
    LTX_RETURN_IF_ERROR(write_json(dir / "transformer" / "config.json", transformer_json(t)));
    NamedTensors dit;
    for (const auto& [n, w] : ltx2_random_tensors(Ltx2Transformer::expected_tensors(t), seed + 2)) dit.emplace_back(n, w);
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "transformer" / "diffusion_pytorch_model.safetensors").string(), dit));

    // Decoders: the LTX-2.0 structures, shrunk. Latent statistics are the identity.
    auto identity_stats = [](NamedTensors& out, int64_t n) {
      out.emplace_back("latents_mean", at::zeros({n}));
      out.emplace_back("latents_std", at::ones({n}));
    };
    auto without_stats = [](const std::vector<ExpectedTensor>& all) {
      std::vector<ExpectedTensor> out;
      for (const auto& e : all) {
        if (e.name != "latents_mean" && e.name != "latents_std") out.push_back(e);
      }
      return out;
    };
    for (const char* sub : {"vae", "audio_vae", "vocoder", "latent_upsampler"}) fs::create_directories(dir / sub);
    json vae_config = {{"_class_name", "AutoencoderKLLTX2Video"}, {"_diffusers_version", "0.40.0"},
                       {"in_channels", 3}, {"out_channels", 3}, {"latent_channels", t.in_channels},
                       {"block_out_channels", {16, 32, 64, 64}}, {"decoder_block_out_channels", {16, 32, 64}},
                       {"layers_per_block", {1, 1, 1, 1, 1}}, {"decoder_layers_per_block", {1, 1, 1, 1}},
                       {"spatio_temporal_scaling", {true, true, true, true}},
                       {"decoder_spatio_temporal_scaling", {true, true, true}},
                       {"decoder_inject_noise", {false, false, false, false}},
                       {"downsample_type", {"spatial", "temporal", "spatiotemporal", "spatiotemporal"}},
                       {"upsample_residual", {true, true, true}}, {"upsample_factor", {2, 2, 2}},
                       {"upsample_type", {"spatiotemporal", "spatiotemporal", "spatiotemporal"}},
                       {"timestep_conditioning", false}, {"patch_size", 4}, {"patch_size_t", 1},
                       {"resnet_norm_eps", 1e-6}, {"scaling_factor", 1.0}, {"encoder_causal", true},
                       {"decoder_causal", false}, {"decoder_spatial_padding_mode", "reflect"},
                       {"encoder_spatial_padding_mode", "zeros"}, {"spatial_compression_ratio", 32},
                       {"temporal_compression_ratio", 8}};
    LTX_RETURN_IF_ERROR(write_json(dir / "vae" / "config.json", vae_config));
    LTX_ASSIGN_OR_RETURN(VaeConfig vc, parse_vae_config(vae_config.dump(), "small LTX-2 vae"));
    NamedTensors vae;
    for (const auto& [n, w] : ltx2_random_tensors(without_stats(vae_expected_tensors(vc)), seed + 3)) vae.emplace_back(n, w);
    identity_stats(vae, vc.latent_channels);
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "vae" / "diffusion_pytorch_model.safetensors").string(), vae));

    // Audio: 4 latent channels x 4 latent mel bins = the transformer's 16 audio features.
    json audio_config = {{"_class_name", "AutoencoderKLLTX2Audio"}, {"_diffusers_version", "0.40.0"},
                         {"base_channels", t.audio_in_channels}, {"ch_mult", {1, 2, 2}}, {"num_res_blocks", 1},
                         {"latent_channels", 4}, {"output_channels", 2}, {"in_channels", 2}, {"mel_bins", 16},
                         {"norm_type", "pixel"}, {"causality_axis", "height"}, {"is_causal", true},
                         {"mid_block_add_attention", false}, {"attn_resolutions", nullptr}, {"double_z", true},
                         {"dropout", 0.0}, {"resolution", 256}, {"sample_rate", 16000}, {"mel_hop_length", 160}};
    LTX_RETURN_IF_ERROR(write_json(dir / "audio_vae" / "config.json", audio_config));
    LTX_ASSIGN_OR_RETURN(Ltx2AudioVaeConfig ac, parse_ltx2_audio_vae_config(audio_config.dump(), "small LTX-2 audio vae"));
    NamedTensors audio_vae;
    for (const auto& [n, w] : ltx2_random_tensors(without_stats(Ltx2AudioDecoder::expected_tensors(ac)), seed + 4)) {
      audio_vae.emplace_back(n, w);
    }
    identity_stats(audio_vae, ac.base_channels);
    LTX_RETURN_IF_ERROR(
        write_safetensors((dir / "audio_vae" / "diffusion_pytorch_model.safetensors").string(), audio_vae));

    // Vocoder: stereo 16-bin mel at 100 frames/s -> 24 kHz (x240), as the released one.
    json vocoder_config = {{"_class_name", "LTX2Vocoder"}, {"_diffusers_version", "0.40.0"},
                           {"in_channels", 2 * ac.mel_bins}, {"hidden_channels", 64}, {"out_channels", 2},
                           {"upsample_kernel_sizes", {16, 15, 8, 4, 4}}, {"upsample_factors", {6, 5, 2, 2, 2}},
                           {"resnet_kernel_sizes", {3, 7, 11}},
                           {"resnet_dilations", {{1, 3, 5}, {1, 3, 5}, {1, 3, 5}}}, {"act_fn", "leaky_relu"},
                           {"leaky_relu_negative_slope", 0.1}, {"antialias", false}, {"final_act_fn", "tanh"},
                           {"final_bias", true}, {"output_sampling_rate", 24000}};
    LTX_RETURN_IF_ERROR(write_json(dir / "vocoder" / "config.json", vocoder_config));
    LTX_ASSIGN_OR_RETURN(Ltx2VocoderConfig voc, parse_ltx2_vocoder_config(vocoder_config.dump(), "small LTX-2 vocoder"));
    NamedTensors vocoder;
    for (const auto& [n, w] : ltx2_random_tensors(Ltx2Vocoder::expected_tensors(voc), seed + 5)) vocoder.emplace_back(n, w);
    LTX_RETURN_IF_ERROR(write_safetensors((dir / "vocoder" / "diffusion_pytorch_model.safetensors").string(), vocoder));

    // Latent upsampler (x2 spatial, the 2.0 rational-resampler layout): loaded by subfolder, as diffusers
    // does; it makes the distilled two-stage pipeline available.
    json up_config = {{"_class_name", "LTX2LatentUpsamplerModel"}, {"_diffusers_version", "0.40.0"},
                      {"in_channels", t.in_channels}, {"mid_channels", 32}, {"num_blocks_per_stage", 1},
                      {"dims", 3}, {"spatial_upsample", true}, {"temporal_upsample", false},
                      {"rational_spatial_scale", 2.0}, {"use_rational_resampler", true}};
    LTX_RETURN_IF_ERROR(write_json(dir / "latent_upsampler" / "config.json", up_config));
    LTX_ASSIGN_OR_RETURN(Ltx2UpsamplerConfig uc, parse_ltx2_upsampler_config(up_config.dump(), "small LTX-2 upsampler"));
    NamedTensors upsampler;
    for (const auto& [n, w] : ltx2_random_tensors(Ltx2LatentUpsampler::expected_tensors(uc), seed + 6)) {
      upsampler.emplace_back(n, w);
    }
    LTX_RETURN_IF_ERROR(
        write_safetensors((dir / "latent_upsampler" / "diffusion_pytorch_model.safetensors").string(), upsampler));

    LTX_RETURN_IF_ERROR(write_json(dir / "scheduler" / "scheduler_config.json", json::parse(ltx_scheduler_config_json())));
    LTX_RETURN_IF_ERROR(write_json(dir / "model_index.json",
                                   {{"_class_name", "LTX2Pipeline"}, {"_diffusers_version", "0.40.0"},
                                    {"scheduler", {"diffusers", "FlowMatchEulerDiscreteScheduler"}},
                                    {"text_encoder", {"transformers", "Gemma3ForConditionalGeneration"}},
                                    {"tokenizer", {"transformers", "GemmaTokenizer"}},
                                    {"connectors", {"ltx2", "LTX2TextConnectors"}},
                                    {"transformer", {"diffusers", "LTX2VideoTransformer3DModel"}},
                                    {"vae", {"diffusers", "AutoencoderKLLTX2Video"}},
                                    {"audio_vae", {"diffusers", "AutoencoderKLLTX2Audio"}},
                                    {"vocoder", {"ltx2", "LTX2Vocoder"}}}));
    return Status();
  });
}

}  // namespace ltx::pipeline
