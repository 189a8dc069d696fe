#include "pipeline/ltx2/ltx2_latent_upsampler.h"

#include <filesystem>

#include "common/check.h"
#include "pipeline/io/json_fields.h"
#include "pipeline/io/model_config.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

namespace {

constexpr int64_t kGroups = 32;
constexpr double kGroupNormEps = 1e-5;

std::string upsampler_conv(const Ltx2UpsamplerConfig& c) {
  return c.use_rational_resampler ? "upsampler.conv" : "upsampler.0";
}

}  // namespace

Result<Ltx2UpsamplerConfig> parse_ltx2_upsampler_config(const std::string& text, const std::string& source) {
  LTX_ASSIGN_OR_RETURN(auto j, parse_json_object(text, source));
  Ltx2UpsamplerConfig c;
  FieldReader r(j, source);
  r.integer("in_channels", &c.in_channels, 1);
  r.integer("mid_channels", &c.mid_channels, 1);
  r.integer("num_blocks_per_stage", &c.num_blocks_per_stage, 0);
  r.boolean("use_rational_resampler", &c.use_rational_resampler);
  int64_t dims = 3;
  r.integer("dims", &dims);
  r.require(dims == 3, "dims", "must be 3 (the released upsamplers use 3-D convolutions)");
  bool spatial = true, temporal = false;
  r.boolean("spatial_upsample", &spatial);
  r.boolean("temporal_upsample", &temporal);
  r.require(spatial && !temporal, "temporal_upsample",
            "must be false and spatial_upsample true (only the x2 spatial upsampler is supported)");
  double scale = 2.0;
  r.number("rational_spatial_scale", &scale);
  r.require(!c.use_rational_resampler || scale == 2.0, "rational_spatial_scale", "must be 2.0 (x2 upsampling)");
  r.require(c.mid_channels % kGroups == 0, "mid_channels", "must be a multiple of 32 (GroupNorm groups)");
  LTX_RETURN_IF_ERROR(r.status());
  return c;
}

std::vector<ExpectedTensor> Ltx2LatentUpsampler::expected_tensors(const Ltx2UpsamplerConfig& c) {
  std::vector<ExpectedTensor> out;
  const int64_t m = c.mid_channels;
  auto conv = [&out](const std::string& n, std::vector<int64_t> shape) {
    const int64_t o = shape[0];
    out.push_back({n + ".weight", std::move(shape)});
    out.push_back({n + ".bias", {o}});
  };
  auto norm = [&out](const std::string& n, int64_t ch) {
    out.push_back({n + ".weight", {ch}});
    out.push_back({n + ".bias", {ch}});
  };
  auto blocks = [&](const std::string& p) {
    for (int64_t i = 0; i < c.num_blocks_per_stage; ++i) {
      const std::string b = p + "." + std::to_string(i) + ".";
      conv(b + "conv1", {m, m, 3, 3, 3});
      norm(b + "norm1", m);
      conv(b + "conv2", {m, m, 3, 3, 3});
      norm(b + "norm2", m);
    }
  };
  conv("initial_conv", {m, c.in_channels, 3, 3, 3});
  norm("initial_norm", m);
  blocks("res_blocks");
  conv(upsampler_conv(c), {4 * m, m, 3, 3});
  if (c.use_rational_resampler) out.push_back({"upsampler.blur_down.kernel", {1, 1, 5, 5}});
  blocks("post_upsample_res_blocks");
  conv("final_conv", {c.in_channels, m, 3, 3, 3});
  return out;
}

Result<Ltx2LatentUpsampler> Ltx2LatentUpsampler::from_checkpoint(const Ltx2UpsamplerConfig& c,
                                                                 const SafetensorsCheckpoint& ckpt,
                                                                 at::ScalarType dtype, const at::Device& device) {
  NameMapper identity = [](const std::string& n) -> std::optional<std::string> { return n; };
  LTX_ASSIGN_OR_RETURN(auto loaded, load_expected_tensors(ckpt, expected_tensors(c), identity,
                                                          "the LTX-2 latent upsampler", dtype, device));
  Ltx2LatentUpsampler u;
  u.weights_ = tensors_of(loaded);
  u.config_ = c;
  u.w_ = std::move(loaded);
  u.w_.erase("upsampler.blur_down.kernel");  // stride 1: the blur is the identity
  u.dtype_ = dtype;
  u.device_ = device;
  return u;
}

Result<Ltx2LatentUpsampler> Ltx2LatentUpsampler::load(const std::string& path, at::ScalarType dtype,
                                                      const at::Device& device) {
  std::error_code ec;
  Ltx2UpsamplerConfig config;
  if (fs::is_directory(path, ec)) {
    const std::string cfg = (fs::path(path) / "config.json").string();
    LTX_ASSIGN_OR_RETURN(std::string text, read_text_file(cfg));
    LTX_ASSIGN_OR_RETURN(config, parse_ltx2_upsampler_config(text, cfg));
    LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
    return from_checkpoint(config, ckpt, dtype, device);
  }
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(path));
  auto meta = ckpt.metadata().find("config");
  if (meta != ckpt.metadata().end()) {
    LTX_ASSIGN_OR_RETURN(config, parse_ltx2_upsampler_config(meta->second, path + " (metadata 'config')"));
  } else if (ckpt.contains("upsampler.0.weight")) {
    config.use_rational_resampler = false;  // the 2.3 layout
  }
  return from_checkpoint(config, ckpt, dtype, device);
}

at::Tensor Ltx2LatentUpsampler::forward(const at::Tensor& latents) const {
  const Ltx2UpsamplerConfig& c = config_;
  LTX_CHECK(latents.dim() == 5 && latents.size(1) == c.in_channels, "latents must be [B, ", c.in_channels,
            ", F, H, W], got ", latents.sizes());
  auto conv3 = [this](const at::Tensor& x, const std::string& n) {
    return at::conv3d(x, w_.at(n + ".weight"), w_.at(n + ".bias"), 1, 1);
  };
  auto gn = [this](const at::Tensor& x, const std::string& n) {
    return at::group_norm(x, kGroups, w_.at(n + ".weight"), w_.at(n + ".bias"), kGroupNormEps);
  };
  auto blocks = [&](at::Tensor x, const std::string& p) {
    for (int64_t i = 0; i < c.num_blocks_per_stage; ++i) {
      const std::string b = p + "." + std::to_string(i) + ".";
      at::Tensor r = x;
      x = at::silu(gn(conv3(x, b + "conv1"), b + "norm1"));
      x = at::silu(gn(conv3(x, b + "conv2"), b + "norm2") + r);
    }
    return x;
  };
  const int64_t b = latents.size(0), f = latents.size(2);
  at::Tensor x = latents.to(device_, dtype_);
  x = at::silu(gn(conv3(x, "initial_conv"), "initial_norm"));
  x = blocks(x, "res_blocks");
  // Per frame: conv to 4x channels, pixel shuffle (channel c*4 + dh*2 + dw -> (2h+dh, 2w+dw)).
  x = x.permute({0, 2, 1, 3, 4}).flatten(0, 1);
  const std::string up = upsampler_conv(c);
  x = at::conv2d(x, w_.at(up + ".weight"), w_.at(up + ".bias"), 1, 1);
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  x = x.view({n, c.mid_channels, 2, 2, h, w}).permute({0, 1, 4, 2, 5, 3}).reshape({n, c.mid_channels, 2 * h, 2 * w});
  x = x.view({b, f, c.mid_channels, 2 * h, 2 * w}).permute({0, 2, 1, 3, 4}).contiguous();
  x = blocks(x, "post_upsample_res_blocks");
  return conv3(x, "final_conv").to(at::kFloat);
}

}  // namespace ltx::pipeline
