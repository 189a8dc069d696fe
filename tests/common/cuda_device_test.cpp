#include "common/cuda_device.h"

#include <gtest/gtest.h>

#include "common/check.h"

namespace ltx {
namespace {

// Runs everywhere the CUDA path is built: on a machine without a GPU the count
// is 0 and creating a stream is a clean error naming the CUDA call; with a GPU
// the handles work.
TEST(CudaDevice, HandlesWorkOrFailCleanly) {
  int n = cuda_device_count();
  EXPECT_GE(n, 0);
  if (n == 0) {
    try {
      CudaStream s = CudaStream::create();
      FAIL() << "creating a stream without a GPU must fail";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("CUDA call `cudaStreamCreateWithFlags"), std::string::npos)
          << e.what();
    }
    return;
  }
  CudaStream s = CudaStream::create();
  EXPECT_TRUE(s.owning());
  CudaEvent a, b;
  a.record(s);
  b.record(s);
  b.synchronize();
  EXPECT_GE(b.elapsed_ms_since(a), 0.0f);
  CudaStream borrowed = CudaStream::borrow(s.get());
  EXPECT_FALSE(borrowed.owning());
}

}  // namespace
}  // namespace ltx
