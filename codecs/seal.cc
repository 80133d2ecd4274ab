#include "codecs/seal.h"

#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include <ctime>
#include <memory>
#include <utility>

#include "base/x509.h"

namespace psl::codecs {
namespace {

struct CmsDeleter {
  void operator()(CMS_ContentInfo* p) const { CMS_ContentInfo_free(p); }
};
using CmsPtr = std::unique_ptr<CMS_ContentInfo, CmsDeleter>;
struct X509StackDeleter {
  void operator()(STACK_OF(X509) * p) const { sk_X509_free(p); }  // borrowed certificates
};
using X509StackPtr = std::unique_ptr<STACK_OF(X509), X509StackDeleter>;

Status OpenSslInternal(const std::string& what) {
  const std::string detail = DrainOpenSslErrors();
  return Status::Internal(what + (detail.empty() ? "" : ": " + detail));
}

// Whether `cert` is valid at `now` (notBefore <= now <= notAfter).
bool ValidAt(const X509* cert, std::chrono::system_clock::time_point now) {
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  return X509_cmp_time(X509_get0_notBefore(cert), const_cast<std::time_t*>(&t)) < 0 &&
         X509_cmp_time(X509_get0_notAfter(cert), const_cast<std::time_t*>(&t)) > 0;
}

BioPtr MemBio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string BioBytes(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int): OpenSSL API
  return n > 0 ? std::string(data, static_cast<std::size_t>(n)) : std::string();
}

StatusOr<std::string> ToDer(CMS_ContentInfo* cms, const char* what) {
  BioPtr out(BIO_new(BIO_s_mem()));
  if (!out || i2d_CMS_bio(out.get(), cms) != 1) {
    return OpenSslInternal(std::string("cannot encode ") + what);
  }
  return BioBytes(out.get());
}

CmsPtr FromDer(std::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  CmsPtr cms(d2i_CMS_ContentInfo(nullptr, &p, static_cast<long>(der.size())));  // NOLINT
  if (cms && p != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) {
    cms.reset();  // trailing bytes
  }
  return cms;
}

}  // namespace

StatusOr<std::string> Seal(std::string_view content, const SigningIdentity& signer,
                           const std::vector<const X509*>& recipients, const Clock& clock) {
  if (recipients.empty()) {
    return Status::Invalid("seal: at least one recipient certificate is required");
  }
  if (!signer.key || !signer.certificate) {
    return Status::FailedPrecondition("seal: the signing identity has no key or certificate");
  }
  const auto now = clock.Now();
  if (!ValidAt(signer.certificate.get(), now)) {
    return Status::FailedPrecondition("seal: the signer certificate " +
                                      SubjectRfc2253(signer.certificate.get()) +
                                      " is not valid now");
  }
  X509StackPtr to(sk_X509_new_null());
  for (const X509* r : recipients) {
    if (r == nullptr) {
      return Status::Invalid("seal: a recipient certificate is null");
    }
    if (!ValidAt(r, now)) {
      return Status::FailedPrecondition("seal: the recipient certificate " + SubjectRfc2253(r) +
                                        " is not valid now");
    }
    if (EVP_PKEY_get_base_id(X509_get0_pubkey(r)) != EVP_PKEY_RSA) {
      return Status::FailedPrecondition("seal: the recipient certificate " + SubjectRfc2253(r) +
                                        " does not hold an RSA key");
    }
    sk_X509_push(to.get(), const_cast<X509*>(r));
  }
  X509StackPtr chain(sk_X509_new_null());
  for (const X509Ptr& c : signer.chain) {
    sk_X509_push(chain.get(), c.get());
  }

  // Inner SignedData: SHA-256, signer certificate + chain included, content encapsulated.
  BioPtr in = MemBio(content);
  CmsPtr signed_data(
      CMS_sign(nullptr, nullptr, chain.get(), in.get(), CMS_BINARY | CMS_PARTIAL | CMS_NOSMIMECAP));
  if (!signed_data) {
    return OpenSslInternal("seal: cannot create SignedData");
  }
  if (CMS_add1_signer(signed_data.get(), signer.certificate.get(), signer.key.get(), EVP_sha256(),
                      CMS_BINARY | CMS_NOSMIMECAP) == nullptr) {
    return OpenSslInternal("seal: cannot add the signer");
  }
  if (CMS_final(signed_data.get(), in.get(), nullptr, CMS_BINARY) != 1) {
    return OpenSslInternal("seal: cannot sign");
  }
  StatusOr<std::string> inner = ToDer(signed_data.get(), "SignedData");
  if (!inner.ok()) {
    return inner.status();
  }

  // Outer EnvelopedData for the recipients.
  BioPtr inner_bio = MemBio(*inner);
  CmsPtr enveloped(CMS_encrypt(to.get(), inner_bio.get(), EVP_aes_256_cbc(), CMS_BINARY));
  if (!enveloped) {
    return OpenSslInternal("seal: cannot encrypt");
  }
  return ToDer(enveloped.get(), "EnvelopedData");
}

StatusOr<Unsealed> Unseal(std::string_view sealed, const SigningIdentity& recipient,
                          X509_STORE* trust, const Clock& clock) {
  if (trust == nullptr) {
    return Status::FailedPrecondition("unseal: no trust store for the signer");
  }
  if (!recipient.key || !recipient.certificate) {
    return Status::FailedPrecondition("unseal: the recipient identity has no key or certificate");
  }
  if (sealed.size() > kMaxSealedBytes) {
    return Status::TooLarge("unseal: the sealed content exceeds the size limit");
  }
  CmsPtr enveloped = FromDer(sealed);
  if (!enveloped) {
    (void)DrainOpenSslErrors();
    return Status::Invalid("unseal: not a CMS structure");
  }
  if (OBJ_obj2nid(CMS_get0_type(enveloped.get())) != NID_pkcs7_enveloped) {
    return Status::Invalid("unseal: not EnvelopedData");
  }
  // Find our RecipientInfo first, so "not for us" is told apart from "cannot decrypt".
  bool for_us = false;
  STACK_OF(CMS_RecipientInfo)* infos = CMS_get0_RecipientInfos(enveloped.get());
  for (int i = 0; i < sk_CMS_RecipientInfo_num(infos); ++i) {
    CMS_RecipientInfo* ri = sk_CMS_RecipientInfo_value(infos, i);
    if (CMS_RecipientInfo_type(ri) == CMS_RECIPINFO_TRANS &&
        CMS_RecipientInfo_ktri_cert_cmp(ri, recipient.certificate.get()) == 0) {
      for_us = true;
    }
  }
  if (!for_us) {
    (void)DrainOpenSslErrors();
    return Status::Invalid("unseal: no RecipientInfo for our certificate");
  }
  BioPtr decrypted(BIO_new(BIO_s_mem()));
  if (CMS_decrypt(enveloped.get(), recipient.key.get(), recipient.certificate.get(), nullptr,
                  decrypted.get(), CMS_BINARY) != 1) {
    (void)DrainOpenSslErrors();
    return Status::Invalid("unseal: cannot decrypt (wrong key or tampered)");
  }
  const std::string inner = BioBytes(decrypted.get());
  CmsPtr signed_data = FromDer(inner);
  if (!signed_data || OBJ_obj2nid(CMS_get0_type(signed_data.get())) != NID_pkcs7_signed) {
    (void)DrainOpenSslErrors();
    return Status::Invalid("unseal: decrypted content is not CMS SignedData");
  }
  STACK_OF(CMS_SignerInfo)* signers = CMS_get0_SignerInfos(signed_data.get());
  if (sk_CMS_SignerInfo_num(signers) != 1) {
    return Status::Invalid("unseal: SignedData must have exactly one signer");
  }
  CMS_SignerInfo* si = sk_CMS_SignerInfo_value(signers, 0);
  X509_ALGOR* digest_alg = nullptr;
  CMS_SignerInfo_get0_algs(si, nullptr, nullptr, &digest_alg, nullptr);
  const ASN1_OBJECT* digest_oid = nullptr;
  if (digest_alg != nullptr) {
    X509_ALGOR_get0(&digest_oid, nullptr, nullptr, digest_alg);
  }
  if (digest_oid == nullptr || OBJ_obj2nid(digest_oid) != NID_sha256) {
    return Status::Invalid("unseal: signer digest must be SHA-256");
  }
  // The signature over the content; the chain is checked below at clock.Now().
  BioPtr content(BIO_new(BIO_s_mem()));
  if (CMS_verify(signed_data.get(), nullptr, nullptr, nullptr, content.get(),
                 CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) != 1) {
    (void)DrainOpenSslErrors();
    return Status::Invalid("unseal: signature does not verify");
  }
  STACK_OF(X509)* signer_certs = CMS_get0_signers(signed_data.get());
  X509Ptr signer;
  if (signer_certs != nullptr && sk_X509_num(signer_certs) == 1) {
    signer.reset(X509_dup(sk_X509_value(signer_certs, 0)));
  }
  sk_X509_free(signer_certs);
  if (!signer) {
    return Status::Invalid("unseal: the signer certificate is not in the SignedData");
  }
  std::vector<X509Ptr> untrusted;
  STACK_OF(X509)* carried = CMS_get1_certs(signed_data.get());
  for (int i = 0; i < sk_X509_num(carried); ++i) {
    X509* c = sk_X509_value(carried, i);
    if (X509_cmp(c, signer.get()) != 0) {
      untrusted.emplace_back(X509_dup(c));
    }
  }
  sk_X509_pop_free(carried, X509_free);
  if (Status chain = VerifyCertificateChain(trust, signer.get(), untrusted, clock.Now());
      !chain.ok()) {
    return Status::Invalid("unseal: signer chain: " + std::string(chain.message()));
  }
  Unsealed out;
  out.content = BioBytes(content.get());
  out.signer_subject = SubjectRfc2253(signer.get());
  out.signer = std::move(signer);
  return out;
}

}  // namespace psl::codecs
