#include "codecs/mediprima.h"

#include <libxml/tree.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <set>
#include <utility>

#include "base/brussels_time.h"
#include "base/random.h"
#include "codecs/codec_util.h"
#include "codecs/identifiers.h"
#include "codecs/soap.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

using std::chrono::sys_days;
using std::chrono::system_clock;
using std::chrono::year_month_day;

constexpr std::array<MediPrimaOperation, 4> kOperations = {
    MediPrimaOperation::kSendAttestation, MediPrimaOperation::kSearchAttestation,
    MediPrimaOperation::kDeleteAttestation, MediPrimaOperation::kConsult};

constexpr std::array<MediPrimaRuleSpec, 15> kRules = {{
    {MediPrimaRule::kSsinFormat, "PSL-MEDIPRIMA-SSIN", "111", Severity::kError,
     "the beneficiary SSIN must be 11 digits forming a NISS or BIS number (a possible birth date, "
     "BIS month +20 or +40, sequence 001-998)"},
    {MediPrimaRule::kSsinCheck, "PSL-MEDIPRIMA-SSIN-CHECK", "112", Severity::kError,
     "the beneficiary SSIN check digits do not match (97 - n mod 97, born before or from 2000)"},
    {MediPrimaRule::kAuthorMissing, "PSL-MEDIPRIMA-AUTHOR-MISSING", "100", Severity::kError,
     "Author/HcParty must carry an Id of Type urn:be:fgov:ehealth:1.0:physician:nihii-number"},
    {MediPrimaRule::kAuthorNihii, "PSL-MEDIPRIMA-AUTHOR-NIHII", "111", Severity::kError,
     "the author's physician NIHII must be 11 digits with valid check digits (97 - base mod 97)"},
    {MediPrimaRule::kAuthorMod89, "PSL-MEDIPRIMA-AUTHOR-MOD89", "", Severity::kWarning,
     "the author's NIHII is valid only by the 89 - base mod 89 variant"},
    {MediPrimaRule::kAuthorNotPhysician, "PSL-MEDIPRIMA-AUTHOR-NOT-PHYSICIAN", "140",
     Severity::kError, "the author's NIHII is not a physician's (physician numbers start with 1)"},
    {MediPrimaRule::kAuthorAmbiguous, "PSL-MEDIPRIMA-AUTHOR-AMBIGUOUS", "", Severity::kError,
     "the Author names more than one physician NIHII: exactly one physician signs an attestation"},
    {MediPrimaRule::kAuthorMismatch, "PSL-MEDIPRIMA-AUTHOR-MISMATCH", "155", Severity::kError,
     "the author's physician NIHII is not the NIHII the client certificate authenticated"},
    {MediPrimaRule::kPeriodOrder, "PSL-MEDIPRIMA-PERIOD-ORDER", "113", Severity::kError,
     "StartDate must not be after EndDate"},
    {MediPrimaRule::kPeriodLength, "PSL-MEDIPRIMA-PERIOD-LENGTH", "113", Severity::kError,
     "the period is implausibly long"},
    {MediPrimaRule::kDatePast, "PSL-MEDIPRIMA-DATE-PAST", "113", Severity::kError,
     "the date is implausibly far in the past"},
    {MediPrimaRule::kDateFuture, "PSL-MEDIPRIMA-DATE-FUTURE", "146", Severity::kError,
     "the date is implausibly far in the future"},
    {MediPrimaRule::kAttestationNumber, "PSL-MEDIPRIMA-ATTESTATION-NUMBER", "111", Severity::kError,
     "AttestationNumber must be 1 to 64 characters, each an ASCII letter or digit, '.', '_', '/' "
     "or '-'"},
    {MediPrimaRule::kCover, "PSL-MEDIPRIMA-COVER", "100", Severity::kError,
     "MedicalCover must not be empty"},
    {MediPrimaRule::kIssueInstant, "PSL-MEDIPRIMA-ISSUE-INSTANT", "", Severity::kError,
     "IssueInstant is more than 24 hours after the gateway's clock"},
}};

constexpr std::chrono::hours kMaxIssueInstantAhead{24};

// Collects the problems of one request.
class Findings {
 public:
  explicit Findings(std::vector<Problem>* problems) : problems_(problems) {}

  void Add(MediPrimaRule rule, const xmlNode* node, std::string_view detail = "",
           std::string_view path_suffix = "") {
    const MediPrimaRuleSpec& spec = MediPrimaRuleSpecFor(rule);
    Problem p;
    p.code = std::string(spec.code);
    p.message = std::string(spec.message);
    if (!detail.empty()) {
      p.message += " (";
      p.message += detail;
      p.message += ")";
    }
    if (!spec.table_code.empty()) {
      p.message += "; MyCareNet MediPrima tarification code " + std::string(spec.table_code);
    }
    p.line = node != nullptr ? Line(node) : 0;
    p.path = (node != nullptr ? NodePath(node) : std::string("/")) + std::string(path_suffix);
    p.document = "envelope";
    p.severity = spec.severity;
    problems_->push_back(std::move(p));
  }

 private:
  std::vector<Problem>* problems_;
};

// The first child element of `parent` named `local` in no namespace (the MediPrima payloads are
// elementFormDefault="unqualified"), or null. A namespaced look-alike is a schema error already.
const xmlNode* Unqualified(const xmlNode* parent, std::string_view local) {
  for (const xmlNode* c = parent != nullptr ? parent->children : nullptr; c != nullptr;
       c = c->next) {
    if (c->type == XML_ELEMENT_NODE && c->ns == nullptr && IsElement(c, local)) {
      return c;
    }
  }
  return nullptr;
}

std::vector<const xmlNode*> ChildrenNs(const xmlNode* parent, std::string_view ns,
                                       std::string_view local) {
  std::vector<const xmlNode*> out;
  for (const xmlNode* c = parent != nullptr ? parent->children : nullptr; c != nullptr;
       c = c->next) {
    if (IsElement(c, ns, local)) {
      out.push_back(c);
    }
  }
  return out;
}

// "YYYY-MM-DD" optionally followed by an xs:date time zone; nullopt for anything else.
std::optional<year_month_day> ParseDate(std::string_view s) {
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') {
    return std::nullopt;
  }
  int parts[3] = {0, 0, 0};
  const std::size_t starts[3] = {0, 5, 8};
  const std::size_t lengths[3] = {4, 2, 2};
  for (int i = 0; i < 3; ++i) {
    for (std::size_t k = 0; k < lengths[i]; ++k) {
      const char c = s[starts[i] + k];
      if (c < '0' || c > '9') {
        return std::nullopt;
      }
      parts[i] = parts[i] * 10 + (c - '0');
    }
  }
  const std::string_view zone = s.substr(10);
  const bool zone_ok = zone.empty() || zone == "Z" ||
                       (zone.size() == 6 && (zone[0] == '+' || zone[0] == '-') && zone[3] == ':');
  if (!zone_ok) {
    return std::nullopt;
  }
  const year_month_day date{std::chrono::year{parts[0]},
                            std::chrono::month{static_cast<unsigned>(parts[1])},
                            std::chrono::day{static_cast<unsigned>(parts[2])}};
  if (!date.ok()) {
    return std::nullopt;
  }
  return date;
}

std::optional<year_month_day> DateOf(const xmlNode* n) {
  return n == nullptr ? std::nullopt : ParseDate(TrimmedContent(n));
}

std::int64_t DaysBetween(year_month_day from, year_month_day to) {
  return (sys_days{to} - sys_days{from}).count();
}

class RuleChecker {
 public:
  RuleChecker(const MediPrimaDateLimits& limits, year_month_day today, std::vector<Problem>* out)
      : limits_(limits), today_(today), findings_(out) {}

  // The SSIN in `node`; returns whether it passed, *is_bis set when it did.
  bool Ssin(const xmlNode* node, bool* is_bis) {
    if (node == nullptr) {
      return false;  // the schema reports the missing element
    }
    const NissResult r = CheckNiss(TrimmedContent(node), static_cast<int>(today_.year()));
    if (r.ok()) {
      *is_bis = r.is_bis;
      return true;
    }
    findings_.Add(r.check == IdCheck::kBadCheckDigits ? MediPrimaRule::kSsinCheck
                                                      : MediPrimaRule::kSsinFormat,
                  node, IdCheckText(r.check));
    return false;
  }

  // The physician NIHII of protocol:Author (Send, Delete); returns it when it passed.
  std::string Author(const xmlNode* root, std::string_view authenticated) {
    const xmlNode* author = Child(root, kEhealthProtocolV2Namespace, "Author");
    std::vector<const xmlNode*> ids;
    for (const xmlNode* party : ChildrenNs(author, kEhealthCoreV2Namespace, "HcParty")) {
      for (const xmlNode* id : ChildrenNs(party, kEhealthCoreV2Namespace, "Id")) {
        if (TrimXmlSpace(Attr(id, "Type")) == kPhysicianNihiiIdType) {
          ids.push_back(id);
        }
      }
    }
    if (author == nullptr) {
      return "";  // the schema reports the missing element
    }
    if (ids.empty()) {
      findings_.Add(MediPrimaRule::kAuthorMissing, author);
      return "";
    }
    std::string accepted;
    std::set<std::string> distinct;
    for (const xmlNode* id : ids) {
      const std::string value = TrimmedContent(id);
      const NihiiResult r = CheckNihii(value);
      if (value.size() != 11 || !r.ok()) {
        findings_.Add(MediPrimaRule::kAuthorNihii, id,
                      value.size() != 11 ? "not 11 digits" : IdCheckText(r.check));
        continue;
      }
      if (r.mod89) {
        findings_.Add(MediPrimaRule::kAuthorMod89, id);
      }
      if (value[0] != '1') {
        findings_.Add(MediPrimaRule::kAuthorNotPhysician, id);
        continue;
      }
      distinct.insert(value);
      if (distinct.size() == 2) {
        findings_.Add(MediPrimaRule::kAuthorAmbiguous, id);
      }
      if (accepted.empty()) {
        accepted = value;
        if (!authenticated.empty() && !SameNihii(value, authenticated)) {
          findings_.Add(MediPrimaRule::kAuthorMismatch, id);
        }
      }
    }
    return distinct.size() == 1 ? accepted : std::string();
  }

  // A date that must lie in the plausibility window around today.
  void InWindow(const xmlNode* node) {
    const std::optional<year_month_day> date = DateOf(node);
    if (!date) {
      return;
    }
    const std::int64_t offset = DaysBetween(today_, *date);
    if (offset < -static_cast<std::int64_t>(limits_.max_days_in_past)) {
      findings_.Add(MediPrimaRule::kDatePast, node,
                    "more than " + std::to_string(limits_.max_days_in_past) + " days before today");
    } else if (offset > static_cast<std::int64_t>(limits_.max_days_in_future)) {
      findings_.Add(
          MediPrimaRule::kDateFuture, node,
          "more than " + std::to_string(limits_.max_days_in_future) + " days after today");
    }
  }

  // A PeriodType {StartDate, EndDate?}.
  void Period(const xmlNode* period) {
    if (period == nullptr) {
      return;
    }
    const xmlNode* start_node = Unqualified(period, "StartDate");
    const xmlNode* end_node = Unqualified(period, "EndDate");
    InWindow(start_node);
    const std::optional<year_month_day> start = DateOf(start_node);
    const std::optional<year_month_day> end = DateOf(end_node);
    if (!start || !end) {
      return;
    }
    const std::int64_t length = DaysBetween(*start, *end);
    if (length < 0) {
      findings_.Add(MediPrimaRule::kPeriodOrder, end_node);
    } else if (length > static_cast<std::int64_t>(limits_.max_period_days)) {
      findings_.Add(MediPrimaRule::kPeriodLength, end_node,
                    "more than " + std::to_string(limits_.max_period_days) + " days");
    }
  }

  void AttestationNumber(const xmlNode* node) {
    if (node != nullptr && !IsMediPrimaAttestationNumber(Content(node))) {
      findings_.Add(MediPrimaRule::kAttestationNumber, node);
    }
  }

  void Cover(const xmlNode* node) {
    if (node != nullptr && TrimmedContent(node).empty()) {
      findings_.Add(MediPrimaRule::kCover, node);
    }
  }

  void IssueInstant(const xmlNode* root, system_clock::time_point now) {
    const std::string value = Attr(root, "IssueInstant");
    StatusOr<system_clock::time_point> t =
        ParseXsDateTime(TrimXmlSpace(value), "IssueInstant", XsTimeZone::kRequired);
    if (t.ok() && *t > now + kMaxIssueInstantAhead) {
      findings_.Add(MediPrimaRule::kIssueInstant, root, "", "/@IssueInstant");
    }
  }

 private:
  // `authenticated` in its 11-digit form, or the 8-digit NIHII-8 compared with the first 8.
  static bool SameNihii(std::string_view nihii11, std::string_view authenticated) {
    if (authenticated.size() == 8) {
      return nihii11.substr(0, 8) == authenticated;
    }
    return nihii11 == authenticated;
  }

  const MediPrimaDateLimits& limits_;
  year_month_day today_;
  Findings findings_;
};

Status Summarise(StatusCode code, const std::vector<Problem>& problems) {
  return SummariseProblems(code, problems, "the MediPrima request");
}

// ---- building

// AddElement holding `text`; `ns` null for the unqualified MediPrima children. An empty `text`
// gives an empty element (<name/>), as the answers have always been written.
xmlNode* AddText(xmlNode* parent, xmlNs* ns, const char* name, const std::string& text) {
  return AddElement(parent, ns, name, text.empty() ? nullptr : &text);
}

xmlNode* AddLangText(xmlNode* parent, const char* name, const std::string& text, const char* lang) {
  xmlNode* n = AddText(parent, nullptr, name, text);
  if (n != nullptr) {
    xmlNodeSetLang(n, ToXmlChar(lang));
  }
  return n;
}

bool IsSuccess(std::string_view status) {
  return status == kEhealthStatusSuccess;
}

void AddStatus(xmlNode* root, xmlNs* core, const MediPrimaResponseSpec& spec,
               MediPrimaService service) {
  xmlNode* status = AddElement(root, core, "Status");
  xmlNode* code = AddElement(status, core, "StatusCode");
  SetAttribute(code, "Value", spec.status);
  if (!spec.sub_status.empty()) {
    SetAttribute(AddElement(code, core, "StatusCode"), "Value", spec.sub_status);
  }
  if (!spec.status_message.empty()) {
    AddText(status, core, "StatusMessage", spec.status_message);
  }
  if (spec.errors.empty()) {
    return;
  }
  xmlNode* detail = AddElement(status, core, "StatusDetail");
  if (service == MediPrimaService::kUma) {
    xmlNs* uma_core =
        xmlNewNs(root, ToXmlChar(std::string(kMediPrimaUmaCoreNamespace)), ToXmlChar("umac"));
    xmlNode* registry = AddElement(detail, uma_core, "RegistryStatus");
    for (const MediPrimaAnswerError& e : spec.errors) {
      xmlNode* error = AddElement(registry, nullptr, "ErrorDetail");
      AddText(error, nullptr, "Origin", "MEDIPRIMA");
      AddText(error, nullptr, "Code", e.code);
      AddLangText(error, "Message", e.message_fr.empty() ? "Erreur " + e.code : e.message_fr, "fr");
      AddLangText(error, "Message", e.message_nl.empty() ? "Fout " + e.code : e.message_nl, "nl");
    }
  } else {
    xmlNs* mp_core =
        xmlNewNs(root, ToXmlChar(std::string(kMediPrimaConsultCoreNamespace)), ToXmlChar("mpc"));
    xmlNode* registry = AddElement(detail, mp_core, "MedicalCardRegistryStatus");
    for (const MediPrimaAnswerError& e : spec.errors) {
      xmlNode* message = AddElement(registry, nullptr, "MedicalCardRegistryMessage");
      SetAttribute(message, "Severity", "ERROR");
      AddText(message, nullptr, "ReasonCode", e.code);
      AddText(message, nullptr, "Source", "ECARMED");
      AddLangText(message, "Communication",
                  e.message_fr.empty() ? "Erreur " + e.code : e.message_fr, "fr");
      AddLangText(message, "Communication", e.message_nl.empty() ? "Fout " + e.code : e.message_nl,
                  "nl");
    }
  }
}

// An unqualified PeriodType element.
void AddPeriod(xmlNode* parent, const char* name, const std::string& start,
               const std::string& end) {
  xmlNode* period = AddElement(parent, nullptr, name);
  AddText(period, nullptr, "StartDate", start);
  if (!end.empty()) {
    AddText(period, nullptr, "EndDate", end);
  }
}

bool IsIsoDate(const std::string& s) {
  return s.size() == 10 && ParseDate(s).has_value();
}

Status CheckSpec(const MediPrimaRequest& request, const MediPrimaResponseSpec& spec) {
  if (spec.status.empty()) {
    return Status::Invalid("the answer needs a status code");
  }
  const bool success = IsSuccess(spec.status);
  if (!success && spec.errors.empty()) {
    return Status::Invalid("a non-success answer needs at least one error code");
  }
  for (const MediPrimaAnswerError& e : spec.errors) {
    if (e.code.empty()) {
      return Status::Invalid("an answer error has no code");
    }
  }
  if (!success && (!spec.attestations.empty() || !spec.carmeds.empty())) {
    return Status::Invalid("a non-success answer carries no result");
  }
  if (success && request.operation == MediPrimaOperation::kSendAttestation &&
      !IsMediPrimaAttestationNumber(spec.attestation_number)) {
    return Status::Invalid(
        "an accepted attestation needs a number of 1 to 64 letters, digits, '.', '_', '/' or "
        "'-'");
  }
  for (const MediPrimaAttestationSpec& a : spec.attestations) {
    if (!IsMediPrimaAttestationNumber(a.number) || !IsIsoDate(a.start_date) ||
        (!a.end_date.empty() && !IsIsoDate(a.end_date))) {
      return Status::Invalid("a search result needs a well-formed number and YYYY-MM-DD dates");
    }
  }
  for (const MediPrimaCarmedSpec& c : spec.carmeds) {
    if (c.carmed_number.empty() || c.cpas_cbe.empty() || c.last_name.empty() ||
        !IsIsoDate(c.start_date) || !IsIsoDate(c.end_date) || c.version < 0) {
      return Status::Invalid(
          "a medical card needs a number, a CPAS CBE, a last name and YYYY-MM-DD validity dates");
    }
  }
  return Status::Ok();
}

// ---- parsing answers

std::optional<MediPrimaOperation> ResponseOperationOf(const xmlNode* root) {
  for (MediPrimaOperation op : kOperations) {
    const std::string_view ns = MediPrimaServiceOf(op) == MediPrimaService::kUma
                                    ? kMediPrimaUmaNamespace
                                    : kMediPrimaConsultNamespace;
    if (IsElement(root, ns, MediPrimaResponseElement(op))) {
      return op;
    }
  }
  return std::nullopt;
}

// The detail codes under StatusDetail, in document order.
void CollectDetailCodes(const xmlNode* n, std::vector<std::string>* codes) {
  for (const xmlNode* c = n != nullptr ? n->children : nullptr; c != nullptr; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) {
      continue;
    }
    if (IsElement(c, "ErrorDetail") || IsElement(c, "CbssStatus")) {
      if (const xmlNode* code = Unqualified(c, "Code")) {
        codes->push_back(TrimmedContent(code));
      }
    } else if (IsElement(c, "MedicalCardRegistryMessage")) {
      if (const xmlNode* code = Unqualified(c, "ReasonCode")) {
        codes->push_back(TrimmedContent(code));
      }
    }
    CollectDetailCodes(c, codes);
  }
}

}  // namespace

std::span<const MediPrimaRuleSpec> MediPrimaRuleTable() {
  return kRules;
}

const MediPrimaRuleSpec& MediPrimaRuleSpecFor(MediPrimaRule rule) {
  return kRules[static_cast<std::size_t>(rule)];
}

bool IsMediPrimaAttestationNumber(std::string_view s) {
  if (s.empty() || s.size() > 64) {
    return false;
  }
  for (char c : s) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    c == '.' || c == '_' || c == '/' || c == '-';
    if (!ok) {
      return false;
    }
  }
  return true;
}

std::string_view MediPrimaOperationName(MediPrimaOperation operation) {
  switch (operation) {
    case MediPrimaOperation::kSendAttestation:
      return "SendUrgentMedicalAidAttestation";
    case MediPrimaOperation::kSearchAttestation:
      return "SearchUrgentMedicalAidAttestation";
    case MediPrimaOperation::kDeleteAttestation:
      return "DeleteUrgentMedicalAidAttestation";
    case MediPrimaOperation::kConsult:
      return "ConsultCarmedIntervention";
  }
  return "SendUrgentMedicalAidAttestation";
}

std::optional<MediPrimaOperation> MediPrimaOperationNamed(std::string_view name) {
  for (MediPrimaOperation op : kOperations) {
    if (name == MediPrimaOperationName(op)) {
      return op;
    }
  }
  return std::nullopt;
}

std::string_view MediPrimaSoapAction(MediPrimaOperation operation) {
  switch (operation) {
    case MediPrimaOperation::kSendAttestation:
      return kMediPrimaSendSoapAction;
    case MediPrimaOperation::kSearchAttestation:
      return kMediPrimaSearchSoapAction;
    case MediPrimaOperation::kDeleteAttestation:
      return kMediPrimaDeleteSoapAction;
    case MediPrimaOperation::kConsult:
      return kMediPrimaConsultSoapAction;
  }
  return kMediPrimaSendSoapAction;
}

std::optional<MediPrimaOperation> MediPrimaOperationForSoapAction(std::string_view action) {
  if (action.size() >= 2 && action.front() == '"' && action.back() == '"') {
    action = action.substr(1, action.size() - 2);
  }
  for (MediPrimaOperation op : kOperations) {
    if (action == MediPrimaSoapAction(op)) {
      return op;
    }
  }
  return std::nullopt;
}

MediPrimaService MediPrimaServiceOf(MediPrimaOperation operation) {
  return operation == MediPrimaOperation::kConsult ? MediPrimaService::kConsult
                                                   : MediPrimaService::kUma;
}

std::string MediPrimaRequestElement(MediPrimaOperation operation) {
  return std::string(MediPrimaOperationName(operation)) + "Request";
}

std::string MediPrimaResponseElement(MediPrimaOperation operation) {
  return std::string(MediPrimaOperationName(operation)) + "Response";
}

MediPrimaCodec::MediPrimaCodec(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits,
                               MediPrimaDateLimits dates)
    : schemas_(schemas), clock_(clock), limits_(limits), dates_(dates) {}

std::optional<MediPrimaOperation> MediPrimaCodec::OperationOf(const xmlNode* root) {
  for (MediPrimaOperation op : kOperations) {
    const std::string_view ns = MediPrimaServiceOf(op) == MediPrimaService::kUma
                                    ? kMediPrimaUmaNamespace
                                    : kMediPrimaConsultNamespace;
    if (IsElement(root, ns, MediPrimaRequestElement(op))) {
      return op;
    }
  }
  return std::nullopt;
}

StatusOr<MediPrimaRequest> MediPrimaCodec::Decode(std::string_view bytes,
                                                  std::string_view authenticated_nihii,
                                                  ValidationReport* report) const {
  StatusOr<XmlDocPtr> doc = ParseEnvelopeReporting(bytes, limits_, &report->problems);
  if (!doc.ok()) {
    return doc.status();
  }
  return DecodeParsed(std::move(doc).value(), authenticated_nihii, report);
}

StatusOr<MediPrimaRequest> MediPrimaCodec::DecodeParsed(XmlDocPtr document,
                                                        std::string_view authenticated_nihii,
                                                        ValidationReport* report) const {
  std::vector<Problem>& problems = report->problems;
  const xmlNode* root = xmlDocGetRootElement(document.get());
  const std::optional<MediPrimaOperation> operation = OperationOf(root);
  if (!operation) {
    Problem p;
    p.code = "PSL-FLOW-UNKNOWN";
    p.message =
        "the root element must be SendUrgentMedicalAidAttestationRequest, "
        "SearchUrgentMedicalAidAttestationRequest or DeleteUrgentMedicalAidAttestationRequest in "
        "namespace " +
        std::string(kMediPrimaUmaNamespace) +
        ", or ConsultCarmedInterventionRequest in namespace " +
        std::string(kMediPrimaConsultNamespace);
    p.line = root != nullptr ? Line(root) : 0;
    p.path = root != nullptr ? NodePath(root) : "/";
    problems.push_back(std::move(p));
    return Summarise(StatusCode::kInvalid, problems);
  }
  report->kind = std::string(kMediPrimaKind);
  report->flow = std::string(kMediPrimaFlow);
  report->operation = std::string(MediPrimaOperationName(*operation));

  MediPrimaRequest request;
  request.operation = *operation;
  request.service = MediPrimaServiceOf(*operation);
  request.operation_name = report->operation;
  request.soap_action = std::string(MediPrimaSoapAction(*operation));
  request.request_id = Attr(root, "Id");
  request.issue_instant = Attr(root, "IssueInstant");

  (void)schemas_.ValidateEnvelope(request.service == MediPrimaService::kUma
                                      ? EnvelopeSchema::kMediPrimaUma
                                      : EnvelopeSchema::kMediPrimaConsult,
                                  document.get(), "envelope", &problems);

  RuleChecker rules(dates_, BrusselsToday(clock_), &problems);
  rules.IssueInstant(root, clock_.Now());
  const xmlNode* ssin = nullptr;
  switch (*operation) {
    case MediPrimaOperation::kSendAttestation: {
      request.author_nihii = rules.Author(root, authenticated_nihii);
      ssin = Unqualified(root, "BeneficiarySsin");
      rules.Period(Unqualified(root, "ValidityPeriod"));
      rules.Cover(Unqualified(root, "MedicalCover"));
      break;
    }
    case MediPrimaOperation::kSearchAttestation: {
      const xmlNode* criteria = Unqualified(root, "Criteria");
      ssin = Unqualified(criteria, "BeneficiarySsin");
      const xmlNode* number = Unqualified(criteria, "AttestationNumber");
      rules.AttestationNumber(number);
      if (number != nullptr) {
        request.attestation_number = Content(number);
      }
      rules.Period(Unqualified(criteria, "Period"));
      rules.Cover(Unqualified(criteria, "MedicalCover"));
      break;
    }
    case MediPrimaOperation::kDeleteAttestation: {
      request.author_nihii = rules.Author(root, authenticated_nihii);
      ssin = Unqualified(root, "BeneficiarySsin");
      const xmlNode* number = Unqualified(root, "AttestationNumber");
      rules.AttestationNumber(number);
      if (number != nullptr) {
        request.attestation_number = Content(number);
      }
      break;
    }
    case MediPrimaOperation::kConsult: {
      const xmlNode* by_ssin = Unqualified(Unqualified(root, "SelectionCriteria"), "BySsin");
      ssin = Unqualified(by_ssin, "Ssin");
      rules.Period(Unqualified(by_ssin, "Period"));
      rules.InWindow(Unqualified(by_ssin, "ReferenceDate"));
      break;
    }
  }
  bool is_bis = false;
  const bool ssin_ok = rules.Ssin(ssin, &is_bis);

  if (HasErrors(problems)) {
    return Summarise(StatusCode::kInvalid, problems);
  }
  if (ssin_ok) {
    request.patient = TrimmedContent(ssin);
    request.patient_is_bis = is_bis;
  }
  request.document = std::move(document);
  return request;
}

StatusOr<std::string> BuildMediPrimaResponse(const MediPrimaRequest& request,
                                             const MediPrimaResponseSpec& spec,
                                             const Clock& clock) {
  if (request.document == nullptr) {
    return Status::Invalid("the request has no document to answer");
  }
  PSL_RETURN_IF_ERROR(CheckSpec(request, spec));
  const xmlNode* req_root = xmlDocGetRootElement(request.document.get());
  const bool success = IsSuccess(spec.status);
  const MediPrimaService service = MediPrimaServiceOf(request.operation);

  std::string id = spec.response_id;
  if (id.empty()) {
    const std::string uuid = RandomUuid();
    if (uuid.empty()) {
      return Status::Internal("no randomness for the answer's Id");
    }
    id = "_" + uuid;
  }
  XmlDocPtr doc(xmlNewDoc(ToXmlChar("1.0")));
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr,
                                ToXmlChar(MediPrimaResponseElement(request.operation)), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  xmlNs* ns = xmlNewNs(
      root,
      ToXmlChar(std::string(service == MediPrimaService::kUma ? kMediPrimaUmaNamespace
                                                              : kMediPrimaConsultNamespace)),
      ToXmlChar(service == MediPrimaService::kUma ? "uma" : "mp"));
  xmlSetNs(root, ns);
  xmlNs* core = xmlNewNs(root, ToXmlChar(std::string(kEhealthCoreV2Namespace)), ToXmlChar("core"));
  SetAttribute(root, "Id", id);
  if (!request.request_id.empty()) {
    SetAttribute(root, "InResponseTo", request.request_id);
  }
  SetAttribute(root, "IssueInstant", FormatUtc(clock.Now(), kXsDateTimeUtcFormat));
  AddStatus(root, core, spec, service);

  switch (request.operation) {
    case MediPrimaOperation::kSendAttestation: {
      if (!success) {
        break;
      }
      xmlNode* attestation = AddElement(root, nullptr, "Attestion");  // sic (the XSD's spelling)
      xmlNode* author = AddElement(attestation, nullptr, "Author");
      for (const xmlNode* party : ChildrenNs(Child(req_root, kEhealthProtocolV2Namespace, "Author"),
                                             kEhealthCoreV2Namespace, "HcParty")) {
        if (!AppendCopy(author, party)) {
          return Status::Internal("cannot copy the request's author");
        }
      }
      AddText(attestation, nullptr, "BeneficiarySsin",
              TrimmedContent(Unqualified(req_root, "BeneficiarySsin")));
      if (!AppendCopy(attestation, Unqualified(req_root, "ValidityPeriod"))) {
        return Status::Invalid("the request has no ValidityPeriod");
      }
      AddText(attestation, nullptr, "MedicalCover",
              TrimmedContent(Unqualified(req_root, "MedicalCover")));
      AddText(attestation, nullptr, "AttestationNumber", spec.attestation_number);
      break;
    }
    case MediPrimaOperation::kSearchAttestation: {
      const xmlNode* criteria = Unqualified(req_root, "Criteria");
      const std::string ssin = TrimmedContent(Unqualified(criteria, "BeneficiarySsin"));
      const std::string requested_cover = TrimmedContent(Unqualified(criteria, "MedicalCover"));
      for (const MediPrimaAttestationSpec& a : spec.attestations) {
        if (a.author_nihii.empty()) {
          return Status::Invalid("a search result needs its physician's NIHII");
        }
        xmlNode* attestation = AddElement(root, nullptr, "Attestation");
        xmlNode* party = AddElement(AddElement(attestation, nullptr, "Author"), core, "HcParty");
        xmlNode* nihii = AddText(party, core, "Id", a.author_nihii);
        SetAttribute(nihii, "Type", std::string(kPhysicianNihiiIdType));
        AddText(party, core, "Name", "Physician");
        AddText(attestation, nullptr, "BeneficiarySsin", ssin);
        AddPeriod(attestation, "ValidityPeriod", a.start_date, a.end_date);
        AddText(attestation, nullptr, "MedicalCover",
                !a.cover.empty()           ? a.cover
                : !requested_cover.empty() ? requested_cover
                                           : std::string("DOCTOR"));
        AddText(attestation, nullptr, "AttestationNumber", a.number);
      }
      break;
    }
    case MediPrimaOperation::kDeleteAttestation: {
      const std::string number =
          !spec.attestation_number.empty() ? spec.attestation_number : request.attestation_number;
      if (success && !number.empty()) {
        AddText(root, nullptr, "AttestionNumber", number);  // sic
      }
      break;
    }
    case MediPrimaOperation::kConsult: {
      if (!AppendCopy(root, Unqualified(req_root, "SelectionCriteria"))) {
        return Status::Invalid("the request has no SelectionCriteria");
      }
      if (!success || spec.carmeds.empty()) {
        break;
      }
      const std::string ssin = TrimmedContent(
          Unqualified(Unqualified(Unqualified(req_root, "SelectionCriteria"), "BySsin"), "Ssin"));
      xmlNode* result = AddElement(root, nullptr, "Result");
      for (const MediPrimaCarmedSpec& c : spec.carmeds) {
        xmlNode* carmed = AddElement(result, nullptr, "Carmed");
        xmlNode* ident = AddElement(carmed, nullptr, "CarmedIdentifier");
        AddText(ident, nullptr, "CarmedNumber", c.carmed_number);
        AddText(ident, nullptr, "VersionNumber", std::to_string(c.version));
        xmlNode* beneficiary = AddElement(ident, nullptr, "Beneficiary");
        AddText(beneficiary, nullptr, "Ssin", ssin);
        AddText(beneficiary, nullptr, "LastName", c.last_name);
        AddPeriod(ident, "ValidityPeriod", c.start_date, c.end_date);
        xmlNode* pswc = AddElement(ident, nullptr, "Pswc");
        AddText(pswc, nullptr, "CbeNumber", c.cpas_cbe);
        AddText(pswc, nullptr, "MunicipalityIns", c.municipality_ins);
        AddLangText(pswc, "Name", c.cpas_name_fr, "fr");
        AddLangText(pswc, "Name", c.cpas_name_nl, "nl");
        if (c.doctor_cover) {
          xmlNode* doctor = AddElement(
              AddElement(AddElement(carmed, nullptr, "CarmedContent"), nullptr, "MedicalCover"),
              nullptr, "Doctor");
          AddPeriod(doctor, "ValidityPeriod", c.start_date, c.end_date);
          xmlNode* support = AddElement(doctor, nullptr, "PswcSupport");
          AddText(support, nullptr, "ZivAmiPart", "FULL");
          AddText(support, nullptr, "PatientPart", "FULL");
          AddText(support, nullptr, "Supplement", "NOTHING");
        }
        if (!c.agreement_number.empty()) {
          AddText(carmed, nullptr, "AgreementNumber", c.agreement_number);
        }
        if (!c.attestation_number.empty()) {
          AddText(carmed, nullptr, "UrgentMedicalAidAttestationNumber", c.attestation_number);
        }
      }
      break;
    }
  }
  return SerialiseXml(doc.get());
}

StatusOr<MediPrimaAnswer> ParseMediPrimaResponse(std::string_view bytes,
                                                 const SchemaRegistry& schemas,
                                                 const XmlLimits& limits) {
  StatusOr<XmlDocPtr> parsed =
      ParseUntrustedXmlAs(bytes, limits, "the answer", StatusCode::kMalformed);
  if (!parsed.ok()) {
    return parsed.status();
  }
  XmlDocPtr doc = std::move(parsed).value();
  PSL_RETURN_IF_ERROR(UnwrapSoapAnswer(bytes, limits, "the MediPrima service", &doc, nullptr));
  const xmlNode* root = xmlDocGetRootElement(doc.get());
  const std::optional<MediPrimaOperation> operation = ResponseOperationOf(root);
  if (!operation) {
    return Status::Invalid(
        "the answer is not a MediPrima SendUrgentMedicalAidAttestationResponse, "
        "SearchUrgentMedicalAidAttestationResponse, DeleteUrgentMedicalAidAttestationResponse or "
        "ConsultCarmedInterventionResponse");
  }
  std::vector<Problem> problems;
  const EnvelopeSchema set = MediPrimaServiceOf(*operation) == MediPrimaService::kUma
                                 ? EnvelopeSchema::kMediPrimaUma
                                 : EnvelopeSchema::kMediPrimaConsult;
  if (!schemas.ValidateEnvelope(set, doc.get(), "envelope", &problems)) {
    return Status::Invalid("the answer does not pass the MediPrima schema: " +
                           DescribeFirstProblem(problems));
  }

  MediPrimaAnswer answer;
  answer.operation = *operation;
  answer.response_id = Attr(root, "Id");
  answer.in_response_to = Attr(root, "InResponseTo");
  const xmlNode* status = Child(root, kEhealthCoreV2Namespace, "Status");
  const xmlNode* top = Child(status, kEhealthCoreV2Namespace, "StatusCode");
  const bool success = TrimXmlSpace(Attr(top, "Value")) == kEhealthStatusSuccess;
  if (!success) {
    for (const xmlNode* code = top; code != nullptr;
         code = Child(code, kEhealthCoreV2Namespace, "StatusCode")) {
      answer.codes.push_back(TrimXmlSpace(Attr(code, "Value")));
    }
  }
  CollectDetailCodes(Child(status, kEhealthCoreV2Namespace, "StatusDetail"), &answer.codes);

  if (!success) {
    answer.decision = std::string(kMediPrimaRefused);
    return answer;
  }
  switch (*operation) {
    case MediPrimaOperation::kSendAttestation: {
      const xmlNode* attestation = Unqualified(root, "Attestion");
      answer.insurer_reference = TrimmedContent(Unqualified(attestation, "AttestationNumber"));
      // A success without the attestation it creates is not an accepted attestation.
      answer.decision =
          std::string(attestation != nullptr ? kMediPrimaAccepted : kMediPrimaRefused);
      break;
    }
    case MediPrimaOperation::kSearchAttestation: {
      for (const xmlNode* c = root->children; c != nullptr; c = c->next) {
        if (c->type == XML_ELEMENT_NODE && c->ns == nullptr && IsElement(c, "Attestation")) {
          answer.attestation_numbers.push_back(TrimmedContent(Unqualified(c, "AttestationNumber")));
        }
      }
      if (!answer.attestation_numbers.empty()) {
        answer.insurer_reference = answer.attestation_numbers.front();
      }
      answer.decision =
          std::string(answer.attestation_numbers.empty() ? kMediPrimaNotFound : kMediPrimaFound);
      break;
    }
    case MediPrimaOperation::kDeleteAttestation: {
      answer.insurer_reference = TrimmedContent(Unqualified(root, "AttestionNumber"));
      answer.decision = std::string(kMediPrimaAccepted);
      break;
    }
    case MediPrimaOperation::kConsult: {
      const xmlNode* result = Unqualified(root, "Result");
      for (const xmlNode* c = result != nullptr ? result->children : nullptr; c != nullptr;
           c = c->next) {
        if (c->type != XML_ELEMENT_NODE || c->ns != nullptr || !IsElement(c, "Carmed")) {
          continue;
        }
        const xmlNode* ident = Unqualified(c, "CarmedIdentifier");
        const xmlNode* validity = Unqualified(ident, "ValidityPeriod");
        MediPrimaCarmed card;
        card.carmed_number = TrimmedContent(Unqualified(ident, "CarmedNumber"));
        card.version = TrimmedContent(Unqualified(ident, "VersionNumber"));
        card.start_date = TrimmedContent(Unqualified(validity, "StartDate"));
        card.end_date = TrimmedContent(Unqualified(validity, "EndDate"));
        card.cpas_cbe = TrimmedContent(Unqualified(Unqualified(ident, "Pswc"), "CbeNumber"));
        card.agreement_number = TrimmedContent(Unqualified(c, "AgreementNumber"));
        card.attestation_number =
            TrimmedContent(Unqualified(c, "UrgentMedicalAidAttestationNumber"));
        answer.carmeds.push_back(std::move(card));
      }
      if (!answer.carmeds.empty()) {
        const MediPrimaCarmed& first = answer.carmeds.front();
        answer.insurer_reference =
            !first.agreement_number.empty() ? first.agreement_number : first.carmed_number;
      }
      answer.decision = std::string(answer.carmeds.empty() ? kMediPrimaNotFound : kMediPrimaFound);
      break;
    }
  }
  return answer;
}

}  // namespace psl::codecs
