// `ltx-worker inspect PATH`: open a checkpoint the way the model loaders will
// and print what is in it (tensors by dtype, parameter count, parsed configs).
// Runs on rank 0 only; other ranks take no part. Never throws: problems come
// back as a Status naming the file and the field or tensor.
#pragma once

#include <ostream>
#include <string>

#include "common/status.h"

namespace ltx::launch {

Status run_inspect(const std::string& path, std::ostream& out);

}  // namespace ltx::launch
