// Europe/Brussels civil time without a time-zone database (libstdc++ 12 has no tzdb).
//
// Belgium follows the EU rule since 1996: CET (UTC+1), and CEST (UTC+2) from the last Sunday of
// March 01:00 UTC to the last Sunday of October 01:00 UTC. MyCareNet compares request, transaction
// and agreement dates with "today" in Belgium, so business date rules use BrusselsToday().
// Pure functions, thread-safe.
#ifndef PSL_BASE_BRUSSELS_TIME_H_
#define PSL_BASE_BRUSSELS_TIME_H_

#include <chrono>

#include "base/clock.h"

namespace psl {

// The offset of Brussels civil time from UTC at `t`: 1 h (CET) or 2 h (CEST).
std::chrono::minutes BrusselsUtcOffset(std::chrono::system_clock::time_point t);

// The Brussels civil date at `t`.
std::chrono::year_month_day BrusselsDate(std::chrono::system_clock::time_point t);

// The Brussels civil date now, according to `clock`.
std::chrono::year_month_day BrusselsToday(const Clock& clock);

}  // namespace psl

#endif  // PSL_BASE_BRUSSELS_TIME_H_
