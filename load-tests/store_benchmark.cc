// Group commit, measured: commits per second with 1, 8 and 64 concurrent committers, sync on, on
// the real disk (PSL_BENCH_DIR or the temp directory). FaultInjectionFileSystem runs in
// pass-through mode only to count the fsyncs, reported per commit next to the commits per group,
// so the gain of sharing one fsync is visible. Compare items_per_second across the three rows of
// ONE run (STYLE.md §7: ratios side by side, never absolute timings).
//
//   store_benchmark [--benchmark_min_time=2]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "store/rocksdb_store.h"
#include "store/testing/durability_check.h"
#include "store/testing/fault_injection_fs.h"

namespace {

using psl::store::RocksDbStore;
using psl::store::testing::FaultInjectionFileSystem;

// One store per committer count, opened by the first run's thread 0 and kept for the later runs
// (Google Benchmark reruns the function while it sizes the iteration count).
struct Bench {
  std::filesystem::path dir;
  std::shared_ptr<FaultInjectionFileSystem> fs;
  std::unique_ptr<RocksDbStore> store;
  std::atomic<std::uint64_t> next_id{0};
  std::uint64_t syncs_at_start = 0;
  std::uint64_t groups_at_start = 0;
};

void CommitBenchmark(benchmark::State& state, Bench* bench) {
  if (state.thread_index() == 0) {
    if (bench->store == nullptr) {
      std::filesystem::remove_all(bench->dir);
      bench->fs = std::make_shared<FaultInjectionFileSystem>();
      psl::store::RocksDbStoreOptions options;
      options.path = bench->dir;
      options.payload_key = std::string(32, 'K');
      options.file_system = bench->fs;
      options.disk_reserve_bytes = 0;
      auto store = RocksDbStore::Open(std::move(options));
      if (!store.ok()) {
        state.SkipWithError(store.status().ToString().c_str());
        return;
      }
      bench->store = std::move(store).value();
    }
    bench->syncs_at_start = bench->fs->sync_calls();
    bench->groups_at_start = bench->store->commit_stats().groups_written;
  }
  for (auto _ : state) {
    if (bench->store == nullptr) {
      state.SkipWithError("no store");
      break;
    }
    const std::string id = "bench-" + std::to_string(bench->next_id.fetch_add(1));
    auto result = bench->store->Commit(psl::store::testing::DurabilityMessage(id));
    if (!result.ok()) {
      state.SkipWithError(result.status().ToString().c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0 && bench->store != nullptr) {
    // The loop ends on a barrier of all threads: the counters below cover every thread's commits.
    const double commits = static_cast<double>(state.iterations()) * state.threads();
    const double syncs = static_cast<double>(bench->fs->sync_calls() - bench->syncs_at_start);
    const double groups =
        static_cast<double>(bench->store->commit_stats().groups_written - bench->groups_at_start);
    state.counters["fsyncs_per_commit"] = syncs / commits;
    state.counters["commits_per_group"] = groups > 0 ? commits / groups : 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("PSL_BENCH_DIR");
  const std::filesystem::path base =
      env != nullptr ? std::filesystem::path(env) : std::filesystem::temp_directory_path();
  std::vector<std::unique_ptr<Bench>> benches;
  for (int committers : {1, 8, 64}) {
    auto bench = std::make_unique<Bench>();
    bench->dir =
        base / ("psl-store-bench-" + std::to_string(::getpid()) + "-" + std::to_string(committers));
    benchmark::RegisterBenchmark("Commit/synced", CommitBenchmark, bench.get())
        ->Threads(committers)
        ->UseRealTime();
    benches.push_back(std::move(bench));
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  for (auto& bench : benches) {
    bench->store.reset();
    std::filesystem::remove_all(bench->dir);
  }
  return 0;
}
