// Communicator: collectives over torch tensors for one serving group.
//
// Two backends: MpiCommunicator moves CPU tensors with MPI (machines without
// GPUs, CI), NcclCommunicator moves CUDA tensors with NCCL on the current
// stream. Every collective must be entered by every rank of the group in the
// same order with matching shapes and dtypes; inputs of any dtype (bf16
// included) are sent as bytes, made contiguous first when they are not.
// Called from the one thread that drives the group (the inference thread);
// not thread-safe. Failures throw ltx::Error naming the library call.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

#include "common/status.h"

namespace ltx::dist {

class World;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Where this backend's tensors live: CPU for MPI, the rank's GPU for NCCL.
  virtual at::Device device() const = 0;
  virtual const char* backend_name() const = 0;

  // Root's `tensor` overwrites everyone's (same shape and dtype on all ranks).
  virtual void broadcast(at::Tensor& tensor, int root) = 0;
  // Equal-split all-to-all along dim 0: input [N*c, ...]; rows [i*c, (i+1)*c)
  // go to rank i; the output has the same shape, rows [i*c, ...) from rank i.
  at::Tensor all_to_all(const at::Tensor& input);
  // The same into a caller-owned contiguous `output` of input's shape and dtype
  // (hot loops reuse one buffer instead of allocating per call).
  virtual void all_to_all_into(const at::Tensor& input, at::Tensor& output) = 0;
  // Concatenation along dim 0 of every rank's input (same shape everywhere).
  virtual at::Tensor all_gather(const at::Tensor& input) = 0;
  // Like all_gather, but only `root` gets the result; others get an undefined tensor.
  virtual at::Tensor gather(const at::Tensor& input, int root) = 0;
  // Returns when every rank has entered it (and, for NCCL, when this rank's
  // queued work has finished).
  virtual void barrier() = 0;

 protected:
  // Shared argument checks (caller errors: LTX_CHECK).
  void check_root(int root) const;
  void check_device(const at::Tensor& t, const char* op) const;
  // Checks all_to_all arguments; returns the contiguous input.
  at::Tensor check_all_to_all(const at::Tensor& input, const at::Tensor& output) const;
};

enum class Backend { kAuto, kMpi, kNccl };
// "auto", "mpi", "nccl"; nullopt otherwise.
std::optional<Backend> parse_backend(const std::string& name);

// NCCL when asked (an error on every rank if not built, or without a GPU
// for each rank), MPI when asked, and for kAuto: NCCL when built and every
// node has a GPU for each of its ranks, else MPI. The World must outlive the
// communicator.
Result<std::unique_ptr<Communicator>> make_communicator(const World& world, Backend backend);

// Whether this build has the NCCL backend.
bool nccl_backend_built();

}  // namespace ltx::dist
