// InsurerSimulator: the insurers' side of the MHM (medical-house membership) flow, as a real
// server for the demo, the integration tests and the load tests (README.md beside this file).
// It plays one or several insurers at POST /insurers/<code>/mhm: checks the SOAP 1.1 transport
// (Content-Type, SOAPAction), the gateway's WS-Security signature, the MHM request (MhmCodec:
// schemas and business rules) and its XAdES, de-duplicates by the request's root @Id, decides
// like an insurer from in-memory enrolments, and answers a signed MHM response
// (codecs/mhm_response.h). Faults (latency, 5xx, 429 + Retry-After, connection resets,
// timeouts, scheduled outages) are injected before any processing, as planned on the command
// line or through the control API (/control/stats, /control/faults, /control/reset).
//
// Patients are kept only under a keyed hash of their NISS (HMAC-SHA256, key random per
// instance); no NISS or name is ever logged, counted or echoed in a fault.
//
// Thread-safety: Process/Handle may be called from any number of threads at once (one mutex
// guards the state; decisions for one request @Id are made once). The borrowed registry, trust
// store, intermediates, signing identity and clock must outlive the simulator.
#ifndef PSL_CONFORMANCE_SIMULATOR_INSURER_SIMULATOR_H_
#define PSL_CONFORMANCE_SIMULATOR_INSURER_SIMULATOR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "codecs/schema_registry.h"
#include "gateway/http_types.h"
#include "gateway/https_server.h"

namespace psl::simulator {

// Every request inside [start, start + duration) is answered 503 + Retry-After (the rest of the
// window, whole seconds rounded up).
struct OutageWindow {
  std::chrono::system_clock::time_point start;
  std::chrono::seconds duration{0};
};

// What to inject, checked in this order for every request to an insurer endpoint: outage,
// timeout, reset, 429, 5xx — first the "next N" counters (each consumed by one request), then
// the rates (independent draws in the same order). A faulted request is not processed.
struct FaultPlan {
  std::chrono::milliseconds latency{0};  // added before every answer (async handler only)
  std::uint64_t timeout_next = 0;        // never answered
  double timeout_rate = 0;
  std::uint64_t reset_next = 0;  // connection closed without a response
  double reset_rate = 0;
  std::uint64_t throttle_next = 0;  // 429 + Retry-After: retry_after
  double throttle_rate = 0;
  std::chrono::seconds retry_after{1};
  std::uint64_t fail_next = 0;  // answered fail_status (500..599, default 503)
  int fail_status = 503;
  double error_rate = 0;  // answered error_status (500..599, default 503)
  int error_status = 503;
  std::optional<OutageWindow> outage;
};

// Parses the control API's JSON (README.md): every key optional, unknown keys and out-of-range
// values refused (kInvalid naming the key). `now` anchors "outage.start_in_s". "insurer", when
// present, is returned in *insurer ("" otherwise).
StatusOr<FaultPlan> ParseFaultPlan(std::string_view json, std::chrono::system_clock::time_point now,
                                   std::string* insurer);
std::string FaultPlanJson(const FaultPlan& plan, std::chrono::system_clock::time_point now);

// Counters, overall and per insurer.
struct SimulatorCounters {
  std::uint64_t received = 0;     // requests to an insurer endpoint (faulted ones included)
  std::uint64_t accepted = 0;     // answers with decision accepted (first time only)
  std::uint64_t refused = 0;      // answers with decision refused (first time only)
  std::uint64_t duplicates = 0;   // a repeated @Id answered from the store
  std::uint64_t soap_faults = 0;  // requests refused with a SOAP Fault (security, schema, rules)
  std::uint64_t http_errors = 0;  // 404/405/415 on insurer paths
  std::uint64_t faults_500 = 0;   // injected 5xx other than 503
  std::uint64_t faults_503 = 0;   // injected 503 (outage excluded)
  std::uint64_t faults_429 = 0;
  std::uint64_t faults_reset = 0;
  std::uint64_t faults_timeout = 0;
  std::uint64_t faults_outage = 0;
  std::uint64_t FaultsInjected() const {
    return faults_500 + faults_503 + faults_429 + faults_reset + faults_timeout + faults_outage;
  }
};

struct SimulatorStats {
  SimulatorCounters total;
  std::vector<std::pair<std::string, SimulatorCounters>> by_insurer;  // configured order
};

// The outcome of one request. `hold`: the timeout fault, the request must never be answered (the
// async handler parks it until Reset or Shutdown, then closes the connection). `delay`: the
// latency to add before answering.
struct SimulatorReply {
  gateway::HttpResponse response;
  bool hold = false;
  std::chrono::milliseconds delay{0};
};

class InsurerSimulator {
 public:
  struct Options {
    std::vector<std::string> insurers;                // 3-digit codes "100".."999", at least one
    const codecs::SchemaRegistry* schemas = nullptr;  // MHM + kmehr sets
    X509_STORE* trust = nullptr;  // anchors for the gateway's WS-Security and XAdES signers
    const std::vector<X509Ptr>* intermediates = nullptr;  // untrusted CAs for WS-Security; nullable
    const SigningIdentity* signer = nullptr;              // signs the answers (XadesT)
    const Clock* clock = nullptr;
    FaultPlan faults;               // the initial plan for every insurer
    std::uint64_t random_seed = 0;  // for the fault rates; 0 = from the OS
    unsigned workers = 2;           // threads of the async handler
    // Called with one line per processed request (insurer, @Id, operation, outcome, codes; never
    // patient data) when set.
    std::function<void(const std::string&)> log;
  };

  // kInvalid for options that cannot work (no insurer, a code that is not 3 digits in 100..999,
  // a missing registry, trust store, signer or clock). Starts the async handler's threads.
  static StatusOr<std::unique_ptr<InsurerSimulator>> Create(Options options);
  ~InsurerSimulator();  // Shutdown()
  InsurerSimulator(const InsurerSimulator&) = delete;
  InsurerSimulator& operator=(const InsurerSimulator&) = delete;
  InsurerSimulator(InsurerSimulator&&) = delete;
  InsurerSimulator& operator=(InsurerSimulator&&) = delete;

  // Synchronous core: routes, injects faults, processes. Never blocks on the network and never
  // sleeps (the latency is returned in `delay`).
  SimulatorReply Process(const gateway::HttpRequest& request);
  // Process(request).response; for a held request (timeout fault), a response with
  // close_without_response set.
  gateway::HttpResponse Handle(const gateway::HttpRequest& request);

  // A handler for HttpsServer::Start: posts Process to the worker threads, applies the latency
  // on a timer thread and parks held requests; never blocks the network thread.
  gateway::Handler AsyncHandler();

  // Drops the stored answers, the enrolments, the counters and every insurer's fault plan (back
  // to Options::faults), and closes the held requests. Also POST /control/reset.
  void Reset();
  // Answers everything queued or delayed, closes held requests and joins the threads.
  // Idempotent; the async handler closes requests that arrive afterwards.
  void Shutdown();

  SimulatorStats Stats() const;
  std::string StatsJson() const;
  // Sets the plan of one insurer ("" = every insurer). kInvalid for an unknown insurer.
  Status SetFaultPlan(const std::string& insurer, const FaultPlan& plan);
  // Requests currently parked by the timeout fault.
  std::size_t HeldRequests() const;

 private:
  struct Impl;
  explicit InsurerSimulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psl::simulator

#endif  // PSL_CONFORMANCE_SIMULATOR_INSURER_SIMULATOR_H_
