#include "codecs/seal.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "base/testing/fake_clock.h"
#include "certs/key_store.h"
#include "certs/testing/test_pki.h"
#include "certs/trust_store.h"

namespace psl::codecs {
namespace {

const certs::testing::TestPki& Pki() {
  return certs::testing::SharedTestPki();
}

SigningIdentity Identity(const std::string& name) {
  const std::filesystem::path chain = Pki() / (name + "-chain.pem");
  StatusOr<SigningIdentity> id =
      certs::LoadPemIdentity(Pki() / (name + ".key"), Pki() / (name + ".pem"), &chain, nullptr);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? std::move(id).value() : SigningIdentity{};
}

X509StorePtr Trust(const std::string& bundle) {
  StatusOr<X509StorePtr> store = certs::LoadTrustStore(Pki() / bundle);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

class SealTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Pki().ok());
    clock_.Set(std::chrono::system_clock::now());
    practice_ = Identity("practice-81234530000");
    insurer_ = Identity("insurer-300");
    other_ = Identity("insurer-500");
    trust_ = Trust("ca.pem");
    ASSERT_TRUE(practice_.key && insurer_.key && other_.key && trust_);
  }

  std::string SealForInsurer(std::string_view content) {
    StatusOr<std::string> sealed = Seal(content, practice_, {insurer_.certificate.get()}, clock_);
    EXPECT_TRUE(sealed.ok()) << sealed.status().ToString();
    return sealed.ok() ? std::move(sealed).value() : std::string();
  }

  testing::FakeClock clock_;
  SigningIdentity practice_;
  SigningIdentity insurer_;
  SigningIdentity other_;
  X509StorePtr trust_;
};

TEST_F(SealTest, RoundTripReturnsContentAndSigner) {
  const std::string content = "<a>business</a>";
  const std::string sealed = SealForInsurer(content);
  EXPECT_EQ(sealed.find("business"), std::string::npos);  // encrypted
  StatusOr<Unsealed> out = Unseal(sealed, insurer_, trust_.get(), clock_);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(out->content, content);
  EXPECT_NE(out->signer_subject.find("CN=practice-81234530000"), std::string::npos);
  EXPECT_EQ(X509_cmp(out->signer.get(), practice_.certificate.get()), 0);
}

TEST_F(SealTest, SealsForSeveralRecipients) {
  StatusOr<std::string> sealed =
      Seal("x", practice_, {insurer_.certificate.get(), other_.certificate.get()}, clock_);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_TRUE(Unseal(*sealed, insurer_, trust_.get(), clock_).ok());
  EXPECT_TRUE(Unseal(*sealed, other_, trust_.get(), clock_).ok());
}

TEST_F(SealTest, WrongRecipientIsRefused) {
  const std::string sealed = SealForInsurer("x");
  StatusOr<Unsealed> out = Unseal(sealed, other_, trust_.get(), clock_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalid);
  EXPECT_NE(out.status().message().find("no RecipientInfo for our certificate"), std::string::npos);
}

TEST_F(SealTest, RecipientKeyNotMatchingItsCertificateCannotDecrypt) {
  const std::string sealed = SealForInsurer("x");
  SigningIdentity mixed;
  mixed.key = std::move(other_.key);
  mixed.certificate.reset(X509_dup(insurer_.certificate.get()));
  StatusOr<Unsealed> out = Unseal(sealed, mixed, trust_.get(), clock_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalid);
}

TEST_F(SealTest, TamperedCiphertextIsRefused) {
  std::string sealed = SealForInsurer(std::string(200, 'c'));
  // Flip bytes near the end: inside the encrypted content.
  for (std::size_t i = sealed.size() - 40; i < sealed.size() - 30; ++i) {
    sealed[i] = static_cast<char>(sealed[i] ^ 0x5a);
  }
  StatusOr<Unsealed> out = Unseal(sealed, insurer_, trust_.get(), clock_);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), StatusCode::kInvalid);
}

TEST_F(SealTest, UntrustedSignerIsRefused) {
  SigningIdentity untrusted = Identity("untrusted");
  StatusOr<std::string> sealed = Seal("x", untrusted, {insurer_.certificate.get()}, clock_);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  StatusOr<Unsealed> out = Unseal(*sealed, insurer_, trust_.get(), clock_);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("signer chain"), std::string::npos)
      << out.status().message();
}

TEST_F(SealTest, ExpiredSignerIsRefused) {
  // Sealed in 2020 while the certificate was valid (for itself: the test insurers did not exist
  // yet), opened today.
  SigningIdentity expired = Identity("expired");
  testing::FakeClock then;
  then.SetUtc(2020, 6, 1);
  StatusOr<std::string> sealed = Seal("x", expired, {expired.certificate.get()}, then);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  StatusOr<Unsealed> out = Unseal(*sealed, expired, trust_.get(), clock_);
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("expired"), std::string::npos) << out.status().message();
}

TEST_F(SealTest, SealRefusesAnExpiredSignerOrRecipient) {
  SigningIdentity expired = Identity("expired");
  StatusOr<std::string> a = Seal("x", expired, {insurer_.certificate.get()}, clock_);
  EXPECT_EQ(a.status().code(), StatusCode::kFailedPrecondition);
  StatusOr<std::string> b = Seal("x", practice_, {expired.certificate.get()}, clock_);
  EXPECT_EQ(b.status().code(), StatusCode::kFailedPrecondition);
  StatusOr<std::string> c = Seal("x", practice_, {}, clock_);
  EXPECT_EQ(c.status().code(), StatusCode::kInvalid);
}

TEST_F(SealTest, GarbageAndPlainSignedDataAreRefused) {
  StatusOr<Unsealed> garbage = Unseal("not cms", insurer_, trust_.get(), clock_);
  EXPECT_EQ(garbage.status().code(), StatusCode::kInvalid);
  EXPECT_NE(garbage.status().message().find("not a CMS structure"), std::string::npos);
  StatusOr<Unsealed> empty = Unseal("", insurer_, trust_.get(), clock_);
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalid);
  StatusOr<Unsealed> no_trust = Unseal(SealForInsurer("x"), insurer_, nullptr, clock_);
  EXPECT_EQ(no_trust.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace psl::codecs
