#include "launch/launch_support.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <boost/program_options.hpp>
#include <thread>

#include "common/logging.h"
#include "pipeline/registry/model_registry.h"

namespace ltx::launch {
namespace po = boost::program_options;

Result<std::string> check_model_spec(const std::string& model) {
  const std::string spec = model.empty() ? std::string(pipeline::kDefaultModel) : model;
  LTX_ASSIGN_OR_RETURN(std::string path, pipeline::resolve_model_path(spec));
  LTX_ASSIGN_OR_RETURN(pipeline::ModelSource source, pipeline::read_model_source(path));
  LTX_RETURN_IF_ERROR(pipeline::family_for(source).status());
  return spec;
}

void add_placement_options(po::options_description& desc, pipeline::PlacementChoice* c) {
  desc.add_options()
      ("dtype", po::value(&c->dtype), "weights and compute of every component: fp32|bf16|fp16 (default: bf16 on GPUs, fp32 on CPUs)")
      ("text-device", po::value(&c->text_device), "text encoder on rank 0: auto|cpu|cuda (auto: the group's device)")
      ("text-dtype", po::value(&c->text_dtype), "text encoder dtype (default: --dtype)")
      ("denoiser-dtype", po::value(&c->denoiser_dtype), "diffusion transformer dtype (default: --dtype); it lives on each rank's group device")
      ("decoder-device", po::value(&c->decoder_device), "decoders on rank 0: auto|cpu|cuda")
      ("decoder-dtype", po::value(&c->decoder_dtype), "decoder dtype (default: --dtype)")
      ("step-graphs", po::value(&c->step_graphs), "record the denoiser's step once per shape and replay it: auto|on|off (auto: CUDA graphs on GPUs, off on CPUs)")
      ("decode-parallel", po::value(&c->decode_parallel), "every rank decodes a share of the frames (exact; each rank loads the decoder): auto|on|off (auto: on when the decoder is on a GPU)")
      ("guidance-parallel", po::value(&c->guidance_parallel), "guided steps split their passes across sub-groups of the group: auto|on|off (auto: the scaling model picks per request, docs/scaling.md)")
      ("link-bandwidth-gbps", po::value(&c->link_bandwidth_gbps), "the all-to-all bandwidth per rank the scaling model assumes, GB/s (default: 370 with NCCL, 15 with MPI)")
      ("link-latency-us", po::value(&c->link_latency_us), "the link latency the scaling model assumes, microseconds (default: 10 with NCCL, 6 with MPI)")
      ("ring-size", po::value(&c->ring_size), "LTX-Video: attention as Ulysses inside sub-groups x a ring of this many sub-groups (jobs only; lets the group exceed the head count): auto|R (auto: 1 when the heads split over the group, else the smallest ring that makes them)");
}

namespace {
std::vector<std::string*> placement_fields(pipeline::PlacementChoice& c) {
  return {&c.dtype, &c.text_device, &c.text_dtype, &c.denoiser_dtype, &c.decoder_device, &c.decoder_dtype,
          &c.step_graphs, &c.decode_parallel, &c.guidance_parallel, &c.link_bandwidth_gbps, &c.link_latency_us, &c.ring_size};
}
}  // namespace

std::string encode_placement(const pipeline::PlacementChoice& choice) {
  pipeline::PlacementChoice c = choice;
  std::string out;
  for (std::string* f : placement_fields(c)) out += *f + "\n";  // names never hold a newline (validated)
  return out;
}

Result<pipeline::PlacementChoice> decode_placement(const std::string& text) {
  pipeline::PlacementChoice c;
  std::istringstream lines(text);
  for (std::string* f : placement_fields(c)) {
    if (!std::getline(lines, *f)) return internal_error("placement: truncated");
  }
  return c;
}

void set_rank_threads(const dist::World& world) {
  const dist::WorldInfo& w = world.info();
  if (std::getenv("OMP_NUM_THREADS") == nullptr && w.local_size > 1) {
    at::set_num_threads(std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / w.local_size));
  }
  // What this rank decided from its node's share (the GPU follows the local rank).
  LTX_LOG(kInfo) << "node-local: local rank " << w.local_rank << " of " << w.local_size << " on " << w.host << ", "
                 << at::get_num_threads() << " thread(s)";
}

}  // namespace ltx::launch
