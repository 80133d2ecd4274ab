// Small read helpers over a parsed libxml2 tree, shared by the codecs.
//
// Two ways to find an element, on purpose:
// - by namespace AND local name: for every element whose identity matters for security (the
//   Detail that is signed, the Xades that is verified, anything inside ds:Signature). A look-alike
//   element in another namespace must never be taken for it.
// - by local name only: for the kmehr payload, read by the business rules, which always run next
//   to schema validation of the same document (a foreign element there is already a schema
//   error, and the rules must still report what they can on a document that fails the schema).
// Every function accepts null nodes (and returns null / false / "" for them), so a chain of
// look-ups over a document missing an element never crashes. No function allocates libxml2
// memory that outlives the call. Pure functions over a tree nobody mutates meanwhile; thread-safe
// on that condition.
#ifndef PSL_CODECS_XML_UTIL_H_
#define PSL_CODECS_XML_UTIL_H_

#include <libxml/tree.h>

#include <string>
#include <string_view>
#include <vector>

namespace psl::codecs {

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

}  // namespace psl::codecs

#endif  // PSL_CODECS_XML_UTIL_H_
