#include "dist/timed_communicator.h"

namespace ltx::dist {

template <typename F>
auto TimedCommunicator::timed(int64_t bytes, F&& f) -> decltype(f()) {
  auto t0 = std::chrono::steady_clock::now();
  struct Add {
    TimedCommunicator* self;
    std::chrono::steady_clock::time_point t0;
    int64_t bytes;
    ~Add() {
      self->seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      self->calls_ += 1;
      self->bytes_ += bytes;
    }
  } add{this, t0, bytes};
  return f();
}

void TimedCommunicator::broadcast(at::Tensor& tensor, int root) {
  timed(tensor.nbytes(), [&] { inner_.broadcast(tensor, root); });
}
void TimedCommunicator::all_to_all_into(const at::Tensor& input, at::Tensor& output) {
  timed(input.nbytes(), [&] { inner_.all_to_all_into(input, output); });
}
namespace {
// Adds the wait's time to the communicator's (the start was counted already).
class TimedPending final : public PendingCollective {
 public:
  TimedPending(std::unique_ptr<PendingCollective> inner, double* seconds)
      : inner_(std::move(inner)), seconds_(seconds) {}
  void wait() override {
    auto t0 = std::chrono::steady_clock::now();
    inner_->wait();
    *seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  std::unique_ptr<PendingCollective> inner_;
  double* seconds_;
};
}  // namespace

std::unique_ptr<PendingCollective> TimedCommunicator::start_all_to_all(const at::Tensor& input, at::Tensor& output) {
  auto pending = timed(input.nbytes(), [&] { return inner_.start_all_to_all(input, output); });
  return std::make_unique<TimedPending>(std::move(pending), &seconds_);
}
void TimedCommunicator::send_recv(const at::Tensor& send, int dest, at::Tensor& recv, int source) {
  timed(send.nbytes(), [&] { inner_.send_recv(send, dest, recv, source); });
}
at::Tensor TimedCommunicator::all_gather(const at::Tensor& input) {
  return timed(input.nbytes(), [&] { return inner_.all_gather(input); });
}
at::Tensor TimedCommunicator::gather(const at::Tensor& input, int root) {
  return timed(input.nbytes(), [&] { return inner_.gather(input, root); });
}
void TimedCommunicator::barrier() {
  timed(0, [&] { inner_.barrier(); });
}

}  // namespace ltx::dist
