// Our WS-Security signatures checked by an independent verifier: Debian's xmlsec1 command line
// tool, given the signer's certificate (it cannot follow a wsse:SecurityTokenReference itself).
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/testing/fake_clock.h"
#include "codecs/soap.h"
#include "codecs/testing/soap_test_support.h"

namespace psl::codecs {
namespace {

constexpr char kXmlSec1[] = "/usr/bin/xmlsec1";

class SoapInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kXmlSec1)) {
      GTEST_SKIP() << "xmlsec1 is not installed";
    }
    xades_test::InitLibraries();
    ASSERT_TRUE(xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    material_ = soap_test::LoadMaterial();
    psl::testing::FakeClock clock(
        std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
    StatusOr<std::string> envelope = BuildSoapRequest(
        xades_test::SampleEnvelope(), SoapSecurityOptions(), material_.gateway, clock);
    ASSERT_TRUE(envelope.ok()) << envelope.status().ToString();
    envelope_ = *envelope;
  }

  // Runs xmlsec1 --verify on `document` with the gateway's certificate as the only key; returns
  // its exit code and fills *output.
  int RunXmlSec1(const std::string& document, std::string* output) {
    const std::filesystem::path file = xades_test::Pki().Dir() / "soap-interop.xml";
    std::ofstream(file, std::ios::binary) << document;
    const std::string command =
        std::string(kXmlSec1) +
        " --verify --enabled-reference-uris same-doc"
        " --id-attr:Id " +
        kSoap11Ns + ":Body --id-attr:Id " + kWsuNs + ":Timestamp --pubkey-cert-pem '" +
        (xades_test::Pki() / "gateway.pem").string() + "' '" + file.string() + "' 2>&1";
    return xades_test::RunThenRemove(command, file, output);
  }

  soap_test::Material material_;
  std::string envelope_;
};

TEST_F(SoapInteropTest, XmlSec1VerifiesOurSignature) {
  std::string output;
  EXPECT_EQ(RunXmlSec1(envelope_, &output), 0) << output;
  EXPECT_NE(output.find("OK"), std::string::npos) << output;
}

TEST_F(SoapInteropTest, XmlSec1RejectsAChangedBody) {
  std::string envelope = envelope_;
  soap_test::ReplaceOnce(envelope, "<mc:IsTest>true</mc:IsTest>", "<mc:IsTest>false</mc:IsTest>");
  std::string output;
  EXPECT_NE(RunXmlSec1(envelope, &output), 0) << output;
  EXPECT_NE(output.find("data and digest do not match"), std::string::npos) << output;
}

TEST_F(SoapInteropTest, XmlSec1RejectsAChangedTimestamp) {
  std::string envelope = envelope_;
  const std::string expires = soap_test::Between(envelope, "<wsu:Expires>", "</wsu:Expires>");
  soap_test::ReplaceOnce(envelope, "<wsu:Expires>" + expires,
                         "<wsu:Expires>2099" + expires.substr(4));
  std::string output;
  EXPECT_NE(RunXmlSec1(envelope, &output), 0) << output;
}

}  // namespace
}  // namespace psl::codecs
