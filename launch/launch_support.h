// Start-up steps the ltx-worker subcommands share: checking the model spec
// (the built-in model when none is given), the placement flags, and one
// compute thread budget per rank. (Rank 0's verdict reaches every rank with dist::share_root_verdict.)
// Called from main()'s thread on every rank.
#pragma once

#include <string>

#include <boost/program_options/options_description.hpp>

#include "common/status.h"
#include "dist/world.h"
#include "pipeline/model/placement.h"

namespace ltx::launch {

// Rank 0, before any collective: `model` (a folder, a checkpoint file or
// builtin:NAME; the default model when empty) exists or can be written here,
// and its family is known. Returns the spec every rank then loads (each
// node resolves it for itself: registry/model_registry.h).
Result<std::string> check_model_spec(const std::string& model);

// The placement flags --dtype, --text-device, --text-dtype,
// --denoiser-dtype, --decoder-device and --decoder-dtype (generate and serve).
void add_placement_options(boost::program_options::options_description& desc, pipeline::PlacementChoice* choice);
// The placement choice as text for rank 0's verdict payload, and back.
std::string encode_placement(const pipeline::PlacementChoice& choice);
Result<pipeline::PlacementChoice> decode_placement(const std::string& text);

// Ranks sharing a node split its cores, unless OMP_NUM_THREADS says otherwise.
void set_rank_threads(const dist::World& world);

}  // namespace ltx::launch
