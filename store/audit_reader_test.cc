#include "store/audit_reader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "certs/key_store.h"
#include "certs/testing/test_pki.h"
#include "certs/trust_store.h"
#include "store/rocksdb_store.h"
#include "store/testing/audit_tamper.h"

namespace psl::store {
namespace {

using ::testing::HasSubstr;

class AuditStoreReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const certs::testing::TestPki& pki = certs::testing::SharedTestPki();
    ASSERT_TRUE(pki.ok()) << "certs/make-test-pki.sh failed";
    const std::filesystem::path chain = pki / "gateway-chain.pem";
    StatusOr<SigningIdentity> identity =
        certs::LoadPemIdentity(pki / "gateway.key", pki / "gateway.pem", &chain, nullptr);
    ASSERT_TRUE(identity.ok()) << identity.status().ToString();
    identity_ = std::move(identity).value();
    StatusOr<X509StorePtr> trust = certs::LoadTrustStore(pki / "ca.pem");
    ASSERT_TRUE(trust.ok()) << trust.status().ToString();
    trust_ = std::move(trust).value();

    std::string pattern =
        (std::filesystem::temp_directory_path() / "psl-audit-reader-test.XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    store_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void OpenStore() {
    RocksDbStoreOptions options;
    options.path = dir_ / "data";
    options.payload_key = std::string(32, 'p');
    options.free_space_probe = [](const std::filesystem::path&) -> StatusOr<std::uint64_t> {
      return std::uint64_t{1} << 40;
    };
    options.checkpoint_identity = &identity_;
    options.checkpoint_every_events = 5;
    StatusOr<std::unique_ptr<RocksDbStore>> store = RocksDbStore::Open(std::move(options));
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(store).value();
  }

  void Append(int count) {
    for (int i = 0; i < count; ++i) {
      AuditEvent event;
      event.kind = i % 3 == 0 ? "accepted" : "attempt";
      event.practice_nihii = i % 2 == 0 ? "81234530000" : "85432155100";
      event.actor = "gateway";
      event.time_ms = 1000 + i;
      ASSERT_TRUE(store_->Append(event).ok());
    }
  }

  std::unique_ptr<AuditStoreReader> Reader() {
    StatusOr<std::unique_ptr<AuditStoreReader>> reader = AuditStoreReader::Open(dir_ / "data");
    EXPECT_TRUE(reader.ok()) << reader.status().ToString();
    return reader.ok() ? std::move(reader).value() : nullptr;
  }

  SigningIdentity identity_;
  X509StorePtr trust_;
  std::filesystem::path dir_;
  std::unique_ptr<RocksDbStore> store_;
};

TEST_F(AuditStoreReaderTest, ReadsARunningStoreWithoutThePayloadKey) {
  OpenStore();
  Append(12);
  std::unique_ptr<AuditStoreReader> reader = Reader();  // the store is still open
  ASSERT_NE(reader, nullptr);
  StatusOr<AuditVerifyReport> report = reader->Verify(trust_.get());
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->events, 12u);
  EXPECT_EQ(report->checkpoints, 2u);  // at 5 and 10

  AuditQuery query;
  query.practice_nihii = "81234530000";
  query.kind = "accepted";
  std::vector<std::uint64_t> found;
  ASSERT_TRUE(reader
                  ->Query(query,
                          [&](const AuditEvent& event) {
                            found.push_back(event.sequence);
                            return true;
                          })
                  .ok());
  EXPECT_EQ(found, (std::vector<std::uint64_t>{1, 7}));  // i = 0 and 6
}

TEST_F(AuditStoreReaderTest, ReadsAStoppedStore) {
  OpenStore();
  Append(7);
  store_.reset();
  std::unique_ptr<AuditStoreReader> reader = Reader();
  ASSERT_NE(reader, nullptr);
  std::uint64_t events = 0;
  ASSERT_TRUE(reader
                  ->ScanEvents([&](std::uint64_t sequence, std::string_view encoded) {
                    ++events;
                    EXPECT_TRUE(DecodeAuditEvent(encoded).ok()) << sequence;
                    return true;
                  })
                  .ok());
  EXPECT_EQ(events, 7u);
  StatusOr<AuditVerifyReport> report = reader->Verify(nullptr);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

TEST_F(AuditStoreReaderTest, NamesAnAlteredAndARemovedEvent) {
  OpenStore();
  Append(12);
  store_.reset();
  ASSERT_TRUE(testing::AlterAuditEvent(dir_ / "data", 8));
  StatusOr<AuditVerifyReport> altered = Reader()->Verify(trust_.get());
  ASSERT_TRUE(altered.ok());
  EXPECT_FALSE(altered->ok);
  EXPECT_EQ(altered->first_bad_sequence, std::optional<std::uint64_t>(8));
  EXPECT_THAT(altered->problem, HasSubstr("event 8 was altered"));

  ASSERT_TRUE(testing::RemoveAuditEvent(dir_ / "data", 3));
  StatusOr<AuditVerifyReport> removed = Reader()->Verify(trust_.get());
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(removed->first_bad_sequence, std::optional<std::uint64_t>(3));
  EXPECT_THAT(removed->problem, HasSubstr("event 3 was removed"));

  // The index still names event 3: a query says so instead of skipping it silently.
  AuditQuery everything;
  const Status query = Reader()->Query(everything, [](const AuditEvent&) { return true; });
  EXPECT_EQ(query.code(), StatusCode::kInvalid);
  EXPECT_THAT(query.message(), HasSubstr("event 3, which is missing"));
}

TEST_F(AuditStoreReaderTest, RefusesADirectoryThatIsNotAStore) {
  StatusOr<std::unique_ptr<AuditStoreReader>> absent = AuditStoreReader::Open(dir_ / "absent");
  EXPECT_EQ(absent.status().code(), StatusCode::kFailedPrecondition);
  StatusOr<std::unique_ptr<AuditStoreReader>> empty = AuditStoreReader::Open(dir_);
  EXPECT_EQ(empty.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace psl::store
