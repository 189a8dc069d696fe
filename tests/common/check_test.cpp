#include "common/check.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "common/call_check.h"

namespace ltx {
namespace {

void needs_positive(int x) { LTX_CHECK(x > 0, "x must be positive, got ", x); }
void invariant(bool b) { LTX_INTERNAL_ASSERT(b, "the cache lost a chunk"); }

TEST(Check, CallerErrorIsInvalidArgumentWithFileLine) {
  try {
    needs_positive(-3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInvalidArgument);
    std::string what = e.what();
    EXPECT_NE(what.find("check_test.cpp:"), std::string::npos) << what;
    EXPECT_NE(what.find("`x > 0`"), std::string::npos) << what;
    EXPECT_NE(what.find("x must be positive, got -3"), std::string::npos) << what;
  }
  EXPECT_NO_THROW(needs_positive(1));
}

TEST(Check, InternalAssertIsInternalAndSaysBug) {
  try {
    invariant(false);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInternal);
    EXPECT_NE(std::string(e.what()).find("this is a bug"), std::string::npos);
  }
}

TEST(Check, CatchToStatusConvertsEveryExceptionKind) {
  EXPECT_TRUE(catch_to_status([] {}).ok());
  EXPECT_EQ(catch_to_status([] { needs_positive(0); }).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(catch_to_status([]() -> Status { return not_found_error("x"); }).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(catch_to_status([] { throw std::runtime_error("boom"); }).message(), "boom");
  EXPECT_EQ(catch_to_status([] { throw std::bad_alloc(); }).code(), StatusCode::kResourceExhausted);
  Status torch_error = catch_to_status([] { at::ones({2}).view({3}); });
  EXPECT_EQ(torch_error.code(), StatusCode::kInternal);
  EXPECT_NE(torch_error.message().find("is invalid for input of size 2"), std::string::npos) << torch_error;
  EXPECT_EQ(catch_to_status([] { throw 42; }).message(), "unknown exception");
}

// The call-check macros need only the library's own types; fake a tiny "library".
using fakeResult_t = int;
constexpr int MPI_SUCCESS = 0;
constexpr int MPI_MAX_ERROR_STRING = 64;
int MPI_Error_string(int code, char* out, int* len) {
  std::string s = "fake MPI error " + std::to_string(code);
  std::copy(s.begin(), s.end(), out);
  *len = static_cast<int>(s.size());
  return 0;
}
int failing_mpi_call() { return 5; }

TEST(CallCheck, MpiCheckNamesCallAndLibraryMessage) {
  try {
    LTX_MPI_CHECK(failing_mpi_call());
    FAIL();
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_EQ(e.code(), StatusCode::kUnavailable);
    EXPECT_NE(what.find("MPI call `failing_mpi_call()` failed with code 5"), std::string::npos) << what;
    EXPECT_NE(what.find("fake MPI error 5"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace ltx
