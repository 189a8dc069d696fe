// Moving data to a device and pacing the host against it without waiting for
// the device's whole queue. No-ops for the CPU, and in builds without the
// CUDA toolkit.
#pragma once

#include <ATen/ATen.h>
#include <c10/core/Device.h>

namespace ltx {

// `t` on `device` without waiting for the device's queue: a host tensor going
// to a GPU is staged in pinned memory and copied asynchronously on the
// current stream (a plain .to() from pageable memory synchronises the stream,
// a host synchronisation in the middle of a step). Anything else: .to(device).
at::Tensor to_device_async(const at::Tensor& t, const c10::Device& device);

}  // namespace ltx

namespace ltx {

// Keeps the host at most one step ahead of a device, without a full
// synchronisation per step: step_queued() marks the end of the work just
// queued (a CUDA event on torch's current stream) and waits for the mark of
// the step before. The GPU always has the current step queued while the host
// decides (cancel, progress, the next step), so nothing waits on the host;
// cancellation and progress lag the device by at most one step. A no-op for
// the CPU (its work is done when queued). One pacer per loop and thread.
class StepPacer {
 public:
  explicit StepPacer(const c10::Device& device);
  ~StepPacer();
  StepPacer(const StepPacer&) = delete;
  StepPacer& operator=(const StepPacer&) = delete;

  void step_queued();
  // Waits for everything marked so far (the end of a loop).
  void drain();

 private:
  c10::Device device_;
  void* events_[2] = {nullptr, nullptr};  // cudaEvent_t, alternately
  int next_ = 0;
  int marked_ = 0;  // events recorded so far (0, 1 or 2+)
};

}  // namespace ltx
