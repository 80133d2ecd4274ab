// libFuzzer target: arbitrary bytes through ParseEfact (framing, zone checks, identifiers,
// order, checksums, totals), and, for a file that parses, WriteEfact must give back a file that
// parses to the same records (the writer only fills numbers, checksums and totals, which a
// valid file already has right).
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DPSL_FUZZ=ON
//   cmake --build build-fuzz --target efact_fuzz
//   build-fuzz/codecs/efact_fuzz -max_total_time=60 NEW_CORPUS_DIR codecs/testdata/efact
//
// Built with -DPSL_FUZZ_REPLAY_MAIN it becomes efact_fuzz_replay, which feeds every file named on
// its command line (folders recursively) to the same entry point (ctest replays
// codecs/testdata/efact). `efact_fuzz_replay --write-seeds DIR` (re)writes that seed corpus from
// the synthetic files of codecs/testing/efact_test_support.h.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codecs/efact.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  std::vector<psl::codecs::Problem> problems;
  const psl::StatusOr<psl::codecs::EfactFile> parsed = psl::codecs::ParseEfact(bytes, &problems);
  // Invariants for any input: every problem names its rule and says what is wrong; a refusal
  // always comes with at least one error.
  for (const psl::codecs::Problem& p : problems) {
    if (p.code.empty() || p.message.empty()) {
      std::abort();
    }
  }
  if (!parsed.ok()) {
    if (!psl::codecs::HasErrors(problems)) {
      std::abort();
    }
    return 0;
  }
  const std::string written = psl::codecs::WriteEfact(*parsed);
  std::vector<psl::codecs::Problem> again;
  const psl::StatusOr<psl::codecs::EfactFile> reparsed = psl::codecs::ParseEfact(written, &again);
  if (!reparsed.ok() || !(reparsed->segment200 == parsed->segment200) ||
      !(reparsed->segment300 == parsed->segment300)) {
    std::abort();
  }
  // The writer regenerates the records 95/96 (sorted, sign of account B "+"), so compare the
  // records 10…90 only.
  const auto numbered = [](const std::vector<psl::codecs::EfactRecord>& records) {
    std::vector<psl::codecs::EfactRecord> out;
    for (const auto& r : records) {
      if (r.type() != psl::codecs::EfactRecordType::kDestination95 &&
          r.type() != psl::codecs::EfactRecordType::kTotal96) {
        out.push_back(r);
      }
    }
    return out;
  };
  if (numbered(reparsed->records) != numbered(parsed->records)) {
    std::abort();
  }
  return 0;
}

#ifdef PSL_FUZZ_REPLAY_MAIN
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "codecs/testing/efact_test_support.h"
#include "codecs/testing/fuzz_replay.h"

namespace {

int WriteSeeds(const std::filesystem::path& dir) {
  namespace ef = psl::codecs::efact_test;
  const std::string valid = psl::codecs::WriteEfact(ef::SampleFile());
  const std::vector<std::pair<std::string, std::string>> seeds = {
      {"valid-two-destinations.txt", valid},
      {"valid-mediprima.txt", psl::codecs::WriteEfact(ef::SampleMediPrimaFile())},
      {"bad-record-checksum.txt", ef::Patch(valid, 2, "28", "CHANGED", /*keep_checksum=*/true)},
      {"bad-invoice-total.txt", ef::Patch(valid, 5, "19", "+00000000001")},
      {"bad-niss.txt", ef::Patch(valid, 2, "8", "0017073003385")},
      {"truncated.txt", valid.substr(0, valid.size() - 100)},
      {"unknown-record-type.txt", std::string(valid).replace(227 + 2 * 350, 2, "77")},
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  for (const auto& [name, content] : seeds) {
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) {
      std::fprintf(stderr, "efact_fuzz_replay: cannot write %s\n", (dir / name).c_str());
      return 1;
    }
  }
  std::printf("efact_fuzz_replay: %zu seed(s) written to %s\n", seeds.size(), dir.c_str());
  return 0;
}

}  // namespace

// Usage: efact_fuzz_replay FILE_OR_FOLDER...   or   efact_fuzz_replay --write-seeds DIR
// Exit status 1 when an argument cannot be read or a folder holds no file.
int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--write-seeds") {
    return WriteSeeds(argv[2]);
  }
  return psl::codecs::testing::ReplayFuzzInputs("efact_fuzz_replay", argc, argv);
}
#endif  // PSL_FUZZ_REPLAY_MAIN
