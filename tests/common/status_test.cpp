#include "common/status.h"

#include <gtest/gtest.h>

#include "common/check.h"

namespace ltx {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return invalid_argument_error("field 'x' must be positive, got " + std::to_string(x));
  return x;
}

Result<int> doubled(int x) {
  LTX_ASSIGN_OR_RETURN(int v, parse_positive(x));
  return 2 * v;
}

Status check_both(int a, int b) {
  LTX_RETURN_IF_ERROR(parse_positive(a).status());
  LTX_RETURN_IF_ERROR(parse_positive(b).status());
  return Status();
}

TEST(Status, OkByDefaultAndNamesCodes) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.to_string(), "OK");
  Status e = not_found_error("session 'abc' does not exist");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.code(), StatusCode::kNotFound);
  EXPECT_EQ(e.to_string(), "NOT_FOUND: session 'abc' does not exist");
  EXPECT_EQ(e.with_context("chunk request").message(), "chunk request: session 'abc' does not exist");
}

TEST(Status, EveryCanonicalCodeRoundTripsItsName) {
  const StatusCode codes[] = {StatusCode::kInvalidArgument,   StatusCode::kNotFound,
                              StatusCode::kResourceExhausted, StatusCode::kFailedPrecondition,
                              StatusCode::kUnavailable,       StatusCode::kCancelled,
                              StatusCode::kDeadlineExceeded,  StatusCode::kInternal,
                              StatusCode::kUnimplemented};
  for (StatusCode c : codes) {
    auto back = status_code_from_name(status_code_name(c));
    ASSERT_TRUE(back.has_value()) << status_code_name(c);
    EXPECT_EQ(*back, c);
    EXPECT_TRUE(is_known_status_code(static_cast<int32_t>(c)));
  }
  EXPECT_FALSE(status_code_from_name("NOPE").has_value());
  EXPECT_FALSE(is_known_status_code(77));
  EXPECT_EQ(status_code_name(static_cast<StatusCode>(77)), "UNKNOWN(77)");
}

TEST(Result, CarriesValueOrError) {
  auto good = doubled(4);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 8);
  auto bad = doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("field 'x'"), std::string::npos);
  EXPECT_TRUE(check_both(1, 2).ok());
  EXPECT_EQ(check_both(1, -2).message(), "field 'x' must be positive, got -2");
}

TEST(Result, ValueOfErrorIsABugThatThrowsInternal) {
  Result<int> r = not_found_error("x");
  try {
    (void)r.value();
    FAIL() << "value() of an error Result must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), StatusCode::kInternal);
  }
}

TEST(Result, OkStatusWithoutValueBecomesInternalError) {
  Result<int> r = Status();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
}

}  // namespace
}  // namespace ltx
