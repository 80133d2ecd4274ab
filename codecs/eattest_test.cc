#include "codecs/eattest.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/testing/fake_clock.h"
#include "certs/key_store.h"
#include "certs/testing/test_pki.h"
#include "certs/trust_store.h"
#include "codecs/base64.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/xmlsec_library.h"

namespace psl::codecs {
namespace {

namespace fs = std::filesystem;

// From conformance/generate_eattest_corpus.py.
constexpr char kDoctor[] = "12345625004";

fs::path Corpus() {
  return fs::path(PSL_SOURCE_DIR) / "conformance" / "eattest";
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void InitXmlSec() {
  static const XmlSecLibrary* const xmlsec = new XmlSecLibrary();
  ASSERT_TRUE(xmlsec->status().ok());
}

const certs::testing::TestPki& Pki() {
  return certs::testing::SharedTestPki();
}

SigningIdentity Identity(const std::string& name) {
  const fs::path chain = Pki() / (name + "-chain.pem");
  StatusOr<SigningIdentity> id =
      certs::LoadPemIdentity(Pki() / (name + ".key"), Pki() / (name + ".pem"), &chain, nullptr);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? std::move(id).value() : SigningIdentity{};
}

bool HasCode(const ValidationReport& r, std::string_view code) {
  return std::any_of(r.problems.begin(), r.problems.end(),
                     [&](const Problem& p) { return p.code == code; });
}

class EAttestCodecTest : public ::testing::Test {
 protected:
  EAttestCodecTest() : codec_(mhm_test::TestSchemas(), day_) { day_.SetUtc(2025, 1, 2, 10); }

  StatusOr<EAttestRequest> Decode(const std::string& file, std::string_view practice,
                                  ValidationReport* report) {
    return codec_.Decode(ReadFile(Corpus() / file), practice, report);
  }

  testing::FakeClock day_;
  EAttestCodec codec_;
};

TEST_F(EAttestCodecTest, DecodesAValidSendAttestation) {
  ValidationReport report;
  StatusOr<EAttestRequest> r = Decode("valid/send_basic.xml", kDoctor, &report);
  ASSERT_TRUE(r.ok()) << r.status().ToString()
                      << " first: " << (report.problems.empty() ? "" : report.problems[0].message);
  EXPECT_EQ(report.kind, "claim");
  EXPECT_EQ(report.flow, "eattest");
  EXPECT_EQ(report.operation, "SendAttestation");
  EXPECT_EQ(r->operation, EAttestOperation::kSend);
  EXPECT_EQ(r->care_provider_nihii, kDoctor);
  EXPECT_EQ(r->kmehr_version, "1.42");
  EXPECT_EQ(r->request_id, std::string(kDoctor) + ".20250102093000");
  EXPECT_FALSE(r->patient_ssin.empty());
  EXPECT_NE(r->detail_xml.find("cga"), std::string::npos);
}

TEST_F(EAttestCodecTest, DecodesAValidCancellation) {
  ValidationReport report;
  StatusOr<EAttestRequest> r = Decode("valid/cancel_basic.xml", kDoctor, &report);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->operation, EAttestOperation::kCancel);
  EXPECT_EQ(r->invoicing_number, "300.20250102.0001");
}

TEST_F(EAttestCodecTest, AnotherPracticeIsRefusedOnBothLevels) {
  ValidationReport report;
  StatusOr<EAttestRequest> r = Decode("valid/send_basic.xml", "11478761004", &report);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalid);
  EXPECT_TRUE(HasCode(report, "PSL-EATTEST-NOT-PRACTICE"));
  EXPECT_TRUE(HasCode(report, "155"));  // the kmehr author is not the caller either
}

TEST_F(EAttestCodecTest, ProblemsCarryLinePathAndDocument) {
  ValidationReport report;
  StatusOr<EAttestRequest> r = Decode("invalid/130/patientpaid_negative.xml", kDoctor, &report);
  ASSERT_FALSE(r.ok());
  const auto it = std::find_if(report.problems.begin(), report.problems.end(),
                               [](const Problem& p) { return p.code == "130"; });
  ASSERT_NE(it, report.problems.end());
  EXPECT_EQ(it->document, "detail");
  EXPECT_GT(it->line, 0);
  EXPECT_EQ(it->path,
            "/SendTransactionRequest/kmehrmessage/folder/transaction[cga]/item[patientpaid]/cost/"
            "decimal");
}

TEST_F(EAttestCodecTest, EveryCorpusCaseGivesItsCode) {
  // The codec with the authenticated practice (the conformance test runs without one).
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(Corpus() / "invalid")) {
    if (entry.path().extension() != ".xml") {
      continue;
    }
    ++files;
    const std::string code = entry.path().parent_path().filename().string();
    ValidationReport report;
    StatusOr<EAttestRequest> r = codec_.Decode(ReadFile(entry.path()), kDoctor, &report);
    EXPECT_FALSE(r.ok()) << entry.path();
    EXPECT_TRUE(HasCode(report, code)) << entry.path();
  }
  EXPECT_GE(files, 40);
  for (const auto& entry : fs::directory_iterator(Corpus() / "valid")) {
    ValidationReport report;
    StatusOr<EAttestRequest> r = codec_.Decode(ReadFile(entry.path()), kDoctor, &report);
    EXPECT_TRUE(r.ok()) << entry.path() << ": "
                        << (report.problems.empty()
                                ? r.status().ToString()
                                : report.problems[0].code + " " + report.problems[0].message + " " +
                                      report.problems[0].path);
  }
}

TEST_F(EAttestCodecTest, RuleTableFollowsTheEnumerationAndUsesKnownCodes) {
  const std::string table = mhm_test::ReadShared("errors/eAttestErrors.json");
  for (std::size_t i = 0; i < EAttestRuleTable().size(); ++i) {
    const EAttestRuleSpec& spec = EAttestRuleTable()[i];
    EXPECT_EQ(static_cast<std::size_t>(spec.rule), i);
    if (spec.code.rfind("PSL-", 0) != 0) {
      EXPECT_NE(table.find("\"code\":\"" + std::string(spec.code) + "\""), std::string::npos)
          << spec.code;
    }
  }
}

// --- the sealed path -----------------------------------------------------------------------

class EAttestSealedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    (void)mhm_test::TestSchemas();
    InitXmlSec();
    ASSERT_TRUE(Pki().ok());
    day_.SetUtc(2025, 1, 2, 10);
    now_.Set(std::chrono::system_clock::now());
    gateway_ = Identity("gateway");
    mycarenet_ = Identity("insurer-300");
    other_ = Identity("insurer-500");
    StatusOr<X509StorePtr> trust = certs::LoadTrustStore(Pki() / "ca.pem");
    ASSERT_TRUE(trust.ok());
    trust_ = std::move(trust).value();
    EAttestCodec codec(mhm_test::TestSchemas(), day_);
    ValidationReport report;
    StatusOr<EAttestRequest> r =
        codec.Decode(ReadFile(Corpus() / "valid/send_basic.xml"), kDoctor, &report);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    decoded_ = std::move(r).value();
  }

  std::string Prepare(int attempt = 1) {
    StatusOr<std::string> out = PrepareForInsurer(decoded_, gateway_, mycarenet_.certificate.get(),
                                                  attempt, mhm_test::TestSchemas(), now_);
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    return out.ok() ? std::move(out).value() : std::string();
  }

  StatusOr<OpenedAttestation> Open(const std::string& xml) {
    return OpenAtInsurer(xml, mhm_test::TestSchemas(), mycarenet_, trust_.get(), now_);
  }

  testing::FakeClock day_;
  testing::FakeClock now_;
  SigningIdentity gateway_;
  SigningIdentity mycarenet_;
  SigningIdentity other_;
  X509StorePtr trust_;
  EAttestRequest decoded_;
};

TEST_F(EAttestSealedTest, PreparedRequestIsSealedAndOpensAtTheInsurer) {
  const std::string xml = Prepare();
  EXPECT_NE(xml.find("ContentEncryption=\"encryptedForKnownBED\""), std::string::npos);
  EXPECT_NE(xml.find("MessageVersion=\"3.0\""), std::string::npos);
  EXPECT_NE(xml.find("urn:be:cin:nippin:attemptNbr"), std::string::npos);
  EXPECT_EQ(xml.find(decoded_.patient_ssin + "</ns3:id>"), std::string::npos);  // not in clear
  StatusOr<OpenedAttestation> opened = Open(xml);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->kmehr_xml, decoded_.detail_xml);
  EXPECT_EQ(opened->attempt_nbr, 1);
  EXPECT_NE(opened->signer_subject.find("CN=gateway"), std::string::npos);
  ASSERT_TRUE(opened->reply_to);
  EXPECT_EQ(X509_cmp(opened->reply_to.get(), gateway_.certificate.get()), 0);
}

TEST_F(EAttestSealedTest, AttemptNumberIsReplacedNotDuplicated) {
  StatusOr<std::string> again = SetAttemptNumber(Prepare(), 3);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  std::size_t count = 0;
  for (std::size_t at = again->find("attemptNbr"); at != std::string::npos;
       at = again->find("attemptNbr", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 1u);
  StatusOr<OpenedAttestation> opened = Open(*again);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->attempt_nbr, 3);
  EXPECT_EQ(SetAttemptNumber(*again, 0).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(SetAttemptNumber("<x", 2).status().code(), StatusCode::kMalformed);
}

TEST_F(EAttestSealedTest, TheWrongInsurerCannotOpen) {
  StatusOr<OpenedAttestation> opened =
      OpenAtInsurer(Prepare(), mhm_test::TestSchemas(), other_, trust_.get(), now_);
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("no RecipientInfo"), std::string::npos);
}

TEST_F(EAttestSealedTest, AnUnsealedRequestIsRefusedAtTheInsurer) {
  StatusOr<OpenedAttestation> opened = Open(ReadFile(Corpus() / "valid/send_basic.xml"));
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kInvalid);
}

TEST_F(EAttestSealedTest, AcceptedAnswerRoundTripsWithItsInvoicingNumber) {
  StatusOr<OpenedAttestation> opened = Open(Prepare());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EAttestResponseSpec spec;
  spec.insurer_code = "300";
  spec.invoicing_number = "300.20250102.0042";
  StatusOr<std::string> answer =
      BuildAttestationResponse(*opened, spec, mycarenet_, mhm_test::TestSchemas(), now_);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  StatusOr<EAttestAnswer> parsed =
      ParseAttestationResponse(*answer, mhm_test::TestSchemas(), gateway_, trust_.get(), now_);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->decision, kEAttestAccepted);
  EXPECT_EQ(parsed->insurer_reference, "300.20250102.0042");
  EXPECT_TRUE(parsed->codes.empty());
  EXPECT_EQ(parsed->input_reference, decoded_.envelope_id);
  EXPECT_NE(parsed->signer_subject.find("CN=insurer-300"), std::string::npos);
}

TEST_F(EAttestSealedTest, RefusalCarriesItsCodes) {
  StatusOr<OpenedAttestation> opened = Open(Prepare());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EAttestResponseSpec spec;
  spec.accepted = false;
  spec.insurer_code = "300";
  spec.errors = {{"187", "/SendTransactionRequest/kmehrmessage/folder/transaction[cgd]", ""},
                 {"120", "", ""}};
  StatusOr<std::string> answer =
      BuildAttestationResponse(*opened, spec, mycarenet_, mhm_test::TestSchemas(), now_);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  StatusOr<EAttestAnswer> parsed =
      ParseAttestationResponse(*answer, mhm_test::TestSchemas(), gateway_, trust_.get(), now_);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->decision, kEAttestRefused);
  EXPECT_EQ(parsed->codes, (std::vector<std::string>{"187", "120"}));
  EXPECT_TRUE(parsed->insurer_reference.empty());
}

TEST_F(EAttestSealedTest, AnswerFromAnUntrustedInsurerIsRefused) {
  StatusOr<OpenedAttestation> opened = Open(Prepare());
  ASSERT_TRUE(opened.ok());
  EAttestResponseSpec spec;
  spec.insurer_code = "300";
  spec.invoicing_number = "1";
  SigningIdentity untrusted = Identity("untrusted");
  StatusOr<std::string> answer =
      BuildAttestationResponse(*opened, spec, untrusted, mhm_test::TestSchemas(), now_);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  StatusOr<EAttestAnswer> parsed =
      ParseAttestationResponse(*answer, mhm_test::TestSchemas(), gateway_, trust_.get(), now_);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalid);
}

TEST_F(EAttestSealedTest, BuildRefusesInconsistentSpecs) {
  StatusOr<OpenedAttestation> opened = Open(Prepare());
  ASSERT_TRUE(opened.ok());
  EAttestResponseSpec no_number;
  no_number.insurer_code = "300";
  EXPECT_EQ(BuildAttestationResponse(*opened, no_number, mycarenet_, mhm_test::TestSchemas(), now_)
                .status()
                .code(),
            StatusCode::kInvalid);
  EAttestResponseSpec refused_without_errors;
  refused_without_errors.accepted = false;
  refused_without_errors.insurer_code = "300";
  EXPECT_EQ(BuildAttestationResponse(*opened, refused_without_errors, mycarenet_,
                                     mhm_test::TestSchemas(), now_)
                .status()
                .code(),
            StatusCode::kInvalid);
}

TEST_F(EAttestSealedTest, PrepareRefusesABadAttemptNumberOrMissingCertificate) {
  EXPECT_EQ(PrepareForInsurer(decoded_, gateway_, mycarenet_.certificate.get(), 0,
                              mhm_test::TestSchemas(), now_)
                .status()
                .code(),
            StatusCode::kInvalid);
  EXPECT_EQ(PrepareForInsurer(decoded_, gateway_, nullptr, 1, mhm_test::TestSchemas(), now_)
                .status()
                .code(),
            StatusCode::kFailedPrecondition);
}

TEST_F(EAttestSealedTest, AnswerInsideASoapEnvelopeIsRead) {
  StatusOr<OpenedAttestation> opened = Open(Prepare());
  ASSERT_TRUE(opened.ok());
  EAttestResponseSpec spec;
  spec.insurer_code = "300";
  spec.invoicing_number = "300-7";
  StatusOr<std::string> answer =
      BuildAttestationResponse(*opened, spec, mycarenet_, mhm_test::TestSchemas(), now_);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  const std::string body = answer->substr(answer->find("?>") + 2);
  const std::string soap =
      "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body>" + body +
      "</s:Body></s:Envelope>";
  StatusOr<EAttestAnswer> parsed =
      ParseAttestationResponse(soap, mhm_test::TestSchemas(), gateway_, trust_.get(), now_);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->insurer_reference, "300-7");
}

TEST_F(EAttestSealedTest, TamperedSealedDetailIsRefused) {
  std::string xml = Prepare();
  const std::size_t open = xml.find('>', xml.find("ContentEncryption=")) + 1;
  const std::size_t at = open + (xml.find('<', open) - open) / 2;
  xml[at] = xml[at] == 'A' ? 'B' : 'A';
  StatusOr<OpenedAttestation> opened = Open(xml);
  ASSERT_FALSE(opened.ok());
  EXPECT_EQ(opened.status().code(), StatusCode::kInvalid);
}

TEST_F(EAttestSealedTest, AnswerSealedForSomeoneElseIsRefused) {
  StatusOr<OpenedAttestation> opened = Open(Prepare());
  ASSERT_TRUE(opened.ok());
  EAttestResponseSpec spec;
  spec.insurer_code = "300";
  spec.invoicing_number = "1";
  StatusOr<std::string> answer =
      BuildAttestationResponse(*opened, spec, mycarenet_, mhm_test::TestSchemas(), now_);
  ASSERT_TRUE(answer.ok());
  StatusOr<EAttestAnswer> parsed =
      ParseAttestationResponse(*answer, mhm_test::TestSchemas(), other_, trust_.get(), now_);
  ASSERT_FALSE(parsed.ok());
  EXPECT_NE(parsed.status().message().find("no RecipientInfo"), std::string::npos);
}

TEST_F(EAttestSealedTest, PreparesFromBytesIncludingADeflatedDetail) {
  StatusOr<std::string> xml =
      PrepareRequestXmlForInsurer(ReadFile(Corpus() / "valid/send_deflate.xml"), gateway_,
                                  mycarenet_.certificate.get(), 2, mhm_test::TestSchemas(), now_);
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  EXPECT_NE(xml->find("ContentEncoding=\"none\""), std::string::npos);
  StatusOr<OpenedAttestation> opened = Open(*xml);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->attempt_nbr, 2);
  EXPECT_NE(opened->kmehr_xml.find("SendTransactionRequest"), std::string::npos);
  // An already sealed request is not sealed twice.
  EXPECT_EQ(PrepareRequestXmlForInsurer(*xml, gateway_, mycarenet_.certificate.get(), 1,
                                        mhm_test::TestSchemas(), now_)
                .status()
                .code(),
            StatusCode::kInvalid);
}

}  // namespace
}  // namespace psl::codecs
