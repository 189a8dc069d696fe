// The LTX-2 model family (LTX-2 19B and LTX-2.3 22B, audio-video, Gemma 3
// text encoder). Recognises diffusers folders whose model_index.json names
// LTX2Pipeline (or LTX2ImageToVideoPipeline, LTX2ConditionPipeline) and
// original single-file checkpoints (`ltx-2-19b-*.safetensors`); writes the
// built-in tiny model (`builtin:ltx2`). What loads today: the transformer
// (Ltx2Transformer, every rank) and the text path (Ltx2TextConditioner, rank
// 0). Serving needs the video VAE, audio VAE and vocoder, which are not built
// yet: load() says so, naming the path, instead of half-loading a model.
#pragma once

#include "pipeline/model/model_family.h"

namespace ltx::pipeline {

const ModelFamily& ltx2_family();

}  // namespace ltx::pipeline
