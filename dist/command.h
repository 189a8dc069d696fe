// Commands rank 0 sends to the group over the control channel, and their wire
// encoding.
//
// Plain structs only: HTTP JSON never crosses this boundary, and no model or
// request field either (a request travels as one encoded value). The encoding is
// compact and versioned: "LTXC" magic, u16 version, u16 type, u64 sequence,
// u32 payload length, payload (little-endian integers, IEEE doubles, strings
// as u32 length + bytes). Decoding checks every length and refuses unknown
// versions, unknown types, truncated or trailing bytes with a clear Status, so
// every rank that receives the same bytes reaches the same verdict. Pure
// functions; safe from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "common/status.h"

namespace ltx::dist {

constexpr uint16_t kControlProtocolVersion = 4;  // 4: request fields travel as one encoded value
// Largest encoded command rank 0 will send (and receivers will accept).
constexpr uint64_t kMaxCommandBytes = 64ull << 20;

enum class CommandType : uint16_t {
  kPing = 1,          // liveness and lock-step checks
  kBeginRequest = 2,  // a generation request starts
  kStep = 3,          // advance a request by one denoising step
  kCancel = 4,        // stop a request at the next step boundary
  kEndSession = 5,    // free a streaming session's state on every rank
  kShutdown = 6,      // leave the command loop; every rank exits 0
  kOpenStream = 7,    // create a streaming session, or import one from rank 0's state
  kStreamChunk = 8,   // make (or repeat) one chunk of a session
  kExportState = 9,   // gather a session's continuation state to rank 0
};

struct PingCommand {
  uint64_t token = 0;
};
// The request's own fields travel as one value the engine encodes
// (pipeline/runtime/video_params.h); dist/ carries it as bytes.
struct BeginRequestCommand {
  std::string request_id;
  std::string session_id;  // empty for one-shot jobs
  std::string params;      // the encoded request
};
struct StepCommand {
  std::string request_id;
  int64_t step = 0;
};
struct CancelCommand {
  std::string request_id;
};
struct EndSessionCommand {
  std::string session_id;
};
struct ShutdownCommand {};
// With `import_state` the settings come from the continuation state rank 0
// holds and broadcasts; `params` (the encoded stream settings) is then empty.
struct OpenStreamCommand {
  std::string session_id;
  bool import_state = false;
  std::string params;
};
struct StreamChunkCommand {
  std::string session_id;
  int64_t index = 0;
};
struct ExportStateCommand {
  std::string session_id;
};

using Command = std::variant<PingCommand, BeginRequestCommand, StepCommand, CancelCommand, EndSessionCommand,
                             ShutdownCommand, OpenStreamCommand, StreamChunkCommand, ExportStateCommand>;

CommandType command_type(const Command& command);
const char* command_type_name(CommandType type);

struct DecodedCommand {
  uint64_t sequence = 0;
  Command command;
};

std::string encode_command(const Command& command, uint64_t sequence);
Result<DecodedCommand> decode_command(const std::string& bytes);

}  // namespace ltx::dist
