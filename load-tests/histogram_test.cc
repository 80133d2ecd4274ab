#include "load-tests/histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace psl::loadtest {
namespace {

// The ceil(q/100 * n)-th smallest of `sorted` (the definition Percentile() approximates).
std::uint64_t ExactPercentile(const std::vector<std::uint64_t>& sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void ExpectWithinOnePercent(const LatencyHistogram& h, std::vector<std::uint64_t> values) {
  std::sort(values.begin(), values.end());
  for (double q : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const double exact = static_cast<double>(ExactPercentile(values, q));
    const double got = static_cast<double>(h.Percentile(q));
    EXPECT_LE(std::abs(got - exact), 0.01 * exact) << "q=" << q << " exact=" << exact;
  }
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.count(), values.size());
}

TEST(LatencyHistogramTest, EmptyHistogramReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100; ++v) {
    h.Record(v);
  }
  EXPECT_EQ(h.Percentile(50), 50u);
  EXPECT_EQ(h.Percentile(90), 90u);
  EXPECT_EQ(h.Percentile(99), 99u);
  EXPECT_EQ(h.Percentile(100), 100u);
  EXPECT_EQ(h.Percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogramTest, UniformMicrosecondsToOneSecondAreWithinOnePercent) {
  LatencyHistogram h;
  std::vector<std::uint64_t> values;
  for (std::uint64_t i = 1; i <= 200'000; ++i) {
    const std::uint64_t ns = i * 5'000;  // 5 us .. 1 s
    values.push_back(ns);
    h.Record(ns);
  }
  ExpectWithinOnePercent(h, values);
  EXPECT_NEAR(static_cast<double>(h.Percentile(50)), 500e6, 5e6);
  EXPECT_NEAR(static_cast<double>(h.Percentile(99.9)), 999e6, 9.99e6);
}

TEST(LatencyHistogramTest, ExponentialTailIsWithinOnePercent) {
  // Deterministic exponential sample (inverse CDF at evenly spaced points), mean 2 ms: a long
  // tail such as request latencies have.
  LatencyHistogram h;
  std::vector<std::uint64_t> values;
  constexpr int kN = 100'000;
  for (int i = 0; i < kN; ++i) {
    const double u = (i + 0.5) / kN;
    const auto ns = static_cast<std::uint64_t>(-2e6 * std::log(1.0 - u));
    values.push_back(ns);
    h.Record(ns);
  }
  ExpectWithinOnePercent(h, values);
  // The distribution's own quantiles: p99 = 2 ms * ln(100).
  EXPECT_NEAR(static_cast<double>(h.Percentile(99)), 2e6 * std::log(100.0), 0.01 * 9.21e6);
}

TEST(LatencyHistogramTest, BimodalValuesKeepBothModes) {
  // 98 % fast (1 ms), 2 % slow (800 ms): p50 and p90 fast, p99 slow.
  LatencyHistogram h;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 10'000; ++i) {
    const std::uint64_t ns = i % 50 == 0 ? 800'000'000 + i : 1'000'000 + i;
    values.push_back(ns);
    h.Record(ns);
  }
  ExpectWithinOnePercent(h, values);
  EXPECT_LT(h.Percentile(90), 1'100'000u);
  EXPECT_GT(h.Percentile(99), 790'000'000u);
}

TEST(LatencyHistogramTest, HugeValuesAreWithinOnePercent) {
  LatencyHistogram h;
  std::vector<std::uint64_t> values = {3'600'000'000'000u, 86'400'000'000'000u,
                                       std::uint64_t{1} << 62, ~std::uint64_t{0}};
  for (auto v : values) {
    h.Record(v);
  }
  ExpectWithinOnePercent(h, values);
}

TEST(LatencyHistogramTest, MergedHistogramsEqualOneThatSawEverything) {
  LatencyHistogram a, b, all;
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    const std::uint64_t v = 1'000 + i * i;
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  a.Add(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double q : {50.0, 90.0, 99.0, 99.9}) {
    EXPECT_EQ(a.Percentile(q), all.Percentile(q));
  }
}

TEST(LatencyHistogramTest, EveryValueFallsInsideItsBucket) {
  for (std::uint64_t v :
       {std::uint64_t{0}, std::uint64_t{127}, std::uint64_t{128}, std::uint64_t{255},
        std::uint64_t{256}, std::uint64_t{1'000'003}, std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
    const std::size_t i = LatencyHistogram::IndexOf(v);
    ASSERT_LT(i, LatencyHistogram::kBuckets);
    const std::uint64_t lower = LatencyHistogram::LowerBound(i);
    EXPECT_LE(lower, v);
    EXPECT_LE(v - lower, LatencyHistogram::Width(i) - 1);
    EXPECT_LE(static_cast<double>(LatencyHistogram::Width(i)),
              std::max(1.0, static_cast<double>(lower) / 128.0));
  }
}

}  // namespace
}  // namespace psl::loadtest
