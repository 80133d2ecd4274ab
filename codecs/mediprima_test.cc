#include "codecs/mediprima.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>

#include "base/testing/fake_clock.h"
#include "codecs/soap.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/validator.h"

namespace psl::codecs {
namespace {

using mhm_test::Dump;
using mhm_test::LineOf;
using mhm_test::Replace;
using mhm_test::TestSchemas;

// Synthetic identifiers, check digits per DOMAIN.md §2.
constexpr char kPhysician[] = "11478761004";       // 114787 mod 97 = 36 -> 61, GP (004)
constexpr char kOtherPhysician[] = "12345625004";  // 123456 mod 97 = 72 -> 25
constexpr char kDentist[] = "30000021001";         // 300000 mod 97 = 76 -> 21
constexpr char kPhysicianMod89[] = "11478723004";  // 114787 mod 89 = 66 -> 23 only
constexpr char kNiss[] = "85073003328";            // 1985
constexpr char kNiss2000[] = "17073003384";        // 2017 ("prefix 2" branch)
constexpr char kBis[] = "85493000163";             // BIS, month 09 + 40

constexpr char kAuthor[] =
    "  <prot:Author>\n"
    "    <core:HcParty>\n"
    "      <core:Id Type=\"urn:be:fgov:ehealth:1.0:physician:nihii-number\">11478761004</core:Id>\n"
    "      <core:FirstName>Synthetic</core:FirstName>\n"
    "      <core:Name>Doctor</core:Name>\n"
    "    </core:HcParty>\n"
    "  </prot:Author>\n";

std::string UmaRoot(std::string_view name, std::string_view body) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<uma:" + std::string(name) +
         " xmlns:uma=\"urn:be:fgov:ehealth:mediprima:uma:protocol:v1\""
         " xmlns:prot=\"urn:be:fgov:ehealth:commons:protocol:v2\""
         " xmlns:core=\"urn:be:fgov:ehealth:commons:core:v2\""
         " Id=\"_req-1\" IssueInstant=\"2025-01-02T09:30:00+01:00\">\n" +
         std::string(body) + "</uma:" + std::string(name) + ">\n";
}

std::string SendRequest() {
  return UmaRoot("SendUrgentMedicalAidAttestationRequest",
                 std::string(kAuthor) +
                     "  <BeneficiarySsin>85493000163</BeneficiarySsin>\n"
                     "  <ValidityPeriod>\n"
                     "    <StartDate>2025-01-02</StartDate>\n"
                     "    <EndDate>2025-01-31</EndDate>\n"
                     "  </ValidityPeriod>\n"
                     "  <MedicalCover>DOCTOR</MedicalCover>\n");
}

std::string SearchByNumberRequest() {
  return UmaRoot("SearchUrgentMedicalAidAttestationRequest",
                 "  <Criteria>\n"
                 "    <BeneficiarySsin>85493000163</BeneficiarySsin>\n"
                 "    <AttestationNumber>UMA-2025-000001</AttestationNumber>\n"
                 "  </Criteria>\n");
}

std::string SearchByPeriodRequest() {
  return UmaRoot("SearchUrgentMedicalAidAttestationRequest",
                 "  <Criteria>\n"
                 "    <BeneficiarySsin>85493000163</BeneficiarySsin>\n"
                 "    <Period>\n"
                 "      <StartDate>2024-12-01</StartDate>\n"
                 "      <EndDate>2025-01-02</EndDate>\n"
                 "    </Period>\n"
                 "    <MedicalCover>DOCTOR</MedicalCover>\n"
                 "  </Criteria>\n");
}

std::string DeleteRequest() {
  return UmaRoot("DeleteUrgentMedicalAidAttestationRequest",
                 std::string(kAuthor) +
                     "  <BeneficiarySsin>85493000163</BeneficiarySsin>\n"
                     "  <AttestationNumber>UMA-2025-000001</AttestationNumber>\n");
}

std::string ConsultRequest(
    std::string_view criteria = "      <ReferenceDate>2025-01-02</ReferenceDate>\n") {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         "<mp:ConsultCarmedInterventionRequest "
         "xmlns:mp=\"urn:be:fgov:ehealth:mediprima:protocol:v2\""
         " Id=\"_req-2\" IssueInstant=\"2025-01-02T09:30:00+01:00\">\n"
         "  <SelectionCriteria>\n"
         "    <BySsin>\n"
         "      <Ssin>85493000163</Ssin>\n" +
         std::string(criteria) +
         "    </BySsin>\n"
         "  </SelectionCriteria>\n"
         "</mp:ConsultCarmedInterventionRequest>\n";
}

class MediPrimaTest : public ::testing::Test {
 protected:
  MediPrimaTest() : codec_(TestSchemas(), clock_) { clock_.SetUtc(2025, 1, 2, 10, 0); }

  StatusOr<MediPrimaRequest> Decode(const std::string& xml,
                                    std::string_view authenticated = kPhysician) {
    report_ = ValidationReport();
    return codec_.Decode(xml, authenticated, &report_);
  }

  // The one error of the last Decode; fails unless there is exactly one.
  const Problem& OnlyError() {
    static const Problem kNone;
    const Problem* found = nullptr;
    int errors = 0;
    for (const Problem& p : report_.problems) {
      if (p.severity == Severity::kError) {
        found = &p;
        ++errors;
      }
    }
    EXPECT_EQ(errors, 1) << Dump(report_);
    return found != nullptr ? *found : kNone;
  }

  // Decodes `xml`, expects exactly one error `code` at the line of `needle`, path `path`.
  void ExpectRule(const std::string& xml, std::string_view code, std::string_view needle,
                  std::string_view path, std::string_view authenticated = kPhysician) {
    SCOPED_TRACE(std::string(code));
    StatusOr<MediPrimaRequest> request = Decode(xml, authenticated);
    EXPECT_FALSE(request.ok());
    EXPECT_EQ(request.status().code(), StatusCode::kInvalid);
    const Problem& p = OnlyError();
    EXPECT_EQ(p.code, code) << Dump(report_);
    EXPECT_EQ(p.line, LineOf(xml, needle)) << Dump(report_);
    EXPECT_EQ(p.path, path) << Dump(report_);
    EXPECT_EQ(p.document, "envelope");
    // Never a patient value in what the practice sees.
    for (const char* value : {kNiss, kNiss2000, kBis, "85493000164", "8549300016"}) {
      EXPECT_EQ(p.message.find(value), std::string::npos) << p.message;
    }
  }

  testing::FakeClock clock_;
  MediPrimaCodec codec_;
  ValidationReport report_;
};

// ---- valid requests

TEST_F(MediPrimaTest, TheSharedConsultSampleValidates) {
  const std::string sample =
      mhm_test::ReadShared("samples/mediprima-ConsultCarmedInterventionRequest.SYNTHETIC.xml");
  ASSERT_FALSE(sample.empty());
  clock_.SetUtc(2025, 1, 2, 10, 0);  // the sample's date
  StatusOr<MediPrimaRequest> request = Decode(sample, "");
  ASSERT_TRUE(request.ok()) << request.status().ToString() << "\n" << Dump(report_);
  EXPECT_EQ(request->operation, MediPrimaOperation::kConsult);
  EXPECT_EQ(request->service, MediPrimaService::kConsult);
  EXPECT_EQ(request->request_id, "R6f1d2c3b-0000-4000-8000-000000000003");
  EXPECT_EQ(request->soap_action,
            "urn:be:fgov:ehealth:mediprima:protocol:v2:consultCarmedIntervention");
  EXPECT_EQ(report_.kind, "amu");
  EXPECT_EQ(report_.flow, "mediprima");
  EXPECT_EQ(report_.operation, "ConsultCarmedIntervention");
  EXPECT_TRUE(report_.problems.empty()) << Dump(report_);
}

TEST_F(MediPrimaTest, ASendRequestDecodesWithWhatLaterStagesNeed) {
  StatusOr<MediPrimaRequest> request = Decode(SendRequest());
  ASSERT_TRUE(request.ok()) << request.status().ToString() << "\n" << Dump(report_);
  EXPECT_TRUE(report_.problems.empty()) << Dump(report_);
  EXPECT_EQ(request->operation, MediPrimaOperation::kSendAttestation);
  EXPECT_EQ(request->service, MediPrimaService::kUma);
  EXPECT_EQ(request->operation_name, "SendUrgentMedicalAidAttestation");
  EXPECT_EQ(request->soap_action,
            "urn:be:fgov:ehealth:mediprima:uma:protocol:v1:sendMedicalEmergencyAttestion");
  EXPECT_EQ(request->request_id, "_req-1");
  EXPECT_EQ(request->issue_instant, "2025-01-02T09:30:00+01:00");
  EXPECT_EQ(request->author_nihii, kPhysician);
  EXPECT_EQ(request->patient, kBis);
  EXPECT_TRUE(request->patient_is_bis);
  EXPECT_NE(request->document, nullptr);
  EXPECT_EQ(report_.kind, "amu");
  EXPECT_EQ(report_.flow, "mediprima");
}

TEST_F(MediPrimaTest, SearchDeleteAndConsultDecode) {
  for (const auto& [xml, op, number] :
       {std::tuple{SearchByNumberRequest(), MediPrimaOperation::kSearchAttestation,
                   "UMA-2025-000001"},
        std::tuple{SearchByPeriodRequest(), MediPrimaOperation::kSearchAttestation, ""},
        std::tuple{DeleteRequest(), MediPrimaOperation::kDeleteAttestation, "UMA-2025-000001"},
        std::tuple{ConsultRequest(), MediPrimaOperation::kConsult, ""},
        std::tuple{ConsultRequest("      <Period>\n        <StartDate>2024-12-01</StartDate>\n"
                                  "        <EndDate>2025-01-31</EndDate>\n      </Period>\n"),
                   MediPrimaOperation::kConsult, ""}}) {
    StatusOr<MediPrimaRequest> request = Decode(xml);
    ASSERT_TRUE(request.ok()) << xml << "\n" << Dump(report_);
    EXPECT_TRUE(report_.problems.empty()) << Dump(report_);
    EXPECT_EQ(request->operation, op);
    EXPECT_EQ(request->attestation_number, number);
    EXPECT_EQ(request->patient, kBis);
    EXPECT_EQ(report_.operation, MediPrimaOperationName(op));
  }
}

TEST_F(MediPrimaTest, NissOfBothCenturiesAndBisAreAccepted) {
  for (const char* ssin : {kNiss, kNiss2000, kBis}) {
    StatusOr<MediPrimaRequest> request = Decode(Replace(SendRequest(), kBis, ssin));
    ASSERT_TRUE(request.ok()) << ssin << "\n" << Dump(report_);
    EXPECT_EQ(request->patient_is_bis, std::string_view(ssin) == kBis);
  }
}

TEST_F(MediPrimaTest, AnEightDigitAuthenticatedNihiiMatchesItsElevenDigitForm) {
  EXPECT_TRUE(Decode(SendRequest(), "11478761").ok()) << Dump(report_);
}

TEST_F(MediPrimaTest, NoAuthenticatedNihiiSkipsTheMismatchRule) {
  EXPECT_TRUE(Decode(Replace(SendRequest(), kPhysician, kOtherPhysician), "").ok())
      << Dump(report_);
}

TEST_F(MediPrimaTest, AMod89NihiiIsAcceptedWithAWarning) {
  StatusOr<MediPrimaRequest> request =
      Decode(Replace(SendRequest(), kPhysician, kPhysicianMod89), kPhysicianMod89);
  ASSERT_TRUE(request.ok()) << Dump(report_);
  ASSERT_EQ(report_.problems.size(), 1u) << Dump(report_);
  EXPECT_EQ(report_.problems[0].code, "PSL-MEDIPRIMA-AUTHOR-MOD89");
  EXPECT_EQ(report_.problems[0].severity, Severity::kWarning);
}

TEST_F(MediPrimaTest, AnOpenEndedValidityPeriodIsAccepted) {
  EXPECT_TRUE(Decode(Replace(SendRequest(), "    <EndDate>2025-01-31</EndDate>\n", "")).ok())
      << Dump(report_);
}

// ---- every rule, with its code and location

TEST_F(MediPrimaTest, SsinFormatAndCheckDigits) {
  ExpectRule(Replace(SendRequest(), kBis, "8549300016"), "PSL-MEDIPRIMA-SSIN", "<BeneficiarySsin>",
             "/SendUrgentMedicalAidAttestationRequest/BeneficiarySsin");
  ExpectRule(Replace(SendRequest(), kBis, "85493000164"), "PSL-MEDIPRIMA-SSIN-CHECK",
             "<BeneficiarySsin>", "/SendUrgentMedicalAidAttestationRequest/BeneficiarySsin");
  ExpectRule(Replace(SearchByNumberRequest(), kBis, "85493000164"), "PSL-MEDIPRIMA-SSIN-CHECK",
             "<BeneficiarySsin>",
             "/SearchUrgentMedicalAidAttestationRequest/Criteria/BeneficiarySsin");
  ExpectRule(Replace(DeleteRequest(), kBis, "85133000105"), "PSL-MEDIPRIMA-SSIN",
             "<BeneficiarySsin>", "/DeleteUrgentMedicalAidAttestationRequest/BeneficiarySsin");
  ExpectRule(Replace(ConsultRequest(), kBis, "85493000164"), "PSL-MEDIPRIMA-SSIN-CHECK", "<Ssin>",
             "/ConsultCarmedInterventionRequest/SelectionCriteria/BySsin/Ssin");
}

TEST_F(MediPrimaTest, AuthorRules) {
  ExpectRule(Replace(SendRequest(), "physician:nihii-number", "ssin"),
             "PSL-MEDIPRIMA-AUTHOR-MISSING", "<prot:Author>",
             "/SendUrgentMedicalAidAttestationRequest/Author");
  ExpectRule(Replace(DeleteRequest(), kPhysician, "11478762004"), "PSL-MEDIPRIMA-AUTHOR-NIHII",
             "<core:Id", "/DeleteUrgentMedicalAidAttestationRequest/Author/HcParty/Id");
  ExpectRule(Replace(SendRequest(), kPhysician, "11478761"), "PSL-MEDIPRIMA-AUTHOR-NIHII",
             "<core:Id", "/SendUrgentMedicalAidAttestationRequest/Author/HcParty/Id");
  ExpectRule(Replace(SendRequest(), kPhysician, kDentist), "PSL-MEDIPRIMA-AUTHOR-NOT-PHYSICIAN",
             "<core:Id", "/SendUrgentMedicalAidAttestationRequest/Author/HcParty/Id", kDentist);
  ExpectRule(SendRequest(), "PSL-MEDIPRIMA-AUTHOR-MISMATCH", "<core:Id",
             "/SendUrgentMedicalAidAttestationRequest/Author/HcParty/Id", kOtherPhysician);
  const std::string second_party =
      "    <core:HcParty>\n"
      "      <core:Id "
      "Type=\"urn:be:fgov:ehealth:1.0:physician:nihii-number\">12345625004</core:Id>\n"
      "      <core:Name>Other</core:Name>\n"
      "    </core:HcParty>\n"
      "  </prot:Author>\n";
  const std::string two = Replace(SendRequest(), "  </prot:Author>\n", second_party);
  ExpectRule(two, "PSL-MEDIPRIMA-AUTHOR-AMBIGUOUS", "12345625004",
             "/SendUrgentMedicalAidAttestationRequest/Author/HcParty/Id");
}

TEST_F(MediPrimaTest, PeriodAndDateRules) {
  ExpectRule(Replace(SendRequest(), "2025-01-31", "2025-01-01"), "PSL-MEDIPRIMA-PERIOD-ORDER",
             "<EndDate>", "/SendUrgentMedicalAidAttestationRequest/ValidityPeriod/EndDate");
  ExpectRule(Replace(SendRequest(), "2025-01-31", "2026-01-04"), "PSL-MEDIPRIMA-PERIOD-LENGTH",
             "<EndDate>", "/SendUrgentMedicalAidAttestationRequest/ValidityPeriod/EndDate");
  ExpectRule(Replace(Replace(SendRequest(), "2025-01-02</Start", "2022-12-31</Start"), "2025-01-31",
                     "2023-01-31"),
             "PSL-MEDIPRIMA-DATE-PAST", "<StartDate>",
             "/SendUrgentMedicalAidAttestationRequest/ValidityPeriod/StartDate");
  ExpectRule(Replace(Replace(SendRequest(), "2025-01-02</Start", "2025-02-03</Start"), "2025-01-31",
                     "2025-02-28"),
             "PSL-MEDIPRIMA-DATE-FUTURE", "<StartDate>",
             "/SendUrgentMedicalAidAttestationRequest/ValidityPeriod/StartDate");
  ExpectRule(Replace(SearchByPeriodRequest(), "2025-01-02</End", "2024-11-30</End"),
             "PSL-MEDIPRIMA-PERIOD-ORDER", "<EndDate>",
             "/SearchUrgentMedicalAidAttestationRequest/Criteria/Period/EndDate");
  ExpectRule(ConsultRequest("      <ReferenceDate>2025-02-03</ReferenceDate>\n"),
             "PSL-MEDIPRIMA-DATE-FUTURE", "<ReferenceDate>",
             "/ConsultCarmedInterventionRequest/SelectionCriteria/BySsin/ReferenceDate");
  ExpectRule(ConsultRequest("      <ReferenceDate>2022-12-31</ReferenceDate>\n"),
             "PSL-MEDIPRIMA-DATE-PAST", "<ReferenceDate>",
             "/ConsultCarmedInterventionRequest/SelectionCriteria/BySsin/ReferenceDate");
  ExpectRule(ConsultRequest("      <Period>\n        <StartDate>2025-01-02</StartDate>\n"
                            "        <EndDate>2024-12-01</EndDate>\n      </Period>\n"),
             "PSL-MEDIPRIMA-PERIOD-ORDER", "<EndDate>",
             "/ConsultCarmedInterventionRequest/SelectionCriteria/BySsin/Period/EndDate");
}

TEST_F(MediPrimaTest, TheDateWindowEdgesAreInclusive) {
  // 730 days before 2025-01-02 is 2023-01-03; 31 days after is 2025-02-02.
  EXPECT_TRUE(Decode(ConsultRequest("      <ReferenceDate>2023-01-03</ReferenceDate>\n")).ok())
      << Dump(report_);
  EXPECT_TRUE(Decode(ConsultRequest("      <ReferenceDate>2025-02-02</ReferenceDate>\n")).ok())
      << Dump(report_);
  EXPECT_FALSE(Decode(ConsultRequest("      <ReferenceDate>2023-01-02</ReferenceDate>\n")).ok());
}

TEST_F(MediPrimaTest, AttestationNumberCoverAndIssueInstantRules) {
  ExpectRule(Replace(DeleteRequest(), "UMA-2025-000001", "UMA 2025"),
             "PSL-MEDIPRIMA-ATTESTATION-NUMBER", "<AttestationNumber>",
             "/DeleteUrgentMedicalAidAttestationRequest/AttestationNumber");
  ExpectRule(Replace(SearchByNumberRequest(), "UMA-2025-000001", ""),
             "PSL-MEDIPRIMA-ATTESTATION-NUMBER", "<AttestationNumber>",
             "/SearchUrgentMedicalAidAttestationRequest/Criteria/AttestationNumber");
  ExpectRule(Replace(SendRequest(), ">DOCTOR<", "> <"), "PSL-MEDIPRIMA-COVER", "<MedicalCover>",
             "/SendUrgentMedicalAidAttestationRequest/MedicalCover");
  ExpectRule(Replace(SendRequest(), "2025-01-02T09:30:00+01:00", "2025-01-04T09:30:00Z"),
             "PSL-MEDIPRIMA-ISSUE-INSTANT", "<uma:Send",
             "/SendUrgentMedicalAidAttestationRequest/@IssueInstant");
}

TEST_F(MediPrimaTest, EveryProblemOfARequestIsReportedAtOnce) {
  std::string xml = Replace(SendRequest(), kBis, "85493000164");
  xml = Replace(xml, kPhysician, "11478762004");
  xml = Replace(xml, "2025-01-31", "2025-01-01");
  EXPECT_FALSE(Decode(xml).ok());
  std::set<std::string> codes;
  for (const Problem& p : report_.problems) {
    codes.insert(p.code);
  }
  EXPECT_EQ(codes, (std::set<std::string>{"PSL-MEDIPRIMA-SSIN-CHECK", "PSL-MEDIPRIMA-AUTHOR-NIHII",
                                          "PSL-MEDIPRIMA-PERIOD-ORDER"}))
      << Dump(report_);
}

TEST_F(MediPrimaTest, SchemaErrorsHaveLineAndPath) {
  const std::string xml = Replace(SendRequest(), "<MedicalCover>DOCTOR</MedicalCover>",
                                  "<MedicalCoverX>DOCTOR</MedicalCoverX>");
  EXPECT_FALSE(Decode(xml).ok());
  const Problem& p = OnlyError();
  EXPECT_EQ(p.code, "PSL-SCHEMA");
  EXPECT_EQ(p.line, LineOf(xml, "<MedicalCoverX>"));
  EXPECT_EQ(p.path, "/SendUrgentMedicalAidAttestationRequest/MedicalCoverX");
  // An unparsable date is the schema's finding only.
  EXPECT_FALSE(Decode(Replace(SendRequest(), "2025-01-31", "2025-02-30")).ok());
  EXPECT_EQ(OnlyError().code, "PSL-SCHEMA") << Dump(report_);
  // A qualified look-alike of an unqualified element.
  EXPECT_FALSE(Decode(Replace(SendRequest(), "<MedicalCover>DOCTOR</MedicalCover>",
                              "<uma:MedicalCover>DOCTOR</uma:MedicalCover>"))
                   .ok());
  EXPECT_EQ(OnlyError().code, "PSL-SCHEMA") << Dump(report_);
}

TEST_F(MediPrimaTest, OtherRootsAndBrokenBytesAreRefused) {
  EXPECT_FALSE(Decode(mhm_test::SampleEnvelope()).ok());
  EXPECT_EQ(OnlyError().code, "PSL-FLOW-UNKNOWN");
  EXPECT_EQ(report_.kind, "");
  StatusOr<MediPrimaRequest> broken = Decode("<a");
  EXPECT_EQ(broken.status().code(), StatusCode::kMalformed);
  EXPECT_EQ(OnlyError().code, "PSL-XML-SYNTAX");
  EXPECT_FALSE(
      Decode("<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]>" + SendRequest()).ok());
  EXPECT_EQ(OnlyError().code, "PSL-XML-DOCTYPE");
}

TEST_F(MediPrimaTest, TheValidatorRecognisesMediPrimaRoots) {
  MessageValidator validator(TestSchemas(), clock_);
  for (const std::string& xml :
       {SendRequest(), SearchByNumberRequest(), DeleteRequest(), ConsultRequest()}) {
    const ValidationReport report = validator.Validate(xml);
    EXPECT_TRUE(report.valid()) << Dump(report);
    EXPECT_EQ(report.kind, "amu");
    EXPECT_EQ(report.flow, "mediprima");
  }
  const ValidationReport bad = validator.Validate(Replace(SendRequest(), kBis, "85493000164"));
  ASSERT_FALSE(bad.valid());
  EXPECT_EQ(bad.problems[0].code, "PSL-MEDIPRIMA-SSIN-CHECK");
}

TEST(MediPrimaNamesTest, OperationsNamesAndSoapActionsRoundTrip) {
  for (MediPrimaOperation op :
       {MediPrimaOperation::kSendAttestation, MediPrimaOperation::kSearchAttestation,
        MediPrimaOperation::kDeleteAttestation, MediPrimaOperation::kConsult}) {
    EXPECT_EQ(MediPrimaOperationNamed(MediPrimaOperationName(op)), op);
    EXPECT_EQ(MediPrimaOperationForSoapAction(MediPrimaSoapAction(op)), op);
    EXPECT_EQ(MediPrimaOperationForSoapAction("\"" + std::string(MediPrimaSoapAction(op)) + "\""),
              op);
  }
  EXPECT_EQ(MediPrimaOperationForSoapAction("urn:be:fgov:ehealth:mediprima:uma:protocol:v1:send"),
            std::nullopt);
  EXPECT_EQ(MediPrimaSoapAction(MediPrimaOperation::kDeleteAttestation),
            "urn:be:fgov:ehealth:mediprima:uma:protocol:v1:deleteMedicalEmergencyAttestion");
  EXPECT_EQ(MediPrimaSoapAction(MediPrimaOperation::kSearchAttestation),
            "urn:be:fgov:ehealth:mediprima:uma:protocol:v1:searchMedicalEmergencyAttestion");
}

TEST(MediPrimaNamesTest, RuleCodesAreUniqueAndTableCodesExist) {
  const std::string table = mhm_test::ReadShared("errors/ConsultTarificationMediprimaErrors.json");
  ASSERT_FALSE(table.empty());
  std::set<std::string_view> codes;
  std::size_t i = 0;
  for (const MediPrimaRuleSpec& spec : MediPrimaRuleTable()) {
    EXPECT_EQ(static_cast<std::size_t>(spec.rule), i++);
    EXPECT_TRUE(codes.insert(spec.code).second) << spec.code;
    EXPECT_TRUE(spec.code.starts_with("PSL-MEDIPRIMA-")) << spec.code;
    if (!spec.table_code.empty()) {
      EXPECT_NE(table.find("\"code\":\"" + std::string(spec.table_code) + "\""), std::string::npos)
          << spec.table_code;
    }
  }
}

TEST(MediPrimaNamesTest, AttestationNumberFormat) {
  EXPECT_TRUE(IsMediPrimaAttestationNumber("UMA-2025-000001"));
  EXPECT_TRUE(IsMediPrimaAttestationNumber("a.b_c/d"));
  EXPECT_TRUE(IsMediPrimaAttestationNumber(std::string(64, '7')));
  EXPECT_FALSE(IsMediPrimaAttestationNumber(std::string(65, '7')));
  EXPECT_FALSE(IsMediPrimaAttestationNumber(""));
  EXPECT_FALSE(IsMediPrimaAttestationNumber("UMA 1"));
  EXPECT_FALSE(IsMediPrimaAttestationNumber("UMA\xc3\xa9"));
}

// ---- insurer side and back

class MediPrimaResponseTest : public MediPrimaTest {
 protected:
  MediPrimaRequest Request(const std::string& xml) {
    StatusOr<MediPrimaRequest> request = Decode(xml);
    EXPECT_TRUE(request.ok()) << Dump(report_);
    return request.ok() ? std::move(request).value() : MediPrimaRequest();
  }

  // Builds, checks the answer against its XSD, parses it back.
  MediPrimaAnswer RoundTrip(const MediPrimaRequest& request, const MediPrimaResponseSpec& spec) {
    StatusOr<std::string> built = BuildMediPrimaResponse(request, spec, clock_);
    EXPECT_TRUE(built.ok()) << built.status().ToString();
    if (!built.ok()) {
      return {};
    }
    Problem problem;
    StatusOr<XmlDocPtr> doc = ParseUntrustedXml(*built, XmlLimits{}, &problem);
    EXPECT_TRUE(doc.ok());
    std::vector<Problem> problems;
    EXPECT_TRUE(TestSchemas().ValidateEnvelope(request.service == MediPrimaService::kUma
                                                   ? EnvelopeSchema::kMediPrimaUma
                                                   : EnvelopeSchema::kMediPrimaConsult,
                                               doc->get(), "envelope", &problems))
        << *built << "\n"
        << (problems.empty() ? "" : problems[0].message);
    EXPECT_NE(built->find("InResponseTo=\"" + request.request_id + "\""), std::string::npos);
    StatusOr<MediPrimaAnswer> answer = ParseMediPrimaResponse(*built, TestSchemas());
    EXPECT_TRUE(answer.ok()) << answer.status().ToString();
    if (!answer.ok()) {
      return {};
    }
    EXPECT_EQ(answer->operation, request.operation);
    EXPECT_EQ(answer->in_response_to, request.request_id);
    return std::move(answer).value();
  }

  static MediPrimaResponseSpec Refusal() {
    MediPrimaResponseSpec spec;
    spec.status = std::string(kEhealthStatusRequester);
    spec.sub_status = "urn:be:fgov:ehealth:2.0:status:InvalidInput";
    spec.status_message = "refused";
    spec.errors = {{"MSG-00010", "", ""}, {"MSG-00020", "fr", "nl"}};
    return spec;
  }
};

TEST_F(MediPrimaResponseTest, AnAcceptedSendCarriesTheAttestationNumber) {
  const MediPrimaRequest request = Request(SendRequest());
  MediPrimaResponseSpec spec;
  spec.attestation_number = "UMA-2025-000042";
  const MediPrimaAnswer answer = RoundTrip(request, spec);
  EXPECT_EQ(answer.decision, "accepted");
  EXPECT_EQ(answer.insurer_reference, "UMA-2025-000042");
  EXPECT_TRUE(answer.codes.empty());
}

TEST_F(MediPrimaResponseTest, ARefusalCarriesItsStatusAndDetailCodes) {
  for (const std::string& xml :
       {SendRequest(), SearchByPeriodRequest(), DeleteRequest(), ConsultRequest()}) {
    const MediPrimaAnswer answer = RoundTrip(Request(xml), Refusal());
    EXPECT_EQ(answer.decision, "refused");
    EXPECT_EQ(answer.insurer_reference, "");
    EXPECT_EQ(answer.codes, (std::vector<std::string>{"urn:be:fgov:ehealth:2.0:status:Requester",
                                                      "urn:be:fgov:ehealth:2.0:status:InvalidInput",
                                                      "MSG-00010", "MSG-00020"}));
  }
}

TEST_F(MediPrimaResponseTest, SearchFindsOrNot) {
  const MediPrimaRequest request = Request(SearchByPeriodRequest());
  MediPrimaResponseSpec spec;
  spec.attestations = {{"UMA-1", "2024-12-10", "2024-12-31", "", kPhysician},
                       {"UMA-2", "2025-01-02", "", "DOCTOR", kOtherPhysician}};
  MediPrimaAnswer answer = RoundTrip(request, spec);
  EXPECT_EQ(answer.decision, "found");
  EXPECT_EQ(answer.insurer_reference, "UMA-1");
  EXPECT_EQ(answer.attestation_numbers, (std::vector<std::string>{"UMA-1", "UMA-2"}));
  answer = RoundTrip(request, MediPrimaResponseSpec());
  EXPECT_EQ(answer.decision, "not-found");
}

TEST_F(MediPrimaResponseTest, DeleteEchoesTheNumber) {
  const MediPrimaAnswer answer = RoundTrip(Request(DeleteRequest()), MediPrimaResponseSpec());
  EXPECT_EQ(answer.decision, "accepted");
  EXPECT_EQ(answer.insurer_reference, "UMA-2025-000001");
}

TEST_F(MediPrimaResponseTest, ConsultReturnsMedicalCardsWithoutBeneficiaryData) {
  const MediPrimaRequest request = Request(ConsultRequest());
  MediPrimaResponseSpec spec;
  MediPrimaCarmedSpec card;
  card.carmed_number = "CARMED-0001";
  card.version = 2;
  card.start_date = "2025-01-01";
  card.end_date = "2025-06-30";
  card.cpas_cbe = "0403019261";
  card.agreement_number = "AGR-77";
  card.attestation_number = "UMA-2025-000042";
  spec.carmeds = {card};
  MediPrimaAnswer answer = RoundTrip(request, spec);
  EXPECT_EQ(answer.decision, "found");
  EXPECT_EQ(answer.insurer_reference, "AGR-77");
  ASSERT_EQ(answer.carmeds.size(), 1u);
  EXPECT_EQ(answer.carmeds[0].carmed_number, "CARMED-0001");
  EXPECT_EQ(answer.carmeds[0].version, "2");
  EXPECT_EQ(answer.carmeds[0].end_date, "2025-06-30");
  EXPECT_EQ(answer.carmeds[0].attestation_number, "UMA-2025-000042");
  card.agreement_number.clear();
  card.doctor_cover = false;
  spec.carmeds = {card};
  answer = RoundTrip(request, spec);
  EXPECT_EQ(answer.insurer_reference, "CARMED-0001");
  answer = RoundTrip(request, MediPrimaResponseSpec());
  EXPECT_EQ(answer.decision, "not-found");
}

TEST_F(MediPrimaResponseTest, InconsistentSpecsAreRefused) {
  const MediPrimaRequest send = Request(SendRequest());
  EXPECT_EQ(BuildMediPrimaResponse(send, MediPrimaResponseSpec(), clock_).status().code(),
            StatusCode::kInvalid);  // accepted without a number
  MediPrimaResponseSpec no_errors;
  no_errors.status = std::string(kEhealthStatusResponder);
  EXPECT_EQ(BuildMediPrimaResponse(send, no_errors, clock_).status().code(), StatusCode::kInvalid);
  MediPrimaResponseSpec bad_card;
  bad_card.carmeds.push_back(MediPrimaCarmedSpec());
  EXPECT_EQ(BuildMediPrimaResponse(Request(ConsultRequest()), bad_card, clock_).status().code(),
            StatusCode::kInvalid);
  EXPECT_EQ(
      BuildMediPrimaResponse(MediPrimaRequest(), MediPrimaResponseSpec(), clock_).status().code(),
      StatusCode::kInvalid);
}

TEST_F(MediPrimaResponseTest, TheParserReadsSoapEnvelopesAndRefusesFaultsAndStrangers) {
  const MediPrimaRequest request = Request(DeleteRequest());
  StatusOr<std::string> body = BuildMediPrimaResponse(request, MediPrimaResponseSpec(), clock_);
  ASSERT_TRUE(body.ok());
  StatusOr<std::string> envelope = BuildSoapResponse(*body);
  ASSERT_TRUE(envelope.ok());
  StatusOr<MediPrimaAnswer> answer = ParseMediPrimaResponse(*envelope, TestSchemas());
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->decision, "accepted");

  SoapFault fault;
  fault.code = "Server";
  fault.message = "down";
  StatusOr<std::string> faulted = BuildSoapFault(fault);
  ASSERT_TRUE(faulted.ok());
  EXPECT_EQ(ParseMediPrimaResponse(*faulted, TestSchemas()).status().code(), StatusCode::kInvalid);
  // A request is not an answer; an answer that breaks its schema is refused.
  EXPECT_EQ(ParseMediPrimaResponse(DeleteRequest(), TestSchemas()).status().code(),
            StatusCode::kInvalid);
  const std::string broken = Replace(*body, "core:Status>", "core:Statu>");
  EXPECT_FALSE(ParseMediPrimaResponse(broken, TestSchemas()).ok());
  const std::string no_status =
      Replace(*body, "Id=\"", "Foo=\"1\" Id=\"");  // an attribute the schema does not allow
  EXPECT_EQ(ParseMediPrimaResponse(no_status, TestSchemas()).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(ParseMediPrimaResponse("<a", TestSchemas()).status().code(), StatusCode::kMalformed);
}

TEST_F(MediPrimaResponseTest, AnAcceptedSendCopiesTheRequestButNeverNamesThePatientInErrors) {
  const MediPrimaRequest request = Request(SendRequest());
  MediPrimaResponseSpec spec;
  spec.attestation_number = "UMA-9";
  StatusOr<std::string> built = BuildMediPrimaResponse(request, spec, clock_);
  ASSERT_TRUE(built.ok());
  // The attestation echoes the request (the insurer's answer is about this beneficiary)...
  EXPECT_NE(built->find("<BeneficiarySsin>85493000163</BeneficiarySsin>"), std::string::npos);
  EXPECT_NE(built->find("<Attestion>"), std::string::npos);  // sic
  // ...but what the gateway keeps of it does not.
  StatusOr<MediPrimaAnswer> answer = ParseMediPrimaResponse(*built, TestSchemas());
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->insurer_reference.find(kBis), std::string::npos);
}

}  // namespace
}  // namespace psl::codecs
