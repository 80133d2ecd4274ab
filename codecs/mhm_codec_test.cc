#include "codecs/mhm_codec.h"

#include <gtest/gtest.h>

#include "base/testing/fake_clock.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/validator.h"

namespace psl::codecs {
namespace {

using mhm_test::Dump;
using mhm_test::LineOf;
using mhm_test::Replace;
using mhm_test::SampleDetail;
using mhm_test::SampleEnvelope;
using mhm_test::WithDetail;
using mhm_test::WithDetailElement;

const Problem* Find(const ValidationReport& report, std::string_view code,
                    std::string_view path = {}) {
  for (const Problem& p : report.problems) {
    if (p.code == code && (path.empty() || p.path == path)) {
      return &p;
    }
  }
  return nullptr;
}

class MhmCodecTest : public ::testing::Test {
 protected:
  MhmCodecTest() : codec_(mhm_test::TestSchemas(), clock_) { clock_.SetUtc(2025, 1, 2, 9, 0); }

  StatusOr<MhmRequest> Decode(const std::string& bytes) {
    report_ = ValidationReport{};
    return codec_.Decode(bytes, &report_);
  }

  testing::FakeClock clock_;
  MhmCodec codec_;
  ValidationReport report_;
};

TEST_F(MhmCodecTest, SampleEnvelopeDecodesAsAValidSubscription) {
  StatusOr<MhmRequest> request = Decode(SampleEnvelope());
  ASSERT_TRUE(request.ok()) << request.status().ToString() << "\n" << Dump(report_);
  EXPECT_TRUE(report_.valid());
  EXPECT_TRUE(report_.problems.empty()) << Dump(report_);
  EXPECT_EQ(report_.kind, "enrolment");
  EXPECT_EQ(report_.flow, "mhm");
  EXPECT_EQ(report_.operation, "SendSubscription");
  EXPECT_EQ(request->operation, MhmOperation::kSubscription);
  EXPECT_EQ(request->envelope_id, "_a1b2c3d4-0000-4000-8000-000000000001");
  EXPECT_EQ(request->detail_id, "_0d5e6f70-0000-4000-8000-000000000002");
  EXPECT_EQ(request->content_encoding, "none");
  EXPECT_EQ(request->author_nihii, "81234530000");
  EXPECT_EQ(request->patient_ssin, "90010100123");
  EXPECT_EQ(request->request_id, "81234530000.20250102093000");
  EXPECT_FALSE(request->kmehr_version.empty());
  EXPECT_TRUE(request->has_xades);
  EXPECT_NE(request->envelope, nullptr);
  EXPECT_EQ(request->detail_xml, SampleDetail());
}

TEST_F(MhmCodecTest, OperationNamesAndSoapActionsFollowEHealth) {
  EXPECT_EQ(MhmOperationName(MhmOperation::kCancellation), "CancelSubscription");
  EXPECT_EQ(MhmOperationName(MhmOperation::kClosure), "NotifySubscriptionClosure");
  EXPECT_EQ(MhmSoapAction(MhmOperation::kSubscription),
            "urn:be:fgov:ehealth:mycarenet:medicalHouseMembership:protocol:v1:SendSubscription");
  EXPECT_EQ(MhmSoapAction(MhmOperation::kClosure),
            "urn:be:fgov:ehealth:mycarenet:medicalHouseMembership:protocol:v1:"
            "NotifySubscriptionClosure");
}

TEST_F(MhmCodecTest, DeflateEncodedDetailDecodes) {
  StatusOr<MhmRequest> request = Decode(WithDetail(SampleEnvelope(), SampleDetail(), "deflate"));
  ASSERT_TRUE(request.ok()) << Dump(report_);
  EXPECT_EQ(request->content_encoding, "deflate");
  EXPECT_EQ(request->detail_xml, SampleDetail());
}

TEST_F(MhmCodecTest, AbsentContentEncodingMeansDeflate) {
  const std::string attrs =
      std::string("ContentType=\"text/xml\" ") + std::string(mhm_test::kDetailId);
  StatusOr<MhmRequest> deflated = Decode(
      WithDetailElement(SampleEnvelope(), attrs, EncodeBase64(DeflateRaw(SampleDetail()).value())));
  ASSERT_TRUE(deflated.ok()) << Dump(report_);
  EXPECT_EQ(deflated->content_encoding, "deflate");

  StatusOr<MhmRequest> plain =
      Decode(WithDetailElement(SampleEnvelope(), attrs, EncodeBase64(SampleDetail())));
  EXPECT_EQ(plain.status().code(), StatusCode::kMalformed);
  EXPECT_NE(Find(report_, "PSL-BLOB-DEFLATE"), nullptr) << Dump(report_);
}

TEST_F(MhmCodecTest, RefusesAContentTypeOtherThanTextXml) {
  const std::string env =
      WithDetailElement(SampleEnvelope(),
                        std::string("ContentEncoding=\"none\" ContentType=\"text/plain\" ") +
                            std::string(mhm_test::kDetailId),
                        EncodeBase64(SampleDetail()));
  EXPECT_FALSE(Decode(env).ok());
  const Problem* p = Find(report_, "PSL-BLOB-CONTENTTYPE", "/SendSubscriptionRequest/Detail");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->document, "envelope");
  EXPECT_EQ(p->line, LineOf(env, "<mcp:Detail"));
}

TEST_F(MhmCodecTest, RefusesAnUnknownContentEncoding) {
  const std::string env = WithDetail(SampleEnvelope(), SampleDetail(), "gzip");
  EXPECT_FALSE(Decode(env).ok());
  EXPECT_NE(Find(report_, "PSL-BLOB-ENCODING", "/SendSubscriptionRequest/Detail"), nullptr)
      << Dump(report_);
}

TEST_F(MhmCodecTest, RefusesDetailThatIsNotBase64) {
  const std::string attrs = std::string("ContentEncoding=\"none\" ContentType=\"text/xml\" ") +
                            std::string(mhm_test::kDetailId);
  for (const char* content : {"PD94bWwg*mVyc2lvbj0i", "PD94bWw=PD94", "PD9"}) {
    StatusOr<MhmRequest> r = Decode(WithDetailElement(SampleEnvelope(), attrs, content));
    EXPECT_EQ(r.status().code(), StatusCode::kMalformed) << content;
    EXPECT_NE(Find(report_, "PSL-BLOB-BASE64"), nullptr) << content << "\n" << Dump(report_);
  }
}

TEST_F(MhmCodecTest, DecodesOnlyTheDetailInTheCommonsProtocolNamespace) {
  // A look-alike Detail in another namespace, placed first, must never be taken for the Detail
  // that is validated and signed: it is a schema error, and its content is not decoded.
  const std::string env = Replace(SampleEnvelope(), "<mcp:Detail",
                                  "<w:Detail xmlns:w=\"urn:example:wrong\" Id=\"w\" "
                                  "ContentType=\"text/xml\">not*base64</w:Detail><mcp:Detail");
  StatusOr<MhmRequest> r = Decode(env);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid) << Dump(report_);
  EXPECT_EQ(Find(report_, "PSL-BLOB-BASE64"), nullptr) << Dump(report_);
  EXPECT_FALSE(report_.valid());
}

TEST_F(MhmCodecTest, AcceptsBase64WrappedOverSeveralLines) {
  std::string b64 = EncodeBase64(SampleDetail());
  for (std::size_t at = 76; at < b64.size(); at += 77) {
    b64.insert(at, "\n");
  }
  const std::string attrs = std::string("ContentEncoding=\"none\" ContentType=\"text/xml\" ") +
                            std::string(mhm_test::kDetailId);
  StatusOr<MhmRequest> r = Decode(WithDetailElement(SampleEnvelope(), attrs, b64));
  EXPECT_TRUE(r.ok()) << Dump(report_);
}

TEST_F(MhmCodecTest, RefusesACorruptOrTruncatedDeflateStream) {
  const std::string deflated = DeflateRaw(SampleDetail()).value();
  const std::string attrs = std::string("ContentEncoding=\"deflate\" ContentType=\"text/xml\" ") +
                            std::string(mhm_test::kDetailId);
  for (const std::string& bad : {deflated.substr(0, deflated.size() / 2),
                                 std::string("\xff\xff\xff\xff garbage"), deflated + "trailing"}) {
    StatusOr<MhmRequest> r = Decode(WithDetailElement(SampleEnvelope(), attrs, EncodeBase64(bad)));
    EXPECT_EQ(r.status().code(), StatusCode::kMalformed);
    EXPECT_NE(Find(report_, "PSL-BLOB-DEFLATE"), nullptr) << Dump(report_);
  }
}

TEST_F(MhmCodecTest, StopsInflatingADeflateBombAtTheSizeLimit) {
  XmlLimits limits;
  limits.max_bytes = std::size_t{64} * 1024;
  MhmCodec small(mhm_test::TestSchemas(), clock_, limits);
  std::string detail = SampleDetail();
  detail.insert(detail.find("<ns2:request>"), std::string(std::size_t{1024} * 1024, ' '));
  const std::string env = WithDetail(SampleEnvelope(), detail, "deflate");
  ASSERT_LT(env.size(), limits.max_bytes);
  ValidationReport report;
  StatusOr<MhmRequest> r = small.Decode(env, &report);
  EXPECT_EQ(r.status().code(), StatusCode::kMalformed);
  EXPECT_NE(Find(report, "PSL-BLOB-SIZE", "/SendSubscriptionRequest/Detail"), nullptr)
      << Dump(report);
}

TEST_F(MhmCodecTest, ReportsAMalformedEnvelopeAsMalformed) {
  StatusOr<MhmRequest> r = Decode("<mhm:SendSubscriptionRequest");
  EXPECT_EQ(r.status().code(), StatusCode::kMalformed);
  ASSERT_EQ(report_.problems.size(), 1u) << Dump(report_);
  EXPECT_EQ(report_.problems[0].code.rfind("PSL-XML-", 0), 0u);
  EXPECT_EQ(report_.problems[0].document, "envelope");
}

TEST_F(MhmCodecTest, ReportsAMalformedPayloadInTheDetailDocument) {
  const std::string detail = Replace(SampleDetail(), "</ns3:firstname>", "</ns3:first>");
  StatusOr<MhmRequest> r = Decode(WithDetail(SampleEnvelope(), detail));
  EXPECT_EQ(r.status().code(), StatusCode::kMalformed);
  ASSERT_FALSE(report_.problems.empty());
  const Problem* p = nullptr;
  for (const Problem& q : report_.problems) {
    if (q.code.rfind("PSL-XML-", 0) == 0) {
      p = &q;
    }
  }
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->document, "detail");
  EXPECT_EQ(p->line, LineOf(detail, "</ns3:first>"));
}

TEST_F(MhmCodecTest, RefusesADoctypeInsideThePayload) {
  const std::string detail = Replace(
      SampleDetail(), "<ns6:SendTransactionRequest",
      "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>\n<ns6:SendTransactionRequest");
  EXPECT_FALSE(Decode(WithDetail(SampleEnvelope(), detail)).ok());
  const Problem* p = Find(report_, "PSL-XML-DOCTYPE");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->document, "detail");
}

TEST_F(MhmCodecTest, ReportsEnvelopeSchemaErrorsAndStillChecksThePayload) {
  std::string env = Replace(SampleEnvelope(), "<mc:IsTest>true</mc:IsTest>", "");
  env = WithDetail(env, Replace(SampleDetail(), "<ns2:date>2025-01-02</ns2:date>",
                                "<ns2:date>2025-01-03</ns2:date>"));
  EXPECT_EQ(Decode(env).status().code(), StatusCode::kInvalid);
  const Problem* schema = Find(report_, "PSL-SCHEMA");
  ASSERT_NE(schema, nullptr) << Dump(report_);
  EXPECT_EQ(schema->document, "envelope");
  EXPECT_NE(Find(report_, "146", "/SendTransactionRequest/Request/date"), nullptr) << Dump(report_);
}

TEST_F(MhmCodecTest, ReportsPayloadSchemaErrorsWithPayloadLines) {
  const std::string detail = Replace(SampleDetail(), "<ns3:iscomplete>true</ns3:iscomplete>",
                                     "<ns3:iscomplete>maybe</ns3:iscomplete>");
  EXPECT_EQ(Decode(WithDetail(SampleEnvelope(), detail)).status().code(), StatusCode::kInvalid);
  const Problem* p = Find(report_, "PSL-SCHEMA");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->document, "detail");
  EXPECT_EQ(p->line, LineOf(detail, "<ns3:iscomplete>"));
}

TEST_F(MhmCodecTest, UnknownKmehrStandardIsCode130AndSkipsThePayloadSchema) {
  const std::string detail = Replace(SampleDetail(), ">20181201<", ">19990101<");
  StatusOr<MhmRequest> r = Decode(WithDetail(SampleEnvelope(), detail));
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  const Problem* p = Find(report_, "130", "/SendTransactionRequest/kmehrmessage/header/standard");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->document, "detail");
  EXPECT_EQ(p->line, LineOf(detail, "<ns3:standard>"));
}

TEST_F(MhmCodecTest, RefusesAnotherRootInTheMhmDecoder) {
  EXPECT_EQ(Decode("<a xmlns=\"urn:x\"/>").status().code(), StatusCode::kInvalid);
  ASSERT_EQ(report_.problems.size(), 1u);
  EXPECT_EQ(report_.problems[0].code, "PSL-FLOW-UNKNOWN");
}

TEST_F(MhmCodecTest, RequiresTheMhmNamespaceOnTheRoot) {
  const std::string env =
      Replace(SampleEnvelope(), "xmlns:mhm=\"urn:be:fgov:ehealth:mycarenet:medicalhousemembership",
              "xmlns:mhm=\"urn:example:medicalhousemembership");
  EXPECT_FALSE(Decode(env).ok());
  EXPECT_NE(Find(report_, "PSL-FLOW-UNKNOWN"), nullptr);
}

TEST_F(MhmCodecTest, DecodeIsRepeatableOnOneCodec) {
  // A const codec shared between threads must not keep state between calls.
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(Decode(SampleEnvelope()).ok());
  }
}

class MessageValidatorTest : public ::testing::Test {
 protected:
  MessageValidatorTest() : validator_(mhm_test::TestSchemas(), clock_) {
    clock_.SetUtc(2025, 1, 2, 9, 0);
  }
  testing::FakeClock clock_;
  MessageValidator validator_;
};

TEST_F(MessageValidatorTest, DetectsTheMhmFlowFromTheRoot) {
  const ValidationReport report = validator_.Validate(SampleEnvelope());
  EXPECT_TRUE(report.valid()) << Dump(report);
  EXPECT_EQ(report.kind, "enrolment");
  EXPECT_EQ(report.flow, "mhm");
  EXPECT_EQ(report.operation, "SendSubscription");
}

TEST_F(MessageValidatorTest, UnknownRootGivesExactlyOneFlowProblem) {
  const ValidationReport report =
      validator_.Validate(mhm_test::ReadShared("samples/mda-AttributeQuery.SYNTHETIC.xml"));
  EXPECT_FALSE(report.valid());
  EXPECT_EQ(report.kind, "");
  EXPECT_EQ(report.flow, "");
  ASSERT_EQ(report.problems.size(), 1u) << Dump(report);
  EXPECT_EQ(report.problems[0].code, "PSL-FLOW-UNKNOWN");
}

TEST_F(MessageValidatorTest, NotWellFormedBytesGiveTheParserProblem) {
  const ValidationReport report = validator_.Validate("not xml");
  EXPECT_FALSE(report.valid());
  ASSERT_EQ(report.problems.size(), 1u);
  EXPECT_EQ(report.problems[0].code.rfind("PSL-XML-", 0), 0u);
}

TEST_F(MessageValidatorTest, ReportsEveryRuleFindingOfAnMhmRequest) {
  std::string detail =
      Replace(SampleDetail(), "<ns2:date>2025-01-02</ns2:date>", "<ns2:date>2025-01-01</ns2:date>");
  detail = Replace(detail, ">mycarenet<", ">somebody<");
  const ValidationReport report = validator_.Validate(WithDetail(SampleEnvelope(), detail));
  EXPECT_FALSE(report.valid());
  EXPECT_EQ(report.operation, "SendSubscription");
  EXPECT_NE(Find(report, "191", "/SendTransactionRequest/Request/date"), nullptr) << Dump(report);
  EXPECT_NE(Find(report, "111", "/SendTransactionRequest/kmehrmessage/header/recipient"), nullptr);
}

}  // namespace
}  // namespace psl::codecs
