// Model: one loaded model of any family, as its roles.
//
// The denoiser and the scheduler live on every rank; the text conditioner
// and the video decoder on rank 0 only (null elsewhere). The geometry is on
// every rank: it is what the runtime and the service need to size latents
// and validate requests without knowing the family (compression factors come
// from the decoder's config, channels and heads from the denoiser's). Built
// by a ModelFamily's loader (model_family.h) through the registry; owned by
// the thread that drives the group.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "pipeline/model/placement.h"
#include "pipeline/model/roles.h"
#include "pipeline/schedule/flow_match_scheduler.h"

namespace ltx::pipeline {

struct ModelGeometry {
  int64_t latent_channels = 0;
  int64_t context_channels = 0;       // width of the text embeddings
  int64_t attention_heads = 0;        // the group size must divide this
  int64_t spatial_compression = 32;   // pixels per latent pixel, per side
  int64_t temporal_compression = 8;   // pixel frames per latent frame after the first

  // A video of `latent_frames` decodes to this many pixel frames, and back.
  int64_t pixel_frames(int64_t latent_frames) const { return temporal_compression * (latent_frames - 1) + 1; }
  int64_t latent_frames(int64_t pixel_frames) const { return (pixel_frames - 1) / temporal_compression + 1; }
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
};

}  // namespace ltx::pipeline
