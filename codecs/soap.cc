#include "codecs/soap.h"

#include <libxml/tree.h>
#include <libxml/valid.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <xmlsec/crypto.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <utility>

#include <openssl/x509.h>

#include "base/x509.h"
#include "codecs/base64.h"
#include "codecs/xml_util.h"
#include "codecs/xmlsec_library.h"

namespace psl::codecs {
namespace {

using std::chrono::system_clock;

constexpr char kDsNs[] = "http://www.w3.org/2000/09/xmldsig#";
constexpr char kExcC14n[] = "http://www.w3.org/2001/10/xml-exc-c14n#";
constexpr char kRsaSha256[] = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
constexpr char kEcdsaSha256[] = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
constexpr char kSha256[] = "http://www.w3.org/2001/04/xmlenc#sha256";

const xmlChar* X(const char* s) {
  return reinterpret_cast<const xmlChar*>(s);
}
const char* C(const xmlChar* s) {
  return reinterpret_cast<const char*>(s);
}

struct XmlSecDSigCtxDeleter {
  void operator()(xmlSecDSigCtx* c) const { xmlSecDSigCtxDestroy(c); }
};
using XmlSecDSigCtxPtr = std::unique_ptr<xmlSecDSigCtx, XmlSecDSigCtxDeleter>;

StatusOr<XmlDocPtr> Parse(std::string_view bytes, const XmlLimits& limits,
                          const std::string& what) {
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(bytes, limits, &problem);
  if (!doc.ok()) {
    return Status(doc.status().code(), what + " does not parse (" + problem.code + " at line " +
                                           std::to_string(problem.line) + "): " + problem.message);
  }
  return doc;
}

StatusOr<std::string> Serialise(xmlDoc* doc) {
  xmlChar* buf = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(doc, &buf, &size, "UTF-8");
  if (buf == nullptr) {
    return Status::Internal("cannot serialise an XML document");
  }
  XmlCharPtr owner(buf);
  return std::string(C(buf), static_cast<std::size_t>(size));
}

// `element` (with the namespaces it uses from its ancestors) as a document of its own.
StatusOr<XmlDocPtr> CopyAsDocument(const xmlNode* element) {
  XmlDocPtr out(xmlNewDoc(X("1.0")));
  xmlNode* copy =
      out == nullptr ? nullptr : xmlDocCopyNode(const_cast<xmlNode*>(element), out.get(), 1);
  if (copy == nullptr) {
    return Status::Internal("cannot copy the Body's element into a document");
  }
  xmlDocSetRootElement(out.get(), copy);
  return out;
}

std::string RandomId(const char* prefix) {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof(b)) != 1) {
    return "";
  }
  std::string out = prefix;
  char hex[3];
  for (unsigned char c : b) {
    std::snprintf(hex, sizeof(hex), "%02x", c);
    out += hex;
  }
  return out;
}

std::string Der(X509* cert) {
  unsigned char* buf = nullptr;
  const int len = i2d_X509(cert, &buf);
  if (len <= 0) {
    return "";
  }
  std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(len));
  OPENSSL_free(buf);
  return out;
}

std::string FormatDateTime(system_clock::time_point t) {
  const std::time_t tt = system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// xs:dateTime in UTC as wsu:Timestamp carries it: YYYY-MM-DDThh:mm:ss[.fff…]Z.
StatusOr<system_clock::time_point> ParseUtcDateTime(const std::string& s, const char* what) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0, consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &se, &consumed) !=
          6 ||
      consumed != 19) {
    return Status::Invalid(std::string(what) + " is not an xs:dateTime");
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
      return Status::Invalid(std::string(what) + " is not an xs:dateTime");
    }
    for (int k = digits; k < 3; ++k) {
      ms *= 10;
    }
    fraction = std::chrono::milliseconds(ms);
  }
  if (i + 1 != s.size() || s[i] != 'Z') {
    return Status::Invalid(std::string(what) + " must be in UTC (end with Z, WSS 1.0 §10)");
  }
  using namespace std::chrono;  // NOLINT(google-build-using-namespace)
  const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)},
                           day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || se > 60) {
    return Status::Invalid(std::string(what) + " is not a valid date and time");
  }
  return system_clock::time_point(sys_days{ymd} + hours{h} + minutes{mi} + seconds{se} + fraction);
}

// The one child `ns:local` of `parent`, or an error naming `where`.
StatusOr<xmlNode*> OneChild(xmlNode* parent, const char* ns, const char* local,
                            const std::string& where) {
  std::vector<xmlNode*> found = Children(parent, ns, local);
  if (found.size() != 1) {
    return Status::Invalid(where + " must hold exactly one " + local + " (found " +
                           std::to_string(found.size()) + ")");
  }
  return found.front();
}

std::string WsuId(const xmlNode* n) {
  XmlCharPtr v(xmlGetNsProp(n, X("Id"), X(kWsuNs)));
  return v == nullptr ? "" : C(v.get());
}

// Every attribute named Id/ID/id (any namespace, xml:id and wsu:Id included) must carry a
// distinct value, so that an ID can only ever resolve to one element (signature wrapping).
Status CheckUniqueIds(xmlNode* root) {
  std::map<std::string, int> seen;
  std::vector<xmlNode*> stack = {root};
  while (!stack.empty()) {
    xmlNode* n = stack.back();
    stack.pop_back();
    for (xmlAttr* a = n->properties; a != nullptr; a = a->next) {
      if (xmlStrcasecmp(a->name, X("id")) != 0) {
        continue;
      }
      XmlCharPtr v(xmlNodeGetContent(reinterpret_cast<xmlNode*>(a)));
      const std::string value = v == nullptr ? "" : C(v.get());
      if (++seen[value] > 1) {
        return Status::Invalid("Id value '" + value +
                               "' is carried by more than one element (possible signature "
                               "wrapping)");
      }
    }
    for (xmlNode* c = n->children; c != nullptr; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) {
        stack.push_back(c);
      }
    }
  }
  return Status::Ok();
}

int CountElements(xmlNode* root, const char* ns, const char* local) {
  int count = 0;
  std::vector<xmlNode*> stack = {root};
  while (!stack.empty()) {
    xmlNode* n = stack.back();
    stack.pop_back();
    if (IsElement(n, ns, local)) {
      ++count;
    }
    for (xmlNode* c = n->children; c != nullptr; c = c->next) {
      if (c->type == XML_ELEMENT_NODE) {
        stack.push_back(c);
      }
    }
  }
  return count;
}

// Makes "#<wsu:Id>" of `element` resolvable (xmlsec resolves same-document URIs through the ID
// table), refusing an ID the table already gives to another attribute.
Status RegisterWsuId(xmlDoc* doc, xmlNode* element) {
  xmlAttr* attr = xmlHasNsProp(element, X("Id"), X(kWsuNs));
  if (attr == nullptr) {
    return Status::Invalid(std::string(C(element->name)) + " has no wsu:Id");
  }
  const std::string id = WsuId(element);
  if (xmlGetID(doc, X(id.c_str())) == nullptr &&
      xmlAddID(nullptr, doc, X(id.c_str()), attr) == nullptr) {
    return Status::Internal("cannot register Id '" + id + "'");
  }
  if (xmlGetID(doc, X(id.c_str())) != attr) {
    return Status::Invalid("Id '" + id + "' resolves to another element than " + C(element->name) +
                           " (possible signature wrapping)");
  }
  return Status::Ok();
}

// The envelope's structure, found by namespace + local name.
struct EnvelopeParts {
  xmlNode* envelope = nullptr;
  xmlNode* header = nullptr;  // null when absent
  xmlNode* body = nullptr;
  xmlNode* payload = nullptr;  // the Body's one element
};

StatusOr<EnvelopeParts> FindEnvelopeParts(xmlDoc* doc) {
  EnvelopeParts p;
  p.envelope = xmlDocGetRootElement(doc);
  if (!IsElement(p.envelope, kSoap11Ns, "Envelope")) {
    return Status::Invalid(std::string("the root is not a SOAP 1.1 Envelope (") + kSoap11Ns + ")");
  }
  std::vector<xmlNode*> kids = ElementChildren(p.envelope);
  std::size_t at = 0;
  if (at < kids.size() && IsElement(kids[at], kSoap11Ns, "Header")) {
    p.header = kids[at++];
  }
  if (at >= kids.size() || !IsElement(kids[at], kSoap11Ns, "Body")) {
    return Status::Invalid("the Envelope must hold an optional Header then a Body");
  }
  p.body = kids[at++];
  if (at != kids.size()) {
    return Status::Invalid("the Envelope holds elements after the Body");
  }
  std::vector<xmlNode*> payload = ElementChildren(p.body);
  if (payload.size() != 1) {
    return Status::Invalid("the Body must hold exactly one element (found " +
                           std::to_string(payload.size()) + ")");
  }
  for (xmlNode* c = p.body->children; c != nullptr; c = c->next) {
    if (c->type == XML_TEXT_NODE && !TrimXmlSpace(C(c->content)).empty()) {
      return Status::Invalid("the Body holds text beside its element");
    }
  }
  p.payload = payload.front();
  return p;
}

// Building.

struct NewEnvelope {
  XmlDocPtr doc;
  xmlNode* envelope = nullptr;
  xmlNs* soap = nullptr;
  xmlNode* body = nullptr;
};

// An Envelope with an empty Body and, when `payload_xml` is not null, its document inside.
StatusOr<NewEnvelope> NewEnvelopeWith(const std::string_view* payload_xml) {
  NewEnvelope e;
  XmlDocPtr payload;
  if (payload_xml != nullptr) {
    StatusOr<XmlDocPtr> parsed = Parse(*payload_xml, XmlLimits{}, "the body document");
    if (!parsed.ok()) {
      return parsed.status();
    }
    payload = std::move(parsed).value();
  }
  e.doc.reset(xmlNewDoc(X("1.0")));
  e.envelope = xmlNewDocNode(e.doc.get(), nullptr, X("Envelope"), nullptr);
  xmlDocSetRootElement(e.doc.get(), e.envelope);
  e.soap = xmlNewNs(e.envelope, X(kSoap11Ns), X("soapenv"));
  xmlSetNs(e.envelope, e.soap);
  e.body = xmlNewChild(e.envelope, e.soap, X("Body"), nullptr);
  if (payload != nullptr) {
    xmlNode* copy = xmlDocCopyNode(xmlDocGetRootElement(payload.get()), e.doc.get(), 1);
    if (copy == nullptr || xmlAddChild(e.body, copy) == nullptr) {
      return Status::Internal("cannot embed the body document");
    }
  }
  return e;
}

// `ns` null makes an unqualified element (xmlNewTextChild would inherit the parent's namespace).
xmlNode* AddText(xmlNode* parent, xmlNs* ns, const char* name, const std::string& text) {
  xmlNode* n = xmlNewDocNode(parent->doc, ns, X(name), nullptr);
  xmlNodeAddContent(n, X(text.c_str()));
  return xmlAddChild(parent, n);
}

// Verification helpers.

Status CheckReferenceTransforms(xmlNode* reference, const std::string& what) {
  std::vector<xmlNode*> transforms = Children(reference, kDsNs, "Transforms");
  std::vector<xmlNode*> kids = ElementChildren(reference);
  if (transforms.size() != 1 || kids.size() != 3 || kids[0] != transforms.front() ||
      !IsElement(kids[1], kDsNs, "DigestMethod") || !IsElement(kids[2], kDsNs, "DigestValue")) {
    return Status::Invalid(what + " must hold exactly Transforms, DigestMethod and DigestValue");
  }
  std::vector<xmlNode*> list = ElementChildren(transforms.front());
  if (list.size() != 1 || !IsElement(list[0], kDsNs, "Transform") ||
      Attr(list[0], "Algorithm") != kExcC14n) {
    std::string actual;
    for (xmlNode* t : list) {
      actual += (actual.empty() ? "" : ", ") + Attr(t, "Algorithm");
    }
    return Status::Invalid(what + " has transforms [" + actual +
                           "] but the profile allows exactly [" + kExcC14n + "]");
  }
  for (xmlNode* param : ElementChildren(list[0])) {
    if (!IsElement(param, kExcC14n, "InclusiveNamespaces")) {
      return Status::Invalid(what + " exc-c14n transform carries an unexpected parameter");
    }
  }
  if (Attr(kids[1], "Algorithm") != kSha256 || !ElementChildren(kids[1]).empty()) {
    return Status::Invalid(what + " DigestMethod must be " + std::string(kSha256));
  }
  return Status::Ok();
}

struct SecurityParts {
  xmlNode* security = nullptr;
  xmlNode* timestamp = nullptr;
  xmlNode* token = nullptr;
  xmlNode* signature = nullptr;
  X509Ptr certificate;
  const char* signature_method = nullptr;
};

StatusOr<SecurityParts> CheckSecurityShape(const EnvelopeParts& e) {
  SecurityParts s;
  if (e.header == nullptr) {
    return Status::Invalid("the Envelope has no Header, hence no wsse:Security header");
  }
  for (xmlNode* h : ElementChildren(e.header)) {
    if (IsElement(h, kWsseNs, "Security")) {
      if (s.security != nullptr) {
        return Status::Invalid("the Header holds more than one wsse:Security header");
      }
      s.security = h;
      continue;
    }
    XmlCharPtr mu(xmlGetNsProp(h, X("mustUnderstand"), X(kSoap11Ns)));
    if (mu != nullptr && xmlStrcmp(mu.get(), X("1")) == 0) {
      return Status::Invalid(std::string("header ") + C(h->name) +
                             " is marked mustUnderstand but is not understood");
    }
  }
  if (s.security == nullptr) {
    return Status::Invalid("the Header holds no wsse:Security header");
  }
  if (CountElements(s.security, kDsNs, "Signature") != 1 ||
      CountElements(e.header, kDsNs, "Signature") != 1) {
    return Status::Invalid("the Header must hold exactly one ds:Signature, in wsse:Security");
  }
  StatusOr<xmlNode*> ts = OneChild(s.security, kWsuNs, "Timestamp", "wsse:Security");
  if (!ts.ok()) {
    return ts.status();
  }
  s.timestamp = *ts;
  StatusOr<xmlNode*> sig = OneChild(s.security, kDsNs, "Signature", "wsse:Security");
  if (!sig.ok()) {
    return sig.status();
  }
  s.signature = *sig;
  if (CountElements(s.security, kDsNs, "Manifest") != 0 ||
      CountElements(s.security, kDsNs, "Object") != 0) {
    return Status::Invalid("ds:Object and ds:Manifest are not allowed by the profile");
  }

  // Signature: SignedInfo, SignatureValue, KeyInfo and nothing else.
  std::vector<xmlNode*> kids = ElementChildren(s.signature);
  if (kids.size() != 3 || !IsElement(kids[0], kDsNs, "SignedInfo") ||
      !IsElement(kids[1], kDsNs, "SignatureValue") || !IsElement(kids[2], kDsNs, "KeyInfo")) {
    return Status::Invalid("ds:Signature must hold exactly SignedInfo, SignatureValue and KeyInfo");
  }
  xmlNode* signed_info = kids[0];
  std::vector<xmlNode*> si = ElementChildren(signed_info);
  if (si.size() < 2 || !IsElement(si[0], kDsNs, "CanonicalizationMethod") ||
      !IsElement(si[1], kDsNs, "SignatureMethod")) {
    return Status::Invalid("SignedInfo must start with CanonicalizationMethod, SignatureMethod");
  }
  if (Attr(si[0], "Algorithm") != kExcC14n || !ElementChildren(si[0]).empty()) {
    return Status::Invalid("SignedInfo CanonicalizationMethod must be exclusive c14n");
  }
  const std::string method = Attr(si[1], "Algorithm");
  if (method == kRsaSha256) {
    s.signature_method = kRsaSha256;
  } else if (method == kEcdsaSha256) {
    s.signature_method = kEcdsaSha256;
  } else {
    return Status::Invalid("SignatureMethod must be rsa-sha256 or ecdsa-sha256");
  }
  if (!ElementChildren(si[1]).empty()) {
    return Status::Invalid("SignatureMethod must carry no parameters");
  }
  const std::string body_uri = "#" + WsuId(e.body);
  const std::string ts_uri = "#" + WsuId(s.timestamp);
  if (body_uri == "#") {
    return Status::Invalid("the Body has no wsu:Id, so no signature can cover it");
  }
  if (ts_uri == "#") {
    return Status::Invalid("the Timestamp has no wsu:Id, so no signature can cover it");
  }
  bool body_seen = false, ts_seen = false;
  for (std::size_t i = 2; i < si.size(); ++i) {
    if (!IsElement(si[i], kDsNs, "Reference")) {
      return Status::Invalid("SignedInfo holds an element other than Reference");
    }
    const std::string uri = Attr(si[i], "URI");
    if (HasAttr(si[i], "Type")) {
      return Status::Invalid("reference '" + uri + "' must carry no Type");
    }
    if (uri == body_uri && !body_seen) {
      body_seen = true;
      PSL_RETURN_IF_ERROR(CheckReferenceTransforms(si[i], "the Body reference"));
    } else if (uri == ts_uri && !ts_seen) {
      ts_seen = true;
      PSL_RETURN_IF_ERROR(CheckReferenceTransforms(si[i], "the Timestamp reference"));
    } else {
      return Status::Invalid(
          "reference URI '" + uri +
          "' is neither the Envelope's Body nor the Security header's Timestamp");
    }
  }
  if (!body_seen) {
    return Status::Invalid("no reference covers the Envelope's Body");
  }
  if (!ts_seen) {
    return Status::Invalid("no reference covers the Timestamp");
  }

  // KeyInfo: one SecurityTokenReference to the one BinarySecurityToken.
  std::vector<xmlNode*> key_kids = ElementChildren(kids[2]);
  if (key_kids.size() != 1 || !IsElement(key_kids[0], kWsseNs, "SecurityTokenReference")) {
    return Status::Invalid(
        "KeyInfo must hold exactly one wsse:SecurityTokenReference (no KeyValue, KeyName, "
        "RetrievalMethod or X509Data)");
  }
  std::vector<xmlNode*> str_kids = ElementChildren(key_kids[0]);
  if (str_kids.size() != 1 || !IsElement(str_kids[0], kWsseNs, "Reference")) {
    return Status::Invalid("SecurityTokenReference must hold exactly one wsse:Reference");
  }
  const std::string token_uri = Attr(str_kids[0], "URI");
  if (HasAttr(str_kids[0], "ValueType") && Attr(str_kids[0], "ValueType") != kWssX509v3ValueType) {
    return Status::Invalid("the token reference's ValueType must be X509v3");
  }
  std::vector<xmlNode*> tokens = Children(s.security, kWsseNs, "BinarySecurityToken");
  if (tokens.size() != 1) {
    return Status::Invalid("wsse:Security must hold exactly one BinarySecurityToken (found " +
                           std::to_string(tokens.size()) + ")");
  }
  s.token = tokens.front();
  if (token_uri.empty() || token_uri != "#" + WsuId(s.token)) {
    return Status::Invalid("the SecurityTokenReference does not name the BinarySecurityToken");
  }
  if (Attr(s.token, "ValueType") != kWssX509v3ValueType) {
    return Status::Invalid("the BinarySecurityToken's ValueType must be X509v3");
  }
  if (HasAttr(s.token, "EncodingType") && Attr(s.token, "EncodingType") != kWssBase64EncodingType) {
    return Status::Invalid("the BinarySecurityToken's EncodingType must be Base64Binary");
  }
  StatusOr<std::string> der = DecodeBase64(Content(s.token));
  if (!der.ok()) {
    return Status::Invalid("the BinarySecurityToken is not valid base64 (" +
                           der.status().message() + ")");
  }
  const unsigned char* q = reinterpret_cast<const unsigned char*>(der->data());
  s.certificate.reset(d2i_X509(nullptr, &q, static_cast<long>(der->size())));  // NOLINT
  if (s.certificate == nullptr ||
      q != reinterpret_cast<const unsigned char*>(der->data()) + der->size()) {
    DrainOpenSslErrors();
    return Status::Invalid("the BinarySecurityToken is not one DER certificate");
  }
  return s;
}

const char* DSigStatusName(xmlSecDSigStatus s) {
  switch (s) {
    case xmlSecDSigStatusSucceeded:
      return "succeeded";
    case xmlSecDSigStatusInvalid:
      return "invalid";
    default:
      return "unknown";
  }
}

// An xmlsec key holding `pkey` (a new reference: the caller keeps its own).
xmlSecKeyPtr MakeXmlSecKey(EVP_PKEY* pkey) {
  EVP_PKEY_up_ref(pkey);
  xmlSecKeyDataPtr data = xmlSecOpenSSLEvpKeyAdopt(pkey);
  if (data == nullptr) {
    EVP_PKEY_free(pkey);
    return nullptr;
  }
  xmlSecKeyPtr key = xmlSecKeyCreate();
  if (key == nullptr || xmlSecKeySetValue(key, data) < 0) {
    xmlSecKeyDataDestroy(data);
    if (key != nullptr) {
      xmlSecKeyDestroy(key);
    }
    return nullptr;
  }
  return key;
}

}  // namespace

StatusOr<std::string> BuildSoapRequest(std::string_view body_xml,
                                       const SoapSecurityOptions& options,
                                       const SigningIdentity& id, const Clock& clock) {
  if (options.ttl <= std::chrono::seconds::zero()) {
    return Status::Invalid("the Timestamp ttl must be positive");
  }
  if (id.key == nullptr || id.certificate == nullptr) {
    return Status::FailedPrecondition("no signing key or certificate");
  }
  const system_clock::time_point now = std::chrono::floor<std::chrono::seconds>(clock.Now());
  std::time_t t = system_clock::to_time_t(now);
  if (X509_cmp_time(X509_get0_notBefore(id.certificate.get()), &t) >= 0 ||
      X509_cmp_time(X509_get0_notAfter(id.certificate.get()), &t) <= 0) {
    return Status::FailedPrecondition("the signing certificate " +
                                      SubjectRfc2253(id.certificate.get()) +
                                      " is not valid at the signing time");
  }
  const bool ec = EVP_PKEY_get_base_id(id.key.get()) == EVP_PKEY_EC;

  StatusOr<NewEnvelope> made = NewEnvelopeWith(&body_xml);
  if (!made.ok()) {
    return made.status();
  }
  NewEnvelope& e = *made;
  xmlDoc* doc = e.doc.get();
  const std::string body_id = RandomId("id-");
  const std::string ts_id = RandomId("TS-");
  const std::string token_id = RandomId("X509-");
  if (body_id.size() < 4 || ts_id.size() < 4 || token_id.size() < 6) {
    return Status::Internal("no randomness for the wsu:Id values");
  }

  xmlNs* wsu = xmlNewNs(e.envelope, X(kWsuNs), X("wsu"));
  xmlNode* header = xmlNewDocNode(doc, e.soap, X("Header"), nullptr);
  xmlAddPrevSibling(e.body, header);
  xmlNode* security = xmlNewChild(header, nullptr, X("Security"), nullptr);
  xmlNs* wsse = xmlNewNs(security, X(kWsseNs), X("wsse"));
  xmlSetNs(security, wsse);
  xmlNewNsProp(security, e.soap, X("mustUnderstand"), X("1"));

  xmlNode* timestamp = xmlNewChild(security, wsu, X("Timestamp"), nullptr);
  xmlNewNsProp(timestamp, wsu, X("Id"), X(ts_id.c_str()));
  AddText(timestamp, wsu, "Created", FormatDateTime(now));
  AddText(timestamp, wsu, "Expires", FormatDateTime(now + options.ttl));

  xmlNode* token =
      AddText(security, wsse, "BinarySecurityToken", EncodeBase64(Der(id.certificate.get())));
  xmlNewProp(token, X("EncodingType"), X(kWssBase64EncodingType));
  xmlNewProp(token, X("ValueType"), X(kWssX509v3ValueType));
  xmlNewNsProp(token, wsu, X("Id"), X(token_id.c_str()));
  xmlNewNsProp(e.body, wsu, X("Id"), X(body_id.c_str()));

  xmlNode* signature = xmlSecTmplSignatureCreateNsPref(
      doc, xmlSecTransformExclC14NId,
      ec ? xmlSecTransformEcdsaSha256Id : xmlSecTransformRsaSha256Id, nullptr, X("ds"));
  if (signature == nullptr || xmlAddChild(security, signature) == nullptr) {
    if (signature != nullptr) {
      xmlFreeNode(signature);
    }
    return Status::Internal("cannot create the signature template");
  }
  for (const std::string* ref_id : {&body_id, &ts_id}) {
    xmlNode* ref = xmlSecTmplSignatureAddReference(signature, xmlSecTransformSha256Id, nullptr,
                                                   X(("#" + *ref_id).c_str()), nullptr);
    if (ref == nullptr ||
        xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId) == nullptr) {
      return Status::Internal("cannot build a signature reference");
    }
  }
  PSL_RETURN_IF_ERROR(RegisterWsuId(doc, e.body));
  PSL_RETURN_IF_ERROR(RegisterWsuId(doc, timestamp));

  XmlSecDSigCtxPtr dsig(xmlSecDSigCtxCreate(nullptr));
  if (dsig == nullptr) {
    return Status::Internal("xmlSecDSigCtxCreate failed");
  }
  dsig->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
  dsig->signKey = MakeXmlSecKey(id.key.get());
  if (dsig->signKey == nullptr) {
    return Status::Internal("xmlsec does not accept the signing key");
  }
  XmlSecErrorCollector errors;
  if (xmlSecDSigCtxSign(dsig.get(), signature) < 0 || dsig->status != xmlSecDSigStatusSucceeded) {
    return Status::Internal("xmlsec signing failed: " + errors.Text());
  }
  // KeyInfo is not signed (WSS puts the token under the signature's protection only through the
  // key it yields); added after signing so xmlsec never tries to write key data into it.
  xmlNs* ds = xmlSearchNsByHref(doc, signature, X(kDsNs));
  xmlNode* key_info = xmlNewChild(signature, ds, X("KeyInfo"), nullptr);
  xmlNode* str = xmlNewChild(key_info, wsse, X("SecurityTokenReference"), nullptr);
  xmlNode* reference = xmlNewChild(str, wsse, X("Reference"), nullptr);
  xmlNewProp(reference, X("URI"), X(("#" + token_id).c_str()));
  xmlNewProp(reference, X("ValueType"), X(kWssX509v3ValueType));
  return Serialise(doc);
}

StatusOr<VerifiedSoap> VerifySoapRequest(std::string_view envelope_xml, X509_STORE* trust,
                                         const Clock& clock, const SoapVerifyOptions& options) {
  if (trust == nullptr) {
    return Status::FailedPrecondition("no trust store to verify the WS-Security signature against");
  }
  const system_clock::time_point now = clock.Now();
  StatusOr<XmlDocPtr> doc = Parse(envelope_xml, options.limits, "the SOAP envelope");
  if (!doc.ok()) {
    return doc.status();
  }
  StatusOr<EnvelopeParts> e = FindEnvelopeParts(doc->get());
  if (!e.ok()) {
    return e.status();
  }
  PSL_RETURN_IF_ERROR(CheckUniqueIds(e->envelope));
  StatusOr<SecurityParts> s = CheckSecurityShape(*e);
  if (!s.ok()) {
    return s.status();
  }

  // Timestamp: checked before any cryptography (cheap, and a replayed message stops here).
  StatusOr<xmlNode*> created_node = OneChild(s->timestamp, kWsuNs, "Created", "wsu:Timestamp");
  if (!created_node.ok()) {
    return created_node.status();
  }
  StatusOr<xmlNode*> expires_node = OneChild(s->timestamp, kWsuNs, "Expires", "wsu:Timestamp");
  if (!expires_node.ok()) {
    return expires_node.status();
  }
  StatusOr<system_clock::time_point> created =
      ParseUtcDateTime(TrimmedContent(*created_node), "Timestamp/Created");
  if (!created.ok()) {
    return created.status();
  }
  StatusOr<system_clock::time_point> expires =
      ParseUtcDateTime(TrimmedContent(*expires_node), "Timestamp/Expires");
  if (!expires.ok()) {
    return expires.status();
  }
  if (*expires <= *created) {
    return Status::Invalid("Timestamp/Expires is not after Timestamp/Created");
  }
  if (*created > now + options.max_clock_skew) {
    return Status::Invalid("Timestamp/Created is in the future (beyond the allowed clock skew of " +
                           std::to_string(options.max_clock_skew.count()) + " s)");
  }
  if (*expires <= now) {
    return Status::Invalid("the Timestamp has expired (Expires " + TrimmedContent(*expires_node) +
                           ")");
  }

  X509* leaf = s->certificate.get();
  const std::vector<X509Ptr> no_intermediates;
  if (Status chain = VerifyCertificateChain(
          trust, leaf, options.intermediates != nullptr ? *options.intermediates : no_intermediates,
          now);
      !chain.ok()) {
    return chain.code() == StatusCode::kInvalid ? Status::Invalid("token " + chain.message())
                                                : chain;
  }

  xmlDoc* d = doc->get();
  PSL_RETURN_IF_ERROR(RegisterWsuId(d, e->body));
  PSL_RETURN_IF_ERROR(RegisterWsuId(d, s->timestamp));

  // No keys manager: KeyInfo is never read by xmlsec; the key is the token's, set here.
  XmlSecDSigCtxPtr dsig(xmlSecDSigCtxCreate(nullptr));
  if (dsig == nullptr) {
    return Status::Internal("xmlSecDSigCtxCreate failed");
  }
  dsig->flags |= XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
  dsig->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
  xmlSecPtrListEmpty(&dsig->keyInfoReadCtx.enabledKeyData);
  for (xmlSecTransformId t : {xmlSecTransformExclC14NId, xmlSecTransformSha256Id}) {
    if (xmlSecDSigCtxEnableReferenceTransform(dsig.get(), t) < 0) {
      return Status::Internal("cannot restrict xmlsec reference transforms");
    }
  }
  for (xmlSecTransformId t :
       {xmlSecTransformExclC14NId, xmlSecTransformRsaSha256Id, xmlSecTransformEcdsaSha256Id}) {
    if (xmlSecDSigCtxEnableSignatureTransform(dsig.get(), t) < 0) {
      return Status::Internal("cannot restrict xmlsec signature transforms");
    }
  }
  EvpPkeyPtr public_key(X509_get_pubkey(leaf));
  dsig->signKey = public_key == nullptr ? nullptr : MakeXmlSecKey(public_key.get());
  if (dsig->signKey == nullptr) {
    DrainOpenSslErrors();
    return Status::Invalid("the BinarySecurityToken's public key is not usable by xmlsec");
  }

  XmlSecErrorCollector errors;
  if (xmlSecDSigCtxVerify(dsig.get(), s->signature) < 0) {
    return Status::Invalid("the signature cannot be processed: " + errors.Text());
  }
  const std::string body_uri = "#" + WsuId(e->body);
  const xmlSecSize ref_count = xmlSecPtrListGetSize(&dsig->signedInfoReferences);
  for (xmlSecSize i = 0; i < ref_count; ++i) {
    auto* ref = static_cast<xmlSecDSigReferenceCtxPtr>(
        xmlSecPtrListGetItem(&dsig->signedInfoReferences, i));
    const std::string uri = ref->uri != nullptr ? C(ref->uri) : "";
    if (ref->status != xmlSecDSigStatusSucceeded) {
      return Status::Invalid(
          "the digest of reference '" + uri + "' does not match (" +
          (uri == body_uri ? "the Body was altered" : "the Timestamp was altered") + ")");
    }
  }
  if (ref_count != 2) {
    return Status::Invalid("xmlsec processed " + std::to_string(ref_count) +
                           " references, the profile requires 2");
  }
  if (dsig->status != xmlSecDSigStatusSucceeded) {
    return Status::Invalid(std::string("the SignatureValue does not verify with the "
                                       "BinarySecurityToken's key (status ") +
                           DSigStatusName(dsig->status) + ")");
  }
  // What xmlsec digested for "#id" is whatever the ID table names: it must still be THE Body of
  // THE Envelope and THE Timestamp of THE Security header.
  if (xmlGetID(d, X(WsuId(e->body).c_str())) != xmlHasNsProp(e->body, X("Id"), X(kWsuNs)) ||
      xmlGetID(d, X(WsuId(s->timestamp).c_str())) !=
          xmlHasNsProp(s->timestamp, X("Id"), X(kWsuNs))) {
    return Status::Invalid("a signed Id no longer resolves to the Body or the Timestamp");
  }

  VerifiedSoap out;
  StatusOr<XmlDocPtr> body = CopyAsDocument(e->payload);
  if (!body.ok()) {
    return body.status();
  }
  out.body = std::move(body).value();
  StatusOr<std::string> body_bytes = Serialise(out.body.get());
  if (!body_bytes.ok()) {
    return body_bytes.status();
  }
  out.body_xml = std::move(body_bytes).value();
  out.signer = std::move(s->certificate);
  out.signer_subject = SubjectRfc2253(out.signer.get());
  out.created = *created;
  out.expires = *expires;
  return out;
}

StatusOr<std::string> BuildSoapResponse(std::string_view body_xml) {
  StatusOr<NewEnvelope> made = NewEnvelopeWith(&body_xml);
  if (!made.ok()) {
    return made.status();
  }
  return Serialise(made->doc.get());
}

StatusOr<std::string> BuildSoapFault(const SoapFault& fault) {
  if (fault.code.empty()) {
    return Status::Invalid("a SOAP Fault needs a faultcode");
  }
  if (xmlValidateNCName(X(fault.code.c_str()), 0) != 0) {
    return Status::Invalid("the faultcode's local part is not an NCName");
  }
  StatusOr<NewEnvelope> made = NewEnvelopeWith(nullptr);
  if (!made.ok()) {
    return made.status();
  }
  NewEnvelope& e = *made;
  xmlNode* f = xmlNewChild(e.body, e.soap, X("Fault"), nullptr);
  std::string qname = "soapenv:" + fault.code;
  if (!fault.code_ns.empty() && fault.code_ns != kSoap11Ns) {
    xmlNewNs(f, X(fault.code_ns.c_str()), X("fc"));
    qname = "fc:" + fault.code;
  }
  // SOAP 1.1 §4.4: the Fault's children are unqualified (read in any namespace, as
  // some stacks qualify them).
  AddText(f, nullptr, "faultcode", qname);
  AddText(f, nullptr, "faultstring", fault.message);
  if (!fault.actor.empty()) {
    AddText(f, nullptr, "faultactor", fault.actor);
  }
  if (!fault.detail_xml.empty()) {
    StatusOr<XmlDocPtr> detail = Parse(fault.detail_xml, XmlLimits{}, "the fault detail");
    if (!detail.ok()) {
      return detail.status();
    }
    xmlNode* holder = xmlAddChild(f, xmlNewDocNode(e.doc.get(), nullptr, X("detail"), nullptr));
    xmlNode* copy = xmlDocCopyNode(xmlDocGetRootElement(detail->get()), e.doc.get(), 1);
    if (copy == nullptr || xmlAddChild(holder, copy) == nullptr) {
      return Status::Internal("cannot embed the fault detail");
    }
  }
  return Serialise(e.doc.get());
}

StatusOr<SoapResponse> ParseSoapResponse(std::string_view envelope_xml, const XmlLimits& limits) {
  StatusOr<XmlDocPtr> doc = Parse(envelope_xml, limits, "the SOAP envelope");
  if (!doc.ok()) {
    return doc.status();
  }
  StatusOr<EnvelopeParts> e = FindEnvelopeParts(doc->get());
  if (!e.ok()) {
    return e.status();
  }
  SoapResponse out;
  if (!IsElement(e->payload, kSoap11Ns, "Fault")) {
    StatusOr<XmlDocPtr> body = CopyAsDocument(e->payload);
    if (!body.ok()) {
      return body.status();
    }
    out.body = std::move(body).value();
    StatusOr<std::string> bytes = Serialise(out.body.get());
    if (!bytes.ok()) {
      return bytes.status();
    }
    out.body_xml = std::move(bytes).value();
    return out;
  }
  xmlNode* f = e->payload;
  SoapFault fault;
  const xmlNode* code = Child(f, "faultcode");
  const xmlNode* message = Child(f, "faultstring");
  if (code == nullptr || message == nullptr) {
    return Status::Invalid("the SOAP Fault lacks faultcode or faultstring");
  }
  const std::string qname = TrimmedContent(code);
  const std::size_t colon = qname.find(':');
  const std::string prefix = colon == std::string::npos ? "" : qname.substr(0, colon);
  fault.code = colon == std::string::npos ? qname : qname.substr(colon + 1);
  xmlNs* ns = xmlSearchNs(doc->get(), const_cast<xmlNode*>(code),
                          prefix.empty() ? nullptr : X(prefix.c_str()));
  if (ns == nullptr && !prefix.empty()) {
    return Status::Invalid("the faultcode's prefix '" + prefix + "' is not declared");
  }
  fault.code_ns = ns == nullptr ? "" : C(ns->href);
  if (fault.code_ns == kSoap11Ns) {
    fault.code_ns.clear();
  }
  fault.message = Content(message);
  fault.actor = TrimmedContent(Child(f, "faultactor"));
  if (const xmlNode* detail = Child(f, "detail"); detail != nullptr) {
    std::vector<xmlNode*> kids = ElementChildren(const_cast<xmlNode*>(detail));
    if (!kids.empty()) {
      StatusOr<XmlDocPtr> d = CopyAsDocument(kids.front());
      if (!d.ok()) {
        return d.status();
      }
      StatusOr<std::string> bytes = Serialise(d->get());
      if (!bytes.ok()) {
        return bytes.status();
      }
      fault.detail_xml = std::move(bytes).value();
    }
  }
  out.fault = std::move(fault);
  return out;
}

StatusOr<SoapFault> ParseSoapFault(std::string_view envelope_xml, const XmlLimits& limits) {
  StatusOr<SoapResponse> response = ParseSoapResponse(envelope_xml, limits);
  if (!response.ok()) {
    return response.status();
  }
  if (!response->fault.has_value()) {
    return Status::Invalid("the SOAP Body holds no Fault");
  }
  return std::move(*response->fault);
}

}  // namespace psl::codecs
