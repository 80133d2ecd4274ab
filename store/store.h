// The store's seams (DESIGN.md "Store", "Audit"): DurableQueue holds accepted messages, their
// per-destination queue entries, idempotency records, answers and dead letters; AuditLog is the
// hash-chained audit trail. RocksDbStore (rocksdb_store.h) implements both durably; MemoryStore
// (memory_store.h) is the in-memory fake for gateway unit tests.
//
// Contract shared by every implementation:
// - Every state transition (Commit, LeaseNext, Ack, Nack, DeadLetter, Replay, RecordReturn) and
//   every Append is one atomic write carrying its sealed AuditEvent, written in call order.
// - Commit, Ack, DeadLetter, Replay, RecordReturn, Append and the purges return OK only after
//   their write is durable (synced): they acknowledge something to someone (a 202, an answer, an
//   operator's action, a mailbox confirmation) or remove data.
// - LeaseNext and Nack may return OK before their write is durable: a power cut can lose the
//   latest of them (a suffix, never one in the middle: any later durable write makes every
//   earlier one durable too). Neither acknowledges anything to anyone. A lost lease leaves the
//   entry due again, so the message is delivered again with the same id (the insurer
//   de-duplicates; `attempts` and the "attempt" events undercount by the lost ones); a lost Nack
//   leaves the entry leased, so it is due when that lease expires instead of at the scheduled
//   retry (or at once when its lease was lost too), and its "retry" event and last_error are
//   lost: a retry at another time, never a lost message. The audit chain stays a prefix of what was
//   written: its head is stored in the same batch as its events, so the head found after a
//   restart is that of the last batch that survived; no gap, no fork. Audit reads (Query, Head,
//   Verify) only ever show durable events: they make pending writes durable first.
// - kUnavailable: nothing was written (a write or sync error, the store is in a background-error
//   state, or free disk space is below the reserve — which refuses only new work: Commit, Replay,
//   Append, RecordReturn; queue transitions and purges still run so the queue drains). The caller
//   answers 503 / retries later; the store never retries a failed write into a success. After a
//   failed write the outcome of that write is unknown to the caller (it may reappear after a
//   restart if the bytes reached the disk): clients retry with the same idempotency key.
// - kConflict: an idempotency key reused with another body, a message id that already exists, or a
//   stale lease (its queue entry was moved by someone else).
// - kNotFound: no such message / answer / dead letter.
// - Status messages never contain patient data (no NISS, no payload bytes): only ids and codes.
// - All methods are thread-safe; values returned are copies owned by the caller.
// Times are Unix epoch milliseconds in stored records and std::chrono time points in arguments.
#ifndef PSL_STORE_STORE_H_
#define PSL_STORE_STORE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/audit.h"

namespace psl::store {

using TimePoint = std::chrono::system_clock::time_point;

// Epoch milliseconds <-> time points (the stored representation).
std::int64_t ToEpochMs(TimePoint t);
TimePoint FromEpochMs(std::int64_t ms);

enum class MessageState { kQueued, kDelivering, kRetrying, kAnswered, kDead };
// "queued", "delivering", "retrying", "answered", "dead".
std::string_view MessageStateName(MessageState state);
std::optional<MessageState> ParseMessageState(std::string_view name);

// What the gateway hands to Commit after decode, route and sign.
struct NewMessage {
  std::string id;              // unique message id chosen by the gateway (e.g. a UUID); not empty
  std::string practice_nihii;  // the authenticated practice
  std::string flow_kind;       // enrolment | claim | amu
  std::string operation;       // flow operation, e.g. "register", "invoice"
  std::vector<std::string> destinations;  // insurer codes; one queue entry each; at least one
  std::string idempotency_key;            // "" = none (no de-duplication)
  std::string body_sha256;                // hex digest of the request body (idempotency check)
  std::string payload;                    // the signed payload; encrypted at rest
  std::string payload_sha256;             // hex digest of `payload` (audit); computed when ""
  std::string patient_pseudonym;          // PatientPseudonym(...) or ""
  std::string actor;                      // audit actor; "practice:<nihii>" when ""
};

enum class CommitOutcome {
  kCommitted,  // new message written
  kDuplicate,  // same practice + idempotency key + body: the original id, nothing written
};

struct CommitResult {
  std::string id;  // the new id, or the original one for a duplicate
  CommitOutcome outcome = CommitOutcome::kCommitted;
};

// Progress of a message towards one destination.
struct Delivery {
  std::string destination;
  MessageState state = MessageState::kQueued;
  std::uint32_t attempts = 0;        // leases taken so far
  std::int64_t next_attempt_ms = 0;  // due time of its queue entry (lease expiry while delivering)
  std::string last_error;            // from the last Nack / DeadLetter ("" when none)
};

// The stored record of a message (no payload: see DurableQueue::Payload).
struct MessageRecord {
  std::string id;
  std::string practice_nihii;
  std::string flow_kind;
  std::string operation;
  std::vector<Delivery> deliveries;  // one per destination, in NewMessage order
  // Aggregate over deliveries: delivering > retrying > queued > dead > answered (the first that
  // any delivery is in); attempts summed; next attempt the earliest pending; last error the latest.
  MessageState state = MessageState::kQueued;
  std::uint32_t attempts = 0;
  std::int64_t next_attempt_ms = 0;
  std::string last_error;
  std::int64_t accepted_ms = 0;
  std::int64_t finished_ms = 0;  // when the last delivery became answered/dead; 0 while pending
  std::string idempotency_key;
  std::string body_sha256;
  std::string payload_sha256;
  std::string patient_pseudonym;
  bool payload_purged = false;  // retention removed the payload
};

// A delivery leased by a worker. The lease is valid until `expires_ms`; afterwards the entry is due
// again and another LeaseNext may take it (then this lease is stale).
struct Lease {
  std::string message_id;
  std::string destination;
  std::int64_t expires_ms = 0;  // identifies the queue entry together with destination and id
  std::uint32_t attempt = 0;    // 1 for the first delivery attempt
  std::string practice_nihii;
  std::string flow_kind;
  std::string operation;
  std::string payload;  // decrypted signed payload
};

// The insurer's answer, as recorded by Ack.
struct NewAnswer {
  std::string document;            // the answer document bytes; encrypted at rest
  std::string decision;            // e.g. "accepted", "refused", "partially-accepted"
  std::vector<std::string> codes;  // MyCareNet / business codes (no patient data)
  std::string insurer_reference;   // the insurer's reference for the decision ("" when none)
};

struct StoredAnswer {
  std::string message_id;  // "" for an orphan return (OrphanReturns)
  std::string destination;
  std::string document;  // decrypted
  std::string decision;
  std::vector<std::string> codes;
  std::string insurer_reference;
  std::int64_t received_ms = 0;
  // "" for the delivery's own answer (Ack); the insurer's mailbox key for a return (RecordReturn).
  std::string mailbox_key;
};

// An insurer's asynchronous return collected from its mailbox (genasync get).
struct NewReturn {
  std::string destination;  // the insurer key whose mailbox it came from; not empty
  std::string mailbox_key;  // stable id of the item at that insurer, chosen by the caller (the
                            // mailbox poller: hex SHA-256 of the inflated return content + "|" +
                            // InputReference, so a re-compressed copy is the same item; "tack:" +
                            // a digest of the TAck); not empty
  std::string message_id;   // the accepted message it answers; "" = no match (kept as an orphan)
  NewAnswer answer;         // document + decision + codes + insurer_reference
  // The mailbox owner (the get's Origin NIHII). Optional ("" = not checked); when set, a message of
  // another practice is not linked (the return is kept as an orphan).
  std::string practice_nihii;
};

enum class ReturnOutcome {
  kRecorded,   // written (linked to its message, or kept as an orphan)
  kDuplicate,  // (destination, mailbox_key) was recorded before: nothing written
};

// A return that RecordReturn could not link to a message.
struct OrphanReturn {
  std::string claimed_message_id;  // NewReturn::message_id as given ("" when none)
  // "no-reference" (message_id ""), "unknown-message", "destination-mismatch" (the message was
  // not sent to this insurer) or "practice-mismatch" (another practice's message).
  std::string reason;
  StoredAnswer answer;  // message_id ""; destination, mailbox_key, received_ms set
};

struct OrphanReturnPage {
  std::vector<OrphanReturn> returns;  // in the order recorded
  std::string next_cursor;
};

struct DeadLetter {
  std::string message_id;
  std::string destination;
  std::string reason;
  std::int64_t time_ms = 0;
};

// Paging: pass the previous page's `next_cursor` as `after`; an empty next_cursor is the last page.
struct PageRequest {
  std::string after;
  std::size_t limit = 50;  // 1..1000
};

struct MessageFilter {
  std::optional<MessageState> state;        // aggregate state
  std::string flow_kind;                    // "" = any
  std::string destination;                  // "" = any
  std::int64_t accepted_from_ms = 0;        // inclusive
  std::int64_t accepted_to_ms = INT64_MAX;  // exclusive
};

struct MessagePage {
  std::vector<MessageRecord> records;  // newest accepted first
  std::string next_cursor;
};

struct DeadLetterPage {
  std::vector<DeadLetter> letters;  // by message id
  std::string next_cursor;
};

struct QueueStats {
  std::uint64_t depth = 0;              // entries (due or not, leased or not) for the destination
  std::int64_t oldest_accepted_ms = 0;  // accepted time of the oldest pending message; 0 if empty
};

struct PurgeResult {
  std::uint64_t payloads_purged = 0;
  std::uint64_t audit_events_purged = 0;
};

class DurableQueue {
 public:
  DurableQueue() = default;
  DurableQueue(const DurableQueue&) = delete;
  DurableQueue& operator=(const DurableQueue&) = delete;
  virtual ~DurableQueue() = default;

  // Writes message + encrypted payload + a queue entry per destination (due now) + idempotency
  // record + sealed "accepted" audit event, durably, in one batch. Same practice + key + body as an
  // earlier commit: kDuplicate with the original id, nothing written. Errors: kInvalid (missing id,
  // practice or destination), kConflict (key reused with another body, or id exists),
  // kUnavailable (nothing written).
  virtual StatusOr<CommitResult> Commit(NewMessage message) = 0;

  // The first entry of `destination` with due time <= now, leased until now + lease_for
  // (attempts+1, state delivering, audit "attempt"); nullopt when nothing is due. A worker that
  // crashes simply lets the lease expire. Not synced (see the contract above): after a power cut
  // the lease may be gone and the entry due again. Errors: kUnavailable.
  virtual StatusOr<std::optional<Lease>> LeaseNext(std::string_view destination, TimePoint now,
                                                   std::chrono::milliseconds lease_for) = 0;

  // Records the answer, removes the queue entry; the delivery becomes answered (audit "answered").
  // Errors: kConflict (stale lease), kNotFound (no such message), kUnavailable.
  virtual Status Ack(const Lease& lease, NewAnswer answer) = 0;

  // Moves the entry to `next_attempt_at`; the delivery becomes retrying (audit "retry" with
  // `error`, which must hold no patient data). Not synced (see the contract above): after a
  // power cut the entry may be due at the lease's expiry instead. Errors: as Ack.
  virtual Status Nack(const Lease& lease, TimePoint next_attempt_at, std::string_view error) = 0;

  // Removes the entry and writes a dead letter; the delivery becomes dead (audit "dead-lettered").
  // Errors: as Ack.
  virtual Status DeadLetter(const Lease& lease, std::string_view reason) = 0;

  // Every dead delivery of message `id` goes back to queued, due now; its dead letters are removed
  // (audit "replayed" by `actor`). Errors: kNotFound (no dead letter for id), kFailedPrecondition
  // (payload already purged), kUnavailable.
  virtual Status Replay(std::string_view id, std::string_view actor) = 0;

  // Reads (not audited here: the caller audits auditor queries through AuditLog::Append).
  virtual StatusOr<MessageRecord> Get(std::string_view id) = 0;
  // kNotFound also when the payload was purged by retention.
  virtual StatusOr<std::string> Payload(std::string_view id) = 0;
  // Answers recorded so far (empty when none); kNotFound when the message does not exist. Order:
  // the deliveries' own answers (Ack; one per destination, by destination), then the returns
  // (RecordReturn) in the order recorded — whatever the order the calls happened in. The
  // message's visible decision is the last answer's.
  virtual StatusOr<std::vector<StoredAnswer>> Answers(std::string_view id) = 0;
  virtual StatusOr<MessagePage> List(std::string_view practice_nihii, const MessageFilter& filter,
                                     const PageRequest& page) = 0;
  virtual StatusOr<DeadLetterPage> DeadLetters(const PageRequest& page) = 0;
  virtual StatusOr<QueueStats> Stats(std::string_view destination) = 0;
  // Whether `practice_nihii` already used `idempotency_key` (a Commit with it would be a
  // kDuplicate or a kConflict, never a new message): admission lets such a retry through when it
  // refuses new work; the Commit still decides. Errors: kUnavailable.
  virtual StatusOr<bool> IdempotencyKeyUsed(std::string_view practice_nihii,
                                            std::string_view idempotency_key) = 0;

  // The member registry (DESIGN.md "Life of a message" 3): the insurer that last accepted a
  // message for this patient pseudonym, learned by Ack of an "accepted" answer in the same batch;
  // nullopt when unknown. The routing falls back to it when a message names no mutuality.
  // Errors: kUnavailable.
  virtual StatusOr<std::optional<std::string>> MemberInsurer(
      std::string_view patient_pseudonym) = 0;

  // Records an insurer's asynchronous return durably in one synced batch with its sealed audit
  // event (kind "return-received", actor "insurer:<destination>", insurer = destination, payload
  // digest = SHA-256 of the document, outcome codes = decision then codes). It is appended to
  // message_id's Answers() when that message exists, was sent to `destination` and (when
  // practice_nihii is set) belongs to that practice; otherwise it is kept as an orphan
  // (OrphanReturns; the event has no message id and outcome codes "orphan", the reason, then the
  // decision and codes). The document is encrypted at rest; the message's state does not change.
  // Idempotent on (destination, mailbox_key), across restarts and within one commit group: a
  // second call writes nothing and returns kDuplicate — this is what makes "crash between get and
  // confirm" safe (the poller confirms after kRecorded or kDuplicate).
  // Disk reserve: refused (kUnavailable) while free space is below the reserve, like new work: the
  // insurer keeps the item in its mailbox until confirmed, so the poller simply does not confirm
  // and tries again later. A purged payload does not prevent recording a return; retention
  // (PurgeDelivered) keeps returns, as it keeps answers.
  // Errors: kInvalid (empty destination or mailbox key, a NUL byte in them or in message_id),
  // kUnavailable (nothing written).
  virtual StatusOr<ReturnOutcome> RecordReturn(NewReturn r) = 0;

  // The orphan returns, oldest recorded first, for ops (not audited here). Errors: kMalformed (a
  // cursor from another listing), kUnavailable.
  virtual StatusOr<OrphanReturnPage> OrphanReturns(const PageRequest& page) = 0;

  // Deletes the payloads of messages answered or dead for longer than the configured retention
  // (records, answers and returns stay). Errors: kUnavailable.
  virtual StatusOr<PurgeResult> PurgeDelivered(TimePoint now) = 0;
};

struct AuditPage {
  std::vector<AuditEvent> events;  // ascending time, then sequence (sealed events, with hash)
  std::string next_cursor;         // "" on the last page
};

class AuditLog {
 public:
  AuditLog() = default;
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;
  virtual ~AuditLog() = default;

  // Seals `event` (sequence, prev_hash, hash) and writes it durably, through the same commit stage
  // as the queue's transitions. time_ms 0 is replaced by the store's clock. Returns the sealed
  // event. Errors: kInvalid (no kind), kUnavailable.
  virtual StatusOr<AuditEvent> Append(AuditEvent event) = 0;

  // Auditors' query (AuditQuery of audit.h: every set criterion holds, time bounds inclusive) over
  // the indexes. Errors: kMalformed (a cursor from another query), kUnavailable.
  virtual StatusOr<AuditPage> Query(const AuditQuery& query, const PageRequest& page) = 0;

  // The last sealed event (sequence 0 for an empty log).
  virtual AuditHead Head() = 0;

  // Streams every stored event (sequence order) then every checkpoint into an AuditChainVerifier.
  virtual StatusOr<AuditVerifyReport> Verify() = 0;

  // Deletes the events older than `cutoff` (a prefix of the log; the newest event is always kept)
  // while keeping the chain verifiable: a signed checkpoint at the last purged sequence anchors the
  // first kept event (AuditChainVerifier::StartAtCheckpoint). Errors: kFailedPrecondition (no
  // checkpoint identity to sign the anchor), kUnavailable.
  virtual StatusOr<PurgeResult> PurgeAudit(TimePoint cutoff) = 0;
};

}  // namespace psl::store

#endif  // PSL_STORE_STORE_H_
