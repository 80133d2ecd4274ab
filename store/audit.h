// The audit trail's event model and hash chain (DESIGN.md "Audit").
//
// Every state change of a message is an AuditEvent written in the same batch as the change (synced
// for all but LeaseNext and Nack, whose lost tail a power cut may drop whole: store.h).
// Events form a hash chain: each carries the hash of the previous one, so removing, inserting,
// altering or reordering an event breaks the chain at a point `VerifyAuditChain` names. The patient
// appears only as a keyed pseudonym (HMAC-SHA256 of the NISS under the pseudonym key).
//
// AuditChain is not thread-safe: the store's commit stage owns it and seals events in write order.
#ifndef PSL_STORE_AUDIT_H_
#define PSL_STORE_AUDIT_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/crypto_handles.h"
#include "base/status.h"

namespace psl::store {

struct AuditEvent {
  // Filled by the caller.
  std::string kind;            // accepted, attempt, retry, answered, dead-lettered, replayed,
                               // denied, audit-query, checkpoint ...
  std::string message_id;      // "" for events about no message (denials, queries)
  std::string practice_nihii;  // the practice concerned (an institution or provider NIHII)
  std::string flow_kind;       // enrolment | claim | amu
  std::string insurer;         // destination code, e.g. "100"
  std::vector<std::string>
      outcome_codes;              // HTTP status, MyCareNet codes, reasons (no patient data)
  std::string payload_sha256;     // hex digest of the signed payload, when there is one
  std::string actor;              // "practice:<nihii>", "ops:<name>", "auditor:<name>", "gateway"
  std::string patient_pseudonym;  // hex HMAC-SHA256(pseudonym key, NISS); "" when no patient
  // Unix epoch milliseconds. Stamped when the event is prepared (for "accepted": in the caller,
  // before its commit waits in the group stage), so consecutive sequences may be a few
  // milliseconds out of time order; queries and retention treat time as approximate order.
  std::int64_t time_ms = 0;
  // Filled by AuditChain::Seal.
  std::uint64_t sequence = 0;  // 1, 2, 3 ... without gaps
  std::string prev_hash;       // hex; 64 zeros for the first event
  std::string hash;            // hex SHA-256 over prev_hash and the canonical encoding
};

// Canonical encoding (deterministic JSON, sorted keys) of every field but `hash`; the hash covers
// exactly these bytes. Decode refuses unknown or missing fields (kMalformed).
//
// The canonical form is one JSON object, keys sorted, no whitespace, integers as JSON numbers
// (`sequence` unsigned, `time_ms` signed), `outcome_codes` an array of strings, every other field a
// string; output is pure ASCII (non-ASCII as \uXXXX; invalid UTF-8 becomes U+FFFD, so callers
// should pass UTF-8). Changing this encoding changes every hash: audit_test pins a golden hash.
std::string EncodeAuditEvent(const AuditEvent& event);
// The value the store writes in its audit column family: the canonical form above plus the `hash`
// field (keys still sorted). Sealed events only.
std::string EncodeStoredAuditEvent(const AuditEvent& event);
// Accepts both forms: with `hash` (stored form) or without (hash left ""); `hash` is the only
// optional field. Strict: the bytes must be exactly the canonical encoding of the decoded event
// (which also refuses whitespace, duplicate keys, reordered keys, floats, raw non-ASCII); a wrong
// type, a missing or unknown field, a `prev_hash`/`hash` that is not 64 lowercase hex digits
// ("" allowed for an unsealed prev_hash) → kMalformed. Messages name the field, never its value.
StatusOr<AuditEvent> DecodeAuditEvent(std::string_view bytes);

// hex(SHA-256(prev_hash || canonical encoding without hash)).
std::string ComputeAuditHash(const AuditEvent& event);

// The all-zero hash: prev_hash of event 1 and hash of an empty log's head.
inline constexpr std::string_view kZeroAuditHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// hex(HMAC-SHA256(key, data)), lowercase; the primitive under PatientPseudonym (any key length,
// as HMAC allows). Returns "" only if OpenSSL fails.
std::string HmacSha256Hex(std::string_view key, std::string_view data);

// The smallest pseudonym key accepted: 256 bits, the HMAC-SHA256 output size (RFC 2104 §3).
inline constexpr std::size_t kMinPseudonymKeyBytes = 32;

// hex(HMAC-SHA256(key, niss)). The key comes from a file (config); 32 bytes or more.
// A shorter key returns "" (no pseudonym rather than a guessable one): check the key once at
// start-up with ReadPseudonymKeyFile. Separators (' ', '.', '-', '/') are removed from `niss`
// first, so "85.07.30-033.28" and "85073003328" have one pseudonym; the NISS is not otherwise
// validated here (codecs/ does that).
std::string PatientPseudonym(std::string_view pseudonym_key, std::string_view niss);

// The whole file, byte for byte, as the pseudonym key (e.g. `head -c 32 /dev/urandom > key`).
// kFailedPrecondition when unreadable or shorter than kMinPseudonymKeyBytes (naming the file).
StatusOr<std::string> ReadPseudonymKeyFile(const std::string& path);

struct AuditHead {
  std::uint64_t sequence = 0;  // last sealed sequence; 0 for an empty log
  std::string hash;            // its hash; 64 zeros for an empty log
};

// An event encoded ahead of sealing, so that the serial commit stage only hashes and
// concatenates (the JSON encoding runs in the caller's thread). The canonical encoding is
// `head + prev_hash + middle + sequence + tail`, and the stored form inserts `,"hash":"<hash>"`
// at `hash_at` of `head` (keys stay sorted: "hash" follows "flow_kind"). Produced by
// PrepareAuditEvent only; AuditChain::SealPrepared gives exactly the bytes and hash that
// Seal + EncodeStoredAuditEvent would.
struct PreparedAuditEvent {
  AuditEvent event;  // sequence, prev_hash and hash still unset
  std::string head;
  std::size_t hash_at = 0;
  std::string middle;
  std::string tail;
};
// `event.time_ms` must be set (the stage cannot change it without re-encoding).
PreparedAuditEvent PrepareAuditEvent(AuditEvent event);

class AuditChain {
 public:
  explicit AuditChain(AuditHead head);
  // Assigns sequence and prev_hash, computes hash, advances the head; returns the sealed event.
  AuditEvent Seal(AuditEvent event);
  // The same for a prepared event: fills `sealed` (with sequence, prev_hash and hash) and sets
  // *stored to its EncodeStoredAuditEvent bytes.
  void SealPrepared(const PreparedAuditEvent& prepared, AuditEvent* sealed, std::string* stored);
  // Restores the head to `head` (after a batch that failed to commit).
  void Reset(AuditHead head) { head_ = std::move(head); }
  const AuditHead& head() const { return head_; }

 private:
  AuditHead head_;
};

// A signed checkpoint of the chain head, written every `interval` events or time by the store.
struct AuditCheckpoint {
  std::uint64_t sequence = 0;
  std::string head_hash;
  std::int64_t time_ms = 0;
  std::string
      signature_b64;  // RSA-SHA256 (or ECDSA) over "psl-audit-checkpoint\n<seq>\n<hash>\n<time>"
  std::string certificate_pem;
};
// Signs with the identity's key (SHA-256; RSA PKCS#1 v1.5 or ECDSA, whichever the key is) and
// embeds the identity's certificate followed by its chain as PEM. kInvalid for a malformed head
// hash; kInternal when OpenSSL fails (its error queue in the message). Thread-safe.
StatusOr<AuditCheckpoint> SignCheckpoint(const AuditHead& head, std::int64_t time_ms,
                                         const SigningIdentity& identity);
// Checks the signature against the first certificate of `certificate_pem` only: it proves the
// holder of that certificate's key signed, not that the holder is trusted (use the overload).
// kUnauthenticated for a bad signature, kMalformed for an unreadable certificate or signature.
Status VerifyCheckpointSignature(const AuditCheckpoint& checkpoint);  // against its certificate
// As above, then also checks that the embedded certificate chains to an anchor of `trust`
// (further certificates of `certificate_pem` are untrusted intermediates) at the checkpoint's own
// time — a checkpoint stays valid after its certificate expires. The check is base/x509.h's
// VerifyCertificateChain (no partial chains: `trust` holds CA anchors, as everywhere else).
// `trust` is borrowed; kUnauthenticated when untrusted, naming OpenSSL's reason.
Status VerifyCheckpointSignature(const AuditCheckpoint& checkpoint, X509_STORE* trust);
// Canonical JSON (keys certificate_pem, head_hash, sequence, signature_b64, time_ms); decode is as
// strict as DecodeAuditEvent.
std::string EncodeCheckpoint(const AuditCheckpoint& checkpoint);
StatusOr<AuditCheckpoint> DecodeCheckpoint(std::string_view bytes);

struct AuditVerifyReport {
  bool ok = true;
  std::uint64_t events = 0;                         // events read
  std::uint64_t checkpoints = 0;                    // checkpoints whose signature and hash matched
  std::optional<std::uint64_t> first_bad_sequence;  // where the chain first breaks
  std::string problem;  // what is wrong there: altered, removed, inserted, reordered
};

// Streaming verifier: feed events in stored key order (sequence order), then checkpoints, then
// Finish(). Names the first bad event and the kind of tampering.
//
// Events are EncodeStoredAuditEvent values with the sequence of their store key. What is named:
//   altered   — unreadable, its hash does not match its content, or its key ≠ its sequence field;
//   removed   — the sequence jumps (event n missing) and stays increasing afterwards;
//   inserted  — a second event claims an already-seen sequence, or a self-consistent event does
//               not chain to its predecessor (prev_hash mismatch with a valid own hash);
//   reordered — the sequence jumps and then goes back (two events swapped or moved);
//   truncated — a checkpoint names a sequence beyond the last event;
//   rewritten — a checkpoint's signed head hash differs from the event at its sequence (the chain
//               was rebuilt consistently; first_bad_sequence is one past the last matching
//               checkpoint, the earliest event that may be forged);
//   forged checkpoint — unreadable, bad signature, or (with a trust store) untrusted signer.
// The earliest problem wins; checkpoints are checked at Finish in sequence order, whenever fed.
// Limits (inherent to a hash chain): events appended after the last checkpoint, or a tail cut
// after it, are detectable only by the next checkpoint — the store checkpoints at an interval.
//
// Retention: when the store purges old events it must keep the signed checkpoint whose sequence is
// the last purged event (purge only up to a checkpoint). Verification then begins with
// StartAtCheckpoint(that checkpoint) (or StartAt with its head after checking it), and the first
// kept event must be anchor.sequence + 1 with prev_hash == anchor.hash.
//
// Memory: about 100 bytes per event (hashes kept for the checkpoint checks). Not thread-safe.
class AuditChainVerifier {
 public:
  AuditChainVerifier() = default;
  // Checkpoint signers must chain to `trust` (see VerifyCheckpointSignature); a reference is taken.
  explicit AuditChainVerifier(X509_STORE* trust);

  // Before the first AddEvent: the log starts after `anchor` (its older events were purged).
  void StartAt(AuditHead anchor);
  // Decodes and verifies `encoded_anchor` (signature, trust when given) and starts at its head;
  // a bad anchor is reported by Finish as a forged checkpoint. The anchor also counts as checked.
  void StartAtCheckpoint(std::string_view encoded_anchor);

  void AddEvent(std::uint64_t stored_key_sequence, std::string_view encoded_event);
  void AddCheckpoint(std::string_view encoded_checkpoint);
  AuditVerifyReport Finish();

 private:
  struct Gap {  // a jump in sequence, named once the next event shows removal or reordering
    std::uint64_t expected;
    std::uint64_t seen;
  };
  // Records a problem unless an earlier one (lower sequence) is already known; nullopt ranks last.
  void Fail(std::optional<std::uint64_t> sequence, std::string problem);
  void ResolveGap(std::optional<std::uint64_t> next_sequence);
  void CheckCheckpoints();
  const std::string* HashAt(std::uint64_t sequence) const;

  X509StorePtr trust_;
  AuditVerifyReport report_;
  AuditHead expected_{0, std::string(kZeroAuditHash)};
  std::uint64_t base_ = 0;     // sequence of the anchor (0 without one)
  std::optional<Gap> gap_;     // pending after a jump
  bool chain_broken_ = false;  // stop following the chain after its first break
  std::vector<std::pair<std::uint64_t, std::string>> hashes_;  // sequence -> hash, for checkpoints
  std::vector<std::string> pending_checkpoints_;
};

// Key of an event in the audit column family: the sequence as 8 bytes big-endian, so key order is
// sequence order. ParseAuditEventKey: kMalformed unless exactly 8 bytes.
std::string AuditEventKey(std::uint64_t sequence);
StatusOr<std::uint64_t> ParseAuditEventKey(std::string_view key);

// Secondary indexes for auditor queries, all in one column family (values empty):
//   key = tag (1 byte) | value | 0x00 | time_ms (8 bytes big-endian, sign bit flipped, so negative
//         times sort first) | sequence (8 bytes big-endian)
// tags: 'p' practice NIHII, 'n' patient pseudonym, 'k' event kind, 't' time (value "").
// All entries for one value share AuditIndexPrefix; a time range [from, to] of one value is the
// scan [AuditIndexKey(i, v, from, 0), AuditIndexKey(i, v, to, UINT64_MAX)] inclusive, i.e. the
// half-open [AuditIndexLowerBound(i, v, from), AuditIndexUpperBound(i, v, to)).
// Values may not contain 0x00 (NIHII, hex pseudonyms and kinds never do).
enum class AuditIndex : char {
  kPractice = 'p',
  kPatient = 'n',
  kKind = 'k',
  kTime = 't',
};
std::string AuditIndexKey(AuditIndex index, std::string_view value, std::int64_t time_ms,
                          std::uint64_t sequence);
std::string AuditIndexPrefix(AuditIndex index, std::string_view value);
std::string AuditIndexLowerBound(AuditIndex index, std::string_view value, std::int64_t from_ms);
// Exclusive upper bound covering every entry with time_ms <= to_ms (to_ms = INT64_MAX: the prefix
// successor).
std::string AuditIndexUpperBound(AuditIndex index, std::string_view value, std::int64_t to_ms);

struct AuditIndexEntry {
  AuditIndex index = AuditIndex::kTime;
  std::string value;
  std::int64_t time_ms = 0;
  std::uint64_t sequence = 0;
};
// kMalformed for an unknown tag, a missing separator or a wrong length.
StatusOr<AuditIndexEntry> ParseAuditIndexKey(std::string_view key);

// The index keys the store writes with a sealed event (same batch): practice and patient when not
// empty, kind, and time.
std::vector<std::string> AuditIndexKeysFor(const AuditEvent& event);

// An auditor's query: every set criterion must hold (time bounds inclusive).
struct AuditQuery {
  std::optional<std::string> practice_nihii;
  std::optional<std::string> patient_pseudonym;
  std::optional<std::string> kind;
  std::optional<std::int64_t> from_ms;
  std::optional<std::int64_t> to_ms;
};
bool AuditQueryMatches(const AuditQuery& query, const AuditEvent& event);

// The index range to scan for `query`: the most selective criterion (patient, practice, kind, else
// time) and the time bounds; the sequences found must still be filtered with AuditQueryMatches.
struct AuditIndexScan {
  std::string lower;  // inclusive
  std::string upper;  // exclusive
};
AuditIndexScan PlanAuditIndexScan(const AuditQuery& query);

}  // namespace psl::store

#endif  // PSL_STORE_AUDIT_H_
