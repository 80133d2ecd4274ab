// ReplayFuzzInputs: the `*_fuzz_replay` executables' main loop (any compiler, no libFuzzer): feeds
// every file named on the command line, and every regular file under a named folder (sorted),
// to LLVMFuzzerTestOneInput once, so ctest replays the corpora through the fuzz targets'
// invariants. Returns the exit status: 1 when an argument cannot be read or a folder holds no
// file (a replay over nothing proves nothing), else 0. Prints "<name>: N input(s) replayed".
//
// Also what every codec fuzz target does the same way (with or without libFuzzer): loading the
// schema set at start-up (LoadFuzzSchemasOrDie) and the invariants every decoder's report must
// keep (AbortUnlessProblemsNamed, AbortUnlessOutcomeMatches). Fuzz targets abort on a broken
// invariant: that is how libFuzzer and the replay report a finding.
#ifndef PSL_CODECS_TESTING_FUZZ_REPLAY_H_
#define PSL_CODECS_TESTING_FUZZ_REPLAY_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include "base/testing/fake_clock.h"
#include "codecs/problem.h"
#include "codecs/schema_registry.h"
#include "codecs/xml_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace psl::codecs::testing {

inline int ReplayFuzzFile(const char* name, const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "%s: cannot read %s\n", name, path.c_str());
    return 1;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

inline int ReplayFuzzInputs(const char* name, int argc, char** argv) {
  int failures = 0;
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg, ec)) {
        if (entry.is_regular_file()) {
          files.push_back(entry.path());
        }
      }
      if (files.empty()) {
        ++failures;
      }
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        failures += ReplayFuzzFile(name, f);
        ++replayed;
      }
    } else {
      failures += ReplayFuzzFile(name, arg);
      ++replayed;
    }
  }
  std::printf("%s: %zu input(s) replayed\n", name, replayed);
  return failures == 0 && replayed > 0 ? 0 : 1;
}

// The schema set from $PSL_SCHEMAS_DIR when set, else <shared_dir>/schemas. A start-up failure
// aborts loudly, naming `name` and the folder: a fuzzer without schemas would test nothing.
inline std::unique_ptr<SchemaRegistry> LoadFuzzSchemasOrDie(const char* name,
                                                            const char* shared_dir) {
  const char* env = std::getenv("PSL_SCHEMAS_DIR");  // NOLINT(concurrency-mt-unsafe): start-up
  const std::filesystem::path root = (env != nullptr && *env != '\0')
                                         ? std::filesystem::path(env)
                                         : std::filesystem::path(shared_dir) / "schemas";
  auto loaded = SchemaRegistry::Load(root);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s: cannot load schemas from %s: %s\n", name, root.c_str(),
                 loaded.status().ToString().c_str());
    std::abort();
  }
  return std::move(loaded).value();
}

// What a fuzz target of a decoder built from (schemas, clock) needs, built on the first input and
// kept for the process (libFuzzer has no tear-down hook; libxml2 cannot be initialised again
// after its clean-up). The clock is fixed at 2025-01-02T10:00:00Z, the corpora's business date,
// so date rules are exercised both ways.
template <typename Decoder>
struct DatedFuzzState {
  XmlLibrary library;
  std::unique_ptr<SchemaRegistry> schemas;
  psl::testing::FakeClock clock;
  std::unique_ptr<Decoder> decoder;
};

// A new DatedFuzzState (never destroyed), its schemas from LoadFuzzSchemasOrDie.
template <typename Decoder>
DatedFuzzState<Decoder>* MakeDatedFuzzState(const char* name, const char* shared_dir) {
  auto* state = new DatedFuzzState<Decoder>();
  state->schemas = LoadFuzzSchemasOrDie(name, shared_dir);
  state->clock.SetUtc(2025, 1, 2, 10, 0);
  state->decoder = std::make_unique<Decoder>(*state->schemas, state->clock);
  return state;
}

// Invariant for any input: every problem names its rule (code) and says what is wrong.
inline void AbortUnlessProblemsNamed(const std::vector<Problem>& problems) {
  for (const Problem& p : problems) {
    if (p.code.empty() || p.message.empty()) {
      std::abort();
    }
  }
}

// AbortUnlessProblemsNamed, and a decoder succeeds exactly when it reported no error.
inline void AbortUnlessOutcomeMatches(bool ok, const std::vector<Problem>& problems) {
  AbortUnlessProblemsNamed(problems);
  if (ok == HasErrors(problems)) {
    std::abort();
  }
}

}  // namespace psl::codecs::testing

#endif  // PSL_CODECS_TESTING_FUZZ_REPLAY_H_
