// CUDA handles: device count, device guard, owning or borrowed streams, events.
//
// Compiled only when the build has the CUDA toolkit (LTX_WITH_CUDA); a machine
// with the toolkit but no GPU builds and links it, and cuda_device_count()
// answers 0 there instead of failing. RAII for every handle, as
// TensorRT-LLM's CudaStream: an owning stream is destroyed with its object, a
// borrowed one (torch's current stream) never is. Objects are not shared
// between threads; each thread creates its own.
#pragma once

#ifdef LTX_WITH_CUDA

#include <cuda_runtime_api.h>

namespace ltx {

// Devices visible to this process; 0 when there is no GPU or no driver.
int cuda_device_count();

// Makes `device` current for the lifetime of the guard, then restores.
class CudaDeviceGuard {
 public:
  explicit CudaDeviceGuard(int device);
  ~CudaDeviceGuard();
  CudaDeviceGuard(const CudaDeviceGuard&) = delete;
  CudaDeviceGuard& operator=(const CudaDeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

class CudaStream {
 public:
  // A new non-blocking stream on the current device (throws without a GPU).
  static CudaStream create();
  // Wraps a stream owned by someone else (e.g. torch's current stream).
  static CudaStream borrow(cudaStream_t stream);
  ~CudaStream();
  CudaStream(CudaStream&& other) noexcept;
  CudaStream& operator=(CudaStream&& other) noexcept;
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;

  cudaStream_t get() const { return stream_; }
  bool owning() const { return owning_; }
  void synchronize() const;

 private:
  CudaStream(cudaStream_t s, bool owning) : stream_(s), owning_(owning) {}
  cudaStream_t stream_ = nullptr;
  bool owning_ = false;
};

class CudaEvent {
 public:
  CudaEvent();  // timing-capable event; throws without a GPU
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record(const CudaStream& stream);
  void synchronize() const;
  // Milliseconds between two recorded events.
  float elapsed_ms_since(const CudaEvent& start) const;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace ltx

#endif  // LTX_WITH_CUDA
