// AuditStoreReader: the auditors' read-only view of a RocksDbStore's audit trail, for the
// `passerelle audit verify|query|export` commands.
//
// It opens the store directory as a RocksDB secondary instance (DB::OpenAsSecondary), which is
// the supported way to read a DB while its primary (the running gateway) has it open — unlike
// OpenForReadOnly, which is undefined behaviour next to a live writer — and works as well on a
// stopped store. The view is the state at Open (plus what TryCatchUpWithPrimary caught up).
// Only the audit column families and the metadata are opened: no payload key is needed, and
// auditors never see payloads. The secondary's info log lives in a private temp dir removed on
// destruction.
//
// The layout it reads is RocksDbStore's (rocksdb_store.cc): column families "audit"
// (AuditEventKey -> EncodeStoredAuditEvent), "audit_index" (AuditIndexKey -> ""),
// "audit_checkpoints" (AuditEventKey(sequence) -> EncodeCheckpoint) and "meta" ("format_version",
// "audit_anchor" = the audit_checkpoints key of the retention anchor).
//
// Not thread-safe (one CLI command uses one reader).
#ifndef PSL_STORE_AUDIT_READER_H_
#define PSL_STORE_AUDIT_READER_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "store/audit.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace psl::store {

class AuditStoreReader {
 public:
  // kFailedPrecondition: not a Passerelle store (no such directory, never initialised, another
  // format version, audit column families missing); kUnavailable: an I/O error.
  static StatusOr<std::unique_ptr<AuditStoreReader>> Open(const std::filesystem::path& data_dir);
  ~AuditStoreReader();
  AuditStoreReader(const AuditStoreReader&) = delete;
  AuditStoreReader& operator=(const AuditStoreReader&) = delete;

  // Stored events in sequence order: fn(stored key sequence, stored bytes); false stops.
  Status ScanEvents(const std::function<bool(std::uint64_t, std::string_view)>& fn);
  // Encoded checkpoints in sequence order; false stops.
  Status ScanCheckpoints(const std::function<bool(std::string_view)>& fn);
  // The encoded retention anchor checkpoint, "" when nothing was purged.
  Status Anchor(std::string* encoded_checkpoint);

  // The whole chain: anchor, events, checkpoints (AuditChainVerifier). With `trust` (borrowed,
  // may be null) checkpoint signers must chain to it. A non-OK status is a read error, not a
  // verification failure (that is in the report).
  StatusOr<AuditVerifyReport> Verify(X509_STORE* trust);

  // Events matching `query` through the index (PlanAuditIndexScan), in index order (by time, then
  // sequence); fn false stops. An index entry naming a missing or unreadable event is kInvalid
  // (the log was tampered with: run Verify).
  Status Query(const AuditQuery& query, const std::function<bool(const AuditEvent&)>& fn);

 private:
  AuditStoreReader() = default;

  std::filesystem::path secondary_dir_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace psl::store

#endif  // PSL_STORE_AUDIT_READER_H_
