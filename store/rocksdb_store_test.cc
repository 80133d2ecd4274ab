#include "store/rocksdb_store.h"

#include <gtest/gtest.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <rocksdb/db.h>
#include <rocksdb/file_system.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <thread>

#include <openssl/x509.h>

#include "base/testing/fake_clock.h"
#include "store/testing/store_behaviour.h"

namespace psl::store::testing {
namespace {

using std::chrono::hours;
using std::chrono::seconds;

const std::string kKey(32, 'K');

class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("psl-store-") + info->test_suite_name() + "-" + info->name() +
                       "-" + std::to_string(::getpid());
    for (char& c : name) {
      if (c == '/') {
        c = '_';
      }
    }
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

class RocksDbStoreUnderTest final : public StoreUnderTest {
 public:
  RocksDbStoreUnderTest(const Clock* clock, std::chrono::milliseconds retention) {
    RocksDbStoreOptions options;
    options.path = dir_.path();
    options.payload_key = kKey;
    options.clock = clock;
    options.delivered_retention = retention;
    options.free_space_probe = [this](const std::filesystem::path&) -> StatusOr<std::uint64_t> {
      return refuse_ ? std::uint64_t{0} : std::uint64_t{1} << 40;
    };
    auto store = RocksDbStore::Open(std::move(options));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    if (store.ok()) {
      store_ = std::move(store).value();
    }
  }
  DurableQueue& queue() override { return *store_; }
  AuditLog& audit() override { return *store_; }
  void RefuseNewWork(bool refuse) override { refuse_ = refuse; }

 private:
  TempDir dir_;
  std::atomic<bool> refuse_{false};
  std::unique_ptr<RocksDbStore> store_;
};

INSTANTIATE_TEST_SUITE_P(
    RocksDb, StoreBehaviourTest,
    ::testing::Values(StoreFactory([](const Clock* clock, std::chrono::milliseconds retention) {
      return std::unique_ptr<StoreUnderTest>(new RocksDbStoreUnderTest(clock, retention));
    })));

NewMessage Message(std::string id, std::string key = "", std::string payload = "<signed/>") {
  NewMessage m;
  m.id = std::move(id);
  m.practice_nihii = "19012345001";
  m.flow_kind = "claim";
  m.operation = "invoice";
  m.destinations = {"100"};
  m.idempotency_key = std::move(key);
  m.body_sha256 = "body";
  m.payload = std::move(payload);
  return m;
}

// A self-signed P-256 identity for checkpoint signatures.
SigningIdentity TestIdentity() {
  SigningIdentity identity;
  identity.key.reset(EVP_EC_gen("P-256"));
  identity.certificate.reset(X509_new());
  X509* cert = identity.certificate.get();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600L * 24 * 3650);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600L * 24 * 3650);
  X509_set_pubkey(cert, identity.key.get());
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("passerelle test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509_sign(cert, identity.key.get(), EVP_sha256());
  return identity;
}

class RocksDbStoreTest : public ::testing::Test {
 protected:
  RocksDbStoreTest() { clock_.SetUtc(2026, 1, 10, 12, 0); }

  RocksDbStoreOptions Options() {
    RocksDbStoreOptions options;
    options.path = dir_.path();
    options.payload_key = kKey;
    options.clock = &clock_;
    options.free_space_probe = [this](const std::filesystem::path&) -> StatusOr<std::uint64_t> {
      return free_bytes_.load();
    };
    options.disk_reserve_bytes = 1000;
    return options;
  }

  std::unique_ptr<RocksDbStore> MustOpen(RocksDbStoreOptions options) {
    auto store = RocksDbStore::Open(std::move(options));
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    return store.ok() ? std::move(store).value() : nullptr;
  }
  std::unique_ptr<RocksDbStore> MustOpen() { return MustOpen(Options()); }

  TempDir dir_;
  psl::testing::FakeClock clock_;
  std::atomic<std::uint64_t> free_bytes_{std::uint64_t{1} << 40};
};

TEST_F(RocksDbStoreTest, ReopenRestoresMessagesAndTheAuditHead) {
  AuditHead head;
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->Commit(Message("m1", "k1")).ok());
    auto lease = store->LeaseNext("100", clock_.Now(), seconds(30));
    ASSERT_TRUE(lease.ok() && lease->has_value());
    ASSERT_TRUE(store->Nack(**lease, clock_.Now() + seconds(5), "timeout").ok());
    head = store->Head();
    EXPECT_EQ(head.sequence, 3u);
  }
  auto store = MustOpen();
  EXPECT_EQ(store->Head().sequence, head.sequence);
  EXPECT_EQ(store->Head().hash, head.hash);
  EXPECT_EQ(store->Get("m1")->state, MessageState::kRetrying);
  auto duplicate = store->Commit(Message("m9", "k1"));
  ASSERT_TRUE(duplicate.ok());
  EXPECT_EQ(duplicate->id, "m1");
  ASSERT_TRUE(store->Commit(Message("m2")).ok());
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->events, 4u);
}

TEST_F(RocksDbStoreTest, AWrongKeyFailsAtOpenWithAClearError) {
  { MustOpen(); }
  RocksDbStoreOptions options = Options();
  options.payload_key = std::string(32, 'W');
  auto store = RocksDbStore::Open(std::move(options));
  ASSERT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(store.status().message().find("does not match"), std::string::npos);
}

TEST_F(RocksDbStoreTest, AMissingKeyFailsAtOpen) {
  RocksDbStoreOptions options = Options();
  options.payload_key.clear();
  EXPECT_EQ(RocksDbStore::Open(std::move(options)).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(RocksDbStoreTest, PayloadsAndAnswersAreNotPlaintextOnDisk) {
  const std::string marker = "PLAINTEXT-MARKER-4711";
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->Commit(Message("visible-id-0001", "", "<p>" + marker + "</p>")).ok());
    auto lease = store->LeaseNext("100", clock_.Now(), seconds(30));
    ASSERT_TRUE(lease.ok() && lease->has_value());
    EXPECT_EQ((*lease)->payload, "<p>" + marker + "</p>");
    ASSERT_TRUE(store->Ack(**lease, NewAnswer{"<a>" + marker + "</a>", "accepted", {}}).ok());
  }
  bool id_seen = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(marker), std::string::npos) << entry.path();
    // Control: the grep does see the stored records (the WAL or the SST files).
    if (bytes.find("visible-id-0001") != std::string::npos) {
      id_seen = true;
    }
  }
  EXPECT_TRUE(id_seen);
}

TEST_F(RocksDbStoreTest, BelowTheDiskReserveNewWorkIsRefusedAndRecoversWhenSpaceReturns) {
  auto store = MustOpen();
  ASSERT_TRUE(store->Commit(Message("m1")).ok());
  free_bytes_ = 999;
  auto refused = store->Commit(Message("m2"));
  ASSERT_EQ(refused.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(refused.status().message().find("reserve"), std::string::npos);
  // Draining continues: queue transitions are small and free space.
  auto lease = store->LeaseNext("100", clock_.Now(), seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  ASSERT_TRUE(store->Ack(**lease, NewAnswer{"a", "accepted", {}}).ok());
  free_bytes_ = 1000;
  ASSERT_TRUE(store->Commit(Message("m2")).ok());
  EXPECT_TRUE(store->Get("m1").ok());
  EXPECT_TRUE(store->Get("m2").ok());
  auto report = store->Verify();
  EXPECT_TRUE(report.ok() && report->ok);
}

TEST_F(RocksDbStoreTest, AFailingFreeSpaceProbeRefusesNewWork) {
  RocksDbStoreOptions options = Options();
  options.free_space_probe = [](const std::filesystem::path&) -> StatusOr<std::uint64_t> {
    return Status::Unavailable("statvfs failed");
  };
  auto store = MustOpen(std::move(options));
  EXPECT_EQ(store->Commit(Message("m1")).status().code(), StatusCode::kUnavailable);
}

TEST_F(RocksDbStoreTest, IdempotencyIsDecidedInsideOneGroup) {
  // The first commit's leader blocks in the free-space probe until three more callers queue
  // behind it; they then form the next group together.
  std::atomic<bool> release{false};
  std::atomic<int> probes{0};
  RocksDbStoreOptions options = Options();
  options.free_space_probe = [&](const std::filesystem::path&) -> StatusOr<std::uint64_t> {
    if (probes++ == 0) {
      while (!release) {
        std::this_thread::yield();
      }
    }
    return std::uint64_t{1} << 40;
  };
  auto store = MustOpen(std::move(options));
  StatusOr<CommitResult> first = Status::Internal("not run");
  StatusOr<CommitResult> a = Status::Internal("not run");
  StatusOr<CommitResult> b = Status::Internal("not run");
  StatusOr<CommitResult> c = Status::Internal("not run");
  std::thread leader([&] { first = store->Commit(Message("first")); });
  while (store->pending_writers() < 1) {
    std::this_thread::yield();
  }
  NewMessage other_body = Message("c", "same-key");
  other_body.body_sha256 = "another body";
  std::thread ta([&] { a = store->Commit(Message("a", "same-key")); });
  while (store->pending_writers() < 2) {
    std::this_thread::yield();
  }
  std::thread tb([&] { b = store->Commit(Message("b", "same-key")); });
  while (store->pending_writers() < 3) {
    std::this_thread::yield();
  }
  std::thread tc([&] { c = store->Commit(other_body); });
  while (store->pending_writers() < 4) {
    std::this_thread::yield();
  }
  release = true;
  for (std::thread* t : {&leader, &ta, &tb, &tc}) {
    t->join();
  }

  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->outcome, CommitOutcome::kCommitted);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->outcome, CommitOutcome::kDuplicate);
  EXPECT_EQ(b->id, "a");
  EXPECT_EQ(c.status().code(), StatusCode::kConflict);
  CommitStageStats stats = store->commit_stats();
  EXPECT_EQ(stats.groups_written, 2u);
  EXPECT_EQ(stats.operations, 4u);
  EXPECT_EQ(store->Head().sequence, 2u);
}

TEST_F(RocksDbStoreTest, ConcurrentCommitsAreAllPresentAfterReopenWithTheChainIntact) {
  constexpr int kThreads = 16;
  constexpr int kPerThread = 25;
  std::set<std::string> acknowledged;
  std::mutex mu;
  {
    auto store = MustOpen();
    std::vector<std::thread> threads;
    threads.reserve(kThreads);
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
          auto result = store->Commit(Message(id, id));
          if (result.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            acknowledged.insert(result->id);
          }
        }
      });
    }
    for (std::thread& thread : threads) {
      thread.join();
    }
    CommitStageStats stats = store->commit_stats();
    EXPECT_EQ(stats.operations, static_cast<std::uint64_t>(kThreads * kPerThread));
    std::cout << "[ info ] " << stats.operations << " commits in " << stats.groups_written
              << " synced groups\n";
  }
  EXPECT_EQ(acknowledged.size(), static_cast<std::size_t>(kThreads * kPerThread));
  auto store = MustOpen();
  for (const std::string& id : acknowledged) {
    EXPECT_TRUE(store->Get(id).ok()) << id;
  }
  EXPECT_EQ(store->Head().sequence, acknowledged.size());
  EXPECT_EQ(store->Stats("100")->depth, acknowledged.size());
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->events, acknowledged.size());
}

TEST_F(RocksDbStoreTest, SignedCheckpointsAreWrittenAtTheInterval) {
  SigningIdentity identity = TestIdentity();
  RocksDbStoreOptions options = Options();
  options.checkpoint_identity = &identity;
  options.checkpoint_every_events = 3;
  {
    auto store = MustOpen(options);
    for (int i = 0; i < 7; ++i) {
      ASSERT_TRUE(store->Commit(Message("m" + std::to_string(i))).ok());
    }
  }
  auto store = MustOpen(options);
  ASSERT_TRUE(store->Commit(Message("m7")).ok());
  ASSERT_TRUE(store->Commit(Message("m8")).ok());
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->checkpoints, 3u);  // at 3, 6, 9
}

TEST_F(RocksDbStoreTest, PurgedAuditEventsLeaveAVerifiableChain) {
  SigningIdentity identity = TestIdentity();
  RocksDbStoreOptions options = Options();
  options.checkpoint_identity = &identity;
  auto store = MustOpen(options);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(store->Commit(Message("m" + std::to_string(i))).ok());
    clock_.Set(clock_.Now() + hours(24));
  }
  const TimePoint cutoff = clock_.Now() - hours(24 * 2);  // keeps m3, m4
  auto purged = store->PurgeAudit(cutoff);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(purged->audit_events_purged, 3u);
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->events, 3u);  // m3, m4 and the audit-purged event
  AuditQuery all;
  auto page = store->Query(all, PageRequest{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 3u);
  EXPECT_EQ(page->events[0].message_id, "m3");
  EXPECT_EQ(page->events[2].kind, "audit-purged");
  // Records are not audit events: they stay.
  EXPECT_TRUE(store->Get("m0").ok());
}

TEST_F(RocksDbStoreTest, PurgingAuditEventsNeedsASigningIdentity) {
  auto store = MustOpen();
  EXPECT_EQ(store->PurgeAudit(clock_.Now()).status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(RocksDbStoreTest, AReadOnlyStoreSeesTheDataAndRefusesWrites) {
  auto writer = MustOpen();
  ASSERT_TRUE(writer->Commit(Message("m1")).ok());
  RocksDbStoreOptions options = Options();
  options.read_only = true;
  auto reader = MustOpen(options);
  EXPECT_TRUE(reader->Get("m1").ok());
  EXPECT_EQ(reader->Payload("m1").value(), "<signed/>");
  EXPECT_EQ(reader->Head().sequence, 1u);
  EXPECT_EQ(reader->Commit(Message("m2")).status().code(), StatusCode::kFailedPrecondition);
  auto report = reader->Verify();
  EXPECT_TRUE(report.ok() && report->ok);
}

// Fails WAL syncs on demand: the minimal fault needed to check rollback here (the full power-cut
// harness lives with the fault tests).
class SyncFailingFileSystem : public rocksdb::FileSystemWrapper {
 public:
  SyncFailingFileSystem() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "SyncFailingFileSystem"; }
  std::atomic<bool> fail_sync{false};

  rocksdb::IOStatus NewWritableFile(const std::string& name, const rocksdb::FileOptions& options,
                                    std::unique_ptr<rocksdb::FSWritableFile>* result,
                                    rocksdb::IODebugContext* debug) override {
    rocksdb::IOStatus s = target()->NewWritableFile(name, options, result, debug);
    if (s.ok()) {
      *result = std::make_unique<File>(std::move(*result), this);
    }
    return s;
  }

 private:
  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> file, SyncFailingFileSystem* fs)
        : FSWritableFileOwnerWrapper(std::move(file)), fs_(fs) {}
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* debug) override {
      if (fs_->fail_sync) {
        return rocksdb::IOStatus::IOError("injected sync failure");
      }
      return target()->Sync(options, debug);
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                            rocksdb::IODebugContext* debug) override {
      if (fs_->fail_sync) {
        return rocksdb::IOStatus::IOError("injected sync failure");
      }
      return target()->Fsync(options, debug);
    }

   private:
    SyncFailingFileSystem* fs_;
  };
};

TEST_F(RocksDbStoreTest, AFailedSyncIsUnavailableAndRollsTheAuditHeadBack) {
  auto fs = std::make_shared<SyncFailingFileSystem>();
  RocksDbStoreOptions options = Options();
  options.file_system = fs;
  AuditHead before;
  {
    auto store = MustOpen(options);
    ASSERT_TRUE(store->Commit(Message("m1")).ok());
    before = store->Head();
    fs->fail_sync = true;
    EXPECT_EQ(store->Commit(Message("m2")).status().code(), StatusCode::kUnavailable);
    EXPECT_EQ(store->Head().sequence, before.sequence);
    EXPECT_EQ(store->Head().hash, before.hash);
    EXPECT_EQ(store->commit_stats().groups_failed, 1u);
    EXPECT_EQ(store->WriteHealth().code(), StatusCode::kUnavailable);
    fs->fail_sync = false;
    // Either RocksDB resumes and the commit succeeds, or it stays refused: never a false OK.
    auto after = store->Commit(Message("m3"));
    if (after.ok()) {
      EXPECT_EQ(store->Head().sequence, before.sequence + 1);
    } else {
      EXPECT_EQ(after.status().code(), StatusCode::kUnavailable);
    }
  }
  auto store = MustOpen(options);
  EXPECT_TRUE(store->WriteHealth().ok());
  EXPECT_TRUE(store->Get("m1").ok());
  ASSERT_TRUE(store->Commit(Message("m4")).ok());
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

NewReturn Return(std::string mailbox_key, std::string message_id, std::string document = "<r/>") {
  NewReturn r;
  r.destination = "100";
  r.mailbox_key = std::move(mailbox_key);
  r.message_id = std::move(message_id);
  r.answer.document = std::move(document);
  r.answer.decision = "accepted";
  r.answer.codes = {"931000"};
  return r;
}

TEST_F(RocksDbStoreTest, AReturnStaysRecordedAndDeduplicatedAcrossAReopen) {
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->Commit(Message("m1")).ok());
    ASSERT_EQ(*store->RecordReturn(Return("hash-1", "m1", "<first/>")), ReturnOutcome::kRecorded);
    ASSERT_EQ(*store->RecordReturn(Return("orphan-1", "", "<orphan/>")), ReturnOutcome::kRecorded);
  }
  auto store = MustOpen();
  const std::uint64_t head = store->Head().sequence;
  EXPECT_EQ(*store->RecordReturn(Return("hash-1", "m1")), ReturnOutcome::kDuplicate);
  EXPECT_EQ(*store->RecordReturn(Return("orphan-1", "")), ReturnOutcome::kDuplicate);
  EXPECT_EQ(store->Head().sequence, head);
  ASSERT_EQ(*store->RecordReturn(Return("hash-2", "m1", "<second/>")), ReturnOutcome::kRecorded);
  auto answers = store->Answers("m1");
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  ASSERT_EQ(answers->size(), 2u);
  EXPECT_EQ((*answers)[0].document, "<first/>");
  EXPECT_EQ((*answers)[1].document, "<second/>");
  auto orphans = store->OrphanReturns(PageRequest{});
  ASSERT_TRUE(orphans.ok());
  ASSERT_EQ(orphans->returns.size(), 1u);
  EXPECT_EQ(orphans->returns[0].answer.document, "<orphan/>");
  auto report = store->Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

TEST_F(RocksDbStoreTest, TwoIdenticalReturnsInOneGroupRecordOnce) {
  // As IdempotencyIsDecidedInsideOneGroup: the first caller's leader blocks in the free-space
  // probe until the two identical returns queue behind it and form the next group together.
  std::atomic<bool> release{false};
  std::atomic<int> probes{0};
  RocksDbStoreOptions options = Options();
  options.free_space_probe = [&](const std::filesystem::path&) -> StatusOr<std::uint64_t> {
    if (probes++ == 0) {
      while (!release) {
        std::this_thread::yield();
      }
    }
    return std::uint64_t{1} << 40;
  };
  auto store = MustOpen(std::move(options));
  StatusOr<CommitResult> first = Status::Internal("not run");
  StatusOr<ReturnOutcome> a = Status::Internal("not run");
  StatusOr<ReturnOutcome> b = Status::Internal("not run");
  std::thread leader([&] { first = store->Commit(Message("m1")); });
  while (store->pending_writers() < 1) {
    std::this_thread::yield();
  }
  // The return for m1 is in the group after m1's commit: it links to it.
  std::thread ta([&] { a = store->RecordReturn(Return("same-hash", "m1")); });
  while (store->pending_writers() < 2) {
    std::this_thread::yield();
  }
  std::thread tb([&] { b = store->RecordReturn(Return("same-hash", "m1")); });
  while (store->pending_writers() < 3) {
    std::this_thread::yield();
  }
  release = true;
  for (std::thread* t : {&leader, &ta, &tb}) {
    t->join();
  }
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*a, ReturnOutcome::kRecorded);
  EXPECT_EQ(*b, ReturnOutcome::kDuplicate);
  CommitStageStats stats = store->commit_stats();
  EXPECT_EQ(stats.groups_written, 2u);
  EXPECT_EQ(stats.operations, 3u);
  EXPECT_EQ(store->Head().sequence, 2u);
  EXPECT_EQ(store->Answers("m1")->size(), 1u);
}

TEST_F(RocksDbStoreTest, ReturnDocumentsAreNotPlaintextOnDisk) {
  const std::string marker = "RETURN-PLAINTEXT-4712";
  {
    auto store = MustOpen();
    ASSERT_TRUE(store->Commit(Message("visible-id-0002")).ok());
    ASSERT_EQ(*store->RecordReturn(Return("hash-1", "visible-id-0002", "<r>" + marker + "</r>")),
              ReturnOutcome::kRecorded);
    ASSERT_EQ(*store->RecordReturn(Return("hash-2", "", "<o>" + marker + "</o>")),
              ReturnOutcome::kRecorded);
    EXPECT_EQ(store->Answers("visible-id-0002")->at(0).document, "<r>" + marker + "</r>");
  }
  bool key_seen = false;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.find(marker), std::string::npos) << entry.path();
    if (bytes.find("hash-2") != std::string::npos) {
      key_seen = true;  // control: the grep sees the stored return rows
    }
  }
  EXPECT_TRUE(key_seen);
}

// A store created before returns existed has no "returns"/"return_keys" column families: a
// read-only open reads them as empty, a read-write open creates them.
TEST_F(RocksDbStoreTest, AStoreWithoutTheReturnColumnFamiliesOpensAndGetsThem) {
  { ASSERT_TRUE(MustOpen()->Commit(Message("m1")).ok()); }
  {
    // Make it look like a store of the previous layout.
    rocksdb::DBOptions db_options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(db_options, dir_.path().string(), &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : names) {
      descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(
        rocksdb::DB::Open(db_options, dir_.path().string(), descriptors, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      if (h->GetName() == "returns" || h->GetName() == "return_keys") {
        ASSERT_TRUE(db->DropColumnFamily(h).ok());
      }
      ASSERT_TRUE(db->DestroyColumnFamilyHandle(h).ok());
    }
    ASSERT_TRUE(db->Close().ok());
    names.clear();
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(db_options, dir_.path().string(), &names).ok());
    ASSERT_EQ(std::count(names.begin(), names.end(), "returns"), 0);
  }
  {
    RocksDbStoreOptions options = Options();
    options.read_only = true;
    auto reader = MustOpen(options);
    ASSERT_NE(reader, nullptr);
    EXPECT_TRUE(reader->Answers("m1")->empty());
    EXPECT_TRUE(reader->OrphanReturns(PageRequest{})->returns.empty());
  }
  auto store = MustOpen();
  ASSERT_NE(store, nullptr);
  ASSERT_EQ(*store->RecordReturn(Return("hash-1", "m1")), ReturnOutcome::kRecorded);
  EXPECT_EQ(store->Answers("m1")->size(), 1u);
}

// The counters behind Stats against a full scan, after every step of a seeded random mix of
// transitions (including refused ones), and after a reopen.
TEST_F(RocksDbStoreTest, StatsCountersMatchAFullScanThroughAMixOfTransitionsAndAReopen) {
  const std::vector<std::string> destinations = {"100", "300", "500"};
  auto check = [&](RocksDbStore& store, const std::string& when) {
    for (const std::string& d : destinations) {
      auto counted = store.Stats(d);
      auto scanned = store.ScanStats(d);
      ASSERT_TRUE(counted.ok() && scanned.ok()) << when;
      EXPECT_EQ(counted->depth, scanned->depth) << d << " " << when;
      EXPECT_EQ(counted->oldest_accepted_ms, scanned->oldest_accepted_ms) << d << " " << when;
    }
  };
  std::mt19937_64 rng(20260110);  // fixed: the mix is reproducible
  auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  std::vector<Lease> leases;  // held, possibly stale
  std::vector<std::string> ids;
  std::uint64_t nonzero = 0;
  {
    auto store = MustOpen();
    for (int step = 0; step < 400; ++step) {
      clock_.Set(clock_.Now() + std::chrono::milliseconds(1 + pick(2000)));
      const std::string dest = destinations[pick(destinations.size())];
      switch (pick(8)) {
        case 0:
        case 1: {  // commit to one or two destinations, sometimes an existing id (conflict)
          NewMessage m = Message(ids.empty() || pick(5) != 0 ? "m" + std::to_string(step)
                                                             : ids[pick(ids.size())]);
          m.destinations = {dest};
          if (pick(2) == 0) {
            m.destinations.push_back(dest == "100" ? "300" : "100");
          }
          auto result = store->Commit(m);
          if (result.ok()) {
            ids.push_back(m.id);
          }
          break;
        }
        case 2: {
          auto lease = store->LeaseNext(dest, clock_.Now(), seconds(1 + pick(5)));
          ASSERT_TRUE(lease.ok());
          if (lease->has_value()) {
            leases.push_back(**lease);
          }
          break;
        }
        case 3:
        case 4:
        case 5: {  // ack, nack or dead-letter a held (maybe stale) lease
          if (leases.empty()) {
            break;
          }
          const std::size_t i = pick(leases.size());
          const Lease lease = leases[i];
          leases.erase(leases.begin() + static_cast<std::ptrdiff_t>(i));
          const std::size_t what = pick(3);
          Status status = what == 0   ? store->Ack(lease, NewAnswer{"a", "accepted", {}})
                          : what == 1 ? store->Nack(lease, clock_.Now() + seconds(pick(3)), "5xx")
                                      : store->DeadLetter(lease, "4xx");
          EXPECT_TRUE(status.ok() || status.code() == StatusCode::kConflict) << status.ToString();
          break;
        }
        case 6: {
          if (!ids.empty()) {
            Status replay = store->Replay(ids[pick(ids.size())], "ops:test");
            EXPECT_TRUE(replay.ok() || replay.code() == StatusCode::kNotFound) << replay.ToString();
          }
          break;
        }
        case 7: {
          if (!ids.empty()) {
            ASSERT_TRUE(
                store->RecordReturn(Return("h" + std::to_string(step), ids[pick(ids.size())]))
                    .ok());
          }
          break;
        }
      }
      check(*store, "after step " + std::to_string(step));
      if (store->Stats("100")->depth > 0) {
        ++nonzero;
      }
    }
  }
  EXPECT_GT(nonzero, 100u);  // the mix kept a queue most of the time
  auto store = MustOpen();
  check(*store, "after reopen");
  RocksDbStoreOptions read_only = Options();
  read_only.read_only = true;
  store.reset();
  auto reader = MustOpen(read_only);
  check(*reader, "read-only");
}

TEST_F(RocksDbStoreTest, StatsCountersMatchAFullScanAfterConcurrentTransitions) {
  auto store = MustOpen();
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        ASSERT_TRUE(store->Commit(Message(id)).ok());
        if (t % 2 == 1) {
          auto lease = store->LeaseNext("100", clock_.Now(), seconds(30));
          ASSERT_TRUE(lease.ok());
          if (lease->has_value()) {
            Status s = i % 3 == 0 ? store->DeadLetter(**lease, "4xx")
                                  : store->Ack(**lease, NewAnswer{"a", "accepted", {}});
            ASSERT_TRUE(s.ok()) << s.ToString();
          }
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  auto counted = store->Stats("100");
  auto scanned = store->ScanStats("100");
  ASSERT_TRUE(counted.ok() && scanned.ok());
  EXPECT_EQ(counted->depth, scanned->depth);
  EXPECT_EQ(counted->depth, 240u - 120u);
  EXPECT_EQ(counted->oldest_accepted_ms, scanned->oldest_accepted_ms);
}

TEST_F(RocksDbStoreTest, AFailedWriteLeavesTheStatsCountersUnchanged) {
  auto fs = std::make_shared<SyncFailingFileSystem>();
  RocksDbStoreOptions options = Options();
  options.file_system = fs;
  auto store = MustOpen(options);
  ASSERT_TRUE(store->Commit(Message("m1")).ok());
  clock_.Set(clock_.Now() + seconds(1));
  ASSERT_TRUE(store->Commit(Message("m2")).ok());
  auto lease = store->LeaseNext("100", clock_.Now(), seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  const QueueStats before = *store->Stats("100");
  fs->fail_sync = true;
  EXPECT_EQ(store->Commit(Message("m3")).status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(store->Ack(**lease, NewAnswer{"a", "accepted", {}}).ok());
  fs->fail_sync = false;
  EXPECT_EQ(store->Stats("100")->depth, before.depth);
  EXPECT_EQ(store->Stats("100")->oldest_accepted_ms, before.oldest_accepted_ms);
  EXPECT_EQ(before.depth, 2u);
}

// LeaseNext seeks from a remembered floor instead of the queue range's start (which holds the
// tombstones of every entry leased or acknowledged since the last compaction). An entry queued
// below that floor, here by a clock that stepped back, must still be found.
TEST_F(RocksDbStoreTest, AnEntryQueuedBelowTheRememberedSeekPositionIsStillLeased) {
  auto store = MustOpen();
  const TimePoint start = clock_.Now();
  ASSERT_TRUE(store->Commit(Message("m1")).ok());
  StatusOr<std::optional<Lease>> first = store->LeaseNext("100", start, std::chrono::minutes(1));
  ASSERT_TRUE(first.ok() && first->has_value());
  // The only entry is m1's lease, due in a minute: nothing now, and the seek position moves up.
  StatusOr<std::optional<Lease>> none =
      store->LeaseNext("100", start + std::chrono::seconds(1), std::chrono::minutes(1));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  clock_.Set(start - std::chrono::seconds(10));
  ASSERT_TRUE(store->Commit(Message("m2")).ok());
  StatusOr<std::optional<Lease>> second =
      store->LeaseNext("100", start + std::chrono::seconds(2), std::chrono::minutes(1));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_TRUE(second->has_value());
  EXPECT_EQ((*second)->message_id, "m2");
}

// Leases and answers over many messages: each LeaseNext finds the oldest due entry, whatever the
// tombstones in front of it, and the queue ends empty.
TEST_F(RocksDbStoreTest, LeasingThroughManyAnsweredAndRetriedEntriesKeepsDueOrder) {
  auto store = MustOpen();
  const TimePoint start = clock_.Now();
  constexpr int kMessages = 300;
  // Ids sort like their numbers: entries due at the same millisecond are leased in id order.
  auto id = [](int i) {
    std::string digits = std::to_string(i);
    return "m" + std::string(3 - digits.size(), '0') + digits;
  };
  for (int i = 0; i < kMessages; ++i) {
    clock_.Set(start + std::chrono::milliseconds(i));
    ASSERT_TRUE(store->Commit(Message(id(i))).ok());
  }
  const TimePoint now = start + std::chrono::seconds(10);
  std::set<std::string> answered;
  int expected_next = 0;
  for (int i = 0; i < kMessages; ++i) {
    StatusOr<std::optional<Lease>> lease = store->LeaseNext("100", now, std::chrono::minutes(1));
    ASSERT_TRUE(lease.ok() && lease->has_value()) << i;
    // Every third one is retried: it comes back once every first attempt is done.
    if ((*lease)->attempt == 1 && i % 3 == 0) {
      EXPECT_EQ((*lease)->message_id, id(expected_next));
      ASSERT_TRUE(store->Nack(**lease, now + std::chrono::seconds(1), "http-503").ok());
    } else {
      if ((*lease)->attempt == 1) {
        EXPECT_EQ((*lease)->message_id, id(expected_next));
      }
      NewAnswer answer;
      answer.document = "<a/>";
      answer.decision = "accepted";
      ASSERT_TRUE(store->Ack(**lease, answer).ok());
      answered.insert((*lease)->message_id);
    }
    ++expected_next;
  }
  // The retried third, due a second later, in their order.
  const TimePoint later = now + std::chrono::seconds(2);
  for (int i = 0; i < kMessages; i += 3) {
    StatusOr<std::optional<Lease>> lease = store->LeaseNext("100", later, std::chrono::minutes(1));
    ASSERT_TRUE(lease.ok() && lease->has_value()) << i;
    EXPECT_EQ((*lease)->message_id, id(i));
    EXPECT_EQ((*lease)->attempt, 2u);
    NewAnswer answer;
    answer.document = "<a/>";
    answer.decision = "accepted";
    ASSERT_TRUE(store->Ack(**lease, answer).ok());
    answered.insert((*lease)->message_id);
  }
  EXPECT_EQ(answered.size(), static_cast<std::size_t>(kMessages));
  StatusOr<std::optional<Lease>> none = store->LeaseNext("100", later, std::chrono::minutes(1));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  StatusOr<QueueStats> stats = store->Stats("100");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->depth, 0u);
}

TEST_F(RocksDbStoreTest, MemoryUsageCountsTheMemtablesAsTheyFill) {
  auto store = MustOpen();
  const RocksDbStore::MemoryUsage empty = store->memory_usage();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(store->Commit(Message("m" + std::to_string(i), "", std::string(2000, 'x'))).ok());
  }
  const RocksDbStore::MemoryUsage filled = store->memory_usage();
  // 50 sealed payloads of 2 kB at least, besides records, queue entries and audit events.
  EXPECT_GE(filled.memtables, empty.memtables + 50 * 2000);
}

}  // namespace
}  // namespace psl::store::testing
