// Waiting for a device's queued work, for code that reads a clock or hands
// results to the host by raw pointer. A no-op for the CPU, and in builds
// without the CUDA toolkit.
#pragma once

#include <c10/core/Device.h>

namespace ltx {

// Returns once all work queued on `device` (every stream) has finished.
void wait_for_device(const c10::Device& device);

}  // namespace ltx
