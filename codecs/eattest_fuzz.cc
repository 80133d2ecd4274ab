// libFuzzer target for the eAttest v3 request decoder: arbitrary bytes through
// EAttestCodec::Decode (hardened parse, eAttest v3 envelope schema, Detail blob decoding, kmehr
// 1.42 schema, the eAttest rules with an authenticated practice) and SetAttemptNumber (the
// delivery-side rewrite of CommonInput). Seed it from conformance/eattest.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DPSL_FUZZ=ON
//   cmake --build build-fuzz --target eattest_fuzz
//   build-fuzz/codecs/eattest_fuzz -max_total_time=60 NEW_CORPUS_DIR conformance/eattest
//
// Built with -DPSL_FUZZ_REPLAY_MAIN it is eattest_fuzz_replay, run by ctest over the corpus.
// Schemas: $PSL_SCHEMAS_DIR when set, else PSL_SHARED_DIR/schemas. Clock fixed at
// 2025-01-02T10:00:00Z, the corpus's business date.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "codecs/eattest.h"
#include "codecs/schema_registry.h"
#include "codecs/testing/fuzz_replay.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

using FuzzState = testing::DatedFuzzState<EAttestCodec>;

FuzzState* MakeFuzzState() {
  return testing::MakeDatedFuzzState<EAttestCodec>("eattest_fuzz", PSL_SHARED_DIR);
}

}  // namespace
}  // namespace psl::codecs

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static psl::codecs::FuzzState* const state = psl::codecs::MakeFuzzState();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  psl::codecs::ValidationReport report;
  // The practice of the corpus (generate_eattest_corpus.py DOCTOR).
  const auto decoded = state->decoder->Decode(bytes, "12345625004", &report);
  // Invariant: success iff no error was reported, and a success names its parts.
  psl::codecs::testing::AbortUnlessOutcomeMatches(decoded.ok(), report.problems);
  if (decoded.ok() && (decoded->envelope == nullptr || decoded->detail_xml.empty() ||
                       decoded->care_provider_nihii.size() != 11))
    std::abort();
  const auto rewritten = psl::codecs::SetAttemptNumber(bytes, 2);
  if (rewritten.ok() && rewritten->find("urn:be:cin:nippin:attemptNbr") == std::string::npos)
    std::abort();
  return 0;
}

#ifdef PSL_FUZZ_REPLAY_MAIN

// Usage: eattest_fuzz_replay FILE_OR_FOLDER...
int main(int argc, char** argv) {
  return psl::codecs::testing::ReplayFuzzInputs("eattest_fuzz_replay", argc, argv);
}
#endif  // PSL_FUZZ_REPLAY_MAIN
