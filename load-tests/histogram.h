// LatencyHistogram: a log-linear bucketed histogram of non-negative integers (nanoseconds in
// loadgen) in the manner of HdrHistogram. Values below 128 are counted exactly; each power-of-two
// range [2^e, 2^(e+1)) above is split into 128 equal buckets, so a bucket is never wider than
// 1/128 of its lower bound and Percentile() (the bucket's midpoint, clamped to the recorded
// min and max) is within 0.4 % of some recorded value at that rank. Fixed size (7,424 counters,
// ~58 KiB); Record is O(1) and allocation-free.
//
// Thread-compatible: one histogram per thread, merged with Add() after the threads joined.
#ifndef PSL_LOAD_TESTS_HISTOGRAM_H_
#define PSL_LOAD_TESTS_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace psl::loadtest {

class LatencyHistogram {
 public:
  static constexpr int kSubBucketBits = 7;  // 128 sub-buckets per power of two: <= 0.78 % wide
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBucketBits;
  static constexpr std::size_t kBuckets = kSubBuckets + (64 - kSubBucketBits) * kSubBuckets;

  void Record(std::uint64_t value) {
    ++counts_[IndexOf(value)];
    ++count_;
    sum_ += static_cast<long double>(value);
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
  }

  // Adds every value recorded in `other` to this histogram.
  void Add(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < kBuckets; ++i) {
      counts_[i] += other.counts_[i];
    }
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t min() const { return count_ == 0 ? 0 : min_; }  // exact
  std::uint64_t max() const { return max_; }                    // exact
  double mean() const {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_ / static_cast<long double>(count_));
  }

  // The value at percentile `q` (0..100): that of the ceil(q/100 * count)-th smallest recorded
  // value (the smallest for q = 0, the max for q = 100), to within the bucket's width. 0 when
  // empty.
  std::uint64_t Percentile(double q) const {
    if (count_ == 0) {
      return 0;
    }
    q = std::clamp(q, 0.0, 100.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q / 100.0 * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) {
        const std::uint64_t lower = LowerBound(i);
        const std::uint64_t mid = lower + (Width(i) - 1) / 2;
        return std::clamp(mid, min_, max_);
      }
    }
    return max_;
  }

  // Bucket arithmetic, public for the tests.
  static std::size_t IndexOf(std::uint64_t value) {
    if (value < kSubBuckets) {
      return static_cast<std::size_t>(value);
    }
    const int exponent = std::bit_width(value) - 1;  // >= kSubBucketBits
    const int shift = exponent - kSubBucketBits;
    const std::uint64_t sub = (value >> shift) - kSubBuckets;  // 0..127
    return static_cast<std::size_t>(kSubBuckets + static_cast<std::uint64_t>(shift) * kSubBuckets +
                                    sub);
  }
  static std::uint64_t LowerBound(std::size_t index) {
    if (index < kSubBuckets) {
      return index;
    }
    const std::uint64_t j = index - kSubBuckets;
    const std::uint64_t shift = j / kSubBuckets;
    return (kSubBuckets + j % kSubBuckets) << shift;
  }
  static std::uint64_t Width(std::size_t index) {
    return index < kSubBuckets ? 1 : std::uint64_t{1} << ((index - kSubBuckets) / kSubBuckets);
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  long double sum_ = 0;
  std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t max_ = 0;
};

}  // namespace psl::loadtest

#endif  // PSL_LOAD_TESTS_HISTOGRAM_H_
