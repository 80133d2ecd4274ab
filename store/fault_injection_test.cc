// Power cuts, failed syncs and appends, torn writes (DESIGN.md "Store" I1, I4, I5) through
// FaultInjectionFileSystem on the real disk of a temp dir. The seed is printed; rerun one with
// PSL_FAULT_SEED=<seed>.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/rocksdb_store.h"
#include "store/testing/durability_check.h"
#include "store/testing/fault_injection_fs.h"

namespace psl::store::testing {
namespace {

const std::string kKey(32, 'K');
constexpr int kWriterThreads = 4;
constexpr int kCommitsPerThread = 60;
// Appends + syncs before the cut. A commit group costs two, an Open (with its recovery flush) a
// few dozen, so cuts land in recovery as well as under load.
constexpr std::uint64_t kMaxCutOperations = 100;

std::uint64_t Seed() {
  const char* env = std::getenv("PSL_FAULT_SEED");
  std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  std::cout << "PSL_FAULT_SEED=" << seed << "\n";
  ::testing::Test::RecordProperty("seed", std::to_string(seed));
  return seed;
}

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    // The durability model lives in FaultInjectionFileSystem, not in the disk: a tmpfs (no real
    // fsync cost) keeps hundreds of sessions fast; any writable directory would do.
    std::error_code ec;
    std::filesystem::path base =
        std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0
            ? std::filesystem::path("/dev/shm")
            : std::filesystem::temp_directory_path();
    path_ = base / (std::string("psl-fault-") + info->name() + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::filesystem::path path() const { return path_; }

 private:
  std::filesystem::path path_;
};

RocksDbStoreOptions Options(const std::filesystem::path& path,
                            std::shared_ptr<rocksdb::FileSystem> fs, bool sync = true) {
  RocksDbStoreOptions options;
  options.path = path;
  options.payload_key = kKey;
  options.file_system = std::move(fs);
  options.sync = sync;
  // The reserve check is not under test here (and statvfs of a busy CI disk is not hermetic).
  options.free_space_probe = [](const std::filesystem::path&) -> StatusOr<std::uint64_t> {
    return std::uint64_t{1} << 40;
  };
  return options;
}

// Opens `path` read-only through the default file system: the state a restarted machine sees,
// without recovery writing anything (the next faulty session does the recovery, under the cut).
DurabilityReport CheckAfterRestart(const std::filesystem::path& path,
                                   const std::map<std::string, std::string>& acknowledged) {
  RocksDbStoreOptions options = Options(path, nullptr);
  options.read_only = true;
  StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(std::move(options));
  if (!store.ok()) {
    DurabilityReport report;
    report.problems.push_back("reopen failed: " + store.status().ToString());
    return report;
  }
  return CheckDurability(**store, acknowledged);
}

struct PowerCutTotals {
  std::uint64_t acknowledged = 0;
  std::uint64_t lost = 0;
  std::uint64_t opens_cut = 0;  // sessions where the cut hit during Open (recovery)
  std::vector<std::string> problems;
};

// One session: arm a cut after a random number of operations, open (recovery runs under the cut
// too), commit from kWriterThreads threads until refused, close, drop unsynced data, check.
// `created`: some earlier session of this directory opened the store successfully.
void PowerCutSession(const std::filesystem::path& path, bool sync, int session,
                     std::mt19937_64& rng, std::map<std::string, std::string>& acknowledged,
                     bool& created, PowerCutTotals& totals) {
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  fs->CutPowerAfter(std::uniform_int_distribution<std::uint64_t>(0, kMaxCutOperations)(rng));
  std::string retry_of;
  if (!acknowledged.empty()) {
    auto it = acknowledged.begin();
    std::advance(it, std::uniform_int_distribution<std::size_t>(0, acknowledged.size() - 1)(rng));
    retry_of = it->first;
  }
  {
    StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(Options(path, fs, sync));
    if (!store.ok()) {
      ++totals.opens_cut;
    } else {
      created = true;
      std::mutex mu;
      std::map<std::string, std::string> acked_now;
      std::vector<std::thread> writers;
      for (int t = 0; t < kWriterThreads; ++t) {
        writers.emplace_back([&, t] {
          if (t == 0 && !retry_of.empty()) {
            // A client retrying an acknowledged request after the restart gets the original id.
            StatusOr<CommitResult> retry =
                (*store)->Commit(DurabilityMessage("retry-" + std::to_string(session), retry_of));
            if (retry.ok()) {
              std::lock_guard lock(mu);
              if (retry->outcome != CommitOutcome::kDuplicate || retry->id != retry_of) {
                totals.problems.push_back("retry of " + retry_of + " was not a duplicate");
              }
            }
          }
          for (int i = 0; i < kCommitsPerThread; ++i) {
            std::string id =
                "s" + std::to_string(session) + "-t" + std::to_string(t) + "-" + std::to_string(i);
            StatusOr<CommitResult> result = (*store)->Commit(DurabilityMessage(id));
            std::lock_guard lock(mu);
            if (!result.ok()) {
              if (result.status().code() != StatusCode::kUnavailable) {
                totals.problems.push_back("commit failed with " + result.status().ToString());
              }
              return;
            }
            acked_now[id] = id;
          }
        });
      }
      for (std::thread& w : writers) {
        w.join();
      }
      acknowledged.insert(acked_now.begin(), acked_now.end());
      totals.acknowledged += acked_now.size();
    }
  }  // the store is closed before the power comes back
  Status dropped = fs->DropUnsyncedData();
  if (!dropped.ok()) {
    totals.problems.push_back(dropped.ToString());
    return;
  }
  DurabilityReport report = CheckAfterRestart(path, acknowledged);
  if (!created) {
    // The cut hit the very first Open (creation); nothing was ever acknowledged, and a half-made
    // store (no column families yet) is completed by the next read-write Open.
    return;
  }
  for (const std::string& p : report.problems) {
    totals.problems.push_back("session " + std::to_string(session) + ": " + p);
  }
  totals.lost += report.lost.size();
  if (sync && !report.lost.empty()) {
    totals.problems.push_back("session " + std::to_string(session) + " lost " +
                              std::to_string(report.lost.size()) + ", first " +
                              report.lost.front());
  }
  // A lost commit stays lost: forget it so later sessions count only new losses.
  for (const std::string& id : report.lost) {
    acknowledged.erase(id);
  }
}

// Fresh directory every kSessionsPerDir sessions keeps the checks (which read everything) cheap.
constexpr int kSessionsPerDir = 20;

PowerCutTotals RunPowerCuts(int sessions, bool sync, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  PowerCutTotals totals;
  for (int first = 0; first < sessions; first += kSessionsPerDir) {
    TempDir dir;
    std::map<std::string, std::string> acknowledged;
    bool created = false;
    for (int s = first; s < std::min(sessions, first + kSessionsPerDir); ++s) {
      PowerCutSession(dir.path(), sync, s, rng, acknowledged, created, totals);
    }
  }
  return totals;
}

TEST(PowerCutTest, LosesNoAcknowledgedCommitOverTwoHundredCutPoints) {
  const std::uint64_t seed = Seed();
  PowerCutTotals totals = RunPowerCuts(200, /*sync=*/true, seed);
  std::cout << "acknowledged=" << totals.acknowledged << " lost=" << totals.lost
            << " cuts-during-open=" << totals.opens_cut << "\n";
  EXPECT_EQ(totals.lost, 0u) << "seed " << seed;
  EXPECT_TRUE(totals.problems.empty()) << "seed " << seed << ": " << totals.problems.front();
  // The harness must have exercised something: commits and cuts during recovery.
  EXPECT_GT(totals.acknowledged, 200u);
  EXPECT_GT(totals.opens_cut, 0u);
}

TEST(PowerCutTest, DetectsLossesWhenTheStoreDoesNotSync) {
  const std::uint64_t seed = Seed();
  PowerCutTotals totals = RunPowerCuts(40, /*sync=*/false, seed);
  std::cout << "acknowledged=" << totals.acknowledged << " lost=" << totals.lost << "\n";
  // Without fsync the acknowledged commits live only in the page cache: a cut must lose some.
  EXPECT_GT(totals.lost, 0u) << "seed " << seed;
  // Batches stay atomic even unsynced: losses, never half-written messages.
  EXPECT_TRUE(totals.problems.empty()) << "seed " << seed << ": " << totals.problems.front();
}

// --- Failed sync / append: kUnavailable, no acknowledgement ----------------------------------

class FaultTest : public ::testing::Test {
 protected:
  // Commits `count` messages named prefix-N through `store`, all acknowledged.
  void CommitAcknowledged(RocksDbStore& store, const std::string& prefix, int count) {
    for (int i = 0; i < count; ++i) {
      std::string id = prefix + std::to_string(i);
      StatusOr<CommitResult> result = store.Commit(DurabilityMessage(id));
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      acknowledged_[id] = id;
    }
  }
  std::unique_ptr<RocksDbStore> OpenClean() {
    StatusOr<std::unique_ptr<RocksDbStore>> store =
        RocksDbStore::Open(Options(dir_.path(), nullptr));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }

  TempDir dir_;
  std::shared_ptr<FaultInjectionFileSystem> fs_ = std::make_shared<FaultInjectionFileSystem>();
  std::map<std::string, std::string> acknowledged_;
};

// The guarantee for a commit that was NOT acknowledged (kUnavailable): after a restart it is
// either completely there or absent, never half; a client retry with the same idempotency key then
// yields exactly one message (the original id if it survived, else a new commit). It is never
// reported as committed by the failing call, and never after a power cut if its bytes were never
// synced.
TEST_F(FaultTest, AFailedSyncIsUnavailableAndNeverAcknowledged) {
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "ok-", 5);
    fs_->SetFailSync(true);
    StatusOr<CommitResult> failed = (*store)->Commit(DurabilityMessage("unsynced"));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
    EXPECT_FALSE((*store)->WriteHealth().ok());
    fs_->SetFailSync(false);
    // Linux may have dropped the dirty pages after a failed fsync: the store does not pretend the
    // next sync covers them; it keeps refusing until restarted.
    StatusOr<CommitResult> after = (*store)->Commit(DurabilityMessage("after-failure"));
    EXPECT_FALSE(after.ok());
  }
  // No power cut: the unsynced write may be in the page cache and survive.
  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  DurabilityReport report = CheckDurability(*store, acknowledged_);
  EXPECT_TRUE(report.lost.empty());
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  const bool survived = store->Get("unsynced").ok();
  StatusOr<CommitResult> retry = store->Commit(DurabilityMessage("retry-id", "unsynced"));
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  if (survived) {
    EXPECT_EQ(retry->outcome, CommitOutcome::kDuplicate);
    EXPECT_EQ(retry->id, "unsynced");
  } else {
    EXPECT_EQ(retry->outcome, CommitOutcome::kCommitted);
  }
  EXPECT_FALSE(store->Get("after-failure").ok());
}

TEST_F(FaultTest, AFailedSyncFollowedByAPowerCutLeavesNoTraceOfTheUnacknowledgedCommit) {
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "ok-", 5);
    fs_->SetFailSync(true);
    StatusOr<CommitResult> failed = (*store)->Commit(DurabilityMessage("unsynced"));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
    fs_->CutPower();
  }
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  DurabilityReport report = CheckDurability(*store, acknowledged_);
  EXPECT_TRUE(report.lost.empty());
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  EXPECT_EQ(report.visible, 5u);
  EXPECT_EQ(store->Get("unsynced").status().code(), StatusCode::kNotFound);
}

TEST_F(FaultTest, AFailedAppendIsUnavailableAndWritesNothing) {
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "ok-", 5);
    fs_->SetFailAppend(true);
    StatusOr<CommitResult> failed = (*store)->Commit(DurabilityMessage("unwritten"));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
    fs_->SetFailAppend(false);
  }
  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  DurabilityReport report = CheckDurability(*store, acknowledged_);
  EXPECT_TRUE(report.lost.empty());
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  EXPECT_EQ(report.visible, 5u);
  EXPECT_EQ(store->Get("unwritten").status().code(), StatusCode::kNotFound);
  // The store works again after the restart.
  StatusOr<CommitResult> retry = store->Commit(DurabilityMessage("retry-id", "unwritten"));
  ASSERT_TRUE(retry.ok()) << retry.status().ToString();
  EXPECT_EQ(retry->outcome, CommitOutcome::kCommitted);
}

// The store keeps RocksDB's default WAL recovery mode, kPointInTimeRecovery: replay stops at the
// first bad record, so a torn tail is dropped and everything synced before it is kept.
TEST_F(FaultTest, ATornLastWalWriteIsDroppedAndEverySyncedCommitKept) {
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "ok-", 20);
    fs_->TearNextWalAppend();
    StatusOr<CommitResult> torn = (*store)->Commit(DurabilityMessage("torn"));
    ASSERT_FALSE(torn.ok());
    EXPECT_EQ(torn.status().code(), StatusCode::kUnavailable);
  }
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  DurabilityReport report = CheckDurability(*store, acknowledged_);
  EXPECT_TRUE(report.lost.empty());
  EXPECT_TRUE(report.problems.empty()) << report.problems.front();
  EXPECT_EQ(report.visible, 20u);
  EXPECT_EQ(store->Get("torn").status().code(), StatusCode::kNotFound);
  CommitAcknowledged(*store, "after-", 3);
}

// The model itself: bytes count as durable only after Sync, and a file whose creation was not
// made durable by a directory fsync disappears.
TEST(FaultInjectionFileSystemTest, DropsWhatWasNotSyncedAndFilesNotMadeDurable) {
  TempDir dir;
  std::filesystem::create_directories(dir.path());
  auto fs = std::make_shared<FaultInjectionFileSystem>();
  rocksdb::IOOptions io;
  auto write = [&](const std::string& name, bool sync_file, bool sync_dir) {
    std::unique_ptr<rocksdb::FSWritableFile> file;
    ASSERT_TRUE(
        fs->NewWritableFile((dir.path() / name).string(), rocksdb::FileOptions(), &file, nullptr)
            .ok());
    ASSERT_TRUE(file->Append("durable", io, nullptr).ok());
    if (sync_file) {
      ASSERT_TRUE(file->Sync(io, nullptr).ok());
    }
    ASSERT_TRUE(file->Append("-volatile", io, nullptr).ok());
    ASSERT_TRUE(file->RangeSync(0, 16, io, nullptr).ok());
    ASSERT_TRUE(file->Close(io, nullptr).ok());
    if (sync_dir) {
      std::unique_ptr<rocksdb::FSDirectory> d;
      ASSERT_TRUE(fs->NewDirectory(dir.path().string(), io, &d, nullptr).ok());
      ASSERT_TRUE(d->Fsync(io, nullptr).ok());
    }
  };
  write("a", true, true);
  write("b", true, false);
  EXPECT_EQ(fs->sync_calls(), 2u);
  std::unique_ptr<rocksdb::FSWritableFile> after_cut;
  fs->CutPower();
  EXPECT_FALSE(
      fs->NewWritableFile((dir.path() / "c").string(), rocksdb::FileOptions(), &after_cut, nullptr)
          .ok());
  ASSERT_TRUE(fs->DropUnsyncedData().ok());
  EXPECT_EQ(std::filesystem::file_size(dir.path() / "a"), 7u);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "b"));
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "c"));
}

// --- Returns (RecordReturn): the same guarantees as commits -----------------------------------

NewReturn CheckReturn(const std::string& mailbox_key, const std::string& message_id) {
  NewReturn r;
  r.destination = kCheckDestination;
  r.mailbox_key = mailbox_key;
  r.message_id = message_id;
  r.answer.document = "<return>" + mailbox_key + "</return>";
  r.answer.decision = "accepted";
  return r;
}

// Every return in the store (linked to `message_id`, or orphan), by mailbox key; a key seen twice
// is a problem.
std::map<std::string, std::string> StoredReturns(RocksDbStore& store, const std::string& message_id,
                                                 std::vector<std::string>& problems) {
  std::map<std::string, std::string> out;  // mailbox key -> document
  auto add = [&](const StoredAnswer& a) {
    if (!out.emplace(a.mailbox_key, a.document).second) {
      problems.push_back("return " + a.mailbox_key + " stored twice");
    }
  };
  StatusOr<std::vector<StoredAnswer>> answers = store.Answers(message_id);
  if (answers.status().code() == StatusCode::kNotFound) {
    // The message's commit was cut: its returns were all orphans.
  } else if (!answers.ok()) {
    problems.push_back("Answers failed: " + answers.status().ToString());
  } else {
    for (const StoredAnswer& a : *answers) {
      add(a);
    }
  }
  PageRequest page;
  page.limit = 1000;
  for (;;) {
    StatusOr<OrphanReturnPage> orphans = store.OrphanReturns(page);
    if (!orphans.ok()) {
      problems.push_back("OrphanReturns failed: " + orphans.status().ToString());
      break;
    }
    for (const OrphanReturn& o : orphans->returns) {
      add(o.answer);
    }
    if (orphans->next_cursor.empty()) {
      break;
    }
    page.after = orphans->next_cursor;
  }
  // Each stored return has exactly its audit event (same batch), and the chain verifies.
  AuditQuery query;
  query.kind = "return-received";
  PageRequest audit_page;
  audit_page.limit = 10000;
  StatusOr<AuditPage> events = store.Query(query, audit_page);
  if (!events.ok()) {
    problems.push_back("audit query failed: " + events.status().ToString());
  } else if (events->events.size() != out.size()) {
    problems.push_back(std::to_string(events->events.size()) + " return events for " +
                       std::to_string(out.size()) + " returns");
  }
  StatusOr<AuditVerifyReport> verify = store.Verify();
  if (!verify.ok() || !verify->ok) {
    problems.push_back("audit chain does not verify");
  }
  return out;
}

TEST_F(FaultTest, AFailedSyncOfAReturnIsUnavailableAndAfterAPowerCutItRecordsAgain) {
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "ok-", 1);
    ASSERT_EQ(*(*store)->RecordReturn(CheckReturn("hash-ok", "ok-0")), ReturnOutcome::kRecorded);
    fs_->SetFailSync(true);
    StatusOr<ReturnOutcome> failed = (*store)->RecordReturn(CheckReturn("hash-lost", "ok-0"));
    EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
    StatusOr<ReturnOutcome> orphan = (*store)->RecordReturn(CheckReturn("orphan-lost", ""));
    EXPECT_EQ(orphan.status().code(), StatusCode::kUnavailable);
    fs_->CutPower();
  }
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> problems;
  std::map<std::string, std::string> returns = StoredReturns(*store, "ok-0", problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(returns.size(), 1u);
  EXPECT_EQ(returns.count("hash-ok"), 1u);
  // Not a duplicate: the poller did not confirm it, fetches it again and records it now.
  EXPECT_EQ(*store->RecordReturn(CheckReturn("hash-lost", "ok-0")), ReturnOutcome::kRecorded);
  EXPECT_EQ(*store->RecordReturn(CheckReturn("orphan-lost", "")), ReturnOutcome::kRecorded);
  EXPECT_EQ(*store->RecordReturn(CheckReturn("hash-ok", "ok-0")), ReturnOutcome::kDuplicate);
}

TEST_F(FaultTest, AFailedAppendOfAReturnIsUnavailableAndWritesNothing) {
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "ok-", 1);
    const AuditHead head = (*store)->Head();
    fs_->SetFailAppend(true);
    StatusOr<ReturnOutcome> failed = (*store)->RecordReturn(CheckReturn("hash-1", "ok-0"));
    EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
    EXPECT_EQ((*store)->Head().sequence, head.sequence);
    fs_->SetFailAppend(false);
  }
  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  std::vector<std::string> problems;
  EXPECT_TRUE(StoredReturns(*store, "ok-0", problems).empty());
  EXPECT_TRUE(problems.empty()) << problems.front();
  EXPECT_EQ(*store->RecordReturn(CheckReturn("hash-1", "ok-0")), ReturnOutcome::kRecorded);
}

// Power cuts under concurrent pollers recording overlapping returns: every acknowledged return
// (kRecorded or kDuplicate) is there after the restart, exactly once, with its audit event.
TEST(PowerCutTest, LosesNoAcknowledgedReturnAndNeverStoresOneTwice) {
  const std::uint64_t seed = Seed();
  std::mt19937_64 rng(seed);
  TempDir dir;
  std::set<std::string> acknowledged;
  std::vector<std::string> problems;
  bool have_message = false;
  std::uint64_t cuts_in_open = 0;
  for (int session = 0; session < 30 && problems.empty(); ++session) {
    auto fs = std::make_shared<FaultInjectionFileSystem>();
    fs->CutPowerAfter(std::uniform_int_distribution<std::uint64_t>(0, kMaxCutOperations)(rng));
    {
      StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(Options(dir.path(), fs));
      if (!store.ok()) {
        ++cuts_in_open;
      } else {
        if (!have_message) {
          have_message = (*store)->Commit(DurabilityMessage("m")).ok();
        }
        std::mutex mu;
        std::vector<std::thread> pollers;
        for (int t = 0; t < 3; ++t) {
          pollers.emplace_back([&] {
            // Each poller records the same keys (two pollers over one mailbox), linked to m or
            // orphaned, including keys of earlier sessions (an unconfirmed mailbox).
            for (int i = 0; i < 20; ++i) {
              const std::string key =
                  "s" + std::to_string(session - i % 2) + "-" + std::to_string(i / 2);
              StatusOr<ReturnOutcome> result =
                  (*store)->RecordReturn(CheckReturn(key, i % 3 == 0 ? "" : "m"));
              std::lock_guard lock(mu);
              if (!result.ok()) {
                if (result.status().code() != StatusCode::kUnavailable) {
                  problems.push_back("RecordReturn failed with " + result.status().ToString());
                }
                return;
              }
              acknowledged.insert(key);
            }
          });
        }
        for (std::thread& p : pollers) {
          p.join();
        }
      }
    }
    ASSERT_TRUE(fs->DropUnsyncedData().ok());
    RocksDbStoreOptions options = Options(dir.path(), nullptr);
    options.read_only = true;
    StatusOr<std::unique_ptr<RocksDbStore>> reader = RocksDbStore::Open(std::move(options));
    if (!reader.ok()) {
      continue;  // the cut hit the very first Open: nothing was ever acknowledged
    }
    std::map<std::string, std::string> stored = StoredReturns(**reader, "m", problems);
    for (const std::string& key : acknowledged) {
      auto it = stored.find(key);
      if (it == stored.end() || it->second != "<return>" + key + "</return>") {
        problems.push_back("session " + std::to_string(session) + " lost return " + key);
      }
    }
  }
  std::cout << "acknowledged returns=" << acknowledged.size()
            << " cuts-during-open=" << cuts_in_open << "\n";
  EXPECT_TRUE(problems.empty()) << "seed " << seed << ": " << problems.front();
  EXPECT_GT(acknowledged.size(), 20u);
}

// --- Unsynced leases and retries (store.h: LeaseNext and Nack are not synced) ----------------

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;

NewAnswer CheckAnswer() {
  NewAnswer answer;
  answer.document = "<answer/>";
  answer.decision = "accepted";
  return answer;
}

// Leases every entry due at `at` and acknowledges it; returns the ids delivered.
std::set<std::string> DeliverEverything(RocksDbStore& store, TimePoint at,
                                        std::vector<std::string>& problems) {
  std::set<std::string> delivered;
  for (;;) {
    StatusOr<std::optional<Lease>> lease = store.LeaseNext(kCheckDestination, at, minutes(1));
    if (!lease.ok()) {
      problems.push_back("LeaseNext failed: " + lease.status().ToString());
      break;
    }
    if (!lease->has_value()) {
      break;
    }
    Status acked = store.Ack(**lease, CheckAnswer());
    if (!acked.ok()) {
      problems.push_back("Ack of " + (*lease)->message_id + " failed: " + acked.ToString());
      break;
    }
    if (!delivered.insert((*lease)->message_id).second) {
      problems.push_back((*lease)->message_id + " was delivered twice in one drain");
      break;
    }
  }
  return delivered;
}

// A power cut right after leases and a Nack that nothing synced: they are lost as a whole tail.
// The chain on reopen is exactly the one of the last synced write (no gap, no fork: Verify
// passes and new events continue it), and every committed message is still delivered.
TEST_F(FaultTest, ALostTailOfLeasesAndRetriesLeavesTheLastSyncedChainAndRedelivers) {
  const TimePoint now = std::chrono::system_clock::now() + minutes(5);  // all commits due
  AuditHead synced_head;
  std::uint64_t attempts_of_m2 = 0;
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "m", 6);

    fs_->ResetCounters();
    StatusOr<std::optional<Lease>> l0 = (*store)->LeaseNext(kCheckDestination, now, minutes(1));
    StatusOr<std::optional<Lease>> l1 = (*store)->LeaseNext(kCheckDestination, now, minutes(1));
    StatusOr<std::optional<Lease>> l2 = (*store)->LeaseNext(kCheckDestination, now, minutes(1));
    ASSERT_TRUE(l0.ok() && l0->has_value() && l1.ok() && l1->has_value() && l2.ok() &&
                l2->has_value());
    ASSERT_TRUE((*store)->Nack(**l1, now + hours(1), "http-503").ok());
    EXPECT_EQ(fs_->sync_calls(), 0u) << "LeaseNext / Nack synced";
    // The Ack is synced and makes the leases and the Nack before it durable as well.
    ASSERT_TRUE((*store)->Ack(**l0, CheckAnswer()).ok());
    EXPECT_GT(fs_->sync_calls(), 0u);
    synced_head = (*store)->Head();  // nothing unsynced now: no extra sync
    EXPECT_EQ((*store)->commit_stats().wal_syncs, 0u);
    StatusOr<MessageRecord> m2 = (*store)->Get((*l2)->message_id);
    ASSERT_TRUE(m2.ok());
    attempts_of_m2 = m2->deliveries.at(0).attempts;

    // The unsynced tail: l2 retried, three more leases.
    fs_->ResetCounters();
    ASSERT_TRUE((*store)->Nack(**l2, now, "timeout").ok());
    for (int i = 0; i < 3; ++i) {
      StatusOr<std::optional<Lease>> l = (*store)->LeaseNext(kCheckDestination, now, minutes(1));
      ASSERT_TRUE(l.ok() && l->has_value());
    }
    EXPECT_EQ(fs_->sync_calls(), 0u);
    fs_->CutPower();
  }
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());

  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  StatusOr<AuditVerifyReport> verify = store->Verify();
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_TRUE(verify->ok) << verify->problem;
  EXPECT_EQ(store->Head().sequence, synced_head.sequence);
  EXPECT_EQ(store->Head().hash, synced_head.hash);
  EXPECT_EQ(verify->events, synced_head.sequence);
  // m0 stays answered; the durable lease of m2 is still counted, its lost retry is not.
  StatusOr<MessageRecord> m0 = store->Get("m0");
  ASSERT_TRUE(m0.ok());
  EXPECT_EQ(m0->state, MessageState::kAnswered);
  std::vector<std::string> problems;
  std::set<std::string> delivered = DeliverEverything(*store, now + hours(2), problems);
  EXPECT_TRUE(problems.empty()) << problems.front();
  delivered.insert("m0");
  std::set<std::string> committed;
  for (const auto& [id, request] : acknowledged_) {
    committed.insert(id);
  }
  EXPECT_EQ(delivered, committed);
  for (const std::string& id : committed) {
    StatusOr<MessageRecord> record = store->Get(id);
    ASSERT_TRUE(record.ok());
    EXPECT_EQ(record->state, MessageState::kAnswered) << id;
  }
  EXPECT_GT(attempts_of_m2, 0u);
  // The chain continues from the durable head: still one unbroken chain after redelivery.
  StatusOr<AuditVerifyReport> after = store->Verify();
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->ok) << after->problem;
  EXPECT_GT(after->events, synced_head.sequence);
}

// What an auditor reads never includes an event a power cut could take back: audit reads sync
// the pending unsynced writes first.
TEST_F(FaultTest, AnAuditReadMakesTheUnsyncedLeasesDurableBeforeShowingThem) {
  const TimePoint now = std::chrono::system_clock::now() + minutes(5);  // all commits due
  AuditHead shown;
  {
    auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    CommitAcknowledged(**store, "m", 3);
    ASSERT_TRUE((*store)->LeaseNext(kCheckDestination, now, minutes(1)).ok());
    ASSERT_TRUE((*store)->LeaseNext(kCheckDestination, now, minutes(1)).ok());
    StatusOr<AuditPage> page = (*store)->Query(AuditQuery{}, PageRequest{});
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    EXPECT_EQ((*store)->commit_stats().wal_syncs, 1u);
    shown = (*store)->Head();
    EXPECT_EQ(shown.sequence, 5u);  // 3 accepted + 2 attempts
    EXPECT_EQ(page->events.size(), 5u);
    fs_->CutPower();
  }
  ASSERT_TRUE(fs_->DropUnsyncedData().ok());
  auto store = OpenClean();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Head().sequence, shown.sequence);
  EXPECT_EQ(store->Head().hash, shown.hash);
}

// Fsyncs per delivered message: Commit and Ack only (a retried delivery adds none either).
TEST_F(FaultTest, ADeliveredMessageCostsTheSyncsOfItsCommitAndAckOnly) {
  const TimePoint now = std::chrono::system_clock::now() + minutes(5);  // all commits due
  auto store = RocksDbStore::Open(Options(dir_.path(), fs_));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  CommitAcknowledged(**store, "warm", 1);  // creation and recovery syncs out of the count
  std::vector<std::string> problems;
  DeliverEverything(**store, now, problems);
  fs_->ResetCounters();
  const CommitStageStats before = (*store)->commit_stats();
  constexpr int kMessages = 20;
  for (int i = 0; i < kMessages; ++i) {
    ASSERT_TRUE((*store)->Commit(DurabilityMessage("n" + std::to_string(i))).ok());
    StatusOr<std::optional<Lease>> first = (*store)->LeaseNext(kCheckDestination, now, minutes(1));
    ASSERT_TRUE(first.ok() && first->has_value());
    ASSERT_TRUE((*store)->Nack(**first, now, "http-503").ok());  // one retry
    StatusOr<std::optional<Lease>> second = (*store)->LeaseNext(kCheckDestination, now, minutes(1));
    ASSERT_TRUE(second.ok() && second->has_value());
    ASSERT_TRUE((*store)->Ack(**second, CheckAnswer()).ok());
  }
  const CommitStageStats after = (*store)->commit_stats();
  const std::uint64_t synced = after.groups_synced - before.groups_synced;
  std::cout << "per message: batches=" << (after.groups_written - before.groups_written) / 20.0
            << " synced=" << synced / 20.0 << " file syncs=" << fs_->sync_calls() / 20.0 << "\n";
  EXPECT_EQ(after.groups_written - before.groups_written, 5u * kMessages);
  EXPECT_EQ(synced, 2u * kMessages);
  EXPECT_EQ(after.wal_syncs, before.wal_syncs);
  // RocksDB syncs the WAL once per synced write (plus the odd file it creates).
  EXPECT_LT(fs_->sync_calls(), 3u * kMessages);
}

// Power cuts at random points while messages are committed, leased, retried and answered: after
// every restart the audit chain verifies, every acknowledged commit and answer is there, and at
// the end every committed message is delivered. The cuts reach further than in the commit-only
// test: leases and retries append without syncing.
TEST(PowerCutTest, UnsyncedLeasesAndRetriesLoseNoCommitNorAnswerOverSixtyCutPoints) {
  const std::uint64_t seed = Seed();
  std::mt19937_64 rng(seed);
  const TimePoint now = std::chrono::system_clock::now() + minutes(5);
  TempDir dir;
  std::set<std::string> committed;
  std::set<std::string> answered;
  std::vector<std::string> problems;
  std::uint64_t leases = 0;
  for (int session = 0; session < 60 && problems.empty(); ++session) {
    auto fs = std::make_shared<FaultInjectionFileSystem>();
    fs->CutPowerAfter(std::uniform_int_distribution<std::uint64_t>(0, 3 * kMaxCutOperations)(rng));
    const std::uint64_t choice_seed = rng();
    {
      StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(Options(dir.path(), fs));
      if (store.ok()) {
        std::mutex mu;
        std::thread committer([&] {
          for (int i = 0; i < 30; ++i) {
            const std::string id = "s" + std::to_string(session) + "-" + std::to_string(i);
            StatusOr<CommitResult> result = (*store)->Commit(DurabilityMessage(id));
            std::lock_guard lock(mu);
            if (!result.ok()) {
              return;
            }
            committed.insert(id);
          }
        });
        std::thread deliverer([&] {
          std::mt19937_64 choices(choice_seed);
          for (int i = 0; i < 60; ++i) {
            StatusOr<std::optional<Lease>> lease =
                (*store)->LeaseNext(kCheckDestination, now, minutes(1));
            if (!lease.ok()) {
              return;
            }
            if (!lease->has_value()) {
              continue;
            }
            const int pick = std::uniform_int_distribution<int>(0, 9)(choices);
            std::lock_guard lock(mu);
            ++leases;
            if (pick < 5) {
              if (!(*store)->Ack(**lease, CheckAnswer()).ok()) {
                return;
              }
              answered.insert((*lease)->message_id);
            } else if (pick < 8) {
              if (!(*store)->Nack(**lease, now, "http-503").ok()) {
                return;
              }
            }  // else the lease is left to expire
          }
        });
        committer.join();
        deliverer.join();
      }
    }
    ASSERT_TRUE(fs->DropUnsyncedData().ok());
    RocksDbStoreOptions options = Options(dir.path(), nullptr);
    options.read_only = true;
    StatusOr<std::unique_ptr<RocksDbStore>> reader = RocksDbStore::Open(std::move(options));
    if (!reader.ok()) {
      continue;  // the cut hit the very first Open: nothing was ever acknowledged
    }
    const std::string where = "session " + std::to_string(session) + ": ";
    StatusOr<AuditVerifyReport> verify = (*reader)->Verify();
    if (!verify.ok() || !verify->ok || verify->events != (*reader)->Head().sequence) {
      problems.push_back(where + "audit chain does not verify: " +
                         (verify.ok() ? verify->problem : verify.status().ToString()));
    }
    for (const std::string& id : committed) {
      StatusOr<MessageRecord> record = (*reader)->Get(id);
      if (!record.ok()) {
        problems.push_back(where + "lost commit " + id);
      } else if (answered.count(id) != 0 && record->state != MessageState::kAnswered) {
        problems.push_back(where + "lost the answer of " + id);
      }
    }
  }
  {
    RocksDbStoreOptions options = Options(dir.path(), nullptr);
    StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(std::move(options));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    DeliverEverything(**store, now + hours(10), problems);
    for (const std::string& id : committed) {
      StatusOr<MessageRecord> record = (*store)->Get(id);
      if (!record.ok() || record->state != MessageState::kAnswered) {
        problems.push_back("committed " + id + " was never delivered");
      }
    }
    StatusOr<AuditVerifyReport> verify = (*store)->Verify();
    EXPECT_TRUE(verify.ok() && verify->ok);
  }
  std::cout << "committed=" << committed.size() << " answered=" << answered.size()
            << " leases=" << leases << "\n";
  EXPECT_TRUE(problems.empty()) << "seed " << seed << ": " << problems.front();
  EXPECT_GT(committed.size(), 100u);
  EXPECT_GT(answered.size(), 20u);
}

}  // namespace
}  // namespace psl::store::testing
