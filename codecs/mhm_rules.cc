#include "codecs/mhm_rules.h"

#include <array>
#include <optional>

#include "codecs/identifiers.h"
#include "codecs/kmehr_util.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

using R = MhmRule;
constexpr Severity kE = Severity::kError;
constexpr Severity kW = Severity::kWarning;

// One line per rule; order must follow the MhmRule enumeration (checked by a static_assert below
// and by the unit tests).
constexpr std::array kRules = {
    MhmRuleSpec{R::kDetailRoot, "PSL-MHM-DETAIL-ROOT", "/", "detail", kE,
                "the Detail payload must be a kmehr messageservices SendTransactionRequest"},
    MhmRuleSpec{R::kRequestIdFormat, "111", "/SendTransactionRequest/Request/id", "detail", kE,
                "the request id must be <NIHII of 11 digits>.<yyyyMMddHHmmss>"},
    MhmRuleSpec{R::kRequestIdAuthor, "155", "/SendTransactionRequest/Request/id", "detail", kE,
                "the NIHII part of the request id must equal the request author's NIHII"},
    MhmRuleSpec{R::kRequestAuthorMissing, "100", "/SendTransactionRequest/Request/author", "detail",
                kE, "the request author must carry an ID-HCPARTY NIHII"},
    MhmRuleSpec{R::kRequestAuthorInvalid, "111", "/SendTransactionRequest/Request/author", "detail",
                kE,
                "the request author's NIHII must be 11 digits with valid check digits "
                "(97 - base mod 97)"},
    MhmRuleSpec{R::kRequestAuthorMod89, "PSL-NIHII-MOD89", "/SendTransactionRequest/Request/author",
                "detail", kW,
                "the request author's NIHII passes only the 89 - base mod 89 check variant"},
    MhmRuleSpec{R::kRequestAuthorEnvelope, "155", "/SendTransactionRequest/Request/author",
                "detail", kE,
                "the request author's NIHII must equal CommonInput/Origin/CareProvider/Nihii/Value "
                "of the envelope"},
    MhmRuleSpec{R::kRequestDateFuture, "146", "/SendTransactionRequest/Request/date", "detail", kE,
                "the request date must not be after today (Europe/Brussels)"},
    MhmRuleSpec{R::kRequestDatePast, "191", "/SendTransactionRequest/Request/date", "detail", kE,
                "the request date must not be before today (Europe/Brussels)"},
    MhmRuleSpec{R::kHeaderStandard, "130", "/SendTransactionRequest/kmehrmessage/header/standard",
                "detail", kE,
                "the kmehr header standard (CD-STANDARD) must be a value a supported kmehr version "
                "knows"},
    MhmRuleSpec{R::kHeaderIdFormat, "111", "/SendTransactionRequest/kmehrmessage/header/id",
                "detail", kE,
                "the kmehr header needs an ID-KMEHR id made of digits (dot-separated groups "
                "allowed)"},
    MhmRuleSpec{R::kHeaderDate, "156", "/SendTransactionRequest/kmehrmessage/header/date", "detail",
                kE, "the kmehr header date must equal the request date"},
    MhmRuleSpec{R::kHeaderSenderMissing, "100",
                "/SendTransactionRequest/kmehrmessage/header/sender", "detail", kE,
                "the kmehr header sender must carry an ID-HCPARTY NIHII"},
    MhmRuleSpec{R::kHeaderSenderInvalid, "111",
                "/SendTransactionRequest/kmehrmessage/header/sender", "detail", kE,
                "the kmehr header sender's NIHII must be 11 digits with valid check digits "
                "(97 - base mod 97)"},
    MhmRuleSpec{R::kHeaderSenderMod89, "PSL-NIHII-MOD89",
                "/SendTransactionRequest/kmehrmessage/header/sender", "detail", kW,
                "the kmehr header sender's NIHII passes only the 89 - base mod 89 check variant"},
    MhmRuleSpec{R::kHeaderSenderAuthor, "156", "/SendTransactionRequest/kmehrmessage/header/sender",
                "detail", kE, "the kmehr header sender's NIHII must equal the request author's"},
    MhmRuleSpec{R::kRecipientMissing, "100",
                "/SendTransactionRequest/kmehrmessage/header/recipient", "detail", kE,
                "the kmehr header recipient must have a hcparty name"},
    MhmRuleSpec{R::kRecipientNotMycarenet, "111",
                "/SendTransactionRequest/kmehrmessage/header/recipient", "detail", kE,
                "the kmehr header recipient's name must be mycarenet"},
    MhmRuleSpec{R::kFolderCount, "256", "/SendTransactionRequest/kmehrmessage/folder", "detail", kE,
                "the kmehr message must contain exactly one folder"},
    MhmRuleSpec{R::kFolderId, "111", "/SendTransactionRequest/kmehrmessage/folder/id", "detail", kE,
                "the folder needs an ID-KMEHR id that is a positive integer"},
    MhmRuleSpec{R::kPatientNiss, "111", "/SendTransactionRequest/kmehrmessage/folder/patient/id",
                "detail", kE,
                "the patient's ID-PATIENT must be a NISS or BIS number (11 digits, check digits "
                "97 - n mod 97)"},
    MhmRuleSpec{R::kPatientFirstname, "111",
                "/SendTransactionRequest/kmehrmessage/folder/patient/firstname", "detail", kE,
                "the patient's firstname is required"},
    MhmRuleSpec{R::kPatientFamilyname, "120",
                "/SendTransactionRequest/kmehrmessage/folder/patient/familyname", "detail", kE,
                "the patient's familyname is required"},
    MhmRuleSpec{R::kPatientSex, "120", "/SendTransactionRequest/kmehrmessage/folder/patient/sex",
                "detail", kE, "the patient's sex is required"},
    MhmRuleSpec{R::kPatientNoIdentification, "100",
                "/SendTransactionRequest/kmehrmessage/folder/patient/insurancymembership", "detail",
                kE,
                "without a patient NISS, insurancymembership (mutuality id and membership number) "
                "is required"},
    MhmRuleSpec{R::kMutualityWithNiss, "197",
                "/SendTransactionRequest/kmehrmessage/folder/patient/insurancymembership/id",
                "detail", kE, "the mutuality id must not be given when the patient NISS is given"},
    MhmRuleSpec{
        R::kMembershipWithNiss, "198",
        "/SendTransactionRequest/kmehrmessage/folder/patient/insurancymembership/membership",
        "detail", kE, "the membership number must not be given when the patient NISS is given"},
    MhmRuleSpec{R::kMutualityFormat, "120",
                "/SendTransactionRequest/kmehrmessage/folder/patient/insurancymembership/id",
                "detail", kE, "the mutuality id must be 3 digits"},
    MhmRuleSpec{R::kTransactionId, "111",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/id", "detail", kE,
                "the transaction needs an ID-KMEHR id that is a positive integer"},
    MhmRuleSpec{R::kTransactionCd, "130",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/cd", "detail", kE,
                "the transaction CD-TRANSACTION-MYCARENET must be maa for SendSubscription, "
                "maacancellation for CancelSubscription, maaclosure for NotifySubscriptionClosure"},
    MhmRuleSpec{R::kTransactionDateFuture, "146",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/date", "detail", kE,
                "the transaction date must not be after today (Europe/Brussels)"},
    MhmRuleSpec{R::kTransactionDatePast, "191",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/date", "detail", kE,
                "the transaction date must not be before today (Europe/Brussels)"},
    MhmRuleSpec{R::kTransactionAuthorMissing, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/author", "detail", kE,
                "the transaction author must carry an ID-HCPARTY NIHII"},
    MhmRuleSpec{R::kTransactionAuthorInvalid, "111",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/author", "detail", kE,
                "the transaction author's NIHII must be 11 digits with valid check digits "
                "(97 - base mod 97)"},
    MhmRuleSpec{R::kTransactionAuthorMod89, "PSL-NIHII-MOD89",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/author", "detail", kW,
                "the transaction author's NIHII passes only the 89 - base mod 89 check variant"},
    MhmRuleSpec{R::kTransactionAuthorNotMedicalHouse, "140",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/author", "detail", kE,
                "the transaction author must be a medical house (institution NIHII starting with 8 "
                "and ending with a forfait discipline code)"},
    MhmRuleSpec{R::kTransactionAuthorSender, "156",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/author", "detail", kE,
                "the transaction author's NIHII must equal the kmehr header sender's"},
    MhmRuleSpec{R::kAgreementTypeMissing, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementtype]",
                "detail", kE, "the transaction needs an agreementtype item"},
    MhmRuleSpec{R::kAgreementTypeContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementtype]",
                "detail", kE, "the agreementtype item needs a content/cd (SL MAA-TYPE)"},
    MhmRuleSpec{R::kAgreementTypeValue, "130",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementtype]",
                "detail", kE, "the agreementtype must be packagemedicalhouse"},
    MhmRuleSpec{R::kStartDateMissing, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementstartdate]",
                "detail", kE, "a subscription (maa) needs an agreementstartdate item"},
    MhmRuleSpec{R::kStartDateContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementstartdate]",
                "detail", kE, "the agreementstartdate item needs a content/date"},
    MhmRuleSpec{R::kStartDateNotAllowed, "246",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementstartdate]",
                "detail", kE,
                "agreementstartdate is allowed only in a subscription (maa), not in a cancellation "
                "or closure"},
    MhmRuleSpec{R::kStartDateRecovery, "247",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementstartdate]",
                "detail", kE,
                "a start date of 01/01/1900 (recovery of an existing subscription) is not allowed "
                "with istrialperiod true"},
    MhmRuleSpec{R::kEndDateMissing, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementenddate]",
                "detail", kE, "a closure (maaclosure) needs an agreementenddate item"},
    MhmRuleSpec{R::kEndDateContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementenddate]",
                "detail", kE, "the agreementenddate item needs a content/date"},
    MhmRuleSpec{R::kEndDateNotAllowed, "248",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementenddate]",
                "detail", kE, "agreementenddate is allowed only in a closure (maaclosure)"},
    MhmRuleSpec{R::kEndDatePast, "249",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementenddate]/"
                "content/date",
                "detail", kE, "the agreement end date must not be in the past (Europe/Brussels)"},
    MhmRuleSpec{R::kEndDateTooLate, "250",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[agreementenddate]",
                "detail", kE,
                "the agreement end date must not be after the last day of the current month + 3 "
                "months"},
    MhmRuleSpec{R::kDecisionReferenceMissing, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[decisionreference]",
                "detail", kE, "a cancellation or closure needs a decisionreference item"},
    MhmRuleSpec{R::kDecisionReferenceNotAllowed, "251",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[decisionreference]",
                "detail", kE, "decisionreference is not allowed in a subscription (maa)"},
    MhmRuleSpec{R::kDecisionReferenceContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[decisionreference]",
                "detail", kE, "the decisionreference item needs a content/id"},
    MhmRuleSpec{R::kDecisionReferenceFormat, "111",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[decisionreference]",
                "detail", kE,
                "the decision reference must be 1 to 64 characters among letters, digits and "
                ". _ / -"},
    MhmRuleSpec{R::kTrialPeriodMissing, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[istrialperiod]",
                "detail", kE, "a subscription (maa) needs an istrialperiod item"},
    MhmRuleSpec{R::kTrialPeriodContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[istrialperiod]",
                "detail", kE, "the istrialperiod item needs a content/boolean"},
    MhmRuleSpec{R::kTrialPeriodNotAllowed, "255",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/item[istrialperiod]",
                "detail", kE,
                "istrialperiod is allowed only in a subscription (maa), not in a cancellation or "
                "closure"},
    MhmRuleSpec{
        R::kClosureJustificationMissing, "100",
        "/SendTransactionRequest/kmehrmessage/folder/transaction/item[closurejustification]",
        "detail", kE, "a closure (maaclosure) needs a closurejustification item"},
    MhmRuleSpec{
        R::kClosureJustificationNotAllowed, "252",
        "/SendTransactionRequest/kmehrmessage/folder/transaction/item[closurejustification]",
        "detail", kE, "closurejustification is allowed only in a closure (maaclosure)"},
    MhmRuleSpec{R::kClosureDecisionContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/"
                "item[closurejustification]/content/cd[MAA-CLOSUREDECISION]",
                "detail", kE,
                "closurejustification needs a content/cd with SL MAA-CLOSUREDECISION"},
    MhmRuleSpec{R::kClosureJustificationContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/"
                "item[closurejustification]/content/cd[MAA-CLOSUREJUSTIFICATION]",
                "detail", kE,
                "closurejustification needs a content/cd with SL MAA-CLOSUREJUSTIFICATION"},
    MhmRuleSpec{R::kDocumentIdentityMissing, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/"
                "item[documentidentity]/content/cd[SIGNATURE-TYPE]",
                "detail", kE, "a subscription (maa) needs a documentidentity item"},
    MhmRuleSpec{R::kSignatureTypeContent, "100",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/"
                "item[documentidentity]/content/cd[SIGNATURE-TYPE]",
                "detail", kE, "documentidentity needs a content/cd with SL SIGNATURE-TYPE"},
    MhmRuleSpec{R::kDocumentIdentityOtherContent, "253",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/"
                "item[documentidentity]/content/cd[SIGNATURE-TYPE]",
                "detail", kE, "documentidentity may contain only the SIGNATURE-TYPE content"},
    MhmRuleSpec{R::kDocumentIdentityNotAllowed, "254",
                "/SendTransactionRequest/kmehrmessage/folder/transaction/"
                "item[documentidentity]/content/cd[SIGNATURE-TYPE]",
                "detail", kE, "documentidentity is allowed only in a subscription (maa)"},
    MhmRuleSpec{R::kEnvelopeQuality, "PSL-MHM-QUALITY",
                "/CommonInput/Origin/CareProvider/Nihii/Quality", "envelope", kE,
                "CareProvider/Nihii/Quality must be medicalhouse"},
    MhmRuleSpec{R::kEnvelopeNihii, "PSL-MHM-NIHII", "/CommonInput/Origin/CareProvider/Nihii/Value",
                "envelope", kE,
                "CareProvider/Nihii/Value must be an 11-digit NIHII with valid check digits "
                "(97 - base mod 97)"},
    MhmRuleSpec{R::kEnvelopeNihiiMod89, "PSL-NIHII-MOD89",
                "/CommonInput/Origin/CareProvider/Nihii/Value", "envelope", kW,
                "CareProvider/Nihii/Value passes only the 89 - base mod 89 check variant"},
    MhmRuleSpec{R::kEnvelopeNotMedicalHouse, "PSL-MHM-NOT-MEDICAL-HOUSE",
                "/CommonInput/Origin/CareProvider/Nihii/Value", "envelope", kE,
                "CareProvider/Nihii/Value must be a medical-house NIHII (starting with 8 and "
                "ending with a forfait discipline code)"},
    MhmRuleSpec{R::kRoutingSsin, "PSL-MHM-ROUTING-SSIN", "/Routing/CareReceiver/Ssin", "envelope",
                kE,
                "Routing/CareReceiver/Ssin must be a NISS or BIS number (11 digits, check digits "
                "97 - n mod 97)"},
    MhmRuleSpec{R::kRoutingMismatch, "PSL-MHM-ROUTING-MISMATCH", "/Routing/CareReceiver/Ssin",
                "envelope", kE,
                "Routing/CareReceiver/Ssin must equal the kmehr patient's ID-PATIENT"},
    MhmRuleSpec{R::kRouting, "PSL-MHM-ROUTING", "/Routing", "envelope", kE,
                "Routing/CareReceiver must give the patient's Ssin or Mutuality with "
                "RegNrWithMut"},
};
constexpr bool RulesFollowTheEnumeration() {
  for (std::size_t i = 0; i < kRules.size(); ++i) {
    if (static_cast<std::size_t>(kRules[i].rule) != i) {
      return false;
    }
  }
  return kRules.back().rule == MhmRule::kRouting;
}
static_assert(RulesFollowTheEnumeration());

const xmlNode* Path(const xmlNode* from, std::initializer_list<std::string_view> names) {
  const xmlNode* n = from;
  for (std::string_view name : names) {
    n = Child(n, name);
  }
  return n;
}

bool IsDottedDigits(std::string_view s) {
  if (s.empty() || s.front() == '.' || s.back() == '.') {
    return false;
  }
  char prev = 0;
  for (char c : s) {
    if (c == '.' && prev == '.') {
      return false;
    }
    if (c != '.' && (c < '0' || c > '9')) {
      return false;
    }
    prev = c;
  }
  return true;
}

// Collects problems from rule ids, so every emitted (code, path) comes from the table.
using Findings = KmehrFindings<&MhmRuleSpecFor>;

void CheckTodayDate(const xmlNode* date_node, const xmlNode* fallback,
                    std::chrono::year_month_day today, MhmRule future, MhmRule past, Findings* f) {
  const auto d = ParseKmehrDate(TrimmedContent(date_node));
  if (!d) {
    return;  // absent or not an xs:date: the schema reports it
  }
  if (*d > today) {
    f->Add(future, date_node != nullptr ? date_node : fallback);
  }
  if (*d < today) {
    f->Add(past, date_node != nullptr ? date_node : fallback);
  }
}

class DetailChecker {
 public:
  DetailChecker(const MhmRuleInput& in, Findings* f, MhmFacts* facts)
      : in_(in), f_(f), facts_(facts) {}

  void Run(const xmlNode* root) {
    if (!IsElement(root, "SendTransactionRequest")) {
      f_->Add(R::kDetailRoot, root);
      return;
    }
    root_ = root;
    CheckRequest();
    CheckHeader();
    CheckFolder();
  }

 private:
  void CheckRequest() {
    const xmlNode* request = Child(root_, "request");
    const xmlNode* anchor = request != nullptr ? request : root_;
    // Comparisons use only valid NIHIIs: an invalid one is reported once, not once per comparison.
    bool author_valid = false;
    facts_->request_author_nihii =
        CheckHcpartyNihii(Child(request, "author"), anchor, R::kRequestAuthorMissing,
                          R::kRequestAuthorInvalid, R::kRequestAuthorMod89, f_, &author_valid);
    author_valid_ = author_valid;

    if (author_valid_ && !facts_->care_provider_nihii.empty() &&
        facts_->request_author_nihii != facts_->care_provider_nihii) {
      f_->Add(R::kRequestAuthorEnvelope, Child(request, "author"));
    }

    const xmlNode* id = Child(request, "id");
    facts_->request_id = TrimmedContent(id);
    if (!IsKmehrRequestId(facts_->request_id)) {
      f_->Add(R::kRequestIdFormat, id != nullptr ? id : anchor);
    } else if (author_valid_ && facts_->request_id.substr(0, 11) != facts_->request_author_nihii) {
      f_->Add(R::kRequestIdAuthor, id);
    }

    const xmlNode* date = Child(request, "date");
    request_date_ = ParseKmehrDate(TrimmedContent(date));
    CheckTodayDate(date, anchor, in_.today, R::kRequestDateFuture, R::kRequestDatePast, f_);
  }

  void CheckHeader() {
    const xmlNode* message = Child(root_, "kmehrmessage");
    const xmlNode* header = Child(message, "header");
    const xmlNode* anchor = header != nullptr ? header : (message != nullptr ? message : root_);
    if (!in_.standard_known) {
      const xmlNode* standard = Child(header, "standard");
      f_->Add(R::kHeaderStandard, standard != nullptr ? standard : anchor);
    }
    const xmlNode* id = ChildWith(header, "id", "S", "ID-KMEHR");
    if (!IsDottedDigits(TrimmedContent(id))) {
      f_->Add(R::kHeaderIdFormat, id != nullptr ? id : anchor);
    }

    const xmlNode* date = Child(header, "date");
    const auto header_date = ParseKmehrDate(TrimmedContent(date));
    if (header_date && request_date_ && *header_date != *request_date_) {
      f_->Add(R::kHeaderDate, date);
    }

    const xmlNode* sender = Child(header, "sender");
    bool sender_valid = false;
    sender_nihii_ =
        CheckHcpartyNihii(sender, anchor, R::kHeaderSenderMissing, R::kHeaderSenderInvalid,
                          R::kHeaderSenderMod89, f_, &sender_valid);
    sender_valid_ = sender_valid;
    if (sender_valid_ && author_valid_ && sender_nihii_ != facts_->request_author_nihii) {
      f_->Add(R::kHeaderSenderAuthor, sender);
    }

    CheckMycarenetRecipient(header, anchor, R::kRecipientMissing, R::kRecipientNotMycarenet, f_);
  }

  void CheckFolder() {
    const xmlNode* message = Child(root_, "kmehrmessage");
    const auto folders = Children(message, "folder");
    if (folders.size() != 1) {
      f_->Add(R::kFolderCount, folders.size() > 1 ? folders[1] : message);
      if (folders.empty()) {
        return;
      }
    }
    const xmlNode* folder = folders[0];
    const xmlNode* id = ChildWith(folder, "id", "S", "ID-KMEHR");
    if (!IsPositiveInteger(TrimmedContent(id))) {
      f_->Add(R::kFolderId, id != nullptr ? id : folder);
    }
    CheckPatient(folder);
    CheckTransaction(folder);
  }

  void CheckPatient(const xmlNode* folder) {
    const xmlNode* patient = Child(folder, "patient");
    const xmlNode* anchor = patient != nullptr ? patient : folder;
    const xmlNode* niss_node = ChildWith(patient, "id", "S", "ID-PATIENT");
    facts_->patient_niss = TrimmedContent(niss_node);
    const bool has_niss = !facts_->patient_niss.empty();
    if (niss_node != nullptr) {
      const int year = static_cast<int>(in_.today.year());
      const NissResult r = CheckNiss(facts_->patient_niss, year);
      facts_->patient_niss_valid = r.ok();
      if (!r.ok()) {
        f_->Add(R::kPatientNiss, niss_node, IdCheckText(r.check));
      }
    }
    if (patient != nullptr) {
      if (TrimmedContent(Child(patient, "firstname")).empty()) {
        f_->Add(R::kPatientFirstname, anchor);
      }
      if (TrimmedContent(Child(patient, "familyname")).empty()) {
        f_->Add(R::kPatientFamilyname, anchor);
      }
      if (Child(patient, "sex") == nullptr) {
        f_->Add(R::kPatientSex, anchor);
      }
    }
    const xmlNode* membership = Child(patient, "insurancymembership");
    if (!has_niss && membership == nullptr) {
      f_->Add(R::kPatientNoIdentification, anchor);
      return;
    }
    if (membership == nullptr) {
      return;
    }
    const xmlNode* mutuality = Child(membership, "id");
    const xmlNode* number = Child(membership, "membership");
    if (has_niss && mutuality != nullptr) {
      f_->Add(R::kMutualityWithNiss, mutuality);
    }
    if (has_niss && number != nullptr) {
      f_->Add(R::kMembershipWithNiss, number);
    }
    const std::string mutuality_id = TrimmedContent(mutuality);
    if ((mutuality != nullptr || !has_niss) &&
        (mutuality_id.size() != 3 || !AllDigits(mutuality_id))) {
      f_->Add(R::kMutualityFormat, mutuality != nullptr ? mutuality : membership);
    }
  }

  void CheckTransaction(const xmlNode* folder) {
    const xmlNode* tx = Child(folder, "transaction");
    if (tx == nullptr) {
      f_->Add(R::kTransactionCd, folder, "the folder has no transaction");
      return;
    }
    const xmlNode* id = ChildWith(tx, "id", "S", "ID-KMEHR");
    if (!IsPositiveInteger(TrimmedContent(id))) {
      f_->Add(R::kTransactionId, id != nullptr ? id : tx);
    }

    const xmlNode* cd = ChildWith(tx, "cd", "S", "CD-TRANSACTION-MYCARENET");
    if (TrimmedContent(cd) != MhmTransactionCode(in_.operation)) {
      f_->Add(R::kTransactionCd, cd != nullptr ? cd : tx);
    }
    CheckTodayDate(Child(tx, "date"), tx, in_.today, R::kTransactionDateFuture,
                   R::kTransactionDatePast, f_);

    const xmlNode* author = Child(tx, "author");
    bool author_valid = false;
    const std::string author_nihii =
        CheckHcpartyNihii(author, tx, R::kTransactionAuthorMissing, R::kTransactionAuthorInvalid,
                          R::kTransactionAuthorMod89, f_, &author_valid);
    if (author_valid && !IsMedicalHouseNihii(author_nihii)) {
      f_->Add(R::kTransactionAuthorNotMedicalHouse, author);
    }
    if (author_valid && sender_valid_ && author_nihii != sender_nihii_) {
      f_->Add(R::kTransactionAuthorSender, author);
    }
    CheckItems(tx);
  }

  void CheckItems(const xmlNode* tx) {
    const bool maa = in_.operation == MhmOperation::kSubscription;
    const bool closure = in_.operation == MhmOperation::kClosure;

    // agreementtype: every operation.
    const xmlNode* type = ItemOfType(tx, "agreementtype");
    if (type == nullptr) {
      f_->Add(R::kAgreementTypeMissing, tx);
    } else {
      const xmlNode* cd = ContentChild(type, "cd", "SL", "MAA-TYPE");
      if (cd == nullptr) {
        cd = ContentChild(type, "cd");
      }
      if (TrimmedContent(cd).empty()) {
        f_->Add(R::kAgreementTypeContent, cd != nullptr ? cd : ItemAnchor(type));
      } else if (TrimmedContent(cd) != "packagemedicalhouse") {
        f_->Add(R::kAgreementTypeValue, cd);
      }
    }

    // istrialperiod: maa only.
    const xmlNode* trial = ItemOfType(tx, "istrialperiod");
    bool is_trial = false;
    if (trial == nullptr) {
      if (maa) {
        f_->Add(R::kTrialPeriodMissing, tx);
      }
    } else if (!maa) {
      f_->Add(R::kTrialPeriodNotAllowed, ItemAnchor(trial));
    } else {
      const xmlNode* b = ContentChild(trial, "boolean");
      const std::string v = TrimmedContent(b);
      if (v.empty()) {
        f_->Add(R::kTrialPeriodContent, b != nullptr ? b : ItemAnchor(trial));
      }
      is_trial = v == "true" || v == "1";
    }

    // agreementstartdate: maa only.
    const xmlNode* start = ItemOfType(tx, "agreementstartdate");
    if (start == nullptr) {
      if (maa) {
        f_->Add(R::kStartDateMissing, tx);
      }
    } else if (!maa) {
      f_->Add(R::kStartDateNotAllowed, ItemAnchor(start));
    } else {
      const xmlNode* d = ContentChild(start, "date");
      const std::string v = TrimmedContent(d);
      if (v.empty()) {
        f_->Add(R::kStartDateContent, d != nullptr ? d : ItemAnchor(start));
      } else if (const auto date = ParseKmehrDate(v);
                 date &&
                 *date == std::chrono::year_month_day{std::chrono::year{1900}, std::chrono::January,
                                                      std::chrono::day{1}} &&
                 is_trial) {
        f_->Add(R::kStartDateRecovery, d);
      }
    }

    // agreementenddate: closure only.
    const xmlNode* end = ItemOfType(tx, "agreementenddate");
    if (end == nullptr) {
      if (closure) {
        f_->Add(R::kEndDateMissing, tx);
      }
    } else if (!closure) {
      f_->Add(R::kEndDateNotAllowed, ItemAnchor(end));
    } else {
      const xmlNode* d = ContentChild(end, "date");
      const std::string v = TrimmedContent(d);
      if (v.empty()) {
        f_->Add(R::kEndDateContent, d != nullptr ? d : ItemAnchor(end));
      } else if (const auto date = ParseKmehrDate(v)) {
        using std::chrono::months;
        const auto limit_month =
            std::chrono::year_month{in_.today.year(), in_.today.month()} + months{3};
        const std::chrono::year_month_day limit{limit_month / std::chrono::last};
        if (*date < in_.today) {
          f_->Add(R::kEndDatePast, d);
        }
        if (*date > limit) {
          f_->Add(R::kEndDateTooLate, d);
        }
      }
    }

    // decisionreference: cancellation and closure.
    const xmlNode* reference = ItemOfType(tx, "decisionreference");
    if (reference == nullptr) {
      if (!maa) {
        f_->Add(R::kDecisionReferenceMissing, tx);
      }
    } else if (maa) {
      f_->Add(R::kDecisionReferenceNotAllowed, ItemAnchor(reference));
    } else {
      const xmlNode* id = ContentChild(reference, "id");
      if (id == nullptr) {
        id = ContentChild(reference, "cd");
      }
      if (id == nullptr) {
        id = ContentChild(reference, "text");
      }
      const std::string v = TrimmedContent(id);
      if (v.empty()) {
        f_->Add(R::kDecisionReferenceContent, id != nullptr ? id : ItemAnchor(reference));
      } else if (!IsDecisionReference(v)) {
        f_->Add(R::kDecisionReferenceFormat, id);
      }
    }

    // closurejustification: closure only.
    const xmlNode* justification = ItemOfType(tx, "closurejustification");
    if (justification == nullptr) {
      if (closure) {
        f_->Add(R::kClosureJustificationMissing, tx);
      }
    } else if (!closure) {
      f_->Add(R::kClosureJustificationNotAllowed, ItemAnchor(justification));
    } else {
      const xmlNode* decision = ContentChild(justification, "cd", "SL", "MAA-CLOSUREDECISION");
      if (TrimmedContent(decision).empty()) {
        f_->Add(R::kClosureDecisionContent,
                decision != nullptr ? decision : ItemAnchor(justification));
      }
      const xmlNode* why = ContentChild(justification, "cd", "SL", "MAA-CLOSUREJUSTIFICATION");
      if (TrimmedContent(why).empty()) {
        f_->Add(R::kClosureJustificationContent, why != nullptr ? why : ItemAnchor(justification));
      }
    }

    // documentidentity: maa only.
    const xmlNode* identity = ItemOfType(tx, "documentidentity");
    if (identity == nullptr) {
      if (maa) {
        f_->Add(R::kDocumentIdentityMissing, tx);
      }
    } else if (!maa) {
      f_->Add(R::kDocumentIdentityNotAllowed, ItemAnchor(identity));
    } else {
      const xmlNode* signature = ContentChild(identity, "cd", "SL", "SIGNATURE-TYPE");
      if (TrimmedContent(signature).empty()) {
        f_->Add(R::kSignatureTypeContent, signature != nullptr ? signature : ItemAnchor(identity));
      }
      for (const xmlNode* content : Children(identity, "content")) {
        for (const xmlNode* c = content->children; c != nullptr; c = c->next) {
          if (c->type != XML_ELEMENT_NODE || c == signature) {
            continue;
          }
          f_->Add(R::kDocumentIdentityOtherContent, c);
          break;
        }
      }
    }
  }

  const MhmRuleInput& in_;
  Findings* f_;
  MhmFacts* facts_;
  const xmlNode* root_ = nullptr;
  std::optional<std::chrono::year_month_day> request_date_;
  std::string sender_nihii_;
  bool author_valid_ = false;
  bool sender_valid_ = false;
};

void CheckEnvelope(const MhmRuleInput& in, Findings* f, MhmFacts* facts) {
  const xmlNode* root = xmlDocGetRootElement(in.envelope);
  if (root == nullptr) {
    return;
  }
  const xmlNode* origin = Path(root, {"CommonInput", "Origin"});
  const xmlNode* nihii = Path(origin, {"CareProvider", "Nihii"});
  const xmlNode* anchor = nihii != nullptr ? nihii : (origin != nullptr ? origin : root);
  const xmlNode* quality = Child(nihii, "Quality");
  if (TrimmedContent(quality) != "medicalhouse") {
    f->Add(R::kEnvelopeQuality, quality != nullptr ? quality : anchor);
  }
  const xmlNode* value = Child(nihii, "Value");
  facts->care_provider_nihii = TrimmedContent(value);
  if (facts->care_provider_nihii.empty()) {
    f->Add(R::kEnvelopeNihii, value != nullptr ? value : anchor, "the value is absent");
  } else {
    const NihiiResult r = CheckNihii(facts->care_provider_nihii);
    if (!r.ok() || facts->care_provider_nihii.size() != 11) {
      f->Add(R::kEnvelopeNihii, value,
             r.ok() ? std::string_view("an 11-digit form is required") : IdCheckText(r.check));
    } else {
      if (r.mod89) {
        f->Add(R::kEnvelopeNihiiMod89, value);
      }
      if (!IsMedicalHouseNihii(facts->care_provider_nihii)) {
        f->Add(R::kEnvelopeNotMedicalHouse, value);
      }
    }
  }

  const xmlNode* routing = Child(root, "Routing");
  const xmlNode* receiver = Child(routing, "CareReceiver");
  const xmlNode* ssin = Child(receiver, "Ssin");
  facts->routing_ssin = TrimmedContent(ssin);
  facts->routing_mutuality = TrimmedContent(Child(receiver, "Mutuality"));
  facts->routing_reg_nr_with_mut = TrimmedContent(Child(receiver, "RegNrWithMut"));
  if (routing == nullptr) {
    f->Add(R::kRouting, root, "Routing is absent");
    return;
  }
  if (!facts->routing_ssin.empty()) {
    const NissResult r = CheckNiss(facts->routing_ssin, static_cast<int>(in.today.year()));
    if (!r.ok()) {
      f->Add(R::kRoutingSsin, ssin, IdCheckText(r.check));
    } else if (facts->patient_niss_valid && facts->patient_niss != facts->routing_ssin) {
      f->Add(R::kRoutingMismatch, ssin);
    }
  } else if (facts->routing_mutuality.empty() || facts->routing_reg_nr_with_mut.empty()) {
    f->Add(R::kRouting, receiver != nullptr ? receiver : routing);
  }
}

}  // namespace

bool IsDecisionReference(std::string_view s) {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                    c == '.' || c == '_' || c == '/' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string_view MhmOperationName(MhmOperation operation) {
  switch (operation) {
    case MhmOperation::kSubscription:
      return "SendSubscription";
    case MhmOperation::kCancellation:
      return "CancelSubscription";
    case MhmOperation::kClosure:
      return "NotifySubscriptionClosure";
  }
  return "SendSubscription";
}

std::string_view MhmSoapAction(MhmOperation operation) {
  switch (operation) {
    case MhmOperation::kSubscription:
      return "urn:be:fgov:ehealth:mycarenet:medicalHouseMembership:protocol:v1:SendSubscription";
    case MhmOperation::kCancellation:
      return "urn:be:fgov:ehealth:mycarenet:medicalHouseMembership:protocol:v1:CancelSubscription";
    case MhmOperation::kClosure:
      return "urn:be:fgov:ehealth:mycarenet:medicalHouseMembership:protocol:v1:"
             "NotifySubscriptionClosure";
  }
  return "";
}

std::string_view MhmTransactionCode(MhmOperation operation) {
  switch (operation) {
    case MhmOperation::kSubscription:
      return "maa";
    case MhmOperation::kCancellation:
      return "maacancellation";
    case MhmOperation::kClosure:
      return "maaclosure";
  }
  return "";
}

std::span<const MhmRuleSpec> MhmRuleTable() {
  return kRules;
}

const MhmRuleSpec& MhmRuleSpecFor(MhmRule rule) {
  return kRules[static_cast<std::size_t>(rule)];
}

std::string KmehrStandardOf(const xmlDoc* detail) {
  if (detail == nullptr) {
    return {};
  }
  const xmlNode* standard =
      Path(xmlDocGetRootElement(detail), {"kmehrmessage", "header", "standard"});
  const xmlNode* cd = ChildWith(standard, "cd", "S", "CD-STANDARD");
  return TrimmedContent(cd != nullptr ? cd : Child(standard, "cd"));
}

MhmFacts CheckMhmRules(const MhmRuleInput& input, std::vector<Problem>* problems) {
  MhmFacts facts;
  const xmlNode* envelope_root = xmlDocGetRootElement(input.envelope);
  Findings findings(problems, envelope_root != nullptr && envelope_root->name != nullptr
                                  ? std::string(reinterpret_cast<const char*>(envelope_root->name))
                                  : std::string());
  // Read first: the request author is compared with it.
  facts.care_provider_nihii = TrimmedContent(
      Path(envelope_root, {"CommonInput", "Origin", "CareProvider", "Nihii", "Value"}));
  if (input.detail != nullptr) {
    DetailChecker(input, &findings, &facts).Run(xmlDocGetRootElement(input.detail));
  }
  // After the detail, so the routing Ssin can be compared with the kmehr patient.
  CheckEnvelope(input, &findings, &facts);
  return facts;
}

}  // namespace psl::codecs
