// libFuzzer target: arbitrary bytes through MessageValidator::Validate, i.e. the hardened parse,
// the MHM envelope schema, the Detail blob decoding (base64, raw deflate), the kmehr schema and the
// business rules. Seed it from conformance/mhm (the corpus reaches every rule).
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DPSL_FUZZ=ON
//   cmake --build build-fuzz --target mhm_fuzz
//   build-fuzz/codecs/mhm_fuzz -max_total_time=60 NEW_CORPUS_DIR conformance/mhm
//
// Built with -DPSL_FUZZ_REPLAY_MAIN (any compiler) it becomes mhm_fuzz_replay, which feeds every
// file named on its command line (folders recursively) to the same entry point: the corpus is
// replayed by ctest on every build, and under PSL_SANITIZE it is an ASan/UBSan regression run.
//
// Schemas: $PSL_SCHEMAS_DIR when set, else PSL_SHARED_DIR/schemas. The clock is fixed at
// 2025-01-02T10:00:00Z, the corpus's business date, so date rules are exercised both ways.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/testing/fake_clock.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

// What every input needs, built on the first input and kept for the process (libFuzzer has no
// tear-down hook; libxml2 cannot be initialised again after its clean-up).
struct FuzzState {
  XmlLibrary library;
  std::unique_ptr<SchemaRegistry> schemas;
  testing::FakeClock clock;
  std::unique_ptr<MessageValidator> validator;
};

FuzzState* MakeFuzzState() {
  auto* state = new FuzzState();
  const char* env = std::getenv("PSL_SCHEMAS_DIR");
  const std::filesystem::path root = (env != nullptr && *env != '\0')
                                         ? std::filesystem::path(env)
                                         : std::filesystem::path(PSL_SHARED_DIR) / "schemas";
  auto loaded = SchemaRegistry::Load(root);
  if (!loaded.ok()) {
    // Start-up failure: fail loudly, a fuzzer without schemas would test nothing.
    std::fprintf(stderr, "mhm_fuzz: cannot load schemas from %s: %s\n", root.c_str(),
                 loaded.status().ToString().c_str());
    std::abort();
  }
  state->schemas = std::move(loaded).value();
  state->clock.SetUtc(2025, 1, 2, 10, 0);
  state->validator = std::make_unique<MessageValidator>(*state->schemas, state->clock);
  return state;
}

}  // namespace
}  // namespace psl::codecs

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static psl::codecs::FuzzState* const state = psl::codecs::MakeFuzzState();
  const psl::codecs::ValidationReport report =
      state->validator->Validate(std::string_view(reinterpret_cast<const char*>(data), size));
  // Invariant for any input: every problem names its rule (code) and says what is wrong.
  for (const psl::codecs::Problem& p : report.problems) {
    if (p.code.empty() || p.message.empty())
      std::abort();
  }
  return 0;
}

#ifdef PSL_FUZZ_REPLAY_MAIN
#include <algorithm>
#include <fstream>
#include <iterator>
#include <vector>

namespace {

int ReplayFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "mhm_fuzz_replay: cannot read %s\n", path.c_str());
    return 1;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return 0;
}

}  // namespace

// Usage: mhm_fuzz_replay FILE_OR_FOLDER...  Exit status 1 when an argument cannot be read or a
// folder holds no file (a replay over nothing proves nothing).
int main(int argc, char** argv) {
  int failures = 0;
  std::size_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg(argv[i]);
    std::error_code ec;
    if (std::filesystem::is_directory(arg, ec)) {
      std::vector<std::filesystem::path> files;
      for (const auto& entry : std::filesystem::recursive_directory_iterator(arg, ec)) {
        if (entry.is_regular_file())
          files.push_back(entry.path());
      }
      if (files.empty())
        ++failures;
      std::sort(files.begin(), files.end());
      for (const auto& f : files) {
        failures += ReplayFile(f);
        ++replayed;
      }
    } else {
      failures += ReplayFile(arg);
      ++replayed;
    }
  }
  std::printf("mhm_fuzz_replay: %zu input(s) replayed\n", replayed);
  return failures == 0 && replayed > 0 ? 0 : 1;
}
#endif  // PSL_FUZZ_REPLAY_MAIN
