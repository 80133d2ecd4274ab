// The SOAP 1.1 envelope and its WS-Security header (OASIS WSS 1.0 + wsu), as exchanged between
// the gateway and the insurers (DOMAIN.md §3 "Calling a service"), both sides:
//
//   soapenv:Envelope
//     soapenv:Header/wsse:Security soapenv:mustUnderstand="1"
//       wsu:Timestamp wsu:Id="TS-<uuid>"/{Created = clock, Expires = Created + ttl}
//       wsse:BinarySecurityToken wsu:Id="X509-<uuid>" (X509v3, base64 DER of the signer)
//       ds:Signature: exc-c14n, rsa-sha256 (ecdsa-sha256 for EC keys)
//         Reference URI="#<Body/@wsu:Id>" exc-c14n, sha256
//         Reference URI="#<Timestamp/@wsu:Id>" exc-c14n, sha256
//         KeyInfo/wsse:SecurityTokenReference/wsse:Reference URI="#X509-<uuid>"
//     soapenv:Body wsu:Id="id-<uuid>"/<the signed MyCareNet request document>
//
// Deviation from MyCareNet, on purpose: MyCareNet signs with the holder-of-key of a SAML
// assertion issued by the eHealth STS, which this project cannot obtain. We carry the signer's
// X.509 certificate in a BinarySecurityToken instead, and KeyInfo stays a SecurityTokenReference
// so that a SAML assertion (KeyIdentifier ValueType SAMLID) can replace the token later without
// changing the signature's shape.
//
// Requires a live XmlLibrary and XmlSecLibrary. Thread-safe: every call has its own documents
// and xmlsec contexts; the X509_STORE is only read.
#ifndef PSL_CODECS_SOAP_H_
#define PSL_CODECS_SOAP_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

inline constexpr char kSoap11Ns[] = "http://schemas.xmlsoap.org/soap/envelope/";
inline constexpr char kWsseNs[] =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
inline constexpr char kWsuNs[] =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
inline constexpr char kWssX509v3ValueType[] =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
inline constexpr char kWssBase64EncodingType[] =
    "http://docs.oasis-open.org/wss/2004/01/"
    "oasis-200401-wss-soap-message-security-1.0#Base64Binary";
// HTTP Content-Type of a SOAP 1.1 message (the SOAPAction goes in its own header, quoted; the
// per-flow values are MhmSoapAction() in codecs/mhm_rules.h).
inline constexpr char kSoap11ContentType[] = "text/xml; charset=utf-8";

struct SoapSecurityOptions {
  std::chrono::seconds ttl{60};  // Expires - Created; MyCareNet's handler uses 60 s
};

struct SoapVerifyOptions {
  // Created may be this far in the future, and Expires is compared with now (no grace).
  std::chrono::seconds max_clock_skew{300};
  // Untrusted certificates that may complete the signer's chain (borrowed, may be null): the
  // token carries only the signer's certificate.
  const std::vector<X509Ptr>* intermediates = nullptr;
  XmlLimits limits;
};

struct VerifiedSoap {
  XmlDocPtr body;              // the Body's child as a document of its own
  std::string body_xml;        // the same, serialised (UTF-8, with an XML declaration)
  X509Ptr signer;              // the BinarySecurityToken's certificate
  std::string signer_subject;  // RFC 2253
  std::chrono::system_clock::time_point created;
  std::chrono::system_clock::time_point expires;
};

// Wraps `body_xml` (one document; it passes ParseUntrustedXml with default limits first and is
// embedded as parsed XML) in a signed envelope. Created = clock.Now() (whole seconds).
// Errors: kMalformed (body not well-formed / over limits), kInvalid (ttl not positive),
// kFailedPrecondition (no key or certificate, or the certificate is not valid at clock.Now()),
// kInternal (xmlsec failure).
StatusOr<std::string> BuildSoapRequest(std::string_view body_xml,
                                       const SoapSecurityOptions& options,
                                       const SigningIdentity& id, const Clock& clock);

// Verifies an envelope made as above, failing closed. kMalformed when it does not parse (or
// kTooLarge past options.limits.max_bytes); kFailedPrecondition when `trust` is null; kInvalid
// with a precise reason for everything else: not a SOAP 1.1 Envelope with one Header and one
// Body holding one element; not exactly one wsse:Security header; another header marked
// mustUnderstand; an Id value carried twice; a missing, unparsable, expired or future Timestamp;
// not exactly one ds:Signature (in the Security header, as its child); SignedInfo methods,
// references (exactly Body and Timestamp, nothing else) or transforms (exactly exc-c14n) other
// than the profile; KeyInfo other than one SecurityTokenReference to the one
// BinarySecurityToken (no KeyValue, KeyName, RetrievalMethod, X509Data); a token that is not one
// DER X509v3 certificate; a digest or signature value that does not match; a chain that does not
// reach an anchor of `trust` at clock.Now(). After verification the references must still
// resolve to THE Body and THE Timestamp (node identity, the signature-wrapping defence).
StatusOr<VerifiedSoap> VerifySoapRequest(std::string_view envelope_xml, X509_STORE* trust,
                                         const Clock& clock,
                                         const SoapVerifyOptions& options = SoapVerifyOptions());

// A SOAP 1.1 Fault. `code_ns` empty means the SOAP envelope namespace (codes Client, Server,
// VersionMismatch, MustUnderstand; dotted refinements like "Client.Authentication" allowed).
struct SoapFault {
  std::string code_ns;
  std::string code;        // local part of faultcode
  std::string message;     // faultstring
  std::string actor;       // faultactor, "" when absent
  std::string detail_xml;  // one element (a document) inside detail, "" when absent
};

// An unsigned envelope (no Header) whose Body holds `body_xml`, parsed first as above.
// Errors: kMalformed for a body that does not parse.
StatusOr<std::string> BuildSoapResponse(std::string_view body_xml);
// An envelope whose Body holds the Fault. Errors: kInvalid (empty code, code_ns given with a
// code that is not an NCName), kMalformed (detail_xml does not parse).
StatusOr<std::string> BuildSoapFault(const SoapFault& fault);

// What an insurer (or a practice) answered: the Body's one element, or a Fault.
struct SoapResponse {
  XmlDocPtr body;        // null when fault is set
  std::string body_xml;  // "" when fault is set
  std::optional<SoapFault> fault;
};

// Reads an envelope without checking any signature (the answer's own XAdES is checked by the
// flow codec). kMalformed when it does not parse; kInvalid when it is not a SOAP 1.1 Envelope with
// at most one Header and exactly one Body holding exactly one element, or a Fault without
// faultcode/faultstring or with a faultcode whose prefix is not declared.
StatusOr<SoapResponse> ParseSoapResponse(std::string_view envelope_xml,
                                         const XmlLimits& limits = XmlLimits());
// ParseSoapResponse, then the Fault; kInvalid when the Body holds no Fault.
StatusOr<SoapFault> ParseSoapFault(std::string_view envelope_xml,
                                   const XmlLimits& limits = XmlLimits());

}  // namespace psl::codecs

#endif  // PSL_CODECS_SOAP_H_
