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
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

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
  std::string enrolment;         // unsigned
  std::string enrolment_signed;  // XAdES
  std::string enrolment_soap;    // WS-Security envelope of the signed request
  std::string detail;            // the decoded kmehr payload
  std::string kmehr_version;
  std::string claim;  // genasync post, unsigned
  std::string claim_signed;
  std::string claim_soap;
  std::string error;
};

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
    x->enrolment = own != nullptr ? ReadFile(own) : TodaysEnrolment(x->clock);
    ValidationReport report;
    auto decoded = MhmCodec(*x->schemas, x->clock).Decode(x->enrolment, &report);
    if (!decoded.ok()) {
      std::string problems;
      for (const auto& p : report.problems) {
        problems += " " + p.code + ": " + p.message + ";";
      }
      return fail("the enrolment does not decode: " + decoded.status().ToString() + problems);
    }
    x->detail = decoded->detail_xml;
    x->kmehr_version = decoded->kmehr_version;
    auto signed_enrolment = SignBlobRequest(x->enrolment, x->practice, nullptr, x->clock);
    if (!signed_enrolment.ok()) {
      return fail("sign: " + signed_enrolment.status().ToString());
    }
    x->enrolment_signed = std::move(signed_enrolment).value();
    auto soap = BuildSoapRequest(x->enrolment_signed, {}, x->gateway, x->clock);
    if (!soap.ok()) {
      return fail("soap: " + soap.status().ToString());
    }
    x->enrolment_soap = std::move(soap).value();

    x->claim =
        ReadFile(std::string(PSL_SOURCE_DIR) + "/conformance/efact/valid/hcpfac_deflate.xml");
    ValidationReport claim_report;
    auto claim = GenAsyncCodec(*x->schemas).Decode(x->claim, &claim_report);
    if (!claim.ok()) {
      return fail("the claim does not decode: " + claim.status().ToString());
    }
    auto claim_signed = SignGenAsyncPost(x->claim, x->practice, nullptr, x->clock);
    if (!claim_signed.ok()) {
      return fail("claim sign: " + claim_signed.status().ToString());
    }
    x->claim_signed = std::move(claim_signed).value();
    auto claim_soap = BuildSoapRequest(x->claim_signed, {}, x->gateway, x->clock);
    if (!claim_soap.ok()) {
      return fail("claim soap: " + claim_soap.status().ToString());
    }
    x->claim_soap = std::move(claim_soap).value();
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

// --- stages shared by both flows ----------------------------------------------------------------
void Parse(benchmark::State& state, const std::string& doc) {
  for (auto _ : state) {
    auto parsed = ParseUntrustedXml(doc, XmlLimits{}, nullptr);
    Check(state, parsed.ok(), "parse");
    benchmark::DoNotOptimize(parsed);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * doc.size()));
}

void ValidateEnvelope(benchmark::State& state, const std::string& doc, EnvelopeSchema set) {
  for (auto _ : state) {
    state.PauseTiming();  // a fresh document each time: validation records xs:ID attributes
    auto parsed = ParseUntrustedXml(doc, XmlLimits{}, nullptr);
    std::vector<Problem> problems;
    state.ResumeTiming();
    const bool ok =
        parsed.ok() && F().schemas->ValidateEnvelope(set, parsed->get(), "envelope", &problems);
    Check(state, ok, "envelope not valid");
  }
}

// --- the enrolment (MHM) ------------------------------------------------------------------------
void BM_Enrolment_Parse(benchmark::State& state) {
  if (Ready(state)) {
    Parse(state, F().enrolment);
  }
}

void BM_Enrolment_ValidateEnvelope(benchmark::State& state) {
  if (Ready(state)) {
    ValidateEnvelope(state, F().enrolment, EnvelopeSchema::kMhm);
  }
}

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

// The whole codec: parse, both XSDs, blob decoding and the business rules. Rules alone cost
// Decode - (Parse + ValidateEnvelope + ParseDetail + ValidateDetail).
void BM_Enrolment_Decode(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const MhmCodec codec(*F().schemas, F().clock);
  for (auto _ : state) {
    ValidationReport report;
    auto decoded = codec.Decode(F().enrolment, &report);
    Check(state, decoded.ok(), "decode");
    benchmark::DoNotOptimize(decoded);
  }
}

void BM_Enrolment_SignXades(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  for (auto _ : state) {
    auto signed_doc = SignBlobRequest(F().enrolment, F().practice, nullptr, F().clock);
    Check(state, signed_doc.ok(), "sign");
    benchmark::DoNotOptimize(signed_doc);
  }
}

void BM_Enrolment_VerifyXades(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  for (auto _ : state) {
    auto verified = VerifyBlobRequest(F().enrolment_signed, F().trust.get(), F().clock);
    Check(state, verified.ok(), "verify");
    benchmark::DoNotOptimize(verified);
  }
}

void BM_Enrolment_SoapSign(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  for (auto _ : state) {
    auto soap = BuildSoapRequest(F().enrolment_signed, {}, F().gateway, F().clock);
    Check(state, soap.ok(), "soap sign");
    benchmark::DoNotOptimize(soap);
  }
}

void BM_Enrolment_SoapVerify(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  SoapVerifyOptions options;
  options.intermediates = &F().intermediates;
  for (auto _ : state) {
    auto verified = VerifySoapRequest(F().enrolment_soap, F().trust.get(), F().clock, options);
    Check(state, verified.ok(), "soap verify");
    benchmark::DoNotOptimize(verified);
  }
}

// The peers' work (load-tests/peers): decode (parse, both XSDs, rules) + XAdES sign.
void BM_EnrolmentIntake(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const MhmCodec codec(*F().schemas, F().clock);
  for (auto _ : state) {
    ValidationReport report;
    auto decoded = codec.Decode(F().enrolment, &report);
    auto signed_doc = SignBlobRequest(F().enrolment, F().practice, nullptr, F().clock);
    Check(state, decoded.ok() && signed_doc.ok(), "intake");
    benchmark::DoNotOptimize(signed_doc);
  }
  state.SetItemsProcessed(state.iterations());
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

// --- the claim (eFact, genasync post) -----------------------------------------------------------
void BM_Claim_Parse(benchmark::State& state) {
  if (Ready(state)) {
    Parse(state, F().claim);
  }
}

void BM_Claim_ValidateEnvelope(benchmark::State& state) {
  if (Ready(state)) {
    ValidateEnvelope(state, F().claim, EnvelopeSchema::kGenAsync);
  }
}

// Parse, envelope XSD, blob inflate, eFact parse and the gateway rules.
void BM_Claim_Decode(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const GenAsyncCodec codec(*F().schemas);
  for (auto _ : state) {
    ValidationReport report;
    auto decoded = codec.Decode(F().claim, &report);
    Check(state, decoded.ok(), "decode");
    benchmark::DoNotOptimize(decoded);
  }
}

void BM_Claim_SignXades(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  for (auto _ : state) {
    auto signed_doc = SignGenAsyncPost(F().claim, F().practice, nullptr, F().clock);
    Check(state, signed_doc.ok(), "sign");
    benchmark::DoNotOptimize(signed_doc);
  }
}

void BM_Claim_VerifyXades(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  for (auto _ : state) {
    auto verified = VerifyGenAsyncPost(F().claim_signed, F().trust.get(), F().clock);
    Check(state, verified.ok(), "verify");
    benchmark::DoNotOptimize(verified);
  }
}

void BM_Claim_SoapSign(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  for (auto _ : state) {
    auto soap = BuildSoapRequest(F().claim_signed, {}, F().gateway, F().clock);
    Check(state, soap.ok(), "soap sign");
    benchmark::DoNotOptimize(soap);
  }
}

void BM_Claim_SoapVerify(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  SoapVerifyOptions options;
  options.intermediates = &F().intermediates;
  for (auto _ : state) {
    auto verified = VerifySoapRequest(F().claim_soap, F().trust.get(), F().clock, options);
    Check(state, verified.ok(), "soap verify");
    benchmark::DoNotOptimize(verified);
  }
}

void BM_ClaimIntake(benchmark::State& state) {
  if (!Ready(state)) {
    return;
  }
  const GenAsyncCodec codec(*F().schemas);
  for (auto _ : state) {
    ValidationReport report;
    auto decoded = codec.Decode(F().claim, &report);
    auto signed_doc = SignGenAsyncPost(F().claim, F().practice, nullptr, F().clock);
    Check(state, decoded.ok() && signed_doc.ok(), "intake");
    benchmark::DoNotOptimize(signed_doc);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_RsaSign);
BENCHMARK(BM_Enrolment_Parse);
BENCHMARK(BM_Enrolment_ValidateEnvelope);
BENCHMARK(BM_Enrolment_ParseDetail);
BENCHMARK(BM_Enrolment_ValidateDetail);
BENCHMARK(BM_Enrolment_Decode);
BENCHMARK(BM_Enrolment_SignXades);
BENCHMARK(BM_Enrolment_VerifyXades);
BENCHMARK(BM_Enrolment_SoapSign);
BENCHMARK(BM_Enrolment_SoapVerify);
BENCHMARK(BM_EnrolmentIntake);
BENCHMARK(BM_Claim_Parse);
BENCHMARK(BM_Claim_ValidateEnvelope);
BENCHMARK(BM_Claim_Decode);
BENCHMARK(BM_Claim_SignXades);
BENCHMARK(BM_Claim_VerifyXades);
BENCHMARK(BM_Claim_SoapSign);
BENCHMARK(BM_Claim_SoapVerify);
BENCHMARK(BM_ClaimIntake);

}  // namespace
}  // namespace psl::codecs

BENCHMARK_MAIN();
