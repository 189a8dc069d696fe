#include "pipeline/runtime/stream_settings.h"

namespace ltx::pipeline {

Status validate_stream_settings(const StreamSettings& s, const ModelGeometry& g, const GenerationLimits& l) {
  if (!g.streams) return unimplemented_error("this model does not stream; make a video job");
  // The fields jobs and streams share follow the job rules (a one-frame video).
  GenerationRequest r = s;
  r.num_frames = 1;
  if (!g.makes_sound()) r.guidance_rescale = 0.0;  // LTX-Video streams do not rescale
  r.pipeline = "one-stage";  // streams run the one-stage pipeline chunk by chunk
  LTX_RETURN_IF_ERROR(validate_request(r, g, l));
  auto bad = [](const std::string& m) { return invalid_argument_error(m); };
  if (s.chunk_frames < 1 || s.chunk_frames > 32) return bad("chunk_frames must be in [1, 32] latent frames, got " + std::to_string(s.chunk_frames));
  if (s.window_chunks < 1 || s.window_chunks > 64) return bad("window must be in [1, 64] chunks, got " + std::to_string(s.window_chunks));
  if (s.max_kv_bytes < 0) return bad("max_kv_bytes must be non-negative");
  if (s.decode_context < 0 || s.decode_context > 8) return bad("decode_context must be in [0, 8] latent frames");
  if (g.makes_sound()) {  // every chunk carries at least one audio latent frame (chunks 1, 2, ... are alike)
    for (int64_t c : {0, 1}) {
      const int64_t begin = g.audio_frame_at(g.chunk_first_frame(s.chunk_frames, c), s.fps);
      const int64_t end = g.audio_frame_at(g.chunk_first_frame(s.chunk_frames, c + 1), s.fps);
      if (end <= begin) {
        return bad("chunk_frames " + std::to_string(s.chunk_frames) + " leaves chunk " + std::to_string(c) +
                   " without an audio latent frame at " + std::to_string(s.fps) + " fps; use more chunk_frames");
      }
    }
  }
  return Status();
}

}  // namespace ltx::pipeline
