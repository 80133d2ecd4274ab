// Delivery: per-insurer workers that take due queue entries from the store, wrap the signed
// request in a SOAP 1.1 + WS-Security envelope, send it to the insurer over mTLS and record the
// outcome (DESIGN.md "Life of a message" 6–7):
//   answer (any business decision, refusals included)   -> Ack with the parsed answer
//   transport failure, HTTP 5xx, 429, SOAP Server fault  -> Nack, full-jitter exponential
//                                                          back-off, Retry-After honoured
//   other HTTP 4xx, SOAP Client fault, unverifiable answer, attempts or age exhausted
//                                                        -> DeadLetter with the reason
// Per flow: MHM requests go to the insurer's enrolment_url with the MHM SOAPAction; eFact posts
// (flow_kind claim|amu, operation post) to its claim_url|amu_url with SOAPAction
// kGenAsyncPostAction and WS-Addressing Action/To/MessageID headers (To =
// urn:nip:destination:io:<insurer code>, DeliveryOptions::genasync_destination); eAttest
// (claim, SendAttestation|CancelAttestation) to its eattest_url (else claim_url) with
// EAttestSoapAction, the stored sealed request's attemptNbr set to the lease's attempt number
// (1, 2, ...: SetAttemptNumber) on every attempt; MediPrima (amu, a MediPrimaOperationName) to
// its mediprima_uma_url or mediprima_consult_url with MediPrimaSoapAction, unsigned body. The
// answer parser (the app's) turns an MHM response, a TAck, an eAttest or MediPrima answer into
// the answer.
// Each insurer has max_in_flight worker threads (the in-flight cap) and one circuit breaker: after
// failure_threshold consecutive failures no entry is leased for `open`, then half_open_probes
// successful probes close it again. A crashed worker's lease simply expires (store contract), so
// the same message id is sent again and the insurer de-duplicates on it.
//
// Ownership: borrows the config, queue, clock, identity and sender; they outlive the Delivery.
// Thread-safety: Start/Stop from one thread; Notify and breaker_open from any thread.
#ifndef PSL_GATEWAY_DELIVERY_H_
#define PSL_GATEWAY_DELIVERY_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "codecs/schema_registry.h"
#include "gateway/config.h"
#include "gateway/http_types.h"
#include "gateway/https_client.h"
#include "store/store.h"

namespace psl::gateway {

// The outbound seam: one request to an insurer endpoint. HttpsSender is the real one; tests of
// the delivery logic use a scripted fake. Must be thread-safe (workers call it concurrently).
class Sender {
 public:
  virtual ~Sender() = default;
  virtual HttpsResult Send(const std::string& insurer, const HttpsUrl& url,
                           const HttpHeaders& headers, std::string_view body) = 0;
};

// One HttpsClient per (insurer, calling thread), created on first use from the insurer's
// configuration ([insurers.<key>] client certificate, CA, timeouts), so every worker keeps its own
// kept-alive connection.
class HttpsSender final : public Sender {
 public:
  explicit HttpsSender(const Config& config);
  HttpsResult Send(const std::string& insurer, const HttpsUrl& url, const HttpHeaders& headers,
                   std::string_view body) override;

 private:
  const Config& config_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::thread::id>, std::unique_ptr<HttpsClient>> clients_;
};

// What the flow codec found in an insurer's answer (no patient data).
struct ParsedAnswer {
  std::string decision;  // "accepted", "refused", ...
  std::vector<std::string> codes;
  std::string insurer_reference;
};
// (the lease that was delivered, the SOAP body document) -> the parsed and verified answer;
// kInvalid when the answer is not acceptable (schema, signature, not the answer to this
// message). Thread-safe.
using AnswerParser =
    std::function<StatusOr<ParsedAnswer>(const store::Lease& lease, std::string_view body_xml)>;

// The answer parsers of the synchronous flows the app's AnswerParser dispatches to (the MHM one
// is codecs::ParseMhmResponse, the genasync TAck's ParsePostAnswer in mailbox.h):
//  * MediPrima (flow_kind amu, operation a MediPrimaOperationName): the unsigned eHealth body
//    (ParseMediPrimaResponse) must be the answer to this operation and carry InResponseTo =
//    "_" + message id; decision accepted|refused|found|not-found, codes, insurer_reference = the
//    attestation number (Send/Delete/Search) or the card's agreement/carmed number (Consult).
//  * eAttest (flow_kind claim, operation SendAttestation|CancelAttestation): unsealed with
//    `ours` (the identity that sealed the request: its certificate was the Reply-to), the
//    insurer's signatures verified against `insurer_trust`; CommonOutput/InputReference must be
//    "_" + message id; decision accepted|refused, codes, insurer_reference = invoicing number.
// kInvalid when the answer is not acceptable (the delivery dead-letters it).
StatusOr<ParsedAnswer> ParseMediPrimaAnswer(const store::Lease& lease, std::string_view body_xml,
                                            const codecs::SchemaRegistry& schemas);
StatusOr<ParsedAnswer> ParseEAttestAnswer(const store::Lease& lease, std::string_view body_xml,
                                          const codecs::SchemaRegistry& schemas,
                                          const SigningIdentity& ours, X509_STORE* insurer_trust,
                                          const Clock& clock);
// Whether a stored message is of those flows (by its flow_kind and operation).
bool IsMediPrimaMessage(std::string_view flow_kind, std::string_view operation);
bool IsEAttestMessage(std::string_view flow_kind, std::string_view operation);

// Text that came from an insurer or the network (a faultstring, a transport detail), made fit to
// store as a reason and show to practices and ops: runs of 6 or more digits masked ("[number]":
// foreign text may quote a NISS), control characters dropped, length capped at 200.
std::string SanitiseForeign(std::string_view foreign);

// The WS-Addressing namespace of the genasync headers.
inline constexpr std::string_view kWsAddressingNs = "http://www.w3.org/2005/08/addressing";

// Adds wsa:Action, wsa:To and (when not empty) wsa:MessageID to the soapenv:Header of an envelope
// made by codecs::BuildSoapRequest, after the wsse:Security header. They are not covered by the
// WS-Security signature (the profile signs Body and Timestamp only) and carry no mustUnderstand.
// kInvalid when the envelope has no soapenv:Header.
StatusOr<std::string> AddWsAddressing(std::string_view envelope, std::string_view action,
                                      std::string_view to, std::string_view message_id);

struct DeliveryOptions {
  // Each worker looks for due entries at least this often (retries become due without a
  // notification); Notify wakes it at once for new messages.
  std::chrono::milliseconds idle_poll{200};
  std::chrono::seconds soap_ttl{60};  // WS-Security Timestamp lifetime
  std::uint64_t seed = 0;             // jitter; 0 = random_device
  // The insurer code of a genasync post's WS-Addressing To (urn:nip:destination:io:<code>);
  // empty function or "" = the lease's destination (right whenever that is an insurer code; a
  // hub route needs the batch's own destination). Called on worker threads.
  std::function<std::string(const store::Lease&)> genasync_destination;
};

// Told of every attempt's outcome ("answered", "retry", "dead", "breaker-open"); the app turns it
// into metrics. Called from worker threads.
// `message_id` is "" for "breaker-open".
using AttemptObserver = std::function<void(
    const std::string& insurer, const std::string& message_id, std::string_view outcome)>;

// Outcome counters.
struct DeliveryStats {
  std::uint64_t attempts = 0;
  std::uint64_t answered = 0;
  std::uint64_t retried = 0;
  std::uint64_t dead_lettered = 0;
};

class Delivery {
 public:
  // One lane per [insurers.*] table with at least one endpoint. `identity` signs the
  // WS-Security header.
  Delivery(const Config& config, store::DurableQueue* queue, const Clock* clock,
           const SigningIdentity* identity, Sender* sender, AnswerParser parser,
           AttemptObserver observer = {}, DeliveryOptions options = {});
  ~Delivery();  // Stop()s
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  void Start();
  // Asks every worker to finish its current attempt and joins them. Idempotent.
  void Stop();
  // A message for `insurer` was committed: wake one of its idle workers.
  void Notify(const std::string& insurer);

  // Leases one due entry of `insurer` and delivers it on the calling thread (what each worker
  // does in its loop). False when nothing was due, the breaker held it back, or no such insurer.
  // Tests drive the delivery logic with it, deterministically, without starting workers.
  bool RunOnce(const std::string& insurer);

  bool breaker_open(const std::string& insurer) const;
  DeliveryStats stats() const;

  // Full-jitter exponential back-off for the attempt that just failed (1 = the first attempt):
  // uniform in [0, min(cap, base * 2^(attempt-1))], at least `retry_after` when the insurer sent
  // one. Exposed for tests.
  static std::chrono::milliseconds Backoff(const RetryPolicy& policy, std::uint32_t attempt,
                                           std::chrono::milliseconds retry_after,
                                           std::mt19937_64& rng);
  // Retry-After as delta-seconds or an HTTP-date, relative to `now`; 0 when absent or unparsable.
  static std::chrono::milliseconds ParseRetryAfter(std::string_view value,
                                                   std::chrono::system_clock::time_point now);

 private:
  struct Breaker {
    std::uint32_t consecutive_failures = 0;
    std::chrono::system_clock::time_point open_until{};
    bool half_open = false;
    std::uint32_t probes_ok = 0;
    bool probe_in_flight = false;
  };
  struct Lane {  // one insurer
    std::string insurer;
    const InsurerConfig* config = nullptr;
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t notifications = 0;
    Breaker breaker;
    std::vector<std::thread> threads;
  };
  enum class Outcome { kAnswered, kRetry, kDead };

  void Work(Lane* lane, std::uint64_t seed);
  bool RunOnce(Lane* lane, std::mt19937_64& rng);
  // Whether a lease may be taken now (breaker closed, or the half-open probe slot is free).
  bool MayLease(Lane* lane, bool* is_probe);
  void RecordResult(Lane* lane, bool success, bool was_probe);
  // *insurer_failed: the insurer did not answer usefully (transport, 5xx, 429, Server fault) —
  // what the breaker counts, whether the entry was retried or its attempts were exhausted.
  Outcome Deliver(Lane* lane, const store::Lease& lease, std::mt19937_64& rng,
                  bool* insurer_failed);

  const Config& config_;
  store::DurableQueue* queue_;
  const Clock* clock_;
  const SigningIdentity* identity_;
  Sender* sender_;
  AnswerParser parser_;
  AttemptObserver observer_;
  DeliveryOptions options_;
  std::map<std::string, std::unique_ptr<Lane>> lanes_;
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  mutable std::mutex stats_mu_;
  DeliveryStats stats_;
  std::mutex run_once_mu_;
  std::mt19937_64 run_once_rng_;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_DELIVERY_H_
