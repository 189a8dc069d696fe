// Model: one loaded model of any family, as its roles.
//
// The denoiser and the scheduler live on every rank; the text conditioner
// and the video decoder on rank 0 only (null elsewhere). A family whose model
// the shared roles do not describe (LTX-2's two streams) keeps its own parts
// in `parts`, and its pipeline (runtime/video_pipeline.h, made by the
// registry) reads them. The geometry is on
// every rank: it is what the runtime and the service need to size latents
// and validate requests without knowing the family (compression factors come
// from the decoder's config, channels and heads from the denoiser's). Built
// by a ModelFamily's loader (model_family.h) through the registry; owned by
// the thread that drives the group.
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/model/placement.h"
#include "pipeline/model/roles.h"
#include "pipeline/schedule/flow_match_scheduler.h"

namespace ltx::pipeline {

// A pipeline variant a request may choose besides the family's default.
struct PipelineVariant {
  std::string name;          // e.g. "distilled"
  int64_t fixed_steps = 0;   // steps over all its stages when fixed; 0 = the request's num_inference_steps
};

struct ModelGeometry {
  int64_t latent_channels = 0;
  int64_t context_channels = 0;       // width of the text embeddings
  int64_t attention_heads = 0;        // the group size must divide this
  int64_t spatial_compression = 32;   // pixels per latent pixel, per side
  int64_t temporal_compression = 8;   // pixel frames per latent frame after the first
  // Families that make sound (LTX-2): the waveform's sample rate; 0 = silent.
  int64_t audio_sample_rate = 0;
  int64_t audio_token_channels = 0;    // width of a packed audio latent token
  double audio_latents_per_second = 0;  // audio latent frames per second of video
  // The audio latent frame that starts at pixel frame `frame` of a video at `fps`.
  int64_t audio_frame_at(int64_t frame, double fps) const {
    return static_cast<int64_t>(std::llround(static_cast<double>(frame) / fps * audio_latents_per_second));
  }
  // Pipeline variants a request may choose besides the default one (LTX-2:
  // "distilled" when the folder has a latent upsampler).
  std::vector<PipelineVariant> pipeline_variants;
  // Whether stream sessions (chunked generation with a KV cache) run on it.
  bool streams = true;

  bool makes_sound() const { return audio_sample_rate > 0; }
  const PipelineVariant* variant(const std::string& name) const {
    for (const auto& p : pipeline_variants) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
  // The steps a request of `variant` with `requested` steps runs.
  int64_t steps_of(const std::string& variant_name, int64_t requested) const {
    const PipelineVariant* v = variant(variant_name);
    return v != nullptr && v->fixed_steps > 0 ? v->fixed_steps : requested;
  }

  // A video of `latent_frames` decodes to this many pixel frames, and back.
  int64_t pixel_frames(int64_t latent_frames) const { return temporal_compression * (latent_frames - 1) + 1; }
  int64_t latent_frames(int64_t pixel_frames) const { return (pixel_frames - 1) / temporal_compression + 1; }
  // The pixel frame where chunk `index` of a stream with `chunk_frames`
  // latent frames per chunk starts (chunk 0 decodes to pixel_frames(n)
  // frames, every later one to temporal_compression * n).
  int64_t chunk_first_frame(int64_t chunk_frames, int64_t index) const {
    return index == 0 ? 0 : pixel_frames(chunk_frames) + temporal_compression * chunk_frames * (index - 1);
  }
  // Latent grid of a width x height x frames video (validated sizes).
  LatentGrid grid(int64_t width, int64_t height, int64_t frames) const {
    return LatentGrid{latent_frames(frames), height / spatial_compression, width / spatial_compression, 0};
  }
};

struct Model {
  std::string name;    // what clients see: "builtin:ltx-video", or the folder's name
  std::string family;  // the family's name, e.g. "ltx-video"
  ModelGeometry geometry;
  ModelPlacement placement;
  std::unique_ptr<Denoiser> denoiser;            // every rank
  std::unique_ptr<FlowMatchScheduler> scheduler;  // every rank
  std::unique_ptr<TextConditioner> text;         // rank 0 (a PromptEncoder takes it)
  std::unique_ptr<VideoDecoder> video_decoder;   // rank 0
  // What only the family's own pipeline uses (LTX-2: the audio-video
  // transformer in place of `denoiser`, the audio decoder and vocoder, the
  // latent upsampler). Null for families the shared roles describe fully.
  std::shared_ptr<const FamilyParts> parts;
};

}  // namespace ltx::pipeline
