#include "pipeline/ltx2/ltx2_audio.h"

#include <filesystem>

#include "common/check.h"
#include "pipeline/io/json_fields.h"
#include "pipeline/io/model_config.h"
#include "pipeline/ltx2/ltx2_layers.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

namespace {

constexpr double kPixelNormEps = 1e-6;

// Causal along time (axis 2): k-1 zero rows before, none after; (k-1)/2 on both
// sides of the mel axis.
at::Tensor causal_conv2d(const at::Tensor& x, const LinearWeights& w) {
  const int64_t k = w.weight.size(2);
  at::Tensor p = k > 1 ? at::constant_pad_nd(x, {(k - 1) / 2, (k - 1) - (k - 1) / 2, k - 1, 0}) : x;
  return at::conv2d(p, w.weight, w.bias.defined() ? c10::optional<at::Tensor>(w.bias) : c10::nullopt);
}

at::Tensor pixel_norm(const at::Tensor& x) { return x / at::sqrt(x.pow(2).mean(1, /*keepdim=*/true) + kPixelNormEps); }

LinearWeights conv(std::map<std::string, at::Tensor>& w, const std::string& p) { return LinearWeights::take(w, p); }

// The layout of one configured decoder: (level, block) input/output widths.
struct Level {
  int64_t level = 0;
  std::vector<std::pair<int64_t, int64_t>> blocks;  // (in, out)
  bool upsample = false;
  int64_t out = 0;
};

std::vector<Level> decoder_levels(const Ltx2AudioVaeConfig& c) {
  std::vector<Level> levels;
  int64_t in = c.base_channels * c.ch_mult.back();
  for (int64_t level = static_cast<int64_t>(c.ch_mult.size()) - 1; level >= 0; --level) {
    Level l;
    l.level = level;
    l.out = c.base_channels * c.ch_mult[level];
    for (int64_t i = 0; i <= c.num_res_blocks; ++i) {
      l.blocks.emplace_back(in, l.out);
      in = l.out;
    }
    l.upsample = level != 0;
    levels.push_back(l);
  }
  return levels;
}

}  // namespace

// ---------------------------------------------------------------------------
// Configs

int64_t Ltx2VocoderConfig::hop() const {
  int64_t h = 1;
  for (int64_t f : upsample_factors) h *= f;
  return h;
}

Result<Ltx2AudioVaeConfig> parse_ltx2_audio_vae_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(auto j, parse_json_object(text, source));
  Ltx2AudioVaeConfig c;
  FieldReader r(j, source);
  r.integer("base_channels", &c.base_channels, 1);
  r.int_list("ch_mult", &c.ch_mult, 1);
  r.integer("num_res_blocks", &c.num_res_blocks, 0);
  r.integer("latent_channels", &c.latent_channels, 1);
  r.integer("output_channels", &c.output_channels, 1);
  r.integer("mel_bins", &c.mel_bins, 1);
  r.integer("sample_rate", &c.sample_rate, 1);
  r.integer("mel_hop_length", &c.mel_hop_length, 1);
  std::string norm = "pixel", causality = "height";
  r.string("norm_type", &norm, {"pixel"});
  r.string("causality_axis", &causality, {"height"});
  bool mid_attention = false;
  r.boolean("mid_block_add_attention", &mid_attention);
  r.require(!mid_attention, "mid_block_add_attention", "must be false (no LTX-2 audio VAE has attention)");
  r.require(!r.has("attn_resolutions") || j["attn_resolutions"].empty(), "attn_resolutions",
            "must be null (no LTX-2 audio VAE has attention)");
  r.require(!c.ch_mult.empty(), "ch_mult", "must not be empty");
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

Result<Ltx2VocoderConfig> parse_ltx2_vocoder_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(auto j, parse_json_object(text, source));
  Ltx2VocoderConfig c;
  FieldReader r(j, source);
  std::string cls = "LTX2Vocoder";
  r.string("_class_name", &cls);
  if (cls == "LTX2VocoderWithBWE") {
    return unimplemented_error(source + ": the LTX-2.3 bandwidth-extension vocoder (LTX2VocoderWithBWE) is not "
                                        "supported yet; only the LTX-2.0 vocoder is");
  }
  r.integer("in_channels", &c.in_channels, 1);
  r.integer("hidden_channels", &c.hidden_channels, 1);
  r.integer("out_channels", &c.out_channels, 1);
  r.int_list("upsample_kernel_sizes", &c.upsample_kernel_sizes, 1);
  r.int_list("upsample_factors", &c.upsample_factors, 1);
  r.int_list("resnet_kernel_sizes", &c.resnet_kernel_sizes, 1);
  if (j.contains("resnet_dilations") && j["resnet_dilations"].is_array()) {
    c.resnet_dilations.clear();
    for (const auto& d : j["resnet_dilations"]) {
      if (!d.is_array()) {
        r.fail("resnet_dilations", "must be a list of lists of integers");
        break;
      }
      c.resnet_dilations.push_back(d.get<std::vector<int64_t>>());
    }
  }
  std::string act = "leaky_relu";
  r.string("act_fn", &act, {"leaky_relu"});
  bool antialias = false;
  r.boolean("antialias", &antialias);
  r.require(!antialias, "antialias", "must be false (only the LTX-2.0 vocoder is supported)");
  r.number("leaky_relu_negative_slope", &c.leaky_relu_negative_slope);
  if (j.contains("final_act_fn") && j["final_act_fn"].is_null()) {
    c.final_act_fn = "";
  } else {
    r.string("final_act_fn", &c.final_act_fn, {"tanh", "clamp"});
  }
  r.boolean("final_bias", &c.final_bias);
  r.integer("output_sampling_rate", &c.output_sampling_rate, 1);
  r.require(c.upsample_factors.size() == c.upsample_kernel_sizes.size(), "upsample_factors",
            "must have as many entries as upsample_kernel_sizes");
  r.require(c.resnet_kernel_sizes.size() == c.resnet_dilations.size(), "resnet_dilations",
            "must have as many entries as resnet_kernel_sizes");
  for (size_t i = 0; i < c.upsample_factors.size() && i < c.upsample_kernel_sizes.size(); ++i) {
    r.require((c.upsample_kernel_sizes[i] - c.upsample_factors[i]) % 2 == 0, "upsample_kernel_sizes",
              "minus the factor must be even (the length must grow exactly by the factor)");
  }
  r.require(c.hidden_channels >> c.upsample_factors.size() >= 1, "hidden_channels",
            "must stay at least 1 after halving once per upsampler");
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

// ---------------------------------------------------------------------------
// Audio VAE decoder

struct ResBlockWeights {
  LinearWeights conv1, conv2, shortcut;  // shortcut undefined when widths match
};

struct Ltx2AudioDecoder::Weights {
  LinearWeights conv_in, conv_out;
  ResBlockWeights mid1, mid2;
  std::vector<std::vector<ResBlockWeights>> levels;  // in decoding order (top level first)
  std::vector<LinearWeights> upsample;                // per decoding-order level; undefined for level 0
};

std::vector<ExpectedTensor> Ltx2AudioDecoder::expected_tensors(const Ltx2AudioVaeConfig& c) {
  std::vector<ExpectedTensor> out;
  auto conv = [&out](const std::string& n, int64_t o, int64_t i, int64_t k) {
    out.push_back({n + ".conv.weight", {o, i, k, k}});
    out.push_back({n + ".conv.bias", {o}});
  };
  auto block = [&](const std::string& n, int64_t in, int64_t o) {
    conv(n + ".conv1", o, in, 3);
    conv(n + ".conv2", o, o, 3);
    if (in != o) conv(n + ".nin_shortcut", o, in, 1);
  };
  const int64_t top = c.base_channels * c.ch_mult.back();
  conv("decoder.conv_in", top, c.latent_channels, 3);
  block("decoder.mid.block_1", top, top);
  block("decoder.mid.block_2", top, top);
  for (const Level& l : decoder_levels(c)) {
    for (size_t i = 0; i < l.blocks.size(); ++i) {
      block("decoder.up." + std::to_string(l.level) + ".block." + std::to_string(i), l.blocks[i].first,
            l.blocks[i].second);
    }
    if (l.upsample) conv("decoder.up." + std::to_string(l.level) + ".upsample.conv", l.out, l.out, 3);
  }
  conv("decoder.conv_out", c.output_channels, c.base_channels * c.ch_mult.front(), 3);
  out.push_back({"latents_mean", {c.base_channels}});
  out.push_back({"latents_std", {c.base_channels}});
  return out;
}

Result<Ltx2AudioDecoder> Ltx2AudioDecoder::from_checkpoint(const Ltx2AudioVaeConfig& c, const SafetensorsCheckpoint& ckpt,
                                                           at::ScalarType dtype, const at::Device& device) {
  NameMapper mapper = [](const std::string& raw) -> std::optional<std::string> {
    std::string n = raw;
    if (starts_with(n, "audio_vae.")) n = n.substr(10);
    if (n == "per_channel_statistics.mean-of-means") return std::string("latents_mean");
    if (n == "per_channel_statistics.std-of-means") return std::string("latents_std");
    if (starts_with(n, "decoder.") || n == "latents_mean" || n == "latents_std") return n;
    return std::nullopt;  // the encoder, other statistics, other components
  };
  LTX_ASSIGN_OR_RETURN(auto loaded,
                       load_expected_tensors(ckpt, expected_tensors(c), mapper, "the LTX-2 audio VAE decoder", dtype, device));
  Ltx2AudioDecoder d;
  d.weights_ = tensors_of(loaded);
  d.config_ = c;
  d.dtype_ = dtype;
  d.device_ = device;
  auto w = std::make_shared<Weights>();
  auto block = [&](const std::string& n) {
    ResBlockWeights b;
    b.conv1 = conv(loaded, n + ".conv1.conv");
    b.conv2 = conv(loaded, n + ".conv2.conv");
    b.shortcut = conv(loaded, n + ".nin_shortcut.conv");
    return b;
  };
  w->conv_in = conv(loaded, "decoder.conv_in.conv");
  w->mid1 = block("decoder.mid.block_1");
  w->mid2 = block("decoder.mid.block_2");
  for (const Level& l : decoder_levels(c)) {
    std::vector<ResBlockWeights> blocks;
    for (size_t i = 0; i < l.blocks.size(); ++i) {
      blocks.push_back(block("decoder.up." + std::to_string(l.level) + ".block." + std::to_string(i)));
    }
    w->levels.push_back(std::move(blocks));
    w->upsample.push_back(l.upsample ? conv(loaded, "decoder.up." + std::to_string(l.level) + ".upsample.conv.conv")
                                     : LinearWeights{});
  }
  w->conv_out = conv(loaded, "decoder.conv_out.conv");
  d.mean_ = take_tensor(loaded, "latents_mean");
  d.std_ = take_tensor(loaded, "latents_std");
  if (!loaded.empty()) return internal_error("tensor '" + loaded.begin()->first + "' left over in the audio decoder");
  d.w_ = std::move(w);
  return d;
}

Result<Ltx2AudioDecoder> Ltx2AudioDecoder::load(const std::string& path, at::ScalarType dtype, const at::Device& device) {
  std::error_code ec;
  Ltx2AudioVaeConfig config;  // single files: the released structure, checked tensor by tensor
  if (fs::is_directory(path, ec)) {
    LTX_ASSIGN_OR_RETURN(std::string text, read_text_file((fs::path(path) / "config.json").string()));
    LTX_ASSIGN_OR_RETURN(config, parse_ltx2_audio_vae_config(text, (fs::path(path) / "config.json").string()));
  }
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
  return from_checkpoint(config, ckpt, dtype, device);
}

at::Tensor Ltx2AudioDecoder::decode(const at::Tensor& z) const {
  const Ltx2AudioVaeConfig& c = config_;
  LTX_CHECK(z.dim() == 4 && z.size(1) == c.latent_channels, "audio latents must be [B, ", c.latent_channels,
            ", T, M], got ", z.sizes());
  const int64_t frames = z.size(2);
  auto res = [](const ResBlockWeights& b, const at::Tensor& x) {
    at::Tensor h = causal_conv2d(at::silu(pixel_norm(x)), b.conv1);
    h = causal_conv2d(at::silu(pixel_norm(h)), b.conv2);
    return (b.shortcut.weight.defined() ? causal_conv2d(x, b.shortcut) : x) + h;
  };
  at::Tensor h = causal_conv2d(z.to(device_, dtype_), w_->conv_in);
  h = res(w_->mid2, res(w_->mid1, h));
  for (size_t l = 0; l < w_->levels.size(); ++l) {
    for (const auto& b : w_->levels[l]) h = res(b, h);
    if (w_->upsample[l].weight.defined()) {
      // Nearest x2 on both axes, causal conv, then the first time row goes: [t, f] -> [2t - 1, 2f].
      const int64_t t2 = 2 * h.size(2);
      h = at::upsample_nearest2d(h, {t2, h.size(3) * 2});
      h = causal_conv2d(h, w_->upsample[l]).narrow(2, 1, t2 - 1);
    }
  }
  h = causal_conv2d(at::silu(pixel_norm(h)), w_->conv_out);
  const int64_t t = std::max<int64_t>(frames * Ltx2AudioVaeConfig::kTimeCompression -
                                          (Ltx2AudioVaeConfig::kTimeCompression - 1), 1);
  h = h.narrow(2, 0, std::min(t, h.size(2))).narrow(3, 0, std::min(c.mel_bins, h.size(3)));
  if (h.size(2) < t || h.size(3) < c.mel_bins) {
    h = at::constant_pad_nd(h, {0, c.mel_bins - h.size(3), 0, t - h.size(2)});
  }
  return h.to(at::kFloat);
}

// ---------------------------------------------------------------------------
// Vocoder

std::vector<ExpectedTensor> Ltx2Vocoder::expected_tensors(const Ltx2VocoderConfig& c) {
  std::vector<ExpectedTensor> out;
  auto conv = [&out](const std::string& n, std::vector<int64_t> shape, bool bias) {
    const int64_t o = shape[0];
    out.push_back({n + ".weight", std::move(shape)});
    if (bias) out.push_back({n + ".bias", {o}});
  };
  conv("conv_in", {c.hidden_channels, c.in_channels, 7}, true);
  int64_t ch = c.hidden_channels;
  int64_t r = 0;
  for (size_t i = 0; i < c.upsample_factors.size(); ++i) {
    out.push_back({"upsamplers." + std::to_string(i) + ".weight", {ch, ch / 2, c.upsample_kernel_sizes[i]}});
    out.push_back({"upsamplers." + std::to_string(i) + ".bias", {ch / 2}});
    ch /= 2;
    for (size_t k = 0; k < c.resnet_kernel_sizes.size(); ++k, ++r) {
      for (size_t d = 0; d < c.resnet_dilations[k].size(); ++d) {
        for (const char* which : {"convs1", "convs2"}) {
          conv("resnets." + std::to_string(r) + "." + which + "." + std::to_string(d),
               {ch, ch, c.resnet_kernel_sizes[k]}, true);
        }
      }
    }
  }
  conv("conv_out", {c.out_channels, ch, 7}, c.final_bias);
  return out;
}

Result<Ltx2Vocoder> Ltx2Vocoder::from_checkpoint(const Ltx2VocoderConfig& c, const SafetensorsCheckpoint& ckpt,
                                                 at::ScalarType dtype, const at::Device& device) {
  for (const auto& n : ckpt.names()) {
    if (n.find("bwe") != std::string::npos) {
      return unimplemented_error(ckpt.source() + ": tensor '" + n + "' belongs to the LTX-2.3 bandwidth-extension "
                                                 "vocoder, which is not supported yet; only the LTX-2.0 vocoder is");
    }
  }
  NameMapper mapper = [](const std::string& raw) -> std::optional<std::string> {
    std::string n = raw;
    if (starts_with(n, "vocoder.")) {
      n = n.substr(8);
    } else if (starts_with(n, "model.") || starts_with(n, "vae.") || starts_with(n, "audio_vae.") ||
               starts_with(n, "text_embedding_projection.")) {
      return std::nullopt;  // other components of a single file
    }
    if (starts_with(n, "conv_pre.")) n = "conv_in." + n.substr(9);
    if (starts_with(n, "conv_post.")) n = "conv_out." + n.substr(10);
    if (starts_with(n, "ups.")) n = "upsamplers." + n.substr(4);
    if (starts_with(n, "resblocks.")) n = "resnets." + n.substr(10);
    return n;
  };
  LTX_ASSIGN_OR_RETURN(auto loaded,
                       load_expected_tensors(ckpt, expected_tensors(c), mapper, "the LTX-2 vocoder", dtype, device));
  Ltx2Vocoder v;
  v.weights_ = tensors_of(loaded);
  v.config_ = c;
  v.w_ = std::move(loaded);
  v.dtype_ = dtype;
  v.device_ = device;
  return v;
}

Result<Ltx2Vocoder> Ltx2Vocoder::load(const std::string& path, at::ScalarType dtype, const at::Device& device) {
  std::error_code ec;
  Ltx2VocoderConfig config;  // single files: the released 2.0 structure, checked tensor by tensor
  if (fs::is_directory(path, ec)) {
    LTX_ASSIGN_OR_RETURN(std::string text, read_text_file((fs::path(path) / "config.json").string()));
    LTX_ASSIGN_OR_RETURN(config, parse_ltx2_vocoder_config(text, (fs::path(path) / "config.json").string()));
  }
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
  return from_checkpoint(config, ckpt, dtype, device);
}

at::Tensor Ltx2Vocoder::forward(const at::Tensor& mel) const {
  const Ltx2VocoderConfig& c = config_;
  LTX_CHECK(mel.dim() == 4 && mel.size(1) * mel.size(3) == c.in_channels, "mel must be [B, C, T, M] with C x M = ",
            c.in_channels, ", got ", mel.sizes());
  auto weight = [this](const std::string& n) { return w_.at(n + ".weight"); };
  auto bias = [this](const std::string& n) -> c10::optional<at::Tensor> {
    auto it = w_.find(n + ".bias");
    return it == w_.end() ? c10::nullopt : c10::optional<at::Tensor>(it->second);
  };
  auto conv1d = [&](const at::Tensor& x, const std::string& n, int64_t dilation) {
    const int64_t k = weight(n).size(2);
    return at::conv1d(x, weight(n), bias(n), 1, dilation * (k - 1) / 2, dilation);
  };
  const double slope = c.leaky_relu_negative_slope;
  // [B, C, T, M] -> [B, C, M, T] -> [B, C*M, T] (channel c*M + m)
  at::Tensor x = mel.to(device_, dtype_).transpose(2, 3).flatten(1, 2);
  x = conv1d(x, "conv_in", 1);
  int64_t r = 0;
  for (size_t i = 0; i < c.upsample_factors.size(); ++i) {
    x = at::leaky_relu(x, slope);
    const std::string up = "upsamplers." + std::to_string(i);
    const int64_t k = c.upsample_kernel_sizes[i], s = c.upsample_factors[i];
    x = at::conv_transpose1d(x, weight(up), bias(up), s, (k - s) / 2);
    at::Tensor sum;
    for (size_t kk = 0; kk < c.resnet_kernel_sizes.size(); ++kk, ++r) {
      at::Tensor y = x;
      for (size_t d = 0; d < c.resnet_dilations[kk].size(); ++d) {
        const std::string p = "resnets." + std::to_string(r) + ".";
        at::Tensor t = conv1d(at::leaky_relu(y, slope), p + "convs1." + std::to_string(d), c.resnet_dilations[kk][d]);
        t = conv1d(at::leaky_relu(t, slope), p + "convs2." + std::to_string(d), 1);
        y = y + t;
      }
      sum = sum.defined() ? sum + y : y;
    }
    x = sum / static_cast<double>(c.resnet_kernel_sizes.size());
  }
  x = conv1d(at::leaky_relu(x, 0.01), "conv_out", 1);  // nn.LeakyReLU() default slope
  if (c.final_act_fn == "tanh") x = at::tanh(x);
  if (c.final_act_fn == "clamp") x = x.clamp(-1, 1);
  return x.to(at::kFloat);
}

}  // namespace ltx::pipeline
