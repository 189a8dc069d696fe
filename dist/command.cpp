#include "dist/command.h"

#include <cstring>
#include <type_traits>

#include "common/check.h"

namespace ltx::dist {
namespace {

constexpr char kMagic[4] = {'L', 'T', 'X', 'C'};
constexpr size_t kHeaderBytes = 4 + 2 + 2 + 8 + 4;

class Writer {
 public:
  void u16(uint16_t v) { uint(v, 2); }
  void u32(uint32_t v) { uint(v, 4); }
  void u64(uint64_t v) { uint(v, 8); }
  void i64(int64_t v) { uint(static_cast<uint64_t>(v), 8); }
  void f64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof(bits));
    u64(bits);
  }
  void str(const std::string& s) {
    LTX_CHECK(s.size() <= kMaxCommandString, "command string field of ", s.size(),
              " bytes exceeds ", kMaxCommandString);
    u32(static_cast<uint32_t>(s.size()));
    out_ += s;
  }
  std::string& bytes() { return out_; }

 private:
  void uint(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_;
};

class Reader {
 public:
  Reader(const std::string& b, size_t pos, size_t end) : b_(b), pos_(pos), end_(end) {}
  bool u16(uint16_t* v) { return uint(v, 2); }
  bool u32(uint32_t* v) { return uint(v, 4); }
  bool u64(uint64_t* v) { return uint(v, 8); }
  bool i64(int64_t* v) {
    uint64_t u;
    if (!uint(&u, 8)) return false;
    *v = static_cast<int64_t>(u);
    return true;
  }
  bool f64(double* v) {
    uint64_t bits;
    if (!u64(&bits)) return false;
    std::memcpy(v, &bits, sizeof(bits));
    return true;
  }
  bool str(std::string* s) {
    uint32_t n;
    if (!u32(&n) || n > kMaxCommandString || n > end_ - pos_) return false;
    s->assign(b_, pos_, n);
    pos_ += n;
    return true;
  }
  bool done() const { return pos_ == end_; }

 private:
  template <typename T>
  bool uint(T* v, int n) {
    if (end_ - pos_ < static_cast<size_t>(n)) return false;
    uint64_t x = 0;
    for (int i = n - 1; i >= 0; --i) x = (x << 8) | static_cast<uint8_t>(b_[pos_ + i]);
    pos_ += n;
    *v = static_cast<T>(x);
    return true;
  }
  const std::string& b_;
  size_t pos_;
  size_t end_;
};

void write_payload(Writer& w, const PingCommand& c) { w.u64(c.token); }
void write_payload(Writer& w, const BeginRequestCommand& c) {
  w.str(c.request_id);
  w.str(c.session_id);
  w.i64(c.width);
  w.i64(c.height);
  w.i64(c.num_frames);
  w.i64(c.num_steps);
  w.f64(c.guidance_scale);
  w.u64(c.seed);
  w.f64(c.guidance_rescale);
  w.f64(c.fps);
}
void write_payload(Writer& w, const StepCommand& c) {
  w.str(c.request_id);
  w.i64(c.step);
}
void write_payload(Writer& w, const CancelCommand& c) { w.str(c.request_id); }
void write_payload(Writer& w, const EndSessionCommand& c) { w.str(c.session_id); }
void write_payload(Writer&, const ShutdownCommand&) {}
void write_payload(Writer& w, const OpenStreamCommand& c) {
  w.str(c.session_id);
  w.u16(c.import_state ? 1 : 0);
  w.i64(c.width);
  w.i64(c.height);
  w.i64(c.chunk_frames);
  w.i64(c.num_steps);
  w.f64(c.guidance_scale);
  w.u64(c.seed);
  w.f64(c.fps);
  w.i64(c.window_chunks);
  w.u16(c.sink ? 1 : 0);
  w.i64(c.max_kv_bytes);
  w.i64(c.decode_context);
  w.f64(c.decode_timestep);
  w.f64(c.decode_noise_scale);
}
void write_payload(Writer& w, const StreamChunkCommand& c) {
  w.str(c.session_id);
  w.i64(c.index);
}
void write_payload(Writer& w, const ExportStateCommand& c) { w.str(c.session_id); }

bool read_payload(Reader& r, PingCommand* c) { return r.u64(&c->token); }
bool read_payload(Reader& r, BeginRequestCommand* c) {
  return r.str(&c->request_id) && r.str(&c->session_id) && r.i64(&c->width) &&
         r.i64(&c->height) && r.i64(&c->num_frames) && r.i64(&c->num_steps) &&
         r.f64(&c->guidance_scale) && r.u64(&c->seed) && r.f64(&c->guidance_rescale) && r.f64(&c->fps);
}
bool read_payload(Reader& r, StepCommand* c) { return r.str(&c->request_id) && r.i64(&c->step); }
bool read_payload(Reader& r, CancelCommand* c) { return r.str(&c->request_id); }
bool read_payload(Reader& r, EndSessionCommand* c) { return r.str(&c->session_id); }
bool read_payload(Reader&, ShutdownCommand*) { return true; }
// A flag travels as u16 0 or 1; anything else is malformed.
bool read_flag(Reader& r, bool* out) {
  uint16_t v = 0;
  if (!r.u16(&v) || v > 1) return false;
  *out = v == 1;
  return true;
}
bool read_payload(Reader& r, OpenStreamCommand* c) {
  return r.str(&c->session_id) && read_flag(r, &c->import_state) && r.i64(&c->width) && r.i64(&c->height) &&
         r.i64(&c->chunk_frames) && r.i64(&c->num_steps) && r.f64(&c->guidance_scale) && r.u64(&c->seed) &&
         r.f64(&c->fps) && r.i64(&c->window_chunks) && read_flag(r, &c->sink) && r.i64(&c->max_kv_bytes) &&
         r.i64(&c->decode_context) && r.f64(&c->decode_timestep) && r.f64(&c->decode_noise_scale);
}
bool read_payload(Reader& r, StreamChunkCommand* c) { return r.str(&c->session_id) && r.i64(&c->index); }
bool read_payload(Reader& r, ExportStateCommand* c) { return r.str(&c->session_id); }

template <typename T>
Result<Command> read_as(Reader& r, CommandType type) {
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
  Writer payload;
  std::visit([&payload](const auto& c) { write_payload(payload, c); }, command);
  Writer w;
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
  Reader header(bytes, 4, kHeaderBytes);
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
  Reader r(bytes, kHeaderBytes, bytes.size());
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
