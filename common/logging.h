// The one logger: leveled lines "2026-11-22T11:30:00.123Z I [rank 0] [req 7] text".
//
// Any thread may log; a line is written whole under a mutex. The rank comes from
// set_log_rank() (dist::World calls it) or, before that, from the launcher's
// environment; the request id is per thread (ScopedRequestId). The level comes
// from set_log_level() or LTX_LOG_LEVEL (trace|debug|info|warn|error|off).
// Tests may redirect lines with set_log_sink(). Never logs from a destructor of
// a static, never throws.
#pragma once

#include <functional>
#include <optional>
#include <sstream>
#include <string>

namespace ltx {

enum class LogLevel : int { kTrace = 0, kDebug = 1, kInfo = 2, kWarn = 3, kError = 4, kOff = 5 };

void set_log_level(LogLevel level);
LogLevel log_level();
bool log_enabled(LogLevel level);
// "trace", "debug", "info", "warn"/"warning", "error", "off"; nullopt otherwise.
std::optional<LogLevel> parse_log_level(const std::string& name);

// -1 means "not in a group" and prints no rank tag.
void set_log_rank(int rank);
int log_rank();

// The request id tagged on this thread's lines while the object lives.
class ScopedRequestId {
 public:
  explicit ScopedRequestId(std::string id);
  ~ScopedRequestId();
  ScopedRequestId(const ScopedRequestId&) = delete;
  ScopedRequestId& operator=(const ScopedRequestId&) = delete;

 private:
  std::string previous_;
};
const std::string& current_request_id();

// Receives each finished line (without trailing newline); nullptr restores stderr.
using LogSink = std::function<void(LogLevel, const std::string&)>;
void set_log_sink(LogSink sink);

class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

}  // namespace ltx

// LTX_LOG(kInfo) << "loaded " << n << " tensors";  arguments are not evaluated
// when the level is disabled.
#define LTX_LOG(level)                                   \
  if (!::ltx::log_enabled(::ltx::LogLevel::level)) {     \
  } else                                                 \
    ::ltx::LogMessage(::ltx::LogLevel::level, __FILE__, __LINE__).stream()
