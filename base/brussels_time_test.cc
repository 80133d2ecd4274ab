#include "base/brussels_time.h"

#include <gtest/gtest.h>

#include "base/testing/fake_clock.h"

namespace psl {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::sys_days;
using std::chrono::year_month_day;
using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)

std::chrono::system_clock::time_point Utc(int y, unsigned m, unsigned d, int h, int min = 0) {
  return sys_days{std::chrono::year{y} / std::chrono::month{m} / std::chrono::day{d}} + hours{h} +
         minutes{min};
}

TEST(BrusselsTimeTest, WinterIsUtcPlusOne) {
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 1, 2, 12)), hours{1});
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 12, 31, 22)), hours{1});
}

TEST(BrusselsTimeTest, SummerIsUtcPlusTwo) {
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 7, 14, 12)), hours{2});
}

TEST(BrusselsTimeTest, SummerTimeStartsOnTheLastSundayOfMarchAtOneUtc) {
  // 2025-03-30 is the last Sunday of March 2025.
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 3, 30, 0, 59)), hours{1});
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 3, 30, 1, 0)), hours{2});
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 3, 23, 12)), hours{1});  // a Sunday, not the last one
}

TEST(BrusselsTimeTest, SummerTimeEndsOnTheLastSundayOfOctoberAtOneUtc) {
  // 2025-10-26 is the last Sunday of October 2025.
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 10, 26, 0, 59)), hours{2});
  EXPECT_EQ(BrusselsUtcOffset(Utc(2025, 10, 26, 1, 0)), hours{1});
}

TEST(BrusselsTimeTest, TransitionDatesFollowTheYear) {
  // 2024: last Sundays are 31 March and 27 October.
  EXPECT_EQ(BrusselsUtcOffset(Utc(2024, 3, 31, 0, 30)), hours{1});
  EXPECT_EQ(BrusselsUtcOffset(Utc(2024, 3, 31, 1, 30)), hours{2});
  EXPECT_EQ(BrusselsUtcOffset(Utc(2024, 10, 27, 0, 30)), hours{2});
  EXPECT_EQ(BrusselsUtcOffset(Utc(2024, 10, 27, 1, 30)), hours{1});
}

TEST(BrusselsTimeTest, LateUtcEveningIsAlreadyTomorrowInBrussels) {
  EXPECT_EQ(BrusselsDate(Utc(2024, 12, 31, 23, 30)), year_month_day{2025y / 1 / 1});
  EXPECT_EQ(BrusselsDate(Utc(2025, 6, 30, 21, 59)), year_month_day{2025y / 6 / 30});
  EXPECT_EQ(BrusselsDate(Utc(2025, 6, 30, 22, 0)), year_month_day{2025y / 7 / 1});
  EXPECT_EQ(BrusselsDate(Utc(2025, 1, 1, 22, 59)), year_month_day{2025y / 1 / 1});
  EXPECT_EQ(BrusselsDate(Utc(2025, 1, 1, 23, 0)), year_month_day{2025y / 1 / 2});
}

TEST(BrusselsTimeTest, TodayReadsTheInjectedClock) {
  testing::FakeClock clock;
  clock.SetUtc(2025, 1, 2, 9, 30);
  EXPECT_EQ(BrusselsToday(clock), year_month_day{2025y / 1 / 2});
}

}  // namespace
}  // namespace psl
