// Our XAdES signatures checked by an independent verifier: Debian's xmlsec1 command line tool.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "base/testing/fake_clock.h"
#include "codecs/testing/xades_test_support.h"
#include "codecs/xades.h"

namespace psl::codecs {
namespace {

using xades_test::DecodedSignature;
using xades_test::ElementText;
using xades_test::ReplaceOnce;

constexpr char kXmlSec1[] = "/usr/bin/xmlsec1";
constexpr char kRootClose[] = "</mhm:SendSubscriptionRequest>";

class XadesInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kXmlSec1)) {
      GTEST_SKIP() << "xmlsec1 is not installed";
    }
    xades_test::InitLibraries();
    ASSERT_TRUE(xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    material_ = xades_test::LoadMaterial();
    psl::testing::FakeClock clock(
        std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
    StatusOr<std::string> signed_envelope =
        SignBlobRequest(xades_test::SampleEnvelope(), material_.practice, nullptr, clock);
    ASSERT_TRUE(signed_envelope.ok()) << signed_envelope.status().ToString();
    signed_envelope_ = *signed_envelope;
  }

  // The envelope with the decoded ds:Signature appended as the root's last child: the form in
  // which a generic XML-DSig verifier can resolve "#<Detail/@Id>".
  static std::string Embedded(std::string envelope, std::string signature) {
    const std::size_t decl_end = signature.find("?>");
    if (signature.rfind("<?xml", 0) == 0 && decl_end != std::string::npos) {
      signature.erase(0, decl_end + 2);
    }
    const std::size_t close = envelope.rfind(kRootClose);
    envelope.insert(close, signature);
    return envelope;
  }

  // Runs xmlsec1 --verify on `document`; returns its exit code and fills *output.
  int RunXmlSec1(const std::string& document, std::string* output) {
    const std::filesystem::path file = xades_test::Pki().Dir() / "xades-interop.xml";
    std::ofstream(file, std::ios::binary) << document;
    const std::string command = std::string(kXmlSec1) +
                                " --verify --enabled-reference-uris same-doc"
                                " --id-attr:Id " +
                                kCommonsProtocolNs +
                                ":Detail"
                                " --id-attr:Id " +
                                kXadesNs +
                                ":SignedProperties"
                                " --trusted-pem '" +
                                (xades_test::Pki() / "ca.pem").string() +
                                "'"
                                " --untrusted-pem '" +
                                (xades_test::Pki() / "intermediate.pem").string() +
                                "'"
                                " '" +
                                file.string() + "' 2>&1";
    return xades_test::RunThenRemove(command, file, output);
  }

  xades_test::Material material_;
  std::string signed_envelope_;
};

TEST_F(XadesInteropTest, XmlSec1VerifiesOurSignature) {
  std::string output;
  EXPECT_EQ(RunXmlSec1(Embedded(signed_envelope_, DecodedSignature(signed_envelope_)), &output), 0)
      << output;
}

TEST_F(XadesInteropTest, XmlSec1RejectsAChangedDetail) {
  std::string envelope = signed_envelope_;
  std::size_t begin = 0, end = 0;
  std::string blob = xades_test::Unbase64(ElementText(envelope, "Detail", &begin, &end));
  ReplaceOnce(blob, "Maison medicale", "Maison medicalf");
  envelope.replace(begin, end - begin, EncodeBase64(blob));
  std::string output;
  EXPECT_NE(RunXmlSec1(Embedded(envelope, DecodedSignature(signed_envelope_)), &output), 0)
      << output;
  EXPECT_NE(output.find("data and digest do not match"), std::string::npos) << output;
}

TEST_F(XadesInteropTest, XmlSec1RejectsASwappedCertificate) {
  std::string signature = DecodedSignature(signed_envelope_);
  unsigned char* der = nullptr;
  const int len = i2d_X509(material_.other_practice.certificate.get(), &der);
  const std::string other(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  std::size_t begin = 0, end = 0;
  ElementText(signature, "X509Certificate", &begin, &end);
  signature.replace(begin, end - begin, EncodeBase64(other));
  std::string output;
  EXPECT_NE(RunXmlSec1(Embedded(signed_envelope_, signature), &output), 0) << output;
  EXPECT_NE(output.find("signature verification failed"), std::string::npos) << output;
}

TEST_F(XadesInteropTest, XmlSec1RejectsAWrappedDetail) {
  // The signed Detail moved into a wrapper, a forged Detail with the same Id in its place.
  std::string envelope = signed_envelope_;
  const std::size_t begin = envelope.find("<mcp:Detail");
  const std::size_t end = envelope.find("</mcp:Detail>") + std::string("</mcp:Detail>").size();
  const std::string signed_detail = envelope.substr(begin, end - begin);
  std::string forged = signed_detail;
  std::size_t content = 0, content_end = 0;
  ElementText(forged, "Detail", &content, &content_end);
  forged.replace(content, content_end - content, EncodeBase64("<other>forged</other>"));
  envelope.replace(begin, end - begin, forged + "<mcp:Wrapper>" + signed_detail + "</mcp:Wrapper>");
  std::string output;
  EXPECT_NE(RunXmlSec1(Embedded(envelope, DecodedSignature(signed_envelope_)), &output), 0)
      << output;
}

}  // namespace
}  // namespace psl::codecs
