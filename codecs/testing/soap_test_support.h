// Test helpers shared by soap_test.cc and soap_interop_test.cc: the test PKI identities (gateway,
// insurer, expired, untrusted), the trust store and string surgery. Test-only.
#ifndef PSL_CODECS_TESTING_SOAP_TEST_SUPPORT_H_
#define PSL_CODECS_TESTING_SOAP_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "base/crypto_handles.h"
#include "base/x509.h"
#include "certs/key_store.h"
#include "certs/trust_store.h"
#include "codecs/testing/xades_test_support.h"

namespace psl::codecs::soap_test {

using xades_test::ReplaceOnce;

struct Material {
  SigningIdentity gateway;
  SigningIdentity insurer;
  SigningIdentity expired;
  SigningIdentity untrusted;
  std::vector<X509Ptr> intermediates;  // the test PKI's issuing CA
  X509StorePtr trust;                  // the test root only
};

inline SigningIdentity LoadIdentity(const std::string& name) {
  const std::filesystem::path chain = xades_test::Pki() / (name + "-chain.pem");
  StatusOr<SigningIdentity> id = certs::LoadPemIdentity(
      xades_test::Pki() / (name + ".key"), xades_test::Pki() / (name + ".pem"), &chain, nullptr);
  EXPECT_TRUE(id.ok()) << name << ": " << id.status().ToString();
  return id.ok() ? std::move(id).value() : SigningIdentity{};
}

inline Material LoadMaterial() {
  Material m;
  m.gateway = LoadIdentity("gateway");
  m.insurer = LoadIdentity("insurer-300");
  m.expired = LoadIdentity("expired");
  m.untrusted = LoadIdentity("untrusted");
  StatusOr<std::vector<X509Ptr>> intermediates =
      certs::ReadPemCertificates(xades_test::Pki() / "intermediate.pem");
  EXPECT_TRUE(intermediates.ok()) << intermediates.status().ToString();
  if (intermediates.ok()) {
    m.intermediates = std::move(intermediates).value();
  }
  StatusOr<X509StorePtr> trust = certs::LoadTrustStore(xades_test::Pki() / "ca.pem");
  EXPECT_TRUE(trust.ok()) << trust.status().ToString();
  if (trust.ok()) {
    m.trust = std::move(trust).value();
  }
  return m;
}

// The text between the first `open` and the next `close` after it ("" when absent).
inline std::string Between(const std::string& s, const std::string& open,
                           const std::string& close) {
  const std::size_t begin = s.find(open);
  if (begin == std::string::npos) {
    return "";
  }
  const std::size_t from = begin + open.size();
  const std::size_t end = s.find(close, from);
  return end == std::string::npos ? "" : s.substr(from, end - from);
}

}  // namespace psl::codecs::soap_test

#endif  // PSL_CODECS_TESTING_SOAP_TEST_SUPPORT_H_
