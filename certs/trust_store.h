// Trust anchors and chain verification for signatures and peers.
//
// A trust store holds only the anchors of a PEM bundle: intermediates are never trusted by
// themselves (partial chains are refused), they must be supplied as the untrusted chain.
// An X509_STORE is safe to share between threads for verification once loaded.
#ifndef PSL_CERTS_TRUST_STORE_H_
#define PSL_CERTS_TRUST_STORE_H_

#include <chrono>
#include <filesystem>
#include <vector>

#include "base/crypto_handles.h"
#include "base/status.h"

namespace psl::certs {

// Loads every certificate of a PEM bundle as a trust anchor. A missing or unreadable file, or one
// holding no certificate → kFailedPrecondition naming the file.
StatusOr<X509StorePtr> LoadTrustStore(const std::filesystem::path& pem_bundle);

// Reads every certificate of a PEM file, in file order. No certificate → kFailedPrecondition.
StatusOr<std::vector<X509Ptr>> ReadPemCertificates(const std::filesystem::path& pem_file);

// Verifies that `leaf` chains to an anchor of `store` through `untrusted_chain`, with every
// certificate valid at time `at`. Failure → kInvalid naming the leaf's subject, the OpenSSL
// verification error ("certificate has expired", "unable to get local issuer certificate"...)
// and the depth at which it occurred; kInternal for a null store or leaf. Does not check key
// usage or purpose. The check itself is base/x509.h's VerifyCertificateChain, which codecs/
// (XAdES) uses too.
Status VerifyChain(X509_STORE* store, X509* leaf, const std::vector<X509Ptr>& untrusted_chain,
                   std::chrono::system_clock::time_point at);

}  // namespace psl::certs

#endif  // PSL_CERTS_TRUST_STORE_H_
