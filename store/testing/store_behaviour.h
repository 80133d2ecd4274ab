// The behavioural test suite every DurableQueue + AuditLog implementation must pass
// (store_behaviour_test.cc). Each implementation's test instantiates it with a factory:
//   INSTANTIATE_TEST_SUITE_P(RocksDb, StoreBehaviourTest, ::testing::Values(MakeRocksDbStore));
#ifndef PSL_STORE_TESTING_STORE_BEHAVIOUR_H_
#define PSL_STORE_TESTING_STORE_BEHAVIOUR_H_

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "base/clock.h"
#include "store/store.h"

namespace psl::store::testing {

// One store under test, owning whatever it needs (temp directory, DB).
class StoreUnderTest {
 public:
  StoreUnderTest() = default;
  StoreUnderTest(const StoreUnderTest&) = delete;
  StoreUnderTest& operator=(const StoreUnderTest&) = delete;
  virtual ~StoreUnderTest() = default;
  virtual DurableQueue& queue() = 0;
  virtual AuditLog& audit() = 0;
  // While true, new work (Commit, Append) must be refused with kUnavailable.
  virtual void RefuseNewWork(bool refuse) = 0;
};

// Builds a fresh, empty store reading `clock` (borrowed) with the given delivered retention.
using StoreFactory = std::function<std::unique_ptr<StoreUnderTest>(
    const Clock* clock, std::chrono::milliseconds delivered_retention)>;

class StoreBehaviourTest : public ::testing::TestWithParam<StoreFactory> {};

}  // namespace psl::store::testing

#endif  // PSL_STORE_TESTING_STORE_BEHAVIOUR_H_
