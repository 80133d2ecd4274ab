#include "certs/trust_store.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>
#include <string>

#include "base/x509.h"
#include "certs/key_store.h"

namespace psl::certs {

StatusOr<std::vector<X509Ptr>> ReadPemCertificates(const std::filesystem::path& pem_file) {
  std::ifstream in(pem_file, std::ios::binary);
  if (!in) {
    return Status::FailedPrecondition("certificate file '" + pem_file.string() +
                                      "' cannot be opened");
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  const std::string bytes = buf.str();
  BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
  std::vector<X509Ptr> certs;
  while (X509* c = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certs.emplace_back(c);
  }
  // The loop ends on "no start line" at end of input; anything else is a damaged PEM block.
  const unsigned long err = ERR_peek_last_error();  // NOLINT(google-runtime-int): OpenSSL's type
  const bool clean_end = ERR_GET_REASON(err) == PEM_R_NO_START_LINE;
  std::string detail = DrainOpenSslErrors();
  if (!clean_end && err != 0) {
    return Status::FailedPrecondition("certificate file '" + pem_file.string() +
                                      "' holds a damaged PEM certificate: " + detail);
  }
  if (certs.empty()) {
    return Status::FailedPrecondition("certificate file '" + pem_file.string() +
                                      "' holds no PEM certificate");
  }
  return certs;
}

StatusOr<X509StorePtr> LoadTrustStore(const std::filesystem::path& pem_bundle) {
  StatusOr<std::vector<X509Ptr>> certs = ReadPemCertificates(pem_bundle);
  if (!certs.ok()) {
    return certs.status();
  }
  X509StorePtr store(X509_STORE_new());
  if (store == nullptr) {
    return Status::Internal("X509_STORE_new failed");
  }
  for (const X509Ptr& c : *certs) {
    if (X509_STORE_add_cert(store.get(), c.get()) != 1) {  // takes its own reference
      return Status::FailedPrecondition("trust bundle '" + pem_bundle.string() + "': cannot add " +
                                        SubjectOf(c.get()) + ": " + DrainOpenSslErrors());
    }
  }
  return store;
}

Status VerifyChain(X509_STORE* store, X509* leaf, const std::vector<X509Ptr>& untrusted_chain,
                   std::chrono::system_clock::time_point at) {
  return VerifyCertificateChain(store, leaf, untrusted_chain, at);
}

}  // namespace psl::certs
