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
  // Counted at the start; the time is the start's and the wait's.
  std::unique_ptr<PendingCollective> start_all_to_all(const at::Tensor& input, at::Tensor& output) override;
  at::Tensor all_gather(const at::Tensor& input) override;
  void send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) override;
  at::Tensor gather(const at::Tensor& input, int root) override;
  void barrier() override;
  // Agreement is control traffic: passed through, not timed. A split group
  // is the inner backend's, untimed.
  Status all_ok(const Status& local) override { return inner_.all_ok(local); }
  Status root_verdict(const Status& local, std::string* payload = nullptr) override {
    return inner_.root_verdict(local, payload);
  }
  std::unique_ptr<Communicator> split(int color, int key) override { return inner_.split(color, key); }

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
