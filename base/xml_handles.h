// RAII owners for libxml2 objects. Each deleter calls the matching libxml2 free function.
#ifndef PSL_BASE_XML_HANDLES_H_
#define PSL_BASE_XML_HANDLES_H_

#include <libxml/tree.h>
#include <libxml/xmlschemas.h>

#include <memory>

namespace psl {

struct XmlDocDeleter {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct XmlSchemaDeleter {
  void operator()(xmlSchema* s) const { xmlSchemaFree(s); }
};
struct XmlSchemaParserCtxtDeleter {
  void operator()(xmlSchemaParserCtxt* c) const { xmlSchemaFreeParserCtxt(c); }
};
struct XmlSchemaValidCtxtDeleter {
  void operator()(xmlSchemaValidCtxt* c) const { xmlSchemaFreeValidCtxt(c); }
};
struct XmlCharDeleter {
  void operator()(xmlChar* p) const { xmlFree(p); }
};

using XmlDocPtr = std::unique_ptr<xmlDoc, XmlDocDeleter>;
using XmlSchemaPtr = std::unique_ptr<xmlSchema, XmlSchemaDeleter>;
using XmlSchemaParserCtxtPtr = std::unique_ptr<xmlSchemaParserCtxt, XmlSchemaParserCtxtDeleter>;
using XmlSchemaValidCtxtPtr = std::unique_ptr<xmlSchemaValidCtxt, XmlSchemaValidCtxtDeleter>;
using XmlCharPtr = std::unique_ptr<xmlChar, XmlCharDeleter>;

}  // namespace psl

#endif  // PSL_BASE_XML_HANDLES_H_
