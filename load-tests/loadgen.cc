// loadgen: an open-loop HTTPS load generator for POST /v1/enrolments (load-tests/README.md).
//
// A fixed schedule gives request i its intended send time t0 + offset(i) (i / rate, or the
// integral of a linear ramp); N worker threads, each with one kept-alive HttpsClient per
// practice, claim requests in schedule order and send each when its time has come. Latency is
// completion time minus intended send time, so the time a request waited because every worker
// was busy counts (no coordinated omission). Loopback targets only; the run is bounded by
// --duration plus --drain and by kMaxRequests.
//
// Exit codes: 0 the run completed (whatever the statuses; read the JSON), 2 usage or set-up error.
#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "gateway/https_client.h"

#include "load-tests/histogram.h"
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace psl::loadtest {
namespace {

using Clock = std::chrono::steady_clock;
using gateway::HttpsClient;
using gateway::HttpsUrl;
using Json = nlohmann::ordered_json;

constexpr std::uint64_t kMaxRequests = 10'000'000;
constexpr char kEnrolmentsPath[] = "/v1/enrolments";

struct Options {
  std::string url;
  std::string ca_file;
  std::string requests_dir;
  std::string cert_dir;
  double rate = 0;
  double ramp_to = 0;  // 0 = no ramp
  double duration_s = 0;
  int connections = 4;
  double drain_s = 30;
  int timeout_ms = 30'000;
  std::string ids_out;
  std::string json_out;
};

struct RequestFile {
  std::string practice;  // NIHII from the file name
  std::string body;
};

// Files named <11-digit practice NIHII>-<anything>.xml, in name order.
StatusOr<std::vector<RequestFile>> LoadRequests(const std::filesystem::path& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> paths;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file() && entry.path().extension() == ".xml") {
      paths.push_back(entry.path());
    }
  }
  if (ec) {
    return Status::FailedPrecondition("cannot list " + dir.string() + ": " + ec.message());
  }
  std::sort(paths.begin(), paths.end());
  std::vector<RequestFile> files;
  for (const auto& path : paths) {
    const std::string name = path.filename().string();
    const std::size_t dash = name.find('-');
    const std::string nihii = name.substr(0, dash);
    if (dash != 11 ||
        !std::all_of(nihii.begin(), nihii.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Status::FailedPrecondition(name + " is not named <11-digit NIHII>-<anything>.xml");
    }
    std::ifstream in(path, std::ios::binary);
    std::ostringstream body;
    body << in.rdbuf();
    if (!in) {
      return Status::FailedPrecondition("cannot read " + path.string());
    }
    files.push_back({nihii, body.str()});
  }
  if (files.empty()) {
    return Status::FailedPrecondition("no <nihii>-*.xml request files in " + dir.string());
  }
  return files;
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost") {
    return true;
  }
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// The schedule: the arrival rate goes linearly from r0 to r1 over d seconds, so N(t) =
// r0 t + (r1 - r0) t^2 / (2 d) requests are due by t. Request i is due when N(t) = i; the
// rationalised root stays exact when r1 == r0 (t = i / r0).
class Schedule {
 public:
  Schedule(double r0, double r1, double d) : r0_(r0), a_((r1 - r0) / (2 * d)) {
    count_ = static_cast<std::uint64_t>(std::floor((r0 + r1) / 2 * d + 1e-9));
  }
  std::uint64_t count() const { return count_; }
  Clock::duration Offset(std::uint64_t i) const {
    const double x = static_cast<double>(i);
    const double s = 2 * x / (r0_ + std::sqrt(std::max(0.0, r0_ * r0_ + 4 * a_ * x)));
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

 private:
  double r0_;
  double a_;
  std::uint64_t count_ = 0;
};

// What one worker saw; merged after the threads joined.
struct WorkerResult {
  LatencyHistogram latency;     // every HTTP response, ns from intended send time
  LatencyHistogram send_delay;  // ns from intended to actual send (the generator's queueing)
  std::map<int, LatencyHistogram> by_status;
  std::map<std::string, std::uint64_t> transport_errors;
  std::map<std::string, std::string> first_error_detail;
  std::string first_refusal;  // status and start of the first non-202 body, for diagnosis
  std::vector<std::string> ids;
  std::uint64_t sent = 0;
  std::uint64_t unsent = 0;
  std::uint64_t ids_missing = 0;
  Clock::time_point last_completion{};
};

struct Run {
  const std::vector<RequestFile>* files;
  HttpsUrl url;
  Schedule schedule;
  Clock::time_point t0;
  Clock::time_point hard_deadline;  // nothing is sent after it
  std::string run_tag;
  std::atomic<std::uint64_t> next{0};
};

std::uint64_t Nanos(Clock::duration d) {
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

void Work(Run& run, std::map<std::string, std::unique_ptr<HttpsClient>>& clients,
          WorkerResult& out) {
  const gateway::HttpHeaders base_headers = {{"content-type", "application/xml"}};
  for (;;) {
    const std::uint64_t i = run.next.fetch_add(1);
    if (i >= run.schedule.count()) {
      return;
    }
    const Clock::time_point intended = run.t0 + run.schedule.Offset(i);
    std::this_thread::sleep_until(intended);
    const Clock::time_point start = Clock::now();
    if (start > run.hard_deadline) {
      ++out.unsent;
      continue;
    }
    const RequestFile& file = (*run.files)[i % run.files->size()];
    gateway::HttpHeaders headers = base_headers;
    headers.emplace_back("idempotency-key", "lg-" + run.run_tag + "-" + std::to_string(i));
    ++out.sent;
    out.send_delay.Record(Nanos(start - intended));
    gateway::HttpsResult result =
        clients.at(file.practice)->Send(run.url, "POST", headers, file.body);
    const Clock::time_point done = Clock::now();
    out.last_completion = std::max(out.last_completion, done);
    if (result.error != gateway::TransportError::kNone) {
      const std::string kind = gateway::TransportErrorName(result.error);
      ++out.transport_errors[kind];
      out.first_error_detail.emplace(kind, result.error_detail);
      continue;
    }
    const std::uint64_t latency = Nanos(done - intended);
    out.latency.Record(latency);
    out.by_status[result.response.status].Record(latency);
    if (result.response.status != 202) {
      if (out.first_refusal.empty()) {
        out.first_refusal =
            std::to_string(result.response.status) + " " + result.response.body.substr(0, 300);
      }
      continue;
    }
    const Json reply = Json::parse(result.response.body, nullptr, /*allow_exceptions=*/false);
    if (reply.is_object() && reply.contains("id") && reply["id"].is_string()) {
      out.ids.push_back(reply["id"].get<std::string>());
    } else {
      ++out.ids_missing;
    }
  }
}

double Ms(std::uint64_t ns) {
  return std::round(static_cast<double>(ns) / 1e3) / 1e3;
}

Json Summary(const LatencyHistogram& h) {
  return Json{{"count", h.count()},
              {"min", Ms(h.min())},
              {"mean", std::round(h.mean() / 1e3) / 1e3},
              {"p50", Ms(h.Percentile(50))},
              {"p90", Ms(h.Percentile(90))},
              {"p99", Ms(h.Percentile(99))},
              {"p99_9", Ms(h.Percentile(99.9))},
              {"max", Ms(h.max())}};
}

std::string RandomTag() {
  std::random_device device;
  const std::uint64_t v = (std::uint64_t{device()} << 32) ^ device();
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(v));
  return text;
}

int Fail(const std::string& message) {
  std::cerr << "loadgen: " << message << "\n";
  return 2;
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"Open-loop HTTPS load generator for POST /v1/enrolments (loopback only)"};
  app.add_option("--url", o.url, "https://127.0.0.1:PORT of the gateway's practice API")
      ->required();
  app.add_option("--ca", o.ca_file, "PEM CA bundle for the gateway's certificate")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--requests", o.requests_dir, "folder of <practice-nihii>-<anything>.xml bodies")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--cert-dir", o.cert_dir,
                 "folder of practice-<nihii>-fullchain.pem and practice-<nihii>.key")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--rate", o.rate, "arrival rate at the start, requests/s")
      ->required()
      ->check(CLI::Range(0.001, 100'000.0));
  app.add_option("--ramp-to", o.ramp_to, "arrival rate at the end (linear ramp); default: --rate")
      ->check(CLI::Range(0.001, 100'000.0));
  app.add_option("--duration", o.duration_s, "seconds of arrivals")
      ->required()
      ->check(CLI::Range(0.001, 3600.0));
  app.add_option("--connections", o.connections,
                 "worker threads (one connection per practice each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--drain", o.drain_s, "seconds after --duration after which nothing more is sent")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--timeout-ms", o.timeout_ms, "per-request timeout (write + whole response)")
      ->capture_default_str()
      ->check(CLI::Range(1, 600'000));
  app.add_option("--ids-out", o.ids_out, "file to write each accepted message id to, one a line");
  app.add_option("--json-out", o.json_out, "file to write the results to as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; every usage error is 2
  }
  if (o.ramp_to == 0) {
    o.ramp_to = o.rate;
  }

  StatusOr<HttpsUrl> url = gateway::ParseHttpsUrl(o.url);
  if (!url.ok()) {
    return Fail("--url: " + url.status().ToString());
  }
  if (!IsLoopback(url->host)) {
    return Fail("--url: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed");
  }
  url->target = kEnrolmentsPath;
  StatusOr<std::vector<RequestFile>> files = LoadRequests(o.requests_dir);
  if (!files.ok()) {
    return Fail(files.status().ToString());
  }
  const Schedule schedule(o.rate, o.ramp_to, o.duration_s);
  if (schedule.count() == 0 || schedule.count() > kMaxRequests) {
    return Fail("the schedule holds " + std::to_string(schedule.count()) +
                " requests; it must hold 1 to " + std::to_string(kMaxRequests));
  }
  if (schedule.count() > files->size()) {
    std::cerr << "loadgen: warning: " << schedule.count() << " requests over " << files->size()
              << " bodies: bodies are sent more than once (each with its own Idempotency-Key)\n";
  }

  // One client per practice per worker, loaded before t0 so that loading is not measured.
  std::vector<std::string> practices;
  for (const auto& f : *files) {
    practices.push_back(f.practice);
  }
  std::sort(practices.begin(), practices.end());
  practices.erase(std::unique(practices.begin(), practices.end()), practices.end());
  std::vector<std::map<std::string, std::unique_ptr<HttpsClient>>> clients(o.connections);
  for (auto& worker_clients : clients) {
    for (const auto& nihii : practices) {
      gateway::HttpsClientOptions options;
      options.ca_file = o.ca_file;
      options.client_cert_file =
          std::filesystem::path(o.cert_dir) / ("practice-" + nihii + "-fullchain.pem");
      options.client_key_file = std::filesystem::path(o.cert_dir) / ("practice-" + nihii + ".key");
      options.request_timeout = std::chrono::milliseconds(o.timeout_ms);
      StatusOr<std::unique_ptr<HttpsClient>> client = HttpsClient::Create(std::move(options));
      if (!client.ok()) {
        return Fail("practice " + nihii + ": " + client.status().ToString());
      }
      worker_clients.emplace(nihii, std::move(*client));
    }
  }

  Run run{&*files, *url, schedule, {}, {}, RandomTag(), {}};
  run.t0 = Clock::now() + std::chrono::milliseconds(50);
  run.hard_deadline = run.t0 + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(o.duration_s + o.drain_s));
  std::vector<std::unique_ptr<WorkerResult>> results;
  std::vector<std::thread> threads;
  for (int w = 0; w < o.connections; ++w) {
    results.push_back(std::make_unique<WorkerResult>());
  }
  for (int w = 0; w < o.connections; ++w) {
    WorkerResult* result = results[w].get();
    threads.emplace_back([&run, &clients, result, w] { Work(run, clients[w], *result); });
  }
  for (auto& t : threads) {
    t.join();
  }

  auto all = std::make_unique<WorkerResult>();
  std::map<int, std::uint64_t> status_counts;
  for (const auto& r : results) {
    all->latency.Add(r->latency);
    all->send_delay.Add(r->send_delay);
    for (const auto& [status, h] : r->by_status) {
      all->by_status[status].Add(h);
    }
    for (const auto& [kind, n] : r->transport_errors) {
      all->transport_errors[kind] += n;
    }
    for (const auto& [kind, detail] : r->first_error_detail) {
      all->first_error_detail.emplace(kind, detail);
    }
    if (all->first_refusal.empty()) {
      all->first_refusal = r->first_refusal;
    }
    all->ids.insert(all->ids.end(), r->ids.begin(), r->ids.end());
    all->sent += r->sent;
    all->unsent += r->unsent;
    all->ids_missing += r->ids_missing;
    all->last_completion = std::max(all->last_completion, r->last_completion);
  }
  const double elapsed_s =
      std::max(0.0, std::chrono::duration<double>(all->last_completion - run.t0).count());
  const auto per_s = [elapsed_s](std::uint64_t n) {
    return elapsed_s > 0 ? std::round(static_cast<double>(n) / elapsed_s * 100) / 100 : 0.0;
  };
  const std::uint64_t accepted =
      all->by_status.count(202) != 0 ? all->by_status.at(202).count() : 0;

  Json statuses = Json::object();
  Json latency_by_status = Json::object();
  for (const auto& [status, h] : all->by_status) {
    statuses[std::to_string(status)] = h.count();
    latency_by_status[std::to_string(status)] = Summary(h);
  }
  Json errors = Json::object();
  for (const auto& [kind, n] : all->transport_errors) {
    errors[kind] = n;
  }
  const Json report = {
      {"url", o.url},
      {"connections", o.connections},
      {"rate", o.rate},
      {"ramp_to", o.ramp_to},
      {"duration_s", o.duration_s},
      {"bodies", files->size()},
      {"scheduled", schedule.count()},
      {"sent", all->sent},
      {"unsent", all->unsent},
      {"responses", all->latency.count()},
      {"accepted", accepted},
      {"ids_missing", all->ids_missing},
      {"elapsed_s", std::round(elapsed_s * 1000) / 1000},
      {"throughput_rps", per_s(all->latency.count())},
      {"accepted_rps", per_s(accepted)},
      {"status", statuses},
      {"transport_errors", errors},
      {"latency_ms", Summary(all->latency)},
      {"latency_ms_by_status", latency_by_status},
      {"send_delay_ms", Summary(all->send_delay)},
  };

  if (!o.json_out.empty()) {
    std::ofstream out(o.json_out);
    out << report.dump(2) << "\n";
    if (!out) {
      return Fail("cannot write " + o.json_out);
    }
  }
  if (!o.ids_out.empty()) {
    std::ofstream out(o.ids_out);
    for (const auto& id : all->ids) {
      out << id << "\n";
    }
    if (!out) {
      return Fail("cannot write " + o.ids_out);
    }
  }

  std::printf("loadgen: %llu requests scheduled over %.1f s at %.1f",
              static_cast<unsigned long long>(schedule.count()), o.duration_s, o.rate);
  if (o.ramp_to != o.rate) {
    std::printf(" -> %.1f", o.ramp_to);
  }
  std::printf(" req/s, %d connections; %llu sent, %llu unsent\n", o.connections,
              static_cast<unsigned long long>(all->sent),
              static_cast<unsigned long long>(all->unsent));
  std::printf("  throughput %.2f responses/s (%.2f accepted/s) over %.2f s\n",
              per_s(all->latency.count()), per_s(accepted), elapsed_s);
  std::printf("  status:");
  for (const auto& [status, h] : all->by_status) {
    std::printf(" %d x %llu", status, static_cast<unsigned long long>(h.count()));
  }
  std::printf("%s\n", all->by_status.empty() ? " none" : "");
  std::printf("  transport errors:");
  for (const auto& [kind, n] : all->transport_errors) {
    std::printf(" %s x %llu (%s)", kind.c_str(), static_cast<unsigned long long>(n),
                all->first_error_detail[kind].c_str());
  }
  std::printf("%s\n", all->transport_errors.empty() ? " none" : "");
  const LatencyHistogram& h = all->latency;
  std::printf(
      "  latency ms from intended send: p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
      Ms(h.Percentile(50)), Ms(h.Percentile(90)), Ms(h.Percentile(99)), Ms(h.Percentile(99.9)),
      Ms(h.max()));
  std::printf("  send delay ms (all workers busy): p99 %.3f  max %.3f\n",
              Ms(all->send_delay.Percentile(99)), Ms(all->send_delay.max()));
  if (!all->first_refusal.empty()) {
    std::printf("  first non-202 response: %s\n", all->first_refusal.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace psl::loadtest

int main(int argc, char** argv) {
  return psl::loadtest::Main(argc, argv);
}
