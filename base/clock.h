// Clock: the injectable source of "now" (a real seam: business date rules and signing times are
// tested with a fixed clock). Implementations are thread-safe.
#ifndef PSL_BASE_CLOCK_H_
#define PSL_BASE_CLOCK_H_

#include <chrono>

namespace psl {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::now();
  }
};

}  // namespace psl

#endif  // PSL_BASE_CLOCK_H_
