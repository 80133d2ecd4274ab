// FakeClock: a Clock that says what the test sets. Not thread-safe to Set() while others read.
#ifndef PSL_BASE_TESTING_FAKE_CLOCK_H_
#define PSL_BASE_TESTING_FAKE_CLOCK_H_

#include <chrono>
#include <ctime>

#include "base/clock.h"

namespace psl::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::chrono::system_clock::time_point now = {}) : now_(now) {}
  std::chrono::system_clock::time_point Now() const override { return now_; }
  void Set(std::chrono::system_clock::time_point now) { now_ = now; }
  // Sets the clock to the given UTC civil time.
  void SetUtc(int year, unsigned month, unsigned day, int hour = 12, int minute = 0) {
    using namespace std::chrono;  // NOLINT(google-build-using-namespace)
    now_ = sys_days{std::chrono::year{year} / std::chrono::month{month} / std::chrono::day{day}} +
           hours{hour} + minutes{minute};
  }

 private:
  std::chrono::system_clock::time_point now_;
};

}  // namespace psl::testing

#endif  // PSL_BASE_TESTING_FAKE_CLOCK_H_
