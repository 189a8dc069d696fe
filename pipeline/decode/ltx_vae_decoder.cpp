#include "pipeline/decode/ltx_vae_decoder.h"

#include <array>
#include <filesystem>

#include "common/check.h"
#include "dist/communicator.h"
#include "pipeline/nn/embeddings.h"

namespace ltx::pipeline {
namespace fs = std::filesystem;

namespace {

constexpr double kPixelNormEps = 1e-8;

// The decoder's structure from its config, in diffusers order (the config
// lists are in encoder order and reversed here).
struct Layout {
  struct Block {
    int64_t in = 0, out = 0, layers = 0, factor = 1;
    bool upsample = false, residual = false, noise = false;
    std::array<int64_t, 3> stride = {2, 2, 2};
    int64_t volume() const { return stride[0] * stride[1] * stride[2]; }
  };
  int64_t first = 0;  // conv_in width = mid block width
  int64_t mid_layers = 0;
  bool mid_noise = false;
  std::vector<Block> blocks;
  int64_t last = 0;  // width entering conv_out
};

Layout layout_of(const VaeConfig& c) {
  auto rev = [](auto v) {
    std::reverse(v.begin(), v.end());
    return v;
  };
  auto channels = rev(c.decoder_block_out_channels);
  auto scaling = rev(c.decoder_spatio_temporal_scaling);
  auto layers = rev(c.decoder_layers_per_block);
  auto noise = rev(c.decoder_inject_noise);
  auto residual = rev(c.upsample_residual);
  auto factor = rev(c.upsample_factor);
  Layout l;
  int64_t out = channels[0];
  l.first = out;
  l.mid_layers = layers[0];
  l.mid_noise = noise[0];
  for (size_t i = 0; i < channels.size(); ++i) {
    Layout::Block b;
    b.in = out / factor[i];
    b.out = channels[i] / factor[i];
    b.layers = layers[i + 1];
    b.factor = factor[i];
    b.upsample = scaling[i];
    b.residual = residual[i];
    b.noise = noise[i + 1];
    const std::string type = i < c.upsample_type.size() ? c.upsample_type[i] : "spatiotemporal";
    if (type == "temporal") b.stride = {2, 1, 1};
    if (type == "spatial") b.stride = {1, 2, 2};
    out = b.out;
    l.blocks.push_back(b);
  }
  l.last = out;
  return l;
}

void add_conv(std::vector<ExpectedTensor>& e, const std::string& n, int64_t out, int64_t in, int64_t k) {
  e.push_back({n + ".weight", {out, in, k, k, k}});
  e.push_back({n + ".bias", {out}});
}

// The shortcut conv of a width-changing block: LTX-Video wraps it like every
// conv (`conv_shortcut.conv.*`), LTX-2 uses a plain Conv3d (`conv_shortcut.*`).
std::string shortcut_name(const VaeConfig& c, const std::string& p) {
  return p + (c.ltx2 ? ".conv_shortcut" : ".conv_shortcut.conv");
}

void add_res(std::vector<ExpectedTensor>& e, const VaeConfig& c, const std::string& p, int64_t in, int64_t out,
             bool tc, bool noise) {
  add_conv(e, p + ".conv1.conv", out, in, 3);
  add_conv(e, p + ".conv2.conv", out, out, 3);
  if (in != out) {
    e.push_back({p + ".norm3.weight", {in}});
    e.push_back({p + ".norm3.bias", {in}});
    add_conv(e, shortcut_name(c, p), out, in, 1);
  }
  if (tc) e.push_back({p + ".scale_shift_table", {4, in}});
  if (noise) {
    e.push_back({p + ".per_channel_scale1", {in, 1, 1}});
    e.push_back({p + ".per_channel_scale2", {in, 1, 1}});
  }
}

void add_embedder(std::vector<ExpectedTensor>& e, const std::string& p, int64_t width) {
  e.push_back({p + ".timestep_embedder.linear_1.weight", {width, 256}});
  e.push_back({p + ".timestep_embedder.linear_1.bias", {width}});
  e.push_back({p + ".timestep_embedder.linear_2.weight", {width, width}});
  e.push_back({p + ".timestep_embedder.linear_2.bias", {width}});
}

std::vector<ExpectedTensor> expected(const VaeConfig& c, const Layout& l) {
  const bool tc = c.timestep_conditioning;
  std::vector<ExpectedTensor> e;
  add_conv(e, "decoder.conv_in.conv", l.first, c.latent_channels, 3);
  if (tc) add_embedder(e, "decoder.mid_block.time_embedder", 4 * l.first);
  for (int64_t i = 0; i < l.mid_layers; ++i) {
    add_res(e, c, "decoder.mid_block.resnets." + std::to_string(i), l.first, l.first, tc, l.mid_noise);
  }
  for (size_t i = 0; i < l.blocks.size(); ++i) {
    const auto& b = l.blocks[i];
    const std::string p = "decoder.up_blocks." + std::to_string(i);
    if (b.in != b.out) add_res(e, c, p + ".conv_in", b.in, b.out, tc, b.noise);
    if (tc) add_embedder(e, p + ".time_embedder", 4 * b.in);
    if (b.upsample) add_conv(e, p + ".upsamplers.0.conv.conv", b.out * b.volume(), b.out * b.factor, 3);
    for (int64_t j = 0; j < b.layers; ++j) add_res(e, c, p + ".resnets." + std::to_string(j), b.out, b.out, tc, b.noise);
  }
  add_conv(e, "decoder.conv_out.conv", c.out_channels * c.patch_size * c.patch_size, l.last, 3);
  if (tc) {
    add_embedder(e, "decoder.time_embedder", 2 * l.last);
    e.push_back({"decoder.scale_shift_table", {2, l.last}});
    e.push_back({"decoder.timestep_scale_multiplier", {}});
  }
  e.push_back({"latents_mean", {c.latent_channels}});
  e.push_back({"latents_std", {c.latent_channels}});
  return e;
}

// Pixel norm over the channel axis (dim 1), statistics in fp32.
at::Tensor pixel_norm(const at::Tensor& x) {
  at::Tensor xf = x.to(at::kFloat);
  return (xf * at::rsqrt(xf.pow(2).mean(1, /*keepdim=*/true) + kPixelNormEps)).to(x.scalar_type());
}

// [B, C*st*sh*sw, F, H, W] -> [B, C, st*F, sh*H, sw*W]: channel (c, dt, dh, dw)
// goes to (st*f+dt, sh*h+dh, sw*w+dw).
at::Tensor depth_to_space(const at::Tensor& x, const std::array<int64_t, 3>& s) {
  const int64_t b = x.size(0), f = x.size(2), h = x.size(3), w = x.size(4);
  return x.reshape({b, -1, s[0], s[1], s[2], f, h, w})
      .permute({0, 1, 5, 2, 6, 3, 7, 4})
      .reshape({b, -1, s[0] * f, s[1] * h, s[2] * w});
}

}  // namespace

std::vector<ExpectedTensor> vae_expected_tensors(const VaeConfig& config) {
  return expected(config, layout_of(config));
}

Result<LtxVaeDecoder> LtxVaeDecoder::load(const std::string& folder, at::ScalarType dtype, const at::Device& device) {
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    return invalid_argument_error(folder + ": expected a diffusers vae/ folder (config.json + weights); "
                                  "single-file checkpoints are not supported for the VAE yet");
  }
  LTX_ASSIGN_OR_RETURN(auto config, load_vae_config((fs::path(folder) / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto ckpt, SafetensorsCheckpoint::open(folder));
  return from_checkpoint(config, ckpt, dtype, device);
}

Result<LtxVaeDecoder> LtxVaeDecoder::from_checkpoint(const VaeConfig& config, const SafetensorsCheckpoint& ckpt,
                                                     at::ScalarType dtype, const at::Device& device) {
  if (dtype != at::kFloat && dtype != at::kBFloat16) {
    return invalid_argument_error(std::string("the VAE runs in float32 or bfloat16, got ") + c10::toString(dtype));
  }
  if (config.patch_size_t != 1) return invalid_argument_error("VAE patch_size_t must be 1");
  const Layout l = layout_of(config);
  NameMapper mapper = [](const std::string& raw) -> std::optional<std::string> {
    if (raw.rfind("encoder.", 0) == 0) return std::nullopt;  // the decoder does not need the encoder
    return raw;
  };
  LTX_ASSIGN_OR_RETURN(auto loaded, load_expected_tensors(ckpt, expected(config, l), mapper,
                                                          "an LTX video VAE decoder", dtype, device));
  LtxVaeDecoder d;
  for (const auto& [name, t] : loaded) {
    if (name != "latents_mean" && name != "latents_std") d.weights_.push_back(t);
  }
  d.config_ = config;
  d.dtype_ = dtype;
  d.device_ = device;
  auto conv = [&loaded](const std::string& n) {
    return Conv{take_tensor(loaded, n + ".weight"), take_tensor(loaded, n + ".bias")};
  };
  auto res = [&](const std::string& p) {
    ResBlock r;
    r.conv1 = conv(p + ".conv1.conv");
    r.conv2 = conv(p + ".conv2.conv");
    r.norm3_weight = take_tensor(loaded, p + ".norm3.weight");
    r.norm3_bias = take_tensor(loaded, p + ".norm3.bias");
    r.shortcut = conv(shortcut_name(config, p));
    r.scale_shift_table = take_tensor(loaded, p + ".scale_shift_table");
    r.noise_scale1 = take_tensor(loaded, p + ".per_channel_scale1");
    r.noise_scale2 = take_tensor(loaded, p + ".per_channel_scale2");
    return r;
  };
  auto embedder = [&loaded](const std::string& p) {
    // The timestep path stays in fp32.
    TimeEmbedder e{LinearWeights::take(loaded, p + ".timestep_embedder.linear_1"),
                   LinearWeights::take(loaded, p + ".timestep_embedder.linear_2")};
    for (auto* lw : {&e.linear_1, &e.linear_2}) {
      if (lw->weight.defined()) {
        lw->weight = lw->weight.to(at::kFloat);
        lw->bias = lw->bias.to(at::kFloat);
      }
    }
    return e;
  };
  d.conv_in_ = conv("decoder.conv_in.conv");
  d.mid_time_embedder_ = embedder("decoder.mid_block.time_embedder");
  for (int64_t i = 0; i < l.mid_layers; ++i) d.mid_resnets_.push_back(res("decoder.mid_block.resnets." + std::to_string(i)));
  for (size_t i = 0; i < l.blocks.size(); ++i) {
    const auto& b = l.blocks[i];
    const std::string p = "decoder.up_blocks." + std::to_string(i);
    UpBlock u;
    if (b.in != b.out) u.conv_in = res(p + ".conv_in");
    u.time_embedder = embedder(p + ".time_embedder");
    if (b.upsample) u.upsampler = Upsampler{conv(p + ".upsamplers.0.conv.conv"), b.residual, b.factor, b.stride};
    for (int64_t j = 0; j < b.layers; ++j) u.resnets.push_back(res(p + ".resnets." + std::to_string(j)));
    d.up_blocks_.push_back(std::move(u));
  }
  d.conv_out_ = conv("decoder.conv_out.conv");
  d.final_time_embedder_ = embedder("decoder.time_embedder");
  d.final_scale_shift_table_ = take_tensor(loaded, "decoder.scale_shift_table");
  d.timestep_scale_multiplier_ = take_tensor(loaded, "decoder.timestep_scale_multiplier");
  if (d.timestep_scale_multiplier_.defined()) d.timestep_scale_multiplier_ = d.timestep_scale_multiplier_.to(at::kFloat);
  d.latents_mean_ = take_tensor(loaded, "latents_mean").to(at::kFloat);
  d.latents_std_ = take_tensor(loaded, "latents_std").to(at::kFloat);
  LTX_INTERNAL_ASSERT(loaded.empty(), "VAE weights left over after assembling");
  return d;
}

at::Tensor LtxVaeDecoder::normalize(const at::Tensor& z) const {
  auto shape = std::vector<int64_t>{1, -1, 1, 1, 1};
  return (z.to(at::kFloat) - latents_mean_.to(z.device()).view(shape)) * config_.scaling_factor /
         latents_std_.to(z.device()).view(shape);
}

at::Tensor LtxVaeDecoder::denormalize(const at::Tensor& zn) const {
  auto shape = std::vector<int64_t>{1, -1, 1, 1, 1};
  return zn.to(at::kFloat) * latents_std_.to(zn.device()).view(shape) / config_.scaling_factor +
         latents_mean_.to(zn.device()).view(shape);
}

namespace {

// x [B, C, f, H, W] with `pad` frames before and after: the neighbouring
// members' edge frames across inner boundaries of a shared decode, copies of
// the edge frame at the ends of the video. Two ring shifts on every member
// (equal sizes everywhere; the wrapped-around slabs are not used).
at::Tensor pad_frames(const at::Tensor& x, int64_t pad, dist::Communicator* group) {
  const int64_t f = x.size(2);
  at::Tensor before = x.narrow(2, 0, 1).expand({-1, -1, pad, -1, -1});
  at::Tensor after = x.narrow(2, f - 1, 1).expand({-1, -1, pad, -1, -1});
  if (group != nullptr && group->size() > 1) {
    LTX_CHECK(f >= pad, "a shared decode needs at least ", pad, " frame(s) per member at every stage, this one has ", f);
    const int n = group->size(), r = group->rank();
    const at::Device wire = group->device();
    at::Tensor last = x.narrow(2, f - pad, pad).to(wire).contiguous();
    at::Tensor first = x.narrow(2, 0, pad).to(wire).contiguous();
    at::Tensor from_prev = at::empty_like(last), from_next = at::empty_like(first);
    group->send_recv(last, (r + 1) % n, from_prev, (r + n - 1) % n);
    group->send_recv(first, (r + n - 1) % n, from_next, (r + 1) % n);
    if (r > 0) before = from_prev.to(x.device());
    if (r + 1 < n) after = from_next.to(x.device());
  }
  return at::cat({before, x, after}, 2);
}

}  // namespace

at::Tensor LtxVaeDecoder::conv3d(const at::Tensor& x, const Conv& c, dist::Communicator* group) const {
  const int64_t k = c.weight.size(2);
  at::Tensor in = x;
  if (k > 1) {
    // Non-causal temporal padding: replicate the first and the last frame
    // (of the whole video: inner boundaries of a shared decode read the
    // neighbour's frames instead).
    const int64_t pad = (k - 1) / 2;
    in = pad_frames(x, pad, group);
  }
  std::vector<int64_t> padding = {0, k / 2, k / 2};
  if (k > 1 && config_.decoder_spatial_padding_mode == "reflect") {
    in = at::reflection_pad3d(in, {k / 2, k / 2, k / 2, k / 2, 0, 0});
    padding = {0, 0, 0};
  }
  if (in.scalar_type() != at::kFloat && in.device().is_cpu()) {
    // Reduced-precision 3D convolutions on CPU go through fp32: some oneDNN
    // bf16 conv3d paths are known to give wrong results. (Debian's 1.13 was
    // measured fine at 1.7e-3 relative for C = 4..64, but other builds are
    // not; scheduler_vae_test compares bf16 against fp32 compute.)
    return at::conv3d(in.to(at::kFloat), c.weight.to(at::kFloat), c.bias.to(at::kFloat), {1, 1, 1}, padding)
        .to(in.scalar_type());
  }
  return at::conv3d(in, c.weight, c.bias, {1, 1, 1}, padding);
}

at::Tensor LtxVaeDecoder::embed(const TimeEmbedder& e, const at::Tensor& timestep) const {
  at::Tensor s = timestep_sinusoid(timestep, 256);
  return e.linear_2(at::silu(e.linear_1(s)));  // fp32, no SiLU after linear_2
}

at::Tensor LtxVaeDecoder::res_block(const at::Tensor& x, const ResBlock& b, const at::Tensor& temb,
                                    at::Generator& gen, dist::Communicator* group) const {
  at::Tensor h = pixel_norm(x);
  at::Tensor shift1, scale1, shift2, scale2;
  if (b.scale_shift_table.defined()) {
    const int64_t c = b.scale_shift_table.size(1);
    at::Tensor t = temb.view({temb.size(0), 4, c, 1, 1, 1}) +
                   b.scale_shift_table.to(at::kFloat).view({1, 4, c, 1, 1, 1});
    t = t.to(h.scalar_type());
    shift1 = t.select(1, 0), scale1 = t.select(1, 1), shift2 = t.select(1, 2), scale2 = t.select(1, 3);
    h = h * (1 + scale1) + shift1;
  }
  h = conv3d(at::silu(h), b.conv1, group);
  auto inject = [&](const at::Tensor& scale) {
    if (!scale.defined()) return;
    at::Tensor noise = at::randn({h.size(-2), h.size(-1)}, gen, h.options());
    h = h + (noise.unsqueeze(0) * scale).unsqueeze(0).unsqueeze(2);
  };
  inject(b.noise_scale1);
  h = pixel_norm(h);
  if (b.scale_shift_table.defined()) h = h * (1 + scale2) + shift2;
  h = conv3d(at::silu(h), b.conv2, group);
  inject(b.noise_scale2);
  at::Tensor skip = x;
  if (b.norm3_weight.defined()) {
    skip = at::layer_norm(x.movedim(1, -1), {x.size(1)}, b.norm3_weight, b.norm3_bias, config_.resnet_norm_eps)
               .movedim(-1, 1);
    skip = conv3d(skip, b.shortcut, group);
  }
  return h + skip;
}

at::Tensor LtxVaeDecoder::upsample(const at::Tensor& x, const Upsampler& u, dist::Communicator* group) const {
  // A temporal upsampler drops the video's first output frame (only the
  // member holding it drops it in a shared decode).
  const bool holds_first = group == nullptr || group->rank() == 0;
  const int64_t drop = holds_first ? u.stride[0] - 1 : 0;
  at::Tensor y = depth_to_space(conv3d(x, u.conv, group), u.stride);
  y = y.narrow(2, drop, y.size(2) - drop);
  if (u.residual) {
    at::Tensor r = depth_to_space(x, u.stride);
    r = r.repeat({1, u.stride[0] * u.stride[1] * u.stride[2] / u.factor, 1, 1, 1});
    y = y + r.narrow(2, drop, r.size(2) - drop);
  }
  return y;
}

at::Tensor LtxVaeDecoder::decode(const at::Tensor& z, const std::optional<at::Tensor>& timestep,
                                 at::Generator gen) const {
  return run(z, timestep, std::move(gen), nullptr);
}

at::Tensor LtxVaeDecoder::decode_share(const at::Tensor& z, const std::optional<at::Tensor>& timestep,
                                       dist::Communicator& group, at::Generator gen) const {
  return run(z, timestep, std::move(gen), &group);
}

at::Tensor LtxVaeDecoder::run(const at::Tensor& z, const std::optional<at::Tensor>& timestep, at::Generator gen,
                              dist::Communicator* group) const {
  LTX_CHECK(z.dim() == 5 && z.size(1) == config_.latent_channels, "latents must be [B, ",
            config_.latent_channels, ", F, H, W], got ", z.sizes());
  at::Tensor t;
  if (timestep_conditioned()) {
    LTX_CHECK(timestep.has_value() && timestep->numel() == z.size(0),
              "this VAE is timestep-conditioned: pass one decode timestep per batch item");
    t = timestep->to(device_).to(at::kFloat).reshape(-1) * timestep_scale_multiplier_;
  }
  if (!gen.defined()) gen = at::detail::getDefaultCPUGenerator();
  const int64_t b = z.size(0);
  at::Tensor h = conv3d(z.to(device_, dtype_), conv_in_, group);
  at::Tensor temb;
  if (mid_time_embedder_.defined()) temb = embed(mid_time_embedder_, t);
  for (const auto& r : mid_resnets_) h = res_block(h, r, temb, gen, group);
  for (const auto& u : up_blocks_) {
    if (u.conv_in) h = res_block(h, *u.conv_in, at::Tensor(), gen, group);
    at::Tensor ue;
    if (u.time_embedder.defined()) ue = embed(u.time_embedder, t);
    if (u.upsampler) h = upsample(h, *u.upsampler, group);
    for (const auto& r : u.resnets) h = res_block(h, r, ue, gen, group);
  }
  h = pixel_norm(h);
  if (final_time_embedder_.defined()) {
    const int64_t c = final_scale_shift_table_.size(1);
    at::Tensor e = embed(final_time_embedder_, t).view({b, 2, c, 1, 1, 1}) +
                   final_scale_shift_table_.to(at::kFloat).view({1, 2, c, 1, 1, 1});
    e = e.to(h.scalar_type());
    h = h * (1 + e.select(1, 1)) + e.select(1, 0);
  }
  h = conv3d(at::silu(h), conv_out_, group);
  // Unpatchify: channel (c, dw, dh) -> pixel (c, 4h + dh, 4w + dw).
  const int64_t p = config_.patch_size, f = h.size(2), hh = h.size(3), ww = h.size(4);
  h = h.reshape({b, -1, p, p, f, hh, ww}).permute({0, 1, 4, 5, 3, 6, 2}).reshape({b, -1, f, hh * p, ww * p});
  return h.to(at::kFloat);
}

at::Tensor LtxVaeDecoder::decode_tiled(const at::Tensor& z, const std::optional<at::Tensor>& timestep,
                                       const VaeTiling& tiling, at::Generator gen) const {
  LTX_CHECK(tiling.stride_latent > 0 && tiling.tile_latent > tiling.stride_latent,
            "tiling needs 0 < stride < tile, got tile ", tiling.tile_latent, " stride ", tiling.stride_latent);
  const int64_t lh = z.size(3), lw = z.size(4);
  if (lh <= tiling.tile_latent && lw <= tiling.tile_latent) return decode(z, timestep, gen);
  const int64_t scale = config_.spatial_compression_ratio;
  const int64_t blend = (tiling.tile_latent - tiling.stride_latent) * scale;
  at::Tensor out, weight;
  for (int64_t i = 0; i < lh; i += tiling.stride_latent) {
    for (int64_t j = 0; j < lw; j += tiling.stride_latent) {
      const int64_t th = std::min(tiling.tile_latent, lh - i), tw = std::min(tiling.tile_latent, lw - j);
      at::Tensor tile = decode(z.narrow(3, i, th).narrow(4, j, tw), timestep, gen);
      if (!out.defined()) {
        out = at::zeros({tile.size(0), tile.size(1), tile.size(2), lh * scale, lw * scale}, tile.options());
        weight = at::zeros({1, 1, 1, lh * scale, lw * scale}, tile.options());
      }
      // Linear ramps over the overlap on edges shared with a neighbour.
      auto ramp = [&](int64_t n, bool rise, bool fall) {
        at::Tensor r = at::ones({n}, tile.options());
        const int64_t m = std::min(blend, n);
        if (m > 0) {
          at::Tensor up = (at::arange(m, tile.options()) + 1) / static_cast<double>(m + 1);
          if (rise) r.narrow(0, 0, m).copy_(up);
          if (fall) r.narrow(0, n - m, m).mul_(up.flip(0));
        }
        return r;
      };
      at::Tensor wy = ramp(tile.size(3), i > 0, i + th < lh).view({1, 1, 1, -1, 1});
      at::Tensor wx = ramp(tile.size(4), j > 0, j + tw < lw).view({1, 1, 1, 1, -1});
      at::Tensor w = wy * wx;
      out.narrow(3, i * scale, tile.size(3)).narrow(4, j * scale, tile.size(4)).add_(tile * w);
      weight.narrow(3, i * scale, tile.size(3)).narrow(4, j * scale, tile.size(4)).add_(w);
      if (j + tw >= lw) break;
    }
    if (i + std::min(tiling.tile_latent, lh - i) >= lh) break;
  }
  return out / weight;
}

namespace {

// What the decoder sees: the unpacked, de-normalised (and, when
// timestep-conditioned, noised) latents and the decode timestep.
std::pair<at::Tensor, std::optional<at::Tensor>> decoder_input(const LtxVaeDecoder& vae, const at::Tensor& latents,
                                                               const LatentGrid& grid, const DecodeSettings& s,
                                                               at::Generator& generator,
                                                               const std::optional<at::Tensor>& noise) {
  // On the CPU up to the decoder, so the decode noise comes from the CPU generator
  // (the same on every machine).
  at::Tensor z = vae.denormalize(unpack_latents(latents.to(at::kCPU, at::kFloat), grid));
  std::optional<at::Tensor> t;
  if (vae.timestep_conditioned()) {
    if (s.decode_noise_scale > 0) {
      at::Tensor n = noise.has_value() ? noise->to(z.device(), at::kFloat)
                                       : at::randn(z.sizes(), generator.defined() ? generator : at::detail::getDefaultCPUGenerator(),
                                                   z.options());
      LTX_CHECK(n.sizes() == z.sizes(), "decode noise must be ", z.sizes(), ", got ", n.sizes());
      z = (1.0 - s.decode_noise_scale) * z + s.decode_noise_scale * n;
    }
    t = at::full({z.size(0)}, s.decode_timestep, z.options());
  }
  return {z, t};
}

at::Tensor to_frames(const at::Tensor& video) {
  return (video / 2 + 0.5).clamp(0.0, 1.0).permute({0, 2, 1, 3, 4}).contiguous();  // [B, F, 3, H, W]
}

}  // namespace

at::Tensor decode_to_frames(const LtxVaeDecoder& vae, const at::Tensor& latents, const LatentGrid& grid,
                            const DecodeSettings& s, at::Generator generator, const std::optional<at::Tensor>& noise,
                            DecodeTrace* trace) {
  auto [z, t] = decoder_input(vae, latents, grid, s, generator, noise);
  if (trace != nullptr) {
    trace->z = z;
    trace->timestep = t.has_value() ? *t : at::Tensor();
  }
  return to_frames(s.tiling ? vae.decode_tiled(z, t, *s.tiling, generator) : vae.decode(z, t, generator));
}

std::pair<int64_t, int64_t> frame_share(int64_t frames, int members, int member) {
  LTX_CHECK(members > 0 && member >= 0 && member < members, "member ", member, " of ", members);
  const int64_t base = frames / members, extra = frames % members;
  const int64_t count = base + (member < extra ? 1 : 0);
  const int64_t offset = member * base + std::min<int64_t>(member, extra);
  return {offset, count};
}

Result<at::Tensor> decode_to_frames_shared(const LtxVaeDecoder& vae, const at::Tensor& latents, const LatentGrid& grid,
                                           const DecodeSettings& s, at::Generator generator,
                                           dist::Communicator& comm) {
  if (s.tiling) {
    return invalid_argument_error(
        "a tiled decode and a decode shared by the group do not combine: tiling is for one rank's memory, sharing "
        "splits the frames across ranks; turn one of them off");
  }
  auto [z, t] = decoder_input(vae, latents, grid, s, generator, std::nullopt);
  const int64_t frames = z.size(2);
  const int n = comm.size(), rank = comm.rank();
  const int active = static_cast<int>(std::min<int64_t>(n, frames));
  // Ranks beyond the frame count hold nothing: they leave the sharing group.
  std::unique_ptr<dist::Communicator> sub;
  dist::Communicator* group = &comm;
  if (active < n) {
    sub = comm.split(rank < active ? 0 : 1, rank);
    group = sub.get();
  }
  const int64_t r = vae.config().temporal_compression_ratio;
  const int64_t scale = vae.config().spatial_compression_ratio;
  auto out_frames = [&](int member) {
    const int64_t count = frame_share(frames, active, member).second;
    return member == 0 ? 1 + r * (count - 1) : r * count;
  };
  // Equal shapes for the gather: every piece padded to the longest.
  const int64_t longest = out_frames(0) + r - 1;
  at::Tensor piece = at::zeros({z.size(0), 3, longest, z.size(3) * scale, z.size(4) * scale},
                               at::TensorOptions().dtype(at::kFloat).device(comm.device()));
  if (rank < active) {
    auto [offset, count] = frame_share(frames, active, rank);
    at::Tensor mine = vae.decode_share(z.narrow(2, offset, count), t, *group, generator);
    LTX_INTERNAL_ASSERT(mine.size(2) == out_frames(rank) && mine.size(3) == piece.size(3) && mine.size(4) == piece.size(4),
                        "a shared decode's piece is ", mine.sizes(), ", expected ", out_frames(rank), " frames of ",
                        piece.size(3), "x", piece.size(4));
    piece.narrow(2, 0, mine.size(2)).copy_(mine);
  }
  at::Tensor gathered = comm.gather(piece, 0);  // [n * B, 3, longest, H, W]
  if (rank != 0) return at::Tensor();
  // Rescaled in place and copied once into the frames: rank 0 holds the
  // gathered pieces and the result, no more.
  gathered.mul_(0.5).add_(0.5).clamp_(0.0, 1.0);
  const int64_t b = z.size(0);
  int64_t total = 0;
  for (int m = 0; m < active; ++m) total += out_frames(m);
  at::Tensor frames_out = at::empty({b, total, 3, piece.size(3), piece.size(4)}, gathered.options());
  for (int m = 0, at_frame = 0; m < active; at_frame += out_frames(m), ++m) {
    frames_out.narrow(1, at_frame, out_frames(m))
        .copy_(gathered.narrow(0, m * b, b).narrow(2, 0, out_frames(m)).permute({0, 2, 1, 3, 4}));
  }
  return frames_out;
}

}  // namespace ltx::pipeline
