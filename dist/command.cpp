#include "dist/command.h"

#include <cstring>
#include <type_traits>

#include "common/check.h"
#include "dist/wire.h"

namespace ltx::dist {
namespace {

constexpr char kMagic[4] = {'L', 'T', 'X', 'C'};
constexpr size_t kHeaderBytes = 4 + 2 + 2 + 8 + 4;

void write_payload(WireWriter& w, const PingCommand& c) { w.u64(c.token); }
void write_payload(WireWriter& w, const BeginRequestCommand& c) {
  w.str(c.request_id);
  w.str(c.session_id);
  w.str(c.params);
}
void write_payload(WireWriter& w, const StepCommand& c) {
  w.str(c.request_id);
  w.i64(c.step);
}
void write_payload(WireWriter& w, const CancelCommand& c) { w.str(c.request_id); }
void write_payload(WireWriter& w, const EndSessionCommand& c) { w.str(c.session_id); }
void write_payload(WireWriter&, const ShutdownCommand&) {}
void write_payload(WireWriter& w, const OpenStreamCommand& c) {
  w.str(c.session_id);
  w.flag(c.import_state);
  w.str(c.params);
}
void write_payload(WireWriter& w, const StreamChunkCommand& c) {
  w.str(c.session_id);
  w.i64(c.index);
}
void write_payload(WireWriter& w, const ExportStateCommand& c) { w.str(c.session_id); }

bool read_payload(WireReader& r, PingCommand* c) { return r.u64(&c->token); }
bool read_payload(WireReader& r, BeginRequestCommand* c) {
  return r.str(&c->request_id) && r.str(&c->session_id) && r.str(&c->params);
}
bool read_payload(WireReader& r, StepCommand* c) { return r.str(&c->request_id) && r.i64(&c->step); }
bool read_payload(WireReader& r, CancelCommand* c) { return r.str(&c->request_id); }
bool read_payload(WireReader& r, EndSessionCommand* c) { return r.str(&c->session_id); }
bool read_payload(WireReader&, ShutdownCommand*) { return true; }
bool read_payload(WireReader& r, OpenStreamCommand* c) {
  return r.str(&c->session_id) && r.flag(&c->import_state) && r.str(&c->params);
}
bool read_payload(WireReader& r, StreamChunkCommand* c) { return r.str(&c->session_id) && r.i64(&c->index); }
bool read_payload(WireReader& r, ExportStateCommand* c) { return r.str(&c->session_id); }

template <typename T>
Result<Command> read_as(WireReader& r, CommandType type) {
  T c;
  if (!read_payload(r, &c)) {
    return invalid_argument_error(std::string("control command ") + command_type_name(type) +
                                  ": payload is truncated or a field length is out of range");
  }
  if (!r.done()) {
    return invalid_argument_error(std::string("control command ") + command_type_name(type) +
                                  ": unexpected trailing bytes in the payload");
  }
  return Command(std::move(c));
}

}  // namespace

CommandType command_type(const Command& command) {
  return std::visit(
      [](const auto& c) -> CommandType {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, PingCommand>) return CommandType::kPing;
        if constexpr (std::is_same_v<T, BeginRequestCommand>) return CommandType::kBeginRequest;
        if constexpr (std::is_same_v<T, StepCommand>) return CommandType::kStep;
        if constexpr (std::is_same_v<T, CancelCommand>) return CommandType::kCancel;
        if constexpr (std::is_same_v<T, EndSessionCommand>) return CommandType::kEndSession;
        if constexpr (std::is_same_v<T, ShutdownCommand>) return CommandType::kShutdown;
        if constexpr (std::is_same_v<T, OpenStreamCommand>) return CommandType::kOpenStream;
        if constexpr (std::is_same_v<T, StreamChunkCommand>) return CommandType::kStreamChunk;
        if constexpr (std::is_same_v<T, ExportStateCommand>) return CommandType::kExportState;
      },
      command);
}

const char* command_type_name(CommandType type) {
  switch (type) {
    case CommandType::kPing: return "Ping";
    case CommandType::kBeginRequest: return "BeginRequest";
    case CommandType::kStep: return "Step";
    case CommandType::kCancel: return "Cancel";
    case CommandType::kEndSession: return "EndSession";
    case CommandType::kShutdown: return "Shutdown";
    case CommandType::kOpenStream: return "OpenStream";
    case CommandType::kStreamChunk: return "StreamChunk";
    case CommandType::kExportState: return "ExportState";
  }
  return "Unknown";
}

std::string encode_command(const Command& command, uint64_t sequence) {
  WireWriter payload;
  std::visit([&payload](const auto& c) { write_payload(payload, c); }, command);
  WireWriter w;
  w.bytes().append(kMagic, 4);
  w.u16(kControlProtocolVersion);
  w.u16(static_cast<uint16_t>(command_type(command)));
  w.u64(sequence);
  w.u32(static_cast<uint32_t>(payload.bytes().size()));
  w.bytes() += payload.bytes();
  return std::move(w.bytes());
}

Result<DecodedCommand> decode_command(const std::string& bytes) {
  if (bytes.size() < kHeaderBytes) {
    return invalid_argument_error("control command: " + std::to_string(bytes.size()) +
                                  " bytes is shorter than the " + std::to_string(kHeaderBytes) +
                                  "-byte header");
  }
  if (bytes.size() > kMaxCommandBytes) {
    return invalid_argument_error("control command: " + std::to_string(bytes.size()) +
                                  " bytes exceeds the limit");
  }
  if (std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return invalid_argument_error("control command: bad magic (not an ltx-worker command)");
  }
  WireReader header(bytes, 4, kHeaderBytes);
  uint16_t version = 0, type = 0;
  uint64_t sequence = 0;
  uint32_t length = 0;
  header.u16(&version);
  header.u16(&type);
  header.u64(&sequence);
  header.u32(&length);
  if (version != kControlProtocolVersion) {
    return invalid_argument_error("control command: protocol version " + std::to_string(version) +
                                  " is not supported (this build speaks " +
                                  std::to_string(kControlProtocolVersion) + ")");
  }
  if (length != bytes.size() - kHeaderBytes) {
    return invalid_argument_error("control command: header says " + std::to_string(length) +
                                  " payload bytes, " + std::to_string(bytes.size() - kHeaderBytes) +
                                  " arrived");
  }
  WireReader r(bytes, kHeaderBytes, bytes.size());
  Result<Command> cmd = invalid_argument_error("control command: unknown type " + std::to_string(type));
  switch (static_cast<CommandType>(type)) {
    case CommandType::kPing: cmd = read_as<PingCommand>(r, CommandType::kPing); break;
    case CommandType::kBeginRequest: cmd = read_as<BeginRequestCommand>(r, CommandType::kBeginRequest); break;
    case CommandType::kStep: cmd = read_as<StepCommand>(r, CommandType::kStep); break;
    case CommandType::kCancel: cmd = read_as<CancelCommand>(r, CommandType::kCancel); break;
    case CommandType::kEndSession: cmd = read_as<EndSessionCommand>(r, CommandType::kEndSession); break;
    case CommandType::kShutdown: cmd = read_as<ShutdownCommand>(r, CommandType::kShutdown); break;
    case CommandType::kOpenStream: cmd = read_as<OpenStreamCommand>(r, CommandType::kOpenStream); break;
    case CommandType::kStreamChunk: cmd = read_as<StreamChunkCommand>(r, CommandType::kStreamChunk); break;
    case CommandType::kExportState: cmd = read_as<ExportStateCommand>(r, CommandType::kExportState); break;
  }
  if (!cmd.ok()) return cmd.status();
  return DecodedCommand{sequence, std::move(cmd).value()};
}

}  // namespace ltx::dist
