// libFuzzer target: GenAsyncCodec::Decode (genasync post → blob → eFact file → sender and
// destination rules). An input starting with '<' is the whole post (the conformance corpus replays
// as is); any other input is an eFact file placed, base64 and deflated or not, into a valid post
// envelope, so that mutations reach the flat-file and routing code instead of stopping in
// libxml2. An input whose first byte is 0…3 uses it as the variant (bit 0: deflate, else none;
// bit 1: ECM-HCPFAC, else HCPFAC) and the rest as the file; otherwise the whole input is the
// file, deflated, as HCPFAC (so the eFact seeds of codecs/testdata/efact replay as they are).
//
//   cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DPSL_FUZZ=ON
//   cmake --build build-fuzz --target genasync_fuzz
//   build-fuzz/codecs/genasync_fuzz -max_total_time=60 NEW_CORPUS_DIR conformance/efact
//       codecs/testdata/efact
//
// Built with -DPSL_FUZZ_REPLAY_MAIN it becomes genasync_fuzz_replay, which feeds every file named
// on its command line (folders recursively) to the same entry point (ctest replays
// conformance/efact and codecs/testdata/efact).
// Schemas: $PSL_SCHEMAS_DIR when set, else PSL_SHARED_DIR/schemas.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/genasync.h"
#include "codecs/schema_registry.h"
#include "codecs/testing/fuzz_replay.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

struct FuzzState {
  XmlLibrary library;
  std::unique_ptr<SchemaRegistry> schemas;
  std::unique_ptr<GenAsyncCodec> codec;
};

FuzzState* MakeFuzzState() {
  auto* state = new FuzzState();
  state->schemas = testing::LoadFuzzSchemasOrDie("genasync_fuzz", PSL_SHARED_DIR);
  state->codec = std::make_unique<GenAsyncCodec>(*state->schemas);
  return state;
}

std::string Envelope(std::string_view input) {
  const auto first = static_cast<unsigned char>(input[0]);
  const bool has_variant = first <= 3U;
  const bool deflate = !has_variant || (first & 1U) != 0;
  const bool mediprima = has_variant && (first & 2U) != 0;
  const std::string_view file = has_variant ? input.substr(1) : input;
  std::string blob(file);
  if (deflate) {
    StatusOr<std::string> deflated = DeflateRaw(file);
    if (!deflated.ok()) {
      std::abort();  // deflating never fails on valid input
    }
    blob = std::move(deflated).value();
  }
  return std::string(
             "<gen:post xmlns:gen=\"urn:be:cin:nip:async:generic\" "
             "xmlns:c=\"urn:be:cin:mycarenet:esb:common:v2\"><gen:CommonInput><c:Request>"
             "<c:IsTest>true</c:IsTest></c:Request><c:Origin><c:Package><c:Name>F</c:Name>"
             "<c:License><c:Username>U</c:Username><c:Password>P</c:Password></c:License>"
             "</c:Package><c:CareProvider><c:Nihii><c:Quality>doctor</c:Quality>"
             "<c:Value>12345625004</c:Value></c:Nihii></c:CareProvider></c:Origin>"
             "</gen:CommonInput><gen:Detail ContentType=\"text/plain\" ContentEncoding=\"") +
         (deflate ? "deflate" : "none") + "\" MessageName=\"" +
         (mediprima ? "ECM-HCPFAC" : "HCPFAC") + "\" Id=\"blob\">" + EncodeBase64(blob) +
         "</gen:Detail></gen:post>";
}

}  // namespace
}  // namespace psl::codecs

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static psl::codecs::FuzzState* const state = psl::codecs::MakeFuzzState();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (input.empty()) {
    return 0;
  }
  const std::string bytes = input[0] == '<' ? std::string(input) : psl::codecs::Envelope(input);
  psl::codecs::ValidationReport report;
  const psl::StatusOr<psl::codecs::GenAsyncPost> post = state->codec->Decode(bytes, &report);
  // Invariants for any input: every problem names its rule and says what is wrong; a refusal
  // comes with an error and an acceptance with none; an accepted post names one insurer and
  // one sender.
  psl::codecs::testing::AbortUnlessOutcomeMatches(post.ok(), report.problems);
  if (post.ok() && (post->destination.size() != 3 || post->sender_nihii.size() != 11 ||
                    post->record_count != post->file.records.size())) {
    std::abort();
  }
  return 0;
}

#ifdef PSL_FUZZ_REPLAY_MAIN

// Usage: genasync_fuzz_replay FILE_OR_FOLDER...
int main(int argc, char** argv) {
  return psl::codecs::testing::ReplayFuzzInputs("genasync_fuzz_replay", argc, argv);
}
#endif  // PSL_FUZZ_REPLAY_MAIN
