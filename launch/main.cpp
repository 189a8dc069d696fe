// ltx-worker: the one binary of the project.
//
//   mpirun -n N ltx-worker inspect PATH   open a checkpoint and describe it
//
// Serving (`--model DIR`) and `generate` arrive with the pipeline and service
// issues. Every rank runs main(); rank 0 does the work of a subcommand and the
// group ends together, with exit code 0 on success.
#include <boost/program_options.hpp>
#include <iostream>

#include "common/check.h"
#include "common/logging.h"
#include "dist/world.h"
#include "launch/inspect_command.h"

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "usage: ltx-worker [--log-level LEVEL] inspect PATH\n"
    "  inspect PATH   describe a checkpoint (a .safetensors file, an index.json or a model folder)\n";

}  // namespace

int main(int argc, char** argv) {
  std::string command, path, level = "info";
  po::options_description opts("options");
  opts.add_options()("help,h", "show this help")(
      "log-level", po::value(&level), "trace|debug|info|warn|error|off")(
      "command", po::value(&command), "subcommand")("path", po::value(&path), "argument");
  po::positional_options_description pos;
  pos.add("command", 1).add("path", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(opts).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const std::exception& e) {
    std::cerr << "ltx-worker: " << e.what() << "\n" << kUsage;
    return 2;
  }
  if (vm.count("help")) {
    std::cout << kUsage << opts;
    return 0;
  }
  auto parsed_level = ltx::parse_log_level(level);
  if (!parsed_level) {
    std::cerr << "ltx-worker: --log-level \"" << level << "\" is not one of trace|debug|info|warn|error|off\n";
    return 2;
  }
  ltx::set_log_level(*parsed_level);
  if (command != "inspect" || path.empty()) {
    std::cerr << kUsage;
    return 2;
  }

  ltx::dist::World world(&argc, &argv);
  int rc = 0;
  if (world.is_root()) {
    ltx::Status st = ltx::launch::run_inspect(path, std::cout);
    if (!st.ok()) {
      LTX_LOG(kError) << st.to_string();
      rc = 1;
    }
  }
  // Every rank leaves with rank 0's verdict.
  MPI_Bcast(&rc, 1, MPI_INT, 0, world.comm());
  LTX_LOG(kInfo) << "rank " << world.rank() << " of " << world.size() << " done";
  return rc;
}
