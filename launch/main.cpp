// ltx-worker: the one binary of the project.
//
//   mpirun -n N ltx-worker generate --prompt TEXT [options] --out video.mp4
//   mpirun -n N ltx-worker inspect PATH
//
// Every rank runs main() with the same arguments; the group ends together
// with one exit code (0 success, 1 failure, 2 bad arguments). Serving
// (`--model DIR` without a subcommand) arrives with the service issue.
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "common/check.h"
#include "common/host_memory.h"
#include "common/logging.h"
#include "dist/agreement.h"
#include "dist/world.h"
#include "launch/generate_command.h"
#include "launch/inspect_command.h"
#include "launch/serve_command.h"

namespace {

constexpr const char* kUsage =
    "usage: ltx-worker [--log-level LEVEL] [COMMAND] [ARGS]   (no command: serve)\n"
    "  generate --prompt TEXT [--model DIR] [--width --height --frames --steps --guidance --seed --fps]\n"
    "           [--png-dir DIR] --out video.mp4     make one video (ltx-worker generate --help)\n"
    "  serve [--model DIR] [--host H] [--port P]   the HTTP service on rank 0, driving the group\n"
    "  inspect PATH                                describe a checkpoint file, index or model folder\n";

}  // namespace

int main(int argc, char** argv) {
  ltx::tune_host_allocator();
  std::vector<std::string> args(argv + 1, argv + argc);
  // Global flags come before the command.
  while (!args.empty() && args[0].rfind("--", 0) == 0) {
    if (args[0] == "--help" || args[0] == "-h") {
      std::cout << kUsage;
      return 0;
    }
    if (args[0] == "--log-level" && args.size() >= 2) {
      auto level = ltx::parse_log_level(args[1]);
      if (!level) {
        std::cerr << "ltx-worker: --log-level \"" << args[1] << "\" is not one of trace|debug|info|warn|error|off\n";
        return 2;
      }
      ltx::set_log_level(*level);
      args.erase(args.begin(), args.begin() + 2);
      continue;
    }
    break;  // serve's own flags: `ltx-worker --model DIR --port P` serves
  }
  std::string command = "serve";
  if (!args.empty() && args[0].rfind("--", 0) != 0) {
    command = args[0];
    args.erase(args.begin());
  }
  if (command != "generate" && command != "inspect" && command != "serve") {
    std::cerr << "ltx-worker: unknown command " << command << "\n" << kUsage;
    return 2;
  }
  if (command == "inspect" && args.size() != 1) {
    std::cerr << kUsage;
    return 2;
  }

  std::optional<ltx::dist::World> world_or;
  try {
    world_or.emplace(&argc, &argv);
  } catch (const ltx::Error& e) {  // a bad LTX_NODE_ID, or MPI that cannot start
    std::cerr << "ltx-worker: " << e.what() << "\n";
    return 2;
  }
  ltx::dist::World& world = *world_or;
  if (command == "generate") return ltx::launch::run_generate(world, args);
  if (command == "serve") return ltx::launch::run_serve(world, args);

  ltx::Status st;
  if (world.is_root()) {
    st = ltx::launch::run_inspect(args[0], std::cout);
    if (!st.ok()) {
      LTX_LOG(kError) << st.to_string();
    }
  }
  // Every rank leaves with rank 0's verdict.
  return ltx::dist::share_root_verdict(world.comm(), st).ok() ? 0 : 1;
}
