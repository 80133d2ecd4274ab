// Readers and builders for the kmehr payloads of the MyCareNet flows (MHM, eAttest), shared by
// their business rules and the insurer-side answers (BuildMhmResponse, BuildAttestationResponse).
//
// Readers look elements up by local name only (see xml_util.h for why the kmehr payload is read
// that way) and accept null nodes, returning null / false / "" for them, so a chain of look-ups
// over a document missing an element never crashes. Builders need real nodes. Pure functions
// over a tree nobody mutates meanwhile (the builders mutate the tree they are given);
// thread-safe on that condition.
#ifndef PSL_CODECS_KMEHR_UTIL_H_
#define PSL_CODECS_KMEHR_UTIL_H_

#include <libxml/tree.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "codecs/identifiers.h"
#include "codecs/problem.h"
#include "codecs/xml_util.h"

namespace psl::codecs {

// Reading.

// The first child element `local_name` of `parent` whose attribute `attr` is `value`, or null.
const xmlNode* ChildWith(const xmlNode* parent, std::string_view local_name, const char* attr,
                         std::string_view value);

// True when `s` is one or more ASCII digits.
bool AllDigits(std::string_view s);
// True when `s` is AllDigits and not only zeros.
bool IsPositiveInteger(std::string_view s);

// An xs:date "yyyy-mm-dd" that is a valid calendar date; whatever follows the tenth character (a
// time-zone suffix, which MyCareNet ignores) is not read. nullopt otherwise.
std::optional<std::chrono::year_month_day> ParseKmehrDate(std::string_view s);

// A kmehr request id: <NIHII of 11 digits>.<yyyyMMddHHmmss> with a valid date and time.
bool IsKmehrRequestId(std::string_view id);

// The trimmed value of the first cd child of `n` whose S attribute is `scheme` ("" when none).
std::string CdOf(const xmlNode* n, const char* scheme);

// The items of `transaction` whose cd S="CD-ITEM-MYCARENET" is `type`, in document order.
std::vector<const xmlNode*> ItemsOfType(const xmlNode* transaction, std::string_view type);
// The first of ItemsOfType, or null.
const xmlNode* ItemOfType(const xmlNode* transaction, std::string_view type);

// Where a problem about a whole item points: the cd naming the item's type, else the item.
const xmlNode* ItemAnchor(const xmlNode* item);

// The first `local_name` under any content of `item` whose attribute `attr` is `value` (`attr`
// null: any).
const xmlNode* ContentChild(const xmlNode* item, std::string_view local_name,
                            const char* attr = nullptr, std::string_view value = {});

// The id S="ID-HCPARTY" of the first hcparty child of `container` that has one, or null.
const xmlNode* FirstHcpartyId(const xmlNode* container);

// Collects problems from rule ids, so every emitted (code, path) comes from the flow's rule table.
// `kSpecFor` maps a rule to its spec (fields code, path, document, severity, message); a path of an
// "envelope" rule is reported under "/<envelope root>". Does not own `problems`.
template <auto kSpecFor>
class KmehrFindings {
 public:
  KmehrFindings(std::vector<Problem>* problems, std::string envelope_root)
      : problems_(problems), envelope_root_(std::move(envelope_root)) {}

  template <typename Rule>
  void Add(Rule rule, const xmlNode* at, std::string_view why = {}) {
    const auto& spec = kSpecFor(rule);
    Problem p;
    p.code = std::string(spec.code);
    p.message = std::string(spec.message);
    if (!why.empty()) {
      p.message += ": ";
      p.message += why;
    }
    p.line = Line(at);
    p.path = spec.document == "envelope" ? "/" + envelope_root_ + std::string(spec.path)
                                         : std::string(spec.path);
    p.document = std::string(spec.document);
    p.severity = spec.severity;
    problems_->push_back(std::move(p));
  }

 private:
  std::vector<Problem>* problems_;
  std::string envelope_root_;
};

// The ID-HCPARTY NIHII of the first hcparty of `container` that has one (possibly invalid, ""
// when none). Reports `missing` (at the id, else `container`, else `fallback`) when there is
// none, `invalid` when it is not an 11-digit NIHII with valid check digits, `mod89` (when given)
// when it passes only the mod 89 variant. *valid tells whether it is a valid 11-digit NIHII.
template <typename Rule, typename Findings>
std::string CheckHcpartyNihii(const xmlNode* container, const xmlNode* fallback, Rule missing,
                              Rule invalid, std::type_identity_t<std::optional<Rule>> mod89,
                              Findings* f, bool* valid) {
  *valid = false;
  const xmlNode* id = FirstHcpartyId(container);
  std::string value = TrimmedContent(id);
  if (value.empty()) {
    f->Add(missing, id != nullptr ? id : (container != nullptr ? container : fallback));
    return value;
  }
  const NihiiResult r = CheckNihii(value);
  if (!r.ok() || value.size() != 11) {
    f->Add(invalid, id,
           r.ok() ? std::string_view("an 11-digit form is required") : IdCheckText(r.check));
    return value;
  }
  if (mod89 && r.mod89) {
    f->Add(*mod89, id);
  }
  *valid = true;
  return value;
}

// The kmehr header's recipient must be a hcparty named "mycarenet". Reports `missing` (at the
// recipient, else `anchor`) when no hcparty of `header`'s recipient has a name, `not_mycarenet`
// (at the name) when the first name is another.
template <typename Rule, typename Findings>
void CheckMycarenetRecipient(const xmlNode* header, const xmlNode* anchor, Rule missing,
                             Rule not_mycarenet, Findings* f) {
  const xmlNode* recipient = Child(header, "recipient");
  const xmlNode* name = nullptr;
  for (const xmlNode* party : Children(recipient, "hcparty")) {
    name = Child(party, "name");
    if (name != nullptr) {
      break;
    }
  }
  const std::string recipient_name = TrimmedContent(name);
  if (recipient_name.empty()) {
    f->Add(missing, recipient != nullptr ? recipient : anchor);
  } else if (recipient_name != "mycarenet") {
    f->Add(not_mycarenet, name);
  }
}

// Writing (elements `ns`:`name`, see AddElement).

// An id S="ID-KMEHR" SV="1.0" holding `value`.
xmlNode* AddKmehrId(xmlNode* parent, xmlNs* ns, const std::string& value);
// A cd S=`scheme` SV=`sv` holding `value`.
xmlNode* AddKmehrCd(xmlNode* parent, xmlNs* ns, const char* scheme, const char* sv,
                    const std::string& value);

// An insurer's hcparty: id S="ID-HCPARTY" `id`, cd S="CD-HCPARTY" orginsurance, name `name`.
xmlNode* AddInsurerHcparty(xmlNode* parent, xmlNs* kmehr, const std::string& id,
                           const std::string& name);

// Answers: the kmehr messageservices SendTransactionResponse both MyCareNet flows answer with.

inline constexpr char kMessageServicesCoreNs[] =
    "http://www.ehealth.fgov.be/messageservices/core/v1";
inline constexpr char kKmehrNs[] = "http://www.ehealth.fgov.be/standards/kmehr/schema/v1";

// A SendTransactionResponse being built: the document, its root and the namespaces declared on
// the root (protocol ns6, core ns2, kmehr ns3).
struct KmehrAnswer {
  XmlDocPtr doc;
  xmlNode* root = nullptr;
  xmlNs* core = nullptr;
  xmlNs* kmehr = nullptr;
};

// Who answers (an insurer hcparty, see AddInsurerHcparty) and when, in Brussels civil time.
struct KmehrAnswerer {
  std::string insurer_id;
  std::string insurer_name;
  std::chrono::system_clock::time_point local;
};

// The root (@messageProtocoleSchemaVersion `schema_version`) and its response: id
// "<insurer id>.<yyyyMMddHHmmss>", the insurer as author, date, time, and a copy of the id,
// author, date and time of `req_request` (the request's request element). kInvalid "the
// request's <what> lacks request/<name>" when one is missing.
StatusOr<KmehrAnswer> StartKmehrAnswer(const xmlNode* req_request, const char* schema_version,
                                       const KmehrAnswerer& by, std::string_view what);

// acknowledge: iscomplete (`accepted`), then per error a cd S="CD-ERROR" `code`, a description
// L="en" (`description`, "" → "MyCareNet error <code>") and a url when not "". `Error` has
// string members code, description and url.
void AddKmehrAnswerError(xmlNode* acknowledge, const KmehrAnswer& a, const std::string& code,
                         const std::string& description, const std::string& url);
template <typename Error>
void AddKmehrAcknowledge(const KmehrAnswer& a, bool accepted, const std::vector<Error>& errors) {
  xmlNode* acknowledge = AddElement(a.root, a.core, "acknowledge");
  AddElement(acknowledge, a.core, "iscomplete", accepted ? "true" : "false");
  for (const Error& e : errors) {
    AddKmehrAnswerError(acknowledge, a, e.code, e.description, e.url);
  }
}

// kmehrmessage: a header (a copy of `req_header`'s standard, id 1, date, time, the insurer as
// sender, a copy of `req_header`'s sender hcparty as recipient) and a folder (id 1, a copy of
// `req_patient`) holding one transaction (id 1, cd S="CD-TRANSACTION-MYCARENET"
// `transaction_code`, date, time, the insurer as author, iscomplete and isvalidated true), which
// it returns for the caller to add items. kInvalid "the request's <what> lacks header/standard"
// (or header/sender/hcparty).
StatusOr<xmlNode*> AddKmehrAnswerTransaction(const KmehrAnswer& a, const xmlNode* req_header,
                                             const xmlNode* req_patient, const KmehrAnswerer& by,
                                             const char* transaction_code, std::string_view what);

}  // namespace psl::codecs

#endif  // PSL_CODECS_KMEHR_UTIL_H_
