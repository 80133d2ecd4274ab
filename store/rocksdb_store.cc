#include "store/rocksdb_store.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <utility>

#include "base/digest.h"
#include "store/store_internal.h"

#include <nlohmann/json.hpp>

namespace psl::store {
namespace {

// Memtable size per column family; see the options in Open for why it is small.
constexpr std::size_t kWriteBufferBytes = 8 << 20;

using internal::DecodeRecord;
using internal::EncodeRecord;
using internal::EventFor;
using internal::FindDelivery;
using internal::UpdateAggregate;
using nlohmann::json;

// Column families, in handle order (index 0 is RocksDB's default, unused).
enum Cf : std::size_t {
  kDefault,
  kMessages,          // id -> record (JSON)
  kPayloads,          // id -> sealed signed payload (aad: id)
  kQueue,             // destination \0 BE64(due ms) \0 id -> ""
  kIdempotency,       // practice \0 key -> {"id", "body"}
  kAnswers,           // id \0 destination -> JSON header \0 sealed document
  kDeadLetters,       // id \0 destination -> {"reason", "time_ms"}
  kAudit,             // AuditEventKey(sequence) -> EncodeStoredAuditEvent
  kAuditIndex,        // AuditIndexKeysFor(event) -> "" (audit.h)
  kAuditCheckpoints,  // AuditEventKey(sequence) -> EncodeCheckpoint
  kMeta,              // format_version, key_check, audit_head, audit_anchor
  kPracticeIndex,     // practice \0 BE64(INT64_MAX - accepted ms) \0 id -> ""
  kMembers,           // patient pseudonym -> insurer that accepted it (member registry)
  // Returns (RecordReturn): message id \0 BE64(sequence) for a linked return, \0 BE64(sequence)
  // for an orphan (ids are never empty) -> JSON header \0 sealed document. The sequence is that of
  // the return's "return-received" audit event: store-wide recording order.
  kReturns,
  kReturnKeys,  // destination \0 mailbox key -> {"message_id", "sequence"} (idempotency)
  kCfCount,
};

constexpr const char* kCfNames[kCfCount] = {
    "default", "messages",       "payloads", "queue",       "idempotency",
    "answers", "dead_letters",   "audit",    "audit_index", "audit_checkpoints",
    "meta",    "practice_index", "members",  "returns",     "return_keys",
};

constexpr std::string_view kFormatVersion = "1";
constexpr std::string_view kKeyCheckPlaintext = "passerelle payload key check";
constexpr std::string_view kKeyCheckAad = "meta:key-check";

// Keys whose last `suffix` bytes are an increasing big-endian counter (audit sequence, time then
// sequence): the rest is the "prefix" under which the memtable remembers its last insert
// position (memtable_insert_with_hint_prefix_extractor), so appends skip the skip-list search.
class AllButSuffix final : public rocksdb::SliceTransform {
 public:
  explicit AllButSuffix(std::size_t suffix) : suffix_(suffix) {}
  const char* Name() const override { return "psl.AllButSuffix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return rocksdb::Slice(key.data(), key.size() - suffix_);
  }
  bool InDomain(const rocksdb::Slice& key) const override { return key.size() >= suffix_; }

 private:
  std::size_t suffix_;
};

std::string BigEndian64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::uint64_t ReadBigEndian64(std::string_view s) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8 && i < s.size(); ++i) {
    v = (v << 8) | static_cast<unsigned char>(s[i]);
  }
  return v;
}

std::string Join(std::initializer_list<std::string_view> parts) {
  std::string out;
  bool first = true;
  for (std::string_view p : parts) {
    if (!first) {
      out.push_back('\0');
    }
    out.append(p);
    first = false;
  }
  return out;
}

std::string QueuePrefix(std::string_view destination) {
  return Join({destination, ""});
}

// Sorts after every key of the destination's queue range (destination \0 ...).
std::string QueueRangeEnd(std::string_view destination) {
  std::string end(destination);
  end.push_back('\1');
  return end;
}

std::string QueueKey(std::string_view destination, std::int64_t due_ms, std::string_view id) {
  std::string key = QueuePrefix(destination);
  key += BigEndian64(static_cast<std::uint64_t>(std::max<std::int64_t>(due_ms, 0)));
  key.push_back('\0');
  key.append(id);
  return key;
}

std::string PracticeIndexKey(std::string_view practice, std::int64_t accepted_ms,
                             std::string_view id) {
  std::string key = Join({practice, ""});
  key += BigEndian64(static_cast<std::uint64_t>(INT64_MAX - accepted_ms));
  key.push_back('\0');
  key.append(id);
  return key;
}

bool StartsWith(const rocksdb::Slice& s, std::string_view prefix) {
  return s.size() >= prefix.size() && std::string_view(s.data(), prefix.size()) == prefix;
}

std::string_view View(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

// Converts a RocksDB error once. I/O trouble is retryable (503); anything else on a read is a bug
// or a corrupt store.
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) {
    return Status::Ok();
  }
  std::string message = std::string(what) + ": " + s.ToString();
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain() || s.IsIncomplete() ||
      s.IsAborted() || s.IsShutdownInProgress()) {
    return Status::Unavailable(std::move(message));
  }
  return Status::Internal(std::move(message));
}

std::string EncodeJson(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

StatusOr<json> DecodeJson(std::string_view bytes, std::string_view what) {
  json j = json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("a stored " + std::string(what) + " is not valid JSON");
  }
  return j;
}

std::string AnswerAad(std::string_view id, std::string_view destination) {
  return Join({id, "answer", destination});
}

// A return's document is bound to its idempotency identity (unique, known before the stage).
std::string ReturnAad(std::string_view destination, std::string_view mailbox_key) {
  return Join({"return", destination, mailbox_key});
}

std::string ReturnKey(std::string_view message_id, std::uint64_t sequence) {
  std::string key = Join({message_id, ""});
  key += BigEndian64(sequence);
  return key;
}

// Decodes a kReturns value into `answer` (message_id and the header's fields).
Status DecodeReturn(const PayloadCipher& cipher, std::string_view value, StoredAnswer* answer,
                    std::string* claimed_message_id, std::string* reason) {
  std::size_t nul = value.find('\0');
  if (nul == std::string_view::npos) {
    return Status::Internal("a stored return has no header");
  }
  StatusOr<json> header = DecodeJson(value.substr(0, nul), "return");
  if (!header.ok()) {
    return header.status();
  }
  try {
    answer->destination = header->at("destination").get<std::string>();
    answer->mailbox_key = header->at("mailbox_key").get<std::string>();
    answer->decision = header->at("decision").get<std::string>();
    answer->codes = header->at("codes").get<std::vector<std::string>>();
    answer->insurer_reference = header->at("insurer_reference").get<std::string>();
    answer->received_ms = header->at("received_ms").get<std::int64_t>();
    *claimed_message_id = header->at("message_id").get<std::string>();
    *reason = header->value("orphan", "");
  } catch (const json::exception&) {
    return Status::Internal("a stored return misses a field");
  }
  StatusOr<std::string> document =
      cipher.Open(value.substr(nul + 1), ReturnAad(answer->destination, answer->mailbox_key));
  if (!document.ok()) {
    return Status::Internal("a stored return does not decrypt");
  }
  answer->document = std::move(document).value();
  return Status::Ok();
}

StatusOr<std::uint64_t> StatvfsFreeBytes(const std::filesystem::path& path) {
  struct statvfs info {};
  if (::statvfs(path.c_str(), &info) != 0) {
    return Status::Unavailable("cannot read the free space of the store's file system");
  }
  return static_cast<std::uint64_t>(info.f_bavail) * info.f_frsize;
}

std::size_t ClampLimit(std::size_t limit, std::size_t max) {
  return std::clamp<std::size_t>(limit, 1, max);
}

}  // namespace

// One caller waiting in the commit stage.
// Its own mutex and condition variable: the leader wakes each member without holding the stage's
// mutex, so woken followers do not pile up on mu_ while the next group forms.
struct RocksDbStore::Writer {
  std::function<Status(GroupContext&)> op;
  bool consumes_space = false;
  Durability durability = Durability::kSynced;
  Status status;        // written by the leader before `done`
  std::mutex mu;        // guards done and leader
  bool done = false;    // the group holding this writer was written (or refused)
  bool leader = false;  // this writer leads the next group
  std::condition_variable cv;
};

// What an operation sees while the leader builds a group: reads resolve against the batch first
// (earlier operations of the same group), then the DB.
class RocksDbStore::GroupContext {
 public:
  GroupContext(RocksDbStore* store, AuditChain* chain, std::int64_t now_ms)
      : store_(store),
        chain_(chain),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        now_ms_(now_ms) {}

  std::int64_t now_ms() const { return now_ms_; }
  const PayloadCipher& cipher() const { return *store_->cipher_; }
  rocksdb::WriteBatchWithIndex& batch() { return batch_; }

  // Operations report every queue entry they add or remove (for Stats); rolled back with them.
  void QueueAdded(std::string_view destination, std::int64_t accepted_ms) {
    deltas_.push_back({std::string(destination), accepted_ms, +1});
  }
  void QueueRemoved(std::string_view destination, std::int64_t accepted_ms) {
    deltas_.push_back({std::string(destination), accepted_ms, -1});
  }
  std::vector<QueueDelta>& deltas() { return deltas_; }

  // Sets *found; kUnavailable/kInternal on a read error.
  Status Get(Cf cf, std::string_view key, std::string* value, bool* found) {
    rocksdb::Status s = batch_.GetFromBatchAndDB(store_->db_.get(), rocksdb::ReadOptions(),
                                                 store_->handles_[cf], key, value);
    *found = s.ok();
    if (s.IsNotFound()) {
      return Status::Ok();
    }
    return FromRocks(s, "reading the store");
  }

  // `upper` (optional) bounds the DB side of the iterator; the caller still checks its range.
  std::unique_ptr<rocksdb::Iterator> NewIterator(Cf cf, const rocksdb::Slice* upper = nullptr) {
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = upper;
    return std::unique_ptr<rocksdb::Iterator>(batch_.NewIteratorWithBase(
        store_->handles_[cf], store_->db_->NewIterator(read_options, store_->handles_[cf])));
  }

  Status Put(Cf cf, std::string_view key, std::string_view value) {
    if (cf == kQueue) {
      store_->LowerQueueFloor(key);
    }
    return FromRocks(batch_.Put(store_->handles_[cf], key, value), "building a batch");
  }
  Status Delete(Cf cf, std::string_view key) {
    return FromRocks(batch_.Delete(store_->handles_[cf], key), "building a batch");
  }

  StatusOr<MessageRecord> GetRecord(std::string_view id) {
    std::string value;
    bool found = false;
    PSL_RETURN_IF_ERROR(Get(kMessages, id, &value, &found));
    if (!found) {
      return Status::NotFound("no message " + std::string(id));
    }
    return DecodeRecord(value);
  }
  Status PutRecord(const MessageRecord& record) {
    return Put(kMessages, record.id, EncodeRecord(record));
  }

  // Writes to the batch without indexing: for column families no operation of a group reads
  // (practice index, audit events and their index). Index maintenance is a large share
  // of the serial stage's CPU.
  Status PutUnindexed(Cf cf, std::string_view key, std::string_view value) {
    return FromRocks(batch_.GetWriteBatch()->Put(store_->handles_[cf], key, value),
                     "building a batch");
  }

  // Seals an event encoded by the caller (PrepareAuditEvent) and writes it with its index
  // entries: only the hash and the concatenation run in the stage.
  Status SealPrepared(const PreparedAuditEvent& prepared) {
    AuditEvent sealed;
    std::string stored;
    chain_->SealPrepared(prepared, &sealed, &stored);
    PSL_RETURN_IF_ERROR(PutUnindexed(kAudit, AuditEventKey(sealed.sequence), stored));
    for (const std::string& key : AuditIndexKeysFor(sealed)) {
      PSL_RETURN_IF_ERROR(PutUnindexed(kAuditIndex, key, ""));
    }
    return Status::Ok();
  }

  // Seals `event` and writes it with its index entries. Returns the sealed event.
  StatusOr<AuditEvent> Seal(AuditEvent event) {
    if (event.time_ms == 0) {
      event.time_ms = now_ms_;
    }
    AuditEvent sealed = chain_->Seal(std::move(event));
    PSL_RETURN_IF_ERROR(
        PutUnindexed(kAudit, AuditEventKey(sealed.sequence), EncodeStoredAuditEvent(sealed)));
    for (const std::string& key : AuditIndexKeysFor(sealed)) {
      PSL_RETURN_IF_ERROR(PutUnindexed(kAuditIndex, key, ""));
    }
    return sealed;
  }

 private:
  RocksDbStore* store_;
  AuditChain* chain_;
  rocksdb::WriteBatchWithIndex batch_;
  std::int64_t now_ms_;
  std::vector<QueueDelta> deltas_;
};

StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(RocksDbStoreOptions options) {
  std::unique_ptr<RocksDbStore> store(new RocksDbStore());
  if (options.path.empty()) {
    return Status::FailedPrecondition("the store needs a directory");
  }
  StatusOr<PayloadCipher> cipher =
      !options.payload_key.empty() ? PayloadCipher::FromKey(options.payload_key)
      : !options.payload_key_file.empty()
          ? PayloadCipher::FromKeyFile(options.payload_key_file)
          : StatusOr<PayloadCipher>(Status::FailedPrecondition("the store needs a payload key"));
  if (!cipher.ok()) {
    return cipher.status();
  }
  store->cipher_ = std::make_unique<PayloadCipher>(std::move(cipher).value());
  options.payload_key.assign(options.payload_key.size(), '\0');
  options.payload_key.clear();
  if (options.clock == nullptr) {
    store->owned_clock_ = std::make_unique<SystemClock>();
    store->clock_ = store->owned_clock_.get();
  } else {
    store->clock_ = options.clock;
  }
  if (!options.free_space_probe) {
    options.free_space_probe = StatvfsFreeBytes;
  }
  if (options.max_group_operations == 0) {
    options.max_group_operations = 1;
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = !options.read_only;
  db_options.create_missing_column_families = !options.read_only;
  if (options.file_system) {
    store->env_ = rocksdb::NewCompositeEnv(options.file_system);
    db_options.env = store->env_.get();
  }
  // Bound what RocksDB may write between two free-space checks, so the disk reserve is a real
  // guard: Debian's RocksDB aborts on ENOSPC, and by default it preallocates each WAL at 1.1 x the
  // 64 MiB write buffer and the MANIFEST at 4 MiB. With these settings a WAL preallocation, a
  // memtable flush and the MANIFEST together stay far below the 256 MiB default reserve.
  db_options.db_write_buffer_size = kWriteBufferBytes * 4;
  db_options.max_total_wal_size = kWriteBufferBytes * 8;
  db_options.manifest_preallocation_size = 1 << 20;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.write_buffer_size = kWriteBufferBytes;
  // Column families read by point lookups whose key is usually absent (a new message id, a new
  // idempotency key) get whole-key Bloom filters, in the SST files and in the memtable, so the
  // commit stage's existence checks do not walk every L0 file and the memtable's skip list.
  rocksdb::ColumnFamilyOptions lookup_options = cf_options;
  rocksdb::BlockBasedTableOptions table_options;
  table_options.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  lookup_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));
  lookup_options.memtable_whole_key_filtering = true;
  lookup_options.memtable_prefix_bloom_size_ratio = 0.02;
  // A read-only open cannot create the column families added after format version 1 (a
  // read-write Open does): a missing one of those reads as empty (null handle). Any other missing
  // column family still fails the open (a store half-made by a crash during creation).
  auto added_later = [](std::size_t cf) {
    return cf == kReturns || cf == kReturnKeys;
  };
  std::vector<std::string> existing;
  if (options.read_only &&
      !rocksdb::DB::ListColumnFamilies(db_options, options.path.string(), &existing).ok()) {
    existing.clear();  // no DB there: OpenForReadOnly below reports it
  }
  std::vector<std::size_t> opened_cfs;  // Cf of each descriptor
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (std::size_t i = 0; i < kCfCount; ++i) {
    if (added_later(i) && !existing.empty() &&
        std::find(existing.begin(), existing.end(), kCfNames[i]) == existing.end()) {
      continue;
    }
    opened_cfs.push_back(i);
    const bool lookups =
        i == kMessages || i == kIdempotency || i == kPayloads || i == kAnswers || i == kReturnKeys;
    rocksdb::ColumnFamilyOptions options_i = lookups ? lookup_options : cf_options;
    if (i == kAudit || i == kAuditCheckpoints) {
      options_i.memtable_insert_with_hint_prefix_extractor =
          std::make_shared<AllButSuffix>(8);  // BE64 sequence
    } else if (i == kAuditIndex) {
      options_i.memtable_insert_with_hint_prefix_extractor =
          std::make_shared<AllButSuffix>(16);  // BE64 time, BE64 sequence
    }
    descriptors.emplace_back(kCfNames[i], options_i);
  }
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::Status s =
      options.read_only
          ? rocksdb::DB::OpenForReadOnly(db_options, options.path.string(), descriptors, &handles,
                                         &raw)
          : rocksdb::DB::Open(db_options, options.path.string(), descriptors, &handles, &raw);
  if (s.ok()) {
    store->handles_.assign(kCfCount, nullptr);
    for (std::size_t i = 0; i < handles.size() && i < opened_cfs.size(); ++i) {
      store->handles_[opened_cfs[i]] = handles[i];
    }
  }
  if (!s.ok()) {
    if (s.IsIOError()) {
      return FromRocks(s, "opening the store");
    }
    return Status::FailedPrecondition("cannot open the store at " + options.path.string() + ": " +
                                      s.ToString());
  }
  store->db_.reset(raw);
  store->options_ = std::move(options);

  // Format version and key check: a new store gets both in one synced write; an existing one must
  // match, so a wrong key fails here rather than producing garbage later.
  auto read_meta = [&](std::string_view key, std::string* value) -> StatusOr<bool> {
    rocksdb::Status rs =
        store->db_->Get(rocksdb::ReadOptions(), store->handles_[kMeta], key, value);
    if (rs.IsNotFound()) {
      return false;
    }
    if (!rs.ok()) {
      return FromRocks(rs, "reading the store's metadata");
    }
    return true;
  };
  std::string version;
  std::string key_check;
  StatusOr<bool> has_version = read_meta("format_version", &version);
  if (!has_version.ok()) {
    return has_version.status();
  }
  StatusOr<bool> has_key_check = read_meta("key_check", &key_check);
  if (!has_key_check.ok()) {
    return has_key_check.status();
  }
  if (!*has_version) {
    if (store->options_.read_only) {
      return Status::FailedPrecondition("the store at " + store->options_.path.string() +
                                        " was never initialised");
    }
    StatusOr<std::string> check = store->cipher_->Seal(kKeyCheckPlaintext, kKeyCheckAad);
    if (!check.ok()) {
      return check.status();
    }
    rocksdb::WriteBatch batch;
    batch.Put(store->handles_[kMeta], "format_version", std::string(kFormatVersion));
    batch.Put(store->handles_[kMeta], "key_check", *check);
    rocksdb::WriteOptions write_options;
    write_options.sync = true;
    PSL_RETURN_IF_ERROR(
        FromRocks(store->db_->Write(write_options, &batch), "initialising the store"));
  } else {
    if (version != kFormatVersion) {
      return Status::FailedPrecondition("the store's format version " + version +
                                        " is not supported (expected " +
                                        std::string(kFormatVersion) + ")");
    }
    if (!*has_key_check) {
      return Status::FailedPrecondition("the store has no key-check record");
    }
    StatusOr<std::string> opened = store->cipher_->Open(key_check, kKeyCheckAad);
    if (!opened.ok() || *opened != kKeyCheckPlaintext) {
      return Status::FailedPrecondition(
          "the payload key does not match the key this store was created with");
    }
  }

  // The audit head is written in every batch that seals an event, so it always matches the log.
  std::string head_value;
  StatusOr<bool> has_head = read_meta("audit_head", &head_value);
  if (!has_head.ok()) {
    return has_head.status();
  }
  AuditHead head{0, std::string(kZeroAuditHash)};
  if (*has_head) {
    StatusOr<json> j = DecodeJson(head_value, "audit head");
    if (!j.ok()) {
      return j.status();
    }
    try {
      head.sequence = j->at("sequence").get<std::uint64_t>();
      head.hash = j->at("hash").get<std::string>();
    } catch (const json::exception&) {
      return Status::Internal("the stored audit head misses a field");
    }
  }
  store->head_ = head;
  store->durable_head_ = head;
  store->chain_.Reset(head);
  std::unique_ptr<rocksdb::Iterator> it(
      store->db_->NewIterator(rocksdb::ReadOptions(), store->handles_[kAuditCheckpoints]));
  it->SeekToLast();
  if (it->Valid()) {
    store->last_checkpoint_sequence_ = ReadBigEndian64(View(it->key()));
  }
  PSL_RETURN_IF_ERROR(store->LoadQueueCounters());
  return store;
}

Status RocksDbStore::LoadQueueCounters() {
  // One scan of the queue (and a record read per entry for its accepted time); from here on the
  // commit stage keeps the counters current.
  std::map<std::string, DestinationCounters, std::less<>> counters;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kQueue]));
  std::string record_value;
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    std::string_view key = View(it->key());
    const std::size_t nul = key.find('\0');
    if (nul == std::string_view::npos || key.size() < nul + 10) {
      return Status::Internal("a queue key is malformed");
    }
    const std::string_view id = key.substr(nul + 10);
    DestinationCounters& c = counters[std::string(key.substr(0, nul))];
    ++c.depth;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kMessages], id, &record_value);
    if (s.IsNotFound()) {
      continue;  // counted without an age, as ScanStats does (never written so by this store)
    }
    PSL_RETURN_IF_ERROR(FromRocks(s, "reading a queued message"));
    StatusOr<MessageRecord> record = DecodeRecord(record_value);
    if (!record.ok()) {
      return record.status();
    }
    ++c.accepted[record->accepted_ms];
  }
  PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning the queue"));
  std::lock_guard<std::mutex> lock(queue_stats_mu_);
  queue_stats_ = std::move(counters);
  return Status::Ok();
}

RocksDbStore::~RocksDbStore() {
  if (db_) {
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      if (h != nullptr) {
        db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
      }
    }
    handles_.clear();
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
}

Status RocksDbStore::Submit(bool consumes_space, std::function<Status(GroupContext&)> op,
                            Durability durability) {
  if (options_.read_only) {
    return Status::FailedPrecondition("the store is open read-only");
  }
  Writer w;
  w.op = std::move(op);
  w.consumes_space = consumes_space;
  w.durability = durability;
  bool lead = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    writers_.push_back(&w);
    lead = writers_.size() == 1;
  }
  if (!lead) {
    std::unique_lock<std::mutex> own(w.mu);
    w.cv.wait(own, [&w] { return w.done || w.leader; });
    if (w.done) {
      return w.status;
    }
  }

  // Leader: take everyone waiting (up to the cap); they stay at the front of writers_ so no other
  // caller becomes leader until this group is written.
  std::vector<Writer*> group;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (Writer* other : writers_) {
      if (group.size() >= options_.max_group_operations) {
        break;
      }
      group.push_back(other);
    }
  }
  bool wrote = false;
  bool synced = false;
  Status write_status = WriteGroup(group, &wrote, &synced);
  Writer* next = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (write_status.ok()) {
      if (wrote) {
        ++stats_.groups_written;
        stats_.operations += group.size();
        if (synced) {
          // A synced write syncs the WAL up to its end: every earlier unsynced group too.
          ++stats_.groups_synced;
          unsynced_writes_ = false;
          durable_head_ = chain_.head();
          if (options_.on_group_written) {
            options_.on_group_written(group.size());
          }
        } else {
          unsynced_writes_ = true;
        }
      }
      head_ = chain_.head();
    } else {
      ++stats_.groups_failed;
    }
    writers_.erase(writers_.begin(), writers_.begin() + static_cast<std::ptrdiff_t>(group.size()));
    if (!writers_.empty()) {
      next = writers_.front();
    }
  }
  // The next leader first, so its group forms while this one's members wake up. A member may
  // return (and destroy its Writer) as soon as its own mutex is released.
  if (next != nullptr) {
    std::lock_guard<std::mutex> own(next->mu);
    next->leader = true;
    next->cv.notify_one();
  }
  for (Writer* member : group) {
    if (member == &w) {
      continue;
    }
    std::lock_guard<std::mutex> own(member->mu);
    member->done = true;
    member->cv.notify_one();
  }
  return w.status;
}

Status RocksDbStore::WriteGroup(std::vector<Writer*>& group, bool* wrote, bool* synced) {
  *wrote = true;
  *synced = false;
  const AuditHead group_start = chain_.head();
  auto fail_all = [&](const Status& status) {
    for (Writer* member : group) {
      if (member->status.ok()) {
        member->status = status;
      }
    }
    chain_.Reset(group_start);
    // The group's deletes may not have happened: a floor it raised may be too high. (RocksDB 7.8
    // refuses writes after a failed WAL write until reopened, which forgets the floors too.)
    ForgetQueueFloors();
    return status;
  };

  // A previous write failure leaves RocksDB in a background-error state; try to leave it.
  if (needs_resume_) {
    rocksdb::Status resumed = db_->Resume();
    if (!resumed.ok()) {
      return fail_all(Status::Unavailable("the store is in an error state after a failed write: " +
                                          resumed.ToString()));
    }
    needs_resume_ = false;
  }

  bool space_ok = true;
  if (std::any_of(group.begin(), group.end(), [](Writer* m) { return m->consumes_space; })) {
    StatusOr<std::uint64_t> free_bytes = options_.free_space_probe(options_.path);
    space_ok = free_bytes.ok() && *free_bytes >= options_.disk_reserve_bytes;
  }

  GroupContext ctx(this, &chain_, ToEpochMs(clock_->Now()));
  bool any_ok = false;
  bool needs_sync = false;  // an operation that succeeded and must be durable before it returns
  for (Writer* member : group) {
    if (member->consumes_space && !space_ok) {
      member->status = Status::Unavailable("free disk space below the reserve");
      continue;
    }
    const AuditHead before = chain_.head();
    const std::size_t deltas_before = ctx.deltas().size();
    ctx.batch().SetSavePoint();
    member->status = member->op(ctx);
    if (member->status.ok()) {
      ctx.batch().PopSavePoint().PermitUncheckedError();
      any_ok = true;
      needs_sync = needs_sync || member->durability == Durability::kSynced;
    } else {
      ctx.batch().RollbackToSavePoint().PermitUncheckedError();
      chain_.Reset(before);
      ctx.deltas().resize(deltas_before);
    }
  }
  // Nothing to make durable (only refusals, duplicates of earlier groups, or nothing due): every
  // state these callers saw is already synced.
  if (!any_ok || ctx.batch().GetWriteBatch()->Count() == 0) {
    *wrote = false;
    return Status::Ok();
  }

  const AuditHead& head = chain_.head();
  if (head.sequence != group_start.sequence) {
    json j = {{"sequence", head.sequence}, {"hash", head.hash}};
    Status put = ctx.Put(kMeta, "audit_head", EncodeJson(j));
    if (!put.ok()) {
      return fail_all(Status::Unavailable(put.message()));
    }
    if (options_.checkpoint_identity != nullptr && options_.checkpoint_every_events > 0 &&
        head.sequence >= last_checkpoint_sequence_ + options_.checkpoint_every_events) {
      StatusOr<AuditCheckpoint> checkpoint =
          SignCheckpoint(head, ctx.now_ms(), *options_.checkpoint_identity);
      // A checkpoint that cannot be signed is skipped (the next group tries again): the chain
      // itself still proves integrity.
      if (checkpoint.ok()) {
        Status cp =
            ctx.Put(kAuditCheckpoints, AuditEventKey(head.sequence), EncodeCheckpoint(*checkpoint));
        if (!cp.ok()) {
          return fail_all(Status::Unavailable(cp.message()));
        }
        needs_sync = true;  // a signed head is never one a power cut could take back
      }
    }
  }

  // Unsynced groups (only LeaseNext / Nack) still go through the WAL, in order: any later synced
  // write, or SyncWritten, makes them durable as well, and a power cut loses a suffix of them.
  rocksdb::WriteOptions write_options;
  write_options.sync = options_.sync && needs_sync;
  rocksdb::Status s = db_->Write(write_options, ctx.batch().GetWriteBatch());
  if (!s.ok()) {
    needs_resume_ = true;
    return fail_all(Status::Unavailable("the store could not write durably: " + s.ToString()));
  }
  *synced = needs_sync;  // as the contract counts it (options_.sync false syncs nothing)
  if (head.sequence != group_start.sequence && options_.checkpoint_identity != nullptr &&
      options_.checkpoint_every_events > 0 &&
      head.sequence >= last_checkpoint_sequence_ + options_.checkpoint_every_events) {
    last_checkpoint_sequence_ = head.sequence;
  }
  // Synced: the counters follow (before any member returns, so a caller sees its own change).
  if (!ctx.deltas().empty()) {
    std::lock_guard<std::mutex> lock(queue_stats_mu_);
    for (const QueueDelta& delta : ctx.deltas()) {
      ApplyQueueDeltaLocked(delta);
    }
  }
  return Status::Ok();
}

void RocksDbStore::ApplyQueueDeltaLocked(const QueueDelta& delta) {
  if (delta.change > 0) {
    DestinationCounters& counters = queue_stats_[delta.destination];
    ++counters.depth;
    ++counters.accepted[delta.accepted_ms];
    return;
  }
  auto it = queue_stats_.find(delta.destination);
  if (it == queue_stats_.end()) {
    return;  // not counted (cannot happen: every removed entry was added or scanned)
  }
  DestinationCounters& counters = it->second;
  if (counters.depth > 0) {
    --counters.depth;
  }
  auto accepted = counters.accepted.find(delta.accepted_ms);
  if (accepted != counters.accepted.end() && --accepted->second == 0) {
    counters.accepted.erase(accepted);
  }
  if (counters.depth == 0) {
    queue_stats_.erase(it);
  }
}

// ---------------------------------------------------------------------------------------------
// DurableQueue.

StatusOr<CommitResult> RocksDbStore::Commit(NewMessage message) {
  PSL_RETURN_IF_ERROR(internal::PrepareNewMessage(message));
  // Everything that does not depend on the other operations of the group (encryption, the
  // record's and the audit event's encoding, keys) runs in the caller's thread, in parallel;
  // the serial stage keeps only the idempotency and existence decisions, the audit sealing and
  // the batch assembly.
  StatusOr<std::string> sealed = cipher_->Seal(message.payload, message.id);
  if (!sealed.ok()) {
    return sealed.status();
  }
  const std::int64_t now_ms = ToEpochMs(clock_->Now());
  const MessageRecord record = internal::RecordFor(message, now_ms);
  const std::string encoded_record = EncodeRecord(record);
  std::vector<std::string> queue_keys;
  std::string insurers;
  for (const Delivery& d : record.deliveries) {
    queue_keys.push_back(QueueKey(d.destination, d.next_attempt_ms, record.id));
    insurers += (insurers.empty() ? "" : ",") + d.destination;
  }
  std::string idempotency_key;
  std::string idempotency_value;
  if (!message.idempotency_key.empty()) {
    idempotency_key = Join({message.practice_nihii, message.idempotency_key});
    idempotency_value = EncodeJson({{"id", message.id}, {"body", message.body_sha256}});
  }
  const std::string practice_key =
      PracticeIndexKey(record.practice_nihii, record.accepted_ms, record.id);
  const PreparedAuditEvent event =
      PrepareAuditEvent(EventFor(record, "accepted", insurers, {"202"}, message.actor, now_ms));

  CommitResult result;
  Status status = Submit(true, [&](GroupContext& ctx) -> Status {
    if (!idempotency_key.empty()) {
      std::string value;
      bool found = false;
      PSL_RETURN_IF_ERROR(ctx.Get(kIdempotency, idempotency_key, &value, &found));
      if (found) {
        StatusOr<json> j = DecodeJson(value, "idempotency record");
        if (!j.ok()) {
          return j.status();
        }
        if (j->value("body", "") != message.body_sha256) {
          return Status::Conflict("idempotency key already used with another body");
        }
        result.id = j->value("id", "");
        result.outcome = CommitOutcome::kDuplicate;
        return Status::Ok();
      }
    }
    std::string existing;
    bool exists = false;
    PSL_RETURN_IF_ERROR(ctx.Get(kMessages, message.id, &existing, &exists));
    if (exists) {
      return Status::Conflict("message id " + message.id + " already exists");
    }

    PSL_RETURN_IF_ERROR(ctx.Put(kMessages, record.id, encoded_record));
    PSL_RETURN_IF_ERROR(ctx.Put(kPayloads, message.id, *sealed));  // LeaseNext reads it
    for (const std::string& key : queue_keys) {
      PSL_RETURN_IF_ERROR(ctx.Put(kQueue, key, ""));
    }
    for (const Delivery& d : record.deliveries) {
      ctx.QueueAdded(d.destination, record.accepted_ms);
    }
    if (!idempotency_key.empty()) {
      PSL_RETURN_IF_ERROR(ctx.Put(kIdempotency, idempotency_key, idempotency_value));
    }
    PSL_RETURN_IF_ERROR(ctx.PutUnindexed(kPracticeIndex, practice_key, ""));
    PSL_RETURN_IF_ERROR(ctx.SealPrepared(event));
    result.id = message.id;
    result.outcome = CommitOutcome::kCommitted;
    return Status::Ok();
  });
  if (!status.ok()) {
    return status;
  }
  return result;
}

std::string RocksDbStore::QueueSeekKey(std::string_view destination) {
  {
    std::lock_guard<std::mutex> lock(floors_mu_);
    auto it = queue_floors_.find(destination);
    if (it != queue_floors_.end()) {
      return it->second;
    }
  }
  return QueuePrefix(destination);
}

void RocksDbStore::LowerQueueFloor(std::string_view queue_key) {
  const std::string_view destination = queue_key.substr(0, queue_key.find('\0'));
  std::lock_guard<std::mutex> lock(floors_mu_);
  auto it = queue_floors_.find(destination);
  if (it != queue_floors_.end() && queue_key < std::string_view{it->second}) {
    it->second.assign(queue_key);
  }
}

void RocksDbStore::RaiseQueueFloor(std::string_view destination, std::string_view queue_key) {
  std::lock_guard<std::mutex> lock(floors_mu_);
  auto it = queue_floors_.find(destination);
  if (it == queue_floors_.end()) {
    queue_floors_.emplace(std::string(destination), std::string(queue_key));
  } else {
    it->second.assign(queue_key);
  }
}

void RocksDbStore::ForgetQueueFloors() {
  std::lock_guard<std::mutex> lock(floors_mu_);
  queue_floors_.clear();
}

StatusOr<std::optional<Lease>> RocksDbStore::LeaseNext(std::string_view destination, TimePoint now,
                                                       std::chrono::milliseconds lease_for) {
  const std::int64_t now_ms = ToEpochMs(now);
  const std::string prefix = QueuePrefix(destination);
  const std::string upper_key = QueueRangeEnd(destination);
  const rocksdb::Slice upper(upper_key);
  std::optional<Lease> lease;
  {
    // Idle workers poll: answer "nothing due" without entering the commit stage. An entry that
    // becomes due right after this read is found by the next poll.
    rocksdb::ReadOptions read_options;
    read_options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handles_[kQueue]));
    it->Seek(QueueSeekKey(destination));
    PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning the queue"));
    if (!it->Valid() || !StartsWith(it->key(), prefix) ||
        static_cast<std::int64_t>(ReadBigEndian64(View(it->key()).substr(prefix.size()))) >
            now_ms) {
      return lease;
    }
  }
  Status status = Submit(
      false,
      [&](GroupContext& ctx) -> Status {
        lease.reset();
        std::string key;
        {
          std::unique_ptr<rocksdb::Iterator> it = ctx.NewIterator(kQueue, &upper);
          it->Seek(QueueSeekKey(destination));
          if (!it->Valid() || !StartsWith(it->key(), prefix)) {
            PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning the queue"));
            RaiseQueueFloor(destination, upper_key);  // nothing queued: the next Put lowers it
            return Status::Ok();
          }
          key.assign(it->key().data(), it->key().size());
          RaiseQueueFloor(destination, key);
        }
        if (key.size() < prefix.size() + 9) {
          return Status::Internal("a queue key is too short");
        }
        const auto due =
            static_cast<std::int64_t>(ReadBigEndian64(std::string_view{key}.substr(prefix.size())));
        if (due > now_ms) {
          return Status::Ok();
        }
        const std::string id = key.substr(prefix.size() + 9);
        StatusOr<MessageRecord> record = ctx.GetRecord(id);
        if (!record.ok()) {
          return record.status();
        }
        Delivery* delivery = FindDelivery(*record, destination);
        if (delivery == nullptr) {
          return Status::Internal("a queue entry has no matching delivery");
        }
        const std::int64_t expires = now_ms + lease_for.count();
        ++delivery->attempts;
        delivery->state = MessageState::kDelivering;
        delivery->next_attempt_ms = expires;
        UpdateAggregate(*record, ctx.now_ms());
        std::string sealed_payload;
        bool found = false;
        PSL_RETURN_IF_ERROR(ctx.Get(kPayloads, id, &sealed_payload, &found));
        if (!found) {
          return Status::Internal("a queued message has no payload");
        }
        StatusOr<std::string> payload = ctx.cipher().Open(sealed_payload, id);
        if (!payload.ok()) {
          return Status::Internal("a queued payload does not decrypt");
        }
        PSL_RETURN_IF_ERROR(ctx.Delete(kQueue, key));
        PSL_RETURN_IF_ERROR(ctx.Put(kQueue, QueueKey(destination, expires, id), ""));
        PSL_RETURN_IF_ERROR(ctx.PutRecord(*record));
        StatusOr<AuditEvent> event = ctx.Seal(
            EventFor(*record, "attempt", std::string(destination),
                     {"attempt:" + std::to_string(delivery->attempts)}, "gateway", ctx.now_ms()));
        if (!event.ok()) {
          return event.status();
        }
        Lease out;
        out.message_id = id;
        out.destination = std::string(destination);
        out.expires_ms = expires;
        out.attempt = delivery->attempts;
        out.practice_nihii = record->practice_nihii;
        out.flow_kind = record->flow_kind;
        out.operation = record->operation;
        out.payload = std::move(payload).value();
        lease = std::move(out);
        return Status::Ok();
      },
      Durability::kUnsynced);
  if (!status.ok()) {
    return status;
  }
  return lease;
}

namespace {

// Loads the record of a lease and checks the lease still holds its queue entry.
template <typename Ctx>
Status HeldLease(Ctx& ctx, const Lease& lease, const std::string& queue_key, MessageRecord* record,
                 Delivery** delivery) {
  StatusOr<MessageRecord> loaded = ctx.GetRecord(lease.message_id);
  if (!loaded.ok()) {
    return loaded.status();
  }
  *record = std::move(loaded).value();
  *delivery = FindDelivery(*record, lease.destination);
  std::string value;
  bool found = false;
  PSL_RETURN_IF_ERROR(ctx.Get(kQueue, queue_key, &value, &found));
  if (*delivery == nullptr || !found) {
    return Status::Conflict("the lease on message " + lease.message_id + " for destination " +
                            lease.destination + " is no longer held");
  }
  return Status::Ok();
}

}  // namespace

Status RocksDbStore::Ack(const Lease& lease, NewAnswer answer) {
  StatusOr<std::string> sealed =
      cipher_->Seal(answer.document, AnswerAad(lease.message_id, lease.destination));
  if (!sealed.ok()) {
    return sealed.status();
  }
  const std::string queue_key = QueueKey(lease.destination, lease.expires_ms, lease.message_id);
  return Submit(false, [&](GroupContext& ctx) -> Status {
    MessageRecord record;
    Delivery* delivery = nullptr;
    PSL_RETURN_IF_ERROR(HeldLease(ctx, lease, queue_key, &record, &delivery));
    delivery->state = MessageState::kAnswered;
    delivery->next_attempt_ms = 0;
    UpdateAggregate(record, ctx.now_ms());
    if (answer.decision == "accepted" && !record.patient_pseudonym.empty()) {
      PSL_RETURN_IF_ERROR(ctx.Put(kMembers, record.patient_pseudonym, lease.destination));
    }
    json header = {{"decision", answer.decision},
                   {"codes", answer.codes},
                   {"insurer_reference", answer.insurer_reference},
                   {"received_ms", ctx.now_ms()}};
    std::string value = EncodeJson(header);
    value.push_back('\0');
    value += *sealed;
    PSL_RETURN_IF_ERROR(ctx.Delete(kQueue, queue_key));
    ctx.QueueRemoved(lease.destination, record.accepted_ms);
    PSL_RETURN_IF_ERROR(ctx.Put(kAnswers, Join({lease.message_id, lease.destination}), value));
    PSL_RETURN_IF_ERROR(ctx.PutRecord(record));
    std::vector<std::string> codes{answer.decision};
    codes.insert(codes.end(), answer.codes.begin(), answer.codes.end());
    return ctx
        .Seal(EventFor(record, "answered", lease.destination, std::move(codes), "gateway",
                       ctx.now_ms()))
        .status();
  });
}

Status RocksDbStore::Nack(const Lease& lease, TimePoint next_attempt_at, std::string_view error) {
  const std::string queue_key = QueueKey(lease.destination, lease.expires_ms, lease.message_id);
  const std::int64_t next_ms = ToEpochMs(next_attempt_at);
  return Submit(
      false,
      [&](GroupContext& ctx) -> Status {
        MessageRecord record;
        Delivery* delivery = nullptr;
        PSL_RETURN_IF_ERROR(HeldLease(ctx, lease, queue_key, &record, &delivery));
        delivery->state = MessageState::kRetrying;
        delivery->next_attempt_ms = next_ms;
        delivery->last_error = std::string(error);
        UpdateAggregate(record, ctx.now_ms());
        PSL_RETURN_IF_ERROR(ctx.Delete(kQueue, queue_key));
        PSL_RETURN_IF_ERROR(
            ctx.Put(kQueue, QueueKey(lease.destination, next_ms, lease.message_id), ""));
        PSL_RETURN_IF_ERROR(ctx.PutRecord(record));
        return ctx
            .Seal(EventFor(record, "retry", lease.destination, {std::string(error)}, "gateway",
                           ctx.now_ms()))
            .status();
      },
      Durability::kUnsynced);
}

Status RocksDbStore::DeadLetter(const Lease& lease, std::string_view reason) {
  const std::string queue_key = QueueKey(lease.destination, lease.expires_ms, lease.message_id);
  return Submit(false, [&](GroupContext& ctx) -> Status {
    MessageRecord record;
    Delivery* delivery = nullptr;
    PSL_RETURN_IF_ERROR(HeldLease(ctx, lease, queue_key, &record, &delivery));
    delivery->state = MessageState::kDead;
    delivery->next_attempt_ms = 0;
    delivery->last_error = std::string(reason);
    UpdateAggregate(record, ctx.now_ms());
    json letter = {{"reason", reason}, {"time_ms", ctx.now_ms()}};
    PSL_RETURN_IF_ERROR(ctx.Delete(kQueue, queue_key));
    ctx.QueueRemoved(lease.destination, record.accepted_ms);
    PSL_RETURN_IF_ERROR(
        ctx.Put(kDeadLetters, Join({lease.message_id, lease.destination}), EncodeJson(letter)));
    PSL_RETURN_IF_ERROR(ctx.PutRecord(record));
    return ctx
        .Seal(EventFor(record, "dead-lettered", lease.destination, {std::string(reason)}, "gateway",
                       ctx.now_ms()))
        .status();
  });
}

Status RocksDbStore::Replay(std::string_view id, std::string_view actor) {
  return Submit(true, [&](GroupContext& ctx) -> Status {
    StatusOr<MessageRecord> record = ctx.GetRecord(id);
    if (!record.ok()) {
      return record.status();
    }
    std::vector<Delivery*> dead;
    for (Delivery& d : record->deliveries) {
      if (d.state == MessageState::kDead) {
        dead.push_back(&d);
      }
    }
    if (dead.empty()) {
      return Status::NotFound("message " + std::string(id) + " has no dead letter");
    }
    if (record->payload_purged) {
      return Status::FailedPrecondition("message " + std::string(id) +
                                        " cannot be replayed: its payload was purged");
    }
    std::string insurers;
    for (Delivery* d : dead) {
      PSL_RETURN_IF_ERROR(ctx.Delete(kDeadLetters, Join({id, d->destination})));
      PSL_RETURN_IF_ERROR(ctx.Put(kQueue, QueueKey(d->destination, ctx.now_ms(), id), ""));
      ctx.QueueAdded(d->destination, record->accepted_ms);
      d->state = MessageState::kQueued;
      d->next_attempt_ms = ctx.now_ms();
      insurers += (insurers.empty() ? "" : ",") + d->destination;
    }
    UpdateAggregate(*record, ctx.now_ms());
    PSL_RETURN_IF_ERROR(ctx.PutRecord(*record));
    return ctx.Seal(EventFor(*record, "replayed", insurers, {}, std::string(actor), ctx.now_ms()))
        .status();
  });
}

namespace {

Status ValidateReturn(const NewReturn& r) {
  if (r.destination.empty() || r.mailbox_key.empty()) {
    return Status::Invalid("a return needs a destination and a mailbox key");
  }
  auto has_nul = [](const std::string& s) {
    return s.find('\0') != std::string::npos;
  };
  if (has_nul(r.destination) || has_nul(r.mailbox_key) || has_nul(r.message_id) ||
      has_nul(r.practice_nihii)) {
    return Status::Invalid("a return's destination, mailbox key or message id holds a NUL byte");
  }
  return Status::Ok();
}

// Why a return cannot be linked to `record` ("" = it can); `record` null when unknown.
std::string OrphanReason(const NewReturn& r, MessageRecord* record) {
  if (r.message_id.empty()) {
    return "no-reference";
  }
  if (record == nullptr) {
    return "unknown-message";
  }
  if (FindDelivery(*record, r.destination) == nullptr) {
    return "destination-mismatch";
  }
  if (!r.practice_nihii.empty() && record->practice_nihii != r.practice_nihii) {
    return "practice-mismatch";
  }
  return "";
}

}  // namespace

StatusOr<ReturnOutcome> RocksDbStore::RecordReturn(NewReturn r) {
  PSL_RETURN_IF_ERROR(ValidateReturn(r));
  StatusOr<std::string> sealed =
      cipher_->Seal(r.answer.document, ReturnAad(r.destination, r.mailbox_key));
  if (!sealed.ok()) {
    return sealed.status();
  }
  const std::string document_sha256 = Sha256Hex(r.answer.document);
  const std::string idempotency_key = Join({r.destination, r.mailbox_key});
  ReturnOutcome outcome = ReturnOutcome::kRecorded;
  Status status = Submit(true, [&](GroupContext& ctx) -> Status {
    // Reads through the batch: a second call with the same key in this group is a duplicate.
    std::string value;
    bool found = false;
    PSL_RETURN_IF_ERROR(ctx.Get(kReturnKeys, idempotency_key, &value, &found));
    if (found) {
      outcome = ReturnOutcome::kDuplicate;
      return Status::Ok();
    }
    outcome = ReturnOutcome::kRecorded;
    std::optional<MessageRecord> record;
    if (!r.message_id.empty()) {
      StatusOr<MessageRecord> loaded = ctx.GetRecord(r.message_id);
      if (loaded.ok()) {
        record = std::move(loaded).value();
      } else if (loaded.status().code() != StatusCode::kNotFound) {
        return loaded.status();
      }
    }
    const std::string reason = OrphanReason(r, record ? &*record : nullptr);
    std::vector<std::string> codes;
    if (!reason.empty()) {
      codes = {"orphan", reason};
    }
    codes.push_back(r.answer.decision);
    codes.insert(codes.end(), r.answer.codes.begin(), r.answer.codes.end());
    AuditEvent event;
    if (reason.empty()) {
      event = EventFor(*record, "return-received", r.destination, std::move(codes),
                       "insurer:" + r.destination, ctx.now_ms());
    } else {
      event.kind = "return-received";
      event.practice_nihii = r.practice_nihii;
      event.insurer = r.destination;
      event.outcome_codes = std::move(codes);
      event.actor = "insurer:" + r.destination;
      event.time_ms = ctx.now_ms();
    }
    event.payload_sha256 = document_sha256;
    StatusOr<AuditEvent> sealed_event = ctx.Seal(std::move(event));
    if (!sealed_event.ok()) {
      return sealed_event.status();
    }
    const std::uint64_t sequence = sealed_event->sequence;
    const std::string linked_id = reason.empty() ? r.message_id : std::string();
    json header = {
        {"destination", r.destination}, {"mailbox_key", r.mailbox_key},
        {"message_id", r.message_id},   {"decision", r.answer.decision},
        {"codes", r.answer.codes},      {"insurer_reference", r.answer.insurer_reference},
        {"received_ms", ctx.now_ms()}};
    if (!reason.empty()) {
      header["orphan"] = reason;
    }
    std::string stored = EncodeJson(header);
    stored.push_back('\0');
    stored += *sealed;
    PSL_RETURN_IF_ERROR(ctx.PutUnindexed(kReturns, ReturnKey(linked_id, sequence), stored));
    return ctx.Put(kReturnKeys, idempotency_key,
                   EncodeJson({{"message_id", linked_id}, {"sequence", sequence}}));
  });
  if (!status.ok()) {
    return status;
  }
  return outcome;
}

StatusOr<OrphanReturnPage> RocksDbStore::OrphanReturns(const PageRequest& page) {
  const std::size_t limit = ClampLimit(page.limit, 1000);
  const std::string prefix = Join({"", ""});
  std::string start = prefix;
  if (!page.after.empty()) {
    if (!HexDecode(page.after, &start) || !StartsWith(start, prefix)) {
      return Status::Malformed("the page cursor is not valid for this listing");
    }
  }
  OrphanReturnPage result;
  if (handles_[kReturns] == nullptr) {
    return result;  // read-only view of a store that never recorded a return
  }
  std::string last_key;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kReturns]));
  it->Seek(start);
  if (!page.after.empty() && it->Valid() && View(it->key()) == start) {
    it->Next();
  }
  for (; it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    if (result.returns.size() == limit) {
      result.next_cursor = HexEncode(last_key);
      break;
    }
    OrphanReturn orphan;
    PSL_RETURN_IF_ERROR(DecodeReturn(*cipher_, View(it->value()), &orphan.answer,
                                     &orphan.claimed_message_id, &orphan.reason));
    result.returns.push_back(std::move(orphan));
    last_key = std::string(View(it->key()));
  }
  PSL_RETURN_IF_ERROR(FromRocks(it->status(), "listing orphan returns"));
  return result;
}

RocksDbStore::MemoryUsage RocksDbStore::memory_usage() {
  MemoryUsage usage;
  auto sum = [&](const char* property, std::uint64_t* out) {
    std::uint64_t value = 0;
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      if (handle != nullptr && db_->GetIntProperty(handle, property, &value)) {
        *out += value;
      }
    }
  };
  sum(rocksdb::DB::Properties::kCurSizeAllMemTables.c_str(), &usage.memtables);
  sum(rocksdb::DB::Properties::kEstimateTableReadersMem.c_str(), &usage.table_readers);
  // Each column family's table factory has its own cache (RocksDB's default 8 MiB): summed.
  sum(rocksdb::DB::Properties::kBlockCacheUsage.c_str(), &usage.block_cache);
  return usage;
}

StatusOr<bool> RocksDbStore::IdempotencyKeyUsed(std::string_view practice_nihii,
                                                std::string_view idempotency_key) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kIdempotency],
                               Join({practice_nihii, idempotency_key}), &value);
  if (s.IsNotFound()) {
    return false;
  }
  PSL_RETURN_IF_ERROR(FromRocks(s, "reading an idempotency record"));
  return true;
}

StatusOr<MessageRecord> RocksDbStore::Get(std::string_view id) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kMessages], id, &value);
  if (s.IsNotFound()) {
    return Status::NotFound("no message " + std::string(id));
  }
  PSL_RETURN_IF_ERROR(FromRocks(s, "reading a message"));
  return DecodeRecord(value);
}

StatusOr<std::string> RocksDbStore::Payload(std::string_view id) {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kPayloads], id, &value);
  if (s.IsNotFound()) {
    return Status::NotFound("no payload for message " + std::string(id));
  }
  PSL_RETURN_IF_ERROR(FromRocks(s, "reading a payload"));
  StatusOr<std::string> plain = cipher_->Open(value, id);
  if (!plain.ok()) {
    return Status::Internal("the payload of message " + std::string(id) +
                            " does not decrypt: " + plain.status().message());
  }
  return plain;
}

StatusOr<std::vector<StoredAnswer>> RocksDbStore::Answers(std::string_view id) {
  PSL_RETURN_IF_ERROR(Get(id).status());
  std::vector<StoredAnswer> answers;
  const std::string prefix = Join({id, ""});
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kAnswers]));
  for (it->Seek(prefix); it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    std::string_view value = View(it->value());
    std::size_t nul = value.find('\0');
    if (nul == std::string_view::npos) {
      return Status::Internal("a stored answer has no header");
    }
    StatusOr<json> header = DecodeJson(value.substr(0, nul), "answer");
    if (!header.ok()) {
      return header.status();
    }
    StoredAnswer answer;
    answer.message_id = std::string(id);
    answer.destination = std::string(View(it->key()).substr(prefix.size()));
    StatusOr<std::string> document =
        cipher_->Open(value.substr(nul + 1), AnswerAad(id, answer.destination));
    if (!document.ok()) {
      return Status::Internal("a stored answer does not decrypt");
    }
    answer.document = std::move(document).value();
    try {
      answer.decision = header->at("decision").get<std::string>();
      answer.codes = header->at("codes").get<std::vector<std::string>>();
      answer.received_ms = header->at("received_ms").get<std::int64_t>();
      answer.insurer_reference = header->value("insurer_reference", "");  // absent before v0.2
    } catch (const json::exception&) {
      return Status::Internal("a stored answer misses a field");
    }
    answers.push_back(std::move(answer));
  }
  PSL_RETURN_IF_ERROR(FromRocks(it->status(), "reading answers"));
  if (handles_[kReturns] == nullptr) {
    return answers;  // read-only view of a store that never recorded a return
  }
  std::unique_ptr<rocksdb::Iterator> returns(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kReturns]));
  for (returns->Seek(prefix); returns->Valid() && StartsWith(returns->key(), prefix);
       returns->Next()) {
    StoredAnswer answer;
    std::string claimed;
    std::string reason;
    PSL_RETURN_IF_ERROR(DecodeReturn(*cipher_, View(returns->value()), &answer, &claimed, &reason));
    answer.message_id = std::string(id);
    answers.push_back(std::move(answer));
  }
  PSL_RETURN_IF_ERROR(FromRocks(returns->status(), "reading returns"));
  return answers;
}

StatusOr<MessagePage> RocksDbStore::List(std::string_view practice_nihii,
                                         const MessageFilter& filter, const PageRequest& page) {
  const std::size_t limit = ClampLimit(page.limit, 1000);
  const std::string prefix = Join({practice_nihii, ""});
  std::string start = prefix;
  if (!page.after.empty()) {
    if (!HexDecode(page.after, &start) || !StartsWith(start, prefix)) {
      return Status::Malformed("the page cursor is not valid for this listing");
    }
  }
  MessagePage result;
  std::string last_key;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kPracticeIndex]));
  it->Seek(start);
  if (!page.after.empty() && it->Valid() && View(it->key()) == start) {
    it->Next();
  }
  for (; it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    std::string_view key = View(it->key());
    const auto accepted =
        INT64_MAX - static_cast<std::int64_t>(ReadBigEndian64(key.substr(prefix.size())));
    if (accepted >= filter.accepted_to_ms) {
      continue;
    }
    if (accepted < filter.accepted_from_ms) {
      break;
    }
    if (result.records.size() == limit) {
      result.next_cursor = HexEncode(last_key);
      break;
    }
    StatusOr<MessageRecord> record = Get(key.substr(prefix.size() + 9));
    if (!record.ok()) {
      return record.status();
    }
    if (filter.state && record->state != *filter.state) {
      continue;
    }
    if (!filter.flow_kind.empty() && record->flow_kind != filter.flow_kind) {
      continue;
    }
    if (!filter.destination.empty() && FindDelivery(*record, filter.destination) == nullptr) {
      continue;
    }
    result.records.push_back(std::move(record).value());
    last_key = std::string(key);
  }
  PSL_RETURN_IF_ERROR(FromRocks(it->status(), "listing messages"));
  return result;
}

StatusOr<DeadLetterPage> RocksDbStore::DeadLetters(const PageRequest& page) {
  const std::size_t limit = ClampLimit(page.limit, 1000);
  std::string start;
  if (!page.after.empty() && !HexDecode(page.after, &start)) {
    return Status::Malformed("the page cursor is not valid for this listing");
  }
  DeadLetterPage result;
  std::string last_key;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kDeadLetters]));
  it->Seek(start);
  if (!page.after.empty() && it->Valid() && View(it->key()) == start) {
    it->Next();
  }
  for (; it->Valid(); it->Next()) {
    std::string_view key = View(it->key());
    if (result.letters.size() == limit) {
      result.next_cursor = HexEncode(last_key);
      break;
    }
    std::size_t nul = key.find('\0');
    if (nul == std::string_view::npos) {
      return Status::Internal("a dead-letter key is malformed");
    }
    StatusOr<json> j = DecodeJson(View(it->value()), "dead letter");
    if (!j.ok()) {
      return j.status();
    }
    store::DeadLetter letter;
    letter.message_id = std::string(key.substr(0, nul));
    letter.destination = std::string(key.substr(nul + 1));
    letter.reason = j->value("reason", "");
    letter.time_ms = j->value("time_ms", std::int64_t{0});
    result.letters.push_back(std::move(letter));
    last_key = std::string(key);
  }
  PSL_RETURN_IF_ERROR(FromRocks(it->status(), "listing dead letters"));
  return result;
}

StatusOr<QueueStats> RocksDbStore::Stats(std::string_view destination) {
  QueueStats stats;
  std::lock_guard<std::mutex> lock(queue_stats_mu_);
  auto it = queue_stats_.find(destination);
  if (it != queue_stats_.end()) {
    stats.depth = it->second.depth;
    if (!it->second.accepted.empty()) {
      stats.oldest_accepted_ms = it->second.accepted.begin()->first;
    }
  }
  return stats;
}

StatusOr<QueueStats> RocksDbStore::ScanStats(std::string_view destination) {
  QueueStats stats;
  const std::string prefix = QueuePrefix(destination);
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kQueue]));
  for (it->Seek(prefix); it->Valid() && StartsWith(it->key(), prefix); it->Next()) {
    ++stats.depth;
    std::string_view key = View(it->key());
    if (key.size() < prefix.size() + 9) {
      continue;
    }
    StatusOr<MessageRecord> record = Get(key.substr(prefix.size() + 9));
    if (!record.ok()) {
      continue;  // metrics tolerate a racing transition
    }
    if (stats.oldest_accepted_ms == 0 || record->accepted_ms < stats.oldest_accepted_ms) {
      stats.oldest_accepted_ms = record->accepted_ms;
    }
  }
  PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning the queue"));
  return stats;
}

StatusOr<std::optional<std::string>> RocksDbStore::MemberInsurer(
    std::string_view patient_pseudonym) {
  if (patient_pseudonym.empty()) {
    return std::optional<std::string>();
  }
  std::string value;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), handles_[kMembers], patient_pseudonym, &value);
  if (s.IsNotFound()) {
    return std::optional<std::string>();
  }
  PSL_RETURN_IF_ERROR(FromRocks(s, "reading the member registry"));
  return std::optional<std::string>(std::move(value));
}

StatusOr<PurgeResult> RocksDbStore::PurgeDelivered(TimePoint now) {
  const std::int64_t cutoff = ToEpochMs(now) - options_.delivered_retention.count();
  // Candidates are found outside the commit stage and re-checked inside it (a replay may race).
  std::vector<std::string> candidates;
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[kMessages]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      StatusOr<MessageRecord> record = DecodeRecord(View(it->value()));
      if (!record.ok()) {
        return record.status();
      }
      if (!record->payload_purged && record->finished_ms != 0 && record->finished_ms <= cutoff) {
        candidates.push_back(record->id);
      }
    }
    PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning messages"));
  }
  PurgeResult result;
  if (candidates.empty()) {
    return result;
  }
  Status status = Submit(false, [&](GroupContext& ctx) -> Status {
    result.payloads_purged = 0;
    for (const std::string& id : candidates) {
      StatusOr<MessageRecord> record = ctx.GetRecord(id);
      if (!record.ok()) {
        return record.status();
      }
      if (record->payload_purged || record->finished_ms == 0 || record->finished_ms > cutoff) {
        continue;
      }
      record->payload_purged = true;
      PSL_RETURN_IF_ERROR(ctx.PutRecord(*record));
      PSL_RETURN_IF_ERROR(ctx.Delete(kPayloads, id));
      ++result.payloads_purged;
    }
    AuditEvent event;
    event.kind = "payloads-purged";
    event.actor = "gateway";
    event.outcome_codes = {"count:" + std::to_string(result.payloads_purged)};
    return ctx.Seal(std::move(event)).status();
  });
  if (!status.ok()) {
    return status;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// AuditLog.

StatusOr<AuditEvent> RocksDbStore::Append(AuditEvent event) {
  if (event.kind.empty()) {
    return Status::Invalid("an audit event needs a kind");
  }
  AuditEvent sealed;
  Status status = Submit(true, [&](GroupContext& ctx) -> Status {
    StatusOr<AuditEvent> result = ctx.Seal(event);
    if (!result.ok()) {
      return result.status();
    }
    sealed = std::move(result).value();
    return Status::Ok();
  });
  if (!status.ok()) {
    return status;
  }
  return sealed;
}

StatusOr<AuditPage> RocksDbStore::Query(const AuditQuery& query, const PageRequest& page) {
  PSL_RETURN_IF_ERROR(SyncWritten());
  const std::size_t limit = ClampLimit(page.limit, 10000);
  const AuditIndexScan scan = PlanAuditIndexScan(query);
  std::string start = scan.lower;
  if (!page.after.empty()) {
    if (!HexDecode(page.after, &start) || start < scan.lower || start >= scan.upper) {
      return Status::Malformed("the audit cursor is not valid for this query");
    }
  }
  AuditPage result;
  std::string last_key;
  rocksdb::Slice upper(scan.upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handles_[kAuditIndex]));
  it->Seek(start);
  if (!page.after.empty() && it->Valid() && View(it->key()) == start) {
    it->Next();
  }
  for (; it->Valid(); it->Next()) {
    StatusOr<AuditIndexEntry> entry = ParseAuditIndexKey(View(it->key()));
    if (!entry.ok()) {
      return Status::Internal("an audit index key is malformed");
    }
    std::string encoded;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kAudit],
                                 AuditEventKey(entry->sequence), &encoded);
    if (s.IsNotFound()) {
      continue;  // purged by retention
    }
    PSL_RETURN_IF_ERROR(FromRocks(s, "reading an audit event"));
    StatusOr<AuditEvent> event = DecodeAuditEvent(encoded);
    if (!event.ok()) {
      return Status::Internal("a stored audit event does not decode");
    }
    if (!AuditQueryMatches(query, *event)) {
      continue;
    }
    if (result.events.size() == limit) {
      result.next_cursor = HexEncode(last_key);
      break;
    }
    result.events.push_back(std::move(event).value());
    last_key = std::string(View(it->key()));
  }
  PSL_RETURN_IF_ERROR(FromRocks(it->status(), "querying the audit log"));
  return result;
}

AuditHead RocksDbStore::Head() {
  // On a failed sync the last head known durable (the store then refuses writes anyway).
  static_cast<void>(SyncWritten());
  std::lock_guard<std::mutex> lock(mu_);
  return durable_head_;
}

Status RocksDbStore::SyncWritten() {
  AuditHead written;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!unsynced_writes_) {
      return Status::Ok();
    }
    // A group written after this point sets the flag again: it may or may not be covered.
    unsynced_writes_ = false;
    written = head_;
  }
  rocksdb::Status s = db_->SyncWAL();
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok()) {
    unsynced_writes_ = true;
    needs_resume_ = true;
    return Status::Unavailable("the store could not sync its log: " + s.ToString());
  }
  ++stats_.wal_syncs;
  if (written.sequence > durable_head_.sequence) {
    durable_head_ = written;
  }
  return Status::Ok();
}

Status RocksDbStore::ScanAudit(const std::function<bool(std::uint64_t, std::string_view)>& fn,
                               const std::function<bool(std::string_view)>& checkpoint_fn) {
  PSL_RETURN_IF_ERROR(SyncWritten());
  {
    std::unique_ptr<rocksdb::Iterator> it(
        db_->NewIterator(rocksdb::ReadOptions(), handles_[kAudit]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (!fn(ReadBigEndian64(View(it->key())), View(it->value()))) {
        return Status::Ok();
      }
    }
    PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning the audit log"));
  }
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kAuditCheckpoints]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!checkpoint_fn(View(it->value()))) {
      return Status::Ok();
    }
  }
  return FromRocks(it->status(), "scanning the audit checkpoints");
}

StatusOr<AuditVerifyReport> RocksDbStore::Verify() {
  PSL_RETURN_IF_ERROR(SyncWritten());
  AuditChainVerifier verifier;
  std::string anchor;
  PSL_RETURN_IF_ERROR(AuditAnchor(&anchor));
  if (!anchor.empty()) {
    verifier.StartAtCheckpoint(anchor);
  }
  PSL_RETURN_IF_ERROR(ScanAudit(
      [&](std::uint64_t sequence, std::string_view encoded) {
        verifier.AddEvent(sequence, encoded);
        return true;
      },
      [&](std::string_view encoded) {
        if (encoded != anchor)
          verifier.AddCheckpoint(encoded);
        return true;
      }));
  return verifier.Finish();
}

Status RocksDbStore::AuditAnchor(std::string* encoded_checkpoint) {
  encoded_checkpoint->clear();
  std::string sequence;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kMeta], "audit_anchor", &sequence);
  if (s.IsNotFound()) {
    return Status::Ok();
  }
  PSL_RETURN_IF_ERROR(FromRocks(s, "reading the audit anchor"));
  s = db_->Get(rocksdb::ReadOptions(), handles_[kAuditCheckpoints], sequence, encoded_checkpoint);
  if (s.IsNotFound()) {
    return Status::Internal("the audit anchor checkpoint is missing");
  }
  return FromRocks(s, "reading the audit anchor");
}

StatusOr<PurgeResult> RocksDbStore::PurgeAudit(TimePoint cutoff) {
  if (options_.checkpoint_identity == nullptr) {
    return Status::FailedPrecondition(
        "purging audit events needs a checkpoint identity to sign the anchor of the kept log");
  }
  const std::int64_t cutoff_ms = ToEpochMs(cutoff);
  PurgeResult result;
  Status status = Submit(false, [&](GroupContext& ctx) -> Status {
    result.audit_events_purged = 0;
    std::vector<AuditEvent> purged;
    AuditHead anchor;
    bool have_anchor = false;
    {
      std::unique_ptr<rocksdb::Iterator> it = ctx.NewIterator(kAudit);
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        StatusOr<AuditEvent> event = DecodeAuditEvent(View(it->value()));
        if (!event.ok()) {
          return Status::Internal("a stored audit event does not decode");
        }
        // Events are time-ordered in practice; the kept log must stay a contiguous suffix.
        if (event->time_ms >= cutoff_ms) {
          anchor = {event->sequence - 1, event->prev_hash};
          have_anchor = true;
          break;
        }
        purged.push_back(std::move(event).value());
      }
      PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning the audit log"));
    }
    if (purged.empty()) {
      return Status::Ok();
    }
    if (!have_anchor) {
      // Every stored event is older than the cutoff: keep the newest so the head stays provable.
      AuditEvent last = std::move(purged.back());
      purged.pop_back();
      anchor = {last.sequence - 1, last.prev_hash};
      if (purged.empty()) {
        return Status::Ok();
      }
    }
    for (const AuditEvent& e : purged) {
      PSL_RETURN_IF_ERROR(ctx.Delete(kAudit, AuditEventKey(e.sequence)));
      for (const std::string& key : AuditIndexKeysFor(e)) {
        PSL_RETURN_IF_ERROR(ctx.Delete(kAuditIndex, key));
      }
    }
    {
      std::unique_ptr<rocksdb::Iterator> it = ctx.NewIterator(kAuditCheckpoints);
      std::vector<std::string> stale;
      for (it->SeekToFirst(); it->Valid(); it->Next()) {
        if (ReadBigEndian64(View(it->key())) >= anchor.sequence) {
          break;
        }
        stale.emplace_back(View(it->key()));
      }
      PSL_RETURN_IF_ERROR(FromRocks(it->status(), "scanning the audit checkpoints"));
      it.reset();
      for (const std::string& key : stale) {
        PSL_RETURN_IF_ERROR(ctx.Delete(kAuditCheckpoints, key));
      }
    }
    StatusOr<AuditCheckpoint> checkpoint =
        SignCheckpoint(anchor, ctx.now_ms(), *options_.checkpoint_identity);
    if (!checkpoint.ok()) {
      return checkpoint.status();
    }
    PSL_RETURN_IF_ERROR(
        ctx.Put(kAuditCheckpoints, AuditEventKey(anchor.sequence), EncodeCheckpoint(*checkpoint)));
    PSL_RETURN_IF_ERROR(ctx.Put(kMeta, "audit_anchor", AuditEventKey(anchor.sequence)));
    result.audit_events_purged = purged.size();
    AuditEvent event;
    event.kind = "audit-purged";
    event.actor = "gateway";
    event.outcome_codes = {"first-kept:" + std::to_string(anchor.sequence + 1),
                           "count:" + std::to_string(purged.size())};
    return ctx.Seal(std::move(event)).status();
  });
  if (!status.ok()) {
    return status;
  }
  return result;
}

Status RocksDbStore::WriteHealth() {
  if (needs_resume_) {
    return Status::Unavailable(
        "the store refuses writes after a failed write; restart the gateway to reopen it");
  }
  return Status::Ok();
}

std::size_t RocksDbStore::pending_writers() {
  std::lock_guard<std::mutex> lock(mu_);
  return writers_.size();
}

CommitStageStats RocksDbStore::commit_stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace psl::store
