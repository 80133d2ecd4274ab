#include "gateway/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <vector>

#include "base/testing/fake_clock.h"

namespace psl::gateway {
namespace {

using std::chrono::milliseconds;

// One worker, held inside its first job until the test releases it: every later job stays
// queued, so the queue's contents and the fake clock alone decide what Post answers.
class WorkerPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.SetUtc(2026, 12, 2, 1, 0);
    WorkerPool::Options options;
    options.threads = 1;
    options.max_queued = 3;
    options.max_queue_delay = milliseconds(500);
    options.clock = &clock_;
    pool_ = std::make_unique<WorkerPool>(options);
    std::shared_future<void> release = release_.get_future().share();
    ASSERT_EQ(pool_->Post([this, release] {
      started_.set_value();
      release.wait();
    }),
              Admission::kAccepted);
    started_.get_future().wait();  // the worker is busy: nothing queued runs until Release()
  }

  void TearDown() override {
    Release();
    pool_->Stop();
  }

  void Release() {
    if (!released_) {
      released_ = true;
      release_.set_value();
    }
  }

  // A job that counts its run.
  std::function<void()> Counted() {
    return [this] {
      ran_.fetch_add(1);
    };
  }

  void Advance(milliseconds by) { clock_.Set(clock_.Now() + by); }

  psl::testing::FakeClock clock_;
  std::unique_ptr<WorkerPool> pool_;
  std::promise<void> started_;
  std::promise<void> release_;
  bool released_ = false;
  std::atomic<int> ran_{0};
};

TEST_F(WorkerPoolTest, FreshQueueAcceptsUpToItsLength) {
  EXPECT_EQ(pool_->Post(Counted()), Admission::kAccepted);  // empty queue
  Advance(milliseconds(500));                               // waited exactly the limit: still ok
  EXPECT_EQ(pool_->Post(Counted()), Admission::kAccepted);
  EXPECT_EQ(pool_->Post(Counted()), Admission::kAccepted);
  EXPECT_EQ(pool_->Post(Counted()), Admission::kQueueFull);  // max_queued = 3
  Release();
  pool_->Stop();
  EXPECT_EQ(ran_.load(), 3);
}

TEST_F(WorkerPoolTest, JobWaitingPastTheLimitMakesPostRefuse) {
  ASSERT_EQ(pool_->Post(Counted()), Admission::kAccepted);
  Advance(milliseconds(501));
  EXPECT_EQ(pool_->Post(Counted()), Admission::kQueueDelay);
  EXPECT_EQ(pool_->Post(Counted()), Admission::kQueueDelay);  // the refused job was not queued
  Release();
  pool_->Stop();
  EXPECT_EQ(ran_.load(), 1);  // only the job that was accepted
}

TEST_F(WorkerPoolTest, QueueThatCaughtUpAcceptsAgain) {
  std::promise<void> drained;
  ASSERT_EQ(pool_->Post([&drained] { drained.set_value(); }), Admission::kAccepted);
  Advance(milliseconds(10'000));
  ASSERT_EQ(pool_->Post(Counted()), Admission::kQueueDelay);
  Release();
  drained.get_future().wait();  // the old job has left the queue: it is empty
  EXPECT_EQ(pool_->Post(Counted()), Admission::kAccepted);
  pool_->Stop();
  EXPECT_EQ(ran_.load(), 1);
}

TEST_F(WorkerPoolTest, StopDrainsWhatIsQueuedThenRefuses) {
  ASSERT_EQ(pool_->Post(Counted()), Admission::kAccepted);
  ASSERT_EQ(pool_->Post(Counted()), Admission::kAccepted);
  std::thread stopper([this] { pool_->Stop(); });
  Release();
  stopper.join();
  EXPECT_EQ(ran_.load(), 2);
  EXPECT_EQ(pool_->Post(Counted()), Admission::kStopped);
  pool_->Stop();  // idempotent
  EXPECT_EQ(ran_.load(), 2);
}

TEST(WorkerPoolNoDelayLimitTest, ZeroDelayMeansOnlyTheLengthLimits) {
  psl::testing::FakeClock clock;
  WorkerPool::Options options;
  options.threads = 1;
  options.max_queued = 2;
  options.clock = &clock;
  WorkerPool pool(options);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> started;
  ASSERT_EQ(pool.Post([&started, released] {
    started.set_value();
    released.wait();
  }),
            Admission::kAccepted);
  started.get_future().wait();
  std::atomic<int> ran{0};
  ASSERT_EQ(pool.Post([&ran] { ran.fetch_add(1); }), Admission::kAccepted);
  clock.Set(clock.Now() + std::chrono::hours(1));
  EXPECT_EQ(pool.Post([&ran] { ran.fetch_add(1); }), Admission::kAccepted);
  EXPECT_EQ(pool.Post([&ran] { ran.fetch_add(1); }), Admission::kQueueFull);
  release.set_value();
  pool.Stop();
  EXPECT_EQ(ran.load(), 2);
}

}  // namespace
}  // namespace psl::gateway
