// Loading the signing identity (private key + certificate + issuing chain) from PEM files or a
// PKCS#12 bundle, and the validity-period checks run at start-up and on reload.
//
// Every loader checks that the key matches the certificate. Errors are kFailedPrecondition (the
// configuration or the files are not usable) with a message naming the file and the problem; a
// password is never part of a message. Password files hold the password on their first line;
// one trailing "\n" or "\r\n" is stripped. All functions are thread-safe (no shared state).
#ifndef PSL_CERTS_KEY_STORE_H_
#define PSL_CERTS_KEY_STORE_H_

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"

namespace psl::certs {

// `key`: PEM private key (PKCS#8, traditional RSA/EC; encrypted only when `password_file` is given
// — an encrypted key without one fails instead of prompting on a terminal). `cert`: PEM file whose
// first certificate is the leaf; further certificates in it join the chain. `chain` (nullable):
// PEM issuing certificates. The resulting chain is ordered nearest issuer first.
StatusOr<SigningIdentity> LoadPemIdentity(const std::filesystem::path& key,
                                          const std::filesystem::path& cert,
                                          const std::filesystem::path* chain,
                                          const std::filesystem::path* password_file);

// A PKCS#12 bundle holding exactly one key and its certificate (+ optional CA certificates, which
// become the chain, nearest issuer first). A wrong password is reported as such.
StatusOr<SigningIdentity> LoadPkcs12Identity(const std::filesystem::path& p12,
                                             const std::filesystem::path& password_file);

struct CertificateValidity {
  std::chrono::system_clock::time_point not_before;
  std::chrono::system_clock::time_point not_after;
};

// The certificate's notBefore/notAfter. `cert` must not be null.
CertificateValidity ValidityOf(const X509* cert);

// notAfter − now, negative once expired.
std::chrono::seconds SecondsToExpiry(const X509* cert, const Clock& clock);

// Checks the leaf and every chain certificate at clock.Now(): one that is not yet valid or has
// expired → kFailedPrecondition naming its subject and date. When the earliest notAfter falls
// within `warn_window`, returns OK and (if `warning` is not null) sets *warning to a message
// naming that certificate and its expiry; otherwise *warning is cleared.
Status CheckUsable(const SigningIdentity& identity, const Clock& clock,
                   std::chrono::seconds warn_window, std::string* warning);

// "CN=...,O=...,C=BE" (RFC 2253) for messages and logs; "" for null. Same as base/x509.h's
// SubjectRfc2253.
std::string SubjectOf(const X509* cert);

}  // namespace psl::certs

#endif  // PSL_CERTS_KEY_STORE_H_
