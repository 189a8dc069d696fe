#include "common/cuda_device.h"

#ifdef LTX_WITH_CUDA

#include <cuda_runtime.h>

#include <utility>

#include "common/call_check.h"

namespace ltx {

int cuda_device_count() {
  int n = 0;
  cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device / no driver" error
    return 0;
  }
  return n;
}

CudaDeviceGuard::CudaDeviceGuard(int device) {
  LTX_CUDA_CHECK(cudaGetDevice(&previous_));
  LTX_CUDA_CHECK(cudaSetDevice(device));
}

CudaDeviceGuard::~CudaDeviceGuard() { cudaSetDevice(previous_); }

CudaStream CudaStream::create() {
  cudaStream_t s = nullptr;
  LTX_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return CudaStream(s, true);
}

CudaStream CudaStream::borrow(cudaStream_t stream) { return CudaStream(stream, false); }

CudaStream::~CudaStream() {
  if (owning_ && stream_ != nullptr) cudaStreamDestroy(stream_);
}

CudaStream::CudaStream(CudaStream&& other) noexcept
    : stream_(std::exchange(other.stream_, nullptr)), owning_(std::exchange(other.owning_, false)) {}

CudaStream& CudaStream::operator=(CudaStream&& other) noexcept {
  if (this != &other) {
    if (owning_ && stream_ != nullptr) cudaStreamDestroy(stream_);
    stream_ = std::exchange(other.stream_, nullptr);
    owning_ = std::exchange(other.owning_, false);
  }
  return *this;
}

void CudaStream::synchronize() const { LTX_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

CudaEvent::CudaEvent() { LTX_CUDA_CHECK(cudaEventCreate(&event_)); }
CudaEvent::~CudaEvent() {
  if (event_ != nullptr) cudaEventDestroy(event_);
}
void CudaEvent::record(const CudaStream& stream) { LTX_CUDA_CHECK(cudaEventRecord(event_, stream.get())); }
void CudaEvent::synchronize() const { LTX_CUDA_CHECK(cudaEventSynchronize(event_)); }
float CudaEvent::elapsed_ms_since(const CudaEvent& start) const {
  float ms = 0;
  LTX_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

}  // namespace ltx

#endif  // LTX_WITH_CUDA
