#include "pipeline/runtime/video_pipeline.h"

#include <cmath>
#include <string>
#include <utility>

#include "common/check.h"

namespace ltx::pipeline {

GenerationRequest default_request(const ModelGeometry& geometry) {
  GenerationRequest r;
  if (geometry.makes_sound()) {  // diffusers' LTX2Pipeline
    r.fps = 24.0;
    r.guidance_rescale = 0.7;
    r.decode_timestep = 0.0;
    r.decode_noise_scale = 0.0;
  }
  return r;
}

Status validate_request(const GenerationRequest& r, const ModelGeometry& g, const GenerationLimits& l) {
  auto bad = [](const std::string& m) { return invalid_argument_error(m); };
  if (r.prompt.empty()) return bad("prompt must not be empty");
  if (static_cast<int64_t>(r.prompt.size()) > l.max_prompt_bytes ||
      static_cast<int64_t>(r.negative_prompt.size()) > l.max_prompt_bytes) {
    return bad("prompt and negative_prompt must be at most " + std::to_string(l.max_prompt_bytes) + " bytes");
  }
  const int64_t side = g.spatial_compression, t = g.temporal_compression;
  for (auto [name, v] : {std::pair<const char*, int64_t>{"width", r.width}, {"height", r.height}}) {
    if (v <= 0 || v % side != 0) {
      return bad(std::string(name) + " must be a positive multiple of " + std::to_string(side) + ", got " + std::to_string(v));
    }
    if (v > l.max_side) return bad(std::string(name) + " must be at most " + std::to_string(l.max_side) + ", got " + std::to_string(v));
  }
  if (r.num_frames < 1 || (r.num_frames - 1) % t != 0) {
    return bad("num_frames must be " + std::to_string(t) + "k+1 (1, " + std::to_string(t + 1) + ", " +
               std::to_string(2 * t + 1) + ", ...), got " + std::to_string(r.num_frames));
  }
  if (r.num_frames > l.max_frames) return bad("num_frames must be at most " + std::to_string(l.max_frames));
  if (r.num_steps < 1 || r.num_steps > l.max_steps) {
    return bad("num_inference_steps must be in [1, " + std::to_string(l.max_steps) + "], got " + std::to_string(r.num_steps));
  }
  if (!std::isfinite(r.guidance_scale) || r.guidance_scale < 0) {
    return bad("guidance_scale must be a non-negative number, got " + std::to_string(r.guidance_scale));
  }
  if (!(r.guidance_rescale >= 0 && r.guidance_rescale <= 1)) return bad("guidance_rescale must be in [0, 1]");
  if (!(r.fps > 0 && r.fps <= 240)) return bad("fps must be in (0, 240], got " + std::to_string(r.fps));
  if (!(r.decode_timestep >= 0 && r.decode_timestep <= 1)) return bad("decode_timestep must be in [0, 1]");
  if (!(r.decode_noise_scale >= 0 && r.decode_noise_scale <= 1)) return bad("decode_noise_scale must be in [0, 1]");
  if (!g.makes_sound()) return Status();
  if (r.pipeline != "one-stage" && g.variant(r.pipeline) == nullptr) {
    std::string known = "one-stage";
    for (const auto& v : g.pipeline_variants) known += ", " + v.name;
    return bad("pipeline must be one of " + known + " for this model, got '" + r.pipeline + "'" +
               (r.pipeline == "distilled" ? " (the model folder has no latent_upsampler/)" : ""));
  }
  if (r.pipeline == "distilled") {
    const int64_t side2 = 2 * g.spatial_compression;
    for (auto [name, v] : {std::pair<const char*, int64_t>{"width", r.width}, {"height", r.height}}) {
      if (v % side2 != 0) {
        return bad(std::string(name) + " must be a multiple of " + std::to_string(side2) +
                   " for the distilled pipeline (stage 1 runs at half size), got " + std::to_string(v));
      }
    }
  }
  for (auto [name, v] : {std::pair<const char*, double>{"audio_guidance_scale", r.audio_guidance_scale},
                         {"stg_scale", r.stg_scale}, {"audio_stg_scale", r.audio_stg_scale},
                         {"modality_scale", r.modality_scale}, {"audio_modality_scale", r.audio_modality_scale}}) {
    if (!std::isfinite(v) || v < 0 || v > 100) return bad(std::string(name) + " must be a number in [0, 100], got " + std::to_string(v));
  }
  if (!(r.audio_guidance_rescale >= 0 && r.audio_guidance_rescale <= 1)) return bad("audio_guidance_rescale must be in [0, 1]");
  return Status();
}

StepGate group_step_gate(dist::Communicator& comm, const CancelToken& cancel, StepVerdict* verdict) {
  if (!cancel.enabled) return nullptr;
  return [&comm, cancel, verdict](int64_t) {
    StepVerdict v = StepVerdict::kGoOn;
    if (comm.rank() == 0) {
      if (cancel.requested && cancel.requested()) v = StepVerdict::kCancel;
      else if (cancel.yield_requested && cancel.yield_requested()) v = StepVerdict::kYield;
    }
    // Rank 0's verdict travels on the control plane (MPI, host memory), not
    // the data plane: no device tensor, no device-to-host read in the step.
    std::string payload = std::to_string(static_cast<int>(v));
    Status shared = comm.root_verdict(Status(), &payload);
    LTX_CHECK(shared.ok() && !payload.empty(), "step verdict from rank 0: ", shared.message());
    v = static_cast<StepVerdict>(std::stoi(payload));
    if (verdict != nullptr) *verdict = v;
    return v == StepVerdict::kGoOn;
  };
}

Result<GeneratedVideo> VideoPipeline::generate(const GenerationRequest& r, const ProgressFn& progress,
                                               const CancelToken& cancel, const StageFn& stage) {
  CancelToken no_yield = cancel;
  no_yield.yield_requested = nullptr;
  LTX_ASSIGN_OR_RETURN(auto job, start(r));
  LTX_RETURN_IF_ERROR(advance(*job, progress, no_yield, stage));
  return finish(*job, stage);
}

}  // namespace ltx::pipeline
