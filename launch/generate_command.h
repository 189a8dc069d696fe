// `ltx-worker generate`: one text-to-video job on the whole group, then exit.
//
//   mpirun -n N ltx-worker generate --prompt TEXT [--model DIR] [--width W]
//       [--height H] [--frames F] [--steps S] [--guidance G] [--seed N]
//       [--fps R] [--negative-prompt TEXT] [--png-dir DIR] --out video.mp4
//       [--stream --chunks K [--chunk-frames n] [--window W]]
//
// Every rank parses the same arguments; rank 0 validates them (and the model
// folder) and broadcasts its verdict before any other collective, so bad input
// ends every rank with the same non-zero exit code and nobody hangs. Without
// --model the built-in small model is used (written on first use). Rank 0
// prints one progress line per denoising step and writes the files. With
// --stream the video is made chunk by chunk through a StreamSession (KV cache
// sharded across the group) and the chunks are concatenated.
#pragma once

#include <string>
#include <vector>

#include "dist/world.h"

namespace ltx::launch {

// Returns the process exit code: 0 success, 1 failure, 2 bad arguments.
int run_generate(dist::World& world, const std::vector<std::string>& args);

}  // namespace ltx::launch
