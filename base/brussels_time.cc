#include "base/brussels_time.h"

namespace psl {
namespace {

using std::chrono::sys_days;

// The EU switches at 01:00 UTC on the last Sunday of March and of October.
std::chrono::system_clock::time_point LastSundayOneUtc(std::chrono::year year,
                                                       std::chrono::month month) {
  const sys_days day{year / month / std::chrono::Sunday[std::chrono::last]};
  return day + std::chrono::hours{1};
}

}  // namespace

std::chrono::minutes BrusselsUtcOffset(std::chrono::system_clock::time_point t) {
  const std::chrono::year year =
      std::chrono::year_month_day{std::chrono::floor<std::chrono::days>(t)}.year();
  const auto summer_start = LastSundayOneUtc(year, std::chrono::March);
  const auto summer_end = LastSundayOneUtc(year, std::chrono::October);
  if (t >= summer_start && t < summer_end) {
    return std::chrono::hours{2};
  }
  return std::chrono::hours{1};
}

std::chrono::year_month_day BrusselsDate(std::chrono::system_clock::time_point t) {
  return std::chrono::year_month_day{
      std::chrono::floor<std::chrono::days>(t + BrusselsUtcOffset(t))};
}

std::chrono::year_month_day BrusselsToday(const Clock& clock) {
  return BrusselsDate(clock.Now());
}

}  // namespace psl
