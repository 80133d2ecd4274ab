// Logger: structured log lines, one JSON object per line
//   {"time":"2025-01-02T11:00:00.000Z","level":"info","msg":"accepted","message_id":"…",
//    "practice":"81234530000","status":202,...}
// to a sink (stderr by default; tests capture it).
//
// What may appear is a closed set of fields (LogFields): ids, codes, statuses, durations — never
// a NISS, a name or an amount (STYLE.md §4). `msg` and `error` are fixed texts or Status
// messages, which by contract hold no patient value; never put a request target with its query
// string (auditors' queries carry a NISS there) or any document content in them.
//
// Thread-safe: a line is built off-lock and handed to the sink under a mutex, whole.
#ifndef PSL_GATEWAY_LOG_H_
#define PSL_GATEWAY_LOG_H_

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"

namespace psl::gateway {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
const char* LogLevelName(LogLevel level);  // "debug", "info", "warn", "error"
// "debug" | "info" | "warn" | "error", else nullopt.
std::optional<LogLevel> ParseLogLevel(std::string_view name);

// "2025-01-02T10:00:00.000Z" for Unix epoch milliseconds (UTC, millisecond precision).
std::string FormatRfc3339Utc(std::int64_t epoch_ms);

// The fields a line may carry; empty strings and unset numbers are left out.
struct LogFields {
  std::string message_id;
  std::string practice;  // NIHII of the practice concerned
  std::string actor;     // "ops:…", "auditor:…"
  std::string kind;      // request kind: enrolment, messages, audit, admin, ...
  std::string method;
  std::string path;  // the path WITHOUT its query string
  std::string insurer;
  std::string code;   // an error or outcome code (PSL-*, MyCareNet)
  std::string error;  // a Status message (no patient data by contract)
  std::optional<int> status;
  std::optional<double> duration_ms;
};

class Logger {
 public:
  // Receives one complete line, without the trailing newline.
  using Sink = std::function<void(std::string_view line)>;

  // `clock` (borrowed, may be null = system clock) stamps the lines. A null `sink` writes to
  // stderr.
  explicit Logger(LogLevel min_level = LogLevel::kInfo, Sink sink = nullptr,
                  const Clock* clock = nullptr);

  void Log(LogLevel level, std::string_view msg, const LogFields& fields = {});
  void Info(std::string_view msg, const LogFields& fields = {}) {
    Log(LogLevel::kInfo, msg, fields);
  }
  void Warn(std::string_view msg, const LogFields& fields = {}) {
    Log(LogLevel::kWarn, msg, fields);
  }
  void Error(std::string_view msg, const LogFields& fields = {}) {
    Log(LogLevel::kError, msg, fields);
  }

  // The line Log() would emit (for tests and for other sinks).
  std::string Format(LogLevel level, std::string_view msg, const LogFields& fields) const;

 private:
  LogLevel min_level_;
  Sink sink_;
  const Clock* clock_;
  std::mutex mu_;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_LOG_H_
