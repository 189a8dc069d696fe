// Check macros: the two kinds of bug report, and the exception they throw.
//
// LTX_CHECK(cond, msg...)            a caller broke a documented precondition
//                                    (bad argument to an API): INVALID_ARGUMENT.
// LTX_INTERNAL_ASSERT(cond, msg...)  our own invariant broke: INTERNAL, a bug.
// Both throw ltx::Error with "file:line" and the failed condition. The split
// mirrors PyTorch's TORCH_CHECK / TORCH_INTERNAL_ASSERT. Exceptions never cross
// a thread, a rank or the HTTP edge: each top level calls status_from_exception()
// and carries on with a Status. Thread-safe; holds no state.
#pragma once

#include <exception>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

#include "common/status.h"

namespace ltx {

// The one exception type of the project; carries a canonical code.
class Error : public std::runtime_error {
 public:
  Error(StatusCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  explicit Error(const Status& status) : std::runtime_error(status.message()), code_(status.code()) {}
  StatusCode code() const { return code_; }
  Status status() const { return Status(code_, what()); }

 private:
  StatusCode code_;
};

// Converts the exception in flight (call only inside a catch block) to a Status:
// ltx::Error keeps its code, c10::Error and other std::exceptions become INTERNAL.
Status status_from_current_exception();

// Runs f() and turns any exception into a Status; f returns void or Status.
template <typename F>
Status catch_to_status(F&& f) {
  try {
    if constexpr (std::is_same<decltype(f()), Status>::value) {
      return f();
    } else {
      f();
      return Status();
    }
  } catch (...) {
    return status_from_current_exception();
  }
}

namespace detail {

inline void append_all(std::ostringstream&) {}
template <typename T, typename... Rest>
void append_all(std::ostringstream& os, const T& first, const Rest&... rest) {
  os << first;
  append_all(os, rest...);
}

template <typename... Args>
std::string str_cat(const Args&... args) {
  std::ostringstream os;
  append_all(os, args...);
  return os.str();
}

[[noreturn]] void throw_check_failure(StatusCode code, const char* file, int line,
                                      const char* condition, const std::string& message);

}  // namespace detail

// Concatenates its arguments with operator<<.
template <typename... Args>
std::string str_cat(const Args&... args) {
  return detail::str_cat(args...);
}

// Throws the Status as ltx::Error unless it is OK (for code that must not go on).
void throw_if_error(const Status& status);

template <typename T>
T value_or_throw(Result<T>&& result) {
  throw_if_error(result.status());
  return std::move(result).value();
}

}  // namespace ltx

#define LTX_CHECK(cond, ...)                                                            \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      ::ltx::detail::throw_check_failure(::ltx::StatusCode::kInvalidArgument, __FILE__, \
                                         __LINE__, #cond, ::ltx::str_cat(__VA_ARGS__)); \
    }                                                                                   \
  } while (0)

#define LTX_INTERNAL_ASSERT(cond, ...)                                                    \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      ::ltx::detail::throw_check_failure(::ltx::StatusCode::kInternal, __FILE__, __LINE__, \
                                         #cond, ::ltx::str_cat(__VA_ARGS__));              \
    }                                                                                     \
  } while (0)
