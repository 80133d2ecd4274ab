// Test-only: edits a closed store's audit column family directly, as an attacker with file access
// would, so tests can check that `audit verify` names the tampering. Never linked into the gateway.
#ifndef PSL_STORE_TESTING_AUDIT_TAMPER_H_
#define PSL_STORE_TESTING_AUDIT_TAMPER_H_

#include <rocksdb/db.h>
#include <rocksdb/options.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "store/audit.h"

namespace psl::store::testing {

// Opens the store at `dir` (which must not be open elsewhere) with every column family and calls
// `edit(db, audit_cf)`; returns false when the DB cannot be opened or the edit fails.
inline bool TamperWithAuditLog(
    const std::filesystem::path& dir,
    const std::function<bool(rocksdb::DB*, rocksdb::ColumnFamilyHandle*)>& edit) {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), dir.string(), &names).ok()) {
    return false;
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  std::size_t audit = names.size();
  for (std::size_t i = 0; i < names.size(); ++i) {
    descriptors.emplace_back(names[i], rocksdb::ColumnFamilyOptions());
    if (names[i] == "audit") {
      audit = i;
    }
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  if (audit == names.size() ||
      !rocksdb::DB::Open(rocksdb::DBOptions(), dir.string(), descriptors, &handles, &raw).ok()) {
    return false;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  const bool ok = edit(db.get(), handles[audit]);
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    db->DestroyColumnFamilyHandle(handle).PermitUncheckedError();
  }
  return db->Close().ok() && ok;
}

// Replaces event `sequence`'s insurer without fixing its hash.
inline bool AlterAuditEvent(const std::filesystem::path& dir, std::uint64_t sequence) {
  return TamperWithAuditLog(dir, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    std::string value;
    if (!db->Get(rocksdb::ReadOptions(), cf, AuditEventKey(sequence), &value).ok()) {
      return false;
    }
    StatusOr<AuditEvent> event = DecodeAuditEvent(value);
    if (!event.ok()) {
      return false;
    }
    event->insurer = event->insurer == "900" ? "901" : "900";
    return db
        ->Put(rocksdb::WriteOptions(), cf, AuditEventKey(sequence), EncodeStoredAuditEvent(*event))
        .ok();
  });
}

inline bool RemoveAuditEvent(const std::filesystem::path& dir, std::uint64_t sequence) {
  return TamperWithAuditLog(dir, [&](rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf) {
    return db->Delete(rocksdb::WriteOptions(), cf, AuditEventKey(sequence)).ok();
  });
}

}  // namespace psl::store::testing

#endif  // PSL_STORE_TESTING_AUDIT_TAMPER_H_
