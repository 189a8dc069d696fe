#include "common/logging.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace ltx {
namespace {

struct Captured {
  std::vector<std::string> lines;
  Captured() {
    set_log_sink([this](LogLevel, const std::string& line) { lines.push_back(line); });
  }
  ~Captured() {
    set_log_sink(nullptr);
    set_log_level(LogLevel::kInfo);
    set_log_rank(-1);
  }
};

TEST(Logging, LineCarriesLevelRankAndRequestId) {
  Captured cap;
  set_log_level(LogLevel::kInfo);
  set_log_rank(3);
  {
    ScopedRequestId req("vid_42");
    LTX_LOG(kInfo) << "step " << 1 << " of " << 8;
  }
  LTX_LOG(kWarn) << "after the request";
  ASSERT_EQ(cap.lines.size(), 2u);
  EXPECT_NE(cap.lines[0].find(" I [rank 3] [req vid_42] step 1 of 8"), std::string::npos) << cap.lines[0];
  EXPECT_EQ(cap.lines[1].find("[req"), std::string::npos) << cap.lines[1];
  EXPECT_NE(cap.lines[1].find(" W [rank 3] logging_test.cpp:"), std::string::npos) << cap.lines[1];
}

TEST(Logging, DisabledLevelsDoNotEvaluateArguments) {
  Captured cap;
  set_log_level(LogLevel::kWarn);
  int evaluated = 0;
  auto side_effect = [&evaluated] { return ++evaluated; };
  LTX_LOG(kInfo) << side_effect();
  LTX_LOG(kError) << side_effect();
  EXPECT_EQ(evaluated, 1);
  EXPECT_EQ(cap.lines.size(), 1u);
}

TEST(Logging, RequestIdIsPerThread) {
  Captured cap;
  ScopedRequestId outer("main");
  std::thread t([] {
    ScopedRequestId inner("worker");
    LTX_LOG(kInfo) << "in thread";
  });
  t.join();
  LTX_LOG(kInfo) << "in main";
  ASSERT_EQ(cap.lines.size(), 2u);
  EXPECT_NE(cap.lines[0].find("[req worker]"), std::string::npos);
  EXPECT_NE(cap.lines[1].find("[req main]"), std::string::npos);
}

TEST(Logging, ParsesLevelNames) {
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::kWarn);
  EXPECT_FALSE(parse_log_level("loud").has_value());
}

}  // namespace
}  // namespace ltx
