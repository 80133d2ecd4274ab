#include "codecs/mhm_rules.h"

#include <gtest/gtest.h>

#include <functional>
#include <set>
#include <utility>

#include "base/testing/fake_clock.h"
#include "codecs/mhm_codec.h"
#include "codecs/testing/mhm_test_support.h"

#include <nlohmann/json.hpp>

namespace psl::codecs {
namespace {

using mhm_test::Dump;
using mhm_test::LineOf;
using mhm_test::Replace;
using mhm_test::ReplaceAll;
using mhm_test::SampleDetail;
using mhm_test::SampleEnvelope;
using mhm_test::WithDetail;

constexpr std::string_view kTx = "/SendTransactionRequest/kmehrmessage/folder/transaction";
constexpr std::string_view kPatient = "/SendTransactionRequest/kmehrmessage/folder/patient";
constexpr std::string_view kHeader = "/SendTransactionRequest/kmehrmessage/header";

std::string Cat(std::string_view a, std::string_view b) {
  return std::string(a) + std::string(b);
}

std::string Item(int id, std::string_view type, std::string_view content) {
  return "        <ns3:item>\n          <ns3:id S=\"ID-KMEHR\" SV=\"1.0\">" + std::to_string(id) +
         "</ns3:id>\n          <ns3:cd S=\"CD-ITEM-MYCARENET\" SV=\"1.6\">" + std::string(type) +
         "</ns3:cd>\n          <ns3:content>" + std::string(content) +
         "</ns3:content>\n        </ns3:item>\n";
}

const std::string kTypeContent =
    R"(<ns3:cd S="LOCAL" SV="1.1" SL="MAA-TYPE">packagemedicalhouse</ns3:cd>)";
const std::string kReferenceContent =
    R"(<ns3:id S="LOCAL" SV="1.0" SL="IOreferencesystemname">IO-REF-2025-0001</ns3:id>)";
const std::string kEndDateContent = "<ns3:date>2025-01-31</ns3:date>";
const std::string kJustificationContent =
    R"(<ns3:cd S="LOCAL" SV="1.0" SL="MAA-CLOSUREDECISION">patient</ns3:cd>)"
    R"(<ns3:cd S="LOCAL" SV="1.0" SL="MAA-CLOSUREJUSTIFICATION">moved</ns3:cd>)";

// Replaces every item of the sample transaction with `items`.
std::string WithItems(const std::string& detail, const std::string& items) {
  const std::size_t begin = detail.find("        <ns3:item>");
  const std::string last = "</ns3:item>\n";
  const std::size_t end = detail.rfind(last) + last.size();
  std::string out = detail;
  out.replace(begin, end - begin, items);
  return out;
}

std::string SubscriptionDetail() {
  return SampleDetail();
}

std::string CancellationDetail() {
  std::string d = Replace(SampleDetail(), ">maa</ns3:cd>", ">maacancellation</ns3:cd>");
  return WithItems(
      d, Item(1, "agreementtype", kTypeContent) + Item(2, "decisionreference", kReferenceContent));
}

std::string ClosureDetail() {
  std::string d = Replace(SampleDetail(), ">maa</ns3:cd>", ">maaclosure</ns3:cd>");
  return WithItems(d, Item(1, "agreementtype", kTypeContent) +
                          Item(2, "decisionreference", kReferenceContent) +
                          Item(3, "agreementenddate", kEndDateContent) +
                          Item(4, "closurejustification", kJustificationContent));
}

std::string BaseDetail(MhmOperation op) {
  switch (op) {
    case MhmOperation::kSubscription:
      return SubscriptionDetail();
    case MhmOperation::kCancellation:
      return CancellationDetail();
    case MhmOperation::kClosure:
      return ClosureDetail();
  }
  return {};
}

std::string EnvelopeFor(MhmOperation op, const std::string& detail,
                        const std::function<std::string(std::string)>& edit_envelope = {}) {
  std::string env = SampleEnvelope();
  if (op != MhmOperation::kSubscription) {
    env = ReplaceAll(env, "SendSubscriptionRequest", std::string(MhmOperationName(op)) + "Request");
  }
  if (edit_envelope) {
    env = edit_envelope(env);
  }
  return WithDetail(env, detail);
}

class MhmRulesTest : public ::testing::Test {
 protected:
  MhmRulesTest() : codec_(mhm_test::TestSchemas(), clock_) { clock_.SetUtc(2025, 1, 2, 9, 0); }

  ValidationReport Check(MhmOperation op, const std::string& detail,
                         const std::function<std::string(std::string)>& edit_envelope = {}) {
    ValidationReport report;
    (void)codec_.Decode(EnvelopeFor(op, detail, edit_envelope), &report);
    return report;
  }

  testing::FakeClock clock_;
  MhmCodec codec_;
};

TEST_F(MhmRulesTest, BaseMessagesOfEveryOperationAreValid) {
  for (MhmOperation op :
       {MhmOperation::kSubscription, MhmOperation::kCancellation, MhmOperation::kClosure}) {
    const ValidationReport report = Check(op, BaseDetail(op));
    EXPECT_TRUE(report.problems.empty()) << MhmOperationName(op) << "\n" << Dump(report);
    EXPECT_EQ(report.operation, MhmOperationName(op));
  }
}

// One rule variant: an edit of the operation's base message and the problem it must produce.
struct RuleCase {
  const char* name;
  MhmOperation op;
  std::function<std::string(std::string)> edit_detail;
  std::string code;
  std::string path;
  // Text whose line in the edited payload (or envelope, for envelope rules) the problem points at.
  std::string line_of;
  std::function<std::string(std::string)> edit_envelope = {};
  std::string document = "detail";
  Severity severity = Severity::kError;
};

// gtest prints the parameter of a failing case: its name, never the bytes.
void PrintTo(const RuleCase& c, std::ostream* os) {
  *os << c.name;
}

std::function<std::string(std::string)> Swap(const std::string& from, const std::string& to) {
  return [from, to](std::string s) {
    return Replace(std::move(s), from, to);
  };
}

std::function<std::string(std::string)> SwapAll(const std::string& from, const std::string& to) {
  return [from, to](std::string s) {
    return ReplaceAll(std::move(s), from, to);
  };
}

std::function<std::string(std::string)> SetItems(const std::string& items) {
  return [items](std::string s) {
    return WithItems(s, items);
  };
}

std::function<std::string(std::string)> Then(const std::function<std::string(std::string)>& a,
                                             const std::function<std::string(std::string)>& b) {
  return [a, b](std::string s) {
    return b(a(std::move(s)));
  };
}

const std::string kRequestAuthorId = R"(<ns3:id S="ID-HCPARTY" SV="1.0">81234530000</ns3:id>)";
const std::string kSenderBlock =
    "<ns3:sender>\n        <ns3:hcparty>\n          <ns3:id S=\"ID-HCPARTY\" "
    "SV=\"1.0\">81234530000</ns3:id>";
const std::string kTxAuthorBlock =
    "<ns3:author>\n          <ns3:hcparty>\n            <ns3:id S=\"ID-HCPARTY\" "
    "SV=\"1.0\">81234530000</ns3:id>";
const std::string kSubscriptionItems[] = {
    Item(1, "agreementtype", kTypeContent),
    Item(2, "agreementstartdate", "<ns3:date>2025-02-01</ns3:date>"),
    Item(3, "istrialperiod", "<ns3:boolean>false</ns3:boolean>"),
    Item(4, "documentidentity", R"(<ns3:cd S="LOCAL" SV="1.0" SL="SIGNATURE-TYPE">eid</ns3:cd>)"),
};

std::string SubscriptionItemsWith(int replace_index, const std::string& item) {
  std::string out;
  for (int i = 0; i < 4; ++i) {
    out += i == replace_index ? item : kSubscriptionItems[i];
  }
  return out;
}

constexpr MhmOperation kS = MhmOperation::kSubscription;
constexpr MhmOperation kC = MhmOperation::kCancellation;
constexpr MhmOperation kX = MhmOperation::kClosure;

std::vector<RuleCase> Cases() {
  const std::string item_prefix = Cat(kTx, "/item");
  return {
      {"RequestIdWithoutTimestamp", kS, Swap(">81234530000.20250102093000<", ">81234530000.2025<"),
       "111", "/SendTransactionRequest/Request/id", "<ns2:id"},
      {"RequestIdOfAnotherNihii", kS,
       Swap(">81234530000.20250102093000<", ">81234629000.20250102093000<"), "155",
       "/SendTransactionRequest/Request/id", "<ns2:id"},
      {"RequestAuthorWithoutNihii", kS, Swap(kRequestAuthorId, ""), "100",
       "/SendTransactionRequest/Request/author", "<ns2:author>"},
      {"RequestAuthorBadCheckDigits", kS,
       Swap(kRequestAuthorId, R"(<ns3:id S="ID-HCPARTY" SV="1.0">81234531000</ns3:id>)"), "111",
       "/SendTransactionRequest/Request/author", "81234531000"},
      {"RequestAuthorNotTheEnvelopeCareProvider", kS, SwapAll(">81234530000<", ">81234629000<"),
       "155", "/SendTransactionRequest/Request/author", "<ns2:author>"},
      {"RequestDateInTheFuture", kS, Swap("<ns2:date>2025-01-02", "<ns2:date>2025-01-03"), "146",
       "/SendTransactionRequest/Request/date", "<ns2:date>"},
      {"RequestDateInThePast", kS, Swap("<ns2:date>2025-01-02", "<ns2:date>2024-12-31"), "191",
       "/SendTransactionRequest/Request/date", "<ns2:date>"},
      {"HeaderStandardUnknown", kS, Swap(">20181201<", ">20991231<"), "130",
       Cat(kHeader, "/standard"), "<ns3:standard>"},
      {"HeaderIdNotNumeric", kS,
       Swap(R"(<ns3:id S="ID-KMEHR" SV="1.0">1</ns3:id>
      <ns3:date>)",
            R"(<ns3:id S="ID-KMEHR" SV="1.0">one</ns3:id>
      <ns3:date>)"),
       "111", Cat(kHeader, "/id"), ">one<"},
      {"HeaderDateNotTheRequestDate", kS,
       Swap("<ns3:date>2025-01-02</ns3:date>\n      <ns3:time>",
            "<ns3:date>2025-01-01</ns3:date>\n      <ns3:time>"),
       "156", Cat(kHeader, "/date"), "2025-01-01"},
      {"HeaderSenderWithoutNihii", kS, Swap(kSenderBlock, "<ns3:sender>\n        <ns3:hcparty>\n"),
       "100", Cat(kHeader, "/sender"), "<ns3:sender>"},
      {"HeaderSenderBadCheckDigits", kS,
       Swap(kSenderBlock,
            "<ns3:sender>\n        <ns3:hcparty>\n          <ns3:id S=\"ID-HCPARTY\" "
            "SV=\"1.0\">81234531000</ns3:id>"),
       "111", Cat(kHeader, "/sender"), "81234531000"},
      {"HeaderSenderNotTheRequestAuthor", kS,
       Swap(kSenderBlock,
            "<ns3:sender>\n        <ns3:hcparty>\n          <ns3:id S=\"ID-HCPARTY\" "
            "SV=\"1.0\">81234629000</ns3:id>"),
       "156", Cat(kHeader, "/sender"), "<ns3:sender>"},
      {"RecipientWithoutName", kS, Swap("<ns3:name>mycarenet</ns3:name>", ""), "100",
       Cat(kHeader, "/recipient"), "<ns3:recipient>"},
      {"RecipientNotMycarenet", kS, Swap(">mycarenet<", ">insurer<"), "111",
       Cat(kHeader, "/recipient"), ">insurer<"},
      {"TwoFolders", kS,
       [](std::string d) {
         const std::size_t b = d.find("    <ns3:folder>");
         const std::size_t e = d.find("</ns3:folder>\n") + std::string("</ns3:folder>\n").size();
         return d.insert(e, d.substr(b, e - b));
       },
       "256", "/SendTransactionRequest/kmehrmessage/folder", "__second_folder__"},
      {"FolderIdNotAPositiveInteger", kS,
       Swap(R"(<ns3:folder>
      <ns3:id S="ID-KMEHR" SV="1.0">1</ns3:id>)",
            R"(<ns3:folder>
      <ns3:id S="ID-KMEHR" SV="1.0">0</ns3:id>)"),
       "111", "/SendTransactionRequest/kmehrmessage/folder/id", "SV=\"1.0\">0</ns3:id>"},
      {"PatientNissBadCheckDigits", kS, SwapAll("90010100123", "90010100124"), "111",
       Cat(kPatient, "/id"), "ID-PATIENT"},
      {"PatientWithoutFirstname", kS, Swap("<ns3:firstname>Jean</ns3:firstname>", ""), "111",
       Cat(kPatient, "/firstname"), "<ns3:patient>"},
      {"PatientWithoutFamilyname", kS, Swap("<ns3:familyname>Exemple</ns3:familyname>", ""), "120",
       Cat(kPatient, "/familyname"), "<ns3:patient>"},
      {"PatientWithoutSex", kS,
       Swap(R"(<ns3:sex><ns3:cd S="CD-SEX" SV="1.1">male</ns3:cd></ns3:sex>)", ""), "120",
       Cat(kPatient, "/sex"), "<ns3:patient>"},
      {"PatientWithoutNissNorMembership", kS,
       Swap(R"(<ns3:id S="ID-PATIENT" SV="1.0">90010100123</ns3:id>)",
            R"(<ns3:id S="LOCAL" SL="x" SV="1.0">7</ns3:id>)"),
       "100", Cat(kPatient, "/insurancymembership"), "<ns3:patient>",
       Swap("<mc:Ssin>90010100123</mc:Ssin>",
            "<mc:RegNrWithMut>12345678901</mc:RegNrWithMut><mc:Mutuality>306</mc:Mutuality>")},
      {"MutualityGivenWithNiss", kS,
       Swap(
           R"(<ns3:sex><ns3:cd S="CD-SEX" SV="1.1">male</ns3:cd></ns3:sex>)",
           R"(<ns3:sex><ns3:cd S="CD-SEX" SV="1.1">male</ns3:cd></ns3:sex><ns3:insurancymembership><ns3:id S="ID-INSURANCE" SV="1.0">306</ns3:id><ns3:membership>12345678901</ns3:membership></ns3:insurancymembership>)"),
       "197", Cat(kPatient, "/insurancymembership/id"), "<ns3:insurancymembership>"},
      {"MembershipGivenWithNiss", kS,
       Swap(
           R"(<ns3:sex><ns3:cd S="CD-SEX" SV="1.1">male</ns3:cd></ns3:sex>)",
           R"(<ns3:sex><ns3:cd S="CD-SEX" SV="1.1">male</ns3:cd></ns3:sex><ns3:insurancymembership><ns3:id S="ID-INSURANCE" SV="1.0">306</ns3:id><ns3:membership>12345678901</ns3:membership></ns3:insurancymembership>)"),
       "198", Cat(kPatient, "/insurancymembership/membership"), "<ns3:insurancymembership>"},
      {"MutualityNotThreeDigits", kS,
       Then(
           Swap(R"(<ns3:id S="ID-PATIENT" SV="1.0">90010100123</ns3:id>)",
                R"(<ns3:id S="LOCAL" SL="x" SV="1.0">7</ns3:id>)"),
           Swap(
               R"(<ns3:sex><ns3:cd S="CD-SEX" SV="1.1">male</ns3:cd></ns3:sex>)",
               R"(<ns3:sex><ns3:cd S="CD-SEX" SV="1.1">male</ns3:cd></ns3:sex><ns3:insurancymembership><ns3:id S="ID-INSURANCE" SV="1.0">30</ns3:id><ns3:membership>12345678901</ns3:membership></ns3:insurancymembership>)")),
       "120", Cat(kPatient, "/insurancymembership/id"), "<ns3:insurancymembership>",
       Swap("<mc:Ssin>90010100123</mc:Ssin>",
            "<mc:RegNrWithMut>12345678901</mc:RegNrWithMut><mc:Mutuality>306</mc:Mutuality>")},
      {"TransactionIdNotAPositiveInteger", kS,
       Swap(R"(<ns3:transaction>
        <ns3:id S="ID-KMEHR" SV="1.0">1</ns3:id>)",
            R"(<ns3:transaction>
        <ns3:id S="ID-KMEHR" SV="1.0">x1</ns3:id>)"),
       "111", Cat(kTx, "/id"), ">x1<"},
      {"TransactionCodeOfAnotherOperation", kS, Swap(">maa</ns3:cd>", ">maaclosure</ns3:cd>"),
       "130", Cat(kTx, "/cd"), ">maaclosure<"},
      {"TransactionCodeCancellationInAClosure", kX,
       Swap(">maaclosure</ns3:cd>", ">maacancellation</ns3:cd>"), "130", Cat(kTx, "/cd"),
       ">maacancellation<"},
      {"TransactionDateInTheFuture", kS,
       Swap("<ns3:date>2025-01-02</ns3:date>\n        <ns3:time>",
            "<ns3:date>2025-01-05</ns3:date>\n        <ns3:time>"),
       "146", Cat(kTx, "/date"), "2025-01-05"},
      {"TransactionDateInThePast", kS,
       Swap("<ns3:date>2025-01-02</ns3:date>\n        <ns3:time>",
            "<ns3:date>2024-12-05</ns3:date>\n        <ns3:time>"),
       "191", Cat(kTx, "/date"), "2024-12-05"},
      {"TransactionAuthorWithoutNihii", kS,
       Swap(kTxAuthorBlock, "<ns3:author>\n          <ns3:hcparty>\n"), "100", Cat(kTx, "/author"),
       "<ns3:author>"},
      {"TransactionAuthorBadCheckDigits", kS,
       Swap(kTxAuthorBlock,
            "<ns3:author>\n          <ns3:hcparty>\n            <ns3:id S=\"ID-HCPARTY\" "
            "SV=\"1.0\">81234532000</ns3:id>"),
       "111", Cat(kTx, "/author"), "81234532000"},
      {"TransactionAuthorNotAMedicalHouse", kS,
       Swap(kTxAuthorBlock,
            "<ns3:author>\n          <ns3:hcparty>\n            <ns3:id S=\"ID-HCPARTY\" "
            "SV=\"1.0\">11478761004</ns3:id>"),
       "140", Cat(kTx, "/author"),
       "<ns3:author>\n          <ns3:hcparty>\n            <ns3:id S=\"ID-HCPARTY\" "
       "SV=\"1.0\">11478761004"},
      {"TransactionAuthorNotTheSender", kS,
       Swap(kTxAuthorBlock,
            "<ns3:author>\n          <ns3:hcparty>\n            <ns3:id S=\"ID-HCPARTY\" "
            "SV=\"1.0\">81234629000</ns3:id>"),
       "156", Cat(kTx, "/author"),
       "<ns3:author>\n          <ns3:hcparty>\n            <ns3:id S=\"ID-HCPARTY\" "
       "SV=\"1.0\">81234629000"},
      {"AgreementTypeMissing", kS, SetItems(SubscriptionItemsWith(0, "")), "100",
       Cat(item_prefix, "[agreementtype]"), "<ns3:transaction>"},
      {"AgreementTypeWithoutContent", kS,
       SetItems(SubscriptionItemsWith(0, Item(1, "agreementtype", ""))), "100",
       Cat(item_prefix, "[agreementtype]"), ">agreementtype<"},
      {"AgreementTypeNotPackage", kS, Swap(">packagemedicalhouse<", ">packagekine<"), "130",
       Cat(item_prefix, "[agreementtype]"), ">packagekine<"},
      {"StartDateMissingInASubscription", kS, SetItems(SubscriptionItemsWith(1, "")), "100",
       Cat(item_prefix, "[agreementstartdate]"), "<ns3:transaction>"},
      {"StartDateWithoutContent", kS,
       SetItems(SubscriptionItemsWith(1, Item(2, "agreementstartdate", ""))), "100",
       Cat(item_prefix, "[agreementstartdate]"), ">agreementstartdate<"},
      {"StartDateInACancellation", kC,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(3, "agreementstartdate", "<ns3:date>2025-02-01</ns3:date>")),
       "246", Cat(item_prefix, "[agreementstartdate]"), ">agreementstartdate<"},
      {"StartDateInAClosure", kX,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(3, "agreementenddate", kEndDateContent) +
                Item(4, "closurejustification", kJustificationContent) +
                Item(5, "agreementstartdate", "<ns3:date>2025-02-01</ns3:date>")),
       "246", Cat(item_prefix, "[agreementstartdate]"), ">agreementstartdate<"},
      {"RecoveryStartDateDuringATrialPeriod", kS,
       Then(Swap("2025-02-01", "1900-01-01"), Swap("<ns3:boolean>false", "<ns3:boolean>true")),
       "247", Cat(item_prefix, "[agreementstartdate]"), "1900-01-01"},
      {"EndDateMissingInAClosure", kX,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(4, "closurejustification", kJustificationContent)),
       "100", Cat(item_prefix, "[agreementenddate]"), "<ns3:transaction>"},
      {"EndDateWithoutContent", kX, Swap(kEndDateContent, ""), "100",
       Cat(item_prefix, "[agreementenddate]"), ">agreementenddate<"},
      {"EndDateInASubscription", kS,
       SetItems(SubscriptionItemsWith(
           3, kSubscriptionItems[3] + Item(5, "agreementenddate", kEndDateContent))),
       "248", Cat(item_prefix, "[agreementenddate]"), ">agreementenddate<"},
      {"EndDateInACancellation", kC,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(3, "agreementenddate", kEndDateContent)),
       "248", Cat(item_prefix, "[agreementenddate]"), ">agreementenddate<"},
      {"EndDateInThePast", kX, Swap(kEndDateContent, "<ns3:date>2025-01-01</ns3:date>"), "249",
       Cat(item_prefix, "[agreementenddate]/content/date"), "2025-01-01</ns3:date></ns3:content>"},
      {"EndDateAfterThreeMonths", kX, Swap(kEndDateContent, "<ns3:date>2025-05-01</ns3:date>"),
       "250", Cat(item_prefix, "[agreementenddate]"), "2025-05-01"},
      {"DecisionReferenceMissingInACancellation", kC,
       SetItems(Item(1, "agreementtype", kTypeContent)), "100",
       Cat(item_prefix, "[decisionreference]"), "<ns3:transaction>"},
      {"DecisionReferenceMissingInAClosure", kX,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(3, "agreementenddate", kEndDateContent) +
                Item(4, "closurejustification", kJustificationContent)),
       "100", Cat(item_prefix, "[decisionreference]"), "<ns3:transaction>"},
      {"DecisionReferenceInASubscription", kS,
       SetItems(SubscriptionItemsWith(
           3, kSubscriptionItems[3] + Item(5, "decisionreference", kReferenceContent))),
       "251", Cat(item_prefix, "[decisionreference]"), ">decisionreference<"},
      {"DecisionReferenceWithoutContent", kC, Swap(kReferenceContent, ""), "100",
       Cat(item_prefix, "[decisionreference]"), ">decisionreference<"},
      {"DecisionReferenceBadFormat", kC, Swap(">IO-REF-2025-0001<", ">IO REF #1<"), "111",
       Cat(item_prefix, "[decisionreference]"), ">IO REF #1<"},
      {"TrialPeriodMissingInASubscription", kS, SetItems(SubscriptionItemsWith(2, "")), "100",
       Cat(item_prefix, "[istrialperiod]"), "<ns3:transaction>"},
      {"TrialPeriodWithoutContent", kS,
       SetItems(SubscriptionItemsWith(2, Item(3, "istrialperiod", ""))), "100",
       Cat(item_prefix, "[istrialperiod]"), ">istrialperiod<"},
      {"TrialPeriodInACancellation", kC,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(3, "istrialperiod", "<ns3:boolean>false</ns3:boolean>")),
       "255", Cat(item_prefix, "[istrialperiod]"), ">istrialperiod<"},
      {"ClosureJustificationMissingInAClosure", kX,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(3, "agreementenddate", kEndDateContent)),
       "100", Cat(item_prefix, "[closurejustification]"), "<ns3:transaction>"},
      {"ClosureJustificationInACancellation", kC,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(4, "closurejustification", kJustificationContent)),
       "252", Cat(item_prefix, "[closurejustification]"), ">closurejustification<"},
      {"ClosureJustificationWithoutDecision", kX,
       Swap(R"(<ns3:cd S="LOCAL" SV="1.0" SL="MAA-CLOSUREDECISION">patient</ns3:cd>)", ""), "100",
       Cat(item_prefix, "[closurejustification]/content/cd[MAA-CLOSUREDECISION]"),
       ">closurejustification<"},
      {"ClosureJustificationWithoutJustification", kX,
       Swap(R"(<ns3:cd S="LOCAL" SV="1.0" SL="MAA-CLOSUREJUSTIFICATION">moved</ns3:cd>)", ""),
       "100", Cat(item_prefix, "[closurejustification]/content/cd[MAA-CLOSUREJUSTIFICATION]"),
       ">closurejustification<"},
      {"DocumentIdentityWithoutSignatureType", kS,
       Swap(R"(SL="SIGNATURE-TYPE">eid<)", R"(SL="OTHER">eid<)"), "100",
       Cat(item_prefix, "[documentidentity]/content/cd[SIGNATURE-TYPE]"), ">documentidentity<"},
      {"DocumentIdentityWithOtherContent", kS,
       Swap(R"(SL="SIGNATURE-TYPE">eid</ns3:cd>)",
            R"(SL="SIGNATURE-TYPE">eid</ns3:cd><ns3:cd S="LOCAL" SV="1.0" SL="OTHER">x</ns3:cd>)"),
       "253", Cat(item_prefix, "[documentidentity]/content/cd[SIGNATURE-TYPE]"), "SL=\"OTHER\""},
      {"DocumentIdentityInAClosure", kX,
       SetItems(Item(1, "agreementtype", kTypeContent) +
                Item(2, "decisionreference", kReferenceContent) +
                Item(3, "agreementenddate", kEndDateContent) +
                Item(4, "closurejustification", kJustificationContent) + kSubscriptionItems[3]),
       "254", Cat(item_prefix, "[documentidentity]/content/cd[SIGNATURE-TYPE]"),
       ">documentidentity<"},
      {"EnvelopeQualityNotMedicalHouse",
       kS,
       {},
       "PSL-MHM-QUALITY",
       "/SendSubscriptionRequest/CommonInput/Origin/CareProvider/Nihii/Quality",
       "<mc:Quality>",
       Swap("<mc:Quality>medicalhouse<", "<mc:Quality>doctor<"),
       "envelope"},
      {"EnvelopeNihiiBadCheckDigits",
       kS,
       {},
       "PSL-MHM-NIHII",
       "/SendSubscriptionRequest/CommonInput/Origin/CareProvider/Nihii/Value",
       "<mc:Value>",
       Swap("<mc:Value>81234530000<", "<mc:Value>81234531000<"),
       "envelope"},
      {"EnvelopeNihiiNotAMedicalHouse",
       kS,
       {},
       "PSL-MHM-NOT-MEDICAL-HOUSE",
       "/SendSubscriptionRequest/CommonInput/Origin/CareProvider/Nihii/Value",
       "<mc:Value>",
       Swap("<mc:Value>81234530000<", "<mc:Value>11478761004<"),
       "envelope"},
      {"RoutingSsinBadCheckDigits",
       kS,
       {},
       "PSL-MHM-ROUTING-SSIN",
       "/SendSubscriptionRequest/Routing/CareReceiver/Ssin",
       "<mc:Ssin>",
       Swap("<mc:Ssin>90010100123<", "<mc:Ssin>90010100124<"),
       "envelope"},
      {"RoutingSsinNotThePatient",
       kS,
       {},
       "PSL-MHM-ROUTING-MISMATCH",
       "/SendSubscriptionRequest/Routing/CareReceiver/Ssin",
       "<mc:Ssin>",
       Swap("<mc:Ssin>90010100123<", "<mc:Ssin>90010100321<"),
       "envelope"},
      {"RoutingWithoutPatient",
       kS,
       {},
       "PSL-MHM-ROUTING",
       "/SendSubscriptionRequest/Routing",
       "<mc:CareReceiver>",
       Swap("<mc:Ssin>90010100123</mc:Ssin>", ""),
       "envelope"},
      {"RoutingMissing",
       kS,
       {},
       "PSL-MHM-ROUTING",
       "/SendSubscriptionRequest/Routing",
       "IssueInstant=",
       [](std::string e) {
         const std::size_t b = e.find("  <mcp:Routing>");
         const std::size_t end =
             e.find("</mcp:Routing>\n") + std::string("</mcp:Routing>\n").size();
         return e.erase(b, end - b);
       },
       "envelope"},
      {"Mod89NihiiIsOnlyAWarning", kS, SwapAll(">81234530000", ">81234547000"), "PSL-NIHII-MOD89",
       "/SendTransactionRequest/Request/author", ">81234547000</ns3:id>",
       Swap("<mc:Value>81234530000<", "<mc:Value>81234547000<"), "detail", Severity::kWarning},
  };
}

class MhmRuleCaseTest : public MhmRulesTest, public ::testing::WithParamInterface<RuleCase> {};

TEST_P(MhmRuleCaseTest, VariantReportsTheRuleCodeAtItsPath) {
  const RuleCase& c = GetParam();
  const std::string detail = c.edit_detail ? c.edit_detail(BaseDetail(c.op)) : BaseDetail(c.op);
  const std::string envelope = EnvelopeFor(c.op, detail, c.edit_envelope);
  ValidationReport report;
  const StatusOr<MhmRequest> result = codec_.Decode(envelope, &report);

  const Problem* found = nullptr;
  for (const Problem& p : report.problems) {
    if (p.code == c.code && p.path == c.path) {
      found = &p;
    }
  }
  ASSERT_NE(found, nullptr) << "expected " << c.code << " at " << c.path << "\n" << Dump(report);
  EXPECT_EQ(found->document, c.document);
  EXPECT_EQ(found->severity, c.severity);
  const std::string& text = c.document == "detail" ? detail : envelope;
  int expected_line = LineOf(text, c.line_of);
  if (c.line_of == "__second_folder__") {
    expected_line = LineOf(text.substr(text.find("</ns3:folder>")), "<ns3:folder>") - 1 +
                    LineOf(text, "</ns3:folder>");
  }
  ASSERT_GT(expected_line, 0) << "bad test: " << c.line_of;
  EXPECT_EQ(found->line, expected_line) << Dump(report);
  EXPECT_FALSE(found->message.empty());
  if (c.severity == Severity::kWarning) {
    EXPECT_TRUE(result.ok()) << Dump(report);
  } else {
    EXPECT_FALSE(result.ok());
    EXPECT_FALSE(report.valid());
  }
  for (const Problem& p : report.problems) {
    for (const char* secret : {"90010100123", "90010100124", "90010100321", "Jean", "Exemple"}) {
      EXPECT_EQ(p.message.find(secret), std::string::npos) << p.code << ": " << p.message;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(EveryRule, MhmRuleCaseTest, ::testing::ValuesIn(Cases()),
                         [](const ::testing::TestParamInfo<RuleCase>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST_F(MhmRulesTest, EveryRuleOfTheTableHasAVariantTest) {
  std::set<std::pair<std::string, std::string>> tested;
  for (const RuleCase& c : Cases()) {
    std::string path = c.path;
    if (c.document == "envelope") {
      path = path.substr(path.find('/', 1));  // drop the root
    }
    tested.insert({c.code, path});
  }
  for (const MhmRuleSpec& spec : MhmRuleTable()) {
    if (spec.rule == MhmRule::kDetailRoot || spec.code == "PSL-NIHII-MOD89") {
      continue;
    }
    EXPECT_TRUE(tested.count({std::string(spec.code), std::string(spec.path)}))
        << "no variant test for " << spec.code << " " << spec.path;
  }
}

TEST_F(MhmRulesTest, ReportsSeveralFaultsAtOnce) {
  std::string detail =
      Replace(SubscriptionDetail(), "<ns2:date>2025-01-02", "<ns2:date>2025-01-03");
  detail = Replace(detail, "<ns3:firstname>Jean</ns3:firstname>", "");  // also a schema error
  detail = Replace(detail, ">packagemedicalhouse<", ">other<");
  detail = Replace(detail, ">mycarenet<", ">insurer<");
  const ValidationReport report = Check(MhmOperation::kSubscription, detail,
                                        Swap("<mc:Quality>medicalhouse<", "<mc:Quality>doctor<"));
  std::set<std::string> codes;
  for (const Problem& p : report.problems) {
    codes.insert(p.code + " " + p.path);
  }
  for (const std::string expected :
       {"146 /SendTransactionRequest/Request/date",
        "156 /SendTransactionRequest/kmehrmessage/header/date",
        "111 /SendTransactionRequest/kmehrmessage/folder/patient/firstname",
        "130 /SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementtype]",
        "111 /SendTransactionRequest/kmehrmessage/header/recipient",
        "PSL-MHM-QUALITY /SendSubscriptionRequest/CommonInput/Origin/CareProvider/Nihii/Quality"}) {
    EXPECT_TRUE(codes.count(expected)) << expected << "\n" << Dump(report);
  }
  bool schema_error_in_detail = false;
  for (const Problem& p : report.problems) {
    schema_error_in_detail |= p.code == "PSL-SCHEMA" && p.document == "detail";
  }
  EXPECT_TRUE(schema_error_in_detail) << Dump(report);
}

TEST_F(MhmRulesTest, NoProblemMessageEchoesPatientData) {
  std::string detail = ReplaceAll(SubscriptionDetail(), "90010100123", "90010100124");
  detail = Replace(detail, "<ns3:familyname>Exemple</ns3:familyname>", "");
  detail = Replace(detail, ">Jean<", ">Jean Exemple 90010100123<");
  const ValidationReport report = Check(MhmOperation::kSubscription, detail,
                                        Swap("<mc:Ssin>90010100123<", "<mc:Ssin>90010100125<"));
  ASSERT_GE(report.problems.size(), 3u) << Dump(report);
  for (const Problem& p : report.problems) {
    for (const char* secret : {"9001010012", "Jean", "Exemple"}) {
      EXPECT_EQ(p.message.find(secret), std::string::npos) << p.code << ": " << p.message;
      EXPECT_EQ(p.path.find(secret), std::string::npos) << p.code << ": " << p.path;
    }
  }
}

TEST_F(MhmRulesTest, SurvivesAPayloadWithoutAnyExpectedElement) {
  const std::string detail =
      "<ns6:SendTransactionRequest "
      "xmlns:ns6=\"http://www.ehealth.fgov.be/messageservices/protocol/v1\"/>";
  const ValidationReport report = Check(MhmOperation::kClosure, detail);
  EXPECT_FALSE(report.valid());
  EXPECT_GT(report.problems.size(), 3u) << Dump(report);
}

TEST_F(MhmRulesTest, ReportsAPayloadThatIsNotASendTransactionRequest) {
  const ValidationReport report = Check(MhmOperation::kSubscription, "<other/>");
  bool found = false;
  for (const Problem& p : report.problems) {
    found |= p.code == "PSL-MHM-DETAIL-ROOT";
  }
  EXPECT_TRUE(found) << Dump(report);
}

TEST_F(MhmRulesTest, TodayIsTheBrusselsDate) {
  // 23:30 UTC on 1 January is already 2 January in Brussels: the sample's dates are today.
  clock_.SetUtc(2025, 1, 1, 23, 30);
  EXPECT_TRUE(Check(MhmOperation::kSubscription, SubscriptionDetail()).valid());
  clock_.SetUtc(2025, 1, 2, 22, 59);
  EXPECT_TRUE(Check(MhmOperation::kSubscription, SubscriptionDetail()).valid());
  clock_.SetUtc(2025, 1, 2, 23, 0);  // 3 January in Brussels
  EXPECT_FALSE(Check(MhmOperation::kSubscription, SubscriptionDetail()).valid());
}

TEST_F(MhmRulesTest, EndDateLimitIsTheLastDayOfTheThirdMonthAfterThisOne) {
  // Today 2025-01-02: the limit is 2025-04-30.
  const std::string ok =
      Replace(ClosureDetail(), kEndDateContent, "<ns3:date>2025-04-30</ns3:date>");
  EXPECT_TRUE(Check(MhmOperation::kClosure, ok).valid());
  const std::string late =
      Replace(ClosureDetail(), kEndDateContent, "<ns3:date>2025-05-01</ns3:date>");
  EXPECT_FALSE(Check(MhmOperation::kClosure, late).valid());
  const std::string today =
      Replace(ClosureDetail(), kEndDateContent, "<ns3:date>2025-01-02</ns3:date>");
  EXPECT_TRUE(Check(MhmOperation::kClosure, today).valid());
}

TEST(MhmRuleTableTest, EntriesFollowTheRuleEnumeration) {
  const auto table = MhmRuleTable();
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(table[i].rule), i);
    EXPECT_EQ(&MhmRuleSpecFor(table[i].rule), &table[i]);
    EXPECT_FALSE(table[i].message.empty());
    EXPECT_TRUE(table[i].document == "detail" || table[i].document == "envelope");
  }
}

TEST(MhmRuleTableTest, EveryNumericCodeAndPathExistsInTheMyCareNetErrorTable) {
  const nlohmann::json errors =
      nlohmann::json::parse(mhm_test::ReadShared("errors/mhmSubscriptionError.json"));
  std::set<std::pair<std::string, std::string>> known;
  for (const auto& e : errors) {
    known.insert({e.at("code").get<std::string>(), e.at("path").get<std::string>()});
  }
  ASSERT_GT(known.size(), 50u);
  int numeric = 0;
  for (const MhmRuleSpec& spec : MhmRuleTable()) {
    const bool is_numeric = spec.code.find_first_not_of("0123456789") == std::string_view::npos;
    if (!is_numeric) {
      EXPECT_EQ(spec.code.rfind("PSL-", 0), 0u) << spec.code;
      continue;
    }
    ++numeric;
    EXPECT_EQ(spec.document, "detail");
    EXPECT_TRUE(known.count({std::string(spec.code), std::string(spec.path)}))
        << spec.code << " " << spec.path << " is not in mhmSubscriptionError.json";
  }
  EXPECT_GT(numeric, 50);
}

}  // namespace
}  // namespace psl::codecs
