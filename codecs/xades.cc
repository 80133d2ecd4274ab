#include "codecs/xades.h"

#include <libxml/tree.h>
#include <libxml/valid.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <xmlsec/crypto.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>

#include <ctime>
#include <memory>
#include <utility>
#include <vector>

#include <openssl/x509.h>

#include "base/digest.h"
#include "base/random.h"
#include "base/x509.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/xml_parser.h"
#include "codecs/xml_util.h"
#include "codecs/xmlsec_library.h"

namespace psl::codecs {
namespace {

using std::chrono::system_clock;

constexpr char kBase64[] = "http://www.w3.org/2000/09/xmldsig#base64";

std::string SerialDecimal(X509* cert) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr), &BN_free);
  if (bn == nullptr) {
    return "";
  }
  char* dec = BN_bn2dec(bn.get());
  std::string out = dec != nullptr ? dec : "";
  OPENSSL_free(dec);
  return out;
}

// Distinguished names compared without the optional spaces around ',', '+' and '='.
std::string CompactDn(std::string_view dn) {
  std::string out;
  for (std::size_t i = 0; i < dn.size(); ++i) {
    const char c = dn[i];
    if (c == ' ') {
      const char prev = out.empty() ? ',' : out.back();
      const char next = i + 1 < dn.size() ? dn[i + 1] : ',';
      if (prev == ',' || prev == '+' || prev == '=' || next == ',' || next == '+' || next == '=' ||
          next == ' ') {
        continue;
      }
    }
    out.push_back(c);
  }
  return out;
}

// ParseUntrustedXmlNamed with default limits, any failure reported as `code`.
StatusOr<XmlDocPtr> Parse(std::string_view bytes, const std::string& what, StatusCode code) {
  StatusOr<XmlDocPtr> doc = ParseUntrustedXmlNamed(bytes, XmlLimits{}, what);
  if (!doc.ok()) {
    return Status(code, doc.status().message());
  }
  return doc;
}

// The envelope: root, Detail, Xades.

struct Envelope {
  xmlNode* root = nullptr;       // the document's root element
  xmlNode* container = nullptr;  // holds Detail and the signature element (root or Return)
  xmlNode* detail = nullptr;
  xmlNode* xades = nullptr;  // the Xades / XadesT element, null when absent
  const char* signature_name = "Xades";
  const char* ns = kCommonsProtocolNs;  // of Detail and the signature element
  bool response = false;
  std::string detail_id;
  bool text_xml = false;
  bool deflate = false;
};

// Where Detail and its signature element sit.
enum class Layout {
  kRequest,       // commons protocol:v3 request: root/{Detail, Xades}
  kResponse,      // commons protocol:v3 SendResponseType: root/Return/{Detail, XadesT}
  kGenAsyncPost,  // genasync post: root/{Detail, Xades-t} in kGenAsyncNs
  // any genasync element holding its blob and Xades-t (MsgResponse: Detail; TAckResponse: TAck,
  // signed as a base64 blob without ContentType/ContentEncoding)
  kGenAsyncElement,
};

StatusOr<Envelope> FindEnvelopeParts(xmlDoc* doc, Layout layout) {
  const bool response = layout == Layout::kResponse;
  Envelope e;
  e.response = response;
  const bool genasync = layout == Layout::kGenAsyncPost || layout == Layout::kGenAsyncElement;
  e.signature_name = response ? "XadesT" : genasync ? "Xades-t" : "Xades";
  e.ns = genasync ? kGenAsyncNs : kCommonsProtocolNs;
  e.root = xmlDocGetRootElement(doc);
  if (e.root == nullptr) {
    return Status::Invalid("the envelope has no root element");
  }
  if (layout == Layout::kGenAsyncPost && !IsElement(e.root, kGenAsyncNs, "post")) {
    return Status::Invalid("the root must be post (" + std::string(kGenAsyncNs) + ")");
  }
  const char* blob_name = "Detail";
  bool tack = false;
  if (layout == Layout::kGenAsyncElement) {
    if (e.root->ns == nullptr || e.root->ns->href == nullptr ||
        std::string_view(FromXmlChar(e.root->ns->href)) != kGenAsyncNs) {
      return Status::Invalid("the root must be an element of " + std::string(kGenAsyncNs));
    }
    if (IsElement(e.root, kGenAsyncNs, "TAckResponse")) {
      blob_name = "TAck";
      tack = true;
    }
  }
  e.container = e.root;
  std::string where = "the root";
  if (response) {
    std::vector<xmlNode*> returns = Children(e.root, kCommonsProtocolNs, "Return");
    if (returns.size() != 1) {
      return Status::Invalid("the root must hold exactly one Return (" +
                             std::string(kCommonsProtocolNs) + "), found " +
                             std::to_string(returns.size()));
    }
    e.container = returns.front();
    where = "Return";
  }
  std::vector<xmlNode*> details = Children(e.container, e.ns, blob_name);
  if (details.size() != 1) {
    return Status::Invalid(where + " must hold exactly one " + blob_name + " (" +
                           std::string(e.ns) + "), found " + std::to_string(details.size()));
  }
  e.detail = details.front();
  std::vector<xmlNode*> xades = Children(e.container, e.ns, e.signature_name);
  if (xades.size() > 1) {
    return Status::Invalid(where + " holds more than one " + e.signature_name);
  }
  if (!xades.empty()) {
    e.xades = xades.front();
  }
  e.detail_id = Attr(e.detail, "Id");
  if (e.detail_id.empty()) {
    return Status::Invalid(std::string(blob_name) + " has no Id attribute");
  }
  if (tack) {
    return e;  // the TAck content is signed as decoded base64, nothing else
  }
  const std::string type = Attr(e.detail, "ContentType");
  if (type == "text/xml") {
    e.text_xml = true;
  } else if (type != "text/plain") {
    return Status::Invalid("Detail/@ContentType must be text/xml or text/plain");
  }
  // Absent means the schema default (BlobType: "deflate"), as MhmCodec and MyCareNet read it.
  const std::string encoding = HasAttr(e.detail, "ContentEncoding")
                                   ? Attr(e.detail, "ContentEncoding")
                                   : std::string("deflate");
  if (encoding == "deflate") {
    e.deflate = true;
  } else if (encoding != "none") {
    return Status::Invalid("Detail/@ContentEncoding must be none or deflate");
  }
  return e;
}

// The blob as the signature's transforms see it; text/xml blobs must pass the hardened parser
// before xmlsec's own parser transform ever sees them.
Status CheckDetailContent(const Envelope& e) {
  StatusOr<std::string> bytes = DecodeBase64Of(Content(e.detail), "Detail");
  if (!bytes.ok()) {
    return bytes.status();
  }
  if (e.deflate) {
    StatusOr<std::string> inflated = InflateRaw(*bytes, kMaxInflatedBytes);
    if (!inflated.ok()) {
      // kTooLarge stays as is; undecodable data is a fault of the request (kInvalid).
      return inflated.status().code() == StatusCode::kMalformed
                 ? Status::Invalid("Detail (ContentEncoding \"deflate\"): " +
                                   inflated.status().message())
                 : Status(inflated.status().code(), "Detail " + inflated.status().message());
    }
    bytes = std::move(inflated);
  }
  if (e.text_xml) {
    StatusOr<XmlDocPtr> blob = Parse(*bytes, "the Detail blob", StatusCode::kInvalid);
    if (!blob.ok()) {
      return blob.status();
    }
  }
  return Status::Ok();
}

std::vector<std::string> ExpectedDetailTransforms(const Envelope& e) {
  std::vector<std::string> t = {kBase64};
  if (e.deflate) {
    t.emplace_back(kOptionalDeflateTransformHref);
  }
  if (e.text_xml) {
    t.emplace_back(kExcC14n);
  }
  return t;
}

// The signature's expected shape.

struct SignatureParts {
  xmlNode* signature = nullptr;
  std::string signature_id;
  xmlNode* signed_properties = nullptr;
  std::string signed_properties_id;
  std::vector<X509Ptr> certificates;  // KeyInfo order: leaf first
  std::string signing_time;
  std::string cert_digest_algorithm;
  std::string cert_digest;  // decoded
  std::string issuer_name;
  std::string serial_number;
};

Status CheckTransforms(xmlNode* reference, const std::vector<std::string>& expected,
                       const std::string& what) {
  std::vector<std::string> actual;
  std::vector<xmlNode*> transforms_nodes = Children(reference, kDsNs, "Transforms");
  if (transforms_nodes.size() > 1) {
    return Status::Invalid(what + " has several Transforms");
  }
  if (!transforms_nodes.empty()) {
    for (xmlNode* t : ElementChildren(transforms_nodes.front())) {
      if (!IsElement(t, kDsNs, "Transform")) {
        return Status::Invalid(what + " Transforms holds an unexpected element");
      }
      actual.push_back(Attr(t, "Algorithm"));
      for (xmlNode* param : ElementChildren(t)) {
        // exc-c14n's InclusiveNamespaces is harmless; any other parameter (XPath, XSLT...) is not.
        if (!(actual.back() == kExcC14n && IsElement(param, kExcC14n, "InclusiveNamespaces"))) {
          return Status::Invalid(what + " transform " + actual.back() +
                                 " carries an unexpected parameter element");
        }
      }
    }
  }
  if (actual != expected) {
    std::string a, x;
    for (const std::string& s : actual) {
      a += (a.empty() ? "" : ", ") + s;
    }
    for (const std::string& s : expected) {
      x += (x.empty() ? "" : ", ") + s;
    }
    return Status::Invalid(what + " has transforms [" + a + "] but the profile requires [" + x +
                           "]");
  }
  StatusOr<xmlNode*> digest = OneChild(reference, kDsNs, "DigestMethod", what);
  if (!digest.ok()) {
    return digest.status();
  }
  if (Attr(*digest, "Algorithm") != kSha256) {
    return Status::Invalid(what + " DigestMethod must be " + std::string(kSha256));
  }
  return Status::Ok();
}

StatusOr<SignatureParts> CheckSignatureShape(xmlNode* signature, const Envelope& e) {
  SignatureParts p;
  p.signature = signature;
  p.signature_id = Attr(signature, "Id");
  if (p.signature_id.empty()) {
    return Status::Invalid("ds:Signature has no Id");
  }
  std::vector<xmlNode*> kids = ElementChildren(signature);
  if (kids.size() != 4 || !IsElement(kids[0], kDsNs, "SignedInfo") ||
      !IsElement(kids[1], kDsNs, "SignatureValue") || !IsElement(kids[2], kDsNs, "KeyInfo") ||
      !IsElement(kids[3], kDsNs, "Object")) {
    return Status::Invalid(
        "ds:Signature must hold exactly SignedInfo, SignatureValue, KeyInfo and one Object");
  }
  xmlNode* signed_info = kids[0];
  xmlNode* key_info = kids[2];
  xmlNode* object = kids[3];

  // SignedInfo: methods and exactly the two references.
  StatusOr<xmlNode*> c14n = OneChild(signed_info, kDsNs, "CanonicalizationMethod", "SignedInfo");
  if (!c14n.ok()) {
    return c14n.status();
  }
  if (Attr(*c14n, "Algorithm") != kExcC14n || !ElementChildren(*c14n).empty()) {
    return Status::Invalid("SignedInfo CanonicalizationMethod must be exclusive c14n");
  }
  StatusOr<xmlNode*> method = OneChild(signed_info, kDsNs, "SignatureMethod", "SignedInfo");
  if (!method.ok()) {
    return method.status();
  }
  if (Attr(*method, "Algorithm") != kRsaSha256 || !ElementChildren(*method).empty()) {
    return Status::Invalid("SignatureMethod must be " + std::string(kRsaSha256));
  }
  std::vector<xmlNode*> refs = Children(signed_info, kDsNs, "Reference");
  if (refs.size() != 2 || ElementChildren(signed_info).size() != 4) {
    return Status::Invalid(
        "SignedInfo must hold exactly 2 references (Detail and "
        "SignedProperties), found " +
        std::to_string(refs.size()));
  }

  // Object/QualifyingProperties/SignedProperties.
  StatusOr<xmlNode*> qp = OneChild(object, kXadesNs, "QualifyingProperties", "ds:Object");
  if (!qp.ok()) {
    return qp.status();
  }
  if (ElementChildren(object).size() != 1) {
    return Status::Invalid("ds:Object must hold only xades:QualifyingProperties");
  }
  if (Attr(*qp, "Target") != "#" + p.signature_id) {
    return Status::Invalid("QualifyingProperties/@Target does not name this signature");
  }
  StatusOr<xmlNode*> sp = OneChild(*qp, kXadesNs, "SignedProperties", "QualifyingProperties");
  if (!sp.ok()) {
    return sp.status();
  }
  p.signed_properties = *sp;
  p.signed_properties_id = Attr(*sp, "Id");
  if (p.signed_properties_id.empty()) {
    return Status::Invalid("SignedProperties has no Id");
  }

  bool detail_seen = false, props_seen = false;
  for (xmlNode* ref : refs) {
    const std::string uri = Attr(ref, "URI");
    if (uri == "#" + e.detail_id && !detail_seen) {
      detail_seen = true;
      if (HasAttr(ref, "Type")) {
        return Status::Invalid("the Detail reference must have no Type");
      }
      PSL_RETURN_IF_ERROR(
          CheckTransforms(ref, ExpectedDetailTransforms(e), "the Detail reference"));
    } else if (uri == "#" + p.signed_properties_id && !props_seen) {
      props_seen = true;
      if (Attr(ref, "Type") != kSignedPropertiesType) {
        return Status::Invalid("the SignedProperties reference must have Type " +
                               std::string(kSignedPropertiesType));
      }
      PSL_RETURN_IF_ERROR(CheckTransforms(ref, {kExcC14n}, "the SignedProperties reference"));
    } else {
      return Status::Invalid("reference URI '" + uri +
                             "' is neither the root's Detail nor the SignedProperties");
    }
  }
  if (!detail_seen) {
    return Status::Invalid("no reference covers the Detail");
  }
  if (!props_seen) {
    return Status::Invalid("no reference covers the SignedProperties");
  }

  StatusOr<xmlNode*> ssp = OneChild(*sp, kXadesNs, "SignedSignatureProperties", "SignedProperties");
  if (!ssp.ok()) {
    return ssp.status();
  }
  StatusOr<xmlNode*> time = OneChild(*ssp, kXadesNs, "SigningTime", "SignedSignatureProperties");
  if (!time.ok()) {
    return time.status();
  }
  p.signing_time = TrimmedContent(*time);
  StatusOr<xmlNode*> sc =
      OneChild(*ssp, kXadesNs, "SigningCertificate", "SignedSignatureProperties");
  if (!sc.ok()) {
    return sc.status();
  }
  std::vector<xmlNode*> certs = Children(*sc, kXadesNs, "Cert");
  if (certs.empty()) {
    return Status::Invalid("SigningCertificate holds no Cert");
  }
  // The first Cert names the signing certificate (further ones may name its issuers).
  StatusOr<xmlNode*> cd = OneChild(certs.front(), kXadesNs, "CertDigest", "Cert");
  if (!cd.ok()) {
    return cd.status();
  }
  StatusOr<xmlNode*> cd_method = OneChild(*cd, kDsNs, "DigestMethod", "CertDigest");
  if (!cd_method.ok()) {
    return cd_method.status();
  }
  p.cert_digest_algorithm = Attr(*cd_method, "Algorithm");
  StatusOr<xmlNode*> cd_value = OneChild(*cd, kDsNs, "DigestValue", "CertDigest");
  if (!cd_value.ok()) {
    return cd_value.status();
  }
  StatusOr<std::string> digest = DecodeBase64Of(Content(*cd_value), "CertDigest/DigestValue");
  if (!digest.ok()) {
    return digest.status();
  }
  p.cert_digest = std::move(digest).value();
  StatusOr<xmlNode*> is = OneChild(certs.front(), kXadesNs, "IssuerSerial", "Cert");
  if (!is.ok()) {
    return is.status();
  }
  StatusOr<xmlNode*> issuer = OneChild(*is, kDsNs, "X509IssuerName", "IssuerSerial");
  if (!issuer.ok()) {
    return issuer.status();
  }
  StatusOr<xmlNode*> serial = OneChild(*is, kDsNs, "X509SerialNumber", "IssuerSerial");
  if (!serial.ok()) {
    return serial.status();
  }
  p.issuer_name = TrimmedContent(*issuer);
  p.serial_number = TrimmedContent(*serial);

  // KeyInfo: X509Data with certificates only (no KeyValue, KeyName, RetrievalMethod...).
  std::vector<xmlNode*> key_kids = ElementChildren(key_info);
  if (key_kids.size() != 1 || !IsElement(key_kids[0], kDsNs, "X509Data")) {
    return Status::Invalid("KeyInfo must hold exactly one X509Data and nothing else");
  }
  for (xmlNode* c : ElementChildren(key_kids[0])) {
    if (!IsElement(c, kDsNs, "X509Certificate")) {
      return Status::Invalid("X509Data may hold only X509Certificate elements");
    }
    StatusOr<std::string> der = DecodeBase64Of(Content(c), "X509Certificate");
    if (!der.ok()) {
      return der.status();
    }
    X509Ptr cert = CertificateFromDer(*der);
    if (cert == nullptr) {
      return Status::Invalid("an X509Certificate in KeyInfo is not a DER certificate");
    }
    p.certificates.push_back(std::move(cert));
  }
  if (p.certificates.empty()) {
    return Status::Invalid("X509Data holds no certificate");
  }
  return p;
}

StatusOr<VerifiedSignature> VerifyParsed(xmlDoc* doc, const Envelope& e, X509_STORE* trust,
                                         const Clock& clock) {
  if (trust == nullptr) {
    return Status::FailedPrecondition("no trust store to verify the Xades signature against");
  }
  const system_clock::time_point now = clock.Now();
  const std::string name = e.signature_name;
  if (e.xades == nullptr || TrimmedContent(e.xades).empty()) {
    return Status::Invalid(std::string(e.response ? "the response" : "the request") +
                           " carries no " + name + " signature");
  }
  if (CountElements(e.root, kDsNs, "Signature") != 0) {
    return Status::Invalid("the envelope holds a ds:Signature outside " + name);
  }
  StatusOr<std::string> sig_bytes = DecodeBase64Of(Content(e.xades), name);
  if (!sig_bytes.ok()) {
    return sig_bytes.status();
  }
  StatusOr<XmlDocPtr> sig_doc = Parse(*sig_bytes, "the decoded " + name, StatusCode::kInvalid);
  if (!sig_doc.ok()) {
    return sig_doc.status();
  }
  xmlNode* sig_root = xmlDocGetRootElement(sig_doc->get());
  if (!IsElement(sig_root, kDsNs, "Signature")) {
    return Status::Invalid("the decoded " + name + " is not a ds:Signature");
  }
  if (CountElements(sig_root, kDsNs, "Signature") != 1) {
    return Status::Invalid("the decoded " + name + " holds more than one ds:Signature");
  }
  if (CountElements(sig_root, kDsNs, "Manifest") != 0) {
    return Status::Invalid("ds:Manifest is not allowed by the profile");
  }
  PSL_RETURN_IF_ERROR(CheckDetailContent(e));

  // Imported into the envelope so that "#<Detail/@Id>" resolves; freed with the document.
  xmlNode* signature = xmlDocCopyNode(sig_root, doc, 1);
  if (signature == nullptr || xmlAddChild(e.root, signature) == nullptr) {
    if (signature != nullptr) {
      xmlFreeNode(signature);
    }
    return Status::Internal("cannot import the signature into the envelope");
  }
  PSL_RETURN_IF_ERROR(CheckUniqueIds(e.root));
  StatusOr<SignatureParts> parts = CheckSignatureShape(signature, e);
  if (!parts.ok()) {
    return parts.status();
  }
  PSL_RETURN_IF_ERROR(RegisterId(doc, e.detail, nullptr, "Id"));
  PSL_RETURN_IF_ERROR(RegisterId(doc, parts->signed_properties, nullptr, "Id"));

  X509* leaf = parts->certificates.front().get();
  std::vector<X509Ptr> chain;
  for (std::size_t i = 1; i < parts->certificates.size(); ++i) {
    X509_up_ref(parts->certificates[i].get());
    chain.emplace_back(parts->certificates[i].get());
  }
  if (Status chain_status = VerifyCertificateChain(trust, leaf, chain, now); !chain_status.ok()) {
    return chain_status.code() == StatusCode::kInvalid
               ? Status::Invalid("signing " + chain_status.message())
               : chain_status;
  }

  // The key is the leaf's, whose chain was just verified against `trust` alone. With signKey
  // set and no keys manager, xmlsec never reads KeyInfo and never builds an X509 store of its
  // own: a keys manager (xmlSecOpenSSLAppDefaultKeysMngrInit) would load the whole system CA
  // bundle (X509_STORE_set_default_paths) on every call, 20-38 ms, and trust it besides.
  EVP_PKEY* leaf_key = X509_get0_pubkey(leaf);
  if (leaf_key == nullptr) {
    return Status::Invalid("the signing certificate's public key cannot be read: " +
                           DrainOpenSslErrors());
  }
  XmlSecDSigCtxPtr dsig(xmlSecDSigCtxCreate(nullptr));
  if (dsig == nullptr) {
    return Status::Internal("xmlSecDSigCtxCreate failed");
  }
  dsig->signKey = MakeXmlSecKey(leaf_key);  // owned by dsig from here
  if (dsig->signKey == nullptr) {
    return Status::Invalid("xmlsec does not accept the signing certificate's key");
  }
  dsig->flags |= XMLSEC_DSIG_FLAGS_STORE_SIGNEDINFO_REFERENCES;
  dsig->enabledReferenceUris = xmlSecTransformUriTypeSameDocument;
  // Never consulted while signKey is set; emptied so that no key data could be read regardless.
  xmlSecPtrListEmpty(&dsig->keyInfoReadCtx.enabledKeyData);
  for (xmlSecTransformId t :
       {xmlSecTransformExclC14NId, xmlSecTransformInclC14NId, xmlSecTransformBase64Id,
        OptionalDeflateTransformId(), xmlSecTransformSha256Id}) {
    if (xmlSecDSigCtxEnableReferenceTransform(dsig.get(), t) < 0) {
      return Status::Internal("cannot restrict xmlsec reference transforms");
    }
  }
  for (xmlSecTransformId t :
       {xmlSecTransformExclC14NId, xmlSecTransformInclC14NId, xmlSecTransformRsaSha256Id}) {
    if (xmlSecDSigCtxEnableSignatureTransform(dsig.get(), t) < 0) {
      return Status::Internal("cannot restrict xmlsec signature transforms");
    }
  }

  XmlSecErrorCollector errors;
  if (xmlSecDSigCtxVerify(dsig.get(), signature) < 0) {
    return Status::Invalid("the signature cannot be processed: " + errors.Text());
  }
  // xmlsec stops at the first reference that fails: report that one before counting.
  const xmlSecSize ref_count = xmlSecPtrListGetSize(&dsig->signedInfoReferences);
  for (xmlSecSize i = 0; i < ref_count; ++i) {
    auto* ref = static_cast<xmlSecDSigReferenceCtxPtr>(
        xmlSecPtrListGetItem(&dsig->signedInfoReferences, i));
    const std::string uri = ref->uri != nullptr ? FromXmlChar(ref->uri) : "";
    if (uri != "#" + e.detail_id && uri != "#" + parts->signed_properties_id) {
      return Status::Invalid("xmlsec processed an unexpected reference '" + uri + "'");
    }
    if (ref->status != xmlSecDSigStatusSucceeded) {
      return Status::Invalid("the digest of reference '" + uri + "' does not match (" +
                             (uri == "#" + e.detail_id ? "the Detail was altered"
                                                       : "the SignedProperties were altered") +
                             ")");
    }
  }
  if (ref_count != 2) {
    return Status::Invalid("xmlsec processed " + std::to_string(ref_count) +
                           " references, the profile requires 2");
  }
  if (dsig->status != xmlSecDSigStatusSucceeded) {
    return Status::Invalid(std::string("the SignatureValue does not verify (status ") +
                           DSigStatusName(dsig->status) + ")");
  }
  // What xmlsec digested for "#id" is whatever the ID table names: it must still be the root's
  // Detail and the signature's own SignedProperties.
  if (xmlGetID(doc, ToXmlChar(e.detail_id.c_str())) !=
          xmlHasNsProp(e.detail, ToXmlChar("Id"), nullptr) ||
      xmlGetID(doc, ToXmlChar(parts->signed_properties_id.c_str())) !=
          xmlHasNsProp(parts->signed_properties, ToXmlChar("Id"), nullptr)) {
    return Status::Invalid("a signed Id no longer resolves to the expected element");
  }

  X509* used = leaf;  // the SignatureValue was verified with its key, nothing else
  if (parts->cert_digest_algorithm != kSha256) {
    return Status::Invalid("CertDigest DigestMethod must be " + std::string(kSha256));
  }
  if (parts->cert_digest != Sha256(CertificateDer(used))) {
    return Status::Invalid(
        "SigningCertificate CertDigest is not the digest of the signing "
        "certificate");
  }
  if (CompactDn(parts->issuer_name) != CompactDn(NameRfc2253(X509_get_issuer_name(used)))) {
    return Status::Invalid(
        "SigningCertificate X509IssuerName is not the signing certificate's "
        "issuer");
  }
  if (parts->serial_number != SerialDecimal(used)) {
    return Status::Invalid(
        "SigningCertificate X509SerialNumber is not the signing "
        "certificate's serial number");
  }
  StatusOr<system_clock::time_point> signing_time =
      ParseXsDateTime(parts->signing_time, "SigningTime", XsTimeZone::kRequired);
  if (!signing_time.ok()) {
    return signing_time.status();
  }
  if (*signing_time > now + kMaxSigningTimeSkew) {
    return Status::Invalid("SigningTime " + parts->signing_time + " is in the future");
  }

  VerifiedSignature out;
  X509_up_ref(used);
  out.signer.reset(used);
  out.signer_subject = NameRfc2253(X509_get_subject_name(used));
  out.signing_time = *signing_time;
  return out;
}

// Builds Object/QualifyingProperties and returns SignedProperties.
xmlNode* AddQualifyingProperties(xmlNode* object, xmlNs* ds, const std::string& signature_id,
                                 const std::string& props_id, X509* cert,
                                 system_clock::time_point signing_time) {
  xmlNode* qp = xmlNewChild(object, nullptr, ToXmlChar("QualifyingProperties"), nullptr);
  xmlNs* xades = xmlNewNs(qp, ToXmlChar(kXadesNs), ToXmlChar("xades"));
  xmlSetNs(qp, xades);
  xmlNewProp(qp, ToXmlChar("Target"), ToXmlChar(("#" + signature_id).c_str()));
  xmlNode* sp = AddElement(qp, xades, "SignedProperties", nullptr);
  xmlNewProp(sp, ToXmlChar("Id"), ToXmlChar(props_id.c_str()));
  xmlNode* ssp = AddElement(sp, xades, "SignedSignatureProperties", nullptr);
  const std::string time = FormatUtc(signing_time, kXsDateTimeUtcFormat);
  AddElement(ssp, xades, "SigningTime", &time);
  xmlNode* sc = AddElement(ssp, xades, "SigningCertificate", nullptr);
  xmlNode* c = AddElement(sc, xades, "Cert", nullptr);
  xmlNode* cd = AddElement(c, xades, "CertDigest", nullptr);
  xmlNode* dm = AddElement(cd, ds, "DigestMethod", nullptr);
  xmlNewProp(dm, ToXmlChar("Algorithm"), ToXmlChar(kSha256));
  const std::string digest = EncodeBase64(Sha256(CertificateDer(cert)));
  AddElement(cd, ds, "DigestValue", &digest);
  xmlNode* is = AddElement(c, xades, "IssuerSerial", nullptr);
  const std::string issuer = NameRfc2253(X509_get_issuer_name(cert));
  const std::string serial = SerialDecimal(cert);
  AddElement(is, ds, "X509IssuerName", &issuer);
  AddElement(is, ds, "X509SerialNumber", &serial);
  return sp;
}

StatusOr<std::string> ComputeSignature(xmlDoc* doc, const Envelope& e, const SigningIdentity& id,
                                       system_clock::time_point now) {
  const std::string uuid = RandomUuid();
  if (uuid.empty()) {
    return Status::Internal("no randomness for the signature Id");
  }
  const std::string signature_id = "xmldsig-" + uuid;
  const std::string props_id = signature_id + "-xades-signedprops";

  xmlNode* signature =
      xmlSecTmplSignatureCreateNsPref(doc, xmlSecTransformExclC14NId, xmlSecTransformRsaSha256Id,
                                      ToXmlChar(signature_id.c_str()), ToXmlChar("ds"));
  if (signature == nullptr) {
    return Status::Internal("cannot create the signature template");
  }
  // Attached to the envelope while signing so "#<Detail/@Id>" resolves; removed afterwards.
  struct Detacher {
    explicit Detacher(xmlNode* n) : node(n) {}
    Detacher(const Detacher&) = delete;
    Detacher& operator=(const Detacher&) = delete;
    Detacher(Detacher&&) = delete;
    Detacher& operator=(Detacher&&) = delete;
    ~Detacher() {
      xmlUnlinkNode(node);
      xmlFreeNode(node);
    }
    xmlNode* node;
  } detacher(signature);
  xmlAddChild(e.root, signature);
  xmlNs* ds = xmlSearchNsByHref(doc, signature, ToXmlChar(kDsNs));

  xmlNode* ref = xmlSecTmplSignatureAddReference(signature, xmlSecTransformSha256Id, nullptr,
                                                 ToXmlChar(("#" + e.detail_id).c_str()), nullptr);
  if (ref == nullptr || xmlSecTmplReferenceAddTransform(ref, xmlSecTransformBase64Id) == nullptr ||
      (e.deflate &&
       xmlSecTmplReferenceAddTransform(ref, OptionalDeflateTransformId()) == nullptr) ||
      (e.text_xml && xmlSecTmplReferenceAddTransform(ref, xmlSecTransformExclC14NId) == nullptr)) {
    return Status::Internal("cannot build the Detail reference");
  }
  xmlNode* props_ref = xmlSecTmplSignatureAddReference(signature, xmlSecTransformSha256Id, nullptr,
                                                       ToXmlChar(("#" + props_id).c_str()),
                                                       ToXmlChar(kSignedPropertiesType));
  if (props_ref == nullptr ||
      xmlSecTmplReferenceAddTransform(props_ref, xmlSecTransformExclC14NId) == nullptr) {
    return Status::Internal("cannot build the SignedProperties reference");
  }
  xmlNode* object = xmlSecTmplSignatureAddObject(signature, nullptr, nullptr, nullptr);
  if (object == nullptr) {
    return Status::Internal("cannot build the ds:Object");
  }
  xmlNode* props =
      AddQualifyingProperties(object, ds, signature_id, props_id, id.certificate.get(), now);
  PSL_RETURN_IF_ERROR(RegisterId(doc, e.detail, nullptr, "Id"));
  PSL_RETURN_IF_ERROR(RegisterId(doc, props, nullptr, "Id"));

  PSL_RETURN_IF_ERROR(SignTemplate(signature, id.key.get()));

  // KeyInfo is not signed: added after signing, in schema order before ds:Object.
  xmlNode* key_info = xmlNewNode(ds, ToXmlChar("KeyInfo"));
  xmlAddPrevSibling(object, key_info);
  xmlNode* x509_data = xmlNewChild(key_info, ds, ToXmlChar("X509Data"), nullptr);
  std::vector<X509*> certs = {id.certificate.get()};
  for (const X509Ptr& c : id.chain) {
    certs.push_back(c.get());
  }
  for (X509* c : certs) {
    const std::string b64 = EncodeBase64(CertificateDer(c));
    xmlNewTextChild(x509_data, ds, ToXmlChar("X509Certificate"), ToXmlChar(b64.c_str()));
  }

  XmlDocPtr out = CopyAsDocument(signature);
  if (out == nullptr) {
    return Status::Internal("cannot detach the signature");
  }
  return SerialiseXml(out.get());
}

// Signs the parsed document's Detail and returns it re-serialised with the signature in
// e.xades (filled) or in a new element right after Detail.
StatusOr<std::string> SignParsed(xmlDoc* doc, const Envelope& e, const SigningIdentity& id,
                                 const Clock& clock) {
  if (id.key == nullptr || id.certificate == nullptr) {
    return Status::FailedPrecondition("no signing key or certificate");
  }
  const system_clock::time_point now = clock.Now();
  std::time_t t = system_clock::to_time_t(now);
  if (X509_cmp_time(X509_get0_notBefore(id.certificate.get()), &t) >= 0 ||
      X509_cmp_time(X509_get0_notAfter(id.certificate.get()), &t) <= 0) {
    return Status::FailedPrecondition("the signing certificate " +
                                      NameRfc2253(X509_get_subject_name(id.certificate.get())) +
                                      " is not valid at the signing time");
  }
  PSL_RETURN_IF_ERROR(CheckUniqueIds(e.root));
  PSL_RETURN_IF_ERROR(CheckDetailContent(e));

  StatusOr<std::string> signature = ComputeSignature(doc, e, id, now);
  if (!signature.ok()) {
    return signature.status();
  }
  const std::string b64 = EncodeBase64(*signature);
  if (e.xades != nullptr) {
    xmlNodeSetContent(e.xades, ToXmlChar(b64.c_str()));  // base64 needs no escaping
  } else {
    xmlNs* ns = xmlSearchNsByHref(doc, e.container, ToXmlChar(e.ns));
    xmlNode* xades = xmlNewDocNode(doc, ns, ToXmlChar(e.signature_name), ToXmlChar(b64.c_str()));
    if (ns == nullptr) {
      xmlSetNs(xades, xmlNewNs(xades, ToXmlChar(e.ns), nullptr));
    }
    xmlAddNextSibling(e.detail, xades);
  }
  return SerialiseXml(doc);
}

struct ParsedEnvelope {
  XmlDocPtr doc;
  Envelope parts;  // points into doc
};

// The envelope parsed, and its parts found where `layout` puts them.
StatusOr<ParsedEnvelope> ParseEnvelope(std::string_view bytes, Layout layout) {
  const bool response = layout == Layout::kResponse;
  StatusOr<XmlDocPtr> doc =
      Parse(bytes, response ? "the response" : "the envelope", StatusCode::kMalformed);
  if (!doc.ok()) {
    return doc.status();
  }
  StatusOr<Envelope> parts = FindEnvelopeParts(doc->get(), layout);
  if (!parts.ok()) {
    return parts.status();
  }
  return ParsedEnvelope{std::move(doc).value(), *parts};
}

}  // namespace

namespace {

// SignBlobRequest and SignGenAsyncPost: sign, or verify and keep an existing signature.
StatusOr<std::string> SignOrKeep(std::string_view envelope_xml, Layout layout,
                                 const SigningIdentity& id, X509_STORE* trust, const Clock& clock) {
  StatusOr<ParsedEnvelope> p = ParseEnvelope(envelope_xml, layout);
  if (!p.ok()) {
    return p.status();
  }
  if (p->parts.xades != nullptr && !TrimmedContent(p->parts.xades).empty()) {
    StatusOr<VerifiedSignature> verified = VerifyParsed(p->doc.get(), p->parts, trust, clock);
    if (!verified.ok()) {
      if (verified.status().code() != StatusCode::kInvalid) {
        return verified.status();
      }
      return Status::Invalid("the request's existing " + std::string(p->parts.signature_name) +
                             " does not verify: " + verified.status().message());
    }
    return std::string(envelope_xml);
  }
  return SignParsed(p->doc.get(), p->parts, id, clock);
}

}  // namespace

StatusOr<std::string> SignBlobRequest(std::string_view envelope_xml, const SigningIdentity& id,
                                      X509_STORE* trust, const Clock& clock) {
  return SignOrKeep(envelope_xml, Layout::kRequest, id, trust, clock);
}

StatusOr<std::string> SignGenAsyncPost(std::string_view post_xml, const SigningIdentity& id,
                                       X509_STORE* trust, const Clock& clock) {
  return SignOrKeep(post_xml, Layout::kGenAsyncPost, id, trust, clock);
}

StatusOr<VerifiedSignature> VerifyGenAsyncPost(std::string_view post_xml, X509_STORE* trust,
                                               const Clock& clock) {
  StatusOr<ParsedEnvelope> p = ParseEnvelope(post_xml, Layout::kGenAsyncPost);
  if (!p.ok()) {
    return p.status();
  }
  return VerifyParsed(p->doc.get(), p->parts, trust, clock);
}

StatusOr<std::string> SignGenAsyncElement(std::string_view element_xml, const SigningIdentity& id,
                                          const Clock& clock) {
  StatusOr<ParsedEnvelope> p = ParseEnvelope(element_xml, Layout::kGenAsyncElement);
  if (!p.ok()) {
    return p.status();
  }
  if (p->parts.xades != nullptr && !TrimmedContent(p->parts.xades).empty()) {
    return Status::Invalid("the element already carries a Xades-t signature");
  }
  return SignParsed(p->doc.get(), p->parts, id, clock);
}

StatusOr<VerifiedSignature> VerifyGenAsyncElement(std::string_view element_xml, X509_STORE* trust,
                                                  const Clock& clock) {
  StatusOr<ParsedEnvelope> p = ParseEnvelope(element_xml, Layout::kGenAsyncElement);
  if (!p.ok()) {
    return p.status();
  }
  return VerifyParsed(p->doc.get(), p->parts, trust, clock);
}

StatusOr<std::string> SignBlobResponse(std::string_view response_xml, const SigningIdentity& id,
                                       const Clock& clock) {
  StatusOr<ParsedEnvelope> p = ParseEnvelope(response_xml, Layout::kResponse);
  if (!p.ok()) {
    return p.status();
  }
  if (p->parts.xades != nullptr && !TrimmedContent(p->parts.xades).empty()) {
    return Status::Invalid("the response already carries a XadesT signature");
  }
  return SignParsed(p->doc.get(), p->parts, id, clock);
}

StatusOr<VerifiedSignature> VerifyBlobResponse(std::string_view response_xml, X509_STORE* trust,
                                               const Clock& clock) {
  StatusOr<ParsedEnvelope> p = ParseEnvelope(response_xml, Layout::kResponse);
  if (!p.ok()) {
    return p.status();
  }
  return VerifyParsed(p->doc.get(), p->parts, trust, clock);
}

StatusOr<VerifiedSignature> VerifyBlobRequest(std::string_view envelope_xml, X509_STORE* trust,
                                              const Clock& clock) {
  StatusOr<ParsedEnvelope> p = ParseEnvelope(envelope_xml, Layout::kRequest);
  if (!p.ok()) {
    return p.status();
  }
  return VerifyParsed(p->doc.get(), p->parts, trust, clock);
}

}  // namespace psl::codecs
