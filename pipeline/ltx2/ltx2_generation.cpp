#include "pipeline/ltx2/ltx2_generation.h"

#include "common/check.h"
#include "common/device_sync.h"
#include "pipeline/runtime/group_stats.h"

namespace ltx::pipeline {
namespace {

at::Tensor repeat2(const at::Tensor& x) { return at::cat({x, x}, 0); }

}  // namespace

std::vector<Ltx2LayerKv> narrow_ltx2_kv(const std::vector<Ltx2LayerKv>& kv, int64_t begin, int64_t n) {
  auto cut = [&](const LayerKv& x) {
    return x.k.defined() ? LayerKv{x.k.narrow(0, begin, n), x.v.narrow(0, begin, n)} : x;
  };
  std::vector<Ltx2LayerKv> out;
  out.reserve(kv.size());
  for (const auto& l : kv) out.push_back({cut(l.video_self), cut(l.audio_self), cut(l.a2v), cut(l.v2a)});
  return out;
}

at::Tensor pack_ltx2_audio(const at::Tensor& latents) {
  LTX_CHECK(latents.dim() == 4, "audio latents must be [B, C, T, M], got ", latents.sizes());
  return latents.transpose(1, 2).flatten(2, 3).contiguous();
}

at::Tensor unpack_ltx2_audio(const at::Tensor& tokens, int64_t channels) {
  LTX_CHECK(tokens.dim() == 3 && tokens.size(2) % channels == 0, "audio tokens must be [B, T, C*M] with C = ",
            channels, ", got ", tokens.sizes());
  return tokens.unflatten(2, {channels, tokens.size(2) / channels}).transpose(1, 2).contiguous();
}

Ltx2Latents ltx2_denoise(const Ltx2Transformer& model, const FlowMatchScheduler& scheduler,
                         const SigmaSchedule& schedule, const Ltx2DenoiseArgs& a, const Ltx2StepObserver& observer) {
  const Ltx2Guidance& g = a.guidance;
  LTX_CHECK(a.prompt != nullptr, "the denoising loop needs the prompt conditioning");
  const bool split = a.pass_peers != nullptr;
  // The passes in their order: unconditional, conditional, then STG and the
  // isolated pass when on; peer q of G runs passes q, q + G, ...
  const int64_t passes = 2 + (g.stg() ? 2 : 0);
  LTX_CHECK(!split || (a.pass_group != nullptr && a.negative != nullptr && g.cfg() && g.stg() == g.modality() &&
                       passes % a.pass_peers->size() == 0 && (a.kv_prefix == nullptr || a.kv_prefix->empty())),
            "a guidance-parallel step needs its sub-group, peers that divide the passes, the negative prompt, CFG, "
            "STG and modality isolation both on or both off, and no KV prefix");
  LTX_CHECK(!g.cfg() || split || a.cfg_pair != nullptr, "guidance_scale > 1 needs the negative + prompt conditioning");
  dist::Communicator& comm = split ? *a.pass_group : model.communicator();
  const int64_t b = a.video.size(0);
  at::Tensor x = a.video.to(at::kFloat), y = a.audio.to(at::kFloat);
  const bool has_prefix = a.kv_prefix != nullptr && !a.kv_prefix->empty();
  std::vector<Ltx2LayerKv> positive_prefix;  // the B-sized passes' share of a CFG prefix
  if (has_prefix && g.cfg()) positive_prefix = narrow_ltx2_kv(*a.kv_prefix, b, b);

  auto call = [&](const at::Tensor& xv, const at::Tensor& xa, const at::Tensor& coords_v, const at::Tensor& coords_a,
                  const Ltx2TextConditioning* text, float t, bool isolate, bool stg) {
    Ltx2ForwardArgs f;
    f.video.tokens = xv;
    f.audio.tokens = xa;
    f.video.shard = a.video_shard;
    f.audio.shard = a.audio_shard;
    f.video.coords = coords_v;
    f.audio.coords = coords_a;
    f.video.timestep = f.audio.timestep = f.sigma =
        at::full({xv.size(0)}, t, at::TensorOptions().dtype(at::kFloat).device(xv.device()));  // made there: no copy
    f.text = text;
    f.use_cross_timestep = a.use_cross_timestep;
    f.isolate_modalities = isolate;
    if (stg) f.stg_blocks = g.stg_blocks;
    if (split) f.group = a.pass_group;
    if (has_prefix) f.kv_prefix = xv.size(0) == b && g.cfg() ? &positive_prefix : a.kv_prefix;
    Ltx2Output o = model.forward(f);
    return std::make_pair(o.video.to(at::kFloat), o.audio.to(at::kFloat));
  };

  LTX_CHECK(a.begin_step >= 0 && a.begin_step <= schedule.steps(), "begin_step ", a.begin_step, " is outside [0, ",
            schedule.steps(), "]");
  if (a.end_step != nullptr) *a.end_step = a.begin_step;
  StepPacer pacer(x.device());  // the host runs at most one step ahead of the GPU
  for (int64_t i = a.begin_step; i < schedule.steps(); ++i) {
    const float t = schedule.timesteps[i];
    const double s = schedule.sigmas[i];
    Ltx2StepTrace trace;
    // The passes' velocity predictions (video, audio) for this rank's tokens.
    std::pair<at::Tensor, at::Tensor> uncond, cond, perturbed, isolated;
    if (split) {
      // This peer's passes, then every peer's: [k, B, s, C] stacked per peer,
      // gathered in peer order (pass j G + q is peer q's j-th).
      const int64_t peers = a.pass_peers->size(), me = a.pass_peers->rank(), k = passes / peers;
      std::vector<at::Tensor> mine_v, mine_a;
      for (int64_t j = 0; j < k; ++j) {
        const int64_t p = j * peers + me;  // 0 unconditional, 1 conditional, 2 STG, 3 isolated
        auto [ov, oa] = call(x, y, a.video_coords, a.audio_coords, p == 0 ? a.negative : a.prompt, t, p == 3, p == 2);
        mine_v.push_back(ov);
        mine_a.push_back(oa);
      }
      auto exchange = [&](const std::vector<at::Tensor>& mine) {
        const at::Device home = mine[0].device();
        return a.pass_peers->all_gather(at::stack(mine).to(a.pass_peers->device()).contiguous()).to(home);
      };
      at::Tensor all_v = exchange(mine_v), all_a = exchange(mine_a);  // [peers k, B, s, C]
      auto pass = [&](int64_t p) {
        const int64_t at = (p % peers) * k + p / peers;
        return std::make_pair(all_v[at], all_a[at]);
      };
      uncond = pass(0);
      cond = pass(1);
      if (g.stg()) {
        perturbed = pass(2);
        isolated = pass(3);
      }
      trace.video_cfg = at::cat({uncond.first, cond.first}, 0);
      trace.audio_cfg = at::cat({uncond.second, cond.second}, 0);
    } else {
      if (g.cfg()) {
        auto [ov, oa] = call(repeat2(x), repeat2(y), repeat2(a.video_coords), repeat2(a.audio_coords), a.cfg_pair, t,
                             false, false);
        trace.video_cfg = ov;
        trace.audio_cfg = oa;
        uncond = {ov.narrow(0, 0, b), oa.narrow(0, 0, b)};
        cond = {ov.narrow(0, b, b), oa.narrow(0, b, b)};
      } else {
        cond = call(x, y, a.video_coords, a.audio_coords, a.prompt, t, false, false);
      }
      if (g.stg()) perturbed = call(x, y, a.video_coords, a.audio_coords, a.prompt, t, false, true);
      if (g.modality()) isolated = call(x, y, a.video_coords, a.audio_coords, a.prompt, t, true, false);
    }
    // Guidance in x0 space.
    at::Tensor x0v = x - cond.first * s, x0a = y - cond.second * s;
    at::Tensor dv = at::zeros_like(x), da = at::zeros_like(y);
    if (g.cfg()) {
      dv = dv + (g.video.cfg - 1) * (x0v - (x - uncond.first * s));
      da = da + (g.audio.cfg - 1) * (x0a - (y - uncond.second * s));
    }
    if (g.stg()) {
      dv = dv + g.video.stg * (x0v - (x - perturbed.first * s));
      da = da + g.audio.stg * (x0a - (y - perturbed.second * s));
    }
    if (g.modality()) {
      trace.video_isolated = isolated.first;
      trace.audio_isolated = isolated.second;
      dv = dv + (g.video.modality - 1) * (x0v - (x - isolated.first * s));
      da = da + (g.audio.modality - 1) * (x0a - (y - isolated.second * s));
    }
    auto guide = [&](const at::Tensor& x0, const at::Tensor& delta, double rescale,
                     const parallel::SequenceShard& shard) {
      at::Tensor gx = x0 + delta;
      if (rescale > 0) {
        gx = rescale * (gx * group_std_ratio(&comm, shard, x0, gx)) + (1 - rescale) * gx;
      }
      return gx;
    };
    at::Tensor vv = (x - guide(x0v, dv, g.video.rescale, a.video_shard)) / s;
    at::Tensor va = (y - guide(x0a, da, g.audio.rescale, a.audio_shard)) / s;
    x = scheduler.step(x, vv, schedule, i);
    y = scheduler.step(y, va, schedule, i);
    pacer.step_queued();  // step i queued, step i - 1 finished (common/device_sync.h)
    if (observer) {
      trace.video_velocity = vv;
      trace.audio_velocity = va;
      trace.video_latents = x;
      trace.audio_latents = y;
      observer(i, trace);
    }
    if (a.end_step != nullptr) *a.end_step = i + 1;
    if (a.gate && i + 1 < schedule.steps() && !a.gate(i)) break;
  }
  return {x, y};
}

}  // namespace ltx::pipeline
