#include "launch/parity_runner.h"

#include "launch/parity_cases.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/check.h"
#include "pipeline/text/gemma3_encoder.h"
#include "pipeline/dit/ltx_transformer.h"
#include "pipeline/text/t5_encoder.h"
#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/ltx_video/ltx_denoiser.h"
#include "pipeline/runtime/video_generation.h"
#include "pipeline/io/model_config.h"
#include "pipeline/io/safetensors.h"

namespace ltx::launch {
namespace fs = std::filesystem;
using nlohmann::json;

ParityResult compare(const std::string& name, const at::Tensor& got, const at::Tensor& want,
                     double tol_rel, double tol_abs) {
  at::Tensor a = got.to(at::kCPU).to(at::kDouble), b = want.to(at::kCPU).to(at::kDouble);
  LTX_CHECK(a.sizes() == b.sizes(), name, ": output shape ", a.sizes(), " differs from the reference ",
            b.sizes());
  ParityResult r;
  r.output = name;
  const double denom = b.norm().item<double>();
  const double num = (a - b).norm().item<double>();
  r.rel_l2 = denom > 0 ? num / denom : num;
  r.max_abs = a.numel() ? (a - b).abs().max().item<double>() : 0.0;
  if (!std::isfinite(r.rel_l2)) r.rel_l2 = INFINITY;
  r.tol_rel_l2 = tol_rel;
  r.tol_max_abs = tol_abs;
  return r;
}

namespace {

Result<at::ScalarType> case_dtype(const json& c, const std::string& where) {
  std::string d = c.value("dtype", "float32");
  d = d.substr(0, d.find(' '));  // "float32 (sigmas_linspace float64)"
  if (d == "float32") return at::kFloat;
  if (d == "bfloat16") return at::kBFloat16;
  if (d == "float16") return at::kHalf;
  return invalid_argument_error(where + ": unsupported dtype '" + d + "'");
}

// Only rows where `mask` [B, T] is 1 are compared (x is [..., B, T, D]).
at::Tensor select_real(const at::Tensor& x, const at::Tensor& mask) {
  at::Tensor keep = mask.to(at::kBool).to(x.device());
  if (x.dim() == 3) return x.index({keep});
  return x.index({at::indexing::Slice(), keep});
}

Result<std::vector<ParityResult>> run_gemma3_case(const fs::path& dir, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_gemma3_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::Gemma3TextEncoder::from_checkpoint(config, weights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(at::Tensor ids, io->tensor("in.input_ids"));
  LTX_ASSIGN_OR_RETURN(at::Tensor mask, io->tensor("in.attention_mask"));
  auto out = model.encode(ids, mask, /*all_hidden_states=*/true);
  const bool fp32 = dtype == at::kFloat;
  std::vector<ParityResult> results;
  for (const char* suffix : {"", "_eager"}) {
    LTX_ASSIGN_OR_RETURN(at::Tensor last, io->tensor(std::string("out.last_hidden_state") + suffix));
    LTX_ASSIGN_OR_RETURN(at::Tensor all, io->tensor(std::string("out.hidden_states") + suffix));
    results.push_back(compare(std::string("out.last_hidden_state") + suffix, select_real(out.last_hidden_state, mask),
                              select_real(last, mask), fp32 ? 1e-5 : 3e-2, fp32 ? 1e-4 : 0));
    results.push_back(compare(std::string("out.hidden_states") + suffix,
                              select_real(at::stack(out.hidden_states), mask), select_real(all, mask),
                              fp32 ? 1e-5 : 3e-2, fp32 ? 1e-4 : 0));
  }
  return results;
}

Result<std::vector<ParityResult>> run_t5_case(const fs::path& dir, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_t5_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::T5Encoder::from_checkpoint(config, weights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(at::Tensor ids, io->tensor("in.input_ids"));
  LTX_ASSIGN_OR_RETURN(at::Tensor mask, io->tensor("in.attention_mask"));
  LTX_ASSIGN_OR_RETURN(at::Tensor want, io->tensor("out.last_hidden_state"));
  const bool fp32 = dtype == at::kFloat;
  // The case's reference output covers every position (all keys are masked the same way).
  return std::vector<ParityResult>{compare("out.last_hidden_state", model.encode(ids, mask, true), want,
                                           fp32 ? 1e-5 : 3e-2, fp32 ? 1e-4 : 0)};
}

Result<std::vector<ParityResult>> run_vae_case(const fs::path& dir, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_vae_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto vae, pipeline::LtxVaeDecoder::from_checkpoint(config, weights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(at::Tensor z, io->tensor("in.z"));
  LTX_ASSIGN_OR_RETURN(at::Tensor want, io->tensor("out.sample"));
  std::optional<at::Tensor> temb;
  if (io->contains("in.temb")) temb = *io->tensor("in.temb");
  // In a reduced dtype a VAE's error is reported, not bounded: its deep
  // stack of convolutions over random weights amplifies bf16 rounding far
  // more than trained weights do (the GPU check reports it).
  const bool fp32 = dtype == at::kFloat;
  return std::vector<ParityResult>{compare("out.sample", vae.decode(z, temb), want, fp32 ? 1e-5 : INFINITY, fp32 ? 1e-4 : 0)};
}

Result<std::vector<ParityResult>> run_scheduler_case(const fs::path& dir, const json& c) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_scheduler_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  pipeline::FlowMatchScheduler scheduler(config);
  std::vector<ParityResult> results;
  auto as_tensor = [](const std::vector<float>& v) { return at::tensor(v, at::kFloat); };
  for (const json& pair : c.at("pairs")) {
    const std::string p = "p" + std::to_string(pair.at("index").get<int>());
    const int64_t steps = pair.at("num_inference_steps").get<int64_t>();
    const int64_t seq = pair.at("video_sequence_length").get<int64_t>();
    LTX_ASSIGN_OR_RETURN(auto schedule, scheduler.schedule(steps, seq));
    LTX_ASSIGN_OR_RETURN(at::Tensor sig, io->tensor("out." + p + ".sigmas"));
    LTX_ASSIGN_OR_RETURN(at::Tensor ts, io->tensor("out." + p + ".timesteps"));
    results.push_back(compare("out." + p + ".sigmas", as_tensor(schedule.sigmas), sig, 1e-6, 0));
    results.push_back(compare("out." + p + ".timesteps", as_tensor(schedule.timesteps), ts, 1e-6, 0));
    const double mu = scheduler.shift_mu(seq);
    ParityResult m;
    m.output = "mu(" + p + ")";
    m.rel_l2 = std::abs(mu - pair.at("mu").get<double>()) / std::abs(pair.at("mu").get<double>());
    m.tol_rel_l2 = 1e-12;
    results.push_back(m);
  }
  // The Euler loop.
  const json& e = c.at("euler");
  LTX_ASSIGN_OR_RETURN(auto schedule, scheduler.schedule(e.at("num_inference_steps").get<int64_t>(),
                                                         e.at("video_sequence_length").get<int64_t>()));
  LTX_ASSIGN_OR_RETURN(at::Tensor sample, io->tensor("in.euler.sample0"));
  for (int64_t i = 0; i < schedule.steps(); ++i) {
    LTX_ASSIGN_OR_RETURN(at::Tensor v, io->tensor("in.euler.model_output" + std::to_string(i)));
    LTX_ASSIGN_OR_RETURN(at::Tensor want, io->tensor("out.euler.sample" + std::to_string(i + 1)));
    sample = scheduler.step(sample, v, schedule, i);
    results.push_back(compare("out.euler.sample" + std::to_string(i + 1), sample, want, 1e-6, 0));
  }
  return results;
}

Result<std::vector<ParityResult>> run_pipeline_case(const fs::path& dir, const json& c, dist::Communicator& comm,
                                                    at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto tconfig, pipeline::load_transformer_config((dir / "transformer/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto tweights, pipeline::SafetensorsCheckpoint::open((dir / "transformer/weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto transformer, pipeline::LtxTransformer::from_checkpoint(tconfig, tweights, comm, dtype, comm.device()));
  LTX_ASSIGN_OR_RETURN(auto vconfig, pipeline::load_vae_config((dir / "vae/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto vweights, pipeline::SafetensorsCheckpoint::open((dir / "vae/weights.safetensors").string()));
  // The whole pipeline runs in `dtype` (bf16 runs check it against the fp32 reference).
  LTX_ASSIGN_OR_RETURN(auto vae, pipeline::LtxVaeDecoder::from_checkpoint(vconfig, vweights, dtype, component_device()));
  pipeline::RopeSettings rope;  // the decoder's compression factors place the tokens
  rope.spatial_compression = vconfig.spatial_compression_ratio * tconfig.patch_size;
  rope.temporal_compression = vconfig.temporal_compression_ratio * tconfig.patch_size_t;
  const pipeline::LtxDenoiser model(std::move(transformer), rope);
  LTX_ASSIGN_OR_RETURN(auto sconfig, pipeline::load_scheduler_config((dir / "scheduler/scheduler_config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  pipeline::FlowMatchScheduler scheduler(sconfig);

  const json& kw = c.at("kwargs");
  const json& derived = c.at("derived");
  pipeline::LatentGrid grid{derived.at("latent_num_frames").get<int64_t>(), derived.at("latent_height").get<int64_t>(),
                            derived.at("latent_width").get<int64_t>(), 0};
  const double fps = kw.at("frame_rate").get<double>();
  pipeline::DenoiseSettings settings;
  settings.guidance_scale = kw.at("guidance_scale").get<double>();
  settings.guidance_rescale = kw.at("guidance_rescale").get<double>();
  settings.group = &comm;
  LTX_ASSIGN_OR_RETURN(auto schedule, scheduler.schedule(kw.at("num_inference_steps").get<int64_t>(), grid.num_tokens()));

  auto t = [&io](const char* n) { return value_or_throw(io->tensor(n)); };
  const at::Device dev = comm.device();
  auto text = model.prepare_text(at::cat({t("in.negative_prompt_embeds"), t("in.prompt_embeds")}).to(dev),
                                 at::cat({t("in.negative_prompt_attention_mask"), t("in.prompt_attention_mask")}).to(dev));
  auto shard = parallel::SequenceShard::make(grid.num_tokens(), comm.size(), comm.rank());
  std::vector<at::Tensor> outputs, steps;
  auto observer = [&](int64_t, const at::Tensor& out, const at::Tensor& latents) {
    outputs.push_back(parallel::gather_sequence(comm, shard, out, 1));
    steps.push_back(parallel::gather_sequence(comm, shard, latents, 1));
  };
  at::Tensor local = pipeline::denoise(model, scheduler, schedule, *text, grid, fps, shard,
                                       shard.take(t("in.latents").to(dev), 1), settings, observer);
  at::Tensor latents = parallel::gather_sequence(comm, shard, local, 1).cpu();
  pipeline::DecodeSettings decode;
  decode.decode_timestep = kw.at("decode_timestep").get<double>();
  decode.decode_noise_scale = kw.at("decode_noise_scale").get<double>();
  pipeline::DecodeTrace trace;
  at::Tensor frames = pipeline::decode_to_frames(vae, latents, grid, decode, at::Generator(), t("in.decode_noise"), &trace);

  const bool fp32 = dtype == at::kFloat;
  const double tol = fp32 ? 1e-5 : 3e-2, tol_abs = fp32 ? 1e-4 : 0;
  std::vector<ParityResult> r;
  r.push_back(compare("out.timesteps", at::tensor(schedule.timesteps, at::kFloat), t("out.timesteps"), 1e-6, 0));
  r.push_back(compare("out.noise_pred_cfg_batch", at::stack(outputs).cpu(), t("out.noise_pred_cfg_batch"), tol, tol_abs));
  r.push_back(compare("out.step_latents", at::stack(steps).cpu(), t("out.step_latents"), tol, tol_abs));
  r.push_back(compare("out.latents", latents, t("out.latents"), tol, tol_abs));
  r.push_back(compare("out.vae_decode_z", trace.z, t("out.vae_decode_z"), tol, tol_abs));
  r.push_back(compare("out.vae_decode_temb", trace.timestep.to(at::kFloat), t("out.vae_decode_temb"), 1e-6, 0));
  r.push_back(compare("out.frames", frames, t("out.frames"), tol, tol_abs));
  return r;
}

Result<std::vector<ParityResult>> run_transformer_case(const fs::path& dir, const json& c,
                                                       dist::Communicator& comm, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_transformer_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::LtxTransformer::from_checkpoint(config, weights, comm, dtype, comm.device()));

  const json& kw = c.at("kwargs");
  pipeline::LatentGrid grid{kw.at("num_frames").get<int64_t>(), kw.at("height").get<int64_t>(),
                            kw.at("width").get<int64_t>(), 0};
  pipeline::RopeSettings rope;
  auto scale = kw.at("rope_interpolation_scale");
  // (temporal compression / fps, spatial compression, spatial compression)
  rope.temporal_compression = 8;
  rope.frame_rate = 8.0 / scale.at(0).get<double>();
  rope.spatial_compression = scale.at(1).get<int64_t>();

  LTX_ASSIGN_OR_RETURN(at::Tensor hidden, io->tensor("in.hidden_states"));
  LTX_ASSIGN_OR_RETURN(at::Tensor text, io->tensor("in.encoder_hidden_states"));
  LTX_ASSIGN_OR_RETURN(at::Tensor mask, io->tensor("in.encoder_attention_mask"));
  LTX_ASSIGN_OR_RETURN(at::Tensor timestep, io->tensor("in.timestep"));
  LTX_ASSIGN_OR_RETURN(at::Tensor want, io->tensor("out.sample"));
  const at::Device dev = comm.device();
  auto cond = model.prepare_text(text.to(dev), mask.to(dev));
  at::Tensor got = model.forward_full(hidden.to(dev), timestep.to(dev), cond, grid, rope);
  const bool fp32 = dtype == at::kFloat;
  return std::vector<ParityResult>{compare("out.sample", got, want, fp32 ? 1e-5 : 2e-2, fp32 ? 1e-4 : 0)};
}

}  // namespace

namespace {
at::Device g_component_device(at::kCPU);
}  // namespace

at::Device component_device() { return g_component_device; }

namespace {
std::string format_tol(double t) {
  std::ostringstream os;
  os.precision(3);
  os << std::scientific << t;
  return os.str();
}
}  // namespace

bool ParityReport::pass() const {
  if (results.empty()) return false;
  for (const auto& r : results) {
    if (!r.pass()) return false;
  }
  return true;
}

std::string ParityReport::to_string() const {
  std::ostringstream os;
  os.precision(3);
  for (const auto& r : results) {
    os << std::scientific << case_name << " " << r.output << ": rel_l2=" << r.rel_l2
       << (std::isinf(r.tol_rel_l2) ? std::string(" (reported)") : " (tol " + format_tol(r.tol_rel_l2) + ")")
       << " max_abs=" << r.max_abs;
    if (r.tol_max_abs > 0) os << " (tol " << r.tol_max_abs << ")";
    os << (r.pass() ? " PASS" : " FAIL") << "\n";
  }
  return os.str();
}

Result<ParityReport> run_parity_case(const std::string& case_dir, dist::Communicator& comm,
                                     const ParityOptions& options) {
  return [&]() -> Result<ParityReport> {
    try {
      const fs::path dir(case_dir);
      LTX_ASSIGN_OR_RETURN(std::string text, pipeline::read_text_file((dir / "case.json").string()));
      json c = json::parse(text, nullptr, false);
      if (c.is_discarded() || !c.is_object()) {
        return invalid_argument_error((dir / "case.json").string() + ": not a JSON object");
      }
      ParityReport report;
      report.case_name = c.value("case", dir.filename().string());
      report.call = c.value("call", "");
      LTX_ASSIGN_OR_RETURN(at::ScalarType case_type, case_dtype(c, (dir / "case.json").string()));
      const at::ScalarType dtype = options.dtype.value_or(case_type);
      struct DeviceScope {  // the components' device for this case only
        explicit DeviceScope(at::Device d) { g_component_device = d; }
        ~DeviceScope() { g_component_device = at::Device(at::kCPU); }
      } scope(options.component_device.value_or(at::Device(at::kCPU)));
      if (report.call == "diffusers.LTXVideoTransformer3DModel(**config).forward") {
        LTX_ASSIGN_OR_RETURN(report.results, run_transformer_case(dir, c, comm, dtype));
      } else if (report.call.rfind("transformers.Gemma3TextModel", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_gemma3_case(dir, dtype));
      } else if (report.call.rfind("diffusers.AutoencoderKLLTXVideo", 0) == 0 ||
                 report.call.rfind("diffusers.AutoencoderKLLTX2Video(**config).decode", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_vae_case(dir, dtype));
      } else if (report.call.rfind("FlowMatchEulerDiscreteScheduler", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_scheduler_case(dir, c));
      } else if (report.call.rfind("diffusers.LTXPipeline", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_pipeline_case(dir, c, comm, dtype));
      } else if (report.call.rfind("diffusers.LTX2VideoTransformer3DModel", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_ltx2_transformer_case(dir, c, comm, dtype));
      } else if (report.call.rfind("diffusers.LTX2Pipeline", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_ltx2_pipeline_case(dir, c, comm, dtype));
      } else if (report.call.rfind("diffusers.AutoencoderKLLTX2Audio", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_ltx2_decoder_case(dir, c, "AutoencoderKLLTX2Audio", dtype));
      } else if (report.call.rfind("diffusers.pipelines.ltx2.LTX2Vocoder", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_ltx2_decoder_case(dir, c, "LTX2Vocoder", dtype));
      } else if (report.call.rfind("diffusers.pipelines.ltx2.latent_upsampler.LTX2LatentUpsamplerModel", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_ltx2_decoder_case(dir, c, "LTX2LatentUpsamplerModel", dtype));
      } else if (report.call.rfind("diffusers.pipelines.ltx2.LTX2TextConnectors", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_ltx2_connectors_case(dir, c, dtype));
      } else if (report.call.rfind("transformers.T5EncoderModel", 0) == 0) {
        LTX_ASSIGN_OR_RETURN(report.results, run_t5_case(dir, dtype));
      } else {
        return unimplemented_error(case_dir + ": no runner yet for '" + report.call + "'");
      }
      // Every reference output must have been compared: one the runner
      // skipped is a failure, named in the report.
      if (fs::exists(dir / "io.safetensors")) {
        LTX_ASSIGN_OR_RETURN(auto io, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
        for (const std::string& name : io->names()) {
          if (name.rfind("out.", 0) != 0) continue;
          const bool compared = std::any_of(report.results.begin(), report.results.end(),
                                            [&](const ParityResult& r) { return r.output == name; });
          if (!compared) {
            ParityResult missing;
            missing.output = name + " (not compared)";
            missing.rel_l2 = INFINITY;
            report.results.push_back(missing);
          }
        }
      }
      return report;
    } catch (...) {
      return status_from_current_exception().with_context(case_dir);
    }
  }();
}

}  // namespace ltx::launch
