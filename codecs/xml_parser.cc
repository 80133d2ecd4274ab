#include "codecs/xml_parser.h"

#include <libxml/encoding.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

namespace psl::codecs {
namespace {

constexpr std::string_view kXInclude2001 = "http://www.w3.org/2001/XInclude";
constexpr std::string_view kXInclude2003 = "http://www.w3.org/2003/XInclude";

// libxml2's own nesting limit without XML_PARSE_HUGE; ours must fire first so that the breach is
// reported as PSL-XML-DEPTH with our position rather than as a generic libxml2 error.
constexpr int kLibxmlMaxDepth = 256;

// Never XML_PARSE_NOENT (it enables substitution), DTDLOAD, DTDATTR, DTDVALID, HUGE or XINCLUDE.
// IGNORE_ENC: the bytes are UTF-8 (checked before parsing), whatever a declaration claims.
constexpr int kParseOptions = XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC;

thread_local const ScopedExternalLoader::Loader* t_active_loader = nullptr;
std::atomic<std::uint64_t> g_refused_loads{0};

xmlParserInputPtr GuardedExternalEntityLoader(const char* url, const char* id,
                                              xmlParserCtxtPtr ctxt) {
  if (t_active_loader != nullptr) {
    return (*t_active_loader)(url, id, ctxt);
  }
  g_refused_loads.fetch_add(1, std::memory_order_relaxed);
  return nullptr;
}

std::size_t Length(const xmlChar* s) {
  return s == nullptr ? 0 : std::strlen(reinterpret_cast<const char*>(s));
}

std::string_view View(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

std::size_t QualifiedNameLength(const xmlChar* prefix, const xmlChar* local) {
  return prefix == nullptr ? Length(local) : Length(prefix) + 1 + Length(local);
}

bool IsXmlSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool StartsWith(std::string_view s, std::size_t at, std::string_view prefix) {
  return at <= s.size() && s.size() - at >= prefix.size() &&
         s.compare(at, prefix.size(), prefix) == 0;
}

bool EqualsIgnoringAsciiCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) {
             return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
           };
           return lower(x) == lower(y);
         });
}

// 1-based line and column of byte `offset`; the column counts characters (UTF-8 lead bytes), as
// libxml2 does.
std::pair<int, int> PositionOf(std::string_view doc, std::size_t offset) {
  int line = 1;
  int column = 1;
  for (std::size_t i = 0; i < offset && i < doc.size(); ++i) {
    const auto c = static_cast<unsigned char>(doc[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return {line, column};
}

Status Fail(Problem* problem, StatusCode status_code, std::string code, std::string message,
            int line, int column, std::string path) {
  Status status(status_code, code + ": " + message);
  if (problem != nullptr) {
    problem->code = std::move(code);
    problem->message = std::move(message);
    problem->line = line;
    problem->column = column;
    problem->path = std::move(path);
    problem->severity = Severity::kError;
  }
  return status;
}

struct Finding {
  std::string code;
  std::string message;
  std::size_t offset = 0;
};

// Refuses what must never reach libxml2: non-UTF-8 input (libxml2 would transcode it, hiding
// constructs from the byte scans below) and a DOCTYPE.
std::optional<Finding> CheckEncodingAndDoctype(std::string_view body) {
  const std::size_t probe = std::min<std::size_t>(body.size(), 4);
  const xmlCharEncoding detected = xmlDetectCharEncoding(
      reinterpret_cast<const unsigned char*>(body.data()), static_cast<int>(probe));
  if (detected != XML_CHAR_ENCODING_NONE && detected != XML_CHAR_ENCODING_UTF8) {
    return Finding{"PSL-XML-ENCODING",
                   "the document is not UTF-8 (its first bytes announce UTF-16, UTF-32 or "
                   "EBCDIC); send UTF-8",
                   0};
  }
  if (StartsWith(body, 0, "<?xml") && body.size() > 5 && IsXmlSpace(body[5])) {
    const std::size_t end = body.find("?>");
    const std::string_view decl = body.substr(0, end == std::string_view::npos ? body.size() : end);
    const std::size_t at = decl.find("encoding");
    if (at != std::string_view::npos) {
      std::size_t i = at + 8;
      while (i < decl.size() && IsXmlSpace(decl[i])) {
        ++i;
      }
      if (i < decl.size() && decl[i] == '=') {
        ++i;
      }
      while (i < decl.size() && IsXmlSpace(decl[i])) {
        ++i;
      }
      if (i < decl.size() && (decl[i] == '"' || decl[i] == '\'')) {
        const char quote = decl[i];
        const std::size_t close = decl.find(quote, i + 1);
        const std::string_view name =
            decl.substr(i + 1, close == std::string_view::npos ? 0 : close - i - 1);
        if (!EqualsIgnoringAsciiCase(name, "UTF-8") && !EqualsIgnoringAsciiCase(name, "UTF8") &&
            !EqualsIgnoringAsciiCase(name, "US-ASCII")) {
          return Finding{"PSL-XML-ENCODING",
                         "the XML declaration names an encoding other than UTF-8; only UTF-8 "
                         "documents are accepted",
                         at};
        }
      }
    }
  }
  static constexpr std::string_view kDoctype = "<!DOCTYPE";
  for (std::size_t i = body.find("<!"); i != std::string_view::npos; i = body.find("<!", i + 2)) {
    if (body.size() - i >= kDoctype.size() &&
        EqualsIgnoringAsciiCase(body.substr(i, kDoctype.size()), kDoctype)) {
      return Finding{"PSL-XML-DOCTYPE",
                     "a DOCTYPE declaration was found; DTDs and entity declarations are refused",
                     i};
    }
  }
  return std::nullopt;
}

// libxml2 2.9 checks duplicate attributes pairwise before any SAX hook runs, so a start tag with
// hundreds of thousands of attributes costs quadratic time: count them on the bytes first.
std::optional<Finding> CheckAttributeCounts(std::string_view body, const XmlLimits& limits) {
  std::size_t i = 0;
  const std::size_t n = body.size();
  while (i < n) {
    const std::size_t lt = body.find('<', i);
    if (lt == std::string_view::npos) {
      break;
    }
    std::string_view closer;
    if (StartsWith(body, lt, "<!--")) {
      closer = "-->";
    } else if (StartsWith(body, lt, "<![CDATA[")) {
      closer = "]]>";
    } else if (StartsWith(body, lt, "<?")) {
      closer = "?>";
    }
    if (!closer.empty()) {
      const std::size_t end = body.find(closer, lt + 2);
      if (end == std::string_view::npos) {
        break;  // unterminated: libxml2 reports it
      }
      i = end + closer.size();
      continue;
    }
    if (StartsWith(body, lt, "</") || StartsWith(body, lt, "<!")) {
      i = lt + 2;
      continue;
    }
    std::size_t count = 0;
    char quote = 0;
    std::size_t j = lt + 1;
    for (; j < n; ++j) {
      const char c = body[j];
      if (quote != 0) {
        if (c == quote) {
          quote = 0;
        }
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '=') {
        if (++count > static_cast<std::size_t>(limits.max_attributes_per_element)) {
          return Finding{"PSL-XML-ATTRIBUTES",
                         "an element has more than " +
                             std::to_string(limits.max_attributes_per_element) +
                             " attributes and namespace declarations "
                             "(XmlLimits.max_attributes_per_element)",
                         lt};
        }
      } else if (c == '>' || c == '<') {
        break;
      }
    }
    i = (j < n && body[j] == '<') ? j : j + 1;
  }
  return std::nullopt;
}

// State of one parse, reached from the SAX hooks through ctxt->_private.
struct SaxGuard {
  const XmlLimits* limits = nullptr;
  int max_depth = 0;
  xmlSAXHandler original{};

  bool breached = false;
  Problem breach;
  bool has_error = false;
  int error_code = 0;
  Problem first_error;

  int depth = 0;
  std::size_t nodes = 0;
  bool in_text = false;
  std::size_t text_length = 0;
};

xmlParserCtxtPtr ContextOf(void* ctx) {
  return static_cast<xmlParserCtxtPtr>(ctx);
}
SaxGuard* GuardOf(void* ctx) {
  return static_cast<SaxGuard*>(ContextOf(ctx)->_private);
}

void Breach(void* ctx, std::string code, std::string message, std::string path) {
  xmlParserCtxtPtr ctxt = ContextOf(ctx);
  SaxGuard* guard = GuardOf(ctx);
  if (!guard->breached) {
    guard->breached = true;
    guard->breach.code = std::move(code);
    guard->breach.message = std::move(message);
    guard->breach.line = ctxt->input != nullptr ? ctxt->input->line : 0;
    guard->breach.column = ctxt->input != nullptr ? ctxt->input->col : 0;
    guard->breach.path = std::move(path);
  }
  xmlStopParser(ctxt);
}

std::string CurrentPath(void* ctx) {
  return NodePath(ContextOf(ctx)->node);
}

std::string ChildPath(void* ctx, const xmlChar* localname) {
  std::string parent = CurrentPath(ctx);
  if (parent == "/") {
    parent.clear();
  }
  return parent + "/" + std::string(View(localname));
}

std::string LimitText(std::size_t value, const char* field) {
  return std::to_string(value) + " (XmlLimits." + field + ")";
}

// Counts a new node; false (after stopping the parser) when it is one too many.
bool CountNode(void* ctx) {
  SaxGuard* guard = GuardOf(ctx);
  if (++guard->nodes > guard->limits->max_nodes) {
    Breach(ctx, "PSL-XML-NODES",
           "the document has more elements and text nodes than " +
               LimitText(guard->limits->max_nodes, "max_nodes"),
           CurrentPath(ctx));
    return false;
  }
  return true;
}

bool CheckTextLength(void* ctx, std::size_t length, const char* what) {
  SaxGuard* guard = GuardOf(ctx);
  if (length > guard->limits->max_text_length) {
    Breach(ctx, "PSL-XML-TEXT",
           std::string(what) + " is longer than " +
               LimitText(guard->limits->max_text_length, "max_text_length") + " bytes",
           CurrentPath(ctx));
    return false;
  }
  return true;
}

bool CheckNameLength(void* ctx, std::size_t length, const char* what) {
  SaxGuard* guard = GuardOf(ctx);
  if (length > guard->limits->max_name_length) {
    Breach(ctx, "PSL-XML-NAME",
           std::string(what) + " is longer than " +
               LimitText(guard->limits->max_name_length, "max_name_length") + " bytes",
           CurrentPath(ctx));
    return false;
  }
  return true;
}

void EndText(void* ctx) {
  GuardOf(ctx)->in_text = false;
}

void OnInternalSubset(void* ctx, const xmlChar*, const xmlChar*, const xmlChar*) {
  Breach(ctx, "PSL-XML-DOCTYPE",
         "a DOCTYPE declaration was found; DTDs and entity declarations are refused", "");
}

void OnEntityDecl(void* ctx, const xmlChar*, int, const xmlChar*, const xmlChar*, xmlChar*) {
  Breach(ctx, "PSL-XML-DOCTYPE", "an entity declaration was found; entities are refused", "");
}

void OnStartElementNs(void* ctx, const xmlChar* localname, const xmlChar* prefix,
                      const xmlChar* uri, int nb_namespaces, const xmlChar** namespaces,
                      int nb_attributes, int nb_defaulted, const xmlChar** attributes) {
  SaxGuard* guard = GuardOf(ctx);
  const XmlLimits& limits = *guard->limits;
  EndText(ctx);
  if (!CountNode(ctx)) {
    return;
  }
  if (++guard->depth > guard->max_depth) {
    std::string message =
        guard->max_depth < limits.max_depth
            ? "elements are nested deeper than " + std::to_string(guard->max_depth) +
                  ", the most libxml2 parses (XmlLimits.max_depth is higher)"
            : "elements are nested deeper than " +
                  LimitText(static_cast<std::size_t>(guard->max_depth), "max_depth");
    Breach(ctx, "PSL-XML-DEPTH", std::move(message), ChildPath(ctx, localname));
    return;
  }
  if (View(uri) == kXInclude2001 || View(uri) == kXInclude2003) {
    Breach(ctx, "PSL-XML-XINCLUDE", "XInclude elements are refused", ChildPath(ctx, localname));
    return;
  }
  if (!CheckNameLength(ctx, QualifiedNameLength(prefix, localname), "an element name")) {
    return;
  }
  if (nb_namespaces + nb_attributes > limits.max_attributes_per_element) {
    Breach(ctx, "PSL-XML-ATTRIBUTES",
           "an element has more attributes and namespace declarations than " +
               LimitText(static_cast<std::size_t>(limits.max_attributes_per_element),
                         "max_attributes_per_element"),
           ChildPath(ctx, localname));
    return;
  }
  for (std::ptrdiff_t i = 0; i < nb_namespaces; ++i) {
    const xmlChar** declaration = namespaces + 2 * i;  // prefix, URI
    if (!CheckNameLength(ctx, Length(declaration[0]), "a namespace prefix") ||
        !CheckTextLength(ctx, Length(declaration[1]), "a namespace name")) {
      return;
    }
  }
  for (std::ptrdiff_t i = 0; i < nb_attributes; ++i) {
    const xmlChar** attribute = attributes + 5 * i;  // localname, prefix, URI, value, end
    if (!CheckNameLength(ctx, QualifiedNameLength(attribute[1], attribute[0]),
                         "an attribute name") ||
        !CheckTextLength(ctx, static_cast<std::size_t>(attribute[4] - attribute[3]),
                         "an attribute value")) {
      return;
    }
  }
  if (guard->original.startElementNs != nullptr) {
    guard->original.startElementNs(ctx, localname, prefix, uri, nb_namespaces, namespaces,
                                   nb_attributes, nb_defaulted, attributes);
  }
}

void OnEndElementNs(void* ctx, const xmlChar* localname, const xmlChar* prefix,
                    const xmlChar* uri) {
  SaxGuard* guard = GuardOf(ctx);
  EndText(ctx);
  --guard->depth;
  if (guard->original.endElementNs != nullptr) {
    guard->original.endElementNs(ctx, localname, prefix, uri);
  }
}

// libxml2 delivers one text node in several chunks; they add up until the next other event.
bool AddText(void* ctx, int len) {
  SaxGuard* guard = GuardOf(ctx);
  if (!guard->in_text) {
    guard->in_text = true;
    guard->text_length = 0;
    if (!CountNode(ctx)) {
      return false;
    }
  }
  guard->text_length += static_cast<std::size_t>(len);
  return CheckTextLength(ctx, guard->text_length, "a text node");
}

void OnCharacters(void* ctx, const xmlChar* ch, int len) {
  if (!AddText(ctx, len)) {
    return;
  }
  SaxGuard* guard = GuardOf(ctx);
  if (guard->original.characters != nullptr) {
    guard->original.characters(ctx, ch, len);
  }
}

void OnIgnorableWhitespace(void* ctx, const xmlChar* ch, int len) {
  if (!AddText(ctx, len)) {
    return;
  }
  SaxGuard* guard = GuardOf(ctx);
  if (guard->original.ignorableWhitespace != nullptr) {
    guard->original.ignorableWhitespace(ctx, ch, len);
  }
}

void OnCdataBlock(void* ctx, const xmlChar* value, int len) {
  if (!AddText(ctx, len)) {
    return;
  }
  SaxGuard* guard = GuardOf(ctx);
  if (guard->original.cdataBlock != nullptr) {
    guard->original.cdataBlock(ctx, value, len);
  }
}

void OnComment(void* ctx, const xmlChar* value) {
  EndText(ctx);
  if (!CountNode(ctx) || !CheckTextLength(ctx, Length(value), "a comment")) {
    return;
  }
  SaxGuard* guard = GuardOf(ctx);
  if (guard->original.comment != nullptr) {
    guard->original.comment(ctx, value);
  }
}

void OnProcessingInstruction(void* ctx, const xmlChar* target, const xmlChar* data) {
  EndText(ctx);
  if (!CountNode(ctx) || !CheckNameLength(ctx, Length(target), "a processing instruction target") ||
      !CheckTextLength(ctx, Length(data), "a processing instruction")) {
    return;
  }
  SaxGuard* guard = GuardOf(ctx);
  if (guard->original.processingInstruction != nullptr) {
    guard->original.processingInstruction(ctx, target, data);
  }
}

// Replaces libxml2's default printing to stderr: keeps the first error for the Problem.
void OnStructuredError(void* ctx, xmlErrorPtr error) {
  if (error == nullptr || error->level < XML_ERR_ERROR) {
    return;
  }
  SaxGuard* guard = GuardOf(ctx);
  if (guard->has_error) {
    return;
  }
  guard->has_error = true;
  guard->error_code = error->code;
  // Only the first line: libxml2 puts raw document bytes on the next ones ("Bytes: 0x..").
  std::string text = error->message != nullptr ? error->message : "unknown error";
  text = text.substr(0, text.find('\n'));
  if (text.size() > 200) {
    text.resize(200);
    // Never end inside a UTF-8 sequence (names in the message may be non-ASCII): the text goes
    // into JSON, which must be valid UTF-8. Dropping a whole last character is fine here.
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) {
      text.pop_back();
    }
    if (!text.empty() && static_cast<unsigned char>(text.back()) >= 0xC0) {
      text.pop_back();
    }
  }
  while (!text.empty() && IsXmlSpace(text.back())) {
    text.pop_back();
  }
  guard->first_error.message = std::move(text);
  guard->first_error.line = error->line;
  guard->first_error.column = error->int2;
}

struct ParserCtxtDeleter {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};

void InstallGuard(xmlParserCtxtPtr ctxt, SaxGuard* guard) {
  xmlSAXHandler* sax = ctxt->sax;
  guard->original = *sax;
  ctxt->_private = guard;
  sax->internalSubset = OnInternalSubset;
  sax->externalSubset = OnInternalSubset;
  sax->entityDecl = OnEntityDecl;
  sax->startElementNs = OnStartElementNs;
  sax->endElementNs = OnEndElementNs;
  sax->characters = OnCharacters;
  sax->ignorableWhitespace = OnIgnorableWhitespace;
  // NOCDATA leaves cdataBlock null so that CDATA arrives through `characters`; keep it that way.
  if (sax->cdataBlock != nullptr) {
    sax->cdataBlock = OnCdataBlock;
  }
  sax->comment = OnComment;
  sax->processingInstruction = OnProcessingInstruction;
  sax->serror = OnStructuredError;
  sax->warning = nullptr;
  sax->error = nullptr;
  sax->fatalError = nullptr;
  sax->initialized = XML_SAX2_MAGIC;
}

}  // namespace

StatusOr<XmlDocPtr> ParseUntrustedXml(std::string_view bytes, const XmlLimits& limits,
                                      Problem* problem) {
  if (bytes.size() > limits.max_bytes || bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return Fail(problem, StatusCode::kTooLarge, "PSL-XML-SIZE",
                "the document is " + std::to_string(bytes.size()) + " bytes, more than " +
                    LimitText(limits.max_bytes, "max_bytes"),
                0, 0, "");
  }
  std::string_view body = bytes;
  if (StartsWith(body, 0, "\xEF\xBB\xBF")) {
    body.remove_prefix(3);
  }
  if (std::all_of(body.begin(), body.end(), IsXmlSpace)) {
    return Fail(problem, StatusCode::kMalformed, "PSL-XML-EMPTY", "the document is empty", 0, 0,
                "");
  }
  std::optional<Finding> finding = CheckEncodingAndDoctype(body);
  if (!finding) {
    finding = CheckAttributeCounts(body, limits);
  }
  if (finding) {
    const auto [line, column] = PositionOf(body, finding->offset);
    return Fail(problem, StatusCode::kMalformed, std::move(finding->code),
                std::move(finding->message), line, column, "");
  }

  std::unique_ptr<xmlParserCtxt, ParserCtxtDeleter> ctxt(
      xmlCreateMemoryParserCtxt(body.data(), static_cast<int>(body.size())));
  if (ctxt == nullptr) {
    return Fail(problem, StatusCode::kInternal, "PSL-XML-SYNTAX",
                "libxml2 could not create a parser context", 0, 0, "");
  }
  xmlCtxtUseOptions(ctxt.get(), kParseOptions);
  // Process-wide defaults (xmlSubstituteEntitiesDefault, xmlLoadExtDtdDefaultValue...) may have
  // been changed by other libxml2 users; this context must not inherit them.
  ctxt->replaceEntities = 0;
  ctxt->loadsubset = 0;
  ctxt->validate = 0;
  ctxt->recovery = 0;
  ctxt->keepBlanks = 1;
  ctxt->linenumbers = 1;  // node->line, for later schema-validation problems

  SaxGuard guard;
  guard.limits = &limits;
  guard.max_depth = std::min(limits.max_depth, kLibxmlMaxDepth);
  InstallGuard(ctxt.get(), &guard);

  xmlParseDocument(ctxt.get());
  XmlDocPtr doc(ctxt->myDoc);
  ctxt->myDoc = nullptr;
  const bool well_formed = ctxt->wellFormed != 0 && ctxt->nsWellFormed != 0;
  ctxt.reset();

  if (guard.breached) {
    return Fail(problem, StatusCode::kMalformed, guard.breach.code, guard.breach.message,
                guard.breach.line, guard.breach.column, guard.breach.path);
  }
  if (!well_formed || guard.has_error || doc == nullptr) {
    std::string code = "PSL-XML-SYNTAX";
    std::string message = "the document is not well-formed XML: ";
    if (guard.error_code == XML_ERR_DOCUMENT_EMPTY) {
      code = "PSL-XML-EMPTY";
      message = "the document has no root element: ";
    } else if (guard.error_code == XML_ERR_NAME_TOO_LONG) {
      code = "PSL-XML-NAME";
      message = "a name is longer than libxml2 allows: ";
    } else if (guard.first_error.message.rfind("Excessive depth", 0) == 0) {
      code = "PSL-XML-DEPTH";
      message = "elements are nested deeper than libxml2 allows: ";
    }
    message += guard.has_error ? guard.first_error.message : std::string("no document");
    return Fail(problem, StatusCode::kMalformed, std::move(code), std::move(message),
                guard.first_error.line, guard.first_error.column, "");
  }
  return doc;
}

StatusOr<XmlDocPtr> ParseUntrustedXmlNamed(std::string_view bytes, const XmlLimits& limits,
                                           std::string_view what) {
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(bytes, limits, &problem);
  if (!doc.ok()) {
    return Status(doc.status().code(), std::string(what) + " does not parse (" + problem.code +
                                           " at line " + std::to_string(problem.line) +
                                           "): " + problem.message);
  }
  return doc;
}

std::string NodePath(const xmlNode* node) {
  if (node == nullptr) {
    return "";
  }
  std::string attribute;
  if (node->type == XML_ATTRIBUTE_NODE) {
    attribute = "/@" + std::string(View(node->name));
    node = node->parent;
  } else if (node->type != XML_ELEMENT_NODE) {
    node = node->parent;  // text, comment...: the element holding it
  }
  std::vector<std::string_view> names;
  for (; node != nullptr && node->type == XML_ELEMENT_NODE; node = node->parent) {
    names.push_back(View(node->name));
  }
  std::string path;
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    path += '/';
    path += *it;
  }
  path += attribute;
  return path.empty() ? "/" : path;
}

XmlLibrary::XmlLibrary() {
  // The one documented process-wide initialisation (STYLE.md §2).
  static std::once_flag once;
  std::call_once(once, [] {
    xmlInitParser();
    xmlSetExternalEntityLoader(GuardedExternalEntityLoader);
  });
}

// No xmlCleanupParser: it is not safe while any other libxml2 user (xmlsec, schemas, other
// threads) may still run, and the process is ending anyway.
XmlLibrary::~XmlLibrary() = default;

ScopedExternalLoader::ScopedExternalLoader(Loader loader)
    : loader_(std::move(loader)), previous_(t_active_loader) {
  t_active_loader = &loader_;
}

ScopedExternalLoader::~ScopedExternalLoader() {
  t_active_loader = previous_;
}

std::uint64_t RefusedExternalLoadCount() {
  return g_refused_loads.load(std::memory_order_relaxed);
}

}  // namespace psl::codecs
