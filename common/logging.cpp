#include "common/logging.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

namespace ltx {
namespace {

LogLevel initial_level() {
  const char* env = std::getenv("LTX_LOG_LEVEL");
  if (env != nullptr) {
    if (auto level = parse_log_level(env)) return *level;
  }
  return LogLevel::kInfo;
}

int initial_rank() {
  // Set by the launchers before main(): Open MPI, MPICH/PMI, Slurm.
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return std::atoi(v);
  }
  return -1;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(initial_level())};
  return level;
}

std::atomic<int>& rank_storage() {
  static std::atomic<int> rank{initial_rank()};
  return rank;
}

std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}

LogSink& sink_storage() {
  static LogSink sink;
  return sink;
}

thread_local std::string t_request_id;

char level_letter(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace: return 'T';
    case LogLevel::kDebug: return 'D';
    case LogLevel::kInfo: return 'I';
    case LogLevel::kWarn: return 'W';
    case LogLevel::kError: return 'E';
    case LogLevel::kOff: break;
  }
  return '?';
}

const char* base_name(const char* path) {
  const char* base = path;
  for (const char* p = path; *p != '\0'; ++p) {
    if (*p == '/') base = p + 1;
  }
  return base;
}

}  // namespace

void set_log_level(LogLevel level) { level_storage().store(static_cast<int>(level)); }
LogLevel log_level() { return static_cast<LogLevel>(level_storage().load()); }
bool log_enabled(LogLevel level) {
  return level != LogLevel::kOff && static_cast<int>(level) >= level_storage().load();
}

std::optional<LogLevel> parse_log_level(const std::string& name) {
  if (name == "trace") return LogLevel::kTrace;
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "off") return LogLevel::kOff;
  return std::nullopt;
}

void set_log_rank(int rank) { rank_storage().store(rank); }
int log_rank() { return rank_storage().load(); }

ScopedRequestId::ScopedRequestId(std::string id) : previous_(std::move(t_request_id)) {
  t_request_id = std::move(id);
}
ScopedRequestId::~ScopedRequestId() { t_request_id = std::move(previous_); }
const std::string& current_request_id() { return t_request_id; }

void set_log_sink(LogSink sink) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  sink_storage() = std::move(sink);
}

LogMessage::LogMessage(LogLevel level, const char* file, int line)
    : level_(level), file_(file), line_(line) {}

LogMessage::~LogMessage() {
  try {
    auto now = std::chrono::system_clock::now();
    std::time_t secs = std::chrono::system_clock::to_time_t(now);
    int millis = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char stamp[64];
    std::snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
    std::string text = std::string(stamp) + " " + level_letter(level_);
    int rank = log_rank();
    if (rank >= 0) text += " [rank " + std::to_string(rank) + "]";
    if (!t_request_id.empty()) text += " [req " + t_request_id + "]";
    if (level_ >= LogLevel::kWarn || log_enabled(LogLevel::kDebug)) {
      text += std::string(" ") + base_name(file_) + ":" + std::to_string(line_);
    }
    text += " " + stream_.str();

    std::lock_guard<std::mutex> lock(sink_mutex());
    if (sink_storage()) {
      sink_storage()(level_, text);
    } else {
      text += '\n';
      std::fwrite(text.data(), 1, text.size(), stderr);
      std::fflush(stderr);
    }
  } catch (...) {
    // A log line is never worth a crash.
  }
}

}  // namespace ltx
