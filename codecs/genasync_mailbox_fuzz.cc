// libFuzzer target: the gateway-side readers of codecs/genasync_mailbox.h. An input starting with
// '<' is an insurer answer and goes to ParseGetResponse (verified against an EMPTY trust store),
// ParsePostResponse, ParseConfirmResponse and, as a request, ParseGetRequest and
// ParseConfirmRequest; any other input is an eFact return file for ParseEfactReturn.
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DPSL_FUZZ=ON
//   cmake --build build-fuzz --target genasync_mailbox_fuzz
//   build-fuzz/codecs/genasync_mailbox_fuzz -max_total_time=60 NEW_CORPUS_DIR
//       codecs/testdata/genasync_mailbox
//
// Built with -DPSL_FUZZ_REPLAY_MAIN it becomes genasync_mailbox_fuzz_replay, which feeds every
// file named on its command line (folders recursively) to the same entry point (ctest replays
// codecs/testdata/genasync_mailbox and codecs/testdata/efact).
// Invariants: nothing verifies against an empty trust store (no message or TAck is ever
// returned: fail closed); a parsed return has one of the four message types, 6-digit codes, no
// error record on an acknowledgement, and a 14-digit reference.
// Schemas: $PSL_SCHEMAS_DIR when set, else PSL_SHARED_DIR/schemas.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/schema_registry.h"
#include "codecs/testing/fuzz_replay.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"

namespace psl::codecs {
namespace {

struct FuzzState {
  XmlLibrary library;
  XmlSecLibrary xmlsec;
  std::unique_ptr<SchemaRegistry> schemas;
  X509_STORE* empty_trust = nullptr;
  SystemClock clock;
};

FuzzState* MakeFuzzState() {
  auto* state = new FuzzState();
  if (!state->xmlsec.status().ok()) {
    std::fprintf(stderr, "genasync_mailbox_fuzz: cannot start xmlsec\n");
    std::abort();
  }
  state->schemas = testing::LoadFuzzSchemasOrDie("genasync_mailbox_fuzz", PSL_SHARED_DIR);
  state->empty_trust = X509_STORE_new();
  return state;
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

}  // namespace
}  // namespace psl::codecs

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace psl::codecs;  // NOLINT(google-build-using-namespace)
  static FuzzState* const state = MakeFuzzState();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (!input.empty() && input[0] == '<') {
    const psl::StatusOr<GetResponse> got =
        ParseGetResponse(input, *state->schemas, state->empty_trust, state->clock);
    if (got.ok() && (!got->messages.empty() || !got->tacks.empty())) {
      std::abort();  // accepted an item no trusted key signed
    }
    (void)ParsePostResponse(input, *state->schemas);
    (void)ParseConfirmResponse(input, *state->schemas);
    (void)ParseGetRequest(input, *state->schemas);
    (void)ParseConfirmRequest(input, *state->schemas);
    return 0;
  }
  const psl::StatusOr<EfactReturn> ret = ParseEfactReturn(input);
  if (ret.ok()) {
    if (ret->message_type != EfactReturnMessageType(ret->kind) ||
        ret->original_reference.size() != 14 || !IsDigits(ret->original_reference)) {
      std::abort();
    }
    if (ret->kind == EfactReturnKind::kAcknowledged && !ret->errors.empty()) {
      std::abort();
    }
    for (const EfactReturnError& e : ret->errors) {
      if (e.code.size() != 6 || !IsDigits(e.code) || e.record < 0) {
        std::abort();
      }
    }
  }
  return 0;
}

#ifdef PSL_FUZZ_REPLAY_MAIN

// Usage: genasync_mailbox_fuzz_replay FILE_OR_FOLDER...
int main(int argc, char** argv) {
  return psl::codecs::testing::ReplayFuzzInputs("genasync_mailbox_fuzz_replay", argc, argv);
}
#endif  // PSL_FUZZ_REPLAY_MAIN
