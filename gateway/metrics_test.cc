#include "gateway/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "gateway/log.h"

namespace psl::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, CounterRendersHelpTypeAndLabels) {
  Metrics metrics;
  CounterFamily* requests =
      metrics.AddCounter("passerelle_requests_total", "Requests.", {"kind", "status"});
  requests->WithLabels({"enrolment", "202"})->Inc();
  requests->WithLabels({"enrolment", "202"})->Inc(2);
  requests->WithLabels({"enrolment", "422"})->Inc();
  requests->WithLabels({"enrolment", "422"})->Inc(-5);  // counters never go down
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("# HELP passerelle_requests_total Requests.\n"
                              "# TYPE passerelle_requests_total counter\n"
                              "passerelle_requests_total{kind=\"enrolment\",status=\"202\"} 3\n"
                              "passerelle_requests_total{kind=\"enrolment\",status=\"422\"} 1\n"));
}

TEST(MetricsTest, SameNameReturnsTheSameFamilyAndChildrenAreStable) {
  Metrics metrics;
  CounterFamily* a = metrics.AddCounter("x_total", "X.", {"l"});
  CounterFamily* b = metrics.AddCounter("x_total", "X.", {"l"});
  EXPECT_EQ(a, b);
  Counter* c = a->WithLabels({"v"});
  for (int i = 0; i < 100; ++i) {
    a->WithLabels({std::to_string(i)});
  }
  EXPECT_EQ(a->WithLabels({"v"}), c);
}

TEST(MetricsTest, GaugeWithoutLabelsAndEscapedLabelValues) {
  Metrics metrics;
  metrics.AddGauge("g", "A gauge\nwith \\ two lines.")->Get()->Set(-2.5);
  metrics.AddGauge("h", "H.", {"certificate"})->WithLabels({"a\"b\\c\nd"})->Set(1e10);
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("# HELP g A gauge\\nwith \\\\ two lines.\n# TYPE g gauge\ng -2.5\n"));
  EXPECT_THAT(text, HasSubstr("h{certificate=\"a\\\"b\\\\c\\nd\"} 1e+10\n"));
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Metrics metrics;
  HistogramFamily* h = metrics.AddHistogram("d_seconds", "D.", {"kind"}, {0.5, 0.125, 1});
  Histogram* child = h->WithLabels({"enrolment"});
  child->Observe(0.0625);
  child->Observe(0.125);  // on a bound: counted in that bucket (le is inclusive)
  child->Observe(0.75);
  child->Observe(3);
  const std::string text = metrics.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE d_seconds histogram\n"
                              "d_seconds_bucket{kind=\"enrolment\",le=\"0.125\"} 2\n"
                              "d_seconds_bucket{kind=\"enrolment\",le=\"0.5\"} 2\n"
                              "d_seconds_bucket{kind=\"enrolment\",le=\"1\"} 3\n"
                              "d_seconds_bucket{kind=\"enrolment\",le=\"+Inf\"} 4\n"
                              "d_seconds_sum{kind=\"enrolment\"} 3.9375\n"
                              "d_seconds_count{kind=\"enrolment\"} 4\n"));
}

TEST(MetricsTest, CollectorsRunAtScrapeTime) {
  Metrics metrics;
  GatewayMetrics m = RegisterGatewayMetrics(metrics);
  int depth = 3;
  int runs = 0;
  metrics.AddCollector([&] {
    ++runs;
    m.queue_depth->WithLabels({"300"})->Set(depth);
  });
  EXPECT_EQ(runs, 0);
  EXPECT_THAT(metrics.Render(), HasSubstr("passerelle_queue_depth{insurer=\"300\"} 3\n"));
  depth = 7;
  EXPECT_THAT(metrics.Render(), HasSubstr("passerelle_queue_depth{insurer=\"300\"} 7\n"));
  EXPECT_EQ(runs, 2);
}

TEST(MetricsTest, GatewayMetricsAreAllDeclared) {
  Metrics metrics;
  GatewayMetrics m = RegisterGatewayMetrics(metrics);
  EXPECT_EQ(RegisterGatewayMetrics(metrics).requests_total, m.requests_total);  // idempotent
  m.commit_batch_size->Get()->Observe(8);
  const std::string text = metrics.Render();
  for (const char* name :
       {"passerelle_requests_total counter", "passerelle_request_duration_seconds histogram",
        "passerelle_queue_depth gauge", "passerelle_queue_oldest_age_seconds gauge",
        "passerelle_delivery_attempts_total counter", "passerelle_dead_letters_total counter",
        "passerelle_commit_batch_size histogram", "passerelle_certificate_expiry_seconds gauge",
        "passerelle_breaker_open gauge"}) {
    EXPECT_THAT(text, HasSubstr(std::string("# TYPE ") + name + "\n"));
  }
  EXPECT_THAT(text, HasSubstr("passerelle_commit_batch_size_bucket{le=\"8\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("passerelle_commit_batch_size_count 1\n"));
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Metrics metrics;
  CounterFamily* family = metrics.AddCounter("c_total", "C.", {"t"});
  HistogramFamily* hist = metrics.AddHistogram("h", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) {
        family->WithLabels({std::to_string(i % 3)})->Inc();
        hist->Get()->Observe(t);
      }
    });
  }
  std::thread scraper([&] {
    for (int i = 0; i < 20; ++i) {
      (void)metrics.Render();
    }
  });
  for (auto& th : threads) {
    th.join();
  }
  scraper.join();
  double total = 0;
  family->ForEach([&](const std::vector<std::string>&, const Counter& c) { total += c.Value(); });
  EXPECT_EQ(total, 4000);
  EXPECT_EQ(hist->Get()->Read().count, 4000u);
}

TEST(MetricsTest, ValuesAreFormattedForPrometheus) {
  EXPECT_EQ(FormatMetricValue(1), "1");
  EXPECT_EQ(FormatMetricValue(0.25), "0.25");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(LoggerTest, OneJsonObjectPerLineWithOnlyTheGivenFields) {
  std::vector<std::string> lines;
  Logger logger(LogLevel::kInfo, [&](std::string_view line) { lines.emplace_back(line); });
  logger.Log(LogLevel::kDebug, "hidden");
  LogFields fields;
  fields.message_id = "m-1";
  fields.practice = "81234530000";
  fields.status = 202;
  logger.Info("accepted", fields);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("\"level\":\"info\""));
  EXPECT_THAT(lines[0], HasSubstr("\"msg\":\"accepted\""));
  EXPECT_THAT(lines[0], HasSubstr("\"message_id\":\"m-1\""));
  EXPECT_THAT(lines[0], HasSubstr("\"status\":202"));
  EXPECT_THAT(lines[0], Not(HasSubstr("insurer")));  // unset fields are left out
  EXPECT_THAT(lines[0], Not(HasSubstr("\n")));
  EXPECT_EQ(ParseLogLevel("warn"), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("loud"), std::nullopt);
}

}  // namespace
}  // namespace psl::gateway
