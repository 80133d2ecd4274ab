// Small helpers over libxml2 trees, shared by the codecs: reading (below), the checks both
// signature profiles run, serialising, building, and xs:dateTime.
//
// Two ways to find an element, on purpose:
// - by namespace AND local name: for every element whose identity matters for security (the
//   Detail that is signed, the Xades that is verified, anything inside ds:Signature). A look-alike
//   element in another namespace must never be taken for it.
// - by local name only: for the kmehr payload, read by the business rules, which always run next
//   to schema validation of the same document (a foreign element there is already a schema
//   error, and the rules must still report what they can on a document that fails the schema).
// Every read function and CountElements / CheckUniqueIds accept null nodes (and return null /
// false / "" / 0 / OK for them), so a chain of look-ups over a document missing an element never
// crashes; the writing functions and RegisterId need real nodes. No function allocates libxml2
// memory that outlives the call (except the documents they return, owned by the caller). Pure
// functions over a tree nobody mutates meanwhile (RegisterId and AddElement mutate the tree they
// are given); thread-safe on that condition.
#ifndef PSL_CODECS_XML_UTIL_H_
#define PSL_CODECS_XML_UTIL_H_

#include <libxml/tree.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/xml_handles.h"

namespace psl::codecs {

// libxml2 strings are UTF-8 bytes typed as unsigned char: the same bytes seen as the other type.
inline const xmlChar* ToXmlChar(const char* s) {
  return reinterpret_cast<const xmlChar*>(s);
}
inline const xmlChar* ToXmlChar(const std::string& s) {
  return ToXmlChar(s.c_str());
}
inline const char* FromXmlChar(const xmlChar* s) {
  return reinterpret_cast<const char*>(s);
}

// True for an element node named `local_name`, in any namespace.
bool IsElement(const xmlNode* n, std::string_view local_name);
// True for an element node named `local_name` in namespace `ns` (compared with the namespace
// URI, never the prefix).
bool IsElement(const xmlNode* n, std::string_view ns, std::string_view local_name);

// The first child element of `parent` named `local_name` (any namespace), or null.
const xmlNode* Child(const xmlNode* parent, std::string_view local_name);
// The first child element of `parent` that is `ns`:`local_name`, or null.
const xmlNode* Child(const xmlNode* parent, std::string_view ns, std::string_view local_name);
xmlNode* Child(xmlNode* parent, std::string_view ns, std::string_view local_name);

// Every child element of `parent`, in document order.
std::vector<xmlNode*> ElementChildren(xmlNode* parent);
// Every child element named `local_name` (any namespace), in document order.
std::vector<const xmlNode*> Children(const xmlNode* parent, std::string_view local_name);
// Every child element that is `ns`:`local_name`, in document order.
std::vector<xmlNode*> Children(xmlNode* parent, std::string_view ns, std::string_view local_name);

// The value of the attribute `name` that has no namespace, or "" when absent.
std::string Attr(const xmlNode* n, const char* name);
// Whether `n` carries the attribute `name` that has no namespace (even with an empty value).
bool HasAttr(const xmlNode* n, const char* name);

// The text content of `n` and its descendants, as is.
std::string Content(const xmlNode* n);
// Content(n) without leading and trailing XML whitespace (space, tab, CR, LF).
std::string TrimmedContent(const xmlNode* n);
// `s` without leading and trailing XML whitespace.
std::string TrimXmlSpace(std::string_view s);

// The 1-based line of `n` in its document, 0 when unknown.
int Line(const xmlNode* n);

// Structure checks for signed documents (signature wrapping defence).

// The one child element `ns`:`local` of `parent`. kInvalid when there is none or several:
// "<where> must hold exactly one <local> (found N)".
StatusOr<xmlNode*> OneChild(xmlNode* parent, const char* ns, const char* local,
                            const std::string& where);

// How many elements `ns`:`local` the subtree of `root` holds, `root` included.
int CountElements(xmlNode* root, const char* ns, const char* local);

// Every attribute named Id, ID or id (any letter case, any namespace: xml:id and wsu:Id
// included) in the subtree of `root` must carry a distinct value, so that an ID can only ever
// resolve to one element. kInvalid otherwise: "Id value '<v>' is carried by more than one element
// (possible signature wrapping)".
Status CheckUniqueIds(xmlNode* root);

// Makes "#<value>" of `element`'s attribute Id in namespace `ns` (null: the attribute without a
// namespace) resolvable through `doc`'s ID table, as xmlsec resolves same-document references.
// kInvalid "<element> has no <label>" when the attribute is absent, or "Id '<value>' resolves to
// another element than <element> (possible signature wrapping)" when the table already gives the
// value to another attribute; kInternal when libxml2 cannot register it.
Status RegisterId(xmlDoc* doc, xmlNode* element, const char* ns, std::string_view label);

// Writing.

// `doc` as UTF-8 bytes with an XML declaration. kInternal "cannot serialise an XML document"
// when libxml2 cannot.
StatusOr<std::string> SerialiseXml(xmlDoc* doc);

// A new document whose root is a deep copy of `element`, with the namespace declarations it uses
// from its ancestors; null when libxml2 cannot copy (the caller words the error).
XmlDocPtr CopyAsDocument(const xmlNode* element);

// Appends a new element `ns`:`name` to `parent`, holding `text` (escaped as needed) when `text`
// is not null (an empty `text` gives an empty text child: <name></name>); returns it (null when
// libxml2 cannot). `ns` null gives an element in no namespace, whatever the parent's namespace
// (unlike xmlNewChild, which would inherit it): the unqualified children of MediPrima and SOAP 1.1
// faults need that.
xmlNode* AddElement(xmlNode* parent, xmlNs* ns, const char* name,
                    const std::string* text = nullptr);
// AddElement holding `text`.
inline xmlNode* AddElement(xmlNode* parent, xmlNs* ns, const char* name, const std::string& text) {
  return AddElement(parent, ns, name, &text);
}

// Sets the attribute `name` (no namespace) of `n` to `value`, replacing any previous value.
void SetAttribute(xmlNode* n, const char* name, const std::string& value);

// Appends to `parent` a deep copy of `node` (which may belong to another document). False when
// `node` is null or libxml2 cannot copy.
bool AppendCopy(xmlNode* parent, const xmlNode* node);

// xs:dateTime.

// The strftime format of an xs:dateTime in UTC to the second: "2026-01-31T09:05:00Z".
inline constexpr char kXsDateTimeUtcFormat[] = "%Y-%m-%dT%H:%M:%SZ";

// `t` (truncated to the second) in UTC, formatted by strftime `format`; "" when the result
// would exceed 63 bytes.
std::string FormatUtc(std::chrono::system_clock::time_point t, const char* format);

enum class XsTimeZone {
  kRequired,  // "Z" or "±hh:mm" (XAdES SigningTime)
  kUtcOnly,   // "Z" only (WS-Security wsu:Created and wsu:Expires, WSS 1.0 §10)
};

// Parses "YYYY-MM-DDThh:mm:ss[.f…]" followed by the time zone `zone` allows; digits of the
// fraction beyond milliseconds are dropped; a leap second (ss = 60) is accepted. kInvalid naming
// `what`: "<what> is not an xs:dateTime", "<what> has a malformed time zone", "<what> must carry
// a time zone (Z or ±hh:mm)", "<what> must be in UTC (end with Z, WSS 1.0 §10)", "<what> is not a
// valid date and time".
StatusOr<std::chrono::system_clock::time_point> ParseXsDateTime(const std::string& s,
                                                                std::string_view what,
                                                                XsTimeZone zone);

}  // namespace psl::codecs

#endif  // PSL_CODECS_XML_UTIL_H_
