#include "common/check.h"

#include <c10/util/Exception.h>

namespace ltx {

Status status_from_current_exception() {
  try {
    throw;
  } catch (const Error& e) {
    return e.status();
  } catch (const c10::Error& e) {
    // what_without_backtrace keeps torch's message without the C++ stack dump.
    return Status(StatusCode::kInternal, std::string("torch: ") + e.what_without_backtrace());
  } catch (const std::bad_alloc&) {
    return Status(StatusCode::kResourceExhausted, "out of memory");
  } catch (const std::exception& e) {
    return Status(StatusCode::kInternal, e.what());
  } catch (...) {
    return Status(StatusCode::kInternal, "unknown exception");
  }
}

void throw_if_error(const Status& status) {
  if (!status.ok()) throw Error(status);
}

namespace detail {

void throw_check_failure(StatusCode code, const char* file, int line, const char* condition,
                         const std::string& message) {
  std::string text = std::string(file) + ":" + std::to_string(line) + ": ";
  text += code == StatusCode::kInternal ? "internal assertion `" : "check `";
  text += condition;
  text += "` failed";
  if (!message.empty()) text += ": " + message;
  if (code == StatusCode::kInternal) text += " (this is a bug in ltx-worker)";
  throw Error(code, text);
}

// Declared in status.h (Result<T>::value() of an error); defined here, where
// the exception type lives, so status does not depend on check.
void throw_bad_result_access(const Status& status) {
  throw Error(StatusCode::kInternal, "value() of an error Result: " + status.to_string());
}

}  // namespace detail
}  // namespace ltx
