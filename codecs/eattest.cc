#include "codecs/eattest.h"

#include <libxml/xmlsave.h>

#include <array>
#include <utility>

#include "base/brussels_time.h"
#include "base/random.h"
#include "base/x509.h"
#include "codecs/base64.h"
#include "codecs/blob.h"
#include "codecs/codec_util.h"
#include "codecs/identifiers.h"
#include "codecs/kmehr_util.h"
#include "codecs/mhm_codec.h"
#include "codecs/mhm_rules.h"
#include "codecs/seal.h"
#include "codecs/soap.h"
#include "codecs/xades.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

using R = EAttestRule;
using std::chrono::system_clock;
constexpr Severity kE = Severity::kError;
constexpr Severity kW = Severity::kWarning;

#define PSL_TX "/SendTransactionRequest/kmehrmessage/folder/transaction"

constexpr std::array kRules = {
    EAttestRuleSpec{R::kDetailRoot, "PSL-EATTEST-DETAIL-ROOT", "/", "detail", kE,
                    "the Detail payload must be a kmehr messageservices SendTransactionRequest"},
    EAttestRuleSpec{R::kRequestIdFormat, "111", "/SendTransactionRequest/request/id", "detail", kE,
                    "the request id must be <NIHII of 11 digits>.<yyyyMMddHHmmss>"},
    EAttestRuleSpec{R::kRequestAuthorMissing, "100",
                    "/SendTransactionRequest/request/author/hcparty", "detail", kE,
                    "the request author must carry an ID-HCPARTY NIHII"},
    EAttestRuleSpec{R::kRequestAuthorInvalid, "111",
                    "/SendTransactionRequest/request/author/hcparty/id", "detail", kE,
                    "the request author's NIHII must be 11 digits with valid check digits "
                    "(97 - base mod 97)"},
    EAttestRuleSpec{R::kRequestAuthorPractice, "155",
                    "/SendTransactionRequest/request/author/hcparty/id", "detail", kE,
                    "the request author's NIHII must equal CommonInput/Origin/CareProvider/Nihii/"
                    "Value and the authenticated practice"},
    EAttestRuleSpec{R::kRequestDateFuture, "146", "/SendTransactionRequest/request/date", "detail",
                    kE, "the request date must not be after today (Europe/Brussels)"},
    EAttestRuleSpec{R::kHeaderStandard, "130",
                    "/SendTransactionRequest/kmehrmessage/header/standard/cd[CD-STANDARD]",
                    "detail", kE,
                    "the kmehr header standard (CD-STANDARD) must be a value a supported kmehr "
                    "version knows"},
    EAttestRuleSpec{R::kHeaderSenderMissing, "100",
                    "/SendTransactionRequest/kmehrmessage/header/sender/hcparty", "detail", kE,
                    "the kmehr header sender must carry an ID-HCPARTY NIHII"},
    EAttestRuleSpec{R::kHeaderSenderInvalid, "111",
                    "/SendTransactionRequest/kmehrmessage/header/sender/hcparty/id", "detail", kE,
                    "the kmehr header sender's NIHII must be 11 digits with valid check digits"},
    EAttestRuleSpec{R::kHeaderSenderAuthor, "156",
                    "/SendTransactionRequest/kmehrmessage/header/sender/hcparty/id", "detail", kE,
                    "the kmehr header sender's NIHII must equal the request author's"},
    EAttestRuleSpec{R::kRecipientMissing, "100",
                    "/SendTransactionRequest/kmehrmessage/header/recipient/hcparty", "detail", kE,
                    "the kmehr header recipient must have a hcparty name"},
    EAttestRuleSpec{R::kRecipientNotMycarenet, "111",
                    "/SendTransactionRequest/kmehrmessage/header/recipient/hcparty/name", "detail",
                    kE, "the kmehr header recipient's name must be mycarenet"},
    EAttestRuleSpec{R::kPatientNiss, "111",
                    "/SendTransactionRequest/kmehrmessage/folder/patient/id", "detail", kE,
                    "the patient's ID-PATIENT must be a NISS or BIS number (11 digits, check "
                    "digits 97 - n mod 97)"},
    EAttestRuleSpec{R::kPatientRouting, "155",
                    "/SendTransactionRequest/kmehrmessage/folder/patient/id", "detail", kE,
                    "the patient's ID-PATIENT must equal Routing/CareReceiver/Ssin"},
    EAttestRuleSpec{R::kNoCga, "100", "/SendTransactionRequest/kmehrmessage/folder", "detail", kE,
                    "a SendAttestation needs exactly one transaction cga"},
    EAttestRuleSpec{R::kNoCgd, "100", "/SendTransactionRequest/kmehrmessage/folder", "detail", kE,
                    "a SendAttestation needs at least one transaction cgd"},
    EAttestRuleSpec{R::kNoCancellation, "PSL-EATTEST-NO-CGACANCELLATION",
                    "/SendTransactionRequest/kmehrmessage/folder", "detail", kE,
                    "a CancelAttestation needs exactly one transaction cgacancellation"},
    EAttestRuleSpec{R::kTransactionCd, "130", PSL_TX "/cd[CD-TRANSACTION-MYCARENET]", "detail", kE,
                    "the transaction CD-TRANSACTION-MYCARENET must be cga or cgd for "
                    "SendAttestation, cgacancellation for CancelAttestation"},
    EAttestRuleSpec{R::kCgaId, "111", PSL_TX "[cga]/id", "detail", kE,
                    "the transaction needs an ID-KMEHR id that is a positive integer"},
    EAttestRuleSpec{R::kCgdId, "111", PSL_TX "[cgd]/id", "detail", kE,
                    "the transaction needs an ID-KMEHR id that is a positive integer"},
    EAttestRuleSpec{R::kCgaDateFuture, "146", PSL_TX "[cga]/date", "detail", kE,
                    "the cga transaction date must not be after today (Europe/Brussels)"},
    EAttestRuleSpec{R::kCgdDateFuture, "146", PSL_TX "[cgd]/date", "detail", kE,
                    "the cgd transaction date must not be after today (Europe/Brussels)"},
    EAttestRuleSpec{R::kCgaAuthorMissing, "100", PSL_TX "[cga]/author/hcparty", "detail", kE,
                    "the attesting care provider (cga author) must carry an ID-HCPARTY NIHII"},
    EAttestRuleSpec{R::kCgaAuthorInvalid, "111", PSL_TX "[cga]/author/hcparty/id", "detail", kE,
                    "the cga author's NIHII must be 11 digits with valid check digits"},
    EAttestRuleSpec{R::kCgaAuthorRequest, "156", PSL_TX "[cga]/author/hcparty/id", "detail", kE,
                    "the cga author's NIHII must equal the request author's"},
    EAttestRuleSpec{R::kCgdAuthorMissing, "100", PSL_TX "[cgd]/author/hcparty", "detail", kE,
                    "the care provider of the act (cgd author) must carry an ID-HCPARTY NIHII"},
    EAttestRuleSpec{R::kCgdAuthorInvalid, "111", PSL_TX "[cgd]/author/hcparty/id", "detail", kE,
                    "the cgd author's NIHII must be 11 digits with valid check digits"},
    EAttestRuleSpec{R::kPatientPaidMissing, "100", PSL_TX "[cga]", "detail", kE,
                    "the cga transaction needs a patientpaid item (amount charged to the patient)"},
    EAttestRuleSpec{R::kPatientPaidFormat, "111", PSL_TX "[cga]/item[patientpaid]/cost/decimal",
                    "detail", kE, "patientpaid needs cost/decimal: digits with at most 2 decimals"},
    EAttestRuleSpec{R::kPatientPaidValue, "130", PSL_TX "[cga]/item[patientpaid]/cost/decimal",
                    "detail", kE, "patientpaid must not be negative"},
    EAttestRuleSpec{R::kSupplementFormat, "111", PSL_TX "[cga]/item[supplement]/cost/decimal",
                    "detail", kE, "supplement needs cost/decimal: digits with at most 2 decimals"},
    EAttestRuleSpec{R::kSupplementValue, "130", PSL_TX "[cga]/item[supplement]/cost/decimal",
                    "detail", kE, "supplement must not be negative"},
    EAttestRuleSpec{R::kCurrency, "PSL-EATTEST-CURRENCY", PSL_TX "/item/cost/unit/cd", "detail", kE,
                    "an amount's unit must be cd S=\"CD-CURRENCY\" EUR"},
    EAttestRuleSpec{R::kCgdAmount, "PSL-EATTEST-AMOUNT", PSL_TX "[cgd]/item/cost/decimal", "detail",
                    kE,
                    "a cgd amount (patientpaid, supplement) must be >= 0 with at most 2 decimals"},
    EAttestRuleSpec{R::kPaymentReceivingPartyFormat, "111",
                    PSL_TX "[cga]/item[paymentreceivingparty]/content/id", "detail", kE,
                    "paymentreceivingparty needs a content/id S=\"ID-CBE\": a CBE number of 10 "
                    "digits with valid check digits"},
    EAttestRuleSpec{R::kClaimMissing, "100", PSL_TX "[cgd]/item[claim]", "detail", kE,
                    "each cgd needs a claim item with a content/cd S=\"CD-NIHDI\" (nomenclature "
                    "code)"},
    EAttestRuleSpec{R::kClaimCode, "130", PSL_TX "[cgd]/item[claim]/content/cd[CD-NIHDI]", "detail",
                    kE, "the CD-NIHDI nomenclature code must be 6 digits"},
    EAttestRuleSpec{R::kClaimNormMissing, "100", PSL_TX "[cgd]/item[claim]", "detail", kE,
                    "the claim needs a content/cd S=\"LOCAL\" SL=\"NIHDI-CLAIM-NORM\""},
    EAttestRuleSpec{R::kQuantityMissing, "100", PSL_TX "[cgd]/item[claim]", "detail", kE,
                    "the claim needs a quantity/decimal (number of acts)"},
    EAttestRuleSpec{R::kQuantityFormat, "111", PSL_TX "[cgd]/item[claim]/quantity/decimal",
                    "detail", kE, "the number of acts must be a positive integer"},
    EAttestRuleSpec{R::kEncounterMissing, "100", PSL_TX "[cgd]", "detail", kE,
                    "each cgd needs an encounterdatetime item with content/date (date of the act)"},
    EAttestRuleSpec{R::kEncounterFuture, "146", PSL_TX "[cgd]/item[encounterdatetime]/content/date",
                    "detail", kE, "the date of the act must not be after today (Europe/Brussels)"},
    EAttestRuleSpec{R::kRequestorNihiiMissing, "100", PSL_TX "[cgd]/item[requestor]", "detail", kE,
                    "a requestor item needs a content/hcparty with an ID-HCPARTY NIHII"},
    EAttestRuleSpec{R::kRequestorNihii, "111", PSL_TX "[cgd]/item[requestor]/content/hcparty/id",
                    "detail", kE,
                    "the requestor's NIHII must be 11 digits with valid check digits"},
    EAttestRuleSpec{R::kRequestorDateFuture, "146", PSL_TX "[cgd]/item[requestor]/content/date",
                    "detail", kE, "the prescription date must not be after today"},
    EAttestRuleSpec{R::kGmdManagerNihii, "111", PSL_TX "[cgd]/item[gmdmanager]/content/hcparty/id",
                    "detail", kE,
                    "the GMD holder's NIHII must be 11 digits with valid check digits"},
    EAttestRuleSpec{R::kInvoicingNumberMissing, "100", PSL_TX "[cgacancellation]", "detail", kE,
                    "the cgacancellation needs an invoicingnumber item"},
    EAttestRuleSpec{R::kInvoicingNumberText, "100",
                    PSL_TX "[cgacancellation]/item[invoicingnumber]", "detail", kE,
                    "the invoicingnumber item needs a content/text (the number to cancel)"},
    EAttestRuleSpec{R::kInvoicingNumberFormat, "111",
                    PSL_TX "[cgacancellation]/item[invoicingnumber]/content/text", "detail", kE,
                    "the invoicing number must be 1 to 64 characters among letters, digits and "
                    ". _ / -"},
    EAttestRuleSpec{R::kCancellationReasonMissing, "100",
                    PSL_TX "[cgacancellation]/item[invoicingnumber]", "detail", kE,
                    "the invoicingnumber item needs a content/cd SL=\"NIHDI-CANCELLATION-REASON\""},
    EAttestRuleSpec{R::kEnvelopeNihii, "PSL-EATTEST-NIHII",
                    "/CommonInput/Origin/CareProvider/Nihii/Value", "envelope", kE,
                    "CareProvider/Nihii/Value must be an 11-digit NIHII with valid check digits "
                    "(97 - base mod 97)"},
    EAttestRuleSpec{R::kEnvelopeNihiiMod89, "PSL-NIHII-MOD89",
                    "/CommonInput/Origin/CareProvider/Nihii/Value", "envelope", kW,
                    "CareProvider/Nihii/Value passes only the 89 - base mod 89 check variant"},
    EAttestRuleSpec{R::kEnvelopePractice, "PSL-EATTEST-NOT-PRACTICE",
                    "/CommonInput/Origin/CareProvider/Nihii/Value", "envelope", kE,
                    "CareProvider/Nihii/Value must be the NIHII of the authenticated practice"},
    EAttestRuleSpec{R::kRoutingSsin, "PSL-EATTEST-ROUTING-SSIN", "/Routing/CareReceiver/Ssin",
                    "envelope", kE,
                    "Routing/CareReceiver/Ssin must be present and be a NISS or BIS number (11 "
                    "digits, check digits 97 - n mod 97)"},
    EAttestRuleSpec{R::kDetailContentType, "PSL-BLOB-CONTENTTYPE", "/Detail", "envelope", kE,
                    "Detail/@ContentType must be text/xml for eAttest"},
    EAttestRuleSpec{R::kDetailEncrypted, "PSL-EATTEST-ENCRYPTED", "/Detail", "envelope", kE,
                    "send the Detail unsealed: no ContentEncryption (Passerelle seals it for "
                    "MyCareNet)"},
    EAttestRuleSpec{R::kOuterXades, "PSL-EATTEST-XADES", "/Xades", "envelope", kE,
                    "send no Xades: eAttest v3 carries its signature inside the sealed content, "
                    "which Passerelle builds"},
};
#undef PSL_TX

constexpr bool RulesFollowTheEnumeration() {
  for (std::size_t i = 0; i < kRules.size(); ++i) {
    if (static_cast<std::size_t>(kRules[i].rule) != i) {
      return false;
    }
  }
  return kRules.back().rule == R::kOuterXades;
}
static_assert(RulesFollowTheEnumeration());

// --- small readers -------------------------------------------------------------------------

enum class Amount { kOk, kFormat, kNegative };

// An amount: digits with at most 2 decimals; a leading '-' makes it negative.
Amount CheckAmount(std::string_view s) {
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  const std::size_t dot = s.find('.');
  const std::string_view whole = s.substr(0, dot);
  const std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : s.substr(dot + 1);
  if (!AllDigits(whole) || whole.size() > 9 ||
      (dot != std::string_view::npos && (frac.empty() || frac.size() > 2 || !AllDigits(frac)))) {
    return Amount::kFormat;
  }
  if (negative && s.find_first_not_of("0.") != std::string_view::npos) {
    return Amount::kNegative;
  }
  return Amount::kOk;
}

using Findings = KmehrFindings<&EAttestRuleSpecFor>;

// The ID-HCPARTY of the first hcparty of `container` that has one; reports missing/invalid;
// *valid when it is an 11-digit NIHII with valid check digits.
std::string CheckPartyNihii(const xmlNode* container, const xmlNode* fallback, R missing, R invalid,
                            Findings* f, bool* valid) {
  return CheckHcpartyNihii(container, fallback, missing, invalid, std::nullopt, f, valid);
}

void CheckNotFuture(const xmlNode* date_node, std::chrono::year_month_day today, R rule,
                    Findings* f) {
  const auto d = ParseKmehrDate(TrimmedContent(date_node));
  if (d && *d > today) {
    f->Add(rule, date_node);
  }
}

struct Facts {
  std::string care_provider_nihii;
  bool care_provider_valid = false;
  std::string routing_ssin;
  bool routing_ssin_valid = false;
  std::string mutuality;
  std::string request_id;
  std::string invoicing_number;
};

struct RuleInput {
  EAttestOperation operation = EAttestOperation::kSend;
  const xmlDoc* envelope = nullptr;
  const xmlDoc* detail = nullptr;
  std::string_view practice_nihii;
  std::chrono::year_month_day today{};
  bool standard_known = true;
};

class DetailChecker {
 public:
  DetailChecker(const RuleInput& in, Findings* f, Facts* facts) : in_(in), f_(f), facts_(facts) {}

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
    bool valid = false;
    author_ = CheckPartyNihii(Child(request, "author"), anchor, R::kRequestAuthorMissing,
                              R::kRequestAuthorInvalid, f_, &valid);
    author_valid_ = valid;
    if (author_valid_) {
      const bool differs_envelope =
          facts_->care_provider_valid && author_ != facts_->care_provider_nihii;
      const bool differs_practice = !in_.practice_nihii.empty() && author_ != in_.practice_nihii;
      if (differs_envelope || differs_practice) {
        f_->Add(R::kRequestAuthorPractice,
                ChildWith(Child(Child(request, "author"), "hcparty"), "id", "S", "ID-HCPARTY"));
      }
    }
    const xmlNode* id = Child(request, "id");
    facts_->request_id = TrimmedContent(id);
    if (!IsKmehrRequestId(facts_->request_id) ||
        (author_valid_ && facts_->request_id.substr(0, 11) != author_)) {
      f_->Add(R::kRequestIdFormat, id != nullptr ? id : anchor);
    }
    CheckNotFuture(Child(request, "date"), in_.today, R::kRequestDateFuture, f_);
  }

  void CheckHeader() {
    const xmlNode* message = Child(root_, "kmehrmessage");
    const xmlNode* header = Child(message, "header");
    const xmlNode* anchor = header != nullptr ? header : (message != nullptr ? message : root_);
    if (!in_.standard_known) {
      const xmlNode* standard = Child(header, "standard");
      f_->Add(R::kHeaderStandard, standard != nullptr ? standard : anchor);
    }
    const xmlNode* sender = Child(header, "sender");
    bool valid = false;
    const std::string sender_nihii = CheckPartyNihii(sender, anchor, R::kHeaderSenderMissing,
                                                     R::kHeaderSenderInvalid, f_, &valid);
    if (valid && author_valid_ && sender_nihii != author_) {
      f_->Add(R::kHeaderSenderAuthor, sender);
    }
    CheckMycarenetRecipient(header, anchor, R::kRecipientMissing, R::kRecipientNotMycarenet, f_);
  }

  void CheckFolder() {
    const xmlNode* message = Child(root_, "kmehrmessage");
    const xmlNode* folder = Child(message, "folder");
    const xmlNode* anchor = folder != nullptr ? folder : (message != nullptr ? message : root_);
    const xmlNode* patient = Child(folder, "patient");
    const xmlNode* niss = ChildWith(patient, "id", "S", "ID-PATIENT");
    const std::string niss_value = TrimmedContent(niss);
    const NissResult r = CheckNiss(niss_value, static_cast<int>(in_.today.year()));
    if (!r.ok()) {
      f_->Add(R::kPatientNiss, niss != nullptr ? niss : (patient != nullptr ? patient : anchor),
              IdCheckText(r.check));
    } else if (facts_->routing_ssin_valid && niss_value != facts_->routing_ssin) {
      f_->Add(R::kPatientRouting, niss);
    }

    std::vector<const xmlNode*> cga;
    std::vector<const xmlNode*> cgd;
    std::vector<const xmlNode*> cancellation;
    for (const xmlNode* tx : Children(folder, "transaction")) {
      const xmlNode* cd = ChildWith(tx, "cd", "S", "CD-TRANSACTION-MYCARENET");
      const std::string code = TrimmedContent(cd);
      const bool send = in_.operation == EAttestOperation::kSend;
      if (send && code == "cga") {
        cga.push_back(tx);
      } else if (send && code == "cgd") {
        cgd.push_back(tx);
      } else if (!send && code == "cgacancellation") {
        cancellation.push_back(tx);
      } else {
        f_->Add(R::kTransactionCd, cd != nullptr ? cd : tx);
      }
    }
    if (in_.operation == EAttestOperation::kSend) {
      if (cga.size() != 1) {
        f_->Add(R::kNoCga, cga.size() > 1 ? cga[1] : anchor);
      }
      if (cgd.empty()) {
        f_->Add(R::kNoCgd, anchor);
      }
      for (const xmlNode* tx : cga) {
        CheckCga(tx);
      }
      for (const xmlNode* tx : cgd) {
        CheckCgd(tx);
      }
    } else {
      if (cancellation.size() != 1) {
        f_->Add(R::kNoCancellation, cancellation.size() > 1 ? cancellation[1] : anchor);
      }
      for (const xmlNode* tx : cancellation) {
        CheckCancellation(tx);
      }
    }
  }

  void CheckTransactionId(const xmlNode* tx, R rule) {
    const xmlNode* id = ChildWith(tx, "id", "S", "ID-KMEHR");
    if (!IsPositiveInteger(TrimmedContent(id))) {
      f_->Add(rule, id != nullptr ? id : tx);
    }
  }

  void CheckCurrency(const xmlNode* cost) {
    const xmlNode* unit_cd = Child(Child(cost, "unit"), "cd");
    std::string unit = TrimmedContent(unit_cd);
    for (char& c : unit) {
      c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    if (Attr(unit_cd, "S") != "CD-CURRENCY" || unit != "EUR") {
      f_->Add(R::kCurrency, unit_cd != nullptr ? unit_cd : cost);
    }
  }

  // cost/decimal of `item`: format and sign rules, currency.
  void CheckCost(const xmlNode* item, R format, R negative) {
    const xmlNode* cost = Child(item, "cost");
    const xmlNode* decimal = Child(cost, "decimal");
    switch (CheckAmount(TrimmedContent(decimal))) {
      case Amount::kOk:
        break;
      case Amount::kFormat:
        f_->Add(format, decimal != nullptr ? decimal : ItemAnchor(item));
        break;
      case Amount::kNegative:
        f_->Add(negative, decimal);
        break;
    }
    if (cost != nullptr) {
      CheckCurrency(cost);
    }
  }

  void CheckCga(const xmlNode* tx) {
    CheckTransactionId(tx, R::kCgaId);
    CheckNotFuture(Child(tx, "date"), in_.today, R::kCgaDateFuture, f_);
    bool valid = false;
    const std::string author = CheckPartyNihii(Child(tx, "author"), tx, R::kCgaAuthorMissing,
                                               R::kCgaAuthorInvalid, f_, &valid);
    if (valid && author_valid_ && author != author_) {
      f_->Add(R::kCgaAuthorRequest, Child(tx, "author"));
    }
    const xmlNode* paid = ItemOfType(tx, "patientpaid");
    if (paid == nullptr) {
      f_->Add(R::kPatientPaidMissing, tx);
    } else {
      CheckCost(paid, R::kPatientPaidFormat, R::kPatientPaidValue);
    }
    if (const xmlNode* supplement = ItemOfType(tx, "supplement")) {
      CheckCost(supplement, R::kSupplementFormat, R::kSupplementValue);
    }
    if (const xmlNode* party = ItemOfType(tx, "paymentreceivingparty")) {
      const xmlNode* cbe = ContentChild(party, "id", "S", "ID-CBE");
      if (cbe == nullptr || CheckCbe(TrimmedContent(cbe)) != IdCheck::kValid) {
        f_->Add(R::kPaymentReceivingPartyFormat, cbe != nullptr ? cbe : ItemAnchor(party));
      }
    }
  }

  void CheckCgd(const xmlNode* tx) {
    CheckTransactionId(tx, R::kCgdId);
    CheckNotFuture(Child(tx, "date"), in_.today, R::kCgdDateFuture, f_);
    bool valid = false;
    (void)CheckPartyNihii(Child(tx, "author"), tx, R::kCgdAuthorMissing, R::kCgdAuthorInvalid, f_,
                          &valid);
    const xmlNode* claim = ItemOfType(tx, "claim");
    const xmlNode* code = ContentChild(claim, "cd", "S", "CD-NIHDI");
    if (claim == nullptr || code == nullptr) {
      f_->Add(R::kClaimMissing, claim != nullptr ? ItemAnchor(claim) : tx);
    } else {
      const std::string v = TrimmedContent(code);
      if (v.size() != 6 || !AllDigits(v)) {
        f_->Add(R::kClaimCode, code);
      }
    }
    if (claim != nullptr) {
      if (ContentChild(claim, "cd", "SL", "NIHDI-CLAIM-NORM") == nullptr) {
        f_->Add(R::kClaimNormMissing, ItemAnchor(claim));
      }
      const xmlNode* quantity = Child(Child(claim, "quantity"), "decimal");
      if (quantity == nullptr) {
        f_->Add(R::kQuantityMissing, ItemAnchor(claim));
      } else if (!IsPositiveInteger(TrimmedContent(quantity)) ||
                 TrimmedContent(quantity).size() > 4) {
        f_->Add(R::kQuantityFormat, quantity);
      }
    }
    const xmlNode* encounter = ItemOfType(tx, "encounterdatetime");
    const xmlNode* date = ContentChild(encounter, "date");
    if (date == nullptr) {
      f_->Add(R::kEncounterMissing, encounter != nullptr ? ItemAnchor(encounter) : tx);
    } else {
      CheckNotFuture(date, in_.today, R::kEncounterFuture, f_);
    }
    for (const char* type : {"patientpaid", "supplement"}) {
      if (const xmlNode* item = ItemOfType(tx, type)) {
        CheckCost(item, R::kCgdAmount, R::kCgdAmount);
      }
    }
    if (const xmlNode* requestor = ItemOfType(tx, "requestor")) {
      bool ok = false;
      (void)CheckPartyNihii(
          ContentChild(requestor, "hcparty") != nullptr ? ContentChild(requestor, "hcparty")->parent
                                                        : nullptr,
          ItemAnchor(requestor), R::kRequestorNihiiMissing, R::kRequestorNihii, f_, &ok);
      CheckNotFuture(ContentChild(requestor, "date"), in_.today, R::kRequestorDateFuture, f_);
    }
    if (const xmlNode* gmd = ItemOfType(tx, "gmdmanager")) {
      const xmlNode* party = ContentChild(gmd, "hcparty");
      const xmlNode* id = ChildWith(party, "id", "S", "ID-HCPARTY");
      const std::string v = TrimmedContent(id);
      const NihiiResult r = CheckNihii(v);
      if (!r.ok() || v.size() != 11) {
        f_->Add(R::kGmdManagerNihii, id != nullptr ? id : ItemAnchor(gmd));
      }
    }
  }

  void CheckCancellation(const xmlNode* tx) {
    const xmlNode* item = ItemOfType(tx, "invoicingnumber");
    if (item == nullptr) {
      f_->Add(R::kInvoicingNumberMissing, tx);
      return;
    }
    const xmlNode* text = ContentChild(item, "text");
    facts_->invoicing_number = TrimmedContent(text);
    if (text == nullptr) {
      f_->Add(R::kInvoicingNumberText, ItemAnchor(item));
    } else if (!IsDecisionReference(facts_->invoicing_number)) {
      f_->Add(R::kInvoicingNumberFormat, text);
    }
    if (ContentChild(item, "cd", "SL", "NIHDI-CANCELLATION-REASON") == nullptr) {
      f_->Add(R::kCancellationReasonMissing, ItemAnchor(item));
    }
  }

  const RuleInput& in_;
  Findings* f_;
  Facts* facts_;
  const xmlNode* root_ = nullptr;
  std::string author_;
  bool author_valid_ = false;
};

// Envelope rules read first: the detail rules compare with the care provider and the Ssin.
void CheckEnvelope(const RuleInput& in, Findings* f, Facts* facts) {
  const xmlNode* root = xmlDocGetRootElement(const_cast<xmlDoc*>(in.envelope));
  const xmlNode* nihii =
      Child(Child(Child(Child(root, "CommonInput"), "Origin"), "CareProvider"), "Nihii");
  const xmlNode* value = Child(nihii, "Value");
  facts->care_provider_nihii = TrimmedContent(value);
  const xmlNode* anchor = value != nullptr ? value : (nihii != nullptr ? nihii : root);
  const NihiiResult r = CheckNihii(facts->care_provider_nihii);
  if (!r.ok() || facts->care_provider_nihii.size() != 11) {
    f->Add(R::kEnvelopeNihii, anchor,
           facts->care_provider_nihii.empty() ? std::string_view("the value is absent")
           : r.ok()                           ? std::string_view("an 11-digit form is required")
                                              : IdCheckText(r.check));
  } else {
    facts->care_provider_valid = true;
    if (r.mod89) {
      f->Add(R::kEnvelopeNihiiMod89, value);
    }
    if (!in.practice_nihii.empty() && facts->care_provider_nihii != in.practice_nihii) {
      f->Add(R::kEnvelopePractice, value);
    }
  }
  const xmlNode* receiver = Child(Child(root, "Routing"), "CareReceiver");
  const xmlNode* ssin = Child(receiver, "Ssin");
  facts->routing_ssin = TrimmedContent(ssin);
  facts->mutuality = TrimmedContent(Child(receiver, "Mutuality"));
  const NissResult n = CheckNiss(facts->routing_ssin, static_cast<int>(in.today.year()));
  if (!n.ok()) {
    f->Add(R::kRoutingSsin, ssin != nullptr ? ssin : (receiver != nullptr ? receiver : root),
           facts->routing_ssin.empty() ? std::string_view("the value is absent")
                                       : IdCheckText(n.check));
  } else {
    facts->routing_ssin_valid = true;
  }
}

Facts CheckRules(const RuleInput& in, std::vector<Problem>* problems) {
  Facts facts;
  const xmlNode* root = xmlDocGetRootElement(const_cast<xmlDoc*>(in.envelope));
  Findings findings(problems, root != nullptr ? FromXmlChar(root->name) : "");
  if (in.envelope != nullptr) {
    CheckEnvelope(in, &findings, &facts);
  }
  if (in.detail != nullptr) {
    DetailChecker(in, &findings, &facts).Run(xmlDocGetRootElement(const_cast<xmlDoc*>(in.detail)));
  }
  return facts;
}

Status Summarise(StatusCode code, const std::vector<Problem>& problems) {
  return SummariseProblems(code, problems, "the eAttest request");
}

}  // namespace

std::span<const EAttestRuleSpec> EAttestRuleTable() {
  return kRules;
}
const EAttestRuleSpec& EAttestRuleSpecFor(EAttestRule rule) {
  return kRules[static_cast<std::size_t>(rule)];
}

std::string_view EAttestOperationName(EAttestOperation operation) {
  return operation == EAttestOperation::kSend ? "SendAttestation" : "CancelAttestation";
}
std::string_view EAttestSoapAction(EAttestOperation operation) {
  return operation == EAttestOperation::kSend
             ? "urn:be:fgov:ehealth:mycarenet:attest:protocol:v3:SendAttestation"
             : "urn:be:fgov:ehealth:mycarenet:attest:protocol:v3:CancelAttestation";
}
std::string_view EAttestResponseElement(EAttestOperation operation) {
  return operation == EAttestOperation::kSend ? "SendAttestationResponse"
                                              : "CancelAttestationResponse";
}

std::optional<EAttestOperation> EAttestCodec::OperationOf(const xmlNode* root) {
  if (IsElement(root, kEAttestNamespace, "SendAttestationRequest")) {
    return EAttestOperation::kSend;
  }
  if (IsElement(root, kEAttestNamespace, "CancelAttestationRequest")) {
    return EAttestOperation::kCancel;
  }
  return std::nullopt;
}

EAttestCodec::EAttestCodec(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits)
    : schemas_(schemas), clock_(clock), limits_(limits) {}

StatusOr<EAttestRequest> EAttestCodec::Decode(std::string_view bytes,
                                              std::string_view practice_nihii,
                                              ValidationReport* report) const {
  StatusOr<XmlDocPtr> doc = ParseEnvelopeReporting(bytes, limits_, &report->problems);
  if (!doc.ok()) {
    return doc.status();
  }
  return DecodeParsed(std::move(doc).value(), practice_nihii, report);
}

StatusOr<EAttestRequest> EAttestCodec::DecodeParsed(XmlDocPtr envelope,
                                                    std::string_view practice_nihii,
                                                    ValidationReport* report) const {
  std::vector<Problem>& problems = report->problems;
  xmlNode* root = xmlDocGetRootElement(envelope.get());
  const std::optional<EAttestOperation> operation = OperationOf(root);
  if (!operation) {
    Problem p;
    p.code = "PSL-FLOW-UNKNOWN";
    p.message =
        "the root element must be SendAttestationRequest or CancelAttestationRequest in "
        "namespace " +
        std::string(kEAttestNamespace);
    p.line = Line(root);
    p.path = root != nullptr ? NodePath(root) : "/";
    problems.push_back(std::move(p));
    return Summarise(StatusCode::kInvalid, problems);
  }
  report->kind = "claim";
  report->flow = "eattest";
  report->operation = std::string(EAttestOperationName(*operation));

  EAttestRequest request;
  request.operation = *operation;
  request.envelope_id = Attr(root, "Id");
  (void)schemas_.ValidateEnvelope(EnvelopeSchema::kEAttest, envelope.get(), "envelope", &problems);

  Findings envelope_findings(&problems, FromXmlChar(root->name));
  bool malformed = false;
  XmlDocPtr detail_doc;
  if (const xmlNode* detail = Child(root, kCommonsProtocolV4Ns, "Detail"); detail != nullptr) {
    request.detail_id = Attr(detail, "Id");
    bool refused = false;
    if (Attr(detail, "ContentType") != "text/xml") {
      envelope_findings.Add(R::kDetailContentType, detail);
      refused = true;
    }
    if (HasAttr(detail, "ContentEncryption")) {
      envelope_findings.Add(R::kDetailEncrypted, detail);
      refused = true;
    }
    std::string encoding;
    if (!ReadBlobEncoding(detail, &encoding, &problems)) {
      refused = true;
    }
    if (!refused) {
      std::optional<std::string> payload =
          DecodeBlobContent(detail, encoding, limits_.max_bytes, &problems);
      if (!payload) {
        malformed = true;
      } else {
        detail_doc = ParseDetailPayload(*payload, detail, limits_, &problems);
        if (detail_doc != nullptr) {
          request.detail_xml = std::move(*payload);
        } else {
          malformed = true;
        }
      }
    }
  }
  if (const xmlNode* xades = Child(root, kCommonsProtocolV4Ns, "Xades"); xades != nullptr) {
    envelope_findings.Add(R::kOuterXades, xades);
  }

  bool standard_known = true;
  if (detail_doc) {
    if (const std::string standard = KmehrStandardOf(detail_doc.get()); !standard.empty()) {
      request.kmehr_version = schemas_.KmehrVersionFor(standard);
    }
    standard_known = !request.kmehr_version.empty();
    if (standard_known) {
      (void)schemas_.ValidateKmehrRequest(request.kmehr_version, detail_doc.get(), "detail",
                                          &problems);
    }
  }
  RuleInput in;
  in.operation = *operation;
  in.envelope = envelope.get();
  in.detail = detail_doc.get();
  in.practice_nihii = practice_nihii;
  in.today = BrusselsToday(clock_);
  in.standard_known = standard_known;
  Facts facts = CheckRules(in, &problems);
  if (HasErrors(problems)) {
    return Summarise(malformed ? StatusCode::kMalformed : StatusCode::kInvalid, problems);
  }
  request.care_provider_nihii = std::move(facts.care_provider_nihii);
  request.patient_ssin = std::move(facts.routing_ssin);
  request.mutuality = std::move(facts.mutuality);
  request.request_id = std::move(facts.request_id);
  request.invoicing_number = std::move(facts.invoicing_number);
  request.envelope = std::move(envelope);
  return request;
}

// --- sealing, both directions ----------------------------------------------------------------
namespace {

constexpr char kEAttestCdStandard[] = "20210120";

// The XAdES profile of codecs/xades.h signs Detail of a commons v3 document by Id. The same
// signature covers BusinessContent: its data reference is "#<id>" with transforms base64 →
// exc-c14n over the element's text, which is what the wrapper's Detail holds. So the signature
// is made and checked over a wrapper document that carries BusinessContent's id and text.
std::string SignatureWrapper(const std::string& id, const std::string& content_b64,
                             const std::string& xades_b64) {
  std::string w = "<w:Wrapper xmlns:w=\"";
  w += kCommonsProtocolNs;
  w += "\"><w:Detail ContentType=\"text/xml\" ContentEncoding=\"none\" Id=\"" + id + "\">" +
       content_b64 + "</w:Detail>";
  if (!xades_b64.empty()) {
    w += "<w:Xades>" + xades_b64 + "</w:Xades>";
  }
  w += "</w:Wrapper>";
  return w;
}

// EncryptedKnownContent{Reply-to-Etk, BusinessContent, Xades} for `business_xml`, signed by
// `signer`, serialised.
StatusOr<std::string> BuildKnownContent(const std::string& business_xml,
                                        const SigningIdentity& signer, const Clock& clock) {
  const std::string id = "_" + RandomUuid();
  const std::string content_b64 = EncodeBase64(business_xml);
  StatusOr<std::string> signed_wrapper =
      SignBlobRequest(SignatureWrapper(id, content_b64, ""), signer, nullptr, clock);
  if (!signed_wrapper.ok()) {
    return signed_wrapper.status();
  }
  const std::size_t open = signed_wrapper->find("<w:Xades>");
  const std::size_t close = signed_wrapper->find("</w:Xades>");
  if (open == std::string::npos || close == std::string::npos) {
    return Status::Internal("the XAdES signature of BusinessContent is missing");
  }
  const std::string xades = signed_wrapper->substr(open + 9, close - open - 9);
  const std::string etk = EncodeBase64(CertificateDer(signer.certificate.get()));
  std::string ekc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<EncryptedKnownContent xmlns=\"";
  ekc += kEncryptedContentNs;
  ekc += "\"><Reply-to-Etk>" + etk + "</Reply-to-Etk><BusinessContent id=\"" + id + "\">" +
         content_b64 + "</BusinessContent><Xades>" + xades + "</Xades></EncryptedKnownContent>";
  return ekc;
}

struct OpenedContent {
  std::string business_xml;
  X509Ptr reply_to;
  std::string signer_subject;
};

// Unseals `sealed_b64`, checks the EncryptedKnownContent and its XAdES; same signer for both.
StatusOr<OpenedContent> OpenKnownContent(const std::string& sealed_b64,
                                         const SchemaRegistry& schemas,
                                         const SigningIdentity& recipient, X509_STORE* trust,
                                         const Clock& clock, const XmlLimits& limits) {
  StatusOr<std::string> sealed = DecodeBase64Of(sealed_b64, "the sealed Detail");
  if (!sealed.ok()) {
    return sealed.status();
  }
  StatusOr<Unsealed> unsealed = Unseal(*sealed, recipient, trust, clock);
  if (!unsealed.ok()) {
    return unsealed.status();
  }
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(unsealed->content, limits, nullptr);
  if (!doc.ok()) {
    return Status::Invalid("the sealed content is not well-formed XML");
  }
  std::vector<Problem> problems;
  if (!schemas.ValidateEnvelope(EnvelopeSchema::kEncryptedKnownContent, doc->get(), "sealed",
                                &problems)) {
    return Status::Invalid(
        "the sealed content is not a valid EncryptedKnownContent" +
        (problems.empty() ? std::string()
                          : ": " + problems.front().message + " (" + problems.front().path + ")"));
  }
  xmlNode* root = xmlDocGetRootElement(doc->get());
  const xmlNode* business = Child(root, kEncryptedContentNs, "BusinessContent");
  const xmlNode* xades = Child(root, kEncryptedContentNs, "Xades");
  const xmlNode* etk = Child(root, kEncryptedContentNs, "Reply-to-Etk");
  const std::string id = Attr(business, "id");
  if (business == nullptr || id.empty() || xades == nullptr) {
    return Status::Invalid("EncryptedKnownContent needs BusinessContent with an id and Xades");
  }
  const std::string wrapper = SignatureWrapper(id, TrimmedContent(business), TrimmedContent(xades));
  StatusOr<VerifiedSignature> verified = VerifyBlobRequest(wrapper, trust, clock);
  if (!verified.ok()) {
    return Status::Invalid("the XAdES of BusinessContent does not verify: " +
                           verified.status().message());
  }
  if (X509_cmp(verified->signer.get(), unsealed->signer.get()) != 0) {
    return Status::Invalid("the XAdES signer is not the CMS signer of the seal");
  }
  StatusOr<std::string> business_xml = DecodeBase64Of(Content(business), "BusinessContent");
  if (!business_xml.ok()) {
    return business_xml.status();
  }
  OpenedContent out;
  out.business_xml = std::move(business_xml).value();
  out.signer_subject = unsealed->signer_subject;
  if (etk != nullptr) {
    StatusOr<std::string> der = DecodeBase64Of(Content(etk), "Reply-to-Etk");
    if (!der.ok()) {
      return der.status();
    }
    out.reply_to = CertificateFromDer(*der);
    if (!out.reply_to) {
      return Status::Invalid("Reply-to-Etk is not a DER certificate");
    }
  }
  return out;
}

// Adds or replaces CommonInput/Attribute[Key=attemptNbr].
Status SetAttempt(xmlNode* root, int n) {
  if (n < 1) {
    return Status::Invalid("attemptNbr must be at least 1");
  }
  xmlNode* common = Child(root, kCommonsProtocolV4Ns, "CommonInput");
  if (common == nullptr) {
    return Status::Invalid("the request has no CommonInput");
  }
  const std::string value = std::to_string(n);
  for (xmlNode* attribute : Children(common, kCommonsCoreV4Ns, "Attribute")) {
    if (Attr(attribute, "Key") == kAttemptNbrKey) {
      xmlNode* v = Child(attribute, kCommonsCoreV4Ns, "Value");
      if (v == nullptr) {
        v = AddElement(attribute, attribute->ns, "Value");
      }
      xmlNodeSetContent(v, ToXmlChar(value));
      return Status::Ok();
    }
  }
  xmlNs* core = xmlSearchNsByHref(root->doc, common, ToXmlChar(kCommonsCoreV4Ns));
  if (core == nullptr) {
    core = xmlNewNs(common, ToXmlChar(kCommonsCoreV4Ns), ToXmlChar("mc4"));
  }
  xmlNode* attribute = AddElement(common, core, "Attribute");
  if (attribute == nullptr) {
    return Status::Internal("cannot add CommonInput/Attribute");
  }
  SetAttribute(attribute, "Key", std::string(kAttemptNbrKey));
  AddElement(attribute, core, "Value", &value);
  return Status::Ok();
}

std::string FirstProblem(const std::vector<Problem>& problems) {
  if (problems.empty()) {
    return "";
  }
  return ": " + problems.front().message + " (line " + std::to_string(problems.front().line) +
         ", " + problems.front().path + ")";
}

}  // namespace

StatusOr<std::string> PrepareForInsurer(const EAttestRequest& decoded,
                                        const SigningIdentity& signer,
                                        const X509* mycarenet_encryption_cert, int attempt_nbr,
                                        const SchemaRegistry& schemas, const Clock& clock) {
  if (attempt_nbr < 1) {
    return Status::Invalid("attemptNbr must be at least 1");
  }
  if (!decoded.envelope || decoded.detail_xml.empty()) {
    return Status::Invalid("the decoded request has no envelope or Detail payload");
  }
  if (mycarenet_encryption_cert == nullptr) {
    return Status::FailedPrecondition("no MyCareNet encryption certificate");
  }
  StatusOr<std::string> ekc = BuildKnownContent(decoded.detail_xml, signer, clock);
  if (!ekc.ok()) {
    return ekc.status();
  }
  StatusOr<std::string> sealed = Seal(*ekc, signer, {mycarenet_encryption_cert}, clock);
  if (!sealed.ok()) {
    return sealed.status();
  }
  XmlDocPtr doc(xmlCopyDoc(decoded.envelope.get(), 1));
  if (!doc) {
    return Status::Internal("cannot copy the request document");
  }
  xmlNode* root = xmlDocGetRootElement(doc.get());
  xmlNode* detail = Child(root, kCommonsProtocolV4Ns, "Detail");
  if (detail == nullptr) {
    return Status::Invalid("the request has no Detail");
  }
  for (xmlNode* xades : Children(root, kCommonsProtocolV4Ns, "Xades")) {
    xmlUnlinkNode(xades);
    xmlFreeNode(xades);
  }
  xmlNodeSetContent(detail, ToXmlChar(EncodeBase64(*sealed)));
  SetAttribute(detail, "ContentType", "text/xml");
  SetAttribute(detail, "ContentEncoding", "none");
  SetAttribute(detail, "ContentEncryption", std::string(kEncryptedForKnownBed));
  SetAttribute(detail, "MessageVersion", "3.0");
  if (Attr(detail, "Id").empty()) {
    SetAttribute(detail, "Id", "_" + RandomUuid());
  }
  if (Status s = SetAttempt(root, attempt_nbr); !s.ok()) {
    return s;
  }
  std::vector<Problem> problems;
  if (!schemas.ValidateEnvelope(EnvelopeSchema::kEAttest, doc.get(), "envelope", &problems)) {
    return Status::Internal("the prepared eAttest request fails its schema" +
                            FirstProblem(problems));
  }
  return SerialiseXml(doc.get());
}

StatusOr<std::string> PrepareRequestXmlForInsurer(std::string_view request_xml,
                                                  const SigningIdentity& signer,
                                                  const X509* mycarenet_encryption_cert,
                                                  int attempt_nbr, const SchemaRegistry& schemas,
                                                  const Clock& clock) {
  const XmlLimits limits;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(request_xml, limits, nullptr);
  if (!doc.ok()) {
    return Status::Malformed("the eAttest request does not parse");
  }
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  const std::optional<EAttestOperation> operation = EAttestCodec::OperationOf(root);
  const xmlNode* detail = Child(root, kCommonsProtocolV4Ns, "Detail");
  if (!operation || detail == nullptr || HasAttr(detail, "ContentEncryption")) {
    return Status::Invalid("not an unsealed eAttest v3 request");
  }
  std::vector<Problem> problems;
  std::string encoding;
  if (!ReadBlobEncoding(detail, &encoding, &problems)) {
    return Status::Invalid("the Detail's ContentEncoding is not none or deflate");
  }
  std::optional<std::string> payload =
      DecodeBlobContent(detail, encoding, limits.max_bytes, &problems);
  if (!payload) {
    return Status::Malformed("the Detail does not decode");
  }
  EAttestRequest request;
  request.operation = *operation;
  request.envelope_id = Attr(root, "Id");
  request.detail_xml = std::move(*payload);
  request.envelope = std::move(doc).value();
  return PrepareForInsurer(request, signer, mycarenet_encryption_cert, attempt_nbr, schemas, clock);
}

StatusOr<std::string> SetAttemptNumber(std::string_view request_xml, int n) {
  XmlLimits limits;
  limits.max_bytes = kMaxSealedBytes * 2;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(request_xml, limits, nullptr);
  if (!doc.ok()) {
    return Status::Malformed("the prepared eAttest request does not parse");
  }
  if (Status s = SetAttempt(xmlDocGetRootElement(doc->get()), n); !s.ok()) {
    return s;
  }
  return SerialiseXml(doc->get());
}

StatusOr<OpenedAttestation> OpenAtInsurer(std::string_view request_xml,
                                          const SchemaRegistry& schemas,
                                          const SigningIdentity& insurer, X509_STORE* trust,
                                          const Clock& clock, const XmlLimits& limits) {
  if (trust == nullptr) {
    return Status::FailedPrecondition("no trust store for the sender");
  }
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(request_xml, limits, &problem);
  if (!doc.ok()) {
    return doc.status();
  }
  xmlNode* root = xmlDocGetRootElement(doc->get());
  const std::optional<EAttestOperation> operation = EAttestCodec::OperationOf(root);
  if (!operation) {
    return Status::Invalid("not an eAttest v3 SendAttestationRequest or CancelAttestationRequest");
  }
  std::vector<Problem> problems;
  if (!schemas.ValidateEnvelope(EnvelopeSchema::kEAttest, doc->get(), "envelope", &problems)) {
    return Status::Invalid("the request fails the eAttest v3 schema" + FirstProblem(problems));
  }
  const xmlNode* detail = Child(root, kCommonsProtocolV4Ns, "Detail");
  if (Attr(detail, "ContentEncryption") != kEncryptedForKnownBed) {
    return Status::Invalid("Detail/@ContentEncryption must be encryptedForKnownBED");
  }
  if (Child(root, kCommonsProtocolV4Ns, "Xades") != nullptr) {
    return Status::Invalid("an eAttest v3 request carries no outer Xades");
  }
  StatusOr<OpenedContent> opened =
      OpenKnownContent(TrimmedContent(detail), schemas, insurer, trust, clock, limits);
  if (!opened.ok()) {
    return opened.status();
  }
  if (!opened->reply_to) {
    return Status::Invalid("EncryptedKnownContent has no Reply-to-Etk to seal the answer for");
  }
  StatusOr<XmlDocPtr> kmehr = ParseUntrustedXml(opened->business_xml, limits, nullptr);
  if (!kmehr.ok() || !MhmCodec::IsKmehrRequest(xmlDocGetRootElement(kmehr->get()))) {
    return Status::Invalid("BusinessContent is not a kmehr SendTransactionRequest");
  }
  OpenedAttestation out;
  out.operation = *operation;
  out.envelope_id = Attr(root, "Id");
  out.kmehr_xml = std::move(opened->business_xml);
  out.kmehr = std::move(kmehr).value();
  out.reply_to = std::move(opened->reply_to);
  out.signer_subject = std::move(opened->signer_subject);
  const xmlNode* common = Child(root, kCommonsProtocolV4Ns, "CommonInput");
  for (const xmlNode* attribute : Children(common, "Attribute")) {
    if (Attr(attribute, "Key") == kAttemptNbrKey) {
      const std::string v = TrimmedContent(Child(attribute, "Value"));
      if (IsPositiveInteger(v) && v.size() < 6) {
        out.attempt_nbr = std::stoi(v);
      }
    }
  }
  return out;
}

namespace {

StatusOr<std::string> BuildResponseKmehr(const OpenedAttestation& request,
                                         const EAttestResponseSpec& spec,
                                         system_clock::time_point now) {
  const xmlNode* req_root = xmlDocGetRootElement(request.kmehr.get());
  const xmlNode* req_request = Child(req_root, "request");
  const xmlNode* req_header = Child(Child(req_root, "kmehrmessage"), "header");
  const xmlNode* req_folder = Child(Child(req_root, "kmehrmessage"), "folder");
  if (req_request == nullptr || req_header == nullptr || Child(req_folder, "patient") == nullptr) {
    return Status::Invalid("the request's kmehr lacks request, header or folder/patient");
  }
  const KmehrAnswerer by{
      spec.insurer_code,
      spec.insurer_name.empty() ? "Insurer " + spec.insurer_code : spec.insurer_name,
      now + BrusselsUtcOffset(now)};
  StatusOr<KmehrAnswer> answer = StartKmehrAnswer(req_request, "1.34", by, "kmehr");
  if (!answer.ok()) {
    return answer.status();
  }
  AddKmehrAcknowledge(*answer, spec.accepted, spec.errors);
  if (spec.accepted && request.operation == EAttestOperation::kSend) {
    StatusOr<xmlNode*> transaction = AddKmehrAnswerTransaction(
        *answer, req_header, Child(req_folder, "patient"), by, "cga", "kmehr");
    if (!transaction.ok()) {
      return transaction.status();
    }
    xmlNode* tx = *transaction;
    xmlNs* kmehr = answer->kmehr;
    xmlNode* item = AddElement(tx, kmehr, "item");
    AddKmehrId(item, kmehr, "1");
    AddKmehrCd(item, kmehr, "CD-ITEM-MYCARENET", "1.6", "invoicingnumber");
    xmlNode* text =
        AddElement(AddElement(item, kmehr, "content"), kmehr, "text", spec.invoicing_number);
    SetAttribute(text, "L", "en");
  }
  return SerialiseXml(answer->doc.get());
}

}  // namespace

StatusOr<std::string> BuildAttestationResponse(const OpenedAttestation& request,
                                               const EAttestResponseSpec& spec,
                                               const SigningIdentity& insurer,
                                               const SchemaRegistry& schemas, const Clock& clock) {
  if (spec.insurer_code.empty()) {
    return Status::Invalid("the answer needs an insurer_code");
  }
  if (!spec.accepted && spec.errors.empty()) {
    return Status::Invalid("a refusal needs at least one error");
  }
  if (spec.accepted && request.operation == EAttestOperation::kSend &&
      !IsDecisionReference(spec.invoicing_number)) {
    return Status::Invalid("an accepted SendAttestation needs a well-formed invoicing_number");
  }
  if (!request.kmehr || !request.reply_to) {
    return Status::Invalid("the opened request has no kmehr or no Reply-to certificate");
  }
  const auto now = clock.Now();
  StatusOr<std::string> kmehr = BuildResponseKmehr(request, spec, now);
  if (!kmehr.ok()) {
    return kmehr.status();
  }
  {
    StatusOr<XmlDocPtr> check = ParseUntrustedXml(*kmehr, XmlLimits(), nullptr);
    std::vector<Problem> problems;
    const std::string version = schemas.KmehrVersionFor(KmehrStandardOf(request.kmehr.get()).empty()
                                                            ? kEAttestCdStandard
                                                            : KmehrStandardOf(request.kmehr.get()));
    if (!check.ok() || version.empty() ||
        !schemas.ValidateKmehrRequest(version, check->get(), "detail", &problems)) {
      return Status::Internal("the answer's kmehr fails its schema" + FirstProblem(problems));
    }
  }
  StatusOr<std::string> ekc = BuildKnownContent(*kmehr, insurer, clock);
  if (!ekc.ok()) {
    return ekc.status();
  }
  StatusOr<std::string> sealed = Seal(*ekc, insurer, {request.reply_to.get()}, clock);
  if (!sealed.ok()) {
    return sealed.status();
  }
  const std::string id = spec.response_id.empty() ? "_" + RandomUuid() : spec.response_id;
  std::string xml =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a:" +
      std::string(EAttestResponseElement(request.operation)) + " xmlns:a=\"" +
      std::string(kEAttestNamespace) + "\" xmlns:p=\"" + kCommonsProtocolV4Ns + "\" xmlns:c=\"" +
      kCommonsCoreV4Ns + "\" Id=\"" + id + "\" InResponseTo=\"" + request.envelope_id +
      "\" IssueInstant=\"" + FormatUtc(now, kXsDateTimeUtcFormat) +
      "\"><p:Return><p:CommonOutput><c:InputReference>" + request.envelope_id +
      "</c:InputReference></p:CommonOutput><p:Detail ContentType=\"text/xml\" "
      "ContentEncoding=\"none\" ContentEncryption=\"encryptedForKnownBED\" "
      "MessageVersion=\"3.0\" Id=\"_" +
      RandomUuid() + "\">" + EncodeBase64(*sealed) +
      "</p:Detail></p:Return></a:" + std::string(EAttestResponseElement(request.operation)) + ">";
  // The envelope id came from the request: it must not break the document.
  StatusOr<XmlDocPtr> doc =
      ParseUntrustedXml(xml, XmlLimits{.max_bytes = kMaxSealedBytes * 2}, nullptr);
  std::vector<Problem> problems;
  if (!doc.ok() ||
      !schemas.ValidateEnvelope(EnvelopeSchema::kEAttest, doc->get(), "envelope", &problems)) {
    return Status::Internal("the eAttest answer fails its schema" + FirstProblem(problems));
  }
  return xml;
}

StatusOr<EAttestAnswer> ParseAttestationResponse(std::string_view response_xml,
                                                 const SchemaRegistry& schemas,
                                                 const SigningIdentity& ours,
                                                 X509_STORE* insurer_trust, const Clock& clock,
                                                 const XmlLimits& limits) {
  if (insurer_trust == nullptr) {
    return Status::FailedPrecondition("no trust store to verify the insurer's answer against");
  }
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(response_xml, limits, nullptr);
  if (!doc.ok()) {
    return doc.status();
  }
  if (IsElement(xmlDocGetRootElement(doc->get()), kSoap11Ns, "Envelope")) {
    StatusOr<SoapResponse> soap = ParseSoapResponse(response_xml, limits);
    if (!soap.ok()) {
      return soap.status();
    }
    if (soap->fault) {
      return Status::Invalid("the insurer answered a SOAP Fault (" + soap->fault->code +
                             "): " + soap->fault->message.substr(0, 200));
    }
    *doc = std::move(soap->body);
  }
  xmlNode* root = xmlDocGetRootElement(doc->get());
  EAttestAnswer answer;
  if (IsElement(root, kEAttestNamespace, "SendAttestationResponse")) {
    answer.operation = EAttestOperation::kSend;
  } else if (IsElement(root, kEAttestNamespace, "CancelAttestationResponse")) {
    answer.operation = EAttestOperation::kCancel;
  } else {
    return Status::Invalid(
        "the answer is not an eAttest v3 SendAttestationResponse or CancelAttestationResponse");
  }
  std::vector<Problem> problems;
  if (!schemas.ValidateEnvelope(EnvelopeSchema::kEAttest, doc->get(), "envelope", &problems)) {
    return Status::Invalid("the answer fails the eAttest v3 schema" + FirstProblem(problems));
  }
  answer.response_id = Attr(root, "Id");
  const xmlNode* ret = Child(root, kCommonsProtocolV4Ns, "Return");
  answer.input_reference = TrimmedContent(
      Child(Child(ret, kCommonsProtocolV4Ns, "CommonOutput"), kCommonsCoreV4Ns, "InputReference"));
  const xmlNode* detail = Child(ret, kCommonsProtocolV4Ns, "Detail");
  if (Attr(detail, "ContentEncryption") != kEncryptedForKnownBed) {
    return Status::Invalid("the answer's Detail/@ContentEncryption must be encryptedForKnownBED");
  }
  StatusOr<OpenedContent> opened =
      OpenKnownContent(TrimmedContent(detail), schemas, ours, insurer_trust, clock, limits);
  if (!opened.ok()) {
    return opened.status();
  }
  answer.signer_subject = opened->signer_subject;
  StatusOr<XmlDocPtr> kmehr = ParseUntrustedXml(opened->business_xml, limits, nullptr);
  if (!kmehr.ok()) {
    return Status::Invalid("the answer's BusinessContent is not well-formed XML");
  }
  const xmlNode* kroot = xmlDocGetRootElement(kmehr->get());
  if (!IsElement(kroot, kMessageServicesNamespace, "SendTransactionResponse")) {
    return Status::Invalid("the answer's BusinessContent is not a kmehr SendTransactionResponse");
  }
  std::string standard = KmehrStandardOf(kmehr->get());
  const std::string version =
      schemas.KmehrVersionFor(standard.empty() ? kEAttestCdStandard : standard);
  if (version.empty() ||
      !schemas.ValidateKmehrRequest(version, kmehr->get(), "detail", &problems)) {
    return Status::Invalid("the answer's kmehr fails its schema" + FirstProblem(problems));
  }
  const xmlNode* acknowledge = Child(kroot, "acknowledge");
  const std::string complete = TrimmedContent(Child(acknowledge, "iscomplete"));
  for (const xmlNode* error : Children(acknowledge, "error")) {
    answer.codes.push_back(CdOf(error, "CD-ERROR"));
  }
  for (const xmlNode* tx : Children(Child(Child(kroot, "kmehrmessage"), "folder"), "transaction")) {
    if (CdOf(tx, "CD-TRANSACTION-MYCARENET") == "cga") {
      if (const xmlNode* item = ItemOfType(tx, "invoicingnumber")) {
        answer.insurer_reference = TrimmedContent(ContentChild(item, "text"));
      }
    }
  }
  const bool accepted = (complete == "true" || complete == "1") && answer.codes.empty();
  answer.decision = std::string(accepted ? kEAttestAccepted : kEAttestRefused);
  return answer;
}

}  // namespace psl::codecs
