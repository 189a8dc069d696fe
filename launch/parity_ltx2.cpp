// The LTX-2 fixture runners: every call, shape and argument comes from
// case.json and io.safetensors (never from the case's name).
#include <cmath>
#include <optional>

#include "common/check.h"
#include "launch/parity_cases.h"
#include "launch/parity_runner.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/model_config.h"
#include "pipeline/ltx2/ltx2_audio.h"
#include "pipeline/decode/ltx_vae_decoder.h"
#include "pipeline/ltx2/ltx2_config.h"
#include "pipeline/ltx2/ltx2_generation.h"
#include "pipeline/text/gemma3_encoder.h"
#include "pipeline/ltx2/ltx2_latent_upsampler.h"
#include "pipeline/ltx2/ltx2_text_connectors.h"
#include "pipeline/ltx2/ltx2_transformer.h"

namespace ltx::launch {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// "io:in.b2.hidden_states  (description)" -> "in.b2.hidden_states"; nullopt
// for null or a value that is not a tensor reference.
std::optional<std::string> io_name(const json& kwargs, const char* key) {
  auto it = kwargs.find(key);
  if (it == kwargs.end() || !it->is_string()) return std::nullopt;
  std::string s = it->get<std::string>();
  if (s.rfind("io:", 0) != 0) return std::nullopt;
  s = s.substr(3);
  return s.substr(0, s.find(' '));
}

class IoTensors {
 public:
  explicit IoTensors(std::shared_ptr<const pipeline::SafetensorsFile> io) : io_(std::move(io)) {}
  // The tensor a kwarg names; undefined when the kwarg is null or absent.
  at::Tensor optional(const json& kwargs, const char* key) const {
    auto name = io_name(kwargs, key);
    return name ? value_or_throw(io_->tensor(*name)) : at::Tensor();
  }
  at::Tensor required(const json& kwargs, const char* key) const {
    at::Tensor t = optional(kwargs, key);
    LTX_CHECK(t.defined(), "case.json: argument '", key, "' does not name an io tensor");
    return t;
  }
  at::Tensor named(const std::string& name) const { return value_or_throw(io_->tensor(name)); }
  bool contains(const std::string& name) const { return io_->contains(name); }

 private:
  std::shared_ptr<const pipeline::SafetensorsFile> io_;
};

double tol_rel(at::ScalarType dtype) { return dtype == at::kFloat ? 1e-5 : 2e-2; }
double tol_abs(at::ScalarType dtype) { return dtype == at::kFloat ? 1e-4 : 0.0; }

std::vector<ParityResult> run_transformer_call(const pipeline::Ltx2Transformer& model, const IoTensors& io,
                                               const json& kw, const std::string& out_prefix, at::ScalarType dtype) {
  const pipeline::Ltx2TransformerConfig& cfg = model.config();
  const at::Device dev = model.device();
  pipeline::Ltx2FullArgs f;
  f.video = io.required(kw, "hidden_states").to(dev, dtype);
  f.audio = io.required(kw, "audio_hidden_states").to(dev, dtype);
  const int64_t b = f.video.size(0);
  f.timestep = io.required(kw, "timestep").to(dev);
  f.audio_timestep = io.optional(kw, "audio_timestep");
  f.sigma = io.optional(kw, "sigma");
  if (!f.sigma.defined()) f.sigma = f.timestep.dim() == 1 ? f.timestep : f.timestep.select(1, 0);
  f.audio_sigma = io.optional(kw, "audio_sigma");
  f.video_coords = io.optional(kw, "video_coords");
  if (!f.video_coords.defined()) {
    f.video_coords = pipeline::ltx2_video_coords(b, kw.at("num_frames").get<int64_t>(), kw.at("height").get<int64_t>(),
                                                 kw.at("width").get<int64_t>(), kw.value("fps", 24.0), cfg);
  }
  f.audio_coords = io.optional(kw, "audio_coords");
  if (!f.audio_coords.defined()) {
    f.audio_coords = pipeline::ltx2_audio_coords(b, kw.at("audio_num_frames").get<int64_t>(), cfg);
  }
  f.use_cross_timestep = kw.value("use_cross_timestep", false);
  f.isolate_modalities = kw.value("isolate_modalities", false);
  if (kw.contains("spatio_temporal_guidance_blocks") && kw["spatio_temporal_guidance_blocks"].is_array()) {
    f.stg_blocks = kw["spatio_temporal_guidance_blocks"].get<std::vector<int64_t>>();
  }
  f.perturbation_mask = io.optional(kw, "perturbation_mask");
  at::Tensor enc = io.required(kw, "encoder_hidden_states");
  at::Tensor aenc = io.required(kw, "audio_encoder_hidden_states");
  at::Tensor mask = io.optional(kw, "encoder_attention_mask");
  at::Tensor amask = io.optional(kw, "audio_encoder_attention_mask");
  if (!mask.defined()) mask = at::ones({enc.size(0), enc.size(1)}, at::kLong);
  if (!amask.defined()) amask = at::ones({aenc.size(0), aenc.size(1)}, at::kLong);
  auto text = model.prepare_text(enc, mask, aenc, amask);
  f.text = &text;
  pipeline::Ltx2Output out = pipeline::ltx2_forward_full(model, f);
  return {compare(out_prefix + ".sample", out.video, io.named(out_prefix + ".sample"), tol_rel(dtype), tol_abs(dtype)),
          compare(out_prefix + ".audio_sample", out.audio, io.named(out_prefix + ".audio_sample"), tol_rel(dtype),
                  tol_abs(dtype))};
}

}  // namespace

Result<std::vector<ParityResult>> run_ltx2_transformer_case(const fs::path& dir, const json& c,
                                                            dist::Communicator& comm, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_ltx2_transformer_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto file, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2Transformer::from_checkpoint(config, weights, comm, dtype, comm.device()));
  IoTensors io(file);
  auto calls = c.find("calls");
  if (calls == c.end() || !calls->is_object() || calls->empty()) {
    return invalid_argument_error((dir / "case.json").string() + ": no 'calls' object");
  }
  std::vector<ParityResult> results;
  for (const auto& [name, call] : calls->items()) {
    const json& kw = call.at("kwargs");
    for (const auto& r : run_transformer_call(model, io, kw, "out." + name, dtype)) results.push_back(r);
    auto extras = call.find("extra_calls");
    if (extras == call.end() || !extras->is_object()) continue;
    for (const auto& [extra, overrides] : extras->items()) {
      json kw2 = kw;
      for (const auto& [key, value] : overrides.items()) kw2[key] = value;
      for (const auto& r : run_transformer_call(model, io, kw2, "out." + name + "." + extra, dtype)) {
        results.push_back(r);
      }
    }
  }
  return results;
}

Result<std::vector<ParityResult>> run_ltx2_connectors_case(const fs::path& dir, const json& c, at::ScalarType dtype) {
  LTX_ASSIGN_OR_RETURN(auto config, pipeline::load_ltx2_connectors_config((dir / "config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto file, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2TextConnectors::from_checkpoint(config, weights, dtype, component_device()));
  IoTensors io(file);
  const json& kw = c.at("kwargs");
  const bool left = kw.value("padding_side", std::string("left")) == "left";
  const double scale = kw.value("scale_factor", 8.0);
  auto out = model.forward(io.required(kw, "text_encoder_hidden_states").to(dtype), io.required(kw, "attention_mask"),
                           left, scale);
  return std::vector<ParityResult>{
      compare("out.video_text_embedding", out.video, io.named("out.video_text_embedding"), tol_rel(dtype), tol_abs(dtype)),
      compare("out.audio_text_embedding", out.audio, io.named("out.audio_text_embedding"), tol_rel(dtype), tol_abs(dtype)),
      compare("out.attention_mask", out.mask, io.named("out.attention_mask"), 0.0, 0.0)};
}

Result<std::vector<ParityResult>> run_ltx2_decoder_case(const fs::path& dir, const json& c, const std::string& kind,
                                                        at::ScalarType dtype) {
  const std::string config_path = (dir / "config.json").string();
  LTX_ASSIGN_OR_RETURN(std::string config_text, pipeline::read_text_file(config_path));
  LTX_ASSIGN_OR_RETURN(auto weights, pipeline::SafetensorsCheckpoint::open((dir / "weights.safetensors").string()));
  LTX_ASSIGN_OR_RETURN(auto file, pipeline::SafetensorsFile::open((dir / "io.safetensors").string()));
  IoTensors io(file);
  std::string output;
  for (const auto& n : file->names()) {
    if (n.rfind("out.", 0) != 0) continue;
    if (!output.empty()) return invalid_argument_error(dir.string() + ": more than one output (" + output + ", " + n + ")");
    output = n;
  }
  if (output.empty()) return invalid_argument_error(dir.string() + ": no out.* tensor");
  const json& kw = c.at("kwargs");
  at::Tensor got;
  if (kind == "AutoencoderKLLTX2Audio") {
    LTX_ASSIGN_OR_RETURN(auto config, pipeline::parse_ltx2_audio_vae_config(config_text, config_path));
    LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2AudioDecoder::from_checkpoint(config, weights, dtype, component_device()));
    got = model.decode(io.required(kw, "z"));
  } else if (kind == "LTX2Vocoder") {
    LTX_ASSIGN_OR_RETURN(auto config, pipeline::parse_ltx2_vocoder_config(config_text, config_path));
    LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2Vocoder::from_checkpoint(config, weights, dtype, component_device()));
    at::Tensor mel = io.required(kw, "hidden_states");
    if (kw.value("time_last", false)) mel = mel.transpose(2, 3);
    got = model.forward(mel);
  } else if (kind == "LTX2LatentUpsamplerModel") {
    LTX_ASSIGN_OR_RETURN(auto config, pipeline::parse_ltx2_upsampler_config(config_text, config_path));
    LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2LatentUpsampler::from_checkpoint(config, weights, dtype, component_device()));
    got = model.forward(io.required(kw, "hidden_states"));
  } else {
    return unimplemented_error(dir.string() + ": no LTX-2 runner for '" + kind + "'");
  }
  // These convolution stacks in a reduced dtype are reported, not bounded, as
  // the video VAEs are (random weights amplify bf16 rounding through them).
  const double rel = dtype != at::kFloat ? INFINITY : tol_rel(dtype);
  return std::vector<ParityResult>{compare(output, got, io.named(output), rel, tol_abs(dtype))};
}

Result<std::vector<ParityResult>> run_ltx2_pipeline_case(const fs::path& dir, const json& c, dist::Communicator& comm,
                                                         at::ScalarType dtype) {
  namespace pl = pipeline;
  auto text_of = [&](const std::string& rel) { return pl::read_text_file((dir / rel).string()); };
  auto weights_of = [&](const std::string& sub) {
    return pl::SafetensorsCheckpoint::open((dir / sub / "weights.safetensors").string());
  };
  LTX_ASSIGN_OR_RETURN(auto gemma_config, pl::load_gemma3_config((dir / "text_encoder/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto gemma_weights, weights_of("text_encoder"));
  LTX_ASSIGN_OR_RETURN(auto gemma, pl::Gemma3TextEncoder::from_checkpoint(gemma_config, gemma_weights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(auto cconfig, pl::load_ltx2_connectors_config((dir / "connectors/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto cweights, weights_of("connectors"));
  LTX_ASSIGN_OR_RETURN(auto connectors, pl::Ltx2TextConnectors::from_checkpoint(cconfig, cweights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(auto tconfig, pl::load_ltx2_transformer_config((dir / "transformer/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto tweights, weights_of("transformer"));
  LTX_ASSIGN_OR_RETURN(auto model, pl::Ltx2Transformer::from_checkpoint(tconfig, tweights, comm, dtype, comm.device()));
  LTX_ASSIGN_OR_RETURN(auto vconfig, pl::load_vae_config((dir / "vae/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto vweights, weights_of("vae"));
  LTX_ASSIGN_OR_RETURN(auto vae, pl::LtxVaeDecoder::from_checkpoint(vconfig, vweights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(std::string atext, text_of("audio_vae/config.json"));
  LTX_ASSIGN_OR_RETURN(auto aconfig, pl::parse_ltx2_audio_vae_config(atext, (dir / "audio_vae/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto aweights, weights_of("audio_vae"));
  LTX_ASSIGN_OR_RETURN(auto audio_vae, pl::Ltx2AudioDecoder::from_checkpoint(aconfig, aweights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(std::string votext, text_of("vocoder/config.json"));
  LTX_ASSIGN_OR_RETURN(auto voconfig, pl::parse_ltx2_vocoder_config(votext, (dir / "vocoder/config.json").string()));
  LTX_ASSIGN_OR_RETURN(auto voweights, weights_of("vocoder"));
  LTX_ASSIGN_OR_RETURN(auto vocoder, pl::Ltx2Vocoder::from_checkpoint(voconfig, voweights, dtype, component_device()));
  LTX_ASSIGN_OR_RETURN(auto sconfig, pl::load_scheduler_config((dir / "scheduler/scheduler_config.json").string()));
  pl::FlowMatchScheduler scheduler(sconfig);
  LTX_ASSIGN_OR_RETURN(auto file, pl::SafetensorsFile::open((dir / "io.safetensors").string()));
  IoTensors io(file);
  const json& kw = c.at("kwargs");
  const double tol = tol_rel(dtype), tol_a = tol_abs(dtype);
  std::vector<ParityResult> r;
  auto check = [&](const std::string& name, const at::Tensor& got, double t = -1, double ta = -1) {
    r.push_back(compare(name, got, io.named(name), t < 0 ? tol : t, ta < 0 ? tol_a : ta));
  };

  // Text: Gemma on each prompt, every hidden state stacked, then one connector batch [negative, prompt].
  auto hidden = [&](const char* ids, const char* mask) {
    auto out = gemma.encode(io.named(ids), io.named(mask), /*all_hidden_states=*/true);
    return at::stack(out.hidden_states, -1).flatten(2);  // [B, L, C * layers], feature c * layers + l
  };
  at::Tensor mask = at::cat({io.named("in.negative_attention_mask"), io.named("in.prompt_attention_mask")});
  at::Tensor states = at::cat({hidden("in.negative_input_ids", "in.negative_attention_mask"),
                               hidden("in.prompt_input_ids", "in.prompt_attention_mask")});
  // Padded positions carry no meaning (the connectors zero them): compare real tokens.
  at::Tensor keep = mask.to(at::kBool);
  r.push_back(compare("out.text_encoder_hidden_states", states.index({keep}),
                      io.named("out.text_encoder_hidden_states").index({keep}), tol, tol_a));
  check("out.text_attention_mask", mask, 0, 0);
  auto ctx = connectors.forward(states, mask, kw.value("padding_side", std::string("left")) == "left");
  check("out.connector_video_embeds", ctx.video);
  check("out.connector_audio_embeds", ctx.audio);
  check("out.connector_attention_mask", ctx.mask, 0, 0);
  const at::Device dev = comm.device();
  const int64_t b = io.named("in.prompt_input_ids").size(0);
  auto cfg_text = model.prepare_text(ctx.video.to(dev), ctx.mask.to(dev), ctx.audio.to(dev), ctx.mask.to(dev));
  auto prompt_text = model.prepare_text(ctx.video.narrow(0, b, b).to(dev), ctx.mask.narrow(0, b, b).to(dev),
                                        ctx.audio.narrow(0, b, b).to(dev), ctx.mask.narrow(0, b, b).to(dev));

  // Latents and schedule.
  const int64_t frames = kw.at("num_frames").get<int64_t>();
  const double fps = kw.at("frame_rate").get<double>();
  const int64_t f = (frames - 1) / vconfig.temporal_compression_ratio + 1;
  const int64_t h = kw.at("height").get<int64_t>() / vconfig.spatial_compression_ratio;
  const int64_t w = kw.at("width").get<int64_t>() / vconfig.spatial_compression_ratio;
  at::Tensor video = io.required(kw, "latents").to(at::kFloat);  // packed, used as is
  at::Tensor audio_in = io.required(kw, "audio_latents").to(at::kFloat);
  const int64_t ta = audio_in.size(2), ca = audio_in.size(1);
  at::Tensor audio = (pl::pack_ltx2_audio(audio_in) - audio_vae.latents_mean().to(at::kFloat)) /
                     audio_vae.latents_std().to(at::kFloat);
  check("out.audio_latents_normalized_input", audio);
  LTX_ASSIGN_OR_RETURN(auto schedule, scheduler.schedule(kw.at("num_inference_steps").get<int64_t>(), f * h * w));
  check("out.sigmas", at::tensor(schedule.sigmas, at::kFloat), 1e-6, 0);
  check("out.timesteps", at::tensor(schedule.timesteps, at::kFloat), 1e-6, 0);

  pl::Ltx2DenoiseArgs args;
  args.video_shard = parallel::SequenceShard::make(f * h * w, comm.size(), comm.rank());
  args.audio_shard = parallel::SequenceShard::make(ta, comm.size(), comm.rank());
  args.video = args.video_shard.take(video.to(dev), 1);
  args.audio = args.audio_shard.take(audio.to(dev), 1);
  args.video_coords = args.video_shard.take(pl::ltx2_video_coords(b, f, h, w, fps, tconfig), 2);
  args.audio_coords = args.audio_shard.take(pl::ltx2_audio_coords(b, ta, tconfig), 2);
  args.prompt = &prompt_text;
  args.cfg_pair = &cfg_text;
  args.guidance.video = {kw.value("guidance_scale", 1.0), kw.value("stg_scale", 0.0), kw.value("modality_scale", 1.0),
                         kw.value("guidance_rescale", 0.0)};
  args.guidance.audio = {kw.value("audio_guidance_scale", 1.0), kw.value("audio_stg_scale", 0.0),
                         kw.value("audio_modality_scale", 1.0), kw.value("audio_guidance_rescale", 0.0)};
  if (kw.contains("spatio_temporal_guidance_blocks") && kw["spatio_temporal_guidance_blocks"].is_array()) {
    args.guidance.stg_blocks = kw["spatio_temporal_guidance_blocks"].get<std::vector<int64_t>>();
  }
  args.use_cross_timestep = kw.value("use_cross_timestep", false);
  std::map<std::string, std::vector<at::Tensor>> steps;
  auto gather = [&](const parallel::SequenceShard& shard, const at::Tensor& t) {
    return parallel::gather_sequence(comm, shard, t, 1).cpu();
  };
  auto observer = [&](int64_t, const pl::Ltx2StepTrace& t) {
    auto add = [&](const char* name, const parallel::SequenceShard& shard, const at::Tensor& x) {
      if (x.defined()) steps[name].push_back(gather(shard, x));
    };
    add("out.noise_pred_video_cfg_batch", args.video_shard, t.video_cfg);
    add("out.noise_pred_audio_cfg_batch", args.audio_shard, t.audio_cfg);
    add("out.noise_pred_video_isolated", args.video_shard, t.video_isolated);
    add("out.noise_pred_audio_isolated", args.audio_shard, t.audio_isolated);
    add("out.guided_velocity_video", args.video_shard, t.video_velocity);
    add("out.guided_velocity_audio", args.audio_shard, t.audio_velocity);
    add("out.step_latents", args.video_shard, t.video_latents);
    add("out.step_audio_latents", args.audio_shard, t.audio_latents);
  };
  pl::Ltx2Latents out = pl::ltx2_denoise(model, scheduler, schedule, args, observer);
  for (const auto& [name, list] : steps) {
    if (file->contains(name)) check(name, at::stack(list));
  }

  // Decode: video unpacked and denormalised per channel; audio denormalised on the packed tokens.
  pl::LatentGrid grid{f, h, w, 0};
  at::Tensor z = vae.denormalize(pl::unpack_latents(gather(args.video_shard, out.video), grid));
  check("out.latents", z);
  check("out.vae_decode_z", z);
  at::Tensor audio_tokens = gather(args.audio_shard, out.audio) * audio_vae.latents_std().to(at::kFloat) +
                            audio_vae.latents_mean().to(at::kFloat);
  at::Tensor audio_latents = pl::unpack_ltx2_audio(audio_tokens, ca);
  check("out.audio_latents", audio_latents);
  at::Tensor frames_out = (vae.decode(z, std::nullopt) / 2 + 0.5).clamp(0.0, 1.0).permute({0, 2, 1, 3, 4});
  check("out.frames", frames_out);
  at::Tensor mel = audio_vae.decode(audio_latents);
  check("out.mel", mel);
  check("out.audio", vocoder.forward(mel));
  return r;
}

}  // namespace ltx::launch
