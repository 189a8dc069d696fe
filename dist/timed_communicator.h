// TimedCommunicator: wraps a Communicator and adds up the wall time spent in
// its collectives (including waiting for slower peers), for per-step timing
// lines and the compute/communication split of the benchmarks. For NCCL the
// time is only the enqueue time (the GPU work is asynchronous); time NCCL with
// CUDA events instead. Same threading rules as the wrapped communicator.
#pragma once

#include <chrono>

#include "dist/communicator.h"

namespace ltx::dist {

class TimedCommunicator final : public Communicator {
 public:
  explicit TimedCommunicator(Communicator& inner) : inner_(inner) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  at::Device device() const override { return inner_.device(); }
  const char* backend_name() const override { return inner_.backend_name(); }

  void broadcast(at::Tensor& tensor, int root) override;
  void all_to_all_into(const at::Tensor& input, at::Tensor& output) override;
  at::Tensor all_gather(const at::Tensor& input) override;
  at::Tensor gather(const at::Tensor& input, int root) override;
  void barrier() override;

  double seconds() const { return seconds_; }
  int64_t calls() const { return calls_; }
  int64_t bytes() const { return bytes_; }
  void reset() {
    seconds_ = 0;
    calls_ = 0;
    bytes_ = 0;
  }

 private:
  template <typename F>
  auto timed(int64_t bytes, F&& f) -> decltype(f());

  Communicator& inner_;
  double seconds_ = 0;
  int64_t calls_ = 0;
  int64_t bytes_ = 0;
};

}  // namespace ltx::dist
