#include "dist/command.h"

#include <gtest/gtest.h>

namespace ltx::dist {
namespace {

TEST(Command, EveryTypeRoundTrips) {
  BeginRequestCommand begin{"vid_1", "sess_9", 768, 512, 121, 40, 3.5, 0xfeedfacecafebeefull};
  std::vector<Command> commands = {PingCommand{42},           begin,
                                   StepCommand{"vid_1", 7},   CancelCommand{"vid_1"},
                                   EndSessionCommand{"sess_9"}, ShutdownCommand{}};
  uint64_t seq = 100;
  for (const auto& c : commands) {
    std::string bytes = encode_command(c, seq);
    auto back = decode_command(bytes);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->sequence, seq);
    EXPECT_EQ(command_type(back->command), command_type(c));
    ++seq;
  }
  auto b = decode_command(encode_command(begin, 1));
  const auto& got = std::get<BeginRequestCommand>(b->command);
  EXPECT_EQ(got.request_id, "vid_1");
  EXPECT_EQ(got.session_id, "sess_9");
  EXPECT_EQ(got.width, 768);
  EXPECT_EQ(got.num_frames, 121);
  EXPECT_DOUBLE_EQ(got.guidance_scale, 3.5);
  EXPECT_EQ(got.seed, 0xfeedfacecafebeefull);
}

void expect_refused(const std::string& bytes, const std::string& fragment) {
  auto r = decode_command(bytes);
  ASSERT_FALSE(r.ok()) << "accepted: " << fragment;
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status();
}

TEST(Command, MalformedBytesAreRefusedWithReasons) {
  const std::string good = encode_command(StepCommand{"abc", 3}, 5);
  expect_refused("", "shorter than");
  expect_refused(good.substr(0, 10), "shorter than");
  std::string bad_magic = good;
  bad_magic[0] = 'X';
  expect_refused(bad_magic, "bad magic");
  std::string version = good;
  version[4] = 9;
  expect_refused(version, "protocol version 9");
  std::string unknown = good;
  unknown[6] = 99;
  expect_refused(unknown, "unknown type 99");
  expect_refused(good.substr(0, good.size() - 1), "payload bytes");
  std::string longer = good + "x";
  expect_refused(longer, "payload bytes");
  // Payload length patched to match extra bytes: trailing bytes inside the payload.
  std::string trailing = good + "zz";
  uint32_t len = static_cast<uint32_t>(trailing.size() - 20);
  for (int i = 0; i < 4; ++i) trailing[16 + i] = static_cast<char>((len >> (8 * i)) & 0xff);
  expect_refused(trailing, "trailing bytes");
  // A string length that points past the end.
  std::string huge = good;
  huge[20] = '\xff';
  huge[21] = '\xff';
  expect_refused(huge, "truncated");
}

}  // namespace
}  // namespace ltx::dist
