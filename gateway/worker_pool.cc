#include "gateway/worker_pool.h"

#include <algorithm>
#include <utility>

namespace psl::gateway {

const char* AdmissionName(Admission admission) {
  switch (admission) {
    case Admission::kAccepted:
      return "accepted";
    case Admission::kQueueFull:
      return "queue_full";
    case Admission::kQueueDelay:
      return "queue_delay";
    case Admission::kStopped:
      return "stopped";
  }
  return "unknown";
}

WorkerPool::WorkerPool(const Options& options)
    : max_queued_(options.max_queued),
      max_queue_delay_(options.max_queue_delay),
      clock_(options.clock != nullptr ? options.clock : &system_clock_) {
  const std::size_t threads = std::max<std::size_t>(options.threads, 1);
  for (std::size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Run(); });
  }
}

WorkerPool::~WorkerPool() {
  Stop();
}

Admission WorkerPool::Post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      return Admission::kStopped;
    }
    if (jobs_.size() >= max_queued_) {
      return Admission::kQueueFull;
    }
    const auto now = clock_->Now();
    if (max_queue_delay_.count() > 0 && !jobs_.empty() &&
        now - jobs_.front().queued_at > max_queue_delay_) {
      return Admission::kQueueDelay;
    }
    jobs_.push_back(Job{std::move(job), now});
  }
  cv_.notify_one();
  return Admission::kAccepted;
}

void WorkerPool::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) {
    t.join();
  }
  threads_.clear();
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) {
        return;  // stopping and drained
      }
      job = std::move(jobs_.front().run);
      jobs_.pop_front();
    }
    job();
  }
}

}  // namespace psl::gateway
