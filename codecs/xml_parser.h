// Hardened parsing of untrusted XML bytes (STYLE.md §6) and the process-wide libxml2 guard.
//
// ParseUntrustedXml refuses any DOCTYPE (hence every entity and DTD-default-attribute attack),
// never substitutes entities, never touches the network or the disk, never processes XInclude
// (elements in the XInclude namespaces are refused), and enforces the XmlLimits while parsing
// (SAX hooks stop the parser at the first breach), so a hostile document costs little.
// Thread-safe: each call uses its own parser context.
#ifndef PSL_CODECS_XML_PARSER_H_
#define PSL_CODECS_XML_PARSER_H_

#include <libxml/parser.h>
#include <libxml/tree.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/problem.h"

namespace psl::codecs {

struct XmlLimits {
  std::size_t max_bytes = 2 * 1024 * 1024;        // whole document
  int max_depth = 64;                             // element nesting
  int max_attributes_per_element = 32;            // including namespace declarations
  std::size_t max_nodes = 100'000;                // elements + text nodes (+ comments and PIs)
  std::size_t max_name_length = 256;              // element/attribute names, in bytes
  std::size_t max_text_length = 8 * 1024 * 1024;  // one text node or attribute value
};

// Parses `bytes`. On failure returns kMalformed (or kTooLarge for max_bytes) and, when `problem`
// is not null, fills it with a PSL-XML-* code, a message naming the limit or construct, and the
// line and column where it was found. The returned document is owned by the caller.
//   PSL-XML-SIZE, PSL-XML-DOCTYPE, PSL-XML-DEPTH, PSL-XML-ATTRIBUTES, PSL-XML-NODES,
//   PSL-XML-NAME, PSL-XML-TEXT, PSL-XML-XINCLUDE, PSL-XML-SYNTAX (not well-formed), PSL-XML-EMPTY,
//   PSL-XML-ENCODING (not UTF-8: see below)
// Details of the contract:
// - Only UTF-8 (or its subset US-ASCII) is accepted, with or without a UTF-8 byte order mark.
//   UTF-16/UTF-32/EBCDIC input and an XML declaration naming another encoding are refused with
//   PSL-XML-ENCODING (MyCareNet messages are UTF-8; refusing keeps the byte-level DOCTYPE and
//   attribute pre-scan authoritative). Bytes that are not valid UTF-8 are PSL-XML-SYNTAX.
// - The DOCTYPE check is a byte scan done before libxml2 sees the document (plus SAX hooks as a
//   second line): "<!DOCTYPE" anywhere, in any letter case, even inside a comment or CDATA
//   section, is refused.
// - Empty input, input holding only whitespace (and a BOM), or a document without a root element
//   is PSL-XML-EMPTY.
// - max_depth above 256 acts as 256 (libxml2's own limit without XML_PARSE_HUGE).
// - Namespace errors (undeclared prefix...) count as not well-formed (PSL-XML-SYNTAX).
// - Limit breaches found while parsing report the position libxml2 had reached (the end of the
//   offending start tag); those found by the pre-scan report the start of the construct.
// - CDATA sections become ordinary text nodes (XML_PARSE_NOCDATA); whitespace is kept.
StatusOr<XmlDocPtr> ParseUntrustedXml(std::string_view bytes, const XmlLimits& limits,
                                      Problem* problem);

// ParseUntrustedXml for a document that error messages call `what` ("the SOAP envelope"): on
// failure the status keeps the parser's code (kMalformed, or kTooLarge) and its message is
// "<what> does not parse (<PSL-XML-* code> at line <n>): <the problem's message>".
StatusOr<XmlDocPtr> ParseUntrustedXmlNamed(std::string_view bytes, const XmlLimits& limits,
                                           std::string_view what);

// "/SendSubscriptionRequest/Detail": local names from the root, no prefixes, no indexes.
// An attribute gives ".../Detail/@Id", a text or comment node the path of its element, the
// document node "/", null "".
std::string NodePath(const xmlNode* node);

// Process-wide libxml2 set-up, held once by the composition root (and by test main()s):
// xmlInitParser, and an external entity loader that refuses every load (file or network) unless
// a ScopedExternalLoader is active on the calling thread. Construct before any other libxml2 use.
// Idempotent: constructing it again (or in several places) is harmless. The destructor does not
// call xmlCleanupParser, which would break any other libxml2 user still alive in the process.
class XmlLibrary {
 public:
  XmlLibrary();
  ~XmlLibrary();
  XmlLibrary(const XmlLibrary&) = delete;
  XmlLibrary& operator=(const XmlLibrary&) = delete;
};

// While alive, external loads requested on this thread are served by `loader` instead of being
// refused (the schema registry uses it to load XSDs from its root only). Not nestable.
class ScopedExternalLoader {
 public:
  using Loader =
      std::function<xmlParserInputPtr(const char* url, const char* id, xmlParserCtxtPtr ctxt)>;
  explicit ScopedExternalLoader(Loader loader);
  ~ScopedExternalLoader();
  ScopedExternalLoader(const ScopedExternalLoader&) = delete;
  ScopedExternalLoader& operator=(const ScopedExternalLoader&) = delete;

 private:
  Loader loader_;
  const Loader* previous_;  // restored on destruction
};

// How many external loads the XmlLibrary loader has refused in this process (any thread). Each
// refusal means some libxml2 code tried to read a file or URL outside a ScopedExternalLoader:
// a metric, and the proof in tests that a hostile document made libxml2 read nothing.
std::uint64_t RefusedExternalLoadCount();

}  // namespace psl::codecs

#endif  // PSL_CODECS_XML_PARSER_H_
