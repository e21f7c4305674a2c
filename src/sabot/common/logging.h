#pragma once

#include <sstream>
#include <string_view>

namespace sabot {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// The least severe level written to stderr. Starts from the environment variable
// SABOT_LOG_LEVEL (debug, info, warning, error; default warning). Thread-safe.
LogLevel MinLogLevel();
void SetMinLogLevel(LogLevel level);

namespace internal {

// One log line: collects the message and writes it, whole, to stderr when destroyed.
class LogLine {
 public:
  LogLine(LogLevel level, const char* file, int line);
  ~LogLine();
  LogLine(const LogLine&) = delete;
  LogLine& operator=(const LogLine&) = delete;

  template <typename T>
  LogLine& operator<<(const T& value) {
    stream_ << value;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};

// Turns a LogLine expression into void, so SABOT_LOG can be a conditional expression: `&` binds
// more loosely than `<<`, so the whole message is built first.
struct LogVoidify {
  void operator&(const LogLine&) {}
};

}  // namespace internal
}  // namespace sabot

// SABOT_LOG(kInfo) << "agent listening on " << port;  The message is built only when the level
// is enabled.
#define SABOT_LOG(level)                                      \
  (::sabot::LogLevel::level < ::sabot::MinLogLevel())         \
      ? (void)0                                               \
      : ::sabot::internal::LogVoidify() &                     \
            ::sabot::internal::LogLine(::sabot::LogLevel::level, __FILE__, __LINE__)
