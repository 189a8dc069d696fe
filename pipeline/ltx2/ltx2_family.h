// The LTX-2 model family (LTX-2 19B and LTX-2.3 22B, audio-video, Gemma 3
// text encoder). Recognises diffusers folders whose model_index.json names
// LTX2Pipeline (or LTX2ImageToVideoPipeline, LTX2ConditionPipeline) and
// original single-file checkpoints (`ltx-2-19b-*.safetensors`); writes the
// built-in tiny model (`builtin:ltx2`). The components load and match the
// reference (transformer, text path, decoders, vocoder, upsampler, the
// guided denoising loop); generating and serving it (the two-stream request
// path, video with sound in the MP4) are not built yet: load() says so,
// naming the path, instead of half-loading a model.
#pragma once

#include "pipeline/model/model_family.h"

namespace ltx::pipeline {

const ModelFamily& ltx2_family();

}  // namespace ltx::pipeline
