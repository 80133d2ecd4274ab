// loadgen: an open-loop HTTPS load generator for the gateway's practice API
// (load-tests/README.md).
//
// A fixed schedule gives request i its intended send time t0 + offset(i) (i / rate, the integral
// of a linear ramp, or piecewise phases); N worker threads, each with one kept-alive HttpsClient
// per practice, claim requests in schedule order and send each when its time has come. Bodies
// come either from a folder of ready request files (--requests, POST /v1/enrolments) or from a
// mix (--mix): request templates per kind with placeholders, weights per kind, practices and a
// patient pool, and the status each kind expects (202, or 422 for the invalid ones). Latency is
// completion time minus intended send time, so the time a request waited because every worker
// was busy counts (no coordinated omission). Loopback targets only; the run is bounded by
// --duration plus --drain and by kMaxRequests.
//
// Exit codes: 0 the run completed (whatever the statuses; read the JSON), 2 usage or set-up error.
#include <arpa/inet.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/brussels_time.h"
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
  std::string mix_file;
  std::string cert_dir;
  double rate = 0;
  double ramp_to = 0;  // 0 = no ramp
  double duration_s = 0;
  std::string phases;  // "R:S,R:S,..." piecewise-constant (or R1-R2:S ramps); overrides --rate
  std::uint64_t seed = 0;
  double timeline_s = 1.0;
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

// --- the mix: templates per kind ---------------------------------------------------------------
//
// A mix file (JSON) names the kinds, each with a URL path, a weight, the HTTP status it expects
// and a folder of templates (relative to the mix file); the practices that send (a client
// certificate each in --cert-dir); and the patient pool:
//   {"kinds": [{"name": "enrolment", "path": "/v1/enrolments", "weight": 95, "expect": 202,
//               "templates": "enrolment"}, ...],
//    "practices": ["81234530000", "85432155100"],
//    "patients": {"pool": 20000, "first_birth_date": "1950-01-01"},
//    "mutualities": ["100", "200", ...]}
// Every *.xml file of a kind's folder is a template, chosen uniformly per request. Placeholders:
//   {{PRACTICE}} the sending practice's NIHII   {{PATIENT}} a NISS from the pool (valid check)
//   {{BAD_PATIENT}} the same NISS with wrong check digits   {{MUTUALITY}} the patient's mutuality
//   {{TODAY}} Brussels date yyyy-mm-dd   {{STAMP}} Brussels yyyyMMddHHmmss
//   {{FIRST_OF_NEXT_MONTH}} yyyy-mm-dd   {{SEQ}} the request's number   {{RUN}} the run's tag
//   {{B64:file}} / {{DEFLATE_B64:file}} the file beside the template, its placeholders filled in,
//   then base64 (after raw deflate), e.g. an MHM Detail or an eFact blob.
// A patient always has the same mutuality (pool index modulo the list), so the insurer that
// accepted a patient is the one the gateway's member registry learns.
struct Template {
  std::string body;
  std::map<std::string, std::string> includes;  // file name -> text, for {{B64:...}}
};

struct MixKind {
  std::string name;
  std::string path;
  double weight = 0;
  int expect = 202;
  std::vector<Template> templates;
};

struct Mix {
  std::vector<MixKind> kinds;
  std::vector<double> cumulative;  // of weights, for the draw
  std::vector<std::string> practices;
  std::vector<std::string> mutualities;
  std::uint64_t pool = 1000;
  std::chrono::sys_days first_birth{};
};

std::string ReadFile(const std::filesystem::path& path, bool* ok) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  *ok = static_cast<bool>(in) || in.eof();
  return text.str();
}

StatusOr<std::chrono::sys_days> ParseDate(const std::string& text) {
  int y = 0;
  unsigned m = 0;
  unsigned d = 0;
  if (std::sscanf(text.c_str(), "%d-%u-%u", &y, &m, &d) != 3) {
    return Status::FailedPrecondition("not a yyyy-mm-dd date: " + text);
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m},
                                        std::chrono::day{d}};
  if (!ymd.ok()) {
    return Status::FailedPrecondition("not a date: " + text);
  }
  return std::chrono::sys_days{ymd};
}

StatusOr<Mix> LoadMix(const std::filesystem::path& file) {
  bool ok = false;
  const std::string text = ReadFile(file, &ok);
  if (!ok) {
    return Status::FailedPrecondition("cannot read " + file.string());
  }
  const Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("kinds") || !j["kinds"].is_array() ||
      !j.contains("practices") || !j["practices"].is_array() || j["practices"].empty()) {
    return Status::FailedPrecondition(file.string() + ": needs \"kinds\" and \"practices\"");
  }
  Mix mix;
  const std::filesystem::path base = file.parent_path();
  double total = 0;
  for (const Json& k : j["kinds"]) {
    MixKind kind;
    kind.name = k.value("name", "");
    kind.path = k.value("path", "");
    kind.weight = k.value("weight", 1.0);
    kind.expect = k.value("expect", 202);
    const std::filesystem::path dir = base / k.value("templates", kind.name);
    if (kind.name.empty() || kind.path.empty() || kind.path[0] != '/' || kind.weight < 0) {
      return Status::FailedPrecondition(file.string() +
                                        ": a kind needs a name, a /path, weight >= 0");
    }
    if (kind.weight == 0) {
      continue;
    }
    std::error_code ec;
    std::vector<std::filesystem::path> paths;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".xml") {
        paths.push_back(entry.path());
      }
    }
    std::sort(paths.begin(), paths.end());
    if (ec || paths.empty()) {
      return Status::FailedPrecondition("kind " + kind.name + ": no *.xml templates in " +
                                        dir.string());
    }
    for (const auto& path : paths) {
      Template t;
      t.body = ReadFile(path, &ok);
      if (!ok) {
        return Status::FailedPrecondition("cannot read " + path.string());
      }
      for (const char* marker : {"{{B64:", "{{DEFLATE_B64:"}) {
        for (std::size_t at = t.body.find(marker); at != std::string::npos;
             at = t.body.find(marker, at + 1)) {
          const std::size_t start = at + std::strlen(marker);
          const std::size_t end = t.body.find("}}", start);
          if (end == std::string::npos) {
            return Status::FailedPrecondition(path.string() + ": unterminated " + marker);
          }
          const std::string name = t.body.substr(start, end - start);
          t.includes[name] = ReadFile(dir / name, &ok);
          if (!ok) {
            return Status::FailedPrecondition("cannot read " + (dir / name).string());
          }
        }
      }
      kind.templates.push_back(std::move(t));
    }
    total += kind.weight;
    mix.cumulative.push_back(total);
    mix.kinds.push_back(std::move(kind));
  }
  if (mix.kinds.empty()) {
    return Status::FailedPrecondition(file.string() + ": no kind with a positive weight");
  }
  for (const Json& p : j["practices"]) {
    const std::string nihii = p.get<std::string>();
    if (nihii.size() != 11 ||
        !std::all_of(nihii.begin(), nihii.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return Status::FailedPrecondition(file.string() + ": practice " + nihii +
                                        " is not an 11-digit NIHII");
    }
    mix.practices.push_back(nihii);
  }
  if (j.contains("mutualities")) {
    for (const Json& m : j["mutualities"]) {
      mix.mutualities.push_back(m.get<std::string>());
    }
  }
  if (mix.mutualities.empty()) {
    mix.mutualities = {"100", "200", "300", "400", "500", "600", "900"};
  }
  const Json patients = j.value("patients", Json::object());
  mix.pool = patients.value("pool", std::uint64_t{1000});
  StatusOr<std::chrono::sys_days> first =
      ParseDate(patients.value("first_birth_date", "1950-01-01"));
  if (!first.ok() || mix.pool == 0) {
    return Status::FailedPrecondition(file.string() +
                                      ": patients: a pool > 0 and a yyyy-mm-dd date");
  }
  mix.first_birth = *first;
  return mix;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t{static_cast<unsigned char>(in[i])} << 16) |
                            (std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8) |
                            static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    std::uint32_t v = std::uint32_t{static_cast<unsigned char>(in[i])} << 16;
    if (i + 1 < in.size()) {
      v |= std::uint32_t{static_cast<unsigned char>(in[i + 1])} << 8;
    }
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string RawDeflate(std::string_view in) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out(deflateBound(&z, static_cast<uLong>(in.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

void ReplaceAll(std::string* text, std::string_view from, std::string_view to) {
  for (std::size_t at = text->find(from); at != std::string::npos;
       at = text->find(from, at + to.size())) {
    text->replace(at, from.size(), to);
  }
}

std::string FormatDate(std::chrono::year_month_day ymd) {
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return text;
}

// NISS of pool index `index`: birth date first_birth + index / 997 days (YYMMDD), sequence
// index % 997 + 1, then the mod-97 check digits (DOMAIN.md), '2'-prefixed after 2000.
std::string NissOf(const Mix& mix, std::uint64_t index, bool bad_check) {
  const std::chrono::year_month_day born{mix.first_birth +
                                         std::chrono::days{static_cast<int>(index / 997)}};
  char base[32];
  std::snprintf(base, sizeof base, "%02d%02u%02u%03u", static_cast<int>(born.year()) % 100,
                static_cast<unsigned>(born.month()), static_cast<unsigned>(born.day()),
                static_cast<unsigned>(index % 997 + 1));
  std::uint64_t n = std::stoull(base);
  if (static_cast<int>(born.year()) >= 2000) {
    n += 2'000'000'000ULL;
  }
  unsigned check = static_cast<unsigned>(97 - n % 97);
  if (bad_check) {
    check = check % 97 + 1;  // never the right one
  }
  char niss[40];
  std::snprintf(niss, sizeof niss, "%s%02u", base, check);
  return niss;
}

// The values of one request's placeholders.
struct Fill {
  std::string practice;
  std::string patient;
  std::string bad_patient;
  std::string mutuality;
  std::string today;
  std::string stamp;
  std::string first_of_next_month;
  std::string seq;
  std::string run;
};

std::string Substitute(std::string text, const Fill& f) {
  ReplaceAll(&text, "{{PRACTICE}}", f.practice);
  ReplaceAll(&text, "{{PATIENT}}", f.patient);
  ReplaceAll(&text, "{{BAD_PATIENT}}", f.bad_patient);
  ReplaceAll(&text, "{{MUTUALITY}}", f.mutuality);
  ReplaceAll(&text, "{{TODAY}}", f.today);
  ReplaceAll(&text, "{{STAMP}}", f.stamp);
  ReplaceAll(&text, "{{FIRST_OF_NEXT_MONTH}}", f.first_of_next_month);
  ReplaceAll(&text, "{{SEQ}}", f.seq);
  ReplaceAll(&text, "{{RUN}}", f.run);
  return text;
}

std::string Render(const Template& t, const Fill& f) {
  std::string body = Substitute(t.body, f);
  for (const auto& [name, include] : t.includes) {
    const std::string filled = Substitute(include, f);
    ReplaceAll(&body, "{{B64:" + name + "}}", Base64(filled));
    if (body.find("{{DEFLATE_B64:" + name + "}}") != std::string::npos) {
      ReplaceAll(&body, "{{DEFLATE_B64:" + name + "}}", Base64(RawDeflate(filled)));
    }
  }
  return body;
}

Fill MakeFill(const Mix& mix, const std::string& practice, std::uint64_t patient_index,
              std::uint64_t seq, const std::string& run_tag) {
  using namespace std::chrono;
  const system_clock::time_point now = system_clock::now();
  const auto local = now + BrusselsUtcOffset(now);
  const sys_days day = floor<days>(local);
  const year_month_day ymd{day};
  const hh_mm_ss<seconds> time{floor<seconds>(local - day)};
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%04d%02u%02u%02d%02d%02d", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(time.hours().count()), static_cast<int>(time.minutes().count()),
                static_cast<int>(time.seconds().count()));
  const year_month_day next{(ymd.year() / ymd.month() / 1) + months{1}};
  Fill f;
  f.practice = practice;
  f.patient = NissOf(mix, patient_index, false);
  f.bad_patient = NissOf(mix, patient_index, true);
  f.mutuality = mix.mutualities[patient_index % mix.mutualities.size()];
  f.today = FormatDate(ymd);
  f.stamp = stamp;
  f.first_of_next_month = FormatDate(next);
  f.seq = std::to_string(seq);
  f.run = run_tag;
  return f;
}

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

// The schedule: a sequence of phases, in each of which the arrival rate goes linearly from r0 to
// r1 over d seconds, so N(t) = r0 t + (r1 - r0) t^2 / (2 d) requests of the phase are due by t.
// Request i of a phase is due when N(t) = i; the rationalised root stays exact when r1 == r0
// (t = i / r0).
class Schedule {
 public:
  struct Phase {
    double r0;
    double r1;
    double d;
  };
  explicit Schedule(std::vector<Phase> phases) : phases_(std::move(phases)) {
    double start = 0;
    for (const Phase& p : phases_) {
      const auto n = static_cast<std::uint64_t>(std::floor((p.r0 + p.r1) / 2 * p.d + 1e-9));
      starts_.push_back({count_, start});
      count_ += n;
      start += p.d;
    }
    duration_s_ = start;
  }
  std::uint64_t count() const { return count_; }
  double duration_s() const { return duration_s_; }
  Clock::duration Offset(std::uint64_t i) const {
    std::size_t k = phases_.size() - 1;
    while (k > 0 && starts_[k].first > i) {
      --k;
    }
    const Phase& p = phases_[k];
    const double a = (p.r1 - p.r0) / (2 * p.d);
    const double x = static_cast<double>(i - starts_[k].first);
    const double s = 2 * x / (p.r0 + std::sqrt(std::max(0.0, p.r0 * p.r0 + 4 * a * x)));
    return std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(starts_[k].second + s));
  }

 private:
  std::vector<Phase> phases_;
  std::vector<std::pair<std::uint64_t, double>> starts_;  // first request, start second
  std::uint64_t count_ = 0;
  double duration_s_ = 0;
};

// "R:S" or "R1-R2:S" items separated by commas.
StatusOr<std::vector<Schedule::Phase>> ParsePhases(const std::string& text) {
  std::vector<Schedule::Phase> phases;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    double r0 = 0;
    double r1 = 0;
    double d = 0;
    if (std::sscanf(item.c_str(), "%lf-%lf:%lf", &r0, &r1, &d) == 3) {
    } else if (std::sscanf(item.c_str(), "%lf:%lf", &r0, &d) == 2) {
      r1 = r0;
    } else {
      return Status::FailedPrecondition("--phases: '" + item + "' is not RATE:SECONDS");
    }
    if (r0 <= 0 || r1 <= 0 || d <= 0 || r0 > 100'000 || r1 > 100'000 || d > 3600) {
      return Status::FailedPrecondition("--phases: '" + item + "' is out of range");
    }
    phases.push_back({r0, r1, d});
  }
  if (phases.empty()) {
    return Status::FailedPrecondition("--phases: no phase");
  }
  return phases;
}

// One request as the timeline sees it.
struct Sample {
  float intended_s;  // intended send time, seconds after t0
  int status;        // HTTP status, or -1 for a transport error
  std::uint64_t latency_ns;
};

// Per kind of the mix.
struct KindResult {
  std::uint64_t sent = 0;
  std::uint64_t unexpected = 0;  // responses whose status is not the kind's expected one
  std::map<int, std::uint64_t> status;
  LatencyHistogram latency;
};

// What one worker saw; merged after the threads joined.
struct WorkerResult {
  LatencyHistogram latency;     // every HTTP response, ns from intended send time
  LatencyHistogram send_delay;  // ns from intended to actual send (the generator's queueing)
  std::map<int, LatencyHistogram> by_status;
  std::map<std::string, KindResult> by_kind;
  std::map<std::string, std::uint64_t> transport_errors;
  std::map<std::string, std::string> first_error_detail;
  std::string first_refusal;  // status and start of the first unexpected body, for diagnosis
  std::vector<std::string> ids;
  std::vector<Sample> samples;
  std::uint64_t sent = 0;
  std::uint64_t unsent = 0;
  std::uint64_t ids_missing = 0;
  Clock::time_point last_completion{};
};

struct Run {
  const std::vector<RequestFile>* files;  // null with a mix
  const Mix* mix;                         // null with request files
  HttpsUrl url;
  Schedule schedule;
  Clock::time_point t0;
  Clock::time_point hard_deadline;  // nothing is sent after it
  std::string run_tag;
  std::uint64_t seed = 0;
  std::atomic<std::uint64_t> next{0};
};

std::uint64_t Nanos(Clock::duration d) {
  return static_cast<std::uint64_t>(
      std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

void Work(Run& run, int worker, std::map<std::string, std::unique_ptr<HttpsClient>>& clients,
          WorkerResult& out) {
  const gateway::HttpHeaders base_headers = {{"content-type", "application/xml"}};
  std::mt19937_64 rng(run.seed * 1'000'003 + static_cast<std::uint64_t>(worker));
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (;;) {
    const std::uint64_t i = run.next.fetch_add(1);
    if (i >= run.schedule.count()) {
      return;
    }
    const Clock::time_point intended = run.t0 + run.schedule.Offset(i);
    // The body is made before the intended time comes (rendering is not measured).
    std::string practice;
    std::string body_storage;
    const std::string* body = nullptr;
    HttpsUrl url = run.url;
    std::string kind = "enrolment";
    int expect = 202;
    if (run.mix != nullptr) {
      const Mix& mix = *run.mix;
      const double draw = unit(rng) * mix.cumulative.back();
      std::size_t k = 0;
      while (k + 1 < mix.kinds.size() && mix.cumulative[k] <= draw) {
        ++k;
      }
      const MixKind& mk = mix.kinds[k];
      const Template& t = mk.templates[rng() % mk.templates.size()];
      practice = mix.practices[rng() % mix.practices.size()];
      body_storage = Render(t, MakeFill(mix, practice, rng() % mix.pool, i, run.run_tag));
      body = &body_storage;
      url.target = mk.path;
      kind = mk.name;
      expect = mk.expect;
    } else {
      const RequestFile& file = (*run.files)[i % run.files->size()];
      practice = file.practice;
      body = &file.body;
    }
    std::this_thread::sleep_until(intended);
    const Clock::time_point start = Clock::now();
    if (start > run.hard_deadline) {
      ++out.unsent;
      continue;
    }
    gateway::HttpHeaders headers = base_headers;
    headers.emplace_back("idempotency-key", "lg-" + run.run_tag + "-" + std::to_string(i));
    ++out.sent;
    KindResult& kr = out.by_kind[kind];
    ++kr.sent;
    out.send_delay.Record(Nanos(start - intended));
    gateway::HttpsResult result = clients.at(practice)->Send(url, "POST", headers, *body);
    const Clock::time_point done = Clock::now();
    out.last_completion = std::max(out.last_completion, done);
    const float intended_s = std::chrono::duration<float>(intended - run.t0).count();
    if (result.error != gateway::TransportError::kNone) {
      const std::string name = gateway::TransportErrorName(result.error);
      ++out.transport_errors[name];
      out.first_error_detail.emplace(name, result.error_detail);
      out.samples.push_back({intended_s, -1, Nanos(done - intended)});
      continue;
    }
    const std::uint64_t latency = Nanos(done - intended);
    const int status = result.response.status;
    out.latency.Record(latency);
    out.by_status[status].Record(latency);
    out.samples.push_back({intended_s, status, latency});
    ++kr.status[status];
    kr.latency.Record(latency);
    if (status != expect) {
      ++kr.unexpected;
      if (out.first_refusal.empty()) {
        out.first_refusal =
            kind + ": " + std::to_string(status) + " " + result.response.body.substr(0, 300);
      }
    }
    if (status != 202) {
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

// Per-second (or --timeline-s) buckets by intended send time: what was sent then and how it went
// (requests, statuses, latency), and what completed in that bucket (statuses by completion time:
// the goodput), so a run with phases shows when an overload started to hurt and when it stopped.
Json Timeline(const std::vector<Sample>& samples, double bucket_s) {
  std::map<std::int64_t, std::vector<const Sample*>> buckets;
  std::map<std::int64_t, std::map<int, std::uint64_t>> completed;  // by completion time
  for (const Sample& s : samples) {
    buckets[static_cast<std::int64_t>(std::floor(s.intended_s / bucket_s))].push_back(&s);
    const double done_s = s.intended_s + static_cast<double>(s.latency_ns) / 1e9;
    ++completed[static_cast<std::int64_t>(std::floor(done_s / bucket_s))][s.status];
    buckets.try_emplace(static_cast<std::int64_t>(std::floor(done_s / bucket_s)));
  }
  const auto status_json = [](const std::map<int, std::uint64_t>& status) {
    Json st = Json::object();
    for (const auto& [code, n] : status) {
      st[code < 0 ? "transport" : std::to_string(code)] = n;
    }
    return st;
  };
  Json out = Json::array();
  for (const auto& [index, items] : buckets) {
    LatencyHistogram h;
    std::map<int, std::uint64_t> status;
    for (const Sample* s : items) {
      ++status[s->status];
      if (s->status >= 0) {
        h.Record(s->latency_ns);
      }
    }
    const auto done = completed.find(index);
    out.push_back(
        {{"t", static_cast<double>(index) * bucket_s},
         {"requests", items.size()},
         {"status", status_json(status)},
         {"completed", done == completed.end() ? Json::object() : status_json(done->second)},
         {"p50", Ms(h.Percentile(50))},
         {"p99", Ms(h.Percentile(99))},
         {"max", Ms(h.max())}});
  }
  return out;
}

int Main(int argc, char** argv) {
  Options o;
  CLI::App app{"Open-loop HTTPS load generator for the gateway's practice API (loopback only)"};
  app.add_option("--url", o.url, "https://127.0.0.1:PORT of the gateway's practice API")
      ->required();
  app.add_option("--ca", o.ca_file, "PEM CA bundle for the gateway's certificate")
      ->required()
      ->check(CLI::ExistingFile);
  auto* requests =
      app.add_option("--requests", o.requests_dir,
                     "folder of <practice-nihii>-<anything>.xml bodies (POST /v1/enrolments)")
          ->check(CLI::ExistingDirectory);
  auto* mix = app.add_option("--mix", o.mix_file,
                             "mix file (JSON): kinds with templates, weights, expected status; "
                             "practices; patient pool (load-tests/README.md)")
                  ->check(CLI::ExistingFile);
  requests->excludes(mix);
  app.add_option("--cert-dir", o.cert_dir,
                 "folder of practice-<nihii>-fullchain.pem and practice-<nihii>.key")
      ->required()
      ->check(CLI::ExistingDirectory);
  auto* rate = app.add_option("--rate", o.rate, "arrival rate at the start, requests/s")
                   ->check(CLI::Range(0.001, 100'000.0));
  app.add_option("--ramp-to", o.ramp_to, "arrival rate at the end (linear ramp); default: --rate")
      ->check(CLI::Range(0.001, 100'000.0));
  auto* duration = app.add_option("--duration", o.duration_s, "seconds of arrivals")
                       ->check(CLI::Range(0.001, 3600.0));
  auto* phases = app.add_option("--phases", o.phases,
                                "instead of --rate/--duration: R:S or R1-R2:S phases, "
                                "comma-separated (e.g. 400:20,200:20)");
  phases->excludes(rate)->excludes(duration);
  app.add_option("--connections", o.connections,
                 "worker threads (one connection per practice each)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--drain", o.drain_s,
                 "seconds after the arrivals after which nothing more is sent")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--timeout-ms", o.timeout_ms, "per-request timeout (write + whole response)")
      ->capture_default_str()
      ->check(CLI::Range(1, 600'000));
  app.add_option("--seed", o.seed, "seed of the mix's draws (kind, template, practice, patient)")
      ->capture_default_str();
  app.add_option("--timeline-s", o.timeline_s, "width of the JSON timeline's buckets, seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.01, 3600.0));
  app.add_option("--ids-out", o.ids_out, "file to write each accepted message id to, one a line");
  app.add_option("--json-out", o.json_out, "file to write the results to as JSON");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; every usage error is 2
  }
  if (o.requests_dir.empty() == o.mix_file.empty()) {
    return Fail("give exactly one of --requests and --mix");
  }
  std::vector<Schedule::Phase> phase_list;
  if (!o.phases.empty()) {
    StatusOr<std::vector<Schedule::Phase>> parsed = ParsePhases(o.phases);
    if (!parsed.ok()) {
      return Fail(parsed.status().message());
    }
    phase_list = std::move(parsed).value();
    o.rate = phase_list.front().r0;
    o.ramp_to = phase_list.back().r1;
  } else {
    if (o.rate == 0 || o.duration_s == 0) {
      return Fail("give --rate and --duration, or --phases");
    }
    if (o.ramp_to == 0) {
      o.ramp_to = o.rate;
    }
    phase_list.push_back({o.rate, o.ramp_to, o.duration_s});
  }

  StatusOr<HttpsUrl> url = gateway::ParseHttpsUrl(o.url);
  if (!url.ok()) {
    return Fail("--url: " + url.status().ToString());
  }
  if (!IsLoopback(url->host)) {
    return Fail("--url: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed");
  }
  url->target = kEnrolmentsPath;
  std::vector<RequestFile> files;
  std::optional<Mix> the_mix;
  std::vector<std::string> practices;
  if (!o.requests_dir.empty()) {
    StatusOr<std::vector<RequestFile>> loaded = LoadRequests(o.requests_dir);
    if (!loaded.ok()) {
      return Fail(loaded.status().ToString());
    }
    files = std::move(loaded).value();
    for (const auto& f : files) {
      practices.push_back(f.practice);
    }
  } else {
    StatusOr<Mix> loaded = LoadMix(o.mix_file);
    if (!loaded.ok()) {
      return Fail(loaded.status().ToString());
    }
    the_mix = std::move(loaded).value();
    practices = the_mix->practices;
  }
  const Schedule schedule(phase_list);
  o.duration_s = schedule.duration_s();
  if (schedule.count() == 0 || schedule.count() > kMaxRequests) {
    return Fail("the schedule holds " + std::to_string(schedule.count()) +
                " requests; it must hold 1 to " + std::to_string(kMaxRequests));
  }
  if (!files.empty() && schedule.count() > files.size()) {
    std::cerr << "loadgen: warning: " << schedule.count() << " requests over " << files.size()
              << " bodies: bodies are sent more than once (each with its own Idempotency-Key)\n";
  }

  // One client per practice per worker, loaded before t0 so that loading is not measured.
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

  Run run{files.empty() ? nullptr : &files,
          the_mix ? &*the_mix : nullptr,
          *url,
          schedule,
          {},
          {},
          RandomTag(),
          o.seed,
          {}};
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
    threads.emplace_back([&run, &clients, result, w] { Work(run, w, clients[w], *result); });
  }
  for (auto& t : threads) {
    t.join();
  }

  auto all = std::make_unique<WorkerResult>();
  for (const auto& r : results) {
    all->latency.Add(r->latency);
    all->send_delay.Add(r->send_delay);
    for (const auto& [status, h] : r->by_status) {
      all->by_status[status].Add(h);
    }
    for (const auto& [kind, kr] : r->by_kind) {
      KindResult& k = all->by_kind[kind];
      k.sent += kr.sent;
      k.unexpected += kr.unexpected;
      for (const auto& [status, n] : kr.status) {
        k.status[status] += n;
      }
      k.latency.Add(kr.latency);
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
    all->samples.insert(all->samples.end(), r->samples.begin(), r->samples.end());
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
  std::uint64_t transport_total = 0;
  for (const auto& [kind, n] : all->transport_errors) {
    errors[kind] = n;
    transport_total += n;
  }
  // Errors by status: every response whose status is not what its kind expects, by status,
  // plus the transport errors.
  Json errors_by_status = Json::object();
  std::uint64_t unexpected = 0;
  Json kinds = Json::object();
  for (const auto& [kind, k] : all->by_kind) {
    Json st = Json::object();
    const int expect = [&] {
      if (the_mix) {
        for (const MixKind& mk : the_mix->kinds) {
          if (mk.name == kind) {
            return mk.expect;
          }
        }
      }
      return 202;
    }();
    for (const auto& [status, n] : k.status) {
      st[std::to_string(status)] = n;
      if (status != expect) {
        errors_by_status[std::to_string(status)] =
            errors_by_status.value(std::to_string(status), std::uint64_t{0}) + n;
      }
    }
    unexpected += k.unexpected;
    kinds[kind] = {{"expect", expect},
                   {"sent", k.sent},
                   {"unexpected", k.unexpected},
                   {"status", st},
                   {"latency_ms", Summary(k.latency)}};
  }
  if (transport_total > 0) {
    errors_by_status["transport"] = transport_total;
  }
  const Json report = {
      {"url", o.url},
      {"source", the_mix ? "mix" : "requests"},
      {"connections", o.connections},
      {"rate", o.rate},
      {"ramp_to", o.ramp_to},
      {"phases", o.phases},
      {"duration_s", o.duration_s},
      {"bodies", the_mix ? 0 : files.size()},
      {"scheduled", schedule.count()},
      {"sent", all->sent},
      {"unsent", all->unsent},
      {"responses", all->latency.count()},
      {"accepted", accepted},
      {"unexpected", unexpected},
      {"ids_missing", all->ids_missing},
      {"elapsed_s", std::round(elapsed_s * 1000) / 1000},
      {"throughput_rps", per_s(all->latency.count())},
      {"accepted_rps", per_s(accepted)},
      {"status", statuses},
      {"errors_by_status", errors_by_status},
      {"transport_errors", errors},
      {"latency_ms", Summary(all->latency)},
      {"latency_ms_by_status", latency_by_status},
      {"send_delay_ms", Summary(all->send_delay)},
      {"kinds", kinds},
      {"timeline", Timeline(all->samples, o.timeline_s)},
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
  if (!o.phases.empty()) {
    std::printf(" (phases %s)", o.phases.c_str());
  } else if (o.ramp_to != o.rate) {
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
  if (the_mix) {
    for (const auto& [kind, k] : all->by_kind) {
      std::printf("  kind %s: %llu sent, %llu unexpected\n", kind.c_str(),
                  static_cast<unsigned long long>(k.sent),
                  static_cast<unsigned long long>(k.unexpected));
    }
  }
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
    std::printf("  first unexpected response: %s\n", all->first_refusal.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace psl::loadtest

int main(int argc, char** argv) {
  return psl::loadtest::Main(argc, argv);
}
