// The LTX-Video 0.9.x model family: T5 (or Gemma 3) text conditioning, the
// LTX-Video transformer, the causal video VAE decoder, the flow-matching
// scheduler as LTXPipeline drives it. Recognises diffusers folders whose
// model_index.json names LTXPipeline (or LTXConditionPipeline, LTXImageToVideo
// Pipeline) and original single-file checkpoints of the LTX-Video DiT.
#pragma once

#include "pipeline/model/model_family.h"

namespace ltx::pipeline {

const ModelFamily& ltx_video_family();

}  // namespace ltx::pipeline
