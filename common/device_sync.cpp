#include "common/device_sync.h"

#ifdef LTX_WITH_CUDA
#include <cuda_runtime_api.h>

#include "common/call_check.h"
#include "common/cuda_device.h"
#endif

namespace ltx {

at::Tensor to_device_async(const at::Tensor& t, const c10::Device& device) {
  if (t.device() == device || !t.is_cpu() || !device.is_cuda()) return t.to(device);
  return t.pin_memory().to(device, /*non_blocking=*/true);
}

}  // namespace ltx

#if defined(LTX_WITH_CUDA) && defined(LTX_TORCH_HAS_CUDA)
#include <c10/cuda/CUDAStream.h>
#endif

namespace ltx {
namespace {

#ifdef LTX_WITH_CUDA
cudaStream_t current_stream(const c10::Device& device) {
#ifdef LTX_TORCH_HAS_CUDA
  return c10::cuda::getCurrentCUDAStream(device.index()).stream();
#else
  (void)device;
  return nullptr;  // the legacy default stream: all torch can use without CUDA
#endif
}
#endif

}  // namespace

StepPacer::StepPacer(const c10::Device& device) : device_(device) {
#ifdef LTX_WITH_CUDA
  if (!device_.is_cuda()) return;
  CudaDeviceGuard guard(device_.has_index() ? device_.index() : 0);
  for (void*& e : events_) {
    cudaEvent_t ev = nullptr;
    LTX_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
    e = ev;
  }
#endif
}

StepPacer::~StepPacer() {
#ifdef LTX_WITH_CUDA
  for (void* e : events_) {
    if (e != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(e));
  }
#endif
}

void StepPacer::step_queued() {
#ifdef LTX_WITH_CUDA
  if (events_[0] == nullptr) return;
  CudaDeviceGuard guard(device_.has_index() ? device_.index() : 0);
  LTX_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(events_[next_]), current_stream(device_)));
  next_ ^= 1;
  if (++marked_ >= 2) {
    // events_[next_] now holds the previous step's mark.
    LTX_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[next_])));
  }
#endif
}

void StepPacer::drain() {
#ifdef LTX_WITH_CUDA
  if (events_[0] == nullptr || marked_ == 0) return;
  CudaDeviceGuard guard(device_.has_index() ? device_.index() : 0);
  LTX_CUDA_CHECK(cudaEventSynchronize(static_cast<cudaEvent_t>(events_[next_ ^ 1])));
#endif
}

}  // namespace ltx
