#include "gateway/log.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <utility>

#include <nlohmann/json.hpp>

namespace psl::gateway {
namespace {

void Put(nlohmann::ordered_json& j, const char* key, const std::string& value) {
  if (!value.empty()) {
    j[key] = value;
  }
}

}  // namespace

std::string FormatRfc3339Utc(std::int64_t epoch_ms) {
  const std::int64_t floor_s = epoch_ms >= 0 ? epoch_ms / 1000 : (epoch_ms - 999) / 1000;
  const auto seconds = static_cast<std::time_t>(floor_s);
  const int millis = static_cast<int>(epoch_ms - floor_s * 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (LogLevel level : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == LogLevelName(level)) {
      return level;
    }
  }
  return std::nullopt;
}

Logger::Logger(LogLevel min_level, Sink sink, const Clock* clock)
    : min_level_(min_level), sink_(std::move(sink)), clock_(clock) {}

std::string Logger::Format(LogLevel level, std::string_view msg, const LogFields& fields) const {
  nlohmann::ordered_json j;
  const auto now = clock_ != nullptr ? clock_->Now() : std::chrono::system_clock::now();
  j["time"] = FormatRfc3339Utc(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  j["level"] = LogLevelName(level);
  j["msg"] = std::string(msg);
  Put(j, "message_id", fields.message_id);
  Put(j, "practice", fields.practice);
  Put(j, "actor", fields.actor);
  Put(j, "kind", fields.kind);
  Put(j, "method", fields.method);
  Put(j, "path", fields.path);
  Put(j, "insurer", fields.insurer);
  Put(j, "code", fields.code);
  Put(j, "error", fields.error);
  if (fields.status) {
    j["status"] = *fields.status;
  }
  if (fields.duration_ms) {
    j["duration_ms"] = *fields.duration_ms;
  }
  // Invalid UTF-8 becomes U+FFFD instead of an exception.
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

void Logger::Log(LogLevel level, std::string_view msg, const LogFields& fields) {
  if (level < min_level_) {
    return;
  }
  const std::string line = Format(level, msg, fields);
  std::lock_guard<std::mutex> lock(mu_);
  if (sink_) {
    sink_(line);
    return;
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fputc('\n', stderr);
  std::fflush(stderr);
}

}  // namespace psl::gateway
