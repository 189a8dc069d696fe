#include "common/device_sync.h"

#ifdef LTX_WITH_CUDA
#include <cuda_runtime_api.h>

#include "common/call_check.h"
#include "common/cuda_device.h"
#endif

namespace ltx {

void wait_for_device(const c10::Device& device) {
#ifdef LTX_WITH_CUDA
  if (!device.is_cuda()) return;
  CudaDeviceGuard guard(device.has_index() ? device.index() : 0);
  LTX_CUDA_CHECK(cudaDeviceSynchronize());
#else
  (void)device;
#endif
}

}  // namespace ltx
