// RAII owners for OpenSSL objects, and SigningIdentity: the key + certificate chain that certs/
// loads and codecs/ signs with (so codecs/ never depends on certs/).
#ifndef PSL_BASE_CRYPTO_HANDLES_H_
#define PSL_BASE_CRYPTO_HANDLES_H_

#include <openssl/bio.h>
#include <openssl/evp.h>

#include <memory>
#include <string>
#include <vector>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace psl {

struct EvpPkeyDeleter {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Deleter {
  void operator()(X509* p) const { X509_free(p); }
};
struct X509StoreDeleter {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct X509StoreCtxDeleter {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct BioDeleter {
  void operator()(BIO* p) const { BIO_free_all(p); }
};
struct EvpMdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};

using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, EvpPkeyDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using X509StorePtr = std::unique_ptr<X509_STORE, X509StoreDeleter>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, X509StoreCtxDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxDeleter>;

// A private key with its certificate and the issuing chain (leaf excluded, nearest issuer first).
// Move-only; immutable after loading, so a const SigningIdentity may be shared across threads
// (OpenSSL 3 keys are safe for concurrent signing).
struct SigningIdentity {
  EvpPkeyPtr key;
  X509Ptr certificate;
  std::vector<X509Ptr> chain;
};

// Drains the OpenSSL error queue of this thread into one line ("" when empty).
std::string DrainOpenSslErrors();

}  // namespace psl

#endif  // PSL_BASE_CRYPTO_HANDLES_H_
