// Placement: where each model component lives and in which dtype.
//
// A model has three placed components: the text encoder and the decoders
// (rank 0) and the denoiser (every rank). Users choose per component with
// flags or the config file (`PlacementChoice`, strings as typed, validated
// on rank 0 before any collective); each rank resolves the choice against
// the device its communicator moves tensors on (`ModelPlacement::resolve`).
// Defaults: on a GPU group bf16 everywhere, the denoiser on each rank's GPU,
// the text encoder and decoders on rank 0's GPU, TF32 allowed where fp32
// remains; on a CPU group fp32. Loaders read each tensor from the mapped
// file straight into its component's device and dtype. Plain values.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>

#include "common/status.h"
#include "parallel/step_plan.h"

namespace ltx::pipeline {

struct Placement {
  at::Device device = at::Device(at::kCPU);
  at::ScalarType dtype = at::kFloat;
  // Denoiser only: record each step's forward once per shape and replay it
  // (pipeline/runtime/step_graph.h): CUDA graphs on a GPU.
  bool step_graphs = false;
  // Decoder only: every rank loads the decoder and decodes a share of the
  // frames (decode_to_frames_shared), rank 0 gathers them; else rank 0
  // decodes alone.
  bool shared = false;
  std::string to_string() const;  // "cuda:0 bf16", "cpu fp32"
};

// What a user asked for; "" means the default. Devices: auto | cpu | cuda.
// Dtypes: fp32 | bf16 | fp16 (also float32, bfloat16, float16).
struct PlacementChoice {
  std::string dtype;           // every component unless its own is given
  std::string text_device;
  std::string text_dtype;
  std::string denoiser_dtype;  // the denoiser always lives on the group's device
  std::string decoder_device;
  std::string decoder_dtype;
  std::string step_graphs;     // auto (on for a GPU denoiser), on, off
  std::string decode_parallel;    // auto (on for a GPU decoder), on, off: decoder.shared
  std::string guidance_parallel;  // auto (the scaling model picks per request), on, off
  // The link the scaling model assumes (numbers as typed; "" = the
  // backend's default, parallel::LinkFigures::for_backend).
  std::string link_bandwidth_gbps;
  std::string link_latency_us;
  std::string ring_size;  // auto | R: Ulysses x a ring of R sub-groups (LTX-Video; for more ranks than heads)

  // The link figures given, if any (both or neither).
  Result<std::optional<parallel::LinkFigures>> link_figures() const;
  // Names the field at fault ("--text-device must be auto, cpu or cuda, got 'gpu'").
  Status validate() const;
};

// How a step splits across the group (parallel/step_plan.h).
struct StepPlanning {
  parallel::GuidanceParallel guidance = parallel::GuidanceParallel::kAuto;
  std::optional<parallel::LinkFigures> link;  // unset: the backend's default
  // The ring of Ulysses x ring: 0 = auto as chosen; once a model is loaded,
  // the ring size its group runs (1: Ulysses alone).
  int ring_size = 0;
  // The figures for a group on `backend` ("mpi", "nccl").
  parallel::LinkFigures link_for(const std::string& backend) const;
};

struct ModelPlacement {
  Placement text_encoder;
  Placement denoiser;
  Placement decoder;
  StepPlanning planning;

  // `group_device` is where this rank's communicator moves tensors (the
  // denoiser must live there). FAILED_PRECONDITION when a component asks for
  // CUDA on a machine without it.
  static Result<ModelPlacement> resolve(const PlacementChoice& choice, const at::Device& group_device);
  // The defaults for a group on `group_device`.
  static ModelPlacement defaults(const at::Device& group_device);
  std::string to_string() const;  // "text cpu fp32, denoiser cuda:0 bf16, decoder cuda:0 bf16"
  bool uses_cuda() const;
};

Result<at::ScalarType> parse_dtype(const std::string& name);
const char* dtype_name(at::ScalarType dtype);  // "fp32", "bf16", "fp16", else torch's name

// Lets fp32 matrix multiplies and convolutions on CUDA use TF32 (once a
// component is placed on a GPU). A no-op without CUDA.
void allow_tf32_on_cuda();

}  // namespace ltx::pipeline
