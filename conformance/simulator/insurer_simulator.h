// InsurerSimulator: the insurers' side of the MHM (medical-house membership) flow and of the
// eFact Generic Async mailbox (post, get, confirm), as a real server for the demo, the
// integration tests and the load tests (README.md beside this file).
// It plays one or several insurers at POST /insurers/<code>/mhm: checks the SOAP 1.1 transport
// (Content-Type, SOAPAction), the gateway's WS-Security signature, the MHM request (MhmCodec:
// schemas and business rules) and its XAdES, de-duplicates by the request's root @Id, decides
// like an insurer from in-memory enrolments, and answers a signed MHM response
// (codecs/mhm_response.h). Faults (latency, 5xx, 429 + Retry-After, connection resets,
// timeouts, scheduled outages) are injected before any processing, as planned on the command
// line or through the control API (/control/stats, /control/faults, /control/reset), for every
// operation or for one ("mhm", "post", "get", "confirm", "mediprima", "eattest").
//
// Generic Async (POST /insurers/<code>/genasync, or /mhm: requests are dispatched on their
// SOAPAction): a post (WS-Security, GenAsyncCodec, its Xades-t, its destination) is answered a
// TAck — success, or a business refusal (non-success ResultMajor) —, de-duplicated by its
// CommonInput/InputReference, and an accepted post puts an eFact return file (931000 by default;
// /control/efact sets the next decisions) in the mailbox of the post's sender at that insurer.
// get returns the unconfirmed (and visible: --return-delay-ms) messages of the Origin's mailbox,
// signed with the same identity as MHM answers; confirm removes the named ones (idempotent).
//
// MediPrima (UMA v1 send/search/delete, consult v2) and eAttest v3 (send/cancel) are played on
// the same endpoints, dispatched on their SOAPAction (README.md): MediPrima answers are unsigned
// eHealth SOAP bodies (BuildMediPrimaResponse), eAttest requests are opened with the simulator's
// signing identity (it plays MyCareNet's encryption key) and answered sealed for the sender
// (BuildAttestationResponse). Refusals are injected with /control/mediprima and /control/eattest.
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
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "codecs/genasync_mailbox.h"
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
  // The operation the plan applies to: "" = every request; "mhm" (any MHM action), "post",
  // "get", "confirm" (genasync SOAPActions), "mediprima" (any MediPrima UMA or consult action),
  // "eattest" (SendAttestation, CancelAttestation). A scoped plan is consulted first for its
  // operation, then the insurer's unscoped plan.
  std::string operation;
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
// present, is returned in *insurer ("" otherwise); "operation" goes into FaultPlan::operation.
StatusOr<FaultPlan> ParseFaultPlan(std::string_view json, std::chrono::system_clock::time_point now,
                                   std::string* insurer);
std::string FaultPlanJson(const FaultPlan& plan, std::chrono::system_clock::time_point now);
// True for "", "mhm", "post", "get", "confirm", "mediprima", "eattest".
bool IsFaultOperation(std::string_view operation);

// What the insurer decides for an accepted eFact post: the return file it puts in the mailbox.
struct EfactDecision {
  codecs::EfactReturnKind kind = codecs::EfactReturnKind::kAcknowledged;
  // 6-digit codes (errors/EfactErrors.json) for the error records; each record points at the
  // first record of the original file whose type is the code's first two digits, zone = the next
  // two. Empty for a refusal → a default code (README.md).
  std::vector<std::string> codes;
};
// Parses /control/efact's JSON (README.md) into *decision, *insurer ("" = all), *next (0 = the
// default decision from now on) and the optional settings. kInvalid naming the key.
struct EfactControl {
  std::string insurer;
  std::optional<EfactDecision> decision;
  std::uint64_t next = 0;
  std::optional<std::chrono::milliseconds> return_delay;
  std::optional<bool> mailbox_tacks;
};
StatusOr<EfactControl> ParseEfactControl(std::string_view json);

// MediPrima refusals injected through /control/mediprima (README.md).
struct MediPrimaDecision {
  bool refused = false;
  std::vector<std::string> codes;  // StatusDetail codes; empty refusal → "SIM-REFUSED"
  // "" = any MediPrima request; else "send", "search", "delete" or "consult" only.
  std::string operation;
};
struct MediPrimaControl {
  std::string insurer;  // "" = every insurer
  std::optional<MediPrimaDecision> decision;
  std::uint64_t next = 0;  // 0 = the default decision from now on
};
StatusOr<MediPrimaControl> ParseMediPrimaControl(std::string_view json);

// The eAttest error table (errors/eAttestErrors.json): per code, the first XPath listed and its
// French message.
struct EAttestErrorText {
  std::string path;
  std::string description;
};
using EAttestErrorTable = std::map<std::string, EAttestErrorText>;
// kFailedPrecondition when the file cannot be read, kInvalid when it is not that table.
StatusOr<EAttestErrorTable> LoadEAttestErrorTable(const std::filesystem::path& json_file);

// eAttest SendAttestation decisions injected through /control/eattest (README.md).
struct EAttestDecision {
  bool refused = false;
  std::vector<std::string> codes;  // eAttest codes; empty refusal → "120"
};
struct EAttestControl {
  std::string insurer;  // "" = every insurer
  std::optional<EAttestDecision> decision;
  std::uint64_t next = 0;  // 0 = the default decision from now on
};
// `table`, when not null and not empty, is the set of allowed codes; else any 3-digit code.
StatusOr<EAttestControl> ParseEAttestControl(std::string_view json, const EAttestErrorTable* table);

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
  // Generic Async.
  std::uint64_t posts = 0;              // post requests processed (not faulted, transport OK)
  std::uint64_t posts_accepted = 0;     // first-time accepted posts (success TAck, one return)
  std::uint64_t posts_refused = 0;      // posts answered a non-success TAck
  std::uint64_t post_duplicates = 0;    // a repeated InputReference answered the stored TAck
  std::uint64_t gets = 0;               // get requests answered
  std::uint64_t confirms = 0;           // confirm requests answered
  std::uint64_t returns_delivered = 0;  // MsgResponse items sent in get answers (repeats count)
  std::uint64_t tacks_delivered = 0;    // TAckResponse items sent in get answers
  std::uint64_t returns_confirmed = 0;  // messages removed by a confirm
  std::uint64_t tacks_confirmed = 0;    // TAcks removed by a confirm
  std::uint64_t mailbox_depth = 0;      // gauge: unconfirmed messages now (visible or not)
  // MediPrima: requests decoded (duplicates included), per operation.
  std::uint64_t mediprima_sends = 0;
  std::uint64_t mediprima_searches = 0;
  std::uint64_t mediprima_deletes = 0;
  std::uint64_t mediprima_consults = 0;
  std::uint64_t mediprima_refused = 0;     // answers with a non-success status (first time)
  std::uint64_t mediprima_duplicates = 0;  // a repeated Send/Delete @Id answered from the store
  // eAttest: requests opened (duplicates included).
  std::uint64_t eattest_sends = 0;
  std::uint64_t eattest_cancels = 0;
  std::uint64_t eattest_accepted = 0;    // first answers accepted
  std::uint64_t eattest_refused = 0;     // first answers refused
  std::uint64_t eattest_duplicates = 0;  // a repeated envelope @Id answered from the store
  // The attemptNbr of the last opened eAttest request (0 = none seen or absent); in the total,
  // the highest of the insurers' values.
  std::uint64_t eattest_last_attempt = 0;
  std::uint64_t FaultsInjected() const {
    return faults_500 + faults_503 + faults_429 + faults_reset + faults_timeout + faults_outage;
  }
};

struct MailboxDepth {
  std::string insurer;
  std::string origin;          // the practice NIHII owning the mailbox
  std::uint64_t messages = 0;  // unconfirmed messages (visible or not)
  std::uint64_t tacks = 0;     // unconfirmed TAcks
};

struct SimulatorStats {
  SimulatorCounters total;
  std::vector<std::pair<std::string, SimulatorCounters>> by_insurer;  // configured order
  std::vector<MailboxDepth> mailboxes;  // non-empty mailboxes, by insurer then origin
  // Per insurer, per eAttest envelope @Id: the last attemptNbr seen.
  std::map<std::string, std::map<std::string, std::uint64_t>> eattest_attempts;
};

// The outcome of one request. `hold`: the timeout fault, the request must never be answered (the
// async handler parks it until Options::timeout_hold has passed, Reset or Shutdown, then closes
// the connection). `delay`: the latency to add before answering.
struct SimulatorReply {
  gateway::HttpResponse response;
  bool hold = false;
  std::chrono::milliseconds delay{0};
};

class InsurerSimulator {
 public:
  struct Options {
    std::vector<std::string> insurers;                // 3-digit codes "100".."999", at least one
    const codecs::SchemaRegistry* schemas = nullptr;  // MHM + kmehr + genasync sets
    X509_STORE* trust = nullptr;  // anchors for the gateway's WS-Security and XAdES signers
    const std::vector<X509Ptr>* intermediates = nullptr;  // untrusted CAs for WS-Security; nullable
    const SigningIdentity* signer = nullptr;              // signs the answers (XadesT)
    const Clock* clock = nullptr;
    FaultPlan faults;               // the initial plan for every insurer
    std::uint64_t random_seed = 0;  // for the fault rates; 0 = from the OS
    unsigned workers = 2;           // threads of the async handler
    // A request held by the timeout fault is closed (without answer) after this long, so that a
    // timeout rate cannot fill the listener's connection cap. Steady clock.
    std::chrono::milliseconds timeout_hold{60'000};
    // An eFact return becomes visible to get this long after its post was accepted (clock).
    std::chrono::milliseconds return_delay{0};
    // Also put the post's TAck in the mailbox (TAckResponse items of get). Off by default.
    bool mailbox_tacks = false;
    // The decision for accepted posts until /control/efact changes it.
    EfactDecision efact;
    // MediPrima consult: the beneficiaries (SSIN) holding a medical card, besides those with a
    // UMA attestation recorded at the insurer. Kept only hashed.
    std::vector<std::string> mediprima_beneficiaries;
    // The eAttest codes /control/eattest may inject, with their XPath (empty: any 3-digit code,
    // no XPath).
    EAttestErrorTable eattest_errors;
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

  // Drops the stored answers, the enrolments, the mailboxes, the counters, every insurer's fault
  // plan and eFact decisions (back to Options), and closes the held requests. Also POST
  // /control/reset.
  void Reset();
  // Answers everything queued or delayed, closes held requests and joins the threads.
  // Idempotent; the async handler closes requests that arrive afterwards.
  void Shutdown();

  SimulatorStats Stats() const;
  std::string StatsJson() const;
  // Sets the plan of one insurer ("" = every insurer) for plan.operation. kInvalid for an unknown
  // insurer or operation.
  Status SetFaultPlan(const std::string& insurer, const FaultPlan& plan);
  // As POST /control/efact, /control/mediprima, /control/eattest.
  Status SetEfact(const EfactControl& control);
  Status SetMediPrima(const MediPrimaControl& control);
  Status SetEAttest(const EAttestControl& control);
  // Requests currently parked by the timeout fault.
  std::size_t HeldRequests() const;

 private:
  struct Impl;
  explicit InsurerSimulator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace psl::simulator

#endif  // PSL_CONFORMANCE_SIMULATOR_INSURER_SIMULATOR_H_
