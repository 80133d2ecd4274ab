#include "codecs/genasync_mailbox.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "base/testing/fake_clock.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/soap.h"
#include "codecs/testing/efact_test_support.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/testing/soap_test_support.h"
#include "codecs/testing/xades_test_support.h"
#include "codecs/xml_util.h"

#include <nlohmann/json.hpp>

namespace psl::codecs {
namespace {

using mhm_test::Replace;
using std::chrono::seconds;

constexpr char kPractice[] = "81234530000";

// Three codes that exist in errors/EfactErrors.json (checked by a test below).
constexpr char kCode200701[] = "200701";
constexpr char kCode100301[] = "100301";

class GenAsyncMailboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    xades_test::InitLibraries();
    ASSERT_TRUE(xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    clock_.Set(std::chrono::floor<seconds>(std::chrono::system_clock::now()));
    material_ = soap_test::LoadMaterial();
  }

  const SchemaRegistry& Schemas() { return mhm_test::TestSchemas(); }

  // Schema-validates a Build output.
  void ExpectValid(const std::string& xml) {
    Problem problem;
    StatusOr<XmlDocPtr> doc = ParseUntrustedXml(xml, XmlLimits{}, &problem);
    ASSERT_TRUE(doc.ok()) << doc.status().ToString();
    std::vector<Problem> problems;
    EXPECT_TRUE(
        Schemas().ValidateEnvelope(EnvelopeSchema::kGenAsync, doc->get(), "envelope", &problems))
        << (problems.empty() ? "" : problems.front().message) << "\n"
        << xml;
  }

  std::string ReturnFile(EfactReturnKind kind, const std::vector<EfactReturnError>& errors = {}) {
    StatusOr<std::string> bytes = BuildEfactReturn(efact_test::SampleFile(), kind, errors);
    EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
    return bytes.ok() ? *bytes : "";
  }

  MailboxMessageSpec Spec(const std::string& input_reference, const std::string& content) {
    MailboxMessageSpec m;
    m.message_name = "HCPFAC";
    m.input_reference = input_reference;
    m.nip_reference = "NIP-1";
    m.output_reference = "OUT-1";
    m.content = content;
    return m;
  }

  static TAck SampleTAck() {
    TAck t;
    t.issuer = "urn:nip:issuer:io:300";
    t.applies_to = TAckAppliesTo("0b5e6f70-0000-4000-8000-000000000001");
    t.result_major = std::string(kTAckSuccess);
    t.reference = "IO300-42";
    t.content = TAckContentFor("<post/>", kTAckSuccess);
    return t;
  }

  StatusOr<GetResponse> Parse(const std::string& xml) {
    return ParseGetResponse(xml, Schemas(), material_.trust.get(), clock_);
  }

  std::string BuildGet(const std::vector<MailboxMessageSpec>& messages,
                       const std::vector<TAck>& tacks, const SigningIdentity& signer) {
    StatusOr<std::string> xml = BuildGetResponse(messages, tacks, signer, clock_);
    EXPECT_TRUE(xml.ok()) << xml.status().ToString();
    return xml.ok() ? *xml : "";
  }

  testing::FakeClock clock_;
  soap_test::Material material_;
};

TEST_F(GenAsyncMailboxTest, TheErrorCodesUsedHereExistInTheSharedTable) {
  std::ifstream in(std::string(PSL_SHARED_DIR) + "/errors/EfactErrors.json");
  ASSERT_TRUE(in.good());
  const nlohmann::json table = nlohmann::json::parse(in);
  std::set<std::string> codes;
  for (const auto& entry : table) {
    codes.insert(entry.at("code").get<std::string>());
  }
  EXPECT_TRUE(codes.count(kCode200701));
  EXPECT_TRUE(codes.count(kCode100301));
}

TEST_F(GenAsyncMailboxTest, PostResponseRoundTripsAndIsSchemaValid) {
  const TAck tack = SampleTAck();
  StatusOr<std::string> xml = BuildPostResponse(tack);
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  ExpectValid(*xml);
  StatusOr<TAck> back = ParsePostResponse(*xml, Schemas());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(back->success());
  EXPECT_EQ(back->applies_to, "urn:nip:reference:input:0b5e6f70-0000-4000-8000-000000000001");
  EXPECT_EQ(back->reference, "IO300-42");
  EXPECT_EQ(back->content, tack.content);
  EXPECT_EQ(back->issuer, tack.issuer);

  // Inside a SOAP envelope too.
  StatusOr<std::string> soap = BuildSoapResponse(*xml);
  ASSERT_TRUE(soap.ok());
  StatusOr<TAck> from_soap = ParsePostResponse(*soap, Schemas());
  ASSERT_TRUE(from_soap.ok()) << from_soap.status().ToString();
  EXPECT_EQ(from_soap->reference, "IO300-42");
}

TEST_F(GenAsyncMailboxTest, ARefusalTAckCarriesMinorAndMessage) {
  TAck tack = SampleTAck();
  tack.result_major = std::string(kTAckFailure);
  tack.result_minor = "urn:nip:tack:result:minor:signature";
  tack.result_message = "the Xades-t does not verify";
  StatusOr<std::string> xml = BuildPostResponse(tack);
  ASSERT_TRUE(xml.ok());
  ExpectValid(*xml);
  StatusOr<TAck> back = ParsePostResponse(*xml, Schemas());
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->success());
  EXPECT_EQ(back->result_minor, tack.result_minor);
  EXPECT_EQ(back->result_message, tack.result_message);
}

TEST_F(GenAsyncMailboxTest, PostResponseBuilderRefusesAnIncompleteTAck) {
  TAck tack = SampleTAck();
  tack.issuer.clear();
  EXPECT_EQ(BuildPostResponse(tack).status().code(), StatusCode::kInvalid);
  tack = SampleTAck();
  tack.id = "1-not-ncname";
  EXPECT_EQ(BuildPostResponse(tack).status().code(), StatusCode::kInvalid);
}

TEST_F(GenAsyncMailboxTest, ASchemaInvalidPostResponseIsRefusedWithTheReason) {
  StatusOr<std::string> xml = BuildPostResponse(SampleTAck());
  ASSERT_TRUE(xml.ok());
  const std::string broken = Replace(*xml, "ResultMajor=", "ResultMajr=");
  StatusOr<TAck> back = ParsePostResponse(broken, Schemas());
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kInvalid);
  EXPECT_NE(back.status().message().find("schema"), std::string::npos) << back.status().message();
}

TEST_F(GenAsyncMailboxTest, AFaultIsNotATAck) {
  StatusOr<std::string> fault = BuildSoapFault({"", "Server", "down", "", ""});
  ASSERT_TRUE(fault.ok());
  StatusOr<TAck> back = ParsePostResponse(*fault, Schemas());
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kInvalid);
}

TEST_F(GenAsyncMailboxTest, GetRequestRoundTrips) {
  GetRequest r;
  r.origin_nihii = kPractice;
  r.message_names = {"HCPFAC", "HCPAFD"};
  r.max_messages = 7;
  r.include_tacks = false;
  r.package_name = "Passerelle";
  r.license_username = "user";
  r.license_password = "secret";
  StatusOr<std::string> xml = BuildGetRequest(r, clock_);
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  ExpectValid(*xml);
  StatusOr<GetRequest> back = ParseGetRequest(*xml, Schemas());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->origin_nihii, kPractice);
  EXPECT_EQ(back->message_names, r.message_names);
  EXPECT_EQ(back->max_messages, 7u);
  EXPECT_FALSE(back->include_tacks);
  EXPECT_EQ(back->license_username, "user");
}

TEST_F(GenAsyncMailboxTest, GetRequestBuilderChecksTheOrigin) {
  GetRequest r;
  r.origin_nihii = "123";
  EXPECT_EQ(BuildGetRequest(r, clock_).status().code(), StatusCode::kInvalid);
}

TEST_F(GenAsyncMailboxTest, ASchemaInvalidGetIsRefused) {
  GetRequest r;
  r.origin_nihii = kPractice;
  StatusOr<std::string> xml = BuildGetRequest(r, clock_);
  ASSERT_TRUE(xml.ok());
  const std::string broken = Replace(*xml, "<gen:Max>100</gen:Max>", "<gen:Max>many</gen:Max>");
  StatusOr<GetRequest> back = ParseGetRequest(broken, Schemas());
  ASSERT_FALSE(back.ok());
  EXPECT_EQ(back.status().code(), StatusCode::kInvalid);
}

TEST_F(GenAsyncMailboxTest, EfactReturnRoundTripsForEveryKind) {
  const EfactFile original = efact_test::SampleFile();
  const std::vector<EfactReturnError> errors = {{kCode200701, 2, "7"}, {kCode100301, 1, "3"}};
  for (EfactReturnKind kind :
       {EfactReturnKind::kAcknowledged, EfactReturnKind::kRefused,
        EfactReturnKind::kRefusedBlocking, EfactReturnKind::kAcceptedWithErrors}) {
    const std::vector<EfactReturnError> with =
        kind == EfactReturnKind::kAcknowledged ? std::vector<EfactReturnError>{} : errors;
    StatusOr<std::string> bytes = BuildEfactReturn(original, kind, with);
    ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
    EXPECT_EQ(bytes->substr(0, 6), EfactReturnMessageType(kind));
    StatusOr<EfactReturn> back = ParseEfactReturn(*bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(back->kind, kind);
    EXPECT_EQ(back->message_type, EfactReturnMessageType(kind));
    EXPECT_EQ(back->original_reference, original.segment200.Zone("204"));
    EXPECT_EQ(back->is_test, original.IsTest());
    EXPECT_EQ(back->errors, with);
  }
  StatusOr<std::string> a = BuildEfactReturn(original, EfactReturnKind::kAcknowledged, {}, 41);
  StatusOr<std::string> b = BuildEfactReturn(original, EfactReturnKind::kAcknowledged, {}, 42);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  StatusOr<EfactReturn> ra = ParseEfactReturn(*a);
  ASSERT_TRUE(ra.ok());
  EXPECT_EQ(ra->return_reference, "00000000000041");
  EXPECT_EQ(ra->original_reference, original.segment200.Zone("204"));
  EXPECT_FALSE(
      BuildEfactReturn(original, EfactReturnKind::kAcknowledged, {}, 100'000'000'000'000ULL).ok());
  EXPECT_EQ(EfactReturnDecision(EfactReturnKind::kAcknowledged), "accepted");
  EXPECT_EQ(EfactReturnDecision(EfactReturnKind::kRefused), "refused");
  EXPECT_EQ(EfactReturnDecision(EfactReturnKind::kRefusedBlocking), "refused");
  EXPECT_EQ(EfactReturnDecision(EfactReturnKind::kAcceptedWithErrors), "accepted-with-errors");
}

TEST_F(GenAsyncMailboxTest, EfactReturnRulesAreEnforced) {
  const EfactFile original = efact_test::SampleFile();
  EXPECT_FALSE(
      BuildEfactReturn(original, EfactReturnKind::kAcknowledged, {{kCode200701, 2, "7"}}).ok());
  EXPECT_FALSE(BuildEfactReturn(original, EfactReturnKind::kRefusedBlocking, {}).ok());
  EXPECT_FALSE(BuildEfactReturn(original, EfactReturnKind::kRefused, {{"12345", 2, "7"}}).ok());
  EXPECT_FALSE(
      BuildEfactReturn(original, EfactReturnKind::kRefused, {{kCode200701, 2, "12345"}}).ok());

  std::string bytes = ReturnFile(EfactReturnKind::kRefused, {{kCode200701, 2, "7"}});
  std::string tampered = bytes;
  tampered[kEfactHeaderLength + 12] = '9';  // the code, checksum now wrong
  EXPECT_EQ(ParseEfactReturn(tampered).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(ParseEfactReturn(bytes.substr(0, bytes.size() - 1)).status().code(),
            StatusCode::kMalformed);
  std::string other_type = bytes;
  other_type.replace(0, 6, "920000");
  EXPECT_EQ(ParseEfactReturn(other_type).status().code(), StatusCode::kInvalid);
}

TEST_F(GenAsyncMailboxTest, TheFuzzSeedReturnFilesParse) {
  const std::string dir = std::string(PSL_SOURCE_DIR) + "/codecs/testdata/genasync_mailbox/";
  for (const char* name :
       {"return-931000.txt", "return-920999.txt", "return-920099.txt", "return-920098.txt"}) {
    std::ifstream in(dir + name, std::ios::binary);
    ASSERT_TRUE(in.good()) << name;
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    StatusOr<EfactReturn> ret = ParseEfactReturn(bytes);
    ASSERT_TRUE(ret.ok()) << name << ": " << ret.status().ToString();
    EXPECT_EQ(ret->message_type, std::string(name).substr(7, 6));
    EXPECT_EQ(ret->return_reference, "00000000000042");
  }
}

TEST_F(GenAsyncMailboxTest, GetResponseRoundTripsVerifiedMessagesAndTAcks) {
  const std::string ack = ReturnFile(EfactReturnKind::kAcknowledged);
  const std::string refusal = ReturnFile(EfactReturnKind::kRefused, {{kCode200701, 2, "7"}});
  const std::string xml =
      BuildGet({Spec("ref-1", ack), Spec("ref-2", refusal)}, {SampleTAck()}, material_.insurer);
  ExpectValid(xml);
  StatusOr<GetResponse> got = Parse(xml);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->rejected.empty()) << got->rejected.front();
  ASSERT_EQ(got->messages.size(), 2u);
  EXPECT_EQ(got->messages[0].input_reference, "ref-1");
  EXPECT_EQ(got->messages[0].content, ack);
  EXPECT_EQ(got->messages[0].message_name, "HCPFAC");
  EXPECT_EQ(got->messages[0].nip_reference, "NIP-1");
  EXPECT_EQ(got->messages[0].output_reference, "OUT-1");
  EXPECT_EQ(got->messages[1].content, refusal);
  EXPECT_NE(got->messages[0].hash_value, got->messages[1].hash_value);
  StatusOr<std::string> deflated = DeflateRaw(ack);
  ASSERT_TRUE(deflated.ok());
  EXPECT_EQ(got->messages[0].hash_value, GenAsyncHashValue(*deflated));
  EXPECT_NE(got->messages[0].document.find("MsgResponse"), std::string::npos);
  // The standalone document verifies on its own.
  EXPECT_TRUE(VerifyGenAsyncElement(got->messages[0].document, material_.trust.get(), clock_).ok());
  StatusOr<EfactReturn> ret = ParseEfactReturn(got->messages[1].content);
  ASSERT_TRUE(ret.ok());
  EXPECT_EQ(ret->kind, EfactReturnKind::kRefused);

  ASSERT_EQ(got->tacks.size(), 1u);
  EXPECT_EQ(got->tacks[0].tack.reference, "IO300-42");
  EXPECT_EQ(got->tacks[0].content, SampleTAck().content);
  EXPECT_FALSE(got->tacks[0].tack.id.empty());

  // Inside a SOAP envelope too.
  StatusOr<std::string> soap = BuildSoapResponse(xml);
  ASSERT_TRUE(soap.ok());
  StatusOr<GetResponse> from_soap = Parse(*soap);
  ASSERT_TRUE(from_soap.ok()) << from_soap.status().ToString();
  EXPECT_EQ(from_soap->messages.size(), 2u);
}

TEST_F(GenAsyncMailboxTest, AnEmptyMailboxIsValid) {
  const std::string xml = BuildGet({}, {}, material_.insurer);
  ExpectValid(xml);
  StatusOr<GetResponse> got = Parse(xml);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->messages.empty());
  EXPECT_TRUE(got->tacks.empty());
}

// Replaces the base64 Detail of the first MsgResponse by `content` (deflated), keeping the rest.
std::string WithDetailContent(const std::string& xml, const std::string& content) {
  const std::size_t open = xml.find("<gen:Detail");
  const std::size_t text = xml.find('>', open) + 1;
  const std::size_t close = xml.find("</gen:Detail>", text);
  StatusOr<std::string> deflated = DeflateRaw(content);
  EXPECT_TRUE(deflated.ok());
  std::string out = xml;
  return out.replace(text, close - text, EncodeBase64(*deflated));
}

TEST_F(GenAsyncMailboxTest, ATamperedDetailIsRejectedOthersKept) {
  const std::string ack = ReturnFile(EfactReturnKind::kAcknowledged);
  const std::string xml = BuildGet({Spec("ref-1", ack), Spec("ref-2", ack)}, {}, material_.insurer);
  const std::string other = ReturnFile(EfactReturnKind::kRefused, {{kCode200701, 2, "7"}});
  const std::string tampered = WithDetailContent(xml, other);
  StatusOr<GetResponse> got = Parse(tampered);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->rejected.size(), 1u);
  EXPECT_NE(got->rejected[0].find("MsgResponse 1"), std::string::npos) << got->rejected[0];
  ASSERT_EQ(got->messages.size(), 1u);
  EXPECT_EQ(got->messages[0].input_reference, "ref-2");
}

TEST_F(GenAsyncMailboxTest, AnotherCaIsRejected) {
  const std::string ack = ReturnFile(EfactReturnKind::kAcknowledged);
  const std::string xml = BuildGet({Spec("ref-1", ack)}, {SampleTAck()}, material_.untrusted);
  StatusOr<GetResponse> got = Parse(xml);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->messages.empty());
  EXPECT_TRUE(got->tacks.empty());
  EXPECT_EQ(got->rejected.size(), 2u);
}

TEST_F(GenAsyncMailboxTest, ABadHashValueIsRejected) {
  const std::string ack = ReturnFile(EfactReturnKind::kAcknowledged);
  const std::string xml = BuildGet({Spec("ref-1", ack)}, {}, material_.insurer);
  const std::size_t at = xml.find("HashValue=\"") + std::string("HashValue=\"").size();
  std::string bad = xml;
  bad.replace(at, 44, GenAsyncHashValue("something else"));
  StatusOr<GetResponse> got = Parse(bad);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->messages.empty());
  ASSERT_EQ(got->rejected.size(), 1u);
  EXPECT_NE(got->rejected[0].find("HashValue"), std::string::npos) << got->rejected[0];
}

TEST_F(GenAsyncMailboxTest, ATamperedTAckIsRejected) {
  const std::string xml = BuildGet({}, {SampleTAck()}, material_.insurer);
  const std::string bad =
      Replace(xml, SampleTAck().content, TAckContentFor("<other/>", kTAckSuccess));
  ASSERT_NE(bad, xml);
  StatusOr<GetResponse> got = Parse(bad);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->tacks.empty());
  EXPECT_EQ(got->rejected.size(), 1u);
}

TEST_F(GenAsyncMailboxTest, ASchemaInvalidGetResponseFailsClosed) {
  const std::string ack = ReturnFile(EfactReturnKind::kAcknowledged);
  const std::string xml = BuildGet({Spec("ref-1", ack)}, {}, material_.insurer);
  const std::string bad = Replace(xml, "MsgCount=", "MessageCount=");
  StatusOr<GetResponse> got = Parse(bad);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInvalid);
  EXPECT_NE(got.status().message().find("schema"), std::string::npos) << got.status().message();
}

TEST_F(GenAsyncMailboxTest, ParsingWithoutTrustIsAPreconditionFailure) {
  const std::string xml = BuildGet({}, {}, material_.insurer);
  EXPECT_EQ(ParseGetResponse(xml, Schemas(), nullptr, clock_).status().code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(GenAsyncMailboxTest, ConfirmRoundTrips) {
  ConfirmRequest r;
  r.origin_nihii = kPractice;
  r.msg_hash_values = {GenAsyncHashValue("a"), GenAsyncHashValue("b")};
  r.tack_contents = {TAckContentFor("<post/>", kTAckSuccess)};
  StatusOr<std::string> xml = BuildConfirmRequest(r, clock_);
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  ExpectValid(*xml);
  StatusOr<ConfirmRequest> back = ParseConfirmRequest(*xml, Schemas());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->origin_nihii, kPractice);
  EXPECT_EQ(back->msg_hash_values, r.msg_hash_values);
  EXPECT_EQ(back->tack_contents, r.tack_contents);

  ConfirmRequest empty;
  empty.origin_nihii = kPractice;
  StatusOr<std::string> none = BuildConfirmRequest(empty, clock_);
  ASSERT_TRUE(none.ok());
  ExpectValid(*none);

  r.msg_hash_values.push_back("not base64!");
  EXPECT_EQ(BuildConfirmRequest(r, clock_).status().code(), StatusCode::kInvalid);

  StatusOr<std::string> response = BuildConfirmResponse();
  ASSERT_TRUE(response.ok());
  ExpectValid(*response);
  EXPECT_TRUE(ParseConfirmResponse(*response, Schemas()).ok());
  EXPECT_FALSE(ParseConfirmResponse(*none, Schemas()).ok());  // a confirm is no confirmResponse
}

}  // namespace
}  // namespace psl::codecs
