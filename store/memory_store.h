// MemoryStore: an in-memory DurableQueue + AuditLog for gateway unit tests. Behaves like
// RocksDbStore (idempotency, leases, nack, dead letters, replay, audit chain) but keeps nothing
// across restarts, encrypts nothing, has no checkpoints (PurgeAudit is kFailedPrecondition) and
// uses its own opaque page cursors. Tests can make writes fail (SetUnavailable) to exercise the
// 503 path. Thread-safe (one mutex); the clock is borrowed and must outlive the store.
#ifndef PSL_STORE_MEMORY_STORE_H_
#define PSL_STORE_MEMORY_STORE_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "store/audit.h"
#include "store/store.h"

namespace psl::store {

class MemoryStore final : public DurableQueue, public AuditLog {
 public:
  explicit MemoryStore(const Clock* clock,
                       std::chrono::milliseconds delivered_retention = std::chrono::hours(24 * 30));

  // While true, every write returns kUnavailable and changes nothing (a full disk, a failed sync).
  void SetUnavailable(bool unavailable);

  StatusOr<CommitResult> Commit(NewMessage message) override;
  StatusOr<std::optional<Lease>> LeaseNext(std::string_view destination, TimePoint now,
                                           std::chrono::milliseconds lease_for) override;
  Status Ack(const Lease& lease, NewAnswer answer) override;
  Status Nack(const Lease& lease, TimePoint next_attempt_at, std::string_view error) override;
  Status DeadLetter(const Lease& lease, std::string_view reason) override;
  Status Replay(std::string_view id, std::string_view actor) override;
  StatusOr<MessageRecord> Get(std::string_view id) override;
  StatusOr<std::string> Payload(std::string_view id) override;
  StatusOr<std::vector<StoredAnswer>> Answers(std::string_view id) override;
  StatusOr<MessagePage> List(std::string_view practice_nihii, const MessageFilter& filter,
                             const PageRequest& page) override;
  StatusOr<DeadLetterPage> DeadLetters(const PageRequest& page) override;
  StatusOr<QueueStats> Stats(std::string_view destination) override;
  StatusOr<bool> IdempotencyKeyUsed(std::string_view practice_nihii,
                                    std::string_view idempotency_key) override;
  StatusOr<std::optional<std::string>> MemberInsurer(std::string_view patient_pseudonym) override;
  StatusOr<PurgeResult> PurgeDelivered(TimePoint now) override;
  StatusOr<ReturnOutcome> RecordReturn(NewReturn r) override;
  StatusOr<OrphanReturnPage> OrphanReturns(const PageRequest& page) override;

  StatusOr<AuditEvent> Append(AuditEvent event) override;
  StatusOr<AuditPage> Query(const AuditQuery& query, const PageRequest& page) override;
  AuditHead Head() override;
  StatusOr<AuditVerifyReport> Verify() override;
  StatusOr<PurgeResult> PurgeAudit(TimePoint cutoff) override;

 private:
  using QueueKey = std::tuple<std::string, std::int64_t, std::string>;  // destination, due, id

  // Requires mu_. Seals and stores an audit event.
  AuditEvent SealLocked(AuditEvent event);
  AuditEvent EventFor(const MessageRecord& record, std::string kind, std::string insurer,
                      std::vector<std::string> codes, std::string actor);
  Status FindLeaseLocked(const Lease& lease, MessageRecord** record, Delivery** delivery);

  const Clock* clock_;
  std::chrono::milliseconds delivered_retention_;
  std::mutex mu_;
  bool unavailable_ = false;
  std::map<std::string, MessageRecord, std::less<>> messages_;
  std::map<std::string, std::string, std::less<>> payloads_;
  std::set<QueueKey> queue_;
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>>
      idempotency_;  // (practice, key) -> (id, body digest)
  std::map<std::pair<std::string, std::string>, StoredAnswer> answers_;  // (id, destination)
  std::map<std::string, std::string> members_;  // patient pseudonym -> insurer (member registry)
  std::map<std::pair<std::string, std::string>, store::DeadLetter> dead_letters_;
  // (linked message id or "" for an orphan, audit sequence of its event) -> the return.
  std::map<std::pair<std::string, std::uint64_t>, OrphanReturn> returns_;
  std::set<std::pair<std::string, std::string>> return_keys_;  // (destination, mailbox key)
  std::map<std::uint64_t, std::string> audit_;                 // sequence -> encoded event
  AuditChain chain_{AuditHead{}};
};

}  // namespace psl::store

#endif  // PSL_STORE_MEMORY_STORE_H_
