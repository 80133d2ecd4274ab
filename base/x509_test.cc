#include "base/x509.h"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <chrono>
#include <string>
#include <vector>

#include <openssl/x509v3.h>

namespace psl {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;

// A small PKI built in memory (EC P-256, fast): anchor → intermediate → leaf.
class X509Test : public ::testing::Test {
 protected:
  void SetUp() override {
    root_key_.reset(EVP_EC_gen("P-256"));
    intermediate_key_.reset(EVP_EC_gen("P-256"));
    leaf_key_.reset(EVP_EC_gen("P-256"));
    ASSERT_NE(root_key_, nullptr);
    ASSERT_NE(intermediate_key_, nullptr);
    ASSERT_NE(leaf_key_, nullptr);
    root_ = MakeCert("Root", root_key_.get(), nullptr, root_key_.get(), true, 1);
    intermediate_ =
        MakeCert("Intermediate", intermediate_key_.get(), root_.get(), root_key_.get(), true, 2);
    leaf_ =
        MakeCert("leaf", leaf_key_.get(), intermediate_.get(), intermediate_key_.get(), false, 3);
    ASSERT_NE(leaf_, nullptr);
  }

  // Valid from one day ago for 365 days.
  static X509Ptr MakeCert(const char* cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                          bool ca, long serial) {  // NOLINT(google-runtime-int): OpenSSL's type
    X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("BE"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("Example"), -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
    X509_set_pubkey(cert.get(), key);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints,
                                              ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) <= 0) {
      return nullptr;
    }
    return cert;
  }

  X509StorePtr StoreOf(X509* anchor) {
    X509StorePtr store(X509_STORE_new());
    X509_STORE_add_cert(store.get(), anchor);
    return store;
  }

  std::vector<X509Ptr> IntermediateChain() {
    std::vector<X509Ptr> chain;
    X509_up_ref(intermediate_.get());
    chain.emplace_back(intermediate_.get());
    return chain;
  }

  EvpPkeyPtr root_key_, intermediate_key_, leaf_key_;
  X509Ptr root_, intermediate_, leaf_;
};

TEST_F(X509Test, NamesCertificatesInRfc2253Order) {
  EXPECT_EQ(SubjectRfc2253(leaf_.get()), "CN=leaf,O=Example,C=BE");
  EXPECT_EQ(NameRfc2253(X509_get_issuer_name(leaf_.get())), "CN=Intermediate,O=Example,C=BE");
  EXPECT_EQ(SubjectRfc2253(nullptr), "");
  EXPECT_EQ(NameRfc2253(nullptr), "");
}

TEST_F(X509Test, VerifiesALeafThroughItsIntermediateToTheAnchor) {
  X509StorePtr store = StoreOf(root_.get());
  Status s =
      VerifyCertificateChain(store.get(), leaf_.get(), IntermediateChain(), system_clock::now());
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(X509Test, RefusesALeafWithoutItsIntermediate) {
  X509StorePtr store = StoreOf(root_.get());
  Status s = VerifyCertificateChain(store.get(), leaf_.get(), {}, system_clock::now());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("CN=leaf"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("unable to get local issuer certificate"), std::string::npos)
      << s.message();
}

TEST_F(X509Test, DoesNotTrustAnIntermediateAsAnAnchor) {
  X509StorePtr store = StoreOf(intermediate_.get());
  Status s = VerifyCertificateChain(store.get(), leaf_.get(), {}, system_clock::now());
  EXPECT_EQ(s.code(), StatusCode::kInvalid) << s.ToString();
}

TEST_F(X509Test, ChecksValidityAtTheGivenInstantNotNow) {
  X509StorePtr store = StoreOf(root_.get());
  Status s = VerifyCertificateChain(store.get(), leaf_.get(), IntermediateChain(),
                                    system_clock::now() + hours(24 * 400));
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("certificate has expired"), std::string::npos) << s.message();
}

TEST_F(X509Test, ReportsAMissingStoreOrLeafAsInternal) {
  X509StorePtr store = StoreOf(root_.get());
  EXPECT_EQ(VerifyCertificateChain(nullptr, leaf_.get(), {}, system_clock::now()).code(),
            StatusCode::kInternal);
  EXPECT_EQ(VerifyCertificateChain(store.get(), nullptr, {}, system_clock::now()).code(),
            StatusCode::kInternal);
}

TEST_F(X509Test, DerRoundTripsAndRefusesTrailingOrTruncatedBytes) {
  const std::string der = CertificateDer(leaf_.get());
  ASSERT_FALSE(der.empty());
  X509Ptr back = CertificateFromDer(der);
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(X509_cmp(back.get(), leaf_.get()), 0);
  EXPECT_EQ(CertificateFromDer(der + '\0'), nullptr);
  EXPECT_EQ(CertificateFromDer(der.substr(0, der.size() - 1)), nullptr);
  EXPECT_EQ(CertificateFromDer(""), nullptr);
  EXPECT_EQ(ERR_peek_error(), 0UL);  // the failures left nothing on the OpenSSL error queue
}

TEST_F(X509Test, DecodedCertificatesAreReusedByExactDerAndNeverConfused) {
  const std::string leaf_der = CertificateDer(leaf_.get());
  const std::string root_der = CertificateDer(root_.get());
  X509Ptr first = CertificateFromDer(leaf_der);
  ASSERT_NE(first, nullptr);
  const CertificateCacheStats before = CertificateCache();
  X509Ptr again = CertificateFromDer(leaf_der);
  const CertificateCacheStats after = CertificateCache();
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again.get(), first.get());  // the same decoded object, up-referenced
  EXPECT_EQ(after.hits, before.hits + 1);
  EXPECT_EQ(after.decodes, before.decodes);
  X509Ptr root = CertificateFromDer(root_der);
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(X509_cmp(root.get(), root_.get()), 0);
  EXPECT_NE(root.get(), first.get());
  // One byte more or less is another input: decoded (and refused) on its own.
  EXPECT_EQ(CertificateFromDer(leaf_der + '\0'), nullptr);
  EXPECT_EQ(CertificateFromDer(leaf_der.substr(0, leaf_der.size() - 1)), nullptr);
  // Past the cache's capacity the evicted entries decode again, correctly.
  std::vector<X509Ptr> others;
  for (int i = 0; i < 80; ++i) {
    X509Ptr cert = MakeCert("other", leaf_key_.get(), root_.get(), root_key_.get(), false, 100 + i);
    ASSERT_NE(cert, nullptr);
    X509Ptr decoded = CertificateFromDer(CertificateDer(cert.get()));
    ASSERT_NE(decoded, nullptr);
    EXPECT_EQ(X509_cmp(decoded.get(), cert.get()), 0);
    others.push_back(std::move(decoded));
  }
  X509Ptr leaf_back = CertificateFromDer(leaf_der);
  ASSERT_NE(leaf_back, nullptr);
  EXPECT_EQ(X509_cmp(leaf_back.get(), leaf_.get()), 0);
  EXPECT_EQ(X509_cmp(CertificateFromDer(root_der).get(), root_.get()), 0);
}

}  // namespace
}  // namespace psl
