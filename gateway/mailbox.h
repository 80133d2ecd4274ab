// Mailbox: the gateway's side of the MyCareNet Generic Async mailbox (DOMAIN.md §4.3). eFact
// posts are answered twice: the delivery's TAck ("received", ParsePostAnswer below) and, later,
// the insurer's return file (931000 accepted, 920999 / 920099 refused, 920098 accepted with
// errors) that the practice's mailbox at that insurer holds until it is confirmed.
//
// For every insurer with a claim_url or amu_url and every configured practice (11-digit NIHII),
// every [mailbox] poll_interval (one get per message name, even when claim_url = amu_url:
// HCPFAC and ECM-HCPFAC are never mixed in one get; NOTE DOMAIN §4.3 wants MediPrima items
// confirmed by references, which codecs::ConfirmRequest cannot express yet (no MsgRefValues):
// they are confirmed by HashValue like HCPFAC until the codec supports it):
//   get (WS-Security signed with the gateway key, SOAPAction kGenAsyncGetAction, Origin = the
//   practice, MessageNames HCPFAC for claim_url / ECM-HCPFAC for amu_url, TAcks included)
//   → ParseGetResponse, each item's Xades-t verified against the insurer's CA (the trust its
//   delivery answers are verified with); an item that does not verify is REJECTED: never
//   recorded, never confirmed (it comes back on every get; counted and logged)
//   → each message: ParseEfactReturn → decision + codes → DurableQueue::RecordReturn(
//   destination = the insurer, mailbox_key = hex SHA-256(inflated return file + "|" +
//   InputReference) (NOT Detail/@HashValue: that hashes the deflated bytes, and an item served
//   again with other compression must still be a duplicate; HashValue is only echoed in the
//   confirm), message_id = the item's InputReference, practice = the mailbox owner), synced.
//   LINK CHECK: the Xades-t covers Detail only; CommonOutput/InputReference is unsigned. So the
//   return is linked to that message only when the SIGNED return file's original reference
//   (segment 200 zone 204) equals the eFact file reference (segment 200 zone 204) of the
//   message's own stored payload (DurableQueue::Payload: the post's Detail, decoded and
//   inflated); on a mismatch, or when the payload was purged and cannot be checked, the return
//   is recorded as an orphan (message_id "", reason logged, stats.link_refused). The store
//   further links it only when that message exists, was sent to this insurer and belongs to
//   this practice, else keeps it as an orphan.
//   A return file that verifies but does not parse is recorded as an orphan with decision
//   "unreadable" (codes empty, the verified MsgResponse kept), counted (stats.unreadable),
//   logged (warn) and confirmed: it no longer comes back and starves later items.
//   → each TAck: INFORMATIONAL ONLY. A TAckResponse's Xades-t signs the decoded TAck content,
//   not its attributes (AppliesTo, ResultMajor/Minor, Reference): none of what the gateway would
//   use is covered. So a mailbox TAck never changes a message's decision: it is always recorded
//   as an orphan (message_id "", stats.tacks), whatever it says; the message keeps the
//   decision of its post answer / signed return. mailbox_key "tack:" + SHA-256 of its
//   attributes and content; decision "received" or "refused" with its ResultMinor; document =
//   the TAck element re-serialised from its parsed fields (ParseGetResponse gives no copy);
//   confirmed by its content.
//   → confirm (kGenAsyncConfirmAction) ONLY the items recorded now or before (kRecorded or
//   kDuplicate). A crash between the record and the confirm leaves the item in the mailbox: the
//   next get records a duplicate (nothing written) and confirms it. Exactly once.
// Failures: a transport error or an HTTP error without a SOAP fault on a get is the insurer's:
// the remaining practices of that insurer are not polled this round and the insurer backs off
// (poll_interval x 2^(failures-1) up to [mailbox] max_backoff). A SOAP fault, an unusable or
// unverifiable answer, or a get that cannot be built concerns that Origin only: that
// (insurer, practice) backs off alone (same formula, RunOnce skips it until due) and the other
// practices are polled. A failed confirm is counted; the items come back and are confirmed next
// time. Items that fail verification are never recorded nor confirmed; they are counted
// (rejected) and the number seen in the latest get of each (insurer, practice) is the gauge
// stats().unverified_pending / passerelle_mailbox_unverified_items{insurer}.
// Practices whose NIHII is not 11 digits (8-digit NIHIIs: the get's Origin needs 11 digits) are
// NEVER polled: the constructor logs each once (warn, the NIHII named).
//
// Metrics (when given): passerelle_mailbox_gets_total{insurer,outcome=ok|failed},
// passerelle_mailbox_returns_total{insurer,outcome=recorded|duplicate|orphan|unreadable|tack|
//   rejected|failed}, passerelle_mailbox_unverified_items{insurer} (gauge),
// passerelle_mailbox_confirms_total{insurer,outcome=ok|failed}. Logs never hold a patient value
// (return files name records and zones only; foreign text is masked).
//
// One thread polls the insurers in turn (a slow insurer delays the others by at most its
// request timeout per get).
// Stop: stopping_ is checked before each (practice, target) get and again between the get (and
// its records) and the confirm, so Stop() waits for at most ONE in-flight HTTP exchange (a get or
// a confirm: at most the Sender's request timeout) plus the synced RecordReturn writes of that
// one get (at most max_messages + max_tacks items). Once stopping, RunOnce sends nothing more.
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
  std::uint64_t gets = 0;               // get requests sent
  std::uint64_t get_failures = 0;       // transport / HTTP / fault / unusable answer
  std::uint64_t recorded = 0;           // returns (and TAcks) written, orphans included
  std::uint64_t duplicates = 0;         // recorded before (a confirm was lost)
  std::uint64_t orphans = 0;            // of `recorded`: not linked to a message of this practice
  std::uint64_t rejected = 0;           // items that fail verification (never confirmed)
  std::uint64_t unreadable = 0;         // verified but unparsable returns (recorded as orphans)
  std::uint64_t link_refused = 0;       // returns not linked: signed reference mismatch / purged
  std::uint64_t tacks = 0;              // of `recorded`: mailbox TAcks (informational orphans)
  std::uint64_t practice_failures = 0;  // of get_failures: fault/unusable answer for one Origin
  std::uint64_t record_failures = 0;    // the store could not write (not confirmed)
  std::uint64_t confirmed = 0;          // items in confirms the insurer accepted
  std::uint64_t confirm_failures = 0;   // confirm requests that failed
  // Gauge (stats() only): items that failed verification in the latest get of each
  // (insurer, practice, target), summed. 0 in a RunOnce result.
  std::uint64_t unverified_pending = 0;
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
  enum class PollResult { kOk, kPracticeFailed, kInsurerFailed };
  struct Backoff {
    std::uint32_t failures = 0;
    std::chrono::system_clock::time_point next_poll{};
  };
  // One get + record + confirm for (insurer, practice, target); adds to *stats.
  PollResult PollOne(const Lane& lane, const std::string& practice, const Target& target,
                     MailboxStats* stats);
  // *insurer_level (when not null) is set when the failure is the insurer's (transport, HTTP
  // error without a SOAP fault), cleared for a fault / unusable answer.
  StatusOr<std::string> Call(const std::string& insurer, const std::string& url,
                             std::string_view action, const std::string& body,
                             bool* insurer_level = nullptr);
  bool Stopping();
  std::chrono::milliseconds BackoffDelay(std::uint32_t failures) const;
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
  GaugeFamily* unverified_gauge_ = nullptr;
  std::map<std::string, Backoff> practice_backoff_;  // "insurer|practice"; under run_mu_
  std::map<std::string, std::uint64_t> unverified_;  // "insurer|practice|url"; under stats_mu_
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
