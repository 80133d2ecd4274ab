#include "base/x509.h"

#include <list>
#include <memory>
#include <mutex>
#include <string>

namespace psl {

std::string NameRfc2253(const X509_NAME* name) {
  if (name == nullptr) {
    return "";
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    DrainOpenSslErrors();
    return "";
  }
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);  // NOLINT(google-runtime-int): OpenSSL's
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

std::string SubjectRfc2253(const X509* cert) {
  return cert == nullptr ? std::string() : NameRfc2253(X509_get_subject_name(cert));
}

std::string CertificateDer(X509* cert) {
  unsigned char* buf = nullptr;
  const int len = i2d_X509(cert, &buf);
  if (len <= 0) {
    return "";
  }
  std::string out(reinterpret_cast<char*>(buf), static_cast<std::size_t>(len));
  OPENSSL_free(buf);
  return out;
}

namespace {

X509Ptr DecodeCertificate(std::string_view der) {
  const auto* begin = reinterpret_cast<const unsigned char*>(der.data());
  const unsigned char* q = begin;
  X509Ptr cert(d2i_X509(nullptr, &q, static_cast<long>(der.size())));  // NOLINT: OpenSSL's type
  if (cert == nullptr || q != begin + der.size()) {
    DrainOpenSslErrors();
    return nullptr;
  }
  return cert;
}

// The decoded certificates, least recently used first. Small: a gateway sees a handful of
// insurer and practice signing certificates; a linear scan of 64 entries costs far less than
// one decode. Only well-formed certificates are kept (garbage is decoded, and refused, anew).
class CertificateCacheImpl {
 public:
  X509Ptr Get(std::string_view der) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = entries_.begin(); it != entries_.end(); ++it) {
        if (it->der == der) {
          ++stats_.hits;
          entries_.splice(entries_.end(), entries_, it);
          X509_up_ref(it->cert.get());
          return X509Ptr(it->cert.get());
        }
      }
      ++stats_.decodes;
    }
    X509Ptr cert = DecodeCertificate(der);
    if (cert == nullptr) {
      return nullptr;
    }
    std::lock_guard<std::mutex> lock(mu_);
    X509_up_ref(cert.get());
    entries_.push_back({std::string(der), X509Ptr(cert.get())});
    if (entries_.size() > kCapacity) {
      entries_.pop_front();
    }
    return cert;
  }

  CertificateCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }

 private:
  static constexpr std::size_t kCapacity = 64;
  struct Entry {
    std::string der;
    X509Ptr cert;
  };
  std::mutex mu_;
  std::list<Entry> entries_;
  CertificateCacheStats stats_;
};

CertificateCacheImpl& TheCertificateCache() {
  static auto* cache = new CertificateCacheImpl();  // never destroyed: used until exit
  return *cache;
}

}  // namespace

X509Ptr CertificateFromDer(std::string_view der) {
  if (der.empty()) {
    return nullptr;
  }
  return TheCertificateCache().Get(der);
}

CertificateCacheStats CertificateCache() {
  return TheCertificateCache().stats();
}

Status VerifyCertificateChain(X509_STORE* store, X509* leaf,
                              const std::vector<X509Ptr>& untrusted_chain,
                              std::chrono::system_clock::time_point at) {
  if (store == nullptr || leaf == nullptr) {
    return Status::Internal("certificate chain check called without a trust store or a leaf");
  }
  struct StackDeleter {
    void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // certificates are borrowed
  };
  std::unique_ptr<STACK_OF(X509), StackDeleter> untrusted(sk_X509_new_null());
  if (untrusted == nullptr) {
    return Status::Internal("cannot allocate the untrusted certificate stack");
  }
  for (const X509Ptr& c : untrusted_chain) {
    if (sk_X509_push(untrusted.get(), c.get()) <= 0) {
      return Status::Internal("cannot build the untrusted certificate stack");
    }
  }
  X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (ctx == nullptr || X509_STORE_CTX_init(ctx.get(), store, leaf, untrusted.get()) != 1) {
    return Status::Internal("cannot set up certificate verification: " + DrainOpenSslErrors());
  }
  // Only anchors of the store end a chain: an intermediate alone is not trusted.
  X509_VERIFY_PARAM_clear_flags(X509_STORE_CTX_get0_param(ctx.get()), X509_V_FLAG_PARTIAL_CHAIN);
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(at));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int error = X509_STORE_CTX_get_error(ctx.get());
    const int depth = X509_STORE_CTX_get_error_depth(ctx.get());
    DrainOpenSslErrors();
    return Status::Invalid(
        "certificate " + SubjectRfc2253(leaf) + " does not verify against the trust store: " +
        X509_verify_cert_error_string(error) + " (at chain depth " + std::to_string(depth) + ")");
  }
  return Status::Ok();
}

}  // namespace psl
