// X.509 helpers shared by certs/ (key stores, trust stores) and codecs/ (XAdES verification),
// which must not depend on each other: certificate names for messages, DER encoding, and the one
// chain check.
// Pure functions; thread-safe (an X509_STORE is only read once loaded).
#ifndef PSL_BASE_X509_H_
#define PSL_BASE_X509_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/crypto_handles.h"
#include "base/status.h"

namespace psl {

// "CN=...,O=...,C=BE" (RFC 2253); "" for null.
std::string NameRfc2253(const X509_NAME* name);
// The subject of `cert` in RFC 2253 form; "" for null.
std::string SubjectRfc2253(const X509* cert);

// The DER encoding of `cert`; "" when OpenSSL cannot encode it.
std::string CertificateDer(X509* cert);
// The certificate `der` encodes, or null when `der` is not exactly one DER certificate (trailing
// bytes included). Drains the OpenSSL error queue on failure; the caller words the error.
//
// Decoded certificates are kept in a small process-wide cache keyed by their exact DER bytes, and
// the same X509 object (up-referenced) is handed out again: OpenSSL 3.0 decodes a certificate's
// public key through its provider decoder machinery, ~250 µs per RSA certificate, and every
// signed answer from an insurer carries the same few certificates. The returned certificate is
// shared: callers must treat it as read-only (verify with it, read it; never set fields on it).
X509Ptr CertificateFromDer(std::string_view der);

// Hits and decodes of CertificateFromDer's cache since the process started (tests, benchmarks).
struct CertificateCacheStats {
  std::uint64_t hits = 0;
  std::uint64_t decodes = 0;
};
CertificateCacheStats CertificateCache();

// Verifies that `leaf` chains to an anchor of `store` through `untrusted_chain` (borrowed), with
// every certificate valid at `at`. Only the store's certificates end a chain: partial chains
// are refused, so an intermediate placed in the store is not an anchor by itself. Does not check
// key usage or purpose. Errors: kInvalid naming the leaf's subject, OpenSSL's reason
// ("certificate has expired", "unable to get local issuer certificate"...) and the chain depth;
// kInternal when `store` or `leaf` is null or OpenSSL cannot set up the check.
Status VerifyCertificateChain(X509_STORE* store, X509* leaf,
                              const std::vector<X509Ptr>& untrusted_chain,
                              std::chrono::system_clock::time_point at);

}  // namespace psl

#endif  // PSL_BASE_X509_H_
