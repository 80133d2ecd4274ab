// WorkerPool: a fixed set of threads running posted jobs in order (the practices' CPU work:
// parse, validate, sign; and the synced commit, which waits in the store's group commit).
//
// Admission at the door (the caller answers 503 + Retry-After at once, on its own thread): Post
// refuses a job when the queue already holds `max_queued` jobs, when the oldest queued job has
// waited longer than `max_queue_delay` (CoDel-like: a queue that stays behind sheds new work
// instead of growing a backlog of requests whose clients have given up), and after Stop. A
// refusal costs a lock and a clock read; nothing is queued.
//
// The queue delay is measured with the injected Clock (wall time: a forward step of the clock can
// shed until the jobs queued before it have started; a backward step sheds nothing).
// Thread-safety: Post and Stop may be called from any thread; the clock must outlive the pool.
#ifndef PSL_GATEWAY_WORKER_POOL_H_
#define PSL_GATEWAY_WORKER_POOL_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "base/clock.h"

namespace psl::gateway {

// Why Post took or refused a job.
enum class Admission {
  kAccepted,
  kQueueFull,   // `max_queued` jobs already wait
  kQueueDelay,  // the oldest queued job has waited longer than `max_queue_delay`
  kStopped,     // Stop was called
};
// "accepted", "queue_full", "queue_delay", "stopped" (metric label values).
const char* AdmissionName(Admission admission);

class WorkerPool {
 public:
  struct Options {
    std::size_t threads = 1;
    std::size_t max_queued = 1024;
    // 0 = no delay limit (only `max_queued`).
    std::chrono::milliseconds max_queue_delay{0};
    const Clock* clock = nullptr;  // null = the system clock
  };

  // Starts `options.threads` threads (at least one).
  explicit WorkerPool(const Options& options);
  // Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job` (kAccepted) or refuses it, see the class comment. A refused job is dropped
  // without running.
  Admission Post(std::function<void()> job);

  // Refuses new jobs, runs every job already queued, joins the threads. Idempotent; must not be
  // called from a job.
  void Stop();

 private:
  struct Job {
    std::function<void()> run;
    std::chrono::system_clock::time_point queued_at;
  };
  void Run();

  const std::size_t max_queued_;
  const std::chrono::milliseconds max_queue_delay_;
  SystemClock system_clock_;
  const Clock* clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_WORKER_POOL_H_
