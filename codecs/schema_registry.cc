#include "codecs/schema_registry.h"

#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/uri.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlschemas.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <system_error>
#include <utility>

#include "base/digest.h"
#include "codecs/xml_parser.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

namespace fs = std::filesystem;

constexpr char kXsdNamespace[] = "http://www.w3.org/2001/XMLSchema";
constexpr char kMhmEntry[] =
    "ehealth-mycarenet-medicalhousemembership/XSD/"
    "mycarenet-medical-house-membership-protocol-1_0.xsd";
constexpr char kGenAsyncEntry[] = "mycarenet-genasync/XSD/mycarenet-genasync-v1.xsd";
constexpr char kEAttestEntry[] = "ehealth-mycarenet-attest/XSD/mycarenet-attest-protocol-3_0.xsd";
constexpr char kEncryptedKnownContentEntry[] =
    "ehealth-mycarenet-attest/XSD/encryption/businessContent.xsd";
constexpr char kMediPrimaUmaEntry[] =
    "ehealth-mediprima-uma/XSD/ehealth-mediprima-uma-protocol-1_0.xsd";
constexpr char kMediPrimaConsultEntry[] =
    "ehealth-mediprima/XSD/ehealth-mediprima-protocol-2_0.xsd";
constexpr char kMessageServicesDir[] = "ehealth-messageservices/XSD/";
constexpr char kMessageServicesProtocol[] = "messageservices_protocol-1_2";
constexpr char kMessageServicesCore[] = "messageservices_core-1_2";
constexpr char kKmehrDir[] = "ehealth-kmehr/XSD/";
// From the messageservices folder, where the generated wrappers are served.
constexpr char kKmehrFromMessageServices[] = "../../ehealth-kmehr/XSD/";

// Ascending: KmehrVersionFor picks the first (lowest) version listing a CD-STANDARD value.
constexpr std::array<const char*, 3> kKmehrVersions = {"1.29", "1.32", "1.42"};

// The four kmehr namespaces messageservices_core imports, with the file stem of each.
struct KmehrImport {
  const char* ns;
  const char* stem;
};
constexpr std::array<KmehrImport, 4> kKmehrImports = {{
    {"http://www.ehealth.fgov.be/standards/kmehr/id/v1", "id"},
    {"http://www.ehealth.fgov.be/standards/kmehr/cd/v1", "cd"},
    {"http://www.ehealth.fgov.be/standards/kmehr/dt/v1", "dt"},
    {"http://www.ehealth.fgov.be/standards/kmehr/schema/v1", "kmehr"},
}};
constexpr char kMessageServicesCoreNamespace[] =
    "http://www.ehealth.fgov.be/messageservices/core/v1";

// A hostile document can raise one error per element; the first ones say what to fix.
constexpr std::size_t kMaxProblemsPerValidation = 50;
// An enumeration set longer than this is elided from messages (kmehr code tables are huge).
constexpr std::size_t kMaxEnumerationSetLength = 240;

// "1.42" -> "1_42", the spelling used in the XSD file names.
std::string Underscored(std::string_view version) {
  std::string out(version);
  std::replace(out.begin(), out.end(), '.', '_');
  return out;
}

bool IsUnder(const fs::path& candidate, const fs::path& root) {
  auto [root_end, unused] =
      std::mismatch(root.begin(), root.end(), candidate.begin(), candidate.end());
  return root_end == root.end();
}

// Digests of everything read while compiling, shared by every set of one Load().
class DigestRecorder {
 public:
  // A file read twice with different contents (changed during Load) is an error.
  Status Record(std::string relative_path, std::string sha256_hex) {
    auto [it, inserted] = digests_.emplace(std::move(relative_path), sha256_hex);
    if (!inserted && it->second != sha256_hex) {
      return Status::FailedPrecondition("schema file '" + it->first +
                                        "' changed while the schemas were being loaded");
    }
    return Status::Ok();
  }
  std::vector<SchemaFileDigest> Sorted() const {
    std::vector<SchemaFileDigest> out;
    for (const auto& [path, digest] : digests_) {
      out.push_back({path, digest});
    }
    return out;  // std::map iterates in path order
  }

 private:
  std::map<std::string, std::string> digests_;
};

// Reads files only from under the canonical root; records each file's digest.
class RootReader {
 public:
  RootReader(fs::path canonical_root, DigestRecorder* recorder)
      : root_(std::move(canonical_root)), recorder_(recorder) {}

  const fs::path& root() const { return root_; }

  // `path` absolute, or relative to the root. Refuses anything resolving outside the root
  // (.. or symlinks); kFailedPrecondition names the file.
  StatusOr<std::string> Read(const fs::path& path) const {
    const fs::path absolute = path.is_absolute() ? path : root_ / path;
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(absolute, ec);
    if (ec || !IsUnder(canonical, root_)) {
      return Status::FailedPrecondition("refused to read schema '" + absolute.string() +
                                        "': it is outside the schema root '" + root_.string() +
                                        "'");
    }
    const std::string relative = canonical.lexically_relative(root_).generic_string();
    if (!fs::is_regular_file(canonical, ec)) {
      return Status::FailedPrecondition("missing schema file '" + relative +
                                        "' under the schema root '" + root_.string() + "'");
    }
    std::ifstream in(canonical, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      return Status::FailedPrecondition("cannot read schema file '" + relative + "'");
    }
    PSL_RETURN_IF_ERROR(recorder_->Record(relative, Sha256Hex(bytes)));
    return bytes;
  }

  std::string Relative(const fs::path& canonical) const {
    return canonical.lexically_relative(root_).generic_string();
  }

 private:
  fs::path root_;
  DigestRecorder* recorder_;
};

// Generated (in-memory) schema documents by the virtual absolute path they are served at.
using VirtualFiles = std::map<std::string, std::string>;

// Serves the schema parser's external loads during one compilation: virtual files first,
// then real files under the root; refuses every other URL (network schemes, paths outside the
// root). The first refusal is kept so Load() fails even where libxml2 only warns (a failed
// xs:import is a warning to libxml2, which then "skips the import").
class CompileLoader {
 public:
  CompileLoader(const RootReader* reader, const VirtualFiles* virtual_files)
      : reader_(reader), virtual_files_(virtual_files) {}

  xmlParserInputPtr Load(const char* url, xmlParserCtxtPtr ctxt) {
    if (url == nullptr) {
      return Refuse(Status::FailedPrecondition("schema load without a URL"));
    }
    std::string_view view(url);
    std::string path_text;
    if (view.substr(0, 8) == "file:///") {
      char* unescaped = xmlURIUnescapeString(url + 7, 0, nullptr);
      if (unescaped == nullptr) {
        return Refuse(Status::FailedPrecondition("bad schema URL"));
      }
      path_text = unescaped;
      xmlFree(unescaped);
    } else if (view.find(':') != std::string_view::npos && view.find(':') < view.find('/')) {
      return Refuse(Status::FailedPrecondition("refused to load schema '" + std::string(view) +
                                               "': only files under the schema root are read"));
    } else {
      path_text = std::string(view);
      // libxml2 builds import URLs from the URI-escaped document URL ("a b" -> "a%20b").
      std::error_code ec;
      if (path_text.find('%') != std::string::npos && !fs::exists(path_text, ec) &&
          virtual_files_->find(fs::path(path_text).lexically_normal().string()) ==
              virtual_files_->end()) {
        if (char* unescaped = xmlURIUnescapeString(url, 0, nullptr); unescaped != nullptr) {
          path_text = unescaped;
          xmlFree(unescaped);
        }
      }
    }
    const fs::path path = fs::path(path_text).lexically_normal();
    if (!path.is_absolute()) {
      return Refuse(Status::FailedPrecondition("refused to load schema '" + path_text +
                                               "': not an absolute path under the schema root"));
    }
    std::string bytes;
    std::string filename;
    if (auto it = virtual_files_->find(path.string()); it != virtual_files_->end()) {
      bytes = it->second;
      filename = path.string();
    } else {
      StatusOr<std::string> read = reader_->Read(path);
      if (!read.ok()) {
        return Refuse(read.status());
      }
      bytes = std::move(read).value();
      std::error_code ec;
      filename = fs::weakly_canonical(path, ec).string();
    }
    return NewInput(ctxt, bytes, filename);
  }

  const Status& first_error() const { return first_error_; }

 private:
  xmlParserInputPtr Refuse(Status status) {
    if (first_error_.ok()) {
      first_error_ = std::move(status);
    }
    return nullptr;
  }

  // The bytes are copied into the input buffer; `filename` becomes the document URL, against
  // which the schema parser resolves relative schemaLocations.
  xmlParserInputPtr NewInput(xmlParserCtxtPtr ctxt, const std::string& bytes,
                             const std::string& filename) {
    xmlParserInputBufferPtr buffer = xmlParserInputBufferCreateMem(
        bytes.data(), static_cast<int>(bytes.size()), XML_CHAR_ENCODING_NONE);
    if (buffer == nullptr) {
      return Refuse(Status::Internal("out of memory loading a schema"));
    }
    xmlParserInputPtr input = xmlNewIOInputStream(ctxt, buffer, XML_CHAR_ENCODING_NONE);
    if (input == nullptr) {
      xmlFreeParserInputBuffer(buffer);
      return Refuse(Status::Internal("out of memory loading a schema"));
    }
    input->filename = FromXmlChar(xmlStrdup(ToXmlChar(filename.c_str())));
    return input;
  }

  const RootReader* reader_;
  const VirtualFiles* virtual_files_;
  Status first_error_;
};

// Routes this thread's libxml2 "global" structured errors (those raised by parser contexts that
// libxml2 creates internally, e.g. for each schema document) to `handler` while alive, so nothing
// reaches stderr. libxml2 keeps these handlers per thread.
class ScopedThreadErrorHandler {
 public:
  ScopedThreadErrorHandler(xmlStructuredErrorFunc handler, void* context)
      : previous_handler_(xmlStructuredError), previous_context_(xmlStructuredErrorContext) {
    xmlSetStructuredErrorFunc(context, handler);
  }
  ~ScopedThreadErrorHandler() { xmlSetStructuredErrorFunc(previous_context_, previous_handler_); }
  ScopedThreadErrorHandler(const ScopedThreadErrorHandler&) = delete;
  ScopedThreadErrorHandler& operator=(const ScopedThreadErrorHandler&) = delete;
  ScopedThreadErrorHandler(ScopedThreadErrorHandler&&) = delete;
  ScopedThreadErrorHandler& operator=(ScopedThreadErrorHandler&&) = delete;

 private:
  xmlStructuredErrorFunc previous_handler_;
  void* previous_context_;
};

std::string TrimMessage(const char* message) {
  std::string out = message == nullptr ? "" : message;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) {
    out.pop_back();
  }
  return out;
}

// Collects compile errors. Warnings are ignored ("skipping import, namespace already imported"),
// and so is the known harmless namespace error of mycarenet-commons-core-2_0/3_0, which declare
// an unused xmlns:ns1="urn:...:v{version.major}" (an unexpanded Maven property): libxml2 reports
// "is not a valid URI" (XML_WAR_NS_URI, raised at error level) and compiles anyway.
struct CompileErrors {
  std::string first_error;

  static bool IsHarmless(const xmlError& error) {
    return error.domain == XML_FROM_NAMESPACE && error.code == XML_WAR_NS_URI;
  }

  static void Handle(void* context, xmlErrorPtr error) {
    auto* self = static_cast<CompileErrors*>(context);
    if (error == nullptr || error->level < XML_ERR_ERROR || IsHarmless(*error) ||
        !self->first_error.empty()) {
      return;
    }
    std::string where = error->file != nullptr ? error->file : "";
    self->first_error =
        where + ":" + std::to_string(error->line) + ": " + TrimMessage(error->message);
  }
};

// Loads `entry` (a real path under the root or a virtual file) and compiles its closure.
StatusOr<XmlSchemaPtr> CompileSet(std::string_view set_name, const fs::path& entry,
                                  const RootReader& reader, const VirtualFiles& virtual_files) {
  CompileLoader loader(&reader, &virtual_files);
  CompileErrors errors;
  XmlSchemaPtr schema;
  {
    ScopedExternalLoader scoped_loader(
        [&loader](const char* url, const char*, xmlParserCtxtPtr ctxt) {
          return loader.Load(url, ctxt);
        });
    ScopedThreadErrorHandler thread_errors(&CompileErrors::Handle, &errors);
    XmlSchemaParserCtxtPtr parser(xmlSchemaNewParserCtxt(entry.string().c_str()));
    if (parser == nullptr) {
      return Status::Internal("cannot create a schema parser context");
    }
    xmlSchemaSetParserStructuredErrors(parser.get(), &CompileErrors::Handle, &errors);
    schema.reset(xmlSchemaParse(parser.get()));
  }
  const std::string prefix = "schema set '" + std::string(set_name) + "': ";
  if (!loader.first_error().ok()) {
    return Status::FailedPrecondition(prefix + loader.first_error().message());
  }
  if (!errors.first_error.empty()) {
    std::string message = errors.first_error;
    const std::string root_prefix = reader.root().string() + "/";
    if (message.rfind(root_prefix, 0) == 0) {
      message.erase(0, root_prefix.size());
    }
    return Status::FailedPrecondition(prefix + "does not compile: " + message);
  }
  if (schema == nullptr) {
    return Status::FailedPrecondition(prefix + "'" + reader.Relative(entry) + "' does not compile");
  }
  return schema;
}

// Parses schema text read from the root (no network, no entities, no DTD).
StatusOr<XmlDocPtr> ParseSchemaText(const std::string& text, const std::string& relative) {
  CompileErrors errors;
  XmlDocPtr doc;
  {
    ScopedThreadErrorHandler thread_errors(&CompileErrors::Handle, &errors);
    doc.reset(xmlReadMemory(text.data(), static_cast<int>(text.size()), relative.c_str(), nullptr,
                            XML_PARSE_NONET));
  }
  if (doc == nullptr || xmlDocGetRootElement(doc.get()) == nullptr) {
    return Status::FailedPrecondition("schema file '" + relative +
                                      "' is not well-formed XML: " + errors.first_error);
  }
  return doc;
}

bool IsXsd(const xmlNode* node, const char* local_name) {
  return node->type == XML_ELEMENT_NODE && node->ns != nullptr &&
         xmlStrEqual(node->ns->href, ToXmlChar(kXsdNamespace)) &&
         xmlStrEqual(node->name, ToXmlChar(local_name));
}

std::string Attribute(const xmlNode* node, const char* name) {
  XmlCharPtr value(xmlGetNoNsProp(node, ToXmlChar(name)));
  return value == nullptr ? "" : FromXmlChar(value.get());
}

// Re-points the top-level xs:import elements of `text` by namespace (every namespace in
// `locations` must be imported exactly once) and returns the serialized document.
StatusOr<std::string> RewriteImports(const std::string& text, const std::string& relative,
                                     const std::map<std::string, std::string>& locations) {
  StatusOr<XmlDocPtr> doc = ParseSchemaText(text, relative);
  if (!doc.ok()) {
    return doc.status();
  }
  std::map<std::string, int> seen;
  for (xmlNode* child = xmlDocGetRootElement(doc->get())->children; child != nullptr;
       child = child->next) {
    if (!IsXsd(child, "import")) {
      continue;
    }
    auto it = locations.find(Attribute(child, "namespace"));
    if (it == locations.end()) {
      continue;
    }
    ++seen[it->first];
    xmlSetProp(child, ToXmlChar("schemaLocation"), ToXmlChar(it->second.c_str()));
  }
  for (const auto& [ns, location] : locations) {
    if (seen[ns] != 1) {
      std::string message = "schema file '" + relative + "' does not import namespace '";
      message += ns;
      message += "' exactly once; cannot re-point it";
      return Status::FailedPrecondition(std::move(message));
    }
  }
  xmlChar* out = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(doc->get(), &out, &size, "UTF-8");
  XmlCharPtr owned(out);
  if (owned == nullptr) {
    return Status::Internal("cannot serialize a generated schema");
  }
  return std::string(FromXmlChar(owned.get()), static_cast<std::size_t>(size));
}

// The CD-STANDARD enumeration values of one kmehr cd-1_V.xsd.
StatusOr<std::vector<std::string>> CdStandardValues(const std::string& text,
                                                    const std::string& relative) {
  StatusOr<XmlDocPtr> doc = ParseSchemaText(text, relative);
  if (!doc.ok()) {
    return doc.status();
  }
  std::vector<std::string> values;
  for (xmlNode* type = xmlDocGetRootElement(doc->get())->children; type != nullptr;
       type = type->next) {
    if (!IsXsd(type, "simpleType") || Attribute(type, "name") != "CD-STANDARDvalues") {
      continue;
    }
    for (xmlNode* restriction = type->children; restriction != nullptr;
         restriction = restriction->next) {
      if (!IsXsd(restriction, "restriction")) {
        continue;
      }
      for (xmlNode* facet = restriction->children; facet != nullptr; facet = facet->next) {
        if (IsXsd(facet, "enumeration")) {
          values.push_back(Attribute(facet, "value"));
        }
      }
    }
  }
  if (values.empty()) {
    return Status::FailedPrecondition("schema file '" + relative +
                                      "' has no CD-STANDARDvalues enumeration");
  }
  return values;
}

// validation errors

bool EndsWith(std::string_view text, std::string_view suffix) {
  return text.size() >= suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

void ReplaceAll(std::string* text, const std::string& from, const std::string& to) {
  for (std::size_t at = text->find(from); at != std::string::npos;
       at = text->find(from, at + to.size())) {
    text->replace(at, from.size(), to);
  }
}

std::string CollapseWhitespace(std::string_view value) {
  std::string out;
  bool pending_space = false;
  for (char c : value) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      pending_space = !out.empty();
    } else {
      if (pending_space) {
        out.push_back(' ');
      }
      pending_space = false;
      out.push_back(c);
    }
  }
  return out;
}

// The values the reported node carries (its own text, its attributes' values): any of them
// quoted in the message is replaced even when it contains a quote.
std::vector<std::string> NodeValues(const xmlNode* node) {
  std::vector<std::string> values;
  if (node == nullptr) {
    return values;
  }
  if (node->type == XML_ATTRIBUTE_NODE) {
    XmlCharPtr value(xmlNodeGetContent(node));
    if (value != nullptr) {
      values.emplace_back(FromXmlChar(value.get()));
    }
  } else if (node->type == XML_ELEMENT_NODE) {
    std::string text;
    for (const xmlNode* child = node->children; child != nullptr; child = child->next) {
      if ((child->type == XML_TEXT_NODE || child->type == XML_CDATA_SECTION_NODE) &&
          child->content != nullptr) {
        text += FromXmlChar(child->content);
      }
    }
    values.push_back(text);
    for (const xmlAttr* attr = node->properties; attr != nullptr; attr = attr->next) {
      XmlCharPtr value(xmlNodeGetContent(reinterpret_cast<const xmlNode*>(attr)));
      if (value != nullptr) {
        values.emplace_back(FromXmlChar(value.get()));
      }
    }
  }
  std::vector<std::string> all;
  for (const std::string& v : values) {
    if (!v.empty()) {
      all.push_back(v);
    }
    std::string collapsed = CollapseWhitespace(v);
    if (!collapsed.empty() && collapsed != v) {
      all.push_back(std::move(collapsed));
    }
  }
  // Longest first, so a value containing another is replaced whole.
  std::sort(all.begin(), all.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  return all;
}

// Whether a quoted token following `before` names a schema component (kept) rather than
// carrying an instance value (replaced). Unknown contexts count as values.
bool QuotesSchemaName(std::string_view before) {
  static constexpr std::array<std::string_view, 12> kNameContexts = {
      "Element ",    "attribute ", "type ",   "[facet ", "pattern ",  "patterns ",
      "constraint ", "keyref ",    "unique ", "key ",    "allowed (", "length of "};
  for (std::string_view context : kNameContexts) {
    if (EndsWith(before, context)) {
      return true;
    }
  }
  return false;
}

bool EndsQuote(std::string_view message, std::size_t at) {
  if (at + 1 >= message.size()) {
    return true;
  }
  const char next = message[at + 1];
  return next == ' ' || next == '.' || next == ',' || next == ';' || next == ':' || next == ')' ||
         next == ']' || next == '}';
}
}  // namespace

std::string SanitizeSchemaMessage(const char* libxml2_message, const xmlNode* node) {
  std::string message = TrimMessage(libxml2_message);
  for (const std::string& value : NodeValues(node)) {
    ReplaceAll(&message, "'" + value + "'", "'…'");
  }
  // libxml2 (valid.c) prints duplicate IDs unquoted.
  if (message.find("already defined") != std::string::npos &&
      message.find("ID ") != std::string::npos) {
    return "ID already defined in the document";
  }
  std::string out;
  out.reserve(message.size());
  std::size_t i = 0;
  while (i < message.size()) {
    if (message.compare(i, 5, "set {") == 0) {
      const std::size_t close = message.find('}', i);
      const std::size_t end = close == std::string::npos ? message.size() : close + 1;
      if (end - i <= kMaxEnumerationSetLength) {
        out.append(message, i, end - i);
      } else {
        out.append("set {…}");
      }
      i = end;
      continue;
    }
    if (message[i] != '\'') {
      out.push_back(message[i++]);
      continue;
    }
    std::size_t close = message.find('\'', i + 1);
    while (close != std::string::npos && !EndsQuote(message, close)) {
      close = message.find('\'', close + 1);
    }
    if (close == std::string::npos) {
      out.append("'…'");
      break;
    }
    if (QuotesSchemaName(out)) {
      out.append(message, i, close - i + 1);
    } else {
      out.append("'…'");
    }
    i = close + 1;
  }
  return out;
}

namespace {

// libxml2 reports an attribute's error on its element, naming the attribute in the message
// prefix: "Element '{ns}name', attribute '{ns}attr': ...". Returns "/@attr" then, else "".
std::string AttributeStep(const char* message) {
  if (message == nullptr) {
    return "";
  }
  const std::string_view text(message);
  const std::string_view marker = "', attribute '";
  const std::size_t prefix_end = text.find("': ");
  const std::size_t at = text.find(marker);
  if (text.substr(0, 9) != "Element '" || at == std::string_view::npos || at > prefix_end) {
    return "";
  }
  std::string_view name = text.substr(at + marker.size(), prefix_end - at - marker.size());
  if (const std::size_t brace = name.rfind('}'); brace != std::string_view::npos) {
    name.remove_prefix(brace + 1);
  }
  return "/@" + std::string(name);
}

// Collects validation errors of one Validate call into Problems.
struct ValidationCollector {
  std::vector<Problem>* problems;
  std::string document;
  std::size_t errors = 0;
  std::size_t dropped = 0;

  static void Handle(void* context, xmlErrorPtr error) {
    auto* self = static_cast<ValidationCollector*>(context);
    if (error == nullptr || error->level < XML_ERR_ERROR) {
      return;
    }
    ++self->errors;
    if (self->errors > kMaxProblemsPerValidation) {
      ++self->dropped;
      return;
    }
    const auto* node = static_cast<const xmlNode*>(error->node);
    Problem problem;
    problem.code = "PSL-SCHEMA";
    problem.message = SanitizeSchemaMessage(error->message, node);
    problem.line = error->line;
    problem.column = error->int2;
    if (node != nullptr) {
      if (node->type == XML_ATTRIBUTE_NODE) {
        problem.path = NodePath(node->parent) + "/@" + FromXmlChar(node->name);
      } else {
        problem.path = NodePath(node) + AttributeStep(error->message);
      }
      if (problem.line == 0) {
        const auto line = xmlGetLineNo(node);
        problem.line = line > 0 && line <= INT_MAX ? static_cast<int>(line) : 0;
      }
    }
    problem.document = self->document;
    self->problems->push_back(std::move(problem));
  }
};

bool ValidateWith(const xmlSchema* schema, xmlDoc* doc, std::string_view document,
                  std::vector<Problem>* problems) {
  ValidationCollector collector{problems, std::string(document)};
  // Not const in libxml2's signature; validation only reads the compiled schema.
  XmlSchemaValidCtxtPtr context(xmlSchemaNewValidCtxt(const_cast<xmlSchema*>(schema)));
  if (context == nullptr || doc == nullptr) {
    problems->push_back({"PSL-SCHEMA", "the document could not be schema-validated", 0, 0, "",
                         std::string(document)});
    return false;
  }
  xmlSchemaSetValidStructuredErrors(context.get(), &ValidationCollector::Handle, &collector);
  int result;
  {
    ScopedThreadErrorHandler thread_errors(&ValidationCollector::Handle, &collector);
    result = xmlSchemaValidateDoc(context.get(), doc);
  }
  if (collector.dropped > 0) {
    problems->push_back({"PSL-SCHEMA",
                         std::to_string(collector.dropped) +
                             " further schema errors not reported (limit " +
                             std::to_string(kMaxProblemsPerValidation) + ")",
                         0, 0, "", std::string(document)});
  }
  if (result != 0 && collector.errors == 0) {
    // An internal libxml2 failure (result < 0) or an error it did not report.
    problems->push_back({"PSL-SCHEMA", "schema validation failed without a reported error", 0, 0,
                         "", std::string(document)});
  }
  return result == 0 && collector.errors == 0;
}

std::string VirtualName(std::string_view stem, std::string_view version) {
  return std::string(stem) + ".kmehr-" + Underscored(version) + ".generated.xsd";
}

}  // namespace

struct SchemaRegistry::Impl {
  fs::path root;
  XmlSchemaPtr mhm;
  XmlSchemaPtr genasync;
  XmlSchemaPtr eattest;
  XmlSchemaPtr encrypted_known_content;
  XmlSchemaPtr mediprima_uma;
  XmlSchemaPtr mediprima_consult;
  std::map<std::string, XmlSchemaPtr, std::less<>> kmehr;
  std::map<std::string, std::string, std::less<>> cd_standard_versions;
  std::vector<SchemaFileDigest> files;
  std::map<std::string, std::string> generated;
};

SchemaRegistry::SchemaRegistry(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SchemaRegistry::~SchemaRegistry() = default;

StatusOr<std::unique_ptr<SchemaRegistry>> SchemaRegistry::Load(const fs::path& root) {
  std::error_code ec;
  const fs::path canonical_root = fs::canonical(root, ec);
  if (ec || !fs::is_directory(canonical_root, ec)) {
    return Status::FailedPrecondition("schema root '" + root.string() +
                                      "' does not exist or is not a folder");
  }
  auto impl = std::make_unique<Impl>();
  impl->root = canonical_root;
  DigestRecorder recorder;
  RootReader reader(canonical_root, &recorder);
  const VirtualFiles no_virtual_files;

  StatusOr<XmlSchemaPtr> mhm =
      CompileSet("mhm", canonical_root / kMhmEntry, reader, no_virtual_files);
  if (!mhm.ok()) {
    return mhm.status();
  }
  impl->mhm = std::move(mhm).value();

  StatusOr<XmlSchemaPtr> genasync =
      CompileSet("genasync", canonical_root / kGenAsyncEntry, reader, no_virtual_files);
  if (!genasync.ok()) {
    return genasync.status();
  }
  impl->genasync = std::move(genasync).value();

  StatusOr<XmlSchemaPtr> eattest =
      CompileSet("eattest", canonical_root / kEAttestEntry, reader, no_virtual_files);
  if (!eattest.ok()) {
    return eattest.status();
  }
  impl->eattest = std::move(eattest).value();
  StatusOr<XmlSchemaPtr> known_content =
      CompileSet("encrypted-known-content", canonical_root / kEncryptedKnownContentEntry, reader,
                 no_virtual_files);
  if (!known_content.ok()) {
    return known_content.status();
  }
  impl->encrypted_known_content = std::move(known_content).value();

  StatusOr<XmlSchemaPtr> mediprima_uma =
      CompileSet("mediprima-uma", canonical_root / kMediPrimaUmaEntry, reader, no_virtual_files);
  if (!mediprima_uma.ok()) {
    return mediprima_uma.status();
  }
  impl->mediprima_uma = std::move(mediprima_uma).value();
  StatusOr<XmlSchemaPtr> mediprima_consult = CompileSet(
      "mediprima-consult", canonical_root / kMediPrimaConsultEntry, reader, no_virtual_files);
  if (!mediprima_consult.ok()) {
    return mediprima_consult.status();
  }
  impl->mediprima_consult = std::move(mediprima_consult).value();

  const std::string protocol_relative =
      std::string(kMessageServicesDir) + kMessageServicesProtocol + ".xsd";
  const std::string core_relative =
      std::string(kMessageServicesDir) + kMessageServicesCore + ".xsd";
  StatusOr<std::string> protocol_text = reader.Read(protocol_relative);
  if (!protocol_text.ok()) {
    return protocol_text.status();
  }
  StatusOr<std::string> core_text = reader.Read(core_relative);
  if (!core_text.ok()) {
    return core_text.status();
  }

  for (const char* version : kKmehrVersions) {
    const std::string v = Underscored(version);
    std::map<std::string, std::string> kmehr_locations;
    for (const KmehrImport& import : kKmehrImports) {
      kmehr_locations[import.ns] =
          std::string(kKmehrFromMessageServices) + import.stem + "-" + v + ".xsd";
    }
    StatusOr<std::string> core = RewriteImports(*core_text, core_relative, kmehr_locations);
    if (!core.ok()) {
      return core.status();
    }
    const std::string core_name = VirtualName(kMessageServicesCore, version);
    StatusOr<std::string> protocol = RewriteImports(*protocol_text, protocol_relative,
                                                    {{kMessageServicesCoreNamespace, core_name}});
    if (!protocol.ok()) {
      return protocol.status();
    }

    const fs::path directory = canonical_root / kMessageServicesDir;
    const fs::path protocol_path = directory / VirtualName(kMessageServicesProtocol, version);
    VirtualFiles virtual_files;
    virtual_files[(directory / core_name).string()] = *core;
    virtual_files[protocol_path.string()] = *protocol;
    const std::string core_key =
        "generated:" + std::string(kMessageServicesCore) + "@kmehr-" + version;
    const std::string protocol_key =
        "generated:" + std::string(kMessageServicesProtocol) + "@kmehr-" + version;
    PSL_RETURN_IF_ERROR(recorder.Record(core_key, Sha256Hex(*core)));
    PSL_RETURN_IF_ERROR(recorder.Record(protocol_key, Sha256Hex(*protocol)));
    impl->generated[core_key] = *core;
    impl->generated[protocol_key] = *protocol;

    StatusOr<XmlSchemaPtr> set =
        CompileSet(std::string("kmehr ") + version, protocol_path, reader, virtual_files);
    if (!set.ok()) {
      return set.status();
    }
    impl->kmehr.emplace(version, std::move(set).value());

    const std::string cd_relative = std::string(kKmehrDir) + "cd-" + v + ".xsd";
    StatusOr<std::string> cd_text = reader.Read(cd_relative);
    if (!cd_text.ok()) {
      return cd_text.status();
    }
    StatusOr<std::vector<std::string>> values = CdStandardValues(*cd_text, cd_relative);
    if (!values.ok()) {
      return values.status();
    }
    for (std::string& value : *values) {
      impl->cd_standard_versions.emplace(std::move(value), version);  // keeps the lowest
    }
  }
  impl->files = recorder.Sorted();
  return std::unique_ptr<SchemaRegistry>(new SchemaRegistry(std::move(impl)));
}

fs::path SchemaRegistry::DefaultRoot() {
  // Start-up only; nothing sets the environment concurrently.
  if (const char* configured = std::getenv("PSL_SCHEMAS_DIR");  // NOLINT(concurrency-mt-unsafe)
      configured != nullptr && *configured != '\0') {
    return configured;
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path exe_dir = exe.parent_path();
    candidates.push_back(exe_dir / "../../shared/schemas");
    candidates.push_back(exe_dir / "../shared/schemas");
  }
  candidates.emplace_back("./../shared/schemas");
  candidates.emplace_back("./shared/schemas");
  for (const fs::path& candidate : candidates) {
    if (fs::is_directory(candidate, ec)) {
      return candidate.lexically_normal();
    }
  }
  return "../shared/schemas";
}

bool SchemaRegistry::ValidateEnvelope(EnvelopeSchema set, xmlDoc* doc, std::string_view document,
                                      std::vector<Problem>* problems) const {
  switch (set) {
    case EnvelopeSchema::kMhm:
      return ValidateWith(impl_->mhm.get(), doc, document, problems);
    case EnvelopeSchema::kGenAsync:
      return ValidateWith(impl_->genasync.get(), doc, document, problems);
    case EnvelopeSchema::kEAttest:
      return ValidateWith(impl_->eattest.get(), doc, document, problems);
    case EnvelopeSchema::kEncryptedKnownContent:
      return ValidateWith(impl_->encrypted_known_content.get(), doc, document, problems);
    case EnvelopeSchema::kMediPrimaUma:
      return ValidateWith(impl_->mediprima_uma.get(), doc, document, problems);
    case EnvelopeSchema::kMediPrimaConsult:
      return ValidateWith(impl_->mediprima_consult.get(), doc, document, problems);
  }
  problems->push_back(
      {"PSL-SCHEMA", "unknown envelope schema set", 0, 0, "", std::string(document)});
  return false;
}

std::string SchemaRegistry::KmehrVersionFor(std::string_view cd_standard) const {
  auto it = impl_->cd_standard_versions.find(cd_standard);
  return it == impl_->cd_standard_versions.end() ? "" : it->second;
}

bool SchemaRegistry::ValidateKmehrRequest(std::string_view kmehr_version, xmlDoc* doc,
                                          std::string_view document,
                                          std::vector<Problem>* problems) const {
  auto it = impl_->kmehr.find(kmehr_version);
  if (it == impl_->kmehr.end()) {
    problems->push_back({"PSL-SCHEMA",
                         "no schema set is compiled for kmehr version '" +
                             std::string(kmehr_version.substr(0, 16)) + "'",
                         0, 0, "", std::string(document)});
    return false;
  }
  return ValidateWith(it->second.get(), doc, document, problems);
}

const std::vector<SchemaFileDigest>& SchemaRegistry::LoadedFiles() const {
  return impl_->files;
}

const std::map<std::string, std::string>& SchemaRegistry::GeneratedSchemas() const {
  return impl_->generated;
}

const fs::path& SchemaRegistry::root() const {
  return impl_->root;
}

}  // namespace psl::codecs
