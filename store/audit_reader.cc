#include "store/audit_reader.h"

#include <rocksdb/db.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <stdlib.h>

#include <system_error>

namespace psl::store {
namespace {

// Handle order of the column families opened (default must be opened, though unused).
enum Cf : std::size_t { kDefault, kAudit, kAuditIndex, kAuditCheckpoints, kMeta, kCfCount };
constexpr const char* kCfNames[kCfCount] = {"default", "audit", "audit_index", "audit_checkpoints",
                                            "meta"};
// RocksDbStore's format version whose audit layout this reader knows.
constexpr std::string_view kFormatVersion = "1";

std::string_view View(const rocksdb::Slice& slice) {
  return {slice.data(), slice.size()};
}

Status FromRocks(const rocksdb::Status& s, const std::string& doing) {
  if (s.ok()) {
    return Status::Ok();
  }
  if (s.IsIOError()) {
    return Status::Unavailable(doing + ": " + s.ToString());
  }
  return Status::FailedPrecondition(doing + ": " + s.ToString());
}

}  // namespace

StatusOr<std::unique_ptr<AuditStoreReader>> AuditStoreReader::Open(
    const std::filesystem::path& data_dir) {
  std::error_code error;
  if (!std::filesystem::is_directory(data_dir, error)) {
    return Status::FailedPrecondition("no store directory at " + data_dir.string());
  }
  std::unique_ptr<AuditStoreReader> reader(new AuditStoreReader());
  std::string pattern =
      (std::filesystem::temp_directory_path(error) / "psl-audit-reader.XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) {
    return Status::FailedPrecondition("cannot create a temporary directory for the reader");
  }
  reader->secondary_dir_ = pattern;

  rocksdb::DBOptions options;
  options.max_open_files = -1;  // required of secondary instances
  options.create_if_missing = false;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const char* name : kCfNames) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenAsSecondary(options, data_dir.string(), reader->secondary_dir_.string(),
                                   descriptors, &reader->handles_, &raw);
  if (!s.ok()) {
    if (s.IsIOError() && !std::filesystem::exists(data_dir / "CURRENT", error)) {
      return Status::FailedPrecondition("no Passerelle store at " + data_dir.string());
    }
    return FromRocks(s, "cannot open the store at " + data_dir.string() + " for auditing");
  }
  reader->db_.reset(raw);
  // Harmless on a stopped store; on a running one it replays the primary's latest WAL.
  reader->db_->TryCatchUpWithPrimary().PermitUncheckedError();

  std::string version;
  s = reader->db_->Get(rocksdb::ReadOptions(), reader->handles_[kMeta], "format_version", &version);
  if (s.IsNotFound()) {
    return Status::FailedPrecondition("the store at " + data_dir.string() +
                                      " was never initialised");
  }
  PSL_RETURN_IF_ERROR(FromRocks(s, "reading the store's format version"));
  if (version != kFormatVersion) {
    return Status::FailedPrecondition("the store's format version " + version +
                                      " is not supported (expected " + std::string(kFormatVersion) +
                                      ")");
  }
  return reader;
}

AuditStoreReader::~AuditStoreReader() {
  if (db_ != nullptr) {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) {
      db_->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
  if (!secondary_dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(secondary_dir_, ignored);
  }
}

Status AuditStoreReader::ScanEvents(
    const std::function<bool(std::uint64_t, std::string_view)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), handles_[kAudit]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    StatusOr<std::uint64_t> sequence = ParseAuditEventKey(View(it->key()));
    // A key of the wrong size is itself tampering; sequence 0 makes the verifier name it.
    if (!fn(sequence.ok() ? *sequence : 0, View(it->value()))) {
      return Status::Ok();
    }
  }
  return FromRocks(it->status(), "scanning the audit log");
}

Status AuditStoreReader::ScanCheckpoints(const std::function<bool(std::string_view)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions(), handles_[kAuditCheckpoints]));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (!fn(View(it->value()))) {
      return Status::Ok();
    }
  }
  return FromRocks(it->status(), "scanning the audit checkpoints");
}

Status AuditStoreReader::Anchor(std::string* encoded_checkpoint) {
  encoded_checkpoint->clear();
  std::string key;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kMeta], "audit_anchor", &key);
  if (s.IsNotFound()) {
    return Status::Ok();
  }
  PSL_RETURN_IF_ERROR(FromRocks(s, "reading the audit anchor"));
  s = db_->Get(rocksdb::ReadOptions(), handles_[kAuditCheckpoints], key, encoded_checkpoint);
  if (s.IsNotFound()) {
    return Status::Invalid("the audit anchor checkpoint is missing");
  }
  return FromRocks(s, "reading the audit anchor");
}

StatusOr<AuditVerifyReport> AuditStoreReader::Verify(X509_STORE* trust) {
  AuditChainVerifier verifier(trust);
  std::string anchor;
  const Status anchor_status = Anchor(&anchor);
  if (anchor_status.code() == StatusCode::kInvalid) {
    AuditVerifyReport report;
    report.ok = false;
    report.problem = anchor_status.message() + ": the purged part of the log cannot be checked";
    return report;
  }
  PSL_RETURN_IF_ERROR(anchor_status);
  if (!anchor.empty()) {
    verifier.StartAtCheckpoint(anchor);
  }
  PSL_RETURN_IF_ERROR(ScanEvents([&](std::uint64_t sequence, std::string_view encoded) {
    verifier.AddEvent(sequence, encoded);
    return true;
  }));
  PSL_RETURN_IF_ERROR(ScanCheckpoints([&](std::string_view encoded) {
    verifier.AddCheckpoint(encoded);
    return true;
  }));
  return verifier.Finish();
}

Status AuditStoreReader::Query(const AuditQuery& query,
                               const std::function<bool(const AuditEvent&)>& fn) {
  const AuditIndexScan scan = PlanAuditIndexScan(query);
  if (scan.upper <= scan.lower) {
    return Status::Ok();  // an empty time range
  }
  const rocksdb::Slice upper(scan.upper);
  rocksdb::ReadOptions read_options;
  read_options.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options, handles_[kAuditIndex]));
  std::string encoded;
  for (it->Seek(scan.lower); it->Valid(); it->Next()) {
    StatusOr<AuditIndexEntry> entry = ParseAuditIndexKey(View(it->key()));
    if (!entry.ok()) {
      return Status::Invalid("the audit index holds a malformed key");
    }
    const std::string sequence = std::to_string(entry->sequence);
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), handles_[kAudit],
                                 AuditEventKey(entry->sequence), &encoded);
    if (s.IsNotFound()) {
      return Status::Invalid("the audit index names event " + sequence +
                             ", which is missing (run audit verify)");
    }
    PSL_RETURN_IF_ERROR(FromRocks(s, "reading audit event " + sequence));
    StatusOr<AuditEvent> event = DecodeAuditEvent(encoded);
    if (!event.ok()) {
      return Status::Invalid("audit event " + sequence +
                             " is unreadable (run audit verify): " + event.status().message());
    }
    if (AuditQueryMatches(query, *event) && !fn(*event)) {
      return Status::Ok();
    }
  }
  return FromRocks(it->status(), "scanning the audit index");
}

}  // namespace psl::store
