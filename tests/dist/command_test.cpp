#include "dist/command.h"

#include <gtest/gtest.h>

namespace ltx::dist {
namespace {

TEST(Command, EveryTypeRoundTrips) {
  // dist/ carries a request's parameters as bytes it does not interpret.
  const std::string params = std::string(1, '\x01') + std::string(1, '\0') + "binary" + std::string(1, '\xff') + " params";
  BeginRequestCommand begin{"vid_1", "sess_9", params};
  std::vector<Command> commands = {PingCommand{42},           begin,
                                   StepCommand{"vid_1", 7},   CancelCommand{"vid_1"},
                                   EndSessionCommand{"sess_9"}, ShutdownCommand{},
                                   OpenStreamCommand{"str_1", true, ""}, StreamChunkCommand{"str_1", 4},
                                   ExportStateCommand{"str_1"}};
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
  EXPECT_EQ(got.params, params);
}

TEST(Command, StreamCommandsKeepEveryField) {
  OpenStreamCommand open{"str_7", false, std::string("stream\0settings", 15)};
  auto back = decode_command(encode_command(open, 3));
  ASSERT_TRUE(back.ok()) << back.status();
  const auto& o = std::get<OpenStreamCommand>(back->command);
  EXPECT_EQ(o.session_id, "str_7");
  EXPECT_FALSE(o.import_state);
  EXPECT_EQ(o.params, open.params);
  auto chunk = decode_command(encode_command(StreamChunkCommand{"str_7", 11}, 4));
  ASSERT_TRUE(chunk.ok());
  EXPECT_EQ(std::get<StreamChunkCommand>(chunk->command).index, 11);
  // A flag byte other than 0 or 1 is malformed, not "true".
  std::string bytes = encode_command(open, 3);
  const size_t flag_at = 4 + 2 + 2 + 8 + 4 + 4 + open.session_id.size();
  bytes[flag_at] = 2;
  auto bad = decode_command(bytes);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("OpenStream"), std::string::npos) << bad.status();
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
