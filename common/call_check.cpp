#include "common/call_check.h"

namespace ltx::detail {

void throw_call_failure(StatusCode code, const char* library, const char* call, const char* file,
                        int line, int error_code, const std::string& error_string) {
  throw Error(code, std::string(file) + ":" + std::to_string(line) + ": " + library + " call `" +
                        call + "` failed with code " + std::to_string(error_code) + ": " +
                        error_string);
}

}  // namespace ltx::detail
