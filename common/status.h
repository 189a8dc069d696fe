// Status and Result<T>: the error vocabulary at every module boundary.
//
// Expected failures (bad request values, unknown session, queue full, malformed
// checkpoint, cancelled) travel as a Status with a canonical code and a message
// that names the field or file. Bugs are not Statuses: they are the check macros
// of check.h. Any thread on any rank may use these types; they hold no shared
// state. The code vocabulary follows abseil's canonical codes.
#pragma once

#include <cstdint>
#include <new>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace ltx {

enum class StatusCode : int32_t {
  kOk = 0,
  kCancelled = 1,
  kInvalidArgument = 3,
  kDeadlineExceeded = 4,
  kNotFound = 5,
  kResourceExhausted = 8,
  kFailedPrecondition = 9,
  kUnimplemented = 12,
  kInternal = 13,
  kUnavailable = 14,
};

// "INVALID_ARGUMENT", "NOT_FOUND", ... ; "UNKNOWN(<n>)" for a value outside the enum.
std::string status_code_name(StatusCode code);
// The inverse of status_code_name; nullopt for an unknown name.
std::optional<StatusCode> status_code_from_name(const std::string& name);
// True when `value` is one of the StatusCode enumerators (for decoding wire data).
bool is_known_status_code(int32_t value);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message);

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "INVALID_ARGUMENT: width must be a multiple of 32" or "OK".
  std::string to_string() const;

  // Prefixes the message with context ("loading transformer: ...").
  Status with_context(const std::string& context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }
  friend bool operator!=(const Status& a, const Status& b) { return !(a == b); }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

std::ostream& operator<<(std::ostream& os, const Status& s);

inline Status ok_status() { return Status(); }
Status cancelled_error(std::string message);
Status invalid_argument_error(std::string message);
Status deadline_exceeded_error(std::string message);
Status not_found_error(std::string message);
Status resource_exhausted_error(std::string message);
Status failed_precondition_error(std::string message);
Status unimplemented_error(std::string message);
Status internal_error(std::string message);
Status unavailable_error(std::string message);

// Holds either a T or a non-OK Status. Accessing the value of an error Result is
// a bug and throws (see check.h); callers test ok() first or use LTX_ASSIGN_OR_RETURN.
template <typename T>
class [[nodiscard]] Result {
  static_assert(!std::is_same<std::decay_t<T>, Status>::value, "Result<Status> is meaningless");

 public:
  Result(const T& value) : v_(value) {}                          // NOLINT: implicit by design
  Result(T&& value) : v_(std::move(value)) {}                    // NOLINT
  Result(Status status) : v_(std::move(status)) { check_not_ok_(); }  // NOLINT

  bool ok() const { return v_.index() == 0; }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<1>(v_);
  }

  T& value() & {
    check_ok_();
    return std::get<0>(v_);
  }
  const T& value() const& {
    check_ok_();
    return std::get<0>(v_);
  }
  T&& value() && {
    check_ok_();
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void check_ok_() const;
  void check_not_ok_();
  std::variant<T, Status> v_;
};

namespace detail {
[[noreturn]] void throw_bad_result_access(const Status& status);
}  // namespace detail

template <typename T>
void Result<T>::check_ok_() const {
  if (!ok()) detail::throw_bad_result_access(std::get<1>(v_));
}

template <typename T>
void Result<T>::check_not_ok_() {
  if (std::get<1>(v_).ok()) {
    v_ = Status(StatusCode::kInternal, "Result constructed from an OK Status without a value");
  }
}

}  // namespace ltx

#define LTX_STATUS_CONCAT_INNER_(a, b) a##b
#define LTX_STATUS_CONCAT_(a, b) LTX_STATUS_CONCAT_INNER_(a, b)

// Returns the Status from the enclosing function when `expr` is not OK.
#define LTX_RETURN_IF_ERROR(expr)                 \
  do {                                            \
    ::ltx::Status ltx_status_ = (expr);           \
    if (!ltx_status_.ok()) return ltx_status_;    \
  } while (0)

// `lhs = value of rexpr` or return its Status. lhs may declare a variable.
#define LTX_ASSIGN_OR_RETURN(lhs, rexpr) \
  LTX_ASSIGN_OR_RETURN_IMPL_(LTX_STATUS_CONCAT_(ltx_result_, __LINE__), lhs, rexpr)
#define LTX_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                               \
  if (!tmp.ok()) return tmp.status();               \
  lhs = std::move(tmp).value()
