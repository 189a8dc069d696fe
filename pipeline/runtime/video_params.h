// VideoParams: the one request-parameter type of the engine, for video jobs
// (GenerationRequest) and for streams (StreamSettings) alike, and its one
// field list.
//
// for_each_param() names every field once, with the JSON name clients and
// continuation states use and whether jobs, streams or both take it. Every
// mapping walks that list: the control channel's encoding (encode_params /
// decode_params, below), the continuation state's settings, and the HTTP
// JSON schema in service/ (video_params_json.h). A new field is added here
// and, when clients set it, in service/'s JSON mapping; nothing else changes.
// Plain values; any thread.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace ltx::pipeline {

struct VideoParams {
  std::string prompt;
  std::string negative_prompt;
  int64_t width = 256;          // a multiple of the model's spatial compression (32)
  int64_t height = 192;
  int64_t num_frames = 17;      // jobs: temporal compression k + 1 (8k + 1)
  int64_t num_steps = 8;
  double guidance_scale = 3.0;  // >= 0; classifier-free guidance when > 1
  double guidance_rescale = 0.0;  // jobs: in [0, 1]
  uint64_t seed = 0;
  double fps = 25.0;
  double decode_timestep = 0.05;
  double decode_noise_scale = 0.025;
  // Streams.
  int64_t chunk_frames = 2;     // latent frames per chunk
  int64_t window_chunks = 4;    // chunks the KV cache keeps
  bool sink = false;            // keep chunk 0 for ever
  int64_t max_kv_bytes = 0;     // per rank; 0 = unlimited
  int64_t decode_context = 1;   // latent frames of left context when decoding a chunk
  // Families that make sound (LTX-2); the defaults are diffusers' LTX2Pipeline's.
  bool audio = true;                    // decode the sound and put it in the MP4
  std::string pipeline = "one-stage";  // or "distilled": two stages, fixed sigmas, the upsampler between
  double audio_guidance_scale = 7.0;   // the audio stream's CFG (guidance_scale is the video's)
  double stg_scale = 1.0;              // spatio-temporal guidance, video and audio
  double audio_stg_scale = 1.0;
  double modality_scale = 3.0;         // modality guidance (the pass without the a<->v attentions)
  double audio_modality_scale = 3.0;
  double audio_guidance_rescale = 0.7;  // guidance_rescale is the video's
};

// Who takes a field. kSoundParam marks the fields only models that make
// sound take (ModelGeometry::makes_sound); the others ignore them and their
// clients may not set them.
// kSoundStreamParam: streams of models that make sound take it too (the
// video guidance rescale, which LTX-2's stream chunks apply).
enum ParamUse : unsigned { kJobParam = 1, kStreamParam = 2, kEveryParam = 3, kSoundParam = 4, kSoundStreamParam = 8 };

// Whether a model takes a field of `uses` in a request of `kind`.
inline bool takes_param(unsigned uses, ParamUse kind, bool makes_sound) {
  if (kind == kStreamParam && makes_sound && (uses & kSoundStreamParam) != 0) return true;
  return (uses & kind) != 0 && (makes_sound || (uses & kSoundParam) == 0);
}

// Calls f(json_name, member, uses) for every field, in a fixed order (the
// order of the control channel's encoding). Works on const and non-const params.
template <typename Params, typename F>
void for_each_param(Params& p, F&& f) {
  f("prompt", p.prompt, kEveryParam);
  f("negative_prompt", p.negative_prompt, kEveryParam);
  f("width", p.width, kEveryParam);
  f("height", p.height, kEveryParam);
  f("num_frames", p.num_frames, kJobParam);
  f("num_inference_steps", p.num_steps, kEveryParam);
  f("guidance_scale", p.guidance_scale, kEveryParam);
  f("guidance_rescale", p.guidance_rescale, kJobParam | kSoundStreamParam);
  f("seed", p.seed, kEveryParam);
  f("fps", p.fps, kEveryParam);
  f("decode_timestep", p.decode_timestep, kEveryParam);
  f("decode_noise_scale", p.decode_noise_scale, kEveryParam);
  f("chunk_frames", p.chunk_frames, kStreamParam);
  f("window", p.window_chunks, kStreamParam);
  f("sink", p.sink, kStreamParam);
  f("max_kv_bytes", p.max_kv_bytes, kStreamParam);
  f("decode_context", p.decode_context, kStreamParam);
  f("audio", p.audio, kEveryParam | kSoundParam);
  f("pipeline", p.pipeline, kJobParam | kSoundParam);
  f("audio_guidance_scale", p.audio_guidance_scale, kEveryParam | kSoundParam);
  f("stg_scale", p.stg_scale, kEveryParam | kSoundParam);
  f("audio_stg_scale", p.audio_stg_scale, kEveryParam | kSoundParam);
  f("modality_scale", p.modality_scale, kEveryParam | kSoundParam);
  f("audio_modality_scale", p.audio_modality_scale, kEveryParam | kSoundParam);
  f("audio_guidance_rescale", p.audio_guidance_rescale, kEveryParam | kSoundParam);
}

// The control channel's encoding of every field (dist/wire.h). decode_params
// refuses truncated or trailing bytes with INVALID_ARGUMENT, on every rank alike.
std::string encode_params(const VideoParams& params);
Result<VideoParams> decode_params(const std::string& bytes);

}  // namespace ltx::pipeline
