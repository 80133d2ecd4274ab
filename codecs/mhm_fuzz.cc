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

#include "codecs/schema_registry.h"
#include "codecs/testing/fuzz_replay.h"
#include "codecs/validator.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

using FuzzState = testing::DatedFuzzState<MessageValidator>;

FuzzState* MakeFuzzState() {
  return testing::MakeDatedFuzzState<MessageValidator>("mhm_fuzz", PSL_SHARED_DIR);
}

}  // namespace
}  // namespace psl::codecs

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static psl::codecs::FuzzState* const state = psl::codecs::MakeFuzzState();
  const psl::codecs::ValidationReport report =
      state->decoder->Validate(std::string_view(reinterpret_cast<const char*>(data), size));
  // Invariant for any input: every problem names its rule (code) and says what is wrong.
  psl::codecs::testing::AbortUnlessProblemsNamed(report.problems);
  return 0;
}

#ifdef PSL_FUZZ_REPLAY_MAIN

// Usage: mhm_fuzz_replay FILE_OR_FOLDER...
int main(int argc, char** argv) {
  return psl::codecs::testing::ReplayFuzzInputs("mhm_fuzz_replay", argc, argv);
}
#endif  // PSL_FUZZ_REPLAY_MAIN
