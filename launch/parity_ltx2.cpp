// The LTX-2 fixture runners: every call, shape and argument comes from
// case.json and io.safetensors (never from the case's name).
#include <optional>

#include "common/check.h"
#include "launch/parity_cases.h"
#include "launch/parity_runner.h"
#include "pipeline/io/safetensors.h"
#include "pipeline/io/model_config.h"
#include "pipeline/ltx2/ltx2_audio.h"
#include "pipeline/ltx2/ltx2_config.h"
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
  LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2TextConnectors::from_checkpoint(config, weights, dtype, at::kCPU));
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
    LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2AudioDecoder::from_checkpoint(config, weights, dtype, at::kCPU));
    got = model.decode(io.required(kw, "z"));
  } else if (kind == "LTX2Vocoder") {
    LTX_ASSIGN_OR_RETURN(auto config, pipeline::parse_ltx2_vocoder_config(config_text, config_path));
    LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2Vocoder::from_checkpoint(config, weights, dtype, at::kCPU));
    at::Tensor mel = io.required(kw, "hidden_states");
    if (kw.value("time_last", false)) mel = mel.transpose(2, 3);
    got = model.forward(mel);
  } else if (kind == "LTX2LatentUpsamplerModel") {
    LTX_ASSIGN_OR_RETURN(auto config, pipeline::parse_ltx2_upsampler_config(config_text, config_path));
    LTX_ASSIGN_OR_RETURN(auto model, pipeline::Ltx2LatentUpsampler::from_checkpoint(config, weights, dtype, at::kCPU));
    got = model.forward(io.required(kw, "hidden_states"));
  } else {
    return unimplemented_error(dir.string() + ": no LTX-2 runner for '" + kind + "'");
  }
  return std::vector<ParityResult>{compare(output, got, io.named(output), tol_rel(dtype), tol_abs(dtype))};
}

}  // namespace ltx::launch
