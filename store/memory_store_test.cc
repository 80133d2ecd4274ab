#include "store/memory_store.h"

#include <gtest/gtest.h>

#include "base/testing/fake_clock.h"
#include "store/testing/store_behaviour.h"

namespace psl::store::testing {
namespace {

class MemoryStoreUnderTest final : public StoreUnderTest {
 public:
  MemoryStoreUnderTest(const Clock* clock, std::chrono::milliseconds retention)
      : store_(clock, retention) {}
  DurableQueue& queue() override { return store_; }
  AuditLog& audit() override { return store_; }
  void RefuseNewWork(bool refuse) override { store_.SetUnavailable(refuse); }

 private:
  MemoryStore store_;
};

INSTANTIATE_TEST_SUITE_P(
    Memory, StoreBehaviourTest,
    ::testing::Values(StoreFactory([](const Clock* clock, std::chrono::milliseconds retention) {
      return std::unique_ptr<StoreUnderTest>(new MemoryStoreUnderTest(clock, retention));
    })));

TEST(MemoryStoreTest, AnUnavailableStoreRefusesQueueTransitionsToo) {
  psl::testing::FakeClock clock;
  clock.SetUtc(2026, 1, 10);
  MemoryStore store(&clock);
  NewMessage m;
  m.id = "m1";
  m.practice_nihii = "19012345001";
  m.destinations = {"100"};
  ASSERT_TRUE(store.Commit(m).ok());
  store.SetUnavailable(true);
  EXPECT_EQ(store.LeaseNext("100", clock.Now(), std::chrono::seconds(30)).status().code(),
            StatusCode::kUnavailable);
  store.SetUnavailable(false);
  auto lease = store.LeaseNext("100", clock.Now(), std::chrono::seconds(30));
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(lease->has_value());
}

}  // namespace
}  // namespace psl::store::testing
