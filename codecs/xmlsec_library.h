// Process-wide xmlsec (OpenSSL back end) set-up, the collection of xmlsec errors as text, and the
// XML-DSig pieces both signature profiles (XAdES in xades.h, WS-Security in soap.h) share.
//
// XmlSecLibrary is held once by the composition root (and by test fixtures), after XmlLibrary:
// xmlSecInit, version check, xmlSecCryptoAppInit(nullptr), xmlSecCryptoInit; registers the
// MyCareNet "optional-deflate" transform; sets xmlsec's own parser to safe options (no network,
// no entity substitution, no DTD loading); and routes xmlsec's error reports to
// XmlSecErrorCollector instead of stderr. Instances are reference-counted: the first one
// initialises, the last one shuts down; constructing more is harmless (tests do). Construct and
// destroy on one thread while no xmlsec operation runs; operations themselves may then run on
// many threads concurrently.
#ifndef PSL_CODECS_XMLSEC_LIBRARY_H_
#define PSL_CODECS_XMLSEC_LIBRARY_H_

#include <openssl/evp.h>
#include <xmlsec/keys.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmldsig.h>

#include <cstddef>
#include <memory>
#include <string>

#include "base/status.h"

namespace psl::codecs {

// The XML-DSig namespace and the algorithm URIs both profiles use.
inline constexpr char kDsNs[] = "http://www.w3.org/2000/09/xmldsig#";
inline constexpr char kExcC14n[] = "http://www.w3.org/2001/10/xml-exc-c14n#";
inline constexpr char kRsaSha256[] = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
inline constexpr char kSha256[] = "http://www.w3.org/2001/04/xmlenc#sha256";

struct XmlSecDSigCtxDeleter {
  void operator()(xmlSecDSigCtx* c) const { xmlSecDSigCtxDestroy(c); }
};
using XmlSecDSigCtxPtr = std::unique_ptr<xmlSecDSigCtx, XmlSecDSigCtxDeleter>;

// "succeeded", "invalid" or "unknown", for messages.
const char* DSigStatusName(xmlSecDSigStatus s);

// A new xmlsec key holding `pkey` (it takes a reference of its own: the caller keeps `pkey`), or
// null when xmlsec does not accept the key. The caller owns the key (xmlSecKeyDestroy), or hands
// it to an xmlSecDSigCtx as signKey, which then destroys it.
xmlSecKeyPtr MakeXmlSecKey(EVP_PKEY* pkey);

// Fills in the digests and the SignatureValue of the signature template `signature` (xmlsec
// templates: xmlSecTmplSignatureCreate...) with `key`, resolving only same-document references
// (whose Ids the caller has registered, see RegisterId). kInternal when xmlsec cannot, with its
// errors.
Status SignTemplate(xmlNode* signature, EVP_PKEY* key);

// The MyCareNet transform that inflates a raw RFC 1951 (deflate, no zlib header) Blob, used
// between xmldsig#base64 and exc-c14n when Detail/@ContentEncoding is "deflate". Its output is
// capped at kMaxInflatedBytes; larger output, or input that is not valid raw deflate, fails the
// transform (and so the signature).
inline constexpr char kOptionalDeflateTransformHref[] =
    "urn:nippin:xml:sig:transform:optional-deflate";
inline constexpr std::size_t kMaxInflatedBytes = std::size_t{16} * 1024 * 1024;

// The transform id, valid while an XmlSecLibrary is alive (for templates and enable lists).
xmlSecTransformId OptionalDeflateTransformId();

class XmlSecLibrary {
 public:
  XmlSecLibrary();
  ~XmlSecLibrary();
  XmlSecLibrary(const XmlSecLibrary&) = delete;
  XmlSecLibrary& operator=(const XmlSecLibrary&) = delete;
  XmlSecLibrary(XmlSecLibrary&&) = delete;
  XmlSecLibrary& operator=(XmlSecLibrary&&) = delete;

  // OK once xmlsec is usable; kFailedPrecondition naming the step that failed otherwise (a
  // version mismatch between headers and library, an OpenSSL init failure).
  const Status& status() const;
};

// While alive, xmlsec errors reported on the calling thread are appended to this collector
// (the first few, each "function: reason (detail)"); without one they are dropped. Not nestable.
class XmlSecErrorCollector {
 public:
  XmlSecErrorCollector();
  ~XmlSecErrorCollector();
  XmlSecErrorCollector(const XmlSecErrorCollector&) = delete;
  XmlSecErrorCollector& operator=(const XmlSecErrorCollector&) = delete;
  XmlSecErrorCollector(XmlSecErrorCollector&&) = delete;
  XmlSecErrorCollector& operator=(XmlSecErrorCollector&&) = delete;

  // The collected errors joined by "; " ("" when none).
  std::string Text() const;
  void Append(const std::string& error);

 private:
  std::string text_;
  int count_ = 0;
  XmlSecErrorCollector* previous_;
};

}  // namespace psl::codecs

#endif  // PSL_CODECS_XMLSEC_LIBRARY_H_
