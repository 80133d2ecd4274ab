// The ETEE "seal" used by eAttest (and MDA): content signed, then encrypted for the recipients
// (DOMAIN.md §3 "End-to-end encryption"), with OpenSSL 3 CMS (RFC 5652).
//
//   Seal(content) = DER ContentInfo EnvelopedData {
//       KeyTransRecipientInfo (RSA PKCS#1 v1.5, by issuer+serial) per recipient certificate,
//       AES-256-CBC content encryption,
//       encrypted content = DER ContentInfo SignedData {
//           SHA-256 digest, one SignerInfo (signed attributes, RSA), the signer certificate and
//           its chain included, encapsulated content = `content` bytes (id-data) } }
//
// Cipher choice: AES-256-CBC in EnvelopedData, not AES-256-GCM in AuthEnvelopedData (RFC 5083).
// OpenSSL 3.0 can write AuthEnvelopedData, but it appeared only in 3.0 and eHealth's ETEE
// libraries (BouncyCastle) are known to read EnvelopedData; GCM would add no protection here
// because the inner SignedData already authenticates the content: any change to the ciphertext
// either breaks the padding/DER of the decrypted SignedData or its signature, and Unseal refuses
// both. (Against MMA oracles OpenSSL decrypts a wrong key-transport block with a random key.)
//
// Thread-safe: pure functions; the identity, certificates and X509_STORE are only read (the
// verification time is set on a per-call X509_STORE_CTX, never on the shared store).
#ifndef PSL_CODECS_SEAL_H_
#define PSL_CODECS_SEAL_H_

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"

namespace psl::codecs {

// Sealed blobs larger than this are refused before parsing (16 MiB).
inline constexpr std::size_t kMaxSealedBytes = std::size_t{16} * 1024 * 1024;

// Signs `content` with `signer` (key, certificate and chain included) and encrypts it for every
// certificate in `recipients` (at least one). Returns the DER bytes.
// Errors: kInvalid (no recipient, a null recipient), kFailedPrecondition (the signer has no key or
// certificate, the signer certificate or a recipient certificate is not valid at clock.Now(), a
// recipient key is not RSA), kInternal (OpenSSL failure; the drained error queue in the message).
StatusOr<std::string> Seal(std::string_view content, const SigningIdentity& signer,
                           const std::vector<const X509*>& recipients, const Clock& clock);

struct Unsealed {
  std::string content;
  X509Ptr signer;              // the SignerInfo's certificate
  std::string signer_subject;  // RFC 2253
};

// Decrypts `sealed` with `recipient` (its key; its certificate selects the RecipientInfo), then
// verifies the inner SignedData: exactly one SignerInfo, digest SHA-256, the signature over the
// content, and the signer's chain (signer certificate + the other certificates the SignedData
// carries as untrusted intermediates) to an anchor of `trust` at clock.Now().
// Fails closed; kInvalid with a precise reason: "not a CMS structure", "not EnvelopedData",
// "no RecipientInfo for our certificate", "cannot decrypt (wrong key or tampered)",
// "decrypted content is not CMS SignedData", "SignedData must have exactly one signer",
// "signer digest must be SHA-256", "signature does not verify", "signer chain: <OpenSSL
// reason, e.g. certificate has expired>"; kTooLarge above kMaxSealedBytes; kFailedPrecondition
// when `trust` is null or the recipient has no key or certificate.
StatusOr<Unsealed> Unseal(std::string_view sealed, const SigningIdentity& recipient,
                          X509_STORE* trust, const Clock& clock);

}  // namespace psl::codecs

#endif  // PSL_CODECS_SEAL_H_
