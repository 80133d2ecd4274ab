// FaultInjectionFileSystem: a rocksdb::FileSystemWrapper over the real disk that remembers, per
// file, how many bytes were made durable, so a test can simulate a power cut by throwing away what
// was never synced (DESIGN.md "Store" I4, STYLE.md §7).
//
// Durability model (what Linux + ext4 guarantee, and what RocksDB 7.8 relies on):
// - Append / PositionedAppend write to the real file (the page cache): NOT durable.
// - FSWritableFile::Sync and ::Fsync make every byte written so far durable.
// - RangeSync (sync_file_range) and Close do NOT make anything durable: RocksDB uses RangeSync
//   only as a write-back hint (bytes_per_sync) and always calls Sync/Fsync before it relies on a
//   file (WAL with WriteOptions::sync, SST at the end of a flush, MANIFEST after each edit).
// - A file created by NewWritableFile is only known to survive once its directory was fsynced
//   (FSDirectory::Fsync / FsyncWithDirOptions). With drop_unsynced_new_files, DropUnsyncedData
//   deletes the files whose creation was never made durable that way.
// - Renames and deletes are taken as durable when they return (not modelled further).
//
// A power cut: from the moment of the cut (CutPower, or automatically after N more mutating
// operations with CutPowerAfter) every Append / Sync / create / rename / delete is refused with
// IOStatus::IOError and nothing more reaches the disk. After the DB using this file system is
// closed, DropUnsyncedData truncates every tracked file to its synced length (on the real disk),
// so reopening the same directory through the default file system sees what a machine would see
// after the power came back.
//
// Thread-safety: every method is thread-safe (one mutex). Ownership: wraps `target` (shared).
// Counters (sync_calls etc.) also make it useful in pass-through mode for benchmarks.
#ifndef PSL_STORE_TESTING_FAULT_INJECTION_FS_H_
#define PSL_STORE_TESTING_FAULT_INJECTION_FS_H_

#include <rocksdb/file_system.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/status.h"

namespace psl::store::testing {

struct FaultInjectionOptions {
  // Model directory fsyncs: files created but not made durable by a directory fsync are deleted by
  // DropUnsyncedData.
  bool drop_unsynced_new_files = true;
};

class FaultInjectionFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectionFileSystem(
      std::shared_ptr<rocksdb::FileSystem> target = rocksdb::FileSystem::Default(),
      FaultInjectionOptions options = {});

  const char* Name() const override { return "PslFaultInjectionFileSystem"; }

  // --- Faults -----------------------------------------------------------------------------------
  // From now on every mutating call fails (power is off).
  void CutPower();
  // The power goes off after `operations` more mutating calls (Append, Sync, Fsync); the
  // operation that reaches the count is itself refused. 0 cuts at once.
  void CutPowerAfter(std::uint64_t operations);
  bool power_on() const;
  // Every Sync / Fsync of a file fails (IOError) while set; nothing is made durable.
  void SetFailSync(bool fail);
  // Every Append fails (IOError) while set; nothing is written.
  void SetFailAppend(bool fail);
  // The next Append to a WAL file (*.log) writes only the first half of its bytes, those bytes
  // reach the platter (a torn sector write during the power loss), the call fails and the power
  // is cut.
  void TearNextWalAppend();

  // Truncates every tracked file to its synced length and (if modelled) deletes files whose
  // creation was never made durable. Call after the DB was closed. Then forgets all state and
  // turns the power back on, with every fault switch cleared. Errors: kInternal (a file could not
  // be truncated or deleted).
  Status DropUnsyncedData();

  // --- Counters ---------------------------------------------------------------------------------
  std::uint64_t sync_calls() const { return sync_calls_.load(); }       // file Sync + Fsync
  std::uint64_t dir_fsync_calls() const { return dir_fsyncs_.load(); }  // directory fsyncs
  std::uint64_t append_calls() const { return append_calls_.load(); }
  void ResetCounters();

  // --- FileSystem overrides (RocksDB calls these) ----------------------------------------------
  rocksdb::IOStatus NewWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReopenWritableFile(const std::string& fname, const rocksdb::FileOptions& opts,
                                       std::unique_ptr<rocksdb::FSWritableFile>* result,
                                       rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus ReuseWritableFile(const std::string& fname, const std::string& old_fname,
                                      const rocksdb::FileOptions& opts,
                                      std::unique_ptr<rocksdb::FSWritableFile>* result,
                                      rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io_opts,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus DeleteFile(const std::string& fname, const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;
  rocksdb::IOStatus RenameFile(const std::string& src, const std::string& target,
                               const rocksdb::IOOptions& options,
                               rocksdb::IODebugContext* dbg) override;

  // Called by the wrapped files and directories.
  rocksdb::IOStatus OnAppend(const std::string& fname, rocksdb::FSWritableFile& file,
                             const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg);
  rocksdb::IOStatus OnSync(const std::string& fname, bool full_fsync, rocksdb::FSWritableFile& file,
                           const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg);
  void OnTruncate(const std::string& fname, std::uint64_t size);
  rocksdb::IOStatus OnDirFsync(const std::string& dir);

 private:
  struct FileState {
    std::uint64_t size = 0;    // bytes written through us (plus what existed at open)
    std::uint64_t synced = 0;  // bytes made durable
    bool creation_durable = true;
  };

  // Counts one mutating operation; false when the power is (now) off. Requires mu_.
  bool ConsumeOperationLocked();
  rocksdb::IOStatus WrapNew(const std::string& fname, bool created, std::uint64_t existing,
                            std::unique_ptr<rocksdb::FSWritableFile>* result);

  const FaultInjectionOptions options_;
  mutable std::mutex mu_;
  std::map<std::string, FileState> files_;  // by normalised path
  bool power_on_ = true;
  std::uint64_t operations_left_ = UINT64_MAX;  // until the automatic cut
  bool fail_sync_ = false;
  bool fail_append_ = false;
  bool tear_next_wal_append_ = false;

  std::atomic<std::uint64_t> sync_calls_{0};
  std::atomic<std::uint64_t> dir_fsyncs_{0};
  std::atomic<std::uint64_t> append_calls_{0};
};

}  // namespace psl::store::testing

#endif  // PSL_STORE_TESTING_FAULT_INJECTION_FS_H_
