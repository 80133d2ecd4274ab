#include "codecs/mhm_response.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "base/brussels_time.h"
#include "base/testing/fake_clock.h"
#include "codecs/mhm_codec.h"
#include "codecs/soap.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/testing/soap_test_support.h"
#include "codecs/testing/xades_test_support.h"

namespace psl::codecs {
namespace {

using mhm_test::Redated;
using mhm_test::ReplaceAll;
using std::chrono::seconds;

constexpr char kSampleNiss[] = "90010100123";

class MhmResponseTest : public ::testing::Test {
 protected:
  MhmResponseTest() : codec_(mhm_test::TestSchemas(), clock_) {}

  void SetUp() override {
    xades_test::InitLibraries();
    ASSERT_TRUE(xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    clock_.Set(std::chrono::floor<seconds>(std::chrono::system_clock::now()));
    material_ = soap_test::LoadMaterial();
    StatusOr<MhmRequest> request = Decode(Redated(mhm_test::SampleEnvelope(), clock_));
    ASSERT_TRUE(request.ok()) << request.status().ToString() << "\n" << mhm_test::Dump(report_);
    subscription_ = std::move(request).value();
  }

  StatusOr<MhmRequest> Decode(const std::string& envelope) {
    report_ = ValidationReport();
    return codec_.Decode(envelope, &report_);
  }

  static MhmResponseSpec Accepted() {
    MhmResponseSpec spec;
    spec.insurer_code = "300";
    spec.decision_reference = "300000000042";
    spec.output_reference = "OUT-1";
    spec.nip_reference = "NIP-1";
    return spec;
  }
  static MhmResponseSpec Refused(const std::string& code) {
    MhmResponseSpec spec;
    spec.accepted = false;
    spec.insurer_code = "300";
    spec.output_reference = "OUT-2";
    spec.errors.push_back({code, "/SendTransactionRequest/kmehrmessage/folder/transaction",
                           "The patient is already enrolled in your medical house."});
    return spec;
  }

  std::string Build(const MhmRequest& request, const MhmResponseSpec& spec,
                    const SigningIdentity& id) {
    StatusOr<std::string> built = BuildMhmResponse(request, spec, id, clock_);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    return built.ok() ? *built : std::string();
  }

  StatusOr<MhmAnswer> Parse(const std::string& bytes) {
    return ParseMhmResponse(bytes, mhm_test::TestSchemas(), material_.trust.get(), clock_);
  }

  void ExpectRefusedWith(const std::string& bytes, const std::string& reason) {
    StatusOr<MhmAnswer> answer = Parse(bytes);
    ASSERT_FALSE(answer.ok()) << "accepted a bad answer";
    EXPECT_EQ(answer.status().code(), StatusCode::kInvalid) << answer.status().ToString();
    EXPECT_NE(answer.status().message().find(reason), std::string::npos)
        << answer.status().message();
    EXPECT_EQ(answer.status().message().find(kSampleNiss), std::string::npos);
  }

  psl::testing::FakeClock clock_;
  MhmCodec codec_;
  ValidationReport report_;
  soap_test::Material material_;
  MhmRequest subscription_;
};

TEST_F(MhmResponseTest, AnAcceptedSubscriptionRoundTrips) {
  const std::string built = Build(subscription_, Accepted(), material_.insurer);
  StatusOr<MhmAnswer> answer = Parse(built);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->operation, MhmOperation::kSubscription);
  EXPECT_EQ(answer->decision, kMhmAccepted);
  EXPECT_EQ(answer->insurer_reference, "300000000042");
  EXPECT_TRUE(answer->codes.empty());
  EXPECT_EQ(answer->input_reference, subscription_.envelope_id);
  EXPECT_EQ(answer->nip_reference, "NIP-1");
  EXPECT_EQ(answer->output_reference, "OUT-1");
  EXPECT_NE(answer->signer_subject.find("CN=insurer-300"), std::string::npos)
      << answer->signer_subject;
  EXPECT_FALSE(answer->response_id.empty());
}

TEST_F(MhmResponseTest, TheAnswerPassesTheMhmAndKmehrSchemasWithXadesTAfterDetail) {
  const std::string built = Build(subscription_, Accepted(), material_.insurer);
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(built, XmlLimits{}, &problem);
  ASSERT_TRUE(doc.ok()) << problem.message;
  std::vector<Problem> problems;
  EXPECT_TRUE(mhm_test::TestSchemas().ValidateEnvelope(EnvelopeSchema::kMhm, doc->get(), "envelope",
                                                       &problems))
      << (problems.empty() ? "" : problems.front().message);
  EXPECT_NE(built.find("<mhm:SendSubscriptionResponse"), std::string::npos);
  EXPECT_NE(built.find("InResponseTo=\"" + subscription_.envelope_id + "\""), std::string::npos);
  const std::size_t output = built.find("<mcp:CommonOutput>");
  const std::size_t detail = built.find("<mcp:Detail");
  const std::size_t xades = built.find("<mcp:XadesT>");
  ASSERT_NE(xades, std::string::npos);
  EXPECT_LT(output, detail);
  EXPECT_LT(detail, xades);

  const std::string kmehr = xades_test::Unbase64(xades_test::ElementText(built, "Detail"));
  StatusOr<XmlDocPtr> kdoc = ParseUntrustedXml(kmehr, XmlLimits{}, &problem);
  ASSERT_TRUE(kdoc.ok()) << problem.message;
  problems.clear();
  EXPECT_TRUE(
      mhm_test::TestSchemas().ValidateKmehrRequest("1.29", kdoc->get(), "detail", &problems))
      << (problems.empty() ? "" : problems.front().message + " " + problems.front().path);
  EXPECT_NE(kmehr.find(">maaagreement<"), std::string::npos);
  EXPECT_NE(kmehr.find(">decisionreference<"), std::string::npos);
  EXPECT_NE(kmehr.find("<ns2:iscomplete>true</ns2:iscomplete>"), std::string::npos);
}

TEST_F(MhmResponseTest, ARefusedAnswerCarriesItsCodesAndTheOutputReference) {
  MhmResponseSpec spec = Refused("260");
  spec.errors.push_back({"263", "", ""});
  const std::string built = Build(subscription_, spec, material_.insurer);
  StatusOr<MhmAnswer> answer = Parse(built);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->decision, kMhmRefused);
  EXPECT_EQ(answer->codes, (std::vector<std::string>{"260", "263"}));
  EXPECT_EQ(answer->insurer_reference, "OUT-2");
  const std::string kmehr = xades_test::Unbase64(xades_test::ElementText(built, "Detail"));
  EXPECT_NE(kmehr.find("<ns2:iscomplete>false</ns2:iscomplete>"), std::string::npos);
  EXPECT_NE(kmehr.find("/SendTransactionRequest/kmehrmessage/folder/transaction"),
            std::string::npos);
  EXPECT_EQ(kmehr.find("kmehrmessage>"), std::string::npos) << "a refusal has no kmehrmessage";
}

TEST_F(MhmResponseTest, AnAcceptedCancellationAnswersWithCancelSubscriptionResponse) {
  StatusOr<MhmRequest> cancel =
      Decode(Redated(xades_test::ReadFile(std::string(PSL_SOURCE_DIR) +
                                          "/conformance/mhm/valid/cancellation_basic.xml"),
                     clock_));
  ASSERT_TRUE(cancel.ok()) << cancel.status().ToString() << "\n" << mhm_test::Dump(report_);
  MhmResponseSpec spec = Accepted();
  spec.decision_reference.clear();
  const std::string built = Build(*cancel, spec, material_.insurer);
  EXPECT_NE(built.find("<mhm:CancelSubscriptionResponse"), std::string::npos);
  StatusOr<MhmAnswer> answer = Parse(built);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->operation, MhmOperation::kCancellation);
  EXPECT_EQ(answer->decision, kMhmAccepted);
  EXPECT_EQ(answer->insurer_reference, "OUT-1");
  EXPECT_EQ(answer->input_reference, cancel->envelope_id);
}

TEST_F(MhmResponseTest, AnswersToEveryKmehrStandardRoundTrip) {
  for (const char* name : {"subscription_standard_20190901", "subscription_standard_20200901",
                           "subscription_standard_20240801", "subscription_bis_plus20",
                           "subscription_routing_mutuality"}) {
    SCOPED_TRACE(name);
    StatusOr<MhmRequest> request =
        Decode(Redated(xades_test::ReadFile(std::string(PSL_SOURCE_DIR) +
                                            "/conformance/mhm/valid/" + name + ".xml"),
                       clock_));
    ASSERT_TRUE(request.ok()) << request.status().ToString() << "\n" << mhm_test::Dump(report_);
    StatusOr<MhmAnswer> answer = Parse(Build(*request, Accepted(), material_.insurer));
    ASSERT_TRUE(answer.ok()) << answer.status().ToString();
    EXPECT_EQ(answer->decision, kMhmAccepted);
    EXPECT_EQ(answer->insurer_reference, "300000000042");
  }
}

TEST_F(MhmResponseTest, ATamperedDetailIsRefused) {
  std::string built = Build(subscription_, Accepted(), material_.insurer);
  std::size_t begin = 0, end = 0;
  xades_test::ElementText(built, "Detail", &begin, &end);
  ASSERT_LT(begin + 40, end);
  // Swap one base64 character for another: still base64, other bytes.
  built[begin + 40] = built[begin + 40] == 'A' ? 'B' : 'A';
  ExpectRefusedWith(built, "XadesT does not verify");
}

TEST_F(MhmResponseTest, ADetailReplacedByAnotherValidAnswerIsRefused) {
  const std::string accepted = Build(subscription_, Accepted(), material_.insurer);
  const std::string refused = Build(subscription_, Refused("260"), material_.insurer);
  std::string forged = refused;
  std::size_t b1 = 0, e1 = 0, b2 = 0, e2 = 0;
  const std::string accepted_detail = xades_test::ElementText(accepted, "Detail", &b1, &e1);
  xades_test::ElementText(forged, "Detail", &b2, &e2);
  forged.replace(b2, e2 - b2, accepted_detail);
  ExpectRefusedWith(forged, "XadesT does not verify");
}

TEST_F(MhmResponseTest, AnAnswerSignedUnderAnotherCaIsRefused) {
  const std::string built = Build(subscription_, Accepted(), material_.untrusted);
  ExpectRefusedWith(built, "XadesT does not verify");
}

TEST_F(MhmResponseTest, AnUnsignedAnswerIsRefused) {
  std::string built = Build(subscription_, Accepted(), material_.insurer);
  const std::size_t begin = built.find("<mcp:XadesT>");
  const std::size_t end = built.find("</mcp:XadesT>") + std::string("</mcp:XadesT>").size();
  built.erase(begin, end - begin);
  ExpectRefusedWith(built, "carries no XadesT");
}

TEST_F(MhmResponseTest, ASchemaInvalidAnswerIsRefused) {
  const std::string built = ReplaceAll(Build(subscription_, Accepted(), material_.insurer),
                                       "mc:NIPReference", "mc:Unexpected");
  ExpectRefusedWith(built, "does not pass the MHM schema");
}

TEST_F(MhmResponseTest, AnAnswerToAnotherFlowIsRefused) {
  ExpectRefusedWith(mhm_test::SampleEnvelope(), "not an MHM");
}

TEST_F(MhmResponseTest, ReadsTheAnswerInsideASoapEnvelopeAndReportsAFault) {
  const std::string built = Build(subscription_, Refused("260"), material_.insurer);
  StatusOr<std::string> envelope = BuildSoapResponse(built);
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  StatusOr<MhmAnswer> answer = Parse(*envelope);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->codes, std::vector<std::string>{"260"});

  SoapFault fault;
  fault.code = "Client";
  fault.message = "the WS-Security signature does not verify";
  StatusOr<std::string> fault_xml = BuildSoapFault(fault);
  ASSERT_TRUE(fault_xml.ok()) << fault_xml.status().ToString();
  ExpectRefusedWith(*fault_xml, "SOAP Fault (Client)");
}

TEST_F(MhmResponseTest, RefusesToParseWithoutATrustStore) {
  const std::string built = Build(subscription_, Accepted(), material_.insurer);
  StatusOr<MhmAnswer> answer = ParseMhmResponse(built, mhm_test::TestSchemas(), nullptr, clock_);
  EXPECT_EQ(answer.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(MhmResponseTest, RefusesInconsistentSpecs) {
  MhmResponseSpec no_errors = Refused("260");
  no_errors.errors.clear();
  EXPECT_EQ(BuildMhmResponse(subscription_, no_errors, material_.insurer, clock_).status().code(),
            StatusCode::kInvalid);
  MhmResponseSpec no_reference = Accepted();
  no_reference.decision_reference = "has spaces";
  EXPECT_EQ(
      BuildMhmResponse(subscription_, no_reference, material_.insurer, clock_).status().code(),
      StatusCode::kInvalid);
  MhmResponseSpec no_insurer = Accepted();
  no_insurer.insurer_code.clear();
  EXPECT_EQ(BuildMhmResponse(subscription_, no_insurer, material_.insurer, clock_).status().code(),
            StatusCode::kInvalid);
  EXPECT_EQ(BuildMhmResponse(subscription_, Accepted(), SigningIdentity{}, clock_).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(MhmResponseTest, OperationsNameTheirResponseElements) {
  EXPECT_EQ(MhmResponseElement(MhmOperation::kSubscription), "SendSubscriptionResponse");
  EXPECT_EQ(MhmResponseElement(MhmOperation::kCancellation), "CancelSubscriptionResponse");
  EXPECT_EQ(MhmResponseElement(MhmOperation::kClosure), "NotifySubscriptionClosureResponse");
}

}  // namespace
}  // namespace psl::codecs
