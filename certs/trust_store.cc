#include "certs/trust_store.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <fstream>
#include <sstream>
#include <string>

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
  if (store == nullptr || leaf == nullptr) {
    return Status::Internal("VerifyChain called without a trust store or a certificate");
  }
  struct StackDeleter {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // certificates are borrowed
  };
  std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
  for (const X509Ptr& c : untrusted_chain) {
    sk_X509_push(untrusted.get(), c.get());  // borrowed
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), store, leaf, untrusted.get()) != 1) {
    return Status::Internal("cannot set up certificate verification: " + DrainOpenSslErrors());
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  // Only self-signed anchors of the store end a chain: an intermediate alone is not trusted.
  X509_VERIFY_PARAM_clear_flags(param, X509_V_FLAG_PARTIAL_CHAIN);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    DrainOpenSslErrors();
    return Status::Invalid("certificate " + SubjectOf(leaf) +
                           " does not verify: " + X509_verify_cert_error_string(error) +
                           " (at chain depth " + std::to_string(depth) + ")");
  }
  return Status::Ok();
}

}  // namespace psl::certs
