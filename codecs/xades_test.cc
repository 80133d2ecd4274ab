#include "codecs/xades.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include <libxml/c14n.h>

#include "base/testing/fake_clock.h"
#include "base/x509.h"
#include "codecs/deflate.h"
#include "codecs/testing/xades_test_support.h"

namespace psl::codecs {
namespace {

using std::chrono::floor;
using std::chrono::hours;
using std::chrono::seconds;
using std::chrono::system_clock;
using xades_test::DecodedSignature;
using xades_test::ElementText;
using xades_test::ReplaceOnce;
using xades_test::WithSignature;

constexpr char kDetailId[] = "_0d5e6f70-0000-4000-8000-000000000002";

class XadesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    xades_test::InitLibraries();
    ASSERT_TRUE(xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    material_ = xades_test::LoadMaterial();
    envelope_ = xades_test::SampleEnvelope();
    ASSERT_FALSE(envelope_.empty());
    clock_.Set(floor<seconds>(system_clock::now()));
  }

  std::string Sign(const std::string& envelope, const SigningIdentity& id) {
    StatusOr<std::string> signed_envelope = SignBlobRequest(envelope, id, nullptr, clock_);
    EXPECT_TRUE(signed_envelope.ok()) << signed_envelope.status().ToString();
    return signed_envelope.ok() ? *signed_envelope : std::string();
  }
  std::string SignSample() { return Sign(envelope_, material_.practice); }

  StatusOr<VerifiedSignature> Verify(const std::string& envelope) {
    return VerifyBlobRequest(envelope, material_.trust.get(), clock_);
  }

  // Verification must fail with kInvalid and a message containing `reason`.
  void ExpectRejected(const std::string& envelope, const std::string& reason) {
    StatusOr<VerifiedSignature> v = Verify(envelope);
    ASSERT_FALSE(v.ok()) << "accepted a tampered request";
    EXPECT_EQ(v.status().code(), StatusCode::kInvalid) << v.status().ToString();
    EXPECT_NE(v.status().message().find(reason), std::string::npos) << v.status().message();
  }

  // The signed sample with its decoded signature edited by `edit`.
  template <typename Edit>
  std::string WithEditedSignature(Edit edit) {
    const std::string signed_envelope = SignSample();
    std::string signature = DecodedSignature(signed_envelope);
    edit(signature);
    return WithSignature(signed_envelope, signature);
  }

  xades_test::Material material_;
  std::string envelope_;
  psl::testing::FakeClock clock_;
};

std::string Sha256Base64(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  return EncodeBase64(std::string(reinterpret_cast<char*>(md), len));
}

// The sample with its Detail blob replaced by `blob` (already encoded as the attributes say).
std::string WithDetailBlob(std::string envelope, const std::string& encoded_blob) {
  std::size_t begin = 0, end = 0;
  ElementText(envelope, "Detail", &begin, &end);
  envelope.replace(begin, end - begin, EncodeBase64(encoded_blob));
  return envelope;
}

TEST_F(XadesTest, SignsTheSampleAndVerifiesIt) {
  const std::string signed_envelope = SignSample();
  StatusOr<VerifiedSignature> v = Verify(signed_envelope);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_NE(v->signer_subject.find("CN=practice-81234530000"), std::string::npos);
  EXPECT_EQ(v->signing_time, clock_.Now());
  ASSERT_NE(v->signer, nullptr);
  EXPECT_EQ(X509_cmp(v->signer.get(), material_.practice.certificate.get()), 0);
}

TEST_F(XadesTest, PutsTheSignatureRightAfterDetailInTheProfileShape) {
  const std::string signed_envelope = SignSample();
  EXPECT_NE(signed_envelope.find("</mcp:Detail><mcp:Xades>"), std::string::npos);
  const std::string sig = DecodedSignature(signed_envelope);
  EXPECT_NE(sig.find("<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\" "
                     "Id=\"xmldsig-"),
            std::string::npos)
      << sig;
  EXPECT_NE(sig.find("<ds:CanonicalizationMethod "
                     "Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"/>"),
            std::string::npos);
  EXPECT_NE(sig.find("Algorithm=\"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256\""),
            std::string::npos);
  // Detail reference: base64 then exc-c14n, sha256 (whitespace between elements is xmlsec's).
  const std::size_t detail_ref = sig.find("<ds:Reference URI=\"#" + std::string(kDetailId) + "\">");
  ASSERT_NE(detail_ref, std::string::npos) << sig;
  const std::string detail_ref_text =
      sig.substr(detail_ref, sig.find("</ds:Reference>", detail_ref) - detail_ref);
  const std::size_t base64 =
      detail_ref_text.find("Algorithm=\"http://www.w3.org/2000/09/xmldsig#base64\"");
  const std::size_t c14n =
      detail_ref_text.find("Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"");
  ASSERT_NE(base64, std::string::npos);
  ASSERT_NE(c14n, std::string::npos);
  EXPECT_LT(base64, c14n);
  EXPECT_NE(detail_ref_text.find("<ds:DigestMethod "
                                 "Algorithm=\"http://www.w3.org/2001/04/xmlenc#sha256\"/>"),
            std::string::npos);
  EXPECT_NE(sig.find("<ds:Reference Type=\"http://uri.etsi.org/01903#SignedProperties\" "
                     "URI=\"#xmldsig-"),
            std::string::npos);
  EXPECT_NE(sig.find("<xades:QualifyingProperties "
                     "xmlns:xades=\"http://uri.etsi.org/01903/v1.3.2#\" Target=\"#xmldsig-"),
            std::string::npos);
  EXPECT_NE(sig.find("<xades:SigningTime>"), std::string::npos);
  EXPECT_NE(sig.find("<ds:X509IssuerName>CN=Passerelle Test Issuing CA,O=Passerelle Test "
                     "PKI,C=BE</ds:X509IssuerName>"),
            std::string::npos);
  // Leaf then the intermediate.
  std::size_t count = 0;
  for (std::size_t at = sig.find("<ds:X509Certificate>"); at != std::string::npos;
       at = sig.find("<ds:X509Certificate>", at + 1)) {
    ++count;
  }
  EXPECT_EQ(count, 2u);
  EXPECT_LT(sig.find("<ds:KeyInfo>"), sig.find("<ds:Object>"));
}

TEST_F(XadesTest, DigestsTheExclusiveCanonicalFormOfTheDecodedBlob) {
  // Independent of xmlsec: sha256(exc-c14n(parse(base64-decode(Detail)))).
  const std::string blob = xades_test::Unbase64(ElementText(envelope_, "Detail"));
  XmlDocPtr doc(
      xmlReadMemory(blob.data(), static_cast<int>(blob.size()), nullptr, nullptr, XML_PARSE_NONET));
  ASSERT_NE(doc, nullptr);
  xmlChar* c14n = nullptr;
  const int size =
      xmlC14NDocDumpMemory(doc.get(), nullptr, XML_C14N_EXCLUSIVE_1_0, nullptr, 0, &c14n);
  ASSERT_GT(size, 0);
  const std::string canonical(reinterpret_cast<char*>(c14n), static_cast<std::size_t>(size));
  xmlFree(c14n);
  const std::string sig = DecodedSignature(SignSample());
  EXPECT_EQ(ElementText(sig, "DigestValue"), Sha256Base64(canonical));
}

TEST_F(XadesTest, CertDigestIsTheSha256OfTheCertificateDer) {
  const std::string sig = DecodedSignature(SignSample());
  const std::size_t cert_digest = sig.find("<xades:CertDigest>");
  ASSERT_NE(cert_digest, std::string::npos);
  unsigned char* der = nullptr;
  const int len = i2d_X509(material_.practice.certificate.get(), &der);
  const std::string der_bytes(reinterpret_cast<char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  EXPECT_EQ(ElementText(sig.substr(cert_digest), "DigestValue"), Sha256Base64(der_bytes));
}

TEST_F(XadesTest, RejectsAChangedDetailBlob) {
  const std::string signed_envelope = SignSample();
  std::string blob = xades_test::Unbase64(ElementText(signed_envelope, "Detail"));
  ReplaceOnce(blob, "Maison medicale", "Maison medicalf");
  ExpectRejected(WithDetailBlob(signed_envelope, blob), "Detail was altered");
}

TEST_F(XadesTest, RejectsADetailWithOneBase64CharacterChanged) {
  std::string signed_envelope = SignSample();
  std::size_t begin = 0;
  ElementText(signed_envelope, "Detail", &begin);
  signed_envelope[begin + 100] = signed_envelope[begin + 100] == 'A' ? 'B' : 'A';
  StatusOr<VerifiedSignature> v = Verify(signed_envelope);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalid) << v.status().message();
}

TEST_F(XadesTest, RejectsAChangedDetailId) {
  std::string signed_envelope = SignSample();
  ReplaceOnce(signed_envelope, std::string("Id=\"") + kDetailId,
              "Id=\"_0d5e6f70-0000-4000-8000-000000000099");
  ExpectRejected(signed_envelope, "neither the root's Detail nor the SignedProperties");
}

TEST_F(XadesTest, RejectsAChangedSignatureValue) {
  ExpectRejected(WithEditedSignature([](std::string& sig) {
                   std::size_t begin = 0;
                   ElementText(sig, "SignatureValue", &begin);
                   sig[begin] = sig[begin] == 'A' ? 'B' : 'A';
                 }),
                 "SignatureValue does not verify");
}

TEST_F(XadesTest, RejectsAChangedSigningTime) {
  ExpectRejected(WithEditedSignature([](std::string& sig) {
                   std::size_t begin = 0, end = 0;
                   ElementText(sig, "SigningTime", &begin, &end);
                   sig.replace(begin, end - begin, "2020-01-01T00:00:00Z");
                 }),
                 "SignedProperties were altered");
}

TEST_F(XadesTest, RejectsAnotherValidCertificateSwappedIntoKeyInfo) {
  std::string other_der(
      static_cast<std::size_t>(i2d_X509(material_.other_practice.certificate.get(), nullptr)),
      '\0');
  unsigned char* p = reinterpret_cast<unsigned char*>(other_der.data());
  i2d_X509(material_.other_practice.certificate.get(), &p);
  const std::string other = EncodeBase64(other_der);
  StatusOr<VerifiedSignature> v = Verify(WithEditedSignature([&](std::string& sig) {
    std::size_t begin = 0, end = 0;
    ElementText(sig, "X509Certificate", &begin, &end);
    sig.replace(begin, end - begin, other);
  }));
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kInvalid);
  EXPECT_NE(v.status().message().find("SignatureValue does not verify"), std::string::npos)
      << v.status().message();
}

TEST_F(XadesTest, RejectsASignerFromAnUntrustedRoot) {
  const std::filesystem::path chain = xades_test::Pki() / "untrusted-chain.pem";
  StatusOr<SigningIdentity> untrusted = certs::LoadPemIdentity(
      xades_test::Pki() / "untrusted.key", xades_test::Pki() / "untrusted.pem", &chain, nullptr);
  ASSERT_TRUE(untrusted.ok());
  ExpectRejected(Sign(envelope_, *untrusted), "does not verify against the trust store");
}

// The chain is checked against the caller's store only. SSL_CERT_FILE / SSL_CERT_DIR make the
// untrusted root the "system" bundle for anything that loads OpenSSL's default paths
// (X509_STORE_set_default_paths): a signer trusted only there must still be refused.
TEST_F(XadesTest, RejectsASignerTrustedOnlyByTheSystemStore) {
  const std::filesystem::path chain = xades_test::Pki() / "untrusted-chain.pem";
  StatusOr<SigningIdentity> untrusted = certs::LoadPemIdentity(
      xades_test::Pki() / "untrusted.key", xades_test::Pki() / "untrusted.pem", &chain, nullptr);
  ASSERT_TRUE(untrusted.ok());
  const std::string signed_envelope = Sign(envelope_, *untrusted);
  const std::string root = (xades_test::Pki() / "untrusted-root-ca.pem").string();
  ASSERT_EQ(::setenv("SSL_CERT_FILE", root.c_str(), 1), 0);
  ASSERT_EQ(::setenv("SSL_CERT_DIR", xades_test::Pki().Dir().string().c_str(), 1), 0);
  // Sanity: the default paths now do trust the signer.
  X509StorePtr system_store(X509_STORE_new());
  ASSERT_EQ(X509_STORE_set_default_paths(system_store.get()), 1);
  EXPECT_TRUE(VerifyCertificateChain(system_store.get(), untrusted->certificate.get(),
                                     untrusted->chain, clock_.Now())
                  .ok());
  StatusOr<VerifiedSignature> v = Verify(signed_envelope);
  ::unsetenv("SSL_CERT_FILE");
  ::unsetenv("SSL_CERT_DIR");
  ASSERT_FALSE(v.ok()) << "accepted a signer trusted only by the system store";
  EXPECT_EQ(v.status().code(), StatusCode::kInvalid);
  EXPECT_NE(v.status().message().find("does not verify against the trust store"), std::string::npos)
      << v.status().message();
}

TEST_F(XadesTest, RejectsAnExpiredSignerAtTheVerifiersTime) {
  const std::filesystem::path chain = xades_test::Pki() / "expired-chain.pem";
  StatusOr<SigningIdentity> expired = certs::LoadPemIdentity(
      xades_test::Pki() / "expired.key", xades_test::Pki() / "expired.pem", &chain, nullptr);
  ASSERT_TRUE(expired.ok());
  psl::testing::FakeClock in_2020;
  in_2020.SetUtc(2020, 6, 1);
  StatusOr<std::string> signed_envelope = SignBlobRequest(envelope_, *expired, nullptr, in_2020);
  ASSERT_TRUE(signed_envelope.ok()) << signed_envelope.status().ToString();
  ExpectRejected(*signed_envelope, "certificate has expired");
}

TEST_F(XadesTest, RefusesToSignWithACertificateNotValidNow) {
  const std::filesystem::path chain = xades_test::Pki() / "expired-chain.pem";
  StatusOr<SigningIdentity> expired = certs::LoadPemIdentity(
      xades_test::Pki() / "expired.key", xades_test::Pki() / "expired.pem", &chain, nullptr);
  ASSERT_TRUE(expired.ok());
  StatusOr<std::string> s = SignBlobRequest(envelope_, *expired, nullptr, clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(XadesTest, RejectsASecondElementWithTheSignedId) {
  std::string signed_envelope = SignSample();
  ReplaceOnce(signed_envelope, "<mc:ReferenceDate>",
              std::string("<mcp:Detail ContentType=\"text/plain\" Id=\"") + kDetailId +
                  "\">SGVsbG8=</mcp:Detail><mc:ReferenceDate>");
  ExpectRejected(signed_envelope, "more than one element");
}

TEST_F(XadesTest, RejectsTheSignedDetailMovedIntoAWrapperBehindAnotherDetail) {
  const std::string signed_envelope = SignSample();
  std::size_t begin = signed_envelope.find("<mcp:Detail");
  std::size_t end = signed_envelope.find("</mcp:Detail>") + std::string("</mcp:Detail>").size();
  const std::string signed_detail = signed_envelope.substr(begin, end - begin);
  std::string forged_detail = signed_detail;
  std::size_t content = 0, content_end = 0;
  ElementText(forged_detail, "Detail", &content, &content_end);
  forged_detail.replace(content, content_end - content, EncodeBase64("<other>forged</other>"));

  // Same Id on the forged root child: duplicate Id.
  std::string same_id = signed_envelope;
  same_id.replace(begin, end - begin,
                  forged_detail + "<mcp:Wrapper>" + signed_detail + "</mcp:Wrapper>");
  ExpectRejected(same_id, "more than one element");

  // A fresh Id on the forged root child: the reference no longer names the root's Detail.
  std::string fresh_id = same_id;
  ReplaceOnce(fresh_id, kDetailId, "_forged");
  ExpectRejected(fresh_id, "neither the root's Detail");
}

TEST_F(XadesTest, RejectsAnExtraReference) {
  ExpectRejected(WithEditedSignature([](std::string& sig) {
                   const std::size_t begin = sig.find("<ds:Reference ");
                   const std::size_t end = sig.find("</ds:Reference>") + 15;
                   sig.insert(end, sig.substr(begin, end - begin));
                 }),
                 "exactly 2 references");
}

TEST_F(XadesTest, RejectsAnXPathTransform) {
  ExpectRejected(WithEditedSignature([](std::string& sig) {
                   ReplaceOnce(sig, "</ds:Transforms>",
                               "<ds:Transform "
                               "Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\">"
                               "<ds:XPath>1</ds:XPath></ds:Transform></ds:Transforms>");
                 }),
                 "carries an unexpected parameter");
}

TEST_F(XadesTest, RejectsAnXsltTransform) {
  ExpectRejected(WithEditedSignature([](std::string& sig) {
                   ReplaceOnce(sig, "</ds:Transforms>",
                               "<ds:Transform "
                               "Algorithm=\"http://www.w3.org/TR/1999/REC-xslt-19991116\"/>"
                               "</ds:Transforms>");
                 }),
                 "but the profile requires");
}

TEST_F(XadesTest, RejectsAKeyValueInsteadOfX509Data) {
  ExpectRejected(WithEditedSignature([](std::string& sig) {
                   const std::size_t begin = sig.find("<ds:X509Data>");
                   const std::size_t end = sig.find("</ds:X509Data>") + 14;
                   sig.replace(begin, end - begin,
                               "<ds:KeyValue><ds:RSAKeyValue><ds:Modulus>AAAA</ds:Modulus>"
                               "<ds:Exponent>AQAB</ds:Exponent></ds:RSAKeyValue></ds:KeyValue>");
                 }),
                 "KeyInfo must hold exactly one X509Data");
}

TEST_F(XadesTest, RejectsASignatureWithoutTheSignedPropertiesReference) {
  ExpectRejected(WithEditedSignature([](std::string& sig) {
                   const std::size_t second =
                       sig.find("<ds:Reference ", sig.find("<ds:Reference ") + 1);
                   const std::size_t end = sig.find("</ds:Reference>", second) + 15;
                   sig.erase(second, end - second);
                 }),
                 "exactly 2 references");
}

TEST_F(XadesTest, RejectsASigningTimeInTheFuture) {
  psl::testing::FakeClock later(clock_.Now() + hours(1));
  StatusOr<std::string> signed_envelope =
      SignBlobRequest(envelope_, material_.practice, nullptr, later);
  ASSERT_TRUE(signed_envelope.ok());
  ExpectRejected(*signed_envelope, "is in the future");
}

TEST_F(XadesTest, RejectsARequestWithoutXades) {
  ExpectRejected(envelope_, "carries no Xades");
}

TEST_F(XadesTest, ReturnsARequestWithAValidXadesUnchanged) {
  const std::string signed_envelope = SignSample();
  StatusOr<std::string> again =
      SignBlobRequest(signed_envelope, material_.practice, material_.trust.get(), clock_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, signed_envelope);
}

TEST_F(XadesTest, RefusesToSignOverAnInvalidExistingXades) {
  const std::string placeholder = xades_test::ReadFile(
      std::string(PSL_SHARED_DIR) + "/samples/mhm-SendSubscriptionRequest.SYNTHETIC.xml");
  StatusOr<std::string> s =
      SignBlobRequest(placeholder, material_.practice, material_.trust.get(), clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalid);
  EXPECT_NE(s.status().message().find("existing Xades does not verify"), std::string::npos)
      << s.status().message();
}

TEST_F(XadesTest, SignsAndVerifiesADeflatedDetailWhetherContentEncodingIsGivenOrDefaulted) {
  const std::string blob = xades_test::Unbase64(ElementText(envelope_, "Detail"));
  // An absent ContentEncoding is the schema default (BlobType): deflate.
  for (const char* encoding : {"ContentEncoding=\"deflate\" ", ""}) {
    SCOPED_TRACE(encoding);
    std::string deflated = WithDetailBlob(envelope_, DeflateRaw(blob).value());
    ReplaceOnce(deflated, "ContentEncoding=\"none\" ", encoding);
    const std::string signed_envelope = Sign(deflated, material_.practice);
    EXPECT_NE(DecodedSignature(signed_envelope)
                  .find("Algorithm=\"urn:nippin:xml:sig:transform:optional-deflate\""),
              std::string::npos);
    StatusOr<VerifiedSignature> v = Verify(signed_envelope);
    EXPECT_TRUE(v.ok()) << v.status().ToString();

    // Same canonical content, so the same Detail digest as the uncompressed form.
    EXPECT_EQ(ElementText(DecodedSignature(signed_envelope), "DigestValue"),
              ElementText(DecodedSignature(SignSample()), "DigestValue"));

    std::string altered_blob = blob;
    ReplaceOnce(altered_blob, "Maison medicale", "Maison medicalf");
    ExpectRejected(WithDetailBlob(signed_envelope, DeflateRaw(altered_blob).value()),
                   "Detail was altered");
  }
}

TEST_F(XadesTest, RefusesToSignADetailBlobWithADoctype) {
  std::string hostile = WithDetailBlob(envelope_, "<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>");
  StatusOr<std::string> s = SignBlobRequest(hostile, material_.practice, nullptr, clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalid);
  EXPECT_NE(s.status().message().find("Detail blob"), std::string::npos) << s.status().message();
}

TEST_F(XadesTest, FillsAnEmptyXadesElement) {
  std::string with_empty = envelope_;
  ReplaceOnce(with_empty, "</mcp:Detail>", "</mcp:Detail>\n  <mcp:Xades/>");
  const std::string signed_envelope = Sign(with_empty, material_.practice);
  EXPECT_EQ(signed_envelope.find("<mcp:Xades/>"), std::string::npos);
  StatusOr<VerifiedSignature> v = Verify(signed_envelope);
  EXPECT_TRUE(v.ok()) << v.status().ToString();
}

TEST_F(XadesTest, RefusesADeflateBombInTheDetail) {
  std::string bomb =
      WithDetailBlob(envelope_, DeflateRaw(std::string(kMaxInflatedBytes + 1, ' ')).value());
  ReplaceOnce(bomb, "ContentEncoding=\"none\"", "ContentEncoding=\"deflate\"");
  StatusOr<std::string> s = SignBlobRequest(bomb, material_.practice, nullptr, clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kTooLarge) << s.status().ToString();
}

TEST_F(XadesTest, RefusesToVerifyWithoutATrustStore) {
  StatusOr<VerifiedSignature> v = VerifyBlobRequest(SignSample(), nullptr, clock_);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(XadesTest, RefusesAnEnvelopeWithoutDetailId) {
  std::string no_id = envelope_;
  ReplaceOnce(no_id, std::string(" Id=\"") + kDetailId + "\"", "");
  StatusOr<std::string> s = SignBlobRequest(no_id, material_.practice, nullptr, clock_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalid);
  EXPECT_NE(s.status().message().find("Detail has no Id"), std::string::npos);
}

}  // namespace
}  // namespace psl::codecs
