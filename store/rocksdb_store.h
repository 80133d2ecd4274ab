// RocksDbStore: the durable DurableQueue + AuditLog on RocksDB, one column family per concern.
//
// Every write goes through one commit stage (group commit, LevelDB's writers_ pattern): callers
// queue an operation; the first waiting caller becomes leader, takes every queued operation, runs
// them in order against a WriteBatchWithIndex (so later operations of a group see earlier ones:
// idempotency and leases are decided inside the group), seals their audit events, checks the disk
// reserve, writes the batch once and wakes each caller with its own result. The batch is synced
// unless every operation that succeeded in it is a LeaseNext or a Nack (store.h: why those may
// be lost in a power cut) and it holds no signed checkpoint; an unsynced batch still goes through
// the WAL in order, so the next synced one makes it durable too. On a write error every
// operation of the group gets kUnavailable and the audit head is rolled back.
//
// Audit reads (Query, Verify, ScanAudit, Head) first sync the WAL when an unsynced batch was
// written since the last sync, so nothing shown to an auditor can be taken back by a power cut
// (which would let a later event reuse its sequence: a fork to whoever saw the lost one).
//
// Stats(destination) reads in-memory counters (O(log destinations)): built by one scan of the
// queue at Open (a record read per queued entry) and updated by the leader after each written
// batch. Only Commit, Ack, DeadLetter and Replay change them, always in synced batches, so they
// describe synced state. ScanStats gives the same answer by a full scan.
//
// Thread-safety: all public methods are thread-safe. Ownership: the store owns the DB; the options'
// clock and checkpoint identity are borrowed and must outlive the store.
#ifndef PSL_STORE_ROCKSDB_STORE_H_
#define PSL_STORE_ROCKSDB_STORE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "store/audit.h"
#include "store/crypto.h"
#include "store/store.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
class Env;
class FileSystem;
}  // namespace rocksdb

namespace psl::store {

struct RocksDbStoreOptions {
  std::filesystem::path path;  // the DB directory; created when missing (unless read_only)

  // The payload key: 32 raw bytes in `payload_key`, or a file of 32 raw bytes / 64 hex digits in
  // `payload_key_file` (used when payload_key is empty). Required.
  std::string payload_key;
  std::filesystem::path payload_key_file;

  // The file system RocksDB writes through (fault-injection tests wrap the default one); null =
  // rocksdb::FileSystem::Default(). Wrapped with rocksdb::NewCompositeEnv.
  std::shared_ptr<rocksdb::FileSystem> file_system;

  // Source of "now" for accepted/answered times and audit events; null = a SystemClock the store
  // owns. Borrowed.
  const Clock* clock = nullptr;

  // Writes are synced (WriteOptions::sync) as store.h describes (LeaseNext and Nack alone are
  // not). false syncs nothing: only fault-harness controls switch this off.
  bool sync = true;

  // New work (Commit, Append, Replay) is refused with kUnavailable while the free space of the DB
  // directory is below this many bytes. Default 256 MiB. Queue transitions and purges still run
  // (they are small and free space). Keep it at 64 MiB or more outside tests: RocksDB's own
  // writes between two checks (WAL preallocation, a memtable flush, the MANIFEST) must fit in it.
  std::uint64_t disk_reserve_bytes = 256ull << 20;
  // Free bytes of the file system holding `path`; null = statvfs. Tests simulate a full disk.
  std::function<StatusOr<std::uint64_t>(const std::filesystem::path&)> free_space_probe;

  // Payloads of messages answered or dead for longer than this are deleted by PurgeDelivered.
  // Default 30 days.
  std::chrono::milliseconds delivered_retention = std::chrono::hours(24 * 30);

  // When set, a signed checkpoint of the audit head is written every `checkpoint_every_events`
  // events (in the batch that seals the event reaching the interval). Borrowed.
  const SigningIdentity* checkpoint_identity = nullptr;
  std::uint64_t checkpoint_every_events = 1000;

  // Upper bound of operations per group commit.
  std::size_t max_group_operations = 1024;
  // Called by the leader after each synced batch with the number of operations it held (the
  // gateway's commit batch-size histogram). Must be cheap and must not call the store.
  std::function<void(std::size_t operations)> on_group_written;

  // Open without writing (tools on a STOPPED store; next to a running gateway use
  // AuditStoreReader, a RocksDB secondary): every write returns kFailedPrecondition. The view is
  // the state at Open.
  bool read_only = false;
};

// Counters of the commit stage (benchmarks show the group-commit gain with them).
struct CommitStageStats {
  std::uint64_t groups_written = 0;  // batches written, synced or not
  std::uint64_t groups_synced = 0;   // of those, written with sync (one fsync each)
  std::uint64_t wal_syncs = 0;       // WAL syncs by audit reads (SyncWritten), one fsync each
  std::uint64_t operations = 0;      // operations in those groups (refused or not)
  std::uint64_t groups_failed = 0;   // batches refused or failed (kUnavailable)
};

class RocksDbStore final : public DurableQueue, public AuditLog {
 public:
  // Opens (creating when needed) the store. Errors: kFailedPrecondition (no or malformed key, wrong
  // key for this store — checked against a key-check record —, unknown format version, unreadable
  // DB), kUnavailable (I/O error opening).
  static StatusOr<std::unique_ptr<RocksDbStore>> Open(RocksDbStoreOptions options);

  ~RocksDbStore() override;  // waits for nothing: callers must have returned (no calls in flight)
  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;
  RocksDbStore(RocksDbStore&&) = delete;
  RocksDbStore& operator=(RocksDbStore&&) = delete;

  // DurableQueue.
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

  // AuditLog.
  StatusOr<AuditEvent> Append(AuditEvent event) override;
  StatusOr<AuditPage> Query(const AuditQuery& query, const PageRequest& page) override;
  AuditHead Head() override;
  StatusOr<AuditVerifyReport> Verify() override;
  StatusOr<PurgeResult> PurgeAudit(TimePoint cutoff) override;

  // Raw stored audit rows for export and external verification: `fn(stored key sequence, encoded
  // event)` in sequence order, then `checkpoint_fn(encoded checkpoint)` in sequence order. A false
  // return stops the scan.
  Status ScanAudit(const std::function<bool(std::uint64_t, std::string_view)>& fn,
                   const std::function<bool(std::string_view)>& checkpoint_fn);

  CommitStageStats commit_stats();

  // What RocksDB itself holds in memory, summed over the column families (its own estimates):
  // the part of the gateway's resident size that grows with the data (table readers: index and
  // Bloom filter blocks of the SST files) and the bounded parts (memtables, block caches).
  struct MemoryUsage {
    std::uint64_t memtables = 0;      // rocksdb.cur-size-all-mem-tables
    std::uint64_t table_readers = 0;  // rocksdb.estimate-table-readers-mem
    std::uint64_t block_cache = 0;    // rocksdb.block-cache-usage
  };
  MemoryUsage memory_usage();

  // Stats(destination) computed by a full scan of the queue and the records (O(queue depth)):
  // the reference the in-memory counters behind Stats are tested against; diagnostics only.
  StatusOr<QueueStats> ScanStats(std::string_view destination);

  // kUnavailable while the last write failed and RocksDB has not resumed (for readiness). RocksDB
  // 7.8 does not resume after a failed WAL sync: the store then refuses every write until it is
  // reopened (a restart), which is also the only safe answer to a failed fsync on Linux, whose
  // page cache may have dropped the unsynced pages.
  Status WriteHealth();
  // Callers queued in the commit stage right now, the leader's group included (tests use it to
  // line callers up in one group).
  std::size_t pending_writers();

  // The encoded checkpoint anchoring the first kept event after PurgeAudit ("" when nothing was
  // purged): pass it to AuditChainVerifier::StartAtCheckpoint before the events.
  Status AuditAnchor(std::string* encoded_checkpoint);

  // Implementation detail (rocksdb_store.cc): one queued write and the leader's group context.
  struct Writer;
  class GroupContext;
  // One queue entry added (+1) or removed (-1) by an operation, applied to the counters behind
  // Stats only once the batch holding it is synced.
  struct QueueDelta {
    std::string destination;
    std::int64_t accepted_ms = 0;
    int change = 0;
  };

 private:
  RocksDbStore() = default;

  // Queues `op` and returns once the group holding it is written (or refused).
  // kUnsynced: `op` may return before its batch is durable (LeaseNext, Nack only).
  enum class Durability { kSynced, kUnsynced };
  Status Submit(bool consumes_space, std::function<Status(GroupContext&)> op,
                Durability durability = Durability::kSynced);
  // Runs the group's operations and writes their batch; *wrote is false when there was nothing
  // to write, *synced whether the write was synced. A non-OK status has already been given to
  // every member.
  Status WriteGroup(std::vector<Writer*>& group, bool* wrote, bool* synced);
  // Syncs the WAL when a batch was written unsynced since the last sync. kUnavailable when the
  // sync fails (the store then refuses writes, as after any failed write).
  Status SyncWritten();
  // Requires queue_stats_mu_.
  void ApplyQueueDeltaLocked(const QueueDelta& delta);
  // Builds the Stats counters from the queue (Open).
  Status LoadQueueCounters();

  RocksDbStoreOptions options_;
  std::unique_ptr<Clock> owned_clock_;
  const Clock* clock_ = nullptr;
  std::unique_ptr<PayloadCipher> cipher_;
  std::unique_ptr<rocksdb::Env> env_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::deque<Writer*> writers_;
  AuditChain chain_{AuditHead{}};  // only the leader touches it, outside mu_
  AuditHead head_;                 // head of the written batches
  AuditHead durable_head_;         // head of the batches known synced (Head())
  bool unsynced_writes_ = false;   // a batch was written without sync since the last sync
  std::uint64_t last_checkpoint_sequence_ = 0;
  std::atomic<bool> needs_resume_{false};  // written by the leader only
  CommitStageStats stats_;

  // Stats per destination without scanning (the /metrics scrape): built by one scan at Open and
  // updated by the leader after each synced batch, so they always describe synced state.
  struct DestinationCounters {
    std::uint64_t depth = 0;
    std::map<std::int64_t, std::uint64_t> accepted;  // accepted ms -> entries (oldest first)
  };
  std::mutex queue_stats_mu_;  // guards queue_stats_ (not held with mu_)
  std::map<std::string, DestinationCounters, std::less<>> queue_stats_;

  // Where LeaseNext seeks in a destination's queue range: no entry of the destination sorts
  // below its floor. Leased and acknowledged entries leave tombstones at the front of the range
  // (keys sort by due time), and a seek from the range's start steps over every one of them
  // until a flush and compaction remove them: at sustained load that scan was an eighth of the
  // gateway's CPU. Lowered by every queue Put (in the commit stage, before the batch is
  // written), raised by LeaseNext to the first entry it finds, forgotten when a batch fails
  // (its deletes did not happen). Absent = seek from the range's start. In memory only.
  std::string QueueSeekKey(std::string_view destination);
  void LowerQueueFloor(std::string_view queue_key);
  void RaiseQueueFloor(std::string_view destination, std::string_view queue_key);
  void ForgetQueueFloors();
  std::mutex floors_mu_;  // guards queue_floors_ (leaf lock)
  std::map<std::string, std::string, std::less<>> queue_floors_;
};

}  // namespace psl::store

#endif  // PSL_STORE_ROCKSDB_STORE_H_
