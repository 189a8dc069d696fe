#include "common/status.h"


namespace ltx {
namespace {

struct CodeName {
  StatusCode code;
  const char* name;
};

constexpr CodeName kCodeNames[] = {
    {StatusCode::kOk, "OK"},
    {StatusCode::kCancelled, "CANCELLED"},
    {StatusCode::kInvalidArgument, "INVALID_ARGUMENT"},
    {StatusCode::kDeadlineExceeded, "DEADLINE_EXCEEDED"},
    {StatusCode::kNotFound, "NOT_FOUND"},
    {StatusCode::kResourceExhausted, "RESOURCE_EXHAUSTED"},
    {StatusCode::kFailedPrecondition, "FAILED_PRECONDITION"},
    {StatusCode::kUnimplemented, "UNIMPLEMENTED"},
    {StatusCode::kInternal, "INTERNAL"},
    {StatusCode::kUnavailable, "UNAVAILABLE"},
};

}  // namespace

std::string status_code_name(StatusCode code) {
  for (const auto& cn : kCodeNames) {
    if (cn.code == code) return cn.name;
  }
  return "UNKNOWN(" + std::to_string(static_cast<int32_t>(code)) + ")";
}

std::optional<StatusCode> status_code_from_name(const std::string& name) {
  for (const auto& cn : kCodeNames) {
    if (name == cn.name) return cn.code;
  }
  return std::nullopt;
}

bool is_known_status_code(int32_t value) {
  for (const auto& cn : kCodeNames) {
    if (static_cast<int32_t>(cn.code) == value) return true;
  }
  return false;
}

Status::Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {
  if (code_ == StatusCode::kOk) message_.clear();
}

std::string Status::to_string() const {
  if (ok()) return "OK";
  return status_code_name(code_) + ": " + message_;
}

Status Status::with_context(const std::string& context) const {
  if (ok()) return *this;
  return Status(code_, context + ": " + message_);
}

std::ostream& operator<<(std::ostream& os, const Status& s) { return os << s.to_string(); }

Status cancelled_error(std::string m) { return Status(StatusCode::kCancelled, std::move(m)); }
Status invalid_argument_error(std::string m) {
  return Status(StatusCode::kInvalidArgument, std::move(m));
}
Status deadline_exceeded_error(std::string m) {
  return Status(StatusCode::kDeadlineExceeded, std::move(m));
}
Status not_found_error(std::string m) { return Status(StatusCode::kNotFound, std::move(m)); }
Status resource_exhausted_error(std::string m) {
  return Status(StatusCode::kResourceExhausted, std::move(m));
}
Status failed_precondition_error(std::string m) {
  return Status(StatusCode::kFailedPrecondition, std::move(m));
}
Status unimplemented_error(std::string m) {
  return Status(StatusCode::kUnimplemented, std::move(m));
}
Status internal_error(std::string m) { return Status(StatusCode::kInternal, std::move(m)); }
Status unavailable_error(std::string m) { return Status(StatusCode::kUnavailable, std::move(m)); }

}  // namespace ltx
