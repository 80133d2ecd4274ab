// libFuzzer target for the MediPrima codec, both directions: every input goes through
// MediPrimaCodec::Decode (hardened parse, UMA / consult XSD, the rules, with an authenticated
// NIHII so the mismatch rule runs too) and through ParseMediPrimaResponse (the gateway-side answer
// parser, SOAP envelope or bare body). A request that decodes is also answered with
// BuildMediPrimaResponse, and the answer must parse back. Seed it from conformance/mediprima.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DPSL_FUZZ=ON
//   cmake --build build-fuzz --target mediprima_fuzz
//   build-fuzz/codecs/mediprima_fuzz -max_total_time=60 NEW_CORPUS_DIR conformance/mediprima
//
// Built with -DPSL_FUZZ_REPLAY_MAIN (any compiler) it becomes mediprima_fuzz_replay, which feeds
// every file named on its command line (folders recursively) to the same entry point (ctest).
//
// Schemas: $PSL_SCHEMAS_DIR when set, else PSL_SHARED_DIR/schemas. The clock is fixed at
// 2025-01-02T10:00:00Z, the corpus's business date.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "codecs/mediprima.h"
#include "codecs/schema_registry.h"
#include "codecs/testing/fuzz_replay.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

// The corpus's physician (conformance/generate_mediprima_corpus.py).
constexpr std::string_view kAuthenticatedNihii = "11478761004";

using FuzzState = testing::DatedFuzzState<MediPrimaCodec>;

FuzzState* MakeFuzzState() {
  return testing::MakeDatedFuzzState<MediPrimaCodec>("mediprima_fuzz", PSL_SHARED_DIR);
}

void CheckRequest(FuzzState* state, std::string_view bytes) {
  ValidationReport report;
  StatusOr<MediPrimaRequest> request = state->decoder->Decode(bytes, kAuthenticatedNihii, &report);
  testing::AbortUnlessOutcomeMatches(request.ok(), report.problems);
  if (!request.ok()) {
    return;
  }
  // Answer it as the simulator would; the answer must pass the schema and read back.
  MediPrimaResponseSpec spec;
  spec.attestation_number = "UMA-FUZZ-1";
  if (request->operation == MediPrimaOperation::kSearchAttestation) {
    spec.attestations.push_back({"UMA-FUZZ-1", "2025-01-02", "", "", "11478761004"});
  }
  if (request->operation == MediPrimaOperation::kConsult) {
    MediPrimaCarmedSpec card;
    card.carmed_number = "CARMED-1";
    card.start_date = "2025-01-01";
    card.end_date = "2025-12-31";
    card.cpas_cbe = "0403019261";
    spec.carmeds.push_back(card);
  }
  StatusOr<std::string> built = BuildMediPrimaResponse(*request, spec, state->clock);
  if (!built.ok()) {
    std::abort();
  }
  StatusOr<MediPrimaAnswer> answer = ParseMediPrimaResponse(*built, *state->schemas);
  if (!answer.ok() || answer->operation != request->operation) {
    std::abort();
  }
}

}  // namespace
}  // namespace psl::codecs

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static psl::codecs::FuzzState* const kState = psl::codecs::MakeFuzzState();
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  psl::codecs::CheckRequest(kState, bytes);
  // The same bytes as an answer: any outcome but a crash is fine; a parsed answer has a decision.
  psl::StatusOr<psl::codecs::MediPrimaAnswer> answer =
      psl::codecs::ParseMediPrimaResponse(bytes, *kState->schemas);
  if (answer.ok() && answer->decision.empty()) {
    std::abort();
  }
  return 0;
}

#ifdef PSL_FUZZ_REPLAY_MAIN

// Usage: mediprima_fuzz_replay FILE_OR_FOLDER...
int main(int argc, char** argv) {
  return psl::codecs::testing::ReplayFuzzInputs("mediprima_fuzz_replay", argc, argv);
}
#endif  // PSL_FUZZ_REPLAY_MAIN
