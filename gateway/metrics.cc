#include "gateway/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <system_error>
#include <type_traits>
#include <utility>

namespace psl::gateway {
namespace {

[[noreturn]] void DieOnBadRegistration(const std::string& what) {
  std::fprintf(stderr, "passerelle: metrics registration bug: %s\n", what.c_str());
  std::abort();
}

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) {
    return false;
  }
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) {
      return false;
    }
  }
  return true;
}

std::string EscapeHelp(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with an optional extra label (le) last; "" when there is no label at all.
std::string LabelSet(const std::vector<std::string>& names, const std::vector<std::string>& values,
                     std::string_view extra_name = {}, std::string_view extra_value = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + EscapeLabelValue(i < values.size() ? values[i] : "") + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += std::string(extra_name) + "=\"" + EscapeLabelValue(extra_value) + "\"";
  }
  if (!out.empty()) {
    out += "}";
  }
  return out;
}

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

template <typename Family>
void Header(const Family& family, MetricType type, std::string& out) {
  out += "# HELP " + family.name() + " " + EscapeHelp(family.help()) + "\n";
  out += "# TYPE " + family.name() + " " + TypeName(type) + "\n";
}

template <typename Family>
void RenderScalar(const Family& family, MetricType type, std::string& out) {
  Header(family, type, out);
  family.ForEach([&](const std::vector<std::string>& values, const auto& child) {
    out += family.name() + LabelSet(family.label_names(), values) + " " +
           FormatMetricValue(child.Value()) + "\n";
  });
}

void RenderHistogram(const HistogramFamily& family, const std::vector<double>& bounds,
                     std::string& out) {
  Header(family, MetricType::kHistogram, out);
  family.ForEach([&](const std::vector<std::string>& values, const Histogram& child) {
    const Histogram::Snapshot snap = child.Read();
    for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
      const std::string le = i < bounds.size() ? FormatMetricValue(bounds[i]) : "+Inf";
      out += family.name() + "_bucket" + LabelSet(family.label_names(), values, "le", le) + " " +
             std::to_string(snap.cumulative[i]) + "\n";
    }
    const std::string labels = LabelSet(family.label_names(), values);
    out += family.name() + "_sum" + labels + " " + FormatMetricValue(snap.sum) + "\n";
    out += family.name() + "_count" + labels + " " + std::to_string(snap.count) + "\n";
  });
}

}  // namespace

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) {
    return "NaN";
  }
  if (std::isinf(value)) {
    return value > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  if (result.ec != std::errc()) {
    return "NaN";
  }
  return std::string(buf, result.ptr);
}

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::vector<double> LatencyBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

Histogram::Histogram(const std::vector<double>* bounds)
    : bounds_(bounds),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds->size() + 1)) {
  for (std::size_t i = 0; i <= bounds_->size(); ++i) {
    buckets_[i].store(0, std::memory_order_relaxed);
  }
}

void Histogram::Observe(double value) {
  // Bucket i counts observations <= bounds[i] and > bounds[i-1]; the last one is +Inf (and NaN).
  const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), value);
  const auto index = static_cast<std::size_t>(it - bounds_->begin());
  buckets_[index].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot snap;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_->size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    snap.cumulative.push_back(running);
  }
  snap.sum = sum_.load(std::memory_order_relaxed);
  // Concurrent observations may land between the loads: keep count consistent with +Inf.
  snap.count = running;
  return snap;
}

template <typename Child>
std::unique_ptr<Child> MetricFamily<Child>::MakeChild() const {
  if constexpr (std::is_same_v<Child, Histogram>) {
    return std::make_unique<Histogram>(&bounds_);
  } else {
    return std::make_unique<Child>();
  }
}

template <typename Child>
Child* MetricFamily<Child>::WithLabels(const std::vector<std::string>& values) {
  std::vector<std::string> key(label_names_.size());
  for (std::size_t i = 0; i < key.size() && i < values.size(); ++i) {
    key[i] = values[i];
  }
  {
    std::shared_lock<std::shared_mutex> lock(mu_);
    auto it = children_.find(key);
    if (it != children_.end()) {
      return it->second.get();
    }
  }
  std::unique_lock<std::shared_mutex> lock(mu_);
  auto& slot = children_[key];
  if (!slot) {
    slot = MakeChild();
  }
  return slot.get();
}

template <typename Child>
void MetricFamily<Child>::Clear() {
  std::unique_lock<std::shared_mutex> lock(mu_);
  children_.clear();
}

template <typename Child>
void MetricFamily<Child>::ForEach(
    const std::function<void(const std::vector<std::string>&, const Child&)>& fn) const {
  std::shared_lock<std::shared_mutex> lock(mu_);
  for (const auto& [values, child] : children_) {
    fn(values, *child);
  }
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

Metrics::Entry* Metrics::FindOrAdd(const std::string& name, MetricType type,
                                   const std::vector<std::string>& labels) {
  if (!ValidName(name, /*allow_colon=*/true)) {
    DieOnBadRegistration("invalid metric name '" + name + "'");
  }
  for (const std::string& label : labels) {
    if (!ValidName(label, /*allow_colon=*/false) || label == "le") {
      std::string what = "invalid label name '";
      what += label;
      what += "' of ";
      what += name;
      DieOnBadRegistration(what);
    }
  }
  auto it = families_.find(name);
  if (it != families_.end()) {
    if (it->second.type != type) {
      DieOnBadRegistration(name + " registered twice with different types");
    }
    return &it->second;
  }
  Entry& entry = families_[name];
  entry.type = type;
  return &entry;
}

CounterFamily* Metrics::AddCounter(const std::string& name, const std::string& help,
                                   std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* entry = FindOrAdd(name, MetricType::kCounter, label_names);
  if (!entry->counter) {
    entry->counter = std::make_unique<CounterFamily>(name, help, std::move(label_names));
  }
  return entry->counter.get();
}

GaugeFamily* Metrics::AddGauge(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names) {
  std::lock_guard<std::mutex> lock(mu_);
  Entry* entry = FindOrAdd(name, MetricType::kGauge, label_names);
  if (!entry->gauge) {
    entry->gauge = std::make_unique<GaugeFamily>(name, help, std::move(label_names));
  }
  return entry->gauge.get();
}

HistogramFamily* Metrics::AddHistogram(const std::string& name, const std::string& help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
  std::sort(bounds.begin(), bounds.end());
  bounds.erase(std::unique(bounds.begin(), bounds.end()), bounds.end());
  bounds.erase(std::remove_if(bounds.begin(), bounds.end(),
                              [](double b) { return std::isnan(b) || std::isinf(b); }),
               bounds.end());
  std::lock_guard<std::mutex> lock(mu_);
  Entry* entry = FindOrAdd(name, MetricType::kHistogram, label_names);
  if (!entry->histogram) {
    entry->histogram =
        std::make_unique<HistogramFamily>(name, help, std::move(label_names), std::move(bounds));
  }
  return entry->histogram.get();
}

void Metrics::AddCollector(std::function<void()> collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Metrics::Render() {
  std::lock_guard<std::mutex> render_lock(render_mu_);
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) {
    collect();
  }
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& [name, entry] : families_) {
    switch (entry.type) {
      case MetricType::kCounter:
        RenderScalar(*entry.counter, entry.type, out);
        break;
      case MetricType::kGauge:
        RenderScalar(*entry.gauge, entry.type, out);
        break;
      case MetricType::kHistogram:
        RenderHistogram(*entry.histogram, entry.histogram->bounds(), out);
        break;
    }
  }
  return out;
}

GatewayMetrics RegisterGatewayMetrics(Metrics& metrics) {
  GatewayMetrics m;
  m.requests_total = metrics.AddCounter("passerelle_requests_total",
                                        "HTTP requests handled, by request kind and HTTP status.",
                                        {"kind", "status"});
  m.request_duration_seconds = metrics.AddHistogram(
      "passerelle_request_duration_seconds",
      "Time from a parsed request to its response (decode, sign, commit), by request kind.",
      {"kind"}, LatencyBuckets());
  m.queue_depth = metrics.AddGauge("passerelle_queue_depth",
                                   "Queue entries waiting for delivery, per insurer.", {"insurer"});
  m.queue_oldest_age_seconds =
      metrics.AddGauge("passerelle_queue_oldest_age_seconds",
                       "Age of the oldest message not yet delivered, per insurer.", {"insurer"});
  m.delivery_attempts_total =
      metrics.AddCounter("passerelle_delivery_attempts_total",
                         "Delivery attempts to insurers, by outcome.", {"insurer", "outcome"});
  m.dead_letters_total = metrics.AddCounter(
      "passerelle_dead_letters_total", "Deliveries moved to the dead-letter queue.", {"insurer"});
  m.store_memory_bytes = metrics.AddGauge(
      "passerelle_store_memory_bytes",
      "Memory RocksDB holds (its estimates, summed over column families), by kind.", {"kind"});
  m.commit_batch_size = metrics.AddHistogram(
      "passerelle_commit_batch_size", "Writes sharing one synced store batch (group commit).", {},
      {1, 2, 4, 8, 16, 32, 64, 128, 256});
  m.certificate_expiry_seconds = metrics.AddGauge(
      "passerelle_certificate_expiry_seconds",
      "Seconds until the certificate expires (negative once expired).", {"certificate"});
  m.breaker_open =
      metrics.AddGauge("passerelle_breaker_open",
                       "1 while the insurer's circuit breaker is open, else 0.", {"insurer"});
  m.intake_shed_total = metrics.AddCounter(
      "passerelle_intake_shed_total",
      "Requests refused at admission with 503 + Retry-After, by reason (backlog: the insurer's "
      "max_backlog reached; queue_delay, queue_full: the intake pool; stopped).",
      {"reason", "insurer"});
  return m;
}

}  // namespace psl::gateway
