#include "launch/inspect_command.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "tests/test_util.h"

namespace ltx::launch {
namespace {

TEST(InspectCommand, DescribesAFixtureCheckpoint) {
  std::ostringstream out;
  Status st = run_inspect(testing::fixture_dir("ltx_transformer_f3h4w6"), out);
  ASSERT_TRUE(st.ok()) << st;
  EXPECT_NE(out.str().find("transformer: 2 layers, 2 heads x 16"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("F32:"), std::string::npos) << out.str();
}

TEST(InspectCommand, ReportsProblemsAsStatus) {
  std::ostringstream out;
  EXPECT_EQ(run_inspect("/nonexistent", out).code(), StatusCode::kNotFound);
  std::string dir = testing::scratch_dir("inspect");
  std::ofstream(dir + "/config.json") << R"({"_class_name":"LTXVideoTransformer3DModel","num_layers":-2})";
  Status st = run_inspect(dir, out);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("num_layers"), std::string::npos) << st;
}

}  // namespace
}  // namespace ltx::launch
