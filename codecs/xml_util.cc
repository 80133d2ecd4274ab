#include "codecs/xml_util.h"

#include <libxml/valid.h>

#include <cstdio>
#include <ctime>
#include <map>

namespace psl::codecs {
namespace {

using std::chrono::system_clock;

std::string_view View(const xmlChar* s) {
  return s == nullptr ? std::string_view() : std::string_view(FromXmlChar(s));
}

// Calls visit(n) for `root` (when not null) and every element below it, depth first, until visit
// returns false.
template <typename Visit>
void WalkElements(xmlNode* root, Visit visit) {
  std::vector<xmlNode*> stack = {root};
  while (!stack.empty()) {
    xmlNode* n = stack.back();
    stack.pop_back();
    if (n == nullptr) {
      continue;
    }
    if (!visit(static_cast<const xmlNode*>(n))) {
      return;
    }
    for (xmlNode* c = n->children; c != nullptr; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) {
        stack.push_back(c);
      }
    }
  }
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
  XmlCharPtr v(xmlGetNoNsProp(n, ToXmlChar(name)));
  return v == nullptr ? std::string() : std::string(View(v.get()));
}

bool HasAttr(const xmlNode* n, const char* name) {
  return n != nullptr && xmlHasNsProp(n, ToXmlChar(name), nullptr) != nullptr;
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

StatusOr<xmlNode*> OneChild(xmlNode* parent, const char* ns, const char* local,
                            const std::string& where) {
  std::vector<xmlNode*> found = Children(parent, ns, local);
  if (found.size() != 1) {
    return Status::Invalid(where + " must hold exactly one " + local + " (found " +
                           std::to_string(found.size()) + ")");
  }
  return found.front();
}

int CountElements(xmlNode* root, const char* ns, const char* local) {
  int count = 0;
  WalkElements(root, [&](const xmlNode* n) {
    count += IsElement(n, ns, local) ? 1 : 0;
    return true;
  });
  return count;
}

Status CheckUniqueIds(xmlNode* root) {
  std::map<std::string, int> seen;
  Status result = Status::Ok();
  WalkElements(root, [&](const xmlNode* n) {
    for (const xmlAttr* a = n->properties; a != nullptr; a = a->next) {
      if (xmlStrcasecmp(a->name, ToXmlChar("id")) != 0) {
        continue;
      }
      XmlCharPtr v(xmlNodeGetContent(reinterpret_cast<const xmlNode*>(a)));
      const std::string value = v == nullptr ? "" : FromXmlChar(v.get());
      if (++seen[value] > 1) {
        result = Status::Invalid("Id value '" + value +
                                 "' is carried by more than one element (possible signature "
                                 "wrapping)");
        return false;
      }
    }
    return true;
  });
  return result;
}

Status RegisterId(xmlDoc* doc, xmlNode* element, const char* ns, std::string_view label) {
  xmlAttr* attr = xmlHasNsProp(element, ToXmlChar("Id"), ToXmlChar(ns));
  if (attr == nullptr) {
    return Status::Invalid(std::string(FromXmlChar(element->name)) + " has no " +
                           std::string(label));
  }
  XmlCharPtr value(ns == nullptr ? xmlGetNoNsProp(element, ToXmlChar("Id"))
                                 : xmlGetNsProp(element, ToXmlChar("Id"), ToXmlChar(ns)));
  const std::string id = value == nullptr ? "" : FromXmlChar(value.get());
  if (xmlGetID(doc, ToXmlChar(id)) == nullptr &&
      xmlAddID(nullptr, doc, ToXmlChar(id), attr) == nullptr) {
    return Status::Internal("cannot register Id '" + id + "'");
  }
  if (xmlGetID(doc, ToXmlChar(id)) != attr) {
    return Status::Invalid("Id '" + id + "' resolves to another element than " +
                           FromXmlChar(element->name) + " (possible signature wrapping)");
  }
  return Status::Ok();
}

StatusOr<std::string> SerialiseXml(xmlDoc* doc) {
  xmlChar* buf = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(doc, &buf, &size, "UTF-8");
  if (buf == nullptr) {
    return Status::Internal("cannot serialise an XML document");
  }
  XmlCharPtr owner(buf);
  return std::string(FromXmlChar(buf), static_cast<std::size_t>(size));
}

XmlDocPtr CopyAsDocument(const xmlNode* element) {
  XmlDocPtr out(xmlNewDoc(ToXmlChar("1.0")));
  xmlNode* copy =
      out == nullptr ? nullptr : xmlDocCopyNode(const_cast<xmlNode*>(element), out.get(), 1);
  if (copy == nullptr) {
    return nullptr;
  }
  xmlDocSetRootElement(out.get(), copy);
  return out;
}

xmlNode* AddElement(xmlNode* parent, xmlNs* ns, const char* name, const std::string* text) {
  // xmlNewTextChild builds the node the same way but, for a null `ns`, then gives it the parent's
  // namespace; adding the node ourselves keeps "no namespace".
  xmlNode* n = xmlNewDocRawNode(parent->doc, ns, ToXmlChar(name),
                                text == nullptr ? nullptr : ToXmlChar(*text));
  if (n != nullptr && xmlAddChild(parent, n) == nullptr) {
    xmlFreeNode(n);
    return nullptr;
  }
  return n;
}

void SetAttribute(xmlNode* n, const char* name, const std::string& value) {
  xmlSetProp(n, ToXmlChar(name), ToXmlChar(value));
}

bool AppendCopy(xmlNode* parent, const xmlNode* node) {
  if (node == nullptr) {
    return false;
  }
  xmlNode* copy = xmlDocCopyNode(const_cast<xmlNode*>(node), parent->doc, 1);
  if (copy == nullptr) {
    return false;
  }
  if (xmlAddChild(parent, copy) == nullptr) {
    xmlFreeNode(copy);
    return false;
  }
  return true;
}

std::string FormatUtc(system_clock::time_point t, const char* format) {
  const std::time_t tt = system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[64];
  if (std::strftime(buf, sizeof(buf), format, &tm) == 0) {
    return "";
  }
  return buf;
}

StatusOr<system_clock::time_point> ParseXsDateTime(const std::string& s, std::string_view what,
                                                   XsTimeZone zone) {
  const std::string name(what);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &consumed) !=
          6 ||
      consumed != 19) {
    return Status::Invalid(name + " is not an xs:dateTime");
  }
  std::size_t i = 19;
  std::chrono::milliseconds fraction{0};
  if (i < s.size() && s[i] == '.') {
    ++i;
    int digits = 0;
    long long ms = 0;  // NOLINT(google-runtime-int)
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
      if (digits < 3) {
        ms = ms * 10 + (s[i] - '0');
      }
    }
    if (digits == 0) {
      return Status::Invalid(name + " is not an xs:dateTime");
    }
    for (int k = digits; k < 3; ++k) {
      ms *= 10;
    }
    fraction = std::chrono::milliseconds(ms);
  }
  std::chrono::minutes offset{0};
  if (zone == XsTimeZone::kUtcOnly) {
    if (i + 1 != s.size() || s[i] != 'Z') {
      return Status::Invalid(name + " must be in UTC (end with Z, WSS 1.0 §10)");
    }
  } else if (i < s.size() && s[i] == 'Z' && i + 1 == s.size()) {
  } else if (i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(s.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) {
      return Status::Invalid(name + " has a malformed time zone");
    }
    offset = std::chrono::minutes(oh * 60 + om) * (s[i] == '-' ? -1 : 1);
  } else {
    return Status::Invalid(name + " must carry a time zone (Z or ±hh:mm)");
  }
  using namespace std::chrono;  // NOLINT(google-build-using-namespace)
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 60) {
    return Status::Invalid(name + " is not a valid date and time");
  }
  return system_clock::time_point(sys_days{ymd} + hours{h} + minutes{mi} + seconds{se} + fraction -
                                  offset);
}

}  // namespace psl::codecs
