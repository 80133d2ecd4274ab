// Metrics: a small Prometheus registry (counters, gauges, histograms with fixed buckets, each a
// family of label sets) rendered in the text exposition format 0.0.4 with HELP and TYPE lines.
//
// Families are registered at start-up (AddCounter/AddGauge/AddHistogram); the registry owns them
// and they live as long as it. A family's WithLabels() returns a child that stays valid for the
// registry's lifetime: resolve it once and keep the pointer on hot paths. Updating a child is
// lock-free (atomics); WithLabels() takes a shared lock (an exclusive one only the first time a
// label set is seen). Collectors registered with AddCollector run at the start of every Render()
// (scrape time), on the scraping thread, e.g. to set queue-depth gauges from the store.
// Everything is thread-safe. Label values are never patient data (kinds, statuses, insurer codes).
#ifndef PSL_GATEWAY_METRICS_H_
#define PSL_GATEWAY_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace psl::gateway {

// A monotonically increasing value (Inc with a negative value is ignored).
class Counter {
 public:
  void Inc(double by = 1.0) {
    if (by > 0) {
      value_.fetch_add(by, std::memory_order_relaxed);
    }
  }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  void Set(double value) { value_.store(value, std::memory_order_relaxed); }
  void Add(double by) { value_.fetch_add(by, std::memory_order_relaxed); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into fixed buckets (upper bounds, ascending; +Inf is implicit).
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds);
  void Observe(double value);

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot Read() const;

 private:
  const std::vector<double>* bounds_;                      // owned by the family
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bucket, not cumulative; +Inf last
  std::atomic<double> sum_{0.0};
  std::atomic<std::uint64_t> count_{0};
};

enum class MetricType { kCounter, kGauge, kHistogram };

// One metric name with its label names; children per label-value tuple.
template <typename Child>
class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
               std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // The child for `values` (one per label name; missing values are "", extra ones ignored).
  // Never null; stable for the registry's lifetime.
  Child* WithLabels(const std::vector<std::string>& values);
  // The child without labels (for a family declared without label names).
  Child* Get() { return WithLabels({}); }
  // Forgets every child (pointers previously returned become dangling: only for collectors that
  // rebuild a gauge family on each scrape and keep no pointers).
  void Clear();

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<double>& bounds() const { return bounds_; }  // histograms only

  // Calls fn(label values, child) for every child, in label order.
  void ForEach(const std::function<void(const std::vector<std::string>&, const Child&)>& fn) const;

 private:
  std::unique_ptr<Child> MakeChild() const;

  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  mutable std::shared_mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children_;
};

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

// Default latency buckets in seconds (1 ms .. 10 s).
std::vector<double> LatencyBuckets();

class Metrics {
 public:
  Metrics() = default;
  ~Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  Metrics(Metrics&&) = delete;
  Metrics& operator=(Metrics&&) = delete;

  // Registers a family, or returns the existing one of that name and type (a name registered
  // with another type is a programming error: release-fatal). `name` must match
  // [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (release-fatal otherwise).
  CounterFamily* AddCounter(const std::string& name, const std::string& help,
                            std::vector<std::string> label_names = {});
  GaugeFamily* AddGauge(const std::string& name, const std::string& help,
                        std::vector<std::string> label_names = {});
  // `bounds` ascending (sorted and de-duplicated here); +Inf is added by the renderer.
  HistogramFamily* AddHistogram(const std::string& name, const std::string& help,
                                std::vector<std::string> label_names, std::vector<double> bounds);

  // `collector` runs at the start of each Render(), serialised with other renders. It must not
  // call Render() and should be quick (a scrape waits for it).
  void AddCollector(std::function<void()> collector);

  // Runs the collectors, then the text exposition format 0.0.4 of every family in name order.
  std::string Render();

 private:
  struct Entry {
    MetricType type = MetricType::kCounter;
    std::unique_ptr<CounterFamily> counter;
    std::unique_ptr<GaugeFamily> gauge;
    std::unique_ptr<HistogramFamily> histogram;
  };
  Entry* FindOrAdd(const std::string& name, MetricType type,
                   const std::vector<std::string>& labels);

  std::mutex mu_;  // families_ and collectors_
  std::map<std::string, Entry> families_;
  std::vector<std::function<void()>> collectors_;
  std::mutex render_mu_;  // one scrape at a time, collectors included
};

// Content-Type of Render()'s output.
inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// The gateway's metrics (DESIGN.md "Public contracts": GET /metrics), registered once by the app
// and shared by the api, the delivery workers and the store collector. Pointers into `metrics`.
struct GatewayMetrics {
  CounterFamily* requests_total = nullptr;              // {kind, status}
  HistogramFamily* request_duration_seconds = nullptr;  // {kind}
  GaugeFamily* queue_depth = nullptr;                   // {insurer}
  GaugeFamily* queue_oldest_age_seconds = nullptr;      // {insurer}
  CounterFamily* delivery_attempts_total = nullptr;     // {insurer, outcome}
  CounterFamily* dead_letters_total = nullptr;          // {insurer}
  HistogramFamily* commit_batch_size = nullptr;         // no labels
  GaugeFamily* certificate_expiry_seconds = nullptr;    // {certificate}
  GaugeFamily* breaker_open = nullptr;                  // {insurer}; 1 open, 0 closed
  // RocksDB's own memory, {kind}: "memtables", "table_readers", "block_cache".
  GaugeFamily* store_memory_bytes = nullptr;
  // Requests refused at admission with 503 + Retry-After, {reason, insurer}: reason "backlog"
  // (the insurer's max_backlog reached), "queue_delay" / "queue_full" (the intake pool; insurer
  // ""), "stopped" (shutting down).
  CounterFamily* intake_shed_total = nullptr;
};
// Registers (or finds) every family above; idempotent.
GatewayMetrics RegisterGatewayMetrics(Metrics& metrics);

// Text-format helpers (exposed for tests): a sample value ("+Inf", "-Inf", "NaN", else the
// shortest round-trip form) and an escaped label value (\\, \", \n).
std::string FormatMetricValue(double value);
std::string EscapeLabelValue(std::string_view value);

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_METRICS_H_
