// ltx-make-small-model DIR [--seed N]: write a small random-weight LTX-Video
// checkpoint in the public diffusers folder layout (the same writer that
// makes the built-in model), for demos, tests and trying the loaders.
// Exit 0 on success, 1 on failure, 2 on bad arguments.
#include <cstdio>
#include <cstring>
#include <string>

#include "pipeline/ltx_video/small_model.h"

int main(int argc, char** argv) {
  std::string dir;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
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
      std::fprintf(stderr, "usage: ltx-make-small-model DIR [--seed N]\n");
      return 2;
    }
  }
  if (dir.empty()) {
    std::fprintf(stderr, "usage: ltx-make-small-model DIR [--seed N]\n");
    return 2;
  }
  ltx::Status st = ltx::pipeline::write_small_model(dir, seed);
  if (!st.ok()) {
    std::fprintf(stderr, "ltx-make-small-model: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("wrote a small LTX-Video model to %s\n", dir.c_str());
  return 0;
}
