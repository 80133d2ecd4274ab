#include "certs/key_store.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>

#include "base/testing/fake_clock.h"
#include "certs/testing/test_pki.h"
#include "certs/trust_store.h"

namespace psl::certs {
namespace {

using std::chrono::hours;
using std::chrono::system_clock;
using testing::SharedTestPki;

constexpr char kPractice[] = "practice-81234530000";

class KeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Pki().ok()) << "certs/make-test-pki.sh failed"; }
  static const testing::TestPki& Pki() { return SharedTestPki(); }
  static std::filesystem::path P(const std::string& file) { return Pki() / file; }

  // Writes `content` to a file in the temp PKI dir.
  static std::filesystem::path WriteTemp(const std::string& name, const std::string& content) {
    std::filesystem::path p = Pki().Dir() / ("test-" + name);  // removed with the PKI
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  static SigningIdentity LoadPractice() {
    const std::filesystem::path chain = P(std::string(kPractice) + "-chain.pem");
    StatusOr<SigningIdentity> id = LoadPemIdentity(
        P(std::string(kPractice) + ".key"), P(std::string(kPractice) + ".pem"), &chain, nullptr);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return std::move(id).value();
  }
};

TEST_F(KeyStoreTest, LoadsAPemIdentityWithItsChain) {
  SigningIdentity id = LoadPractice();
  ASSERT_NE(id.key, nullptr);
  EXPECT_NE(SubjectOf(id.certificate.get()).find("CN=practice-81234530000"), std::string::npos);
  ASSERT_EQ(id.chain.size(), 1u);
  EXPECT_NE(SubjectOf(id.chain[0].get()).find("Issuing CA"), std::string::npos);
}

TEST_F(KeyStoreTest, TakesTheChainFromAFullChainCertificateFile) {
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P("gateway.key"), P("gateway-fullchain.pem"), nullptr, nullptr);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_NE(SubjectOf(id->certificate.get()).find("CN=gateway"), std::string::npos);
  ASSERT_EQ(id->chain.size(), 1u);
}

TEST_F(KeyStoreTest, LoadsAnEncryptedPemKeyWithItsPasswordFile) {
  const std::filesystem::path pass = P(std::string(kPractice) + ".pass");
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P(std::string(kPractice) + "-encrypted.key"),
                      P(std::string(kPractice) + ".pem"), nullptr, &pass);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
}

TEST_F(KeyStoreTest, RefusesAnEncryptedPemKeyWithoutAPasswordFileInsteadOfPrompting) {
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P(std::string(kPractice) + "-encrypted.key"),
                      P(std::string(kPractice) + ".pem"), nullptr, nullptr);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(id.status().message().find("-encrypted.key"), std::string::npos);
  EXPECT_NE(id.status().message().find("no password file"), std::string::npos);
}

TEST_F(KeyStoreTest, LoadsAPkcs12BundleWithItsChain) {
  StatusOr<SigningIdentity> id =
      LoadPkcs12Identity(P(std::string(kPractice) + ".p12"), P(std::string(kPractice) + ".pass"));
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_NE(SubjectOf(id->certificate.get()).find("CN=practice-81234530000"), std::string::npos);
  ASSERT_EQ(id->chain.size(), 1u);
  EXPECT_EQ(X509_check_private_key(id->certificate.get(), id->key.get()), 1);
}

TEST_F(KeyStoreTest, AcceptsAPasswordFileWithWindowsLineEnding) {
  const std::filesystem::path pass = WriteTemp("crlf.pass", "test-p12-password\r\n");
  StatusOr<SigningIdentity> id = LoadPkcs12Identity(P(std::string(kPractice) + ".p12"), pass);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
}

TEST_F(KeyStoreTest, RejectsAPkcs12WithAWrongPasswordWithoutRevealingIt) {
  const std::filesystem::path pass = WriteTemp("wrong.pass", "not-the-Secret-42\n");
  StatusOr<SigningIdentity> id = LoadPkcs12Identity(P(std::string(kPractice) + ".p12"), pass);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(id.status().message().find("wrong password"), std::string::npos);
  EXPECT_NE(id.status().message().find(".p12"), std::string::npos);
  EXPECT_EQ(id.status().message().find("not-the-Secret-42"), std::string::npos);
}

TEST_F(KeyStoreTest, RejectsAnEncryptedPemKeyWithAWrongPassword) {
  const std::filesystem::path pass = WriteTemp("wrong-pem.pass", "nope\n");
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P(std::string(kPractice) + "-encrypted.key"),
                      P(std::string(kPractice) + ".pem"), nullptr, &pass);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("password is wrong"), std::string::npos);
}

TEST_F(KeyStoreTest, RejectsAKeyThatDoesNotMatchTheCertificate) {
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P("gateway.key"), P(std::string(kPractice) + ".pem"), nullptr, nullptr);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(id.status().message().find("does not match"), std::string::npos);
  EXPECT_NE(id.status().message().find("gateway.key"), std::string::npos);
}

TEST_F(KeyStoreTest, NamesAMissingFile) {
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P("absent.key"), P(std::string(kPractice) + ".pem"), nullptr, nullptr);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("absent.key"), std::string::npos);
  EXPECT_NE(id.status().message().find("cannot be opened"), std::string::npos);
}

TEST_F(KeyStoreTest, RejectsACertificateFileWithoutCertificates) {
  const std::filesystem::path empty = WriteTemp("empty.pem", "not a certificate\n");
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P(std::string(kPractice) + ".key"), empty, nullptr, nullptr);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("holds no PEM certificate"), std::string::npos);
}

TEST_F(KeyStoreTest, ReportsTheValidityPeriodOfACertificate) {
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P("expired.key"), P("expired.pem"), nullptr, nullptr);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const CertificateValidity v = ValidityOf(id->certificate.get());
  using std::chrono::sys_days;
  using namespace std::chrono_literals;  // NOLINT(google-build-using-namespace)
  EXPECT_EQ(v.not_before, sys_days{2020y / 1 / 1});
  EXPECT_EQ(v.not_after, sys_days{2021y / 1 / 1});
  psl::testing::FakeClock clock;
  clock.SetUtc(2020, 12, 31, 0, 0);
  EXPECT_EQ(SecondsToExpiry(id->certificate.get(), clock), std::chrono::seconds(24 * 3600));
}

TEST_F(KeyStoreTest, RefusesAnExpiredCertificate) {
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P("expired.key"), P("expired.pem"), nullptr, nullptr);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  SystemClock clock;
  std::string warning = "stale";
  Status s = CheckUsable(*id, clock, hours(24 * 30), &warning);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("expired on 2021-01-01T00:00:00Z"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("CN=expired"), std::string::npos);
}

TEST_F(KeyStoreTest, RefusesACertificateThatIsNotYetValid) {
  SigningIdentity id = LoadPractice();
  psl::testing::FakeClock clock;
  clock.SetUtc(2001, 1, 1);
  Status s = CheckUsable(id, clock, hours(24), nullptr);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("is not valid before"), std::string::npos) << s.message();
}

TEST_F(KeyStoreTest, WarnsWhenTheCertificateExpiresWithinTheWindow) {
  SigningIdentity id = LoadPractice();
  const CertificateValidity v = ValidityOf(id.certificate.get());
  psl::testing::FakeClock clock(v.not_after - hours(24 * 10));
  std::string warning;
  ASSERT_TRUE(CheckUsable(id, clock, hours(24 * 30), &warning).ok());
  EXPECT_NE(warning.find("CN=practice-81234530000"), std::string::npos) << warning;
  EXPECT_NE(warning.find("in 10 days"), std::string::npos) << warning;
}

TEST_F(KeyStoreTest, DoesNotWarnOutsideTheWindow) {
  SigningIdentity id = LoadPractice();
  const CertificateValidity v = ValidityOf(id.certificate.get());
  psl::testing::FakeClock clock(v.not_after - hours(24 * 60));
  std::string warning = "stale";
  ASSERT_TRUE(CheckUsable(id, clock, hours(24 * 30), &warning).ok());
  EXPECT_EQ(warning, "");
}

class TrustStoreTest : public KeyStoreTest {};

TEST_F(TrustStoreTest, VerifiesALeafThroughTheIntermediateToTheRoot) {
  StatusOr<X509StorePtr> store = LoadTrustStore(P("ca.pem"));
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  SigningIdentity id = LoadPractice();
  Status s = VerifyChain(store->get(), id.certificate.get(), id.chain, system_clock::now());
  EXPECT_TRUE(s.ok()) << s.ToString();
}

TEST_F(TrustStoreTest, RejectsALeafWithoutItsIntermediate) {
  StatusOr<X509StorePtr> store = LoadTrustStore(P("ca.pem"));
  ASSERT_TRUE(store.ok());
  SigningIdentity id = LoadPractice();
  Status s = VerifyChain(store->get(), id.certificate.get(), {}, system_clock::now());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_NE(s.message().find("unable to get local issuer certificate"), std::string::npos);
}

TEST_F(TrustStoreTest, RejectsALeafFromAnUntrustedRoot) {
  StatusOr<X509StorePtr> store = LoadTrustStore(P("ca.pem"));
  ASSERT_TRUE(store.ok());
  const std::filesystem::path chain = P("untrusted-chain.pem");
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P("untrusted.key"), P("untrusted.pem"), &chain, nullptr);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  Status s = VerifyChain(store->get(), id->certificate.get(), id->chain, system_clock::now());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("CN=untrusted"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("self-signed certificate in certificate chain"), std::string::npos)
      << s.message();
}

TEST_F(TrustStoreTest, RejectsAnExpiredLeaf) {
  StatusOr<X509StorePtr> store = LoadTrustStore(P("ca.pem"));
  ASSERT_TRUE(store.ok());
  const std::filesystem::path chain = P("expired-chain.pem");
  StatusOr<SigningIdentity> id =
      LoadPemIdentity(P("expired.key"), P("expired.pem"), &chain, nullptr);
  ASSERT_TRUE(id.ok());
  Status s = VerifyChain(store->get(), id->certificate.get(), id->chain, system_clock::now());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("certificate has expired"), std::string::npos) << s.message();
}

TEST_F(TrustStoreTest, DoesNotTrustAnIntermediateAsAnAnchor) {
  StatusOr<X509StorePtr> store = LoadTrustStore(P("intermediate.pem"));
  ASSERT_TRUE(store.ok());
  SigningIdentity id = LoadPractice();
  Status s = VerifyChain(store->get(), id.certificate.get(), {}, system_clock::now());
  EXPECT_FALSE(s.ok());
}

TEST_F(TrustStoreTest, RefusesATrustBundleWithoutCertificates) {
  StatusOr<X509StorePtr> store = LoadTrustStore(P(std::string(kPractice) + ".key"));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace psl::certs
