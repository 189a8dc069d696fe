// The one request type and its one field list: every field crosses the
// control channel's encoding, and bad bytes are refused by name.
#include "pipeline/runtime/video_params.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <type_traits>

namespace ltx::pipeline {
namespace {

// Distinct, non-default values in every field.
VideoParams distinct() {
  VideoParams p;
  int i = 0;
  for_each_param(p, [&i](const char* name, auto& v, unsigned) {
    using T = std::decay_t<decltype(v)>;
    ++i;
    if constexpr (std::is_same_v<T, std::string>) v = std::string("value of ") + name + std::string(1, '\0') + "!";
    else if constexpr (std::is_same_v<T, bool>) v = !v;
    else if constexpr (std::is_same_v<T, double>) v = 0.5 + i * 1.25;
    else if constexpr (std::is_same_v<T, uint64_t>) v = 0xfeedfacecafe0000ull + i;
    else v = 1000 + i;
  });
  return p;
}

TEST(VideoParams, EveryFieldCrossesTheControlChannel) {
  const VideoParams want = distinct();
  auto got = decode_params(encode_params(want));
  ASSERT_TRUE(got.ok()) << got.status();
  int fields = 0;
  // Compare field by field through the same list (nothing can be forgotten).
  for_each_param(want, [&](const char* name, const auto& v, unsigned) {
    ++fields;
    bool same = false;
    for_each_param(*got, [&](const char* other, const auto& w, unsigned) {
      if (std::string(other) != name) return;
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::decay_t<decltype(w)>>) same = v == w;
    });
    EXPECT_TRUE(same) << name;
  });
  EXPECT_EQ(fields, 25);
  EXPECT_EQ(got->prompt, want.prompt) << "prompts travel too (with any byte)";
}

TEST(VideoParams, FieldNamesAreUniqueAndEachIsUsedSomewhere) {
  VideoParams p;
  std::set<std::string> names;
  for_each_param(p, [&](const char* name, auto&, unsigned uses) {
    EXPECT_TRUE(names.insert(name).second) << name;
    EXPECT_NE(uses & kEveryParam, 0u) << name;
  });
}

TEST(VideoParams, BadBytesAreRefusedByName) {
  const std::string good = encode_params(distinct());
  auto cut = decode_params(good.substr(0, good.size() - 3));
  EXPECT_EQ(cut.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(cut.status().message().find("audio_guidance_rescale"), std::string::npos) << cut.status();
  auto longer = decode_params(good + "x");
  EXPECT_NE(longer.status().message().find("trailing"), std::string::npos) << longer.status();
  EXPECT_FALSE(decode_params("").ok());
}

}  // namespace
}  // namespace ltx::pipeline
