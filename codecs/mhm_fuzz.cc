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
#include "codecs/testing/fuzz_replay.h"

// Usage: mhm_fuzz_replay FILE_OR_FOLDER...
int main(int argc, char** argv) {
  return psl::codecs::testing::ReplayFuzzInputs("mhm_fuzz_replay", argc, argv);
}
#endif  // PSL_FUZZ_REPLAY_MAIN
