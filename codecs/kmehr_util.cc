#include "codecs/kmehr_util.h"

#include "codecs/mhm_codec.h"

namespace psl::codecs {

const xmlNode* ChildWith(const xmlNode* parent, std::string_view local_name, const char* attr,
                         std::string_view value) {
  for (const xmlNode* c : Children(parent, local_name)) {
    if (Attr(c, attr) == value) {
      return c;
    }
  }
  return nullptr;
}

bool AllDigits(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

bool IsPositiveInteger(std::string_view s) {
  return AllDigits(s) && s.find_first_not_of('0') != std::string_view::npos;
}

std::optional<std::chrono::year_month_day> ParseKmehrDate(std::string_view s) {
  if (s.size() < 10 || !AllDigits(s.substr(0, 4)) || s[4] != '-' || !AllDigits(s.substr(5, 2)) ||
      s[7] != '-' || !AllDigits(s.substr(8, 2))) {
    return std::nullopt;
  }
  const auto num = [&](std::size_t pos, std::size_t len) {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const std::chrono::year_month_day d{std::chrono::year{num(0, 4)},
                                      std::chrono::month{static_cast<unsigned>(num(5, 2))},
                                      std::chrono::day{static_cast<unsigned>(num(8, 2))}};
  if (!d.ok()) {
    return std::nullopt;
  }
  return d;
}

bool IsKmehrRequestId(std::string_view id) {
  if (id.size() != 26 || id[11] != '.' || !AllDigits(id.substr(0, 11)) ||
      !AllDigits(id.substr(12))) {
    return false;
  }
  const std::string date = std::string(id.substr(12, 4)) + "-" + std::string(id.substr(16, 2)) +
                           "-" + std::string(id.substr(18, 2));
  const auto two = [&](std::size_t pos) {
    return (id[pos] - '0') * 10 + (id[pos + 1] - '0');
  };
  return ParseKmehrDate(date).has_value() && two(20) < 24 && two(22) < 60 && two(24) < 60;
}

std::string CdOf(const xmlNode* n, const char* scheme) {
  return TrimmedContent(ChildWith(n, "cd", "S", scheme));
}

std::vector<const xmlNode*> ItemsOfType(const xmlNode* transaction, std::string_view type) {
  std::vector<const xmlNode*> out;
  for (const xmlNode* item : Children(transaction, "item")) {
    if (CdOf(item, "CD-ITEM-MYCARENET") == type) {
      out.push_back(item);
    }
  }
  return out;
}

const xmlNode* ItemOfType(const xmlNode* transaction, std::string_view type) {
  for (const xmlNode* item : Children(transaction, "item")) {
    if (CdOf(item, "CD-ITEM-MYCARENET") == type) {
      return item;
    }
  }
  return nullptr;
}

const xmlNode* ItemAnchor(const xmlNode* item) {
  const xmlNode* cd = ChildWith(item, "cd", "S", "CD-ITEM-MYCARENET");
  return cd != nullptr ? cd : item;
}

const xmlNode* ContentChild(const xmlNode* item, std::string_view local_name, const char* attr,
                            std::string_view value) {
  for (const xmlNode* content : Children(item, "content")) {
    for (const xmlNode* c : Children(content, local_name)) {
      if (attr == nullptr || Attr(c, attr) == value) {
        return c;
      }
    }
  }
  return nullptr;
}

const xmlNode* FirstHcpartyId(const xmlNode* container) {
  for (const xmlNode* party : Children(container, "hcparty")) {
    if (const xmlNode* id = ChildWith(party, "id", "S", "ID-HCPARTY"); id != nullptr) {
      return id;
    }
  }
  return nullptr;
}

namespace {

// An element `name` S=`scheme` SV=`sv` holding `value`.
xmlNode* AddCoded(xmlNode* parent, xmlNs* ns, const char* name, const char* scheme, const char* sv,
                  const std::string& value) {
  xmlNode* n = AddElement(parent, ns, name, value);
  SetAttribute(n, "S", scheme);
  SetAttribute(n, "SV", sv);
  return n;
}

}  // namespace

xmlNode* AddKmehrId(xmlNode* parent, xmlNs* ns, const std::string& value) {
  return AddCoded(parent, ns, "id", "ID-KMEHR", "1.0", value);
}

xmlNode* AddKmehrCd(xmlNode* parent, xmlNs* ns, const char* scheme, const char* sv,
                    const std::string& value) {
  return AddCoded(parent, ns, "cd", scheme, sv, value);
}

xmlNode* AddInsurerHcparty(xmlNode* parent, xmlNs* kmehr, const std::string& id,
                           const std::string& name) {
  xmlNode* hcparty = AddElement(parent, kmehr, "hcparty");
  AddCoded(hcparty, kmehr, "id", "ID-HCPARTY", "1.0", id);
  AddKmehrCd(hcparty, kmehr, "CD-HCPARTY", "1.15", "orginsurance");
  AddElement(hcparty, kmehr, "name", name);
  return hcparty;
}

StatusOr<KmehrAnswer> StartKmehrAnswer(const xmlNode* req_request, const char* schema_version,
                                       const KmehrAnswerer& by, std::string_view what) {
  KmehrAnswer a;
  a.doc.reset(xmlNewDoc(ToXmlChar("1.0")));
  a.root = xmlNewDocNode(a.doc.get(), nullptr, ToXmlChar("SendTransactionResponse"), nullptr);
  xmlDocSetRootElement(a.doc.get(), a.root);
  xmlNs* protocol =
      xmlNewNs(a.root, ToXmlChar(std::string(kMessageServicesNamespace)), ToXmlChar("ns6"));
  xmlSetNs(a.root, protocol);
  a.core = xmlNewNs(a.root, ToXmlChar(kMessageServicesCoreNs), ToXmlChar("ns2"));
  a.kmehr = xmlNewNs(a.root, ToXmlChar(kKmehrNs), ToXmlChar("ns3"));
  SetAttribute(a.root, "messageProtocoleSchemaVersion", schema_version);

  xmlNode* response = AddElement(a.root, a.core, "response");
  AddKmehrId(response, a.core, by.insurer_id + "." + FormatUtc(by.local, "%Y%m%d%H%M%S"));
  AddInsurerHcparty(AddElement(response, a.core, "author"), a.kmehr, by.insurer_id,
                    by.insurer_name);
  AddElement(response, a.core, "date", FormatUtc(by.local, "%Y-%m-%d"));
  AddElement(response, a.core, "time", FormatUtc(by.local, "%H:%M:%S"));
  xmlNode* echoed = AddElement(response, a.core, "request");
  for (const char* name : {"id", "author", "date", "time"}) {
    if (!AppendCopy(echoed, Child(req_request, name))) {
      return Status::Invalid("the request's " + std::string(what) + " lacks request/" + name);
    }
  }
  return a;
}

void AddKmehrAnswerError(xmlNode* acknowledge, const KmehrAnswer& a, const std::string& code,
                         const std::string& description, const std::string& url) {
  xmlNode* error = AddElement(acknowledge, a.core, "error");
  AddKmehrCd(error, a.kmehr, "CD-ERROR", "1.0", code);
  xmlNode* text = AddElement(error, a.kmehr, "description",
                             description.empty() ? "MyCareNet error " + code : description);
  SetAttribute(text, "L", "en");
  if (!url.empty()) {
    AddElement(error, a.kmehr, "url", url);
  }
}

StatusOr<xmlNode*> AddKmehrAnswerTransaction(const KmehrAnswer& a, const xmlNode* req_header,
                                             const xmlNode* req_patient, const KmehrAnswerer& by,
                                             const char* transaction_code, std::string_view what) {
  xmlNs* kmehr = a.kmehr;
  const std::string date = FormatUtc(by.local, "%Y-%m-%d");
  const std::string time = FormatUtc(by.local, "%H:%M:%S");
  xmlNode* message = AddElement(a.root, a.core, "kmehrmessage");
  xmlNode* header = AddElement(message, kmehr, "header");
  if (!AppendCopy(header, Child(req_header, "standard"))) {
    return Status::Invalid("the request's " + std::string(what) + " lacks header/standard");
  }
  AddKmehrId(header, kmehr, "1");
  AddElement(header, kmehr, "date", date);
  AddElement(header, kmehr, "time", time);
  AddInsurerHcparty(AddElement(header, kmehr, "sender"), kmehr, by.insurer_id, by.insurer_name);
  xmlNode* recipient = AddElement(header, kmehr, "recipient");
  if (!AppendCopy(recipient, Child(Child(req_header, "sender"), "hcparty"))) {
    return Status::Invalid("the request's " + std::string(what) + " lacks header/sender/hcparty");
  }
  xmlNode* folder = AddElement(message, kmehr, "folder");
  AddKmehrId(folder, kmehr, "1");
  AppendCopy(folder, req_patient);
  xmlNode* tx = AddElement(folder, kmehr, "transaction");
  AddKmehrId(tx, kmehr, "1");
  AddKmehrCd(tx, kmehr, "CD-TRANSACTION-MYCARENET", "1.5", transaction_code);
  AddElement(tx, kmehr, "date", date);
  AddElement(tx, kmehr, "time", time);
  AddInsurerHcparty(AddElement(tx, kmehr, "author"), kmehr, by.insurer_id, by.insurer_name);
  AddElement(tx, kmehr, "iscomplete", "true");
  AddElement(tx, kmehr, "isvalidated", "true");
  return tx;
}

}  // namespace psl::codecs
