// Mailbox: the gateway's side of the MyCareNet Generic Async mailbox (DOMAIN.md §4.3). eFact
// posts are answered twice: the delivery's TAck ("received", ParsePostAnswer below) and, later,
// the insurer's return file (931000 accepted, 920999 / 920099 refused, 920098 accepted with
// errors) that the practice's mailbox at that insurer holds until it is confirmed.
//
// For every insurer with a claim_url or amu_url and every configured practice (11-digit NIHII),
// every [mailbox] poll_interval:
//   get (WS-Security signed with the gateway key, SOAPAction kGenAsyncGetAction, Origin = the
//   practice, MessageNames HCPFAC for claim_url / ECM-HCPFAC for amu_url, TAcks included)
//   → ParseGetResponse, each item's Xades-t verified against the insurer's CA (the trust its
//   delivery answers are verified with); an item that does not verify is REJECTED: never
//   recorded, never confirmed (it comes back on every get; counted and logged)
//   → each message: ParseEfactReturn → decision + codes → DurableQueue::RecordReturn(
//   destination = the insurer, mailbox_key = Detail/@HashValue, message_id = the item's
//   InputReference, practice = the mailbox owner), synced; the store links it to the message
//   only when that message exists, was sent to this insurer and belongs to this practice, else
//   keeps it as an orphan. Each TAck likewise (mailbox_key "tack:" + SHA-256 of its attributes and
//   content; decision "received" or "refused" with its ResultMinor; confirmed by its content).
//   → confirm (kGenAsyncConfirmAction) ONLY the items recorded now or before (kRecorded or
//   kDuplicate). A crash between the record and the confirm leaves the item in the mailbox: the
//   next get records a duplicate (nothing written) and confirms it. Exactly once.
// A failed get (transport error, HTTP error, SOAP fault, unusable answer) backs that insurer off:
// poll_interval x 2^(failures-1) up to [mailbox] max_backoff. A failed confirm is counted; the
// items come back and are confirmed next time.
//
// Metrics (when given): passerelle_mailbox_gets_total{insurer,outcome=ok|failed},
// passerelle_mailbox_returns_total{insurer,outcome=recorded|duplicate|orphan|rejected|failed},
// passerelle_mailbox_confirms_total{insurer,outcome=ok|failed}. Logs never hold a patient value
// (return files name records and zones only; foreign text is masked).
//
// One thread polls the insurers in turn (a slow insurer delays the others by at most its
// request timeout per get).
// Ownership: borrows everything; all of it outlives the Mailbox. Thread-safety: Start/Stop from
// one thread; RunOnce and stats from any thread (serialised internally).
#ifndef PSL_GATEWAY_MAILBOX_H_
#define PSL_GATEWAY_MAILBOX_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
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
#include "gateway/delivery.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "store/store.h"

namespace psl::gateway {

// The answer to a delivered genasync post (lease.flow_kind claim|amu, operation "post"): its TAck,
// which must apply to this message (AppliesTo = urn:nip:reference:input:<message id>). Success →
// decision "received", insurer_reference = TAck/@Reference; any other ResultMajor is a business
// refusal → decision "refused", codes {ResultMinor} (or ResultMajor when no minor). kInvalid when
// the body is not a postResponse or the TAck applies to another message.
StatusOr<ParsedAnswer> ParsePostAnswer(const store::Lease& lease, std::string_view body_xml,
                                       const codecs::SchemaRegistry& schemas);

// What one RunOnce did (also summed in stats()).
struct MailboxStats {
  std::uint64_t gets = 0;              // get requests sent
  std::uint64_t get_failures = 0;      // transport / HTTP / fault / unusable answer
  std::uint64_t recorded = 0;          // returns (and TAcks) written, orphans included
  std::uint64_t duplicates = 0;        // recorded before (a confirm was lost)
  std::uint64_t orphans = 0;           // of `recorded`: not linked to a message of this practice
  std::uint64_t rejected = 0;          // unverifiable or unreadable items (never confirmed)
  std::uint64_t record_failures = 0;   // the store could not write (not confirmed)
  std::uint64_t confirmed = 0;         // items in confirms the insurer accepted
  std::uint64_t confirm_failures = 0;  // confirm requests that failed
};

// The insurer's CA store for verifying its signatures (null = none: every item is rejected).
using InsurerTrust = std::function<X509_STORE*(const std::string& insurer)>;

struct MailboxDeps {
  const Config* config = nullptr;
  store::DurableQueue* queue = nullptr;
  const codecs::SchemaRegistry* schemas = nullptr;
  const Clock* clock = nullptr;
  const SigningIdentity* identity = nullptr;  // signs the WS-Security header
  Sender* sender = nullptr;
  InsurerTrust trust;
  Metrics* metrics = nullptr;  // may be null
  Logger* logger = nullptr;    // may be null (no logs)
  std::chrono::seconds soap_ttl{60};
};

class Mailbox {
 public:
  explicit Mailbox(MailboxDeps deps);
  ~Mailbox();  // Stop()s
  Mailbox(const Mailbox&) = delete;
  Mailbox& operator=(const Mailbox&) = delete;

  // Starts the polling thread (nothing when [mailbox] enabled is false or no insurer qualifies).
  void Start();
  // Finishes the current poll and joins. Idempotent. Call before the store closes.
  void Stop();

  // Polls every practice's mailbox at `insurer` once, on the calling thread (what the thread does
  // each interval). Tests drive the poller with it deterministically. An unknown insurer or one
  // without claim/amu endpoint does nothing.
  MailboxStats RunOnce(const std::string& insurer);

  // The insurers polled (claim_url or amu_url configured).
  std::vector<std::string> insurers() const;
  MailboxStats stats() const;

 private:
  struct Target {  // one get destination of an insurer
    std::string url;
    std::vector<std::string> message_names;
  };
  struct Lane {
    std::string insurer;
    std::vector<Target> targets;
    std::uint32_t failures = 0;
    std::chrono::system_clock::time_point next_poll{};
  };

  void Work();
  // One get + record + confirm for (insurer, practice, target); adds to *stats. False when the
  // get failed (the insurer backs off).
  bool PollOne(const Lane& lane, const std::string& practice, const Target& target,
               MailboxStats* stats);
  StatusOr<std::string> Call(const std::string& insurer, const std::string& url,
                             std::string_view action, const std::string& body);
  void Count(const std::string& insurer, const char* family, const char* outcome,
             std::uint64_t n = 1);
  void Log(LogLevel level, std::string_view msg, const std::string& insurer,
           const std::string& practice, const std::string& error,
           const std::string& message_id = "");

  MailboxDeps deps_;
  std::map<std::string, Lane> lanes_;
  std::vector<std::string> practices_;
  CounterFamily* gets_total_ = nullptr;
  CounterFamily* returns_total_ = nullptr;
  CounterFamily* confirms_total_ = nullptr;
  std::mutex run_mu_;  // one poll at a time (RunOnce from tests and the thread)
  mutable std::mutex stats_mu_;
  MailboxStats stats_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_MAILBOX_H_
