#include "codecs/xml_util.h"

#include "base/xml_handles.h"

namespace psl::codecs {
namespace {

const xmlChar* ToXml(const char* s) {
  return reinterpret_cast<const xmlChar*>(s);
}

std::string_view View(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(s));
}

}  // namespace

bool IsElement(const xmlNode* n, std::string_view local_name) {
  return n != nullptr && n->type == XML_ELEMENT_NODE && n->name != nullptr &&
         View(n->name) == local_name;
}

bool IsElement(const xmlNode* n, std::string_view ns, std::string_view local_name) {
  return IsElement(n, local_name) && n->ns != nullptr && n->ns->href != nullptr &&
         View(n->ns->href) == ns;
}

const xmlNode* Child(const xmlNode* parent, std::string_view local_name) {
  if (parent == nullptr) {
    return nullptr;
  }
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (IsElement(c, local_name)) {
      return c;
    }
  }
  return nullptr;
}

const xmlNode* Child(const xmlNode* parent, std::string_view ns, std::string_view local_name) {
  if (parent == nullptr) {
    return nullptr;
  }
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (IsElement(c, ns, local_name)) {
      return c;
    }
  }
  return nullptr;
}

xmlNode* Child(xmlNode* parent, std::string_view ns, std::string_view local_name) {
  // The const overload only reads; the node it returns belongs to the caller's mutable tree.
  return const_cast<xmlNode*>(Child(static_cast<const xmlNode*>(parent), ns, local_name));
}

std::vector<xmlNode*> ElementChildren(xmlNode* parent) {
  std::vector<xmlNode*> out;
  if (parent == nullptr) {
    return out;
  }
  for (xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (c->type == XML_ELEMENT_NODE) {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<const xmlNode*> Children(const xmlNode* parent, std::string_view local_name) {
  std::vector<const xmlNode*> out;
  if (parent == nullptr) {
    return out;
  }
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (IsElement(c, local_name)) {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<xmlNode*> Children(xmlNode* parent, std::string_view ns, std::string_view local_name) {
  std::vector<xmlNode*> out;
  for (xmlNode* c : ElementChildren(parent)) {
    if (IsElement(c, ns, local_name)) {
      out.push_back(c);
    }
  }
  return out;
}

std::string Attr(const xmlNode* n, const char* name) {
  if (n == nullptr) {
    return {};
  }
  XmlCharPtr v(xmlGetNoNsProp(n, ToXml(name)));
  return v == nullptr ? std::string() : std::string(View(v.get()));
}

bool HasAttr(const xmlNode* n, const char* name) {
  return n != nullptr && xmlHasNsProp(n, ToXml(name), nullptr) != nullptr;
}

std::string Content(const xmlNode* n) {
  if (n == nullptr) {
    return {};
  }
  XmlCharPtr v(xmlNodeGetContent(n));
  return v == nullptr ? std::string() : std::string(View(v.get()));
}

std::string TrimmedContent(const xmlNode* n) {
  return TrimXmlSpace(Content(n));
}

std::string TrimXmlSpace(std::string_view s) {
  constexpr std::string_view kSpace = " \t\r\n";
  const std::size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) {
    return {};
  }
  const std::size_t end = s.find_last_not_of(kSpace);
  return std::string(s.substr(begin, end - begin + 1));
}

int Line(const xmlNode* n) {
  if (n == nullptr) {
    return 0;
  }
  const long line = xmlGetLineNo(n);  // NOLINT(google-runtime-int): libxml2's type
  return line > 0 ? static_cast<int>(line) : 0;
}

}  // namespace psl::codecs
