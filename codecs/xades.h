// The MyCareNet XAdES-BES detached signature over the Detail blob of a sync commons request
// (DOMAIN.md §3; MHM SendSubscriptionRequest and the other commons protocol:v3 requests).
//
// The envelope's root has children Detail and (after signing) Xades in namespace
// urn:be:fgov:ehealth:mycarenet:commons:protocol:v3, found by namespace + local name, never by
// prefix. Xades holds base64 of a standalone ds:Signature document:
//   ds:Signature Id="xmldsig-<uuid>"
//     SignedInfo: exc-c14n, rsa-sha256;
//       Reference URI="#<Detail/@Id>": base64 → optional-deflate (ContentEncoding "deflate", also
//         the schema default when the attribute is absent)
//         → exc-c14n (ContentType "text/xml"), sha256
//       Reference URI="#xmldsig-<uuid>-xades-signedprops" Type=".../01903#SignedProperties":
//         exc-c14n, sha256
//     SignatureValue; KeyInfo/X509Data: leaf certificate, then the chain
//     Object/xades:QualifyingProperties Target="#xmldsig-<uuid>"/SignedProperties/
//       SignedSignatureProperties/{SigningTime, SigningCertificate/Cert/{CertDigest (sha256 of
//       the DER), IssuerSerial (RFC 2253 issuer, decimal serial)}}
//
// Requires a live XmlLibrary and XmlSecLibrary. Thread-safe: every call has its own documents
// and xmlsec contexts; the X509_STORE is only read.
#ifndef PSL_CODECS_XADES_H_
#define PSL_CODECS_XADES_H_

#include <chrono>
#include <string>
#include <string_view>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"

namespace psl::codecs {

inline constexpr char kCommonsProtocolNs[] = "urn:be:fgov:ehealth:mycarenet:commons:protocol:v3";
inline constexpr char kGenAsyncNs[] = "urn:be:cin:nip:async:generic";
inline constexpr char kXadesNs[] = "http://uri.etsi.org/01903/v1.3.2#";
inline constexpr char kSignedPropertiesType[] = "http://uri.etsi.org/01903#SignedProperties";

// A SigningTime later than the verifier's clock by more than this is refused (clock skew).
inline constexpr std::chrono::minutes kMaxSigningTimeSkew{5};

// Signs the Detail blob of `envelope_xml` with `id` and returns the envelope (re-serialised,
// UTF-8) with base64(signature) in Xades, inserted right after Detail when absent (an empty
// Xades is filled). SigningTime is clock.Now().
// When the request already carries a non-empty Xades, that signature is verified with
// VerifyBlobRequest(…, trust, clock) and the envelope is returned byte for byte unchanged.
// Errors: kMalformed (envelope not well-formed / over limits), kInvalid (no single Detail child
// of the root, Detail without Id, unsupported ContentType/ContentEncoding, an existing Xades
// that does not verify — the message says why), kTooLarge (a deflate Detail inflating beyond
// kMaxInflatedBytes), kFailedPrecondition (the certificate is not
// valid at clock.Now(), or an existing Xades but `trust` is null), kInternal (xmlsec failure).
StatusOr<std::string> SignBlobRequest(std::string_view envelope_xml, const SigningIdentity& id,
                                      X509_STORE* trust, const Clock& clock);

struct VerifiedSignature {
  X509Ptr signer;
  std::string signer_subject;  // RFC 2253
  std::chrono::system_clock::time_point signing_time;
};

// Verifies the Xades of `envelope_xml` against `trust`, failing closed: kMalformed when the
// envelope does not parse; kInvalid with a precise reason for anything else — missing or
// duplicated Detail/Xades/Signature, duplicate Id values, a structure outside the profile
// (other references, transforms, key info than listed above, Manifests), a digest or signature
// value that does not match, a CertDigest/IssuerSerial that does not name the signing
// certificate, a SigningTime beyond kMaxSigningTimeSkew in the future, or a certificate chain
// that does not reach an anchor of `trust`; kTooLarge for a deflate Detail inflating beyond
// kMaxInflatedBytes; kFailedPrecondition when `trust` is null.
// The chain (leaf + the other KeyInfo certificates, no partial chains) is verified at
// clock.Now(), not at SigningTime: XAdES-BES carries no trusted time, so the claimed
// SigningTime cannot extend a certificate's life.
StatusOr<VerifiedSignature> VerifyBlobRequest(std::string_view envelope_xml, X509_STORE* trust,
                                              const Clock& clock);

// The same profile on the answer side: a commons protocol:v3 SendResponseType document
// (MHM SendSubscriptionResponse...) whose root holds one Return with CommonOutput, Detail and
// XadesT, all in kCommonsProtocolNs. The signature covers Return/Detail exactly as above and goes
// base64-encoded into Return/XadesT, inserted right after Detail (an empty XadesT is filled).
//
// Deviation from MyCareNet, on purpose: insurers answer with XAdES-T, i.e. XAdES-BES plus an
// UnsignedProperties/SignatureTimeStamp from a time-stamping authority, which this project
// cannot obtain. XadesT here carries the XAdES-BES signature above, without the timestamp, and
// VerifyBlobResponse checks the BES part only. When a TSA is available, the timestamp can be
// added under QualifyingProperties without changing the signed parts.
//
// Errors as SignBlobRequest; kInvalid as well when Return already holds a non-empty XadesT.
StatusOr<std::string> SignBlobResponse(std::string_view response_xml, const SigningIdentity& id,
                                       const Clock& clock);

// Verifies Return/XadesT over Return/Detail, failing closed exactly as VerifyBlobRequest
// (kInvalid also when the root does not hold exactly one Return).
StatusOr<VerifiedSignature> VerifyBlobResponse(std::string_view response_xml, X509_STORE* trust,
                                               const Clock& clock);

// The same profile over the Blob of a Generic Async `post` (DOMAIN.md §3, §4.3: eFact HCPFAC /
// ECM-HCPFAC): root {urn:be:cin:nip:async:generic}post holding one Detail (ContentType
// text/plain, ContentEncoding none|deflate; the Reference's transforms are base64 then, for
// deflate, optional-deflate) and the signature base64-encoded in Xades-t, both in kGenAsyncNs;
// Xades-t is inserted right after Detail (an empty one is filled). As for the responses above,
// Xades-t carries XAdES-BES (no timestamp: no TSA here). An existing non-empty Xades-t is
// verified against `trust` and the post returned unchanged. Errors as SignBlobRequest.
StatusOr<std::string> SignGenAsyncPost(std::string_view post_xml, const SigningIdentity& id,
                                       X509_STORE* trust, const Clock& clock);

// Verifies Xades-t over Detail of a genasync post, failing closed exactly as VerifyBlobRequest.
StatusOr<VerifiedSignature> VerifyGenAsyncPost(std::string_view post_xml, X509_STORE* trust,
                                               const Clock& clock);

// The same profile for any genasync element (kGenAsyncNs root) that holds its signed blob and
// Xades-t as children: a post, a getResponse MsgResponse (blob = Detail, as for the post), or a
// TAckResponse (blob = its TAck element: Reference "#<TAck/@Id>", transform base64 only — the
// decoded TAck content is what is signed, as the genasync XSD describes). Xades-t is inserted
// right after the blob (an empty one is filled). Used by codecs/genasync_mailbox.h, which signs
// and verifies each MsgResponse / TAckResponse as a standalone document.
// Errors as SignBlobResponse (kInvalid when the element already holds a non-empty Xades-t).
StatusOr<std::string> SignGenAsyncElement(std::string_view element_xml, const SigningIdentity& id,
                                          const Clock& clock);
// Verifies Xades-t over the blob of such an element, failing closed as VerifyBlobRequest.
StatusOr<VerifiedSignature> VerifyGenAsyncElement(std::string_view element_xml, X509_STORE* trust,
                                                  const Clock& clock);

}  // namespace psl::codecs

#endif  // PSL_CODECS_XADES_H_
