// store_crash_child: the process the kill -9 tests (store/crash_test.cc, long_crash_test.sh) kill.
// Opens the store (running RocksDB recovery after the previous kill) and commits from N threads
// until killed, appending each acknowledged id to a ledger AFTER Commit returned OK, so the
// ledger is a subset of what the store promised.
//
// Usage: store_crash_child <db dir> <ledger file> <run tag> <threads> [max commits per thread]
// Exit codes: 0 all commits done, 2 usage, 3 open failed, 4 a commit failed with anything but
// kUnavailable, 5 ledger write failed, 6 kUnavailable (disk full phase: a refusal, not a loss).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "store/rocksdb_store.h"
#include "store/testing/durability_check.h"

namespace {

const std::string kKey(32, 'K');

bool AppendLine(int fd, const std::string& id) {
  // One write() per line: O_APPEND makes concurrent lines land whole.
  std::string line = id + "\n";
  return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
         ::fdatasync(fd) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s <db dir> <ledger> <run tag> <threads> [max per thread]\n",
                 argv[0]);
    return 2;
  }
  const std::string tag = argv[3];
  const int threads = std::atoi(argv[4]);
  const long max_per_thread = argc > 5 ? std::atol(argv[5]) : -1;
  // A reserve in bytes from the environment (long harness, disk-full phase); default: none.
  const char* reserve = std::getenv("PSL_CRASH_RESERVE_BYTES");

  psl::store::RocksDbStoreOptions options;
  options.path = argv[1];
  options.payload_key = kKey;
  options.disk_reserve_bytes = reserve != nullptr ? std::strtoull(reserve, nullptr, 10) : 0;
  auto store = psl::store::RocksDbStore::Open(std::move(options));
  if (!store.ok()) {
    std::fprintf(stderr, "open failed: %s\n", store.status().ToString().c_str());
    return 3;
  }
  int ledger = ::open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (ledger < 0) {
    std::perror("ledger");
    return 5;
  }
  std::atomic<int> exit_code{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (long i = 0; max_per_thread < 0 || i < max_per_thread; ++i) {
        if (exit_code.load() != 0) {
          return;
        }
        const std::string id = tag + "-t" + std::to_string(t) + "-" + std::to_string(i);
        auto result = (*store)->Commit(psl::store::testing::DurabilityMessage(id));
        if (!result.ok()) {
          std::fprintf(stderr, "commit failed: %s\n", result.status().ToString().c_str());
          exit_code = result.status().code() == psl::StatusCode::kUnavailable ? 6 : 4;
          return;
        }
        if (!AppendLine(ledger, id)) {
          exit_code = 5;
          return;
        }
      }
    });
  }
  for (std::thread& w : workers) {
    w.join();
  }
  ::close(ledger);
  return exit_code.load();
}
