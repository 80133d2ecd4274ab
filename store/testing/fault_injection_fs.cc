#include "store/testing/fault_injection_fs.h"

#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

namespace psl::store::testing {
namespace {

// RocksDB names a directory with or without a trailing slash; files by dir + "/" + name.
std::string Normalise(const std::string& path) {
  std::string normal = std::filesystem::path(path).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') {
    normal.pop_back();
  }
  return normal;
}

bool IsWal(const std::string& path) {
  return path.size() > 4 && path.compare(path.size() - 4, 4, ".log") == 0;
}

rocksdb::IOStatus PowerOff() {
  return rocksdb::IOStatus::IOError("fault injection: power is off");
}

// Forwards to the real file, reporting every write and sync to the file system first.
class FaultInjectionWritableFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FaultInjectionWritableFile(std::unique_ptr<rocksdb::FSWritableFile> target, std::string fname,
                             FaultInjectionFileSystem* fs)
      : FSWritableFileOwnerWrapper(std::move(target)), fname_(std::move(fname)), fs_(fs) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    return fs_->OnAppend(fname_, *target(), data, options, dbg);
  }
  // The wrapper would forward this overload straight to the target, past OnAppend.
  rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& /*info*/,
                           rocksdb::IODebugContext* dbg) override {
    return fs_->OnAppend(fname_, *target(), data, options, dbg);
  }
  // Buffered RocksDB never calls PositionedAppend; refusing it keeps the model honest.
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                     rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("fault injection: PositionedAppend");
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                     const rocksdb::DataVerificationInfo&,
                                     rocksdb::IODebugContext*) override {
    return rocksdb::IOStatus::NotSupported("fault injection: PositionedAppend");
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options, rocksdb::IODebugContext* dbg) override {
    return fs_->OnSync(fname_, false, *target(), options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return fs_->OnSync(fname_, true, *target(), options, dbg);
  }
  // sync_file_range is a write-back hint, not durability: forwarded, not counted as synced.
  rocksdb::IOStatus RangeSync(uint64_t offset, uint64_t nbytes, const rocksdb::IOOptions& options,
                              rocksdb::IODebugContext* dbg) override {
    if (!fs_->power_on()) {
      return PowerOff();
    }
    return target()->RangeSync(offset, nbytes, options, dbg);
  }
  rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& options,
                             rocksdb::IODebugContext* dbg) override {
    if (!fs_->power_on()) {
      return PowerOff();
    }
    rocksdb::IOStatus s = target()->Truncate(size, options, dbg);
    if (s.ok()) {
      fs_->OnTruncate(fname_, size);
    }
    return s;
  }

 private:
  std::string fname_;
  FaultInjectionFileSystem* fs_;
};

class FaultInjectionDirectory final : public rocksdb::FSDirectory {
 public:
  FaultInjectionDirectory(std::unique_ptr<rocksdb::FSDirectory> target, std::string name,
                          FaultInjectionFileSystem* fs)
      : target_(std::move(target)), name_(std::move(name)), fs_(fs) {}

  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    rocksdb::IOStatus s = fs_->OnDirFsync(name_);
    return s.ok() ? target_->Fsync(options, dbg) : s;
  }
  rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& options,
                                        rocksdb::IODebugContext* dbg,
                                        const rocksdb::DirFsyncOptions& dir_options) override {
    rocksdb::IOStatus s = fs_->OnDirFsync(name_);
    return s.ok() ? target_->FsyncWithDirOptions(options, dbg, dir_options) : s;
  }
  rocksdb::IOStatus Close(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    return target_->Close(options, dbg);
  }
  size_t GetUniqueId(char* id, size_t max_size) const override {
    return target_->GetUniqueId(id, max_size);
  }

 private:
  std::unique_ptr<rocksdb::FSDirectory> target_;
  std::string name_;
  FaultInjectionFileSystem* fs_;
};

}  // namespace

FaultInjectionFileSystem::FaultInjectionFileSystem(std::shared_ptr<rocksdb::FileSystem> target,
                                                   FaultInjectionOptions options)
    : rocksdb::FileSystemWrapper(target), options_(options) {}

void FaultInjectionFileSystem::CutPower() {
  std::lock_guard lock(mu_);
  power_on_ = false;
}

void FaultInjectionFileSystem::CutPowerAfter(std::uint64_t operations) {
  std::lock_guard lock(mu_);
  operations_left_ = operations;
  if (operations == 0) {
    power_on_ = false;
  }
}

bool FaultInjectionFileSystem::power_on() const {
  std::lock_guard lock(mu_);
  return power_on_;
}

void FaultInjectionFileSystem::SetFailSync(bool fail) {
  std::lock_guard lock(mu_);
  fail_sync_ = fail;
}

void FaultInjectionFileSystem::SetFailAppend(bool fail) {
  std::lock_guard lock(mu_);
  fail_append_ = fail;
}

void FaultInjectionFileSystem::TearNextWalAppend() {
  std::lock_guard lock(mu_);
  tear_next_wal_append_ = true;
}

void FaultInjectionFileSystem::ResetCounters() {
  sync_calls_ = 0;
  dir_fsyncs_ = 0;
  append_calls_ = 0;
}

bool FaultInjectionFileSystem::ConsumeOperationLocked() {
  if (!power_on_) {
    return false;
  }
  if (operations_left_ != UINT64_MAX) {
    if (operations_left_ == 0) {
      power_on_ = false;
      return false;
    }
    --operations_left_;
  }
  return true;
}

rocksdb::IOStatus FaultInjectionFileSystem::WrapNew(
    const std::string& fname, bool created, std::uint64_t existing,
    std::unique_ptr<rocksdb::FSWritableFile>* result) {
  {
    std::lock_guard lock(mu_);
    FileState& state = files_[Normalise(fname)];
    state.size = existing;
    state.synced = existing;
    state.creation_durable = !created || !options_.drop_unsynced_new_files;
  }
  *result = std::make_unique<FaultInjectionWritableFile>(std::move(*result), fname, this);
  return rocksdb::IOStatus::OK();
}

rocksdb::IOStatus FaultInjectionFileSystem::NewWritableFile(
    const std::string& fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (!power_on()) {
    return PowerOff();
  }
  // An existing file is truncated by the open: its old content is gone either way.
  bool existed = target()->FileExists(fname, rocksdb::IOOptions(), dbg).ok();
  rocksdb::IOStatus s = target()->NewWritableFile(fname, opts, result, dbg);
  if (!s.ok()) {
    return s;
  }
  return WrapNew(fname, !existed, 0, result);
}

rocksdb::IOStatus FaultInjectionFileSystem::ReopenWritableFile(
    const std::string& fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (!power_on()) {
    return PowerOff();
  }
  std::uint64_t existing = 0;
  bool existed = target()->GetFileSize(fname, rocksdb::IOOptions(), &existing, dbg).ok();
  rocksdb::IOStatus s = target()->ReopenWritableFile(fname, opts, result, dbg);
  if (!s.ok()) {
    return s;
  }
  return WrapNew(fname, !existed, existing, result);
}

rocksdb::IOStatus FaultInjectionFileSystem::ReuseWritableFile(
    const std::string& fname, const std::string& old_fname, const rocksdb::FileOptions& opts,
    std::unique_ptr<rocksdb::FSWritableFile>* result, rocksdb::IODebugContext* dbg) {
  if (!power_on()) {
    return PowerOff();
  }
  rocksdb::IOStatus s = target()->ReuseWritableFile(fname, old_fname, opts, result, dbg);
  if (!s.ok()) {
    return s;
  }
  {
    std::lock_guard lock(mu_);
    files_.erase(Normalise(old_fname));
  }
  // The rename inside is not made durable until a directory fsync.
  return WrapNew(fname, true, 0, result);
}

rocksdb::IOStatus FaultInjectionFileSystem::NewDirectory(
    const std::string& name, const rocksdb::IOOptions& io_opts,
    std::unique_ptr<rocksdb::FSDirectory>* result, rocksdb::IODebugContext* dbg) {
  std::unique_ptr<rocksdb::FSDirectory> dir;
  rocksdb::IOStatus s = target()->NewDirectory(name, io_opts, &dir, dbg);
  if (!s.ok()) {
    return s;
  }
  *result = std::make_unique<FaultInjectionDirectory>(std::move(dir), Normalise(name), this);
  return s;
}

rocksdb::IOStatus FaultInjectionFileSystem::DeleteFile(const std::string& fname,
                                                       const rocksdb::IOOptions& options,
                                                       rocksdb::IODebugContext* dbg) {
  if (!power_on()) {
    return PowerOff();
  }
  rocksdb::IOStatus s = target()->DeleteFile(fname, options, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    files_.erase(Normalise(fname));
  }
  return s;
}

rocksdb::IOStatus FaultInjectionFileSystem::RenameFile(const std::string& src,
                                                       const std::string& target_name,
                                                       const rocksdb::IOOptions& options,
                                                       rocksdb::IODebugContext* dbg) {
  if (!power_on()) {
    return PowerOff();
  }
  rocksdb::IOStatus s = target()->RenameFile(src, target_name, options, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    auto it = files_.find(Normalise(src));
    if (it != files_.end()) {
      FileState state = it->second;
      files_.erase(it);
      files_[Normalise(target_name)] = state;
    } else {
      files_.erase(Normalise(target_name));
    }
  }
  return s;
}

rocksdb::IOStatus FaultInjectionFileSystem::OnAppend(const std::string& fname,
                                                     rocksdb::FSWritableFile& file,
                                                     const rocksdb::Slice& data,
                                                     const rocksdb::IOOptions& options,
                                                     rocksdb::IODebugContext* dbg) {
  ++append_calls_;
  std::lock_guard lock(mu_);
  if (!ConsumeOperationLocked()) {
    return PowerOff();
  }
  if (fail_append_) {
    return rocksdb::IOStatus::IOError("fault injection: append refused");
  }
  FileState& state = files_[Normalise(fname)];
  if (tear_next_wal_append_ && IsWal(fname) && data.size() > 1) {
    tear_next_wal_append_ = false;
    rocksdb::Slice half(data.data(), data.size() / 2);
    rocksdb::IOStatus s = file.Append(half, options, dbg);
    if (s.ok()) {
      s = file.Sync(options, dbg);  // the torn bytes are on the platter
    }
    if (s.ok()) {
      state.size += half.size();
      state.synced = state.size;
    }
    power_on_ = false;
    return s.ok() ? rocksdb::IOStatus::IOError("fault injection: torn write, power lost") : s;
  }
  // The write itself runs under mu_ so size accounting matches the file's byte order.
  rocksdb::IOStatus s = file.Append(data, options, dbg);
  if (s.ok()) {
    state.size += data.size();
  }
  return s;
}

rocksdb::IOStatus FaultInjectionFileSystem::OnSync(const std::string& fname, bool full_fsync,
                                                   rocksdb::FSWritableFile& file,
                                                   const rocksdb::IOOptions& options,
                                                   rocksdb::IODebugContext* dbg) {
  ++sync_calls_;
  std::uint64_t size = 0;
  {
    std::lock_guard lock(mu_);
    if (!ConsumeOperationLocked()) {
      return PowerOff();
    }
    if (fail_sync_) {
      return rocksdb::IOStatus::IOError("fault injection: sync refused");
    }
    size = files_[Normalise(fname)].size;
  }
  // Outside mu_: concurrent syncs of different files (and appends) proceed as on a real disk.
  // Only the bytes written before the sync started are claimed durable. A sync that started before
  // the cut and returned OK is durable even if the power went off meanwhile (RocksDB's info LOG
  // writes concurrently and may consume the last operation): its caller was told so.
  rocksdb::IOStatus s = full_fsync ? file.Fsync(options, dbg) : file.Sync(options, dbg);
  if (s.ok()) {
    std::lock_guard lock(mu_);
    auto it = files_.find(Normalise(fname));
    if (it != files_.end() && it->second.synced < size) {
      it->second.synced = size;
    }
  }
  return s;
}

void FaultInjectionFileSystem::OnTruncate(const std::string& fname, std::uint64_t size) {
  std::lock_guard lock(mu_);
  FileState& state = files_[Normalise(fname)];
  state.size = size;
  if (state.synced > size) {
    state.synced = size;
  }
}

rocksdb::IOStatus FaultInjectionFileSystem::OnDirFsync(const std::string& dir) {
  ++dir_fsyncs_;
  std::lock_guard lock(mu_);
  if (!power_on_) {
    return PowerOff();
  }
  for (auto& [path, state] : files_) {
    if (std::filesystem::path(path).parent_path().string() == dir) {
      state.creation_durable = true;
    }
  }
  return rocksdb::IOStatus::OK();
}

Status FaultInjectionFileSystem::DropUnsyncedData() {
  std::lock_guard lock(mu_);
  for (const auto& [path, state] : files_) {
    std::error_code ec;
    if (!state.creation_durable) {
      std::filesystem::remove(path, ec);
    } else if (std::filesystem::exists(path, ec) &&
               std::filesystem::file_size(path, ec) > state.synced) {
      std::filesystem::resize_file(path, state.synced, ec);
    }
    if (ec) {
      return Status::Internal("fault injection: cannot drop unsynced data of " + path + ": " +
                              ec.message());
    }
  }
  files_.clear();
  power_on_ = true;
  operations_left_ = UINT64_MAX;
  fail_sync_ = false;
  fail_append_ = false;
  tear_next_wal_append_ = false;
  return Status::Ok();
}

}  // namespace psl::store::testing
