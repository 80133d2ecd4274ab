#include "codecs/soap.h"

#include <libxml/tree.h>
#include <libxml/valid.h>
#include <openssl/evp.h>
#include <xmlsec/crypto.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include <ctime>
#include <utility>

#include <openssl/x509.h>

#include "base/random.h"
#include "base/x509.h"
#include "codecs/base64.h"
#include "codecs/xml_util.h"
#include "codecs/xmlsec_library.h"

namespace psl::codecs {
namespace {

using std::chrono::system_clock;

constexpr char kEcdsaSha256[] = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";

std::string RandomId(const char* prefix) {
  const std::string hex = RandomHex(16);
  return hex.empty() ? "" : prefix + hex;
}

// `element` (with the namespaces it uses from its ancestors) as a document of its own, into
// `doc`, and that document's bytes, into `xml`.
Status CopyOut(const xmlNode* element, XmlDocPtr* doc, std::string* xml) {
  *doc = CopyAsDocument(element);
  if (*doc == nullptr) {
    return Status::Internal("cannot copy the Body's element into a document");
  }
  StatusOr<std::string> bytes = SerialiseXml(doc->get());
  if (!bytes.ok()) {
    return bytes.status();
  }
  *xml = std::move(bytes).value();
  return Status::Ok();
}

std::string WsuId(const xmlNode* n) {
  XmlCharPtr v(xmlGetNsProp(n, ToXmlChar("Id"), ToXmlChar(kWsuNs)));
  return v == nullptr ? "" : FromXmlChar(v.get());
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
    if (c->type == XML_TEXT_NODE && !TrimXmlSpace(FromXmlChar(c->content)).empty()) {
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
    StatusOr<XmlDocPtr> parsed =
        ParseUntrustedXmlNamed(*payload_xml, XmlLimits{}, "the body document");
    if (!parsed.ok()) {
      return parsed.status();
    }
    payload = std::move(parsed).value();
  }
  e.doc.reset(xmlNewDoc(ToXmlChar("1.0")));
  e.envelope = xmlNewDocNode(e.doc.get(), nullptr, ToXmlChar("Envelope"), nullptr);
  xmlDocSetRootElement(e.doc.get(), e.envelope);
  e.soap = xmlNewNs(e.envelope, ToXmlChar(kSoap11Ns), ToXmlChar("soapenv"));
  xmlSetNs(e.envelope, e.soap);
  e.body = xmlNewChild(e.envelope, e.soap, ToXmlChar("Body"), nullptr);
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
  xmlNode* n = xmlNewDocNode(parent->doc, ns, ToXmlChar(name), nullptr);
  xmlNodeAddContent(n, ToXmlChar(text.c_str()));
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
    XmlCharPtr mu(xmlGetNsProp(h, ToXmlChar("mustUnderstand"), ToXmlChar(kSoap11Ns)));
    if (mu != nullptr && xmlStrcmp(mu.get(), ToXmlChar("1")) == 0) {
      return Status::Invalid(std::string("header ") + FromXmlChar(h->name) +
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
  StatusOr<std::string> der = DecodeBase64Of(Content(s.token), "the BinarySecurityToken");
  if (!der.ok()) {
    return der.status();
  }
  s.certificate = CertificateFromDer(*der);
  if (s.certificate == nullptr) {
    return Status::Invalid("the BinarySecurityToken is not one DER certificate");
  }
  return s;
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

  xmlNs* wsu = xmlNewNs(e.envelope, ToXmlChar(kWsuNs), ToXmlChar("wsu"));
  xmlNode* header = xmlNewDocNode(doc, e.soap, ToXmlChar("Header"), nullptr);
  xmlAddPrevSibling(e.body, header);
  xmlNode* security = xmlNewChild(header, nullptr, ToXmlChar("Security"), nullptr);
  xmlNs* wsse = xmlNewNs(security, ToXmlChar(kWsseNs), ToXmlChar("wsse"));
  xmlSetNs(security, wsse);
  xmlNewNsProp(security, e.soap, ToXmlChar("mustUnderstand"), ToXmlChar("1"));

  xmlNode* timestamp = xmlNewChild(security, wsu, ToXmlChar("Timestamp"), nullptr);
  xmlNewNsProp(timestamp, wsu, ToXmlChar("Id"), ToXmlChar(ts_id.c_str()));
  AddText(timestamp, wsu, "Created", FormatUtc(now, kXsDateTimeUtcFormat));
  AddText(timestamp, wsu, "Expires", FormatUtc(now + options.ttl, kXsDateTimeUtcFormat));

  xmlNode* token = AddText(security, wsse, "BinarySecurityToken",
                           EncodeBase64(CertificateDer(id.certificate.get())));
  xmlNewProp(token, ToXmlChar("EncodingType"), ToXmlChar(kWssBase64EncodingType));
  xmlNewProp(token, ToXmlChar("ValueType"), ToXmlChar(kWssX509v3ValueType));
  xmlNewNsProp(token, wsu, ToXmlChar("Id"), ToXmlChar(token_id.c_str()));
  xmlNewNsProp(e.body, wsu, ToXmlChar("Id"), ToXmlChar(body_id.c_str()));

  xmlNode* signature = xmlSecTmplSignatureCreateNsPref(
      doc, xmlSecTransformExclC14NId,
      ec ? xmlSecTransformEcdsaSha256Id : xmlSecTransformRsaSha256Id, nullptr, ToXmlChar("ds"));
  if (signature == nullptr || xmlAddChild(security, signature) == nullptr) {
    if (signature != nullptr) {
      xmlFreeNode(signature);
    }
    return Status::Internal("cannot create the signature template");
  }
  for (const std::string* ref_id : {&body_id, &ts_id}) {
    xmlNode* ref = xmlSecTmplSignatureAddReference(signature, xmlSecTransformSha256Id, nullptr,
                                                   ToXmlChar(("#" + *ref_id).c_str()), nullptr);
    if (ref == nullptr ||
        xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId) == nullptr) {
      return Status::Internal("cannot build a signature reference");
    }
  }
  PSL_RETURN_IF_ERROR(RegisterId(doc, e.body, kWsuNs, "wsu:Id"));
  PSL_RETURN_IF_ERROR(RegisterId(doc, timestamp, kWsuNs, "wsu:Id"));

  PSL_RETURN_IF_ERROR(SignTemplate(signature, id.key.get()));
  // KeyInfo is not signed (WSS puts the token under the signature's protection only through the
  // key it yields); added after signing so xmlsec never tries to write key data into it.
  xmlNs* ds = xmlSearchNsByHref(doc, signature, ToXmlChar(kDsNs));
  xmlNode* key_info = xmlNewChild(signature, ds, ToXmlChar("KeyInfo"), nullptr);
  xmlNode* str = xmlNewChild(key_info, wsse, ToXmlChar("SecurityTokenReference"), nullptr);
  xmlNode* reference = xmlNewChild(str, wsse, ToXmlChar("Reference"), nullptr);
  xmlNewProp(reference, ToXmlChar("URI"), ToXmlChar(("#" + token_id).c_str()));
  xmlNewProp(reference, ToXmlChar("ValueType"), ToXmlChar(kWssX509v3ValueType));
  return SerialiseXml(doc);
}

StatusOr<VerifiedSoap> VerifySoapRequest(std::string_view envelope_xml, X509_STORE* trust,
                                         const Clock& clock, const SoapVerifyOptions& options) {
  if (trust == nullptr) {
    return Status::FailedPrecondition("no trust store to verify the WS-Security signature against");
  }
  const system_clock::time_point now = clock.Now();
  StatusOr<XmlDocPtr> doc =
      ParseUntrustedXmlNamed(envelope_xml, options.limits, "the SOAP envelope");
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
      ParseXsDateTime(TrimmedContent(*created_node), "Timestamp/Created", XsTimeZone::kUtcOnly);
  if (!created.ok()) {
    return created.status();
  }
  StatusOr<system_clock::time_point> expires =
      ParseXsDateTime(TrimmedContent(*expires_node), "Timestamp/Expires", XsTimeZone::kUtcOnly);
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
  PSL_RETURN_IF_ERROR(RegisterId(d, e->body, kWsuNs, "wsu:Id"));
  PSL_RETURN_IF_ERROR(RegisterId(d, s->timestamp, kWsuNs, "wsu:Id"));

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
    const std::string uri = ref->uri != nullptr ? FromXmlChar(ref->uri) : "";
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
  if (xmlGetID(d, ToXmlChar(WsuId(e->body).c_str())) !=
          xmlHasNsProp(e->body, ToXmlChar("Id"), ToXmlChar(kWsuNs)) ||
      xmlGetID(d, ToXmlChar(WsuId(s->timestamp).c_str())) !=
          xmlHasNsProp(s->timestamp, ToXmlChar("Id"), ToXmlChar(kWsuNs))) {
    return Status::Invalid("a signed Id no longer resolves to the Body or the Timestamp");
  }

  VerifiedSoap out;
  PSL_RETURN_IF_ERROR(CopyOut(e->payload, &out.body, &out.body_xml));
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
  return SerialiseXml(made->doc.get());
}

StatusOr<std::string> BuildSoapFault(const SoapFault& fault) {
  if (fault.code.empty()) {
    return Status::Invalid("a SOAP Fault needs a faultcode");
  }
  if (xmlValidateNCName(ToXmlChar(fault.code.c_str()), 0) != 0) {
    return Status::Invalid("the faultcode's local part is not an NCName");
  }
  StatusOr<NewEnvelope> made = NewEnvelopeWith(nullptr);
  if (!made.ok()) {
    return made.status();
  }
  NewEnvelope& e = *made;
  xmlNode* f = xmlNewChild(e.body, e.soap, ToXmlChar("Fault"), nullptr);
  std::string qname = "soapenv:" + fault.code;
  if (!fault.code_ns.empty() && fault.code_ns != kSoap11Ns) {
    xmlNewNs(f, ToXmlChar(fault.code_ns.c_str()), ToXmlChar("fc"));
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
    StatusOr<XmlDocPtr> detail =
        ParseUntrustedXmlNamed(fault.detail_xml, XmlLimits{}, "the fault detail");
    if (!detail.ok()) {
      return detail.status();
    }
    xmlNode* holder =
        xmlAddChild(f, xmlNewDocNode(e.doc.get(), nullptr, ToXmlChar("detail"), nullptr));
    xmlNode* copy = xmlDocCopyNode(xmlDocGetRootElement(detail->get()), e.doc.get(), 1);
    if (copy == nullptr || xmlAddChild(holder, copy) == nullptr) {
      return Status::Internal("cannot embed the fault detail");
    }
  }
  return SerialiseXml(e.doc.get());
}

StatusOr<SoapResponse> ParseSoapResponse(std::string_view envelope_xml, const XmlLimits& limits) {
  StatusOr<XmlDocPtr> doc = ParseUntrustedXmlNamed(envelope_xml, limits, "the SOAP envelope");
  if (!doc.ok()) {
    return doc.status();
  }
  StatusOr<EnvelopeParts> e = FindEnvelopeParts(doc->get());
  if (!e.ok()) {
    return e.status();
  }
  SoapResponse out;
  if (!IsElement(e->payload, kSoap11Ns, "Fault")) {
    PSL_RETURN_IF_ERROR(CopyOut(e->payload, &out.body, &out.body_xml));
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
                          prefix.empty() ? nullptr : ToXmlChar(prefix.c_str()));
  if (ns == nullptr && !prefix.empty()) {
    return Status::Invalid("the faultcode's prefix '" + prefix + "' is not declared");
  }
  fault.code_ns = ns == nullptr ? "" : FromXmlChar(ns->href);
  if (fault.code_ns == kSoap11Ns) {
    fault.code_ns.clear();
  }
  fault.message = Content(message);
  fault.actor = TrimmedContent(Child(f, "faultactor"));
  if (const xmlNode* detail = Child(f, "detail"); detail != nullptr) {
    std::vector<xmlNode*> kids = ElementChildren(const_cast<xmlNode*>(detail));
    if (!kids.empty()) {
      XmlDocPtr detail_doc;
      PSL_RETURN_IF_ERROR(CopyOut(kids.front(), &detail_doc, &fault.detail_xml));
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
