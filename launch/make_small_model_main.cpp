// ltx-make-small-model DIR [--seed N] [--shape builtin|ltx-video-2b]: write a
// random-weight LTX-Video checkpoint in the public diffusers folder layout
// (the same writer that makes the built-in model), for demos, tests and
// trying the loaders; `ltx-video-2b` writes the real 2B transformer and 0.9.5
// decoder shapes (about 5 GB, bf16) for benchmarks on a GPU.
// Exit 0 on success, 1 on failure, 2 on bad arguments.
#include <cstdio>
#include <cstring>
#include <string>

#include "pipeline/ltx_video/small_model.h"

int main(int argc, char** argv) {
  std::string dir;
  uint64_t seed = 0;
  auto shape = ltx::pipeline::SmallModelShape::kBuiltin;
  const char* usage = "usage: ltx-make-small-model DIR [--seed N] [--shape builtin|ltx-video-2b]\n";
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--shape") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (v == "ltx-video-2b") {
        shape = ltx::pipeline::SmallModelShape::kLtxVideo2B;
      } else if (v != "builtin") {
        std::fprintf(stderr, "ltx-make-small-model: --shape must be builtin or ltx-video-2b, got %s\n%s", v.c_str(), usage);
        return 2;
      }
      continue;
    }
    if (!std::strcmp(argv[i], "--seed") && i + 1 < argc) {
      try {
        seed = std::stoull(argv[++i]);
      } catch (const std::exception&) {
        std::fprintf(stderr, "ltx-make-small-model: --seed needs a non-negative integer\n");
        return 2;
      }
    } else if (argv[i][0] != '-' && dir.empty()) {
      dir = argv[i];
    } else {
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "%s", usage);
    return 2;
  }
  ltx::Status st = ltx::pipeline::write_small_model(dir, seed, shape);
  if (!st.ok()) {
    std::fprintf(stderr, "ltx-make-small-model: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("wrote a small LTX-Video model to %s\n", dir.c_str());
  return 0;
}
