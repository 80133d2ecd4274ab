#include "codecs/genasync.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/testing/fake_clock.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/testing/efact_test_support.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/testing/xades_test_support.h"
#include "codecs/validator.h"
#include "codecs/xades.h"

namespace psl::codecs {
namespace {

using efact_test::Patch;
using efact_test::SampleFile;
using efact_test::SampleInvoice;
using efact_test::SampleMediPrimaFile;
using mhm_test::Dump;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::Not;

// A valid medical-house NIHII (the genasync sample's).
constexpr std::string_view kMedicalHouseNihii = "81234530000";

struct PostOptions {
  std::string encoding = "deflate";
  std::string message_name = "HCPFAC";
  std::string content_type = "text/plain";
  std::optional<std::string> origin_nihii;  // default: the file's sender
  std::string sender_nihii{efact_test::kSenderNihii};
  std::string raw_content;  // when set, the Detail text as is
};

// The shared synthetic post with its Origin NIHII and its Detail replaced.
std::string Post(const std::string& file_bytes, const PostOptions& o = {}) {
  std::string env = mhm_test::ReadShared("samples/genasync-post-eFact-HCPFAC.SYNTHETIC.xml");
  const std::string nihii = o.origin_nihii.value_or(o.sender_nihii);
  env = mhm_test::Replace(env, "81234530000", nihii);
  const std::size_t open = env.find("<gen:Detail");
  const std::size_t close = env.find("</gen:Detail>") + std::string("</gen:Detail>").size();
  std::string content = o.raw_content;
  if (content.empty()) {
    StatusOr<std::string> deflated = DeflateRaw(file_bytes);
    EXPECT_TRUE(deflated.ok());
    content = EncodeBase64(o.encoding == "deflate" ? *deflated : file_bytes);
  }
  const std::string detail = "<gen:Detail ContentType=\"" + o.content_type +
                             "\" ContentEncoding=\"" + o.encoding + "\" MessageName=\"" +
                             o.message_name + "\" Id=\"blob-1\">" + content + "</gen:Detail>";
  return env.replace(open, close - open, detail);
}

const Problem* Find(const ValidationReport& report, std::string_view code) {
  for (const Problem& p : report.problems) {
    if (p.code == code) {
      return &p;
    }
  }
  return nullptr;
}

std::vector<std::string> Codes(const ValidationReport& report) {
  std::vector<std::string> codes;
  for (const Problem& p : report.problems) {
    codes.push_back(p.code);
  }
  return codes;
}

// Every record carrying the sender (zone 14 of 10, 20, 80, 90) set to a medical house.
EfactFile WithMedicalHouseSender(EfactFile file) {
  for (EfactRecord& r : file.records) {
    if (r.type() == EfactRecordType::kSender10 || r.type() == EfactRecordType::kInvoice20 ||
        r.type() == EfactRecordType::kInvoiceEnd80 || r.type() == EfactRecordType::kSenderEnd90) {
      efact_test::MustSet(r.SetText("14", "0" + std::string(kMedicalHouseNihii)));
    }
  }
  return file;
}

SampleInvoice Invoice(std::string affiliation, std::string destination, std::int64_t number) {
  SampleInvoice inv;
  inv.affiliation = std::move(affiliation);
  inv.destination = std::move(destination);
  inv.number = number;
  return inv;
}

class GenAsyncCodecTest : public ::testing::Test {
 protected:
  GenAsyncCodecTest() : codec_(mhm_test::TestSchemas()) {}

  StatusOr<GenAsyncPost> Decode(const std::string& bytes) {
    report_ = ValidationReport{};
    return codec_.Decode(bytes, &report_);
  }

  GenAsyncCodec codec_;
  ValidationReport report_;
};

TEST_F(GenAsyncCodecTest, ASampleFileDeflatedDecodesWithItsFacts) {
  const std::string file = WriteEfact(SampleFile());
  StatusOr<GenAsyncPost> post = Decode(Post(file));
  ASSERT_TRUE(post.ok()) << post.status().ToString() << "\n" << Dump(report_);
  EXPECT_TRUE(report_.problems.empty()) << Dump(report_);
  EXPECT_EQ(report_.kind, "claim");
  EXPECT_EQ(report_.flow, "efact");
  EXPECT_EQ(report_.operation, "post");
  EXPECT_EQ(post->message_name, "HCPFAC");
  EXPECT_EQ(post->blob_id, "blob-1");
  EXPECT_EQ(post->content_encoding, "deflate");
  EXPECT_EQ(post->input_reference, "20250102093000001");
  EXPECT_EQ(post->sender_nihii, efact_test::kSenderNihii);
  EXPECT_EQ(post->destination, "300");
  EXPECT_EQ(post->destination_mutualities, (std::vector<std::string>{"300", "306"}));
  EXPECT_TRUE(post->is_test);
  EXPECT_EQ(post->invoice_count, 2u);
  EXPECT_EQ(post->act_count, 3u);
  EXPECT_EQ(post->record_count, post->file.records.size());
  EXPECT_EQ(post->total_amount, 2150 + 1890 + 3000);
  EXPECT_FALSE(post->has_xades);
  EXPECT_NE(post->envelope, nullptr);
}

TEST_F(GenAsyncCodecTest, AnUncompressedBlobDecodesToo) {
  PostOptions o;
  o.encoding = "none";
  StatusOr<GenAsyncPost> post = Decode(Post(WriteEfact(SampleFile()), o));
  ASSERT_TRUE(post.ok()) << Dump(report_);
  EXPECT_EQ(post->content_encoding, "none");
}

TEST_F(GenAsyncCodecTest, TheSharedSampleIsRecognisedButItsPlaceholderIsNoEfactFile) {
  StatusOr<GenAsyncPost> post =
      Decode(mhm_test::ReadShared("samples/genasync-post-eFact-HCPFAC.SYNTHETIC.xml"));
  ASSERT_FALSE(post.ok());
  EXPECT_EQ(report_.flow, "efact");
  EXPECT_EQ(Find(report_, "PSL-SCHEMA"), nullptr) << Dump(report_);
  for (const Problem& p : report_.problems) {
    EXPECT_EQ(p.document, "efact") << Dump(report_);
  }
}

TEST_F(GenAsyncCodecTest, AGetRequestIsNotAPost) {
  StatusOr<GenAsyncPost> post = Decode("<gen:get xmlns:gen=\"urn:be:cin:nip:async:generic\"/>");
  ASSERT_FALSE(post.ok());
  EXPECT_EQ(post.status().code(), StatusCode::kInvalid);
  ASSERT_EQ(report_.problems.size(), 1u) << Dump(report_);
  EXPECT_EQ(report_.problems[0].code, "PSL-GENASYNC-OPERATION");
}

TEST_F(GenAsyncCodecTest, AnotherRootIsAnUnknownFlow) {
  ASSERT_FALSE(Decode("<post xmlns=\"urn:other\"/>").ok());
  EXPECT_THAT(Codes(report_), Contains("PSL-FLOW-UNKNOWN"));
}

TEST_F(GenAsyncCodecTest, AnUnknownMessageNameIsRefused) {
  PostOptions o;
  o.message_name = "HCPAFD";
  ASSERT_FALSE(Decode(Post(WriteEfact(SampleFile()), o)).ok());
  const Problem* p = Find(report_, "PSL-GENASYNC-MESSAGENAME");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->path, "/post/Detail");
}

TEST_F(GenAsyncCodecTest, AWrongContentTypeIsRefused) {
  PostOptions o;
  o.content_type = "text/xml";
  ASSERT_FALSE(Decode(Post(WriteEfact(SampleFile()), o)).ok());
  EXPECT_THAT(Codes(report_), Contains("PSL-BLOB-CONTENTTYPE"));
}

TEST_F(GenAsyncCodecTest, BadBase64IsMalformed) {
  PostOptions o;
  o.raw_content = "not*base64";
  StatusOr<GenAsyncPost> post = Decode(Post("", o));
  ASSERT_FALSE(post.ok());
  EXPECT_EQ(post.status().code(), StatusCode::kMalformed);
  EXPECT_THAT(Codes(report_), Contains("PSL-BLOB-BASE64"));
}

TEST_F(GenAsyncCodecTest, ADeflateBombStopsAtTheSizeCap) {
  const std::string zeros(3 * 1024 * 1024, '0');  // > the 2 MiB default cap
  StatusOr<GenAsyncPost> post = Decode(Post(zeros));
  ASSERT_FALSE(post.ok());
  EXPECT_EQ(post.status().code(), StatusCode::kMalformed);
  EXPECT_THAT(Codes(report_), Contains("PSL-BLOB-SIZE"));
}

TEST_F(GenAsyncCodecTest, AStreamThatIsNotRawDeflateIsRefused) {
  PostOptions o;
  o.raw_content = EncodeBase64("definitely not deflate");
  ASSERT_FALSE(Decode(Post("", o)).ok());
  EXPECT_THAT(Codes(report_), Contains("PSL-BLOB-DEFLATE"));
}

TEST_F(GenAsyncCodecTest, ASchemaErrorIsReportedWithTheEfactStillChecked) {
  std::string env = Post(WriteEfact(SampleFile()));
  env = mhm_test::Replace(env, "</gen:post>", "<gen:Unexpected/></gen:post>");
  StatusOr<GenAsyncPost> post = Decode(env);
  ASSERT_FALSE(post.ok());
  EXPECT_EQ(post.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(Codes(report_), Contains("PSL-SCHEMA"));
}

TEST_F(GenAsyncCodecTest, ACorruptedRecordChecksumIsReportedWithRecordZoneAndCode) {
  const std::string file =
      Patch(WriteEfact(SampleFile()), 2, "28", "CHANGED", /*keep_checksum=*/true);
  ASSERT_FALSE(Decode(Post(file)).ok());
  const Problem* p = Find(report_, "209902");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->line, 2);
  EXPECT_EQ(p->path, "record 20 zone 99");
  EXPECT_EQ(p->document, "efact");
}

TEST_F(GenAsyncCodecTest, AWrongInvoiceTotalIsReported) {
  // Records: 10, 20, 50, 50, 80 → the first 80 is record 5.
  ASSERT_FALSE(Decode(Post(Patch(WriteEfact(SampleFile()), 5, "19", "+00000000001"))).ok());
  const Problem* p = Find(report_, "PSL-EFACT-TOTAL");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->line, 5);
  EXPECT_EQ(p->path, "record 80 zone 19");
}

TEST_F(GenAsyncCodecTest, ABadNissCheckDigitIsReportedWithRecordZoneAndCode) {
  ASSERT_FALSE(Decode(Post(Patch(WriteEfact(SampleFile()), 2, "8", "0017073003385"))).ok());
  const Problem* p = Find(report_, "200802");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->line, 2);
  EXPECT_EQ(p->path, "record 20 zone 8");
  for (const Problem& q : report_.problems) {
    EXPECT_THAT(q.message, Not(HasSubstr("17073003385")));
  }
}

TEST_F(GenAsyncCodecTest, ABatchForSeveralInsurersIsRefused) {
  const std::string file =
      WriteEfact(SampleFile({Invoice("319", "300", 1), Invoice("501", "501", 2)}));
  ASSERT_FALSE(Decode(Post(file)).ok());
  const Problem* p = Find(report_, "PSL-GENASYNC-MULTI-INSURER");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_THAT(p->message, HasSubstr("300, 500"));
  EXPECT_EQ(p->document, "efact");
}

TEST_F(GenAsyncCodecTest, SolidarisAffiliation304GoesTo300) {
  StatusOr<GenAsyncPost> post = Decode(Post(WriteEfact(SampleFile({Invoice("304", "300", 1)}))));
  ASSERT_TRUE(post.ok()) << Dump(report_);
  EXPECT_EQ(post->destination, "300");
  EXPECT_EQ(post->destination_mutualities, std::vector<std::string>{"300"});
}

TEST_F(GenAsyncCodecTest, AnAffiliationDestinationMismatchIsRefused) {
  ASSERT_FALSE(Decode(Post(WriteEfact(SampleFile({Invoice("304", "304", 1)})))).ok());
  EXPECT_THAT(Codes(report_), Contains("PSL-EFACT-DESTINATION")) << Dump(report_);
}

TEST_F(GenAsyncCodecTest, AMedicalHouseSendsOtherSolidarisMutualitiesTo306) {
  PostOptions o;
  o.sender_nihii = std::string(kMedicalHouseNihii);
  const std::string file =
      WriteEfact(WithMedicalHouseSender(SampleFile({Invoice("310", "306", 1)})));
  StatusOr<GenAsyncPost> post = Decode(Post(file, o));
  ASSERT_TRUE(post.ok()) << Dump(report_);
  EXPECT_EQ(post->sender_nihii, kMedicalHouseNihii);
  EXPECT_EQ(post->destination_mutualities, std::vector<std::string>{"306"});
  EXPECT_EQ(post->destination, "300");
}

TEST_F(GenAsyncCodecTest, AnOriginThatIsNotTheFileSenderIsRefused) {
  PostOptions o;
  o.origin_nihii = std::string(efact_test::kDoctorNihii);
  ASSERT_FALSE(Decode(Post(WriteEfact(SampleFile()), o)).ok());
  const Problem* p = Find(report_, "PSL-GENASYNC-SENDER");
  ASSERT_NE(p, nullptr) << Dump(report_);
  EXPECT_EQ(p->document, "envelope");
  EXPECT_THAT(p->path, HasSubstr("CareProvider"));
}

TEST_F(GenAsyncCodecTest, AnUrgentMedicalAidInvoiceGoesTo690) {
  PostOptions o;
  o.message_name = "ECM-HCPFAC";
  StatusOr<GenAsyncPost> post = Decode(Post(WriteEfact(SampleMediPrimaFile()), o));
  ASSERT_TRUE(post.ok()) << Dump(report_);
  EXPECT_EQ(report_.kind, "amu");
  EXPECT_EQ(post->message_name, "ECM-HCPFAC");
  EXPECT_EQ(post->destination, "690");
}

TEST_F(GenAsyncCodecTest, AnUrgentMedicalAidFileNeedsItsMessageName) {
  ASSERT_FALSE(Decode(Post(WriteEfact(SampleMediPrimaFile()))).ok());
  EXPECT_THAT(Codes(report_), Contains("PSL-GENASYNC-MEDIPRIMA")) << Dump(report_);
}

TEST_F(GenAsyncCodecTest, AnOrdinaryFileCannotBeSentAsUrgentMedicalAid) {
  PostOptions o;
  o.message_name = "ECM-HCPFAC";
  ASSERT_FALSE(Decode(Post(WriteEfact(SampleFile()), o)).ok());
  EXPECT_THAT(Codes(report_), Contains("PSL-GENASYNC-MEDIPRIMA")) << Dump(report_);
}

TEST_F(GenAsyncCodecTest, ProblemsNeverEchoAnAmountOrANiss) {
  const std::string file =
      Patch(WriteEfact(SampleFile()), 2, "28", "CHANGED", /*keep_checksum=*/true);
  ASSERT_FALSE(Decode(Post(Patch(file, 5, "19", "+00000000001"))).ok());
  for (const Problem& p : report_.problems) {
    EXPECT_THAT(p.message, Not(HasSubstr(std::string(efact_test::kPatientNiss2))));
    EXPECT_THAT(p.message, Not(HasSubstr("2150")));
  }
}

TEST(GenAsyncValidatorTest, PasserelleValidateRecognisesAGenAsyncPost) {
  testing::FakeClock clock;
  MessageValidator validator(mhm_test::TestSchemas(), clock);
  const ValidationReport report = validator.Validate(Post(WriteEfact(SampleFile())));
  EXPECT_TRUE(report.valid()) << Dump(report);
  EXPECT_EQ(report.kind, "claim");
  EXPECT_EQ(report.flow, "efact");
  EXPECT_EQ(report.operation, "post");

  const ValidationReport bad =
      validator.Validate(Post(Patch(WriteEfact(SampleFile()), 2, "8", "0017073003385")));
  EXPECT_FALSE(bad.valid());
  EXPECT_THAT(Codes(bad), Contains("200802"));
}

// XAdES over the Blob, in Xades-t (codecs/xades.h SignGenAsyncPost / VerifyGenAsyncPost).
class GenAsyncXadesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    xades_test::InitLibraries();
    ASSERT_TRUE(xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    material_ = xades_test::LoadMaterial();
    clock_.Set(std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()));
  }

  std::string Sign(const std::string& post) {
    StatusOr<std::string> signed_post = SignGenAsyncPost(post, material_.practice, nullptr, clock_);
    EXPECT_TRUE(signed_post.ok()) << signed_post.status().ToString();
    return signed_post.ok() ? *signed_post : std::string();
  }
  StatusOr<VerifiedSignature> Verify(const std::string& post) {
    return VerifyGenAsyncPost(post, material_.trust.get(), clock_);
  }

  xades_test::Material material_;
  testing::FakeClock clock_;
};

TEST_F(GenAsyncXadesTest, SignsADeflatedPostIntoXadesTAndVerifiesIt) {
  const std::string signed_post = Sign(Post(WriteEfact(SampleFile())));
  ASSERT_FALSE(signed_post.empty());
  const std::size_t detail_end = signed_post.find("</gen:Detail>");
  const std::size_t xades = signed_post.find("<gen:Xades-t>");
  ASSERT_NE(xades, std::string::npos) << signed_post;
  EXPECT_EQ(xades, detail_end + std::string("</gen:Detail>").size());
  const std::string signature =
      xades_test::Unbase64(xades_test::ElementText(signed_post, "Xades-t"));
  EXPECT_THAT(signature, HasSubstr("urn:nippin:xml:sig:transform:optional-deflate"));
  EXPECT_THAT(signature, HasSubstr("URI=\"#blob-1\""));
  StatusOr<VerifiedSignature> verified = Verify(signed_post);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();

  // The signed post is still a valid post (the schema allows Xades-t), and the codec sees it.
  ValidationReport report;
  StatusOr<GenAsyncPost> post = GenAsyncCodec(mhm_test::TestSchemas()).Decode(signed_post, &report);
  ASSERT_TRUE(post.ok()) << Dump(report);
  EXPECT_TRUE(post->has_xades);
}

TEST_F(GenAsyncXadesTest, SignsAnUncompressedPostAndKeepsAValidExistingSignature) {
  PostOptions o;
  o.encoding = "none";
  const std::string signed_post = Sign(Post(WriteEfact(SampleFile()), o));
  ASSERT_TRUE(Verify(signed_post).ok());
  StatusOr<std::string> again =
      SignGenAsyncPost(signed_post, material_.other_practice, material_.trust.get(), clock_);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, signed_post);
}

TEST_F(GenAsyncXadesTest, RejectsAChangedBlob) {
  const std::string file = WriteEfact(SampleFile());
  std::string signed_post = Sign(Post(file));
  std::size_t begin = 0;
  std::size_t end = 0;
  xades_test::ElementText(signed_post, "Detail", &begin, &end);
  StatusOr<std::string> other = DeflateRaw(Patch(file, 2, "28", "CHANGED"));
  ASSERT_TRUE(other.ok());
  signed_post.replace(begin, end - begin, EncodeBase64(*other));
  StatusOr<VerifiedSignature> verified = Verify(signed_post);
  ASSERT_FALSE(verified.ok());
  EXPECT_EQ(verified.status().code(), StatusCode::kInvalid);
}

TEST_F(GenAsyncXadesTest, RefusesAPostWithoutXadesTAndTheCommonsLayout) {
  const std::string post = Post(WriteEfact(SampleFile()));
  StatusOr<VerifiedSignature> unsigned_post = Verify(post);
  ASSERT_FALSE(unsigned_post.ok());
  EXPECT_EQ(unsigned_post.status().code(), StatusCode::kInvalid);
  // Only a post is signed.
  std::string get = mhm_test::ReplaceAll(post, "<gen:post ", "<gen:get ");
  get = mhm_test::ReplaceAll(get, "</gen:post>", "</gen:get>");
  EXPECT_EQ(SignGenAsyncPost(get, material_.practice, nullptr, clock_).status().code(),
            StatusCode::kInvalid);
  // The sync commons profile looks for its own namespace: a genasync post is not one.
  EXPECT_EQ(SignBlobRequest(post, material_.practice, nullptr, clock_).status().code(),
            StatusCode::kInvalid);
}

// The Xades-t signature checked by an independent verifier (Debian's xmlsec1), on a post whose
// blob is not deflated (xmlsec1 does not know MyCareNet's optional-deflate transform).
TEST_F(GenAsyncXadesTest, XmlSec1VerifiesTheXadesT) {
  constexpr char kXmlSec1[] = "/usr/bin/xmlsec1";
  if (!std::filesystem::exists(kXmlSec1)) {
    GTEST_SKIP() << "xmlsec1 is not installed";
  }
  PostOptions o;
  o.encoding = "none";
  const std::string signed_post = Sign(Post(WriteEfact(SampleFile()), o));
  std::string signature = xades_test::Unbase64(xades_test::ElementText(signed_post, "Xades-t"));
  if (signature.rfind("<?xml", 0) == 0) {
    signature.erase(0, signature.find("?>") + 2);
  }
  std::string document = signed_post;
  document.insert(document.rfind("</gen:post>"), signature);
  const auto run = [&](const std::string& doc, std::string* output) {
    const std::filesystem::path file = xades_test::Pki().Dir() / "genasync-xades-interop.xml";
    std::ofstream(file, std::ios::binary) << doc;
    const std::string command =
        std::string(kXmlSec1) + " --verify --enabled-reference-uris same-doc --id-attr:Id " +
        kGenAsyncNs + ":Detail --id-attr:Id " + kXadesNs + ":SignedProperties --trusted-pem '" +
        (xades_test::Pki() / "ca.pem").string() + "' --untrusted-pem '" +
        (xades_test::Pki() / "intermediate.pem").string() + "' '" + file.string() + "' 2>&1";
    return xades_test::RunThenRemove(command, file, output);
  };
  std::string output;
  EXPECT_EQ(run(document, &output), 0) << output;

  // A changed blob fails there too.
  std::size_t begin = 0;
  std::size_t end = 0;
  xades_test::ElementText(document, "Detail", &begin, &end);
  document.replace(begin, end - begin,
                   EncodeBase64(Patch(WriteEfact(SampleFile()), 2, "28", "CHANGED")));
  std::string tampered_output;
  EXPECT_NE(run(document, &tampered_output), 0) << tampered_output;
}

}  // namespace
}  // namespace psl::codecs
