// Per-stage costs of the two intake flows, on one core, measured side by side in one run
// (STYLE.md §7: ratios, never asserted): the MHM enrolment (the shared SYNTHETIC
// SendSubscriptionRequest, dated today) and the eFact claim (genasync post, the conformance
// corpus's conformance/efact/valid/hcpfac_deflate.xml). Stages: parse, envelope XSD, Detail XSD,
// the whole codec (parse + both XSDs + business rules), XAdES sign and verify, SOAP WS-Security
// sign and verify, and a bare RSA-2048 signature with the same key (the floor each signature
// costs). BM_EnrolmentIntake is the per-document work load-tests/bench compares with the Python
// and Java peers: decode (parse, validate envelope and Detail, rules) + XAdES sign.
// The commit stage is load-tests/store_benchmark.
//
//   codecs_benchmark [--benchmark_filter=Enrolment] [--benchmark_min_time=0.5]
//   PSL_BENCH_ENVELOPE=file: an unsigned MHM request to use instead of the redated sample.
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/brussels_time.h"
#include "base/clock.h"
#include "base/crypto_handles.h"
#include "certs/key_store.h"
#include "certs/testing/test_pki.h"
#include "certs/trust_store.h"
#include "codecs/base64.h"
#include "codecs/genasync.h"
#include "codecs/mhm_codec.h"
#include "codecs/schema_registry.h"
#include "codecs/soap.h"
#include "codecs/validator.h"
#include "codecs/xades.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"

namespace psl::codecs {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void ReplaceAll(std::string& s, std::string_view from, std::string_view to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

std::string IsoDate(std::chrono::year_month_day d) {
  char text[16];
  std::snprintf(text, sizeof text, "%04d-%02u-%02u", static_cast<int>(d.year()),
                static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
  return text;
}

// The sample as conformance/e2e/harness.py's enrolment() makes it: dated today (Brussels), no
// Xades, the patient's mutuality in Routing.
std::string TodaysEnrolment(const Clock& clock) {
  std::string env =
      ReadFile(std::string(PSL_SHARED_DIR) + "/samples/mhm-SendSubscriptionRequest.SYNTHETIC.xml");
  const std::size_t open = env.find('>', env.find("<mcp:Detail")) + 1;
  const std::size_t close = env.find("</mcp:Detail>");
  StatusOr<std::string> detail = DecodeBase64(std::string_view(env).substr(open, close - open));
  if (!detail.ok()) {
    return "";
  }
  const std::chrono::year_month_day today = BrusselsToday(clock);
  const std::chrono::year_month_day next{(today.year() / today.month() / 1) +
                                         std::chrono::months{1}};
  std::string d = *detail;
  const std::string stamp = IsoDate(today).substr(0, 4) + IsoDate(today).substr(5, 2) +
                            IsoDate(today).substr(8, 2) + "093000";
  ReplaceAll(d, "2025-02-01", IsoDate(next));
  ReplaceAll(d, "20250102093000", stamp);
  ReplaceAll(d, "2025-01-02", IsoDate(today));
  env.replace(open, close - open, EncodeBase64(d));
  const std::size_t xb = env.find("<mcp:Xades>");
  const std::size_t xe = env.find("</mcp:Xades>");
  if (xb != std::string::npos && xe != std::string::npos) {
    env.erase(xb, xe + std::string_view("</mcp:Xades>").size() - xb);
  }
  ReplaceAll(env, "2025-01-02", IsoDate(today));
  ReplaceAll(env, "<mc:Ssin>90010100123</mc:Ssin></mc:CareReceiver>",
             "<mc:Ssin>90010100123</mc:Ssin><mc:RegNrWithMut>90010100123</mc:RegNrWithMut>"
             "<mc:Mutuality>319</mc:Mutuality></mc:CareReceiver>");
  return env;
}

// One intake flow's request at each stage.
struct FlowDocs {
  std::string request;         // unsigned
  std::string signed_request;  // XAdES
  std::string soap;            // WS-Security envelope of the signed request
};

// Everything the benchmarks share, set up once (libxml2 cannot be re-initialised).
struct Fixture {
  XmlLibrary xml;
  XmlSecLibrary xmlsec;
  SystemClock clock;
  std::unique_ptr<SchemaRegistry> schemas;
  SigningIdentity practice;
  SigningIdentity gateway;
  X509StorePtr trust;
  std::vector<X509Ptr> intermediates;
  FlowDocs enrolment;  // MHM SendSubscriptionRequest
  std::string detail;  // the enrolment's decoded kmehr payload
  std::string kmehr_version;
  FlowDocs claim;  // genasync post
  std::string error;
};

// What differs between the flows: the document, its envelope schema, codec and XAdES profile.
struct EnrolmentFlow {
  static constexpr std::string_view kName = "Enrolment";
  static constexpr std::string_view kErrorPrefix = "";
  static constexpr EnvelopeSchema kEnvelope = EnvelopeSchema::kMhm;
  static const FlowDocs& Docs(const Fixture& f) { return f.enrolment; }
  static MhmCodec Codec(const Fixture& f) { return MhmCodec(*f.schemas, f.clock); }
  static StatusOr<std::string> Sign(const Fixture& f, const std::string& doc) {
    return SignBlobRequest(doc, f.practice, nullptr, f.clock);
  }
  static StatusOr<VerifiedSignature> Verify(const Fixture& f, const std::string& doc) {
    return VerifyBlobRequest(doc, f.trust.get(), f.clock);
  }
};

struct ClaimFlow {
  static constexpr std::string_view kName = "Claim";
  static constexpr std::string_view kErrorPrefix = "claim ";
  static constexpr EnvelopeSchema kEnvelope = EnvelopeSchema::kGenAsync;
  static const FlowDocs& Docs(const Fixture& f) { return f.claim; }
  static GenAsyncCodec Codec(const Fixture& f) { return GenAsyncCodec(*f.schemas); }
  static StatusOr<std::string> Sign(const Fixture& f, const std::string& doc) {
    return SignGenAsyncPost(doc, f.practice, nullptr, f.clock);
  }
  static StatusOr<VerifiedSignature> Verify(const Fixture& f, const std::string& doc) {
    return VerifyGenAsyncPost(doc, f.trust.get(), f.clock);
  }
};

// Signs the flow's request, then wraps it in WS-Security; "" or what failed.
template <typename Flow>
std::string SignAndWrap(Fixture* x, FlowDocs* docs) {
  auto signed_request = Flow::Sign(*x, docs->request);
  if (!signed_request.ok()) {
    return std::string(Flow::kErrorPrefix) + "sign: " + signed_request.status().ToString();
  }
  docs->signed_request = std::move(signed_request).value();
  auto soap = BuildSoapRequest(docs->signed_request, {}, x->gateway, x->clock);
  if (!soap.ok()) {
    return std::string(Flow::kErrorPrefix) + "soap: " + soap.status().ToString();
  }
  docs->soap = std::move(soap).value();
  return "";
}

const Fixture& F() {
  static Fixture* const f = [] {
    auto* x = new Fixture();
    const certs::testing::TestPki& pki = certs::testing::SharedTestPki();
    auto fail = [x](const std::string& what) {
      x->error = what;
      return x;
    };
    if (!pki.ok()) {
      return fail("cannot make the test PKI");
    }
    auto schemas = SchemaRegistry::Load(std::string(PSL_SHARED_DIR) + "/schemas");
    if (!schemas.ok()) {
      return fail(schemas.status().ToString());
    }
    x->schemas = std::move(schemas).value();
    const std::filesystem::path chain = pki / "practice-81234530000-chain.pem";
    auto practice = certs::LoadPemIdentity(pki / "practice-81234530000.key",
                                           pki / "practice-81234530000.pem", &chain, nullptr);
    const std::filesystem::path gw_chain = pki / "gateway-chain.pem";
    auto gateway =
        certs::LoadPemIdentity(pki / "gateway.key", pki / "gateway.pem", &gw_chain, nullptr);
    auto trust = certs::LoadTrustStore(pki / "ca.pem");
    auto intermediates = certs::ReadPemCertificates(pki / "intermediate.pem");
    if (!practice.ok() || !gateway.ok() || !trust.ok() || !intermediates.ok()) {
      return fail("cannot load the test PKI's keys");
    }
    x->practice = std::move(practice).value();
    x->gateway = std::move(gateway).value();
    x->trust = std::move(trust).value();
    x->intermediates = std::move(intermediates).value();

    const char* own = std::getenv("PSL_BENCH_ENVELOPE");
    x->enrolment.request = own != nullptr ? ReadFile(own) : TodaysEnrolment(x->clock);
    ValidationReport report;
    auto decoded = MhmCodec(*x->schemas, x->clock).Decode(x->enrolment.request, &report);
    if (!decoded.ok()) {
      std::string problems;
      for (const auto& p : report.problems) {
        problems += " " + p.code + ": " + p.message + ";";
      }
      return fail("the enrolment does not decode: " + decoded.status().ToString() + problems);
    }
    x->detail = decoded->detail_xml;
    x->kmehr_version = decoded->kmehr_version;
    if (std::string error = SignAndWrap<EnrolmentFlow>(x, &x->enrolment); !error.empty()) {
      return fail(error);
    }

    x->claim.request =
        ReadFile(std::string(PSL_SOURCE_DIR) + "/conformance/efact/valid/hcpfac_deflate.xml");
    ValidationReport claim_report;
    auto claim = GenAsyncCodec(*x->schemas).Decode(x->claim.request, &claim_report);
    if (!claim.ok()) {
      return fail("the claim does not decode: " + claim.status().ToString());
    }
    if (std::string error = SignAndWrap<ClaimFlow>(x, &x->claim); !error.empty()) {
      return fail(error);
    }
    return x;
  }();
  return *f;
}

bool Ready(benchmark::State& state) {
  if (!F().error.empty()) {
    state.SkipWithError(F().error.c_str());
    return false;
  }
  return true;
}

void Check(benchmark::State& state, bool ok, const char* what) {
  if (!ok) {
    state.SkipWithError(what);
  }
}

// Runs `op` (returning a Status-like result) once an iteration; `what` names it when it fails.
template <typename Op>
void Repeat(benchmark::State& state, const char* what, const Op& op) {
  for (auto _ : state) {
    auto result = op();
    Check(state, result.ok(), what);
    benchmark::DoNotOptimize(result);
  }
}

void Parse(benchmark::State& state, const std::string& doc) {
  Repeat(state, "parse", [&] { return ParseUntrustedXml(doc, XmlLimits{}, nullptr); });
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}

// --- the stages of both flows (BM_<Flow>_<Stage>) -----------------------------------------------
template <typename Flow>
void BM_Parse(benchmark::State& state) {
  if (Ready(state)) {
    Parse(state, Flow::Docs(F()).request);
  }
}

template <typename Flow>
void BM_ValidateEnvelope(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const std::string& doc = Flow::Docs(F()).request;
  for (auto _ : state) {
    state.PauseTiming();  // a fresh document each time: validation records xs:ID attributes
    auto parsed = ParseUntrustedXml(doc, XmlLimits{}, nullptr);
    std::vector<Problem> problems;
    state.ResumeTiming();
    const bool ok = parsed.ok() && F().schemas->ValidateEnvelope(Flow::kEnvelope, parsed->get(),
                                                                 "envelope", &problems);
    Check(state, ok, "envelope not valid");
  }
}

// The whole codec. Enrolment: parse, both XSDs, blob decoding and the business rules (rules
// alone cost Decode - (Parse + ValidateEnvelope + ParseDetail + ValidateDetail)). Claim: parse,
// envelope XSD, blob inflate, eFact parse and the gateway rules.
template <typename Flow>
void BM_Decode(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const auto codec = Flow::Codec(F());
  Repeat(state, "decode", [&] {
    ValidationReport report;
    return codec.Decode(Flow::Docs(F()).request, &report);
  });
}

template <typename Flow>
void BM_SignXades(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  Repeat(state, "sign", [] { return Flow::Sign(F(), Flow::Docs(F()).request); });
}

template <typename Flow>
void BM_VerifyXades(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  Repeat(state, "verify", [] { return Flow::Verify(F(), Flow::Docs(F()).signed_request); });
}

template <typename Flow>
void BM_SoapSign(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  Repeat(state, "soap sign", [] {
    return BuildSoapRequest(Flow::Docs(F()).signed_request, {}, F().gateway, F().clock);
  });
}

template <typename Flow>
void BM_SoapVerify(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  SoapVerifyOptions options;
  options.intermediates = &F().intermediates;
  Repeat(state, "soap verify", [&] {
    return VerifySoapRequest(Flow::Docs(F()).soap, F().trust.get(), F().clock, options);
  });
}

// The peers' work (load-tests/peers): decode (parse, XSDs, rules) + XAdES sign.
template <typename Flow>
void BM_Intake(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const auto codec = Flow::Codec(F());
  for (auto _ : state) {
    ValidationReport report;
    auto decoded = codec.Decode(Flow::Docs(F()).request, &report);
    auto signed_doc = Flow::Sign(F(), Flow::Docs(F()).request);
    Check(state, decoded.ok() && signed_doc.ok(), "intake");
    benchmark::DoNotOptimize(signed_doc);
  }
  state.SetItemsProcessed(state.iterations());
}

// --- the enrolment's kmehr Detail ---------------------------------------------------------------
void BM_Enrolment_ParseDetail(benchmark::State& state) {
  if (Ready(state)) {
    Parse(state, F().detail);
  }
}

void BM_Enrolment_ValidateDetail(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  for (auto _ : state) {
    state.PauseTiming();
    auto parsed = ParseUntrustedXml(F().detail, XmlLimits{}, nullptr);
    std::vector<Problem> problems;
    state.ResumeTiming();
    const bool ok = parsed.ok() && F().schemas->ValidateKmehrRequest(
                                       F().kmehr_version, parsed->get(), "detail", &problems);
    Check(state, ok, "detail not valid");
  }
}

// The floor: one RSA-2048 PKCS#1 v1.5 SHA-256 signature of 32 bytes with the practice key.
void BM_RsaSign(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const unsigned char data[32] = {1};
  unsigned char sig[512];
  for (auto _ : state) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = sizeof sig;
    const bool ok =
        EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, F().practice.key.get()) == 1 &&
        EVP_DigestSign(ctx, sig, &len, data, sizeof data) == 1;
    EVP_MD_CTX_free(ctx);
    Check(state, ok, "rsa sign");
  }
}

// Registers BM_<Flow>_Parse ... BM_<Flow>Intake (names load-tests/bench reads); `detail` stages
// run after the envelope's.
template <typename Flow>
void RegisterFlow(
    std::initializer_list<std::pair<const char*, void (*)(benchmark::State&)>> detail = {}) {
  const std::string prefix = "BM_" + std::string(Flow::kName);
  benchmark::RegisterBenchmark((prefix + "_Parse").c_str(), BM_Parse<Flow>);
  benchmark::RegisterBenchmark((prefix + "_ValidateEnvelope").c_str(), BM_ValidateEnvelope<Flow>);
  for (const auto& [name, fn] : detail) {
    benchmark::RegisterBenchmark((prefix + name).c_str(), fn);
  }
  benchmark::RegisterBenchmark((prefix + "_Decode").c_str(), BM_Decode<Flow>);
  benchmark::RegisterBenchmark((prefix + "_SignXades").c_str(), BM_SignXades<Flow>);
  benchmark::RegisterBenchmark((prefix + "_VerifyXades").c_str(), BM_VerifyXades<Flow>);
  benchmark::RegisterBenchmark((prefix + "_SoapSign").c_str(), BM_SoapSign<Flow>);
  benchmark::RegisterBenchmark((prefix + "_SoapVerify").c_str(), BM_SoapVerify<Flow>);
  benchmark::RegisterBenchmark((prefix + "Intake").c_str(), BM_Intake<Flow>);
}

}  // namespace
}  // namespace psl::codecs

int main(int argc, char** argv) {
  using namespace psl::codecs;  // NOLINT(google-build-using-namespace)
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RegisterBenchmark("BM_RsaSign", BM_RsaSign);
  RegisterFlow<EnrolmentFlow>({{"_ParseDetail", BM_Enrolment_ParseDetail},
                               {"_ValidateDetail", BM_Enrolment_ValidateDetail}});
  RegisterFlow<ClaimFlow>();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
