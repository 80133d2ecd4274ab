#include "codecs/soap.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "base/testing/fake_clock.h"
#include "codecs/testing/soap_test_support.h"

namespace psl::codecs {
namespace {

using soap_test::Between;
using soap_test::ReplaceOnce;
using std::chrono::seconds;

class SoapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    xades_test::InitLibraries();
    ASSERT_TRUE(xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    material_ = soap_test::LoadMaterial();
    body_ = xades_test::SampleEnvelope();
    ASSERT_FALSE(body_.empty());
    clock_.Set(std::chrono::floor<seconds>(std::chrono::system_clock::now()));
  }

  std::string Build(const SigningIdentity& id) {
    StatusOr<std::string> envelope = BuildSoapRequest(body_, SoapSecurityOptions(), id, clock_);
    EXPECT_TRUE(envelope.ok()) << envelope.status().ToString();
    return envelope.ok() ? *envelope : std::string();
  }
  std::string BuildByGateway() { return Build(material_.gateway); }

  StatusOr<VerifiedSoap> Verify(const std::string& envelope) {
    SoapVerifyOptions options;
    options.intermediates = &material_.intermediates;
    return VerifySoapRequest(envelope, material_.trust.get(), clock_, options);
  }

  // Verification must fail with kInvalid and a message containing `reason`.
  void ExpectRejected(const std::string& envelope, const std::string& reason) {
    StatusOr<VerifiedSoap> v = Verify(envelope);
    ASSERT_FALSE(v.ok()) << "accepted a tampered envelope";
    EXPECT_EQ(v.status().code(), StatusCode::kInvalid) << v.status().ToString();
    EXPECT_NE(v.status().message().find(reason), std::string::npos) << v.status().message();
  }

  soap_test::Material material_;
  std::string body_;
  psl::testing::FakeClock clock_;
};

TEST_F(SoapTest, AnEnvelopeSignedByTheGatewayVerifies) {
  const std::string envelope = BuildByGateway();
  StatusOr<VerifiedSoap> v = Verify(envelope);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_NE(v->signer_subject.find("CN="), std::string::npos);
  EXPECT_EQ(X509_cmp(v->signer.get(), material_.gateway.certificate.get()), 0);
  EXPECT_EQ(v->created, clock_.Now());
  EXPECT_EQ(v->expires, clock_.Now() + seconds(60));
  ASSERT_NE(v->body, nullptr);
  const xmlNode* root = xmlDocGetRootElement(v->body.get());
  ASSERT_NE(root, nullptr);
  EXPECT_STREQ(reinterpret_cast<const char*>(root->name), "SendSubscriptionRequest");
  // The body document survives the trip: its own signed blob is byte-identical.
  EXPECT_EQ(xades_test::ElementText(v->body_xml, "Detail"),
            xades_test::ElementText(body_, "Detail"));
}

TEST_F(SoapTest, AnEnvelopeSignedByAnInsurerVerifies) {
  StatusOr<VerifiedSoap> v = Verify(Build(material_.insurer));
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(X509_cmp(v->signer.get(), material_.insurer.certificate.get()), 0);
}

TEST_F(SoapTest, TheEnvelopeHasTheWsSecurityShape) {
  const std::string envelope = BuildByGateway();
  EXPECT_NE(envelope.find(std::string("xmlns:soapenv=\"") + kSoap11Ns), std::string::npos);
  EXPECT_NE(envelope.find("soapenv:mustUnderstand=\"1\""), std::string::npos);
  EXPECT_NE(envelope.find("<wsse:BinarySecurityToken"), std::string::npos);
  EXPECT_NE(envelope.find("<wsse:SecurityTokenReference><wsse:Reference URI=\"#X509-"),
            std::string::npos);
  EXPECT_NE(envelope.find("<soapenv:Body wsu:Id=\"id-"), std::string::npos);
  EXPECT_NE(envelope.find("<wsu:Timestamp wsu:Id=\"TS-"), std::string::npos);
  EXPECT_EQ(envelope.find("<!--"), std::string::npos);
  // Parsed XML, not escaped text.
  EXPECT_NE(envelope.find("<mhm:SendSubscriptionRequest"), std::string::npos);
}

TEST_F(SoapTest, ABodyThatIsNotWellFormedIsRefusedBeforeSigning) {
  StatusOr<std::string> envelope =
      BuildSoapRequest("<a><b></a>", SoapSecurityOptions(), material_.gateway, clock_);
  ASSERT_FALSE(envelope.ok());
  EXPECT_EQ(envelope.status().code(), StatusCode::kMalformed);
  StatusOr<std::string> doctype =
      BuildSoapRequest("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>", SoapSecurityOptions(),
                       material_.gateway, clock_);
  ASSERT_FALSE(doctype.ok());
  EXPECT_NE(doctype.status().message().find("PSL-XML-DOCTYPE"), std::string::npos);
}

TEST_F(SoapTest, AnExpiredSigningCertificateIsRefused) {
  StatusOr<std::string> envelope =
      BuildSoapRequest(body_, SoapSecurityOptions(), material_.expired, clock_);
  ASSERT_FALSE(envelope.ok());
  EXPECT_EQ(envelope.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SoapTest, AChangedBodyIsRejected) {
  std::string envelope = BuildByGateway();
  ReplaceOnce(envelope, "<mc:IsTest>true</mc:IsTest>", "<mc:IsTest>false</mc:IsTest>");
  ExpectRejected(envelope, "the Body was altered");
}

TEST_F(SoapTest, AChangedTimestampIsRejected) {
  std::string envelope = BuildByGateway();
  const std::string expires = Between(envelope, "<wsu:Expires>", "</wsu:Expires>");
  const std::string later = "2099" + expires.substr(4);
  ReplaceOnce(envelope, "<wsu:Expires>" + expires, "<wsu:Expires>" + later);
  ExpectRejected(envelope, "the Timestamp was altered");
}

TEST_F(SoapTest, AnExpiredTimestampIsRejected) {
  const std::string envelope = BuildByGateway();
  clock_.Set(clock_.Now() + seconds(60));
  ExpectRejected(envelope, "the Timestamp has expired");
}

TEST_F(SoapTest, ATimestampFromTheFutureIsRejectedBeyondTheSkew) {
  psl::testing::FakeClock ahead(clock_.Now() + seconds(299));
  StatusOr<std::string> within =
      BuildSoapRequest(body_, SoapSecurityOptions(), material_.gateway, ahead);
  ASSERT_TRUE(within.ok()) << within.status().ToString();
  EXPECT_TRUE(Verify(*within).ok());
  ahead.Set(clock_.Now() + seconds(301));
  StatusOr<std::string> beyond =
      BuildSoapRequest(body_, SoapSecurityOptions(), material_.gateway, ahead);
  ASSERT_TRUE(beyond.ok()) << beyond.status().ToString();
  ExpectRejected(*beyond, "Timestamp/Created is in the future");
}

TEST_F(SoapTest, ASignatureOverAWrappedBodyWithAForgedBodyIsRejected) {
  // The classic wrapping attack: the signed Body moves into a header, a forged Body takes its
  // place, and the signature still "verifies" for an ID-based resolver.
  std::string envelope = BuildByGateway();
  const std::size_t begin = envelope.find("<soapenv:Body");
  const std::size_t end = envelope.find("</soapenv:Body>") + std::string("</soapenv:Body>").size();
  ASSERT_NE(begin, std::string::npos);
  const std::string signed_body = envelope.substr(begin, end - begin);
  const std::string forged =
      "<soapenv:Body wsu:Id=\"forged-1\"><x:Evil xmlns:x=\"urn:x\"/></soapenv:Body>";
  envelope.replace(begin, end - begin, forged);
  ReplaceOnce(envelope, "</soapenv:Header>",
              "<w:Wrapper xmlns:w=\"urn:attack\">" + signed_body + "</w:Wrapper></soapenv:Header>");
  ExpectRejected(envelope, "is neither the Envelope's Body nor the Security header's Timestamp");
}

TEST_F(SoapTest, AWrappedBodyKeepingItsIdIsRejectedAsADuplicateId) {
  std::string envelope = BuildByGateway();
  const std::size_t begin = envelope.find("<soapenv:Body");
  const std::size_t end = envelope.find("</soapenv:Body>") + std::string("</soapenv:Body>").size();
  const std::string signed_body = envelope.substr(begin, end - begin);
  ReplaceOnce(envelope, "</soapenv:Header>",
              "<w:Wrapper xmlns:w=\"urn:attack\">" + signed_body + "</w:Wrapper></soapenv:Header>");
  ExpectRejected(envelope, "is carried by more than one element");
}

TEST_F(SoapTest, ADuplicateWsuIdIsRejected) {
  std::string envelope = BuildByGateway();
  const std::string ts_id = Between(envelope, "<wsu:Timestamp wsu:Id=\"", "\"");
  ReplaceOnce(envelope, "</soapenv:Header>",
              "<x:Other xmlns:x=\"urn:x\" wsu:Id=\"" + ts_id + "\"/></soapenv:Header>");
  ExpectRejected(envelope, "Id value '" + ts_id + "' is carried by more than one element");
}

TEST_F(SoapTest, ACertificateSwappedInTheTokenIsRejected) {
  std::string envelope = BuildByGateway();
  const std::string token =
      Between(envelope, "ValueType=\"" + std::string(kWssX509v3ValueType) + "\" wsu:Id=\"",
              "</wsse:BinarySecurityToken>");
  const std::string old_b64 = token.substr(token.find('>') + 1);
  // Another certificate that chains to the same trusted root.
  ReplaceOnce(envelope, old_b64, EncodeBase64(CertificateDer(material_.insurer.certificate.get())));
  ExpectRejected(envelope, "the SignatureValue does not verify");
}

TEST_F(SoapTest, ASignerFromAnUntrustedRootIsRejected) {
  SoapVerifyOptions options;
  options.intermediates = &material_.untrusted.chain;
  StatusOr<VerifiedSoap> v =
      VerifySoapRequest(Build(material_.untrusted), material_.trust.get(), clock_, options);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(v.status().message().rfind("token ", 0), 0u) << v.status().message();
  EXPECT_NE(v.status().message().find("self-signed certificate in certificate chain"),
            std::string::npos)
      << v.status().message();
}

TEST_F(SoapTest, AChainWithoutItsIntermediateIsRejected) {
  StatusOr<VerifiedSoap> v =
      VerifySoapRequest(BuildByGateway(), material_.trust.get(), clock_, SoapVerifyOptions());
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalid);
}

TEST_F(SoapTest, AnExtraReferenceIsRejected) {
  std::string envelope = BuildByGateway();
  const std::string token_id = Between(envelope, "<wsse:Reference URI=\"#", "\"");
  ReplaceOnce(envelope, "</ds:SignedInfo>",
              "<ds:Reference URI=\"#" + token_id +
                  "\"><ds:Transforms><ds:Transform "
                  "Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/></ds:Transforms>"
                  "<ds:DigestMethod Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>"
                  "<ds:DigestValue>AAAA</ds:DigestValue></ds:Reference></ds:SignedInfo>");
  ExpectRejected(envelope, "reference URI '#" + token_id + "' is neither");
}

TEST_F(SoapTest, ADisallowedTransformIsRejected) {
  std::string envelope = BuildByGateway();
  ReplaceOnce(envelope, "<ds:Transform Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>",
              "<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\">"
              "<ds:XPath>1</ds:XPath></ds:Transform>");
  ExpectRejected(envelope,
                 "the Body reference has transforms [http://www.w3.org/TR/1999/REC-xpath");
}

TEST_F(SoapTest, KeyInfoOtherThanTheTokenReferenceIsRejected) {
  std::string envelope = BuildByGateway();
  ReplaceOnce(envelope, "<ds:KeyInfo>", "<ds:KeyInfo><ds:KeyName>gateway</ds:KeyName>");
  ExpectRejected(envelope, "KeyInfo must hold exactly one wsse:SecurityTokenReference");
}

TEST_F(SoapTest, AKeyValueOrRetrievalMethodInKeyInfoIsRejected) {
  const std::string envelope = BuildByGateway();
  for (const std::string& extra :
       {std::string("<ds:KeyValue><ds:RSAKeyValue><ds:Modulus>AQAB</ds:Modulus><ds:Exponent>AQAB"
                    "</ds:Exponent></ds:RSAKeyValue></ds:KeyValue>"),
        std::string("<ds:RetrievalMethod URI=\"#x\"/>")}) {
    std::string tampered = envelope;
    ReplaceOnce(tampered, "<ds:KeyInfo>", "<ds:KeyInfo>" + extra);
    ExpectRejected(tampered, "KeyInfo must hold exactly one wsse:SecurityTokenReference");
  }
}

TEST_F(SoapTest, ASignatureOutsideTheSecurityHeaderIsRejected) {
  std::string envelope = BuildByGateway();
  ReplaceOnce(
      envelope, "</soapenv:Header>",
      "<x:H xmlns:x=\"urn:x\"><ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/>"
      "</x:H></soapenv:Header>");
  ExpectRejected(envelope, "exactly one ds:Signature, in wsse:Security");
}

TEST_F(SoapTest, AMissingSecurityHeaderIsRejected) {
  std::string envelope = BuildByGateway();
  const std::size_t begin = envelope.find("<wsse:Security");
  const std::size_t end =
      envelope.find("</wsse:Security>") + std::string("</wsse:Security>").size();
  envelope.erase(begin, end - begin);
  ExpectRejected(envelope, "the Header holds no wsse:Security header");
}

TEST_F(SoapTest, TwoSecurityHeadersAreRejected) {
  std::string envelope = BuildByGateway();
  ReplaceOnce(envelope, "</soapenv:Header>",
              "<wsse:Security xmlns:wsse=\"" + std::string(kWsseNs) + "\"/></soapenv:Header>");
  ExpectRejected(envelope, "more than one wsse:Security header");
}

TEST_F(SoapTest, AnUnderstoodHeaderOnlyMayBeMarkedMustUnderstand) {
  std::string envelope = BuildByGateway();
  ReplaceOnce(envelope, "</soapenv:Header>",
              "<x:Routing xmlns:x=\"urn:x\" soapenv:mustUnderstand=\"1\"/></soapenv:Header>");
  ExpectRejected(envelope, "header Routing is marked mustUnderstand but is not understood");
}

TEST_F(SoapTest, ADoctypeInTheEnvelopeIsMalformed) {
  std::string envelope = BuildByGateway();
  ReplaceOnce(envelope, "<soapenv:Envelope", "<!DOCTYPE x><soapenv:Envelope");
  StatusOr<VerifiedSoap> v = Verify(envelope);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kMalformed);
}

TEST_F(SoapTest, VerifyingWithoutATrustStoreIsAPreconditionFailure) {
  StatusOr<VerifiedSoap> v = VerifySoapRequest(BuildByGateway(), nullptr, clock_);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SoapTest, AResponseBodyIsExtracted) {
  StatusOr<std::string> envelope =
      BuildSoapResponse("<r:Answer xmlns:r=\"urn:r\"><r:Ok/></r:Answer>");
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  StatusOr<SoapResponse> response = ParseSoapResponse(*envelope);
  ASSERT_TRUE(response.ok()) << response.status().ToString();
  EXPECT_FALSE(response->fault.has_value());
  EXPECT_NE(response->body_xml.find("<r:Answer xmlns:r=\"urn:r\"><r:Ok/></r:Answer>"),
            std::string::npos)
      << response->body_xml;
  StatusOr<SoapFault> fault = ParseSoapFault(*envelope);
  ASSERT_FALSE(fault.ok());
  EXPECT_EQ(fault.status().code(), StatusCode::kInvalid);
}

TEST_F(SoapTest, AFaultRoundTrips) {
  SoapFault fault;
  fault.code = "Client";
  fault.message = "Already enrolled";
  fault.actor = "urn:insurer:300";
  fault.detail_xml = "<e:Error xmlns:e=\"urn:e\"><e:Code>260</e:Code></e:Error>";
  StatusOr<std::string> envelope = BuildSoapFault(fault);
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  EXPECT_NE(envelope->find("<faultcode>soapenv:Client</faultcode>"), std::string::npos)
      << *envelope;
  StatusOr<SoapFault> parsed = ParseSoapFault(*envelope);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->code_ns, "");
  EXPECT_EQ(parsed->code, "Client");
  EXPECT_EQ(parsed->message, "Already enrolled");
  EXPECT_EQ(parsed->actor, "urn:insurer:300");
  EXPECT_NE(parsed->detail_xml.find("<e:Code>260</e:Code>"), std::string::npos);
}

TEST_F(SoapTest, AFaultCodeInAnotherNamespaceKeepsItsNamespace) {
  SoapFault fault;
  fault.code_ns = "urn:be:fgov:ehealth:errors:soa:v1";
  fault.code = "SOA-02001";
  fault.message = "Service error";
  StatusOr<std::string> envelope = BuildSoapFault(fault);
  ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
  StatusOr<SoapFault> parsed = ParseSoapFault(*envelope);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->code_ns, fault.code_ns);
  EXPECT_EQ(parsed->code, "SOA-02001");
}

TEST_F(SoapTest, AFaultCodeWithAnUndeclaredPrefixIsInvalid) {
  const std::string envelope = std::string("<s:Envelope xmlns:s=\"") + kSoap11Ns +
                               "\"><s:Body><s:Fault><faultcode>zz:Client</faultcode>"
                               "<faultstring>x</faultstring></s:Fault></s:Body></s:Envelope>";
  StatusOr<SoapFault> parsed = ParseSoapFault(envelope);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalid);
}

TEST_F(SoapTest, ANonSoapDocumentIsNotAResponse) {
  StatusOr<SoapResponse> r = ParseSoapResponse("<Envelope><Body><a/></Body></Envelope>");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  StatusOr<SoapResponse> two = ParseSoapResponse(std::string("<s:Envelope xmlns:s=\"") + kSoap11Ns +
                                                 "\"><s:Body><a/><b/></s:Body></s:Envelope>");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("exactly one element"), std::string::npos);
}

}  // namespace
}  // namespace psl::codecs
