// Start-up steps the ltx-worker subcommands share: resolving the model folder
// (the built-in model when none is given) and one compute thread budget per
// rank. (Rank 0's verdict reaches every rank with dist::share_root_verdict.)
// Called from main()'s thread on every rank.
#pragma once

#include <string>

#include "common/status.h"
#include "dist/world.h"

namespace ltx::launch {

// Rank 0: `model` when it is a model folder (has model_index.json), the
// built-in small model when empty; NOT_FOUND names the flag otherwise.
Result<std::string> resolve_model_dir(const std::string& model);

// Ranks sharing a node split its cores, unless OMP_NUM_THREADS says otherwise.
void set_rank_threads(const dist::World& world);

}  // namespace ltx::launch
