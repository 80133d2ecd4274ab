#include "codecs/schema_registry.h"

#include <gtest/gtest.h>
#include <libxml/parser.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <libxml/c14n.h>

#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

namespace fs = std::filesystem;

const fs::path kSchemas = fs::path(PSL_SHARED_DIR) / "schemas";
const fs::path kSamples = fs::path(PSL_SHARED_DIR) / "samples";
constexpr char kEnvelopeSample[] = "mhm-SendSubscriptionRequest.SYNTHETIC.xml";
constexpr char kDetailSample[] = "mhm-SendTransactionRequest-maa-subscription.SYNTHETIC.xml";
constexpr char kMhmEntry[] =
    "ehealth-mycarenet-medicalhousemembership/XSD/"
    "mycarenet-medical-house-membership-protocol-1_0.xsd";

class XmlLibraryEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { library_ = std::make_unique<XmlLibrary>(); }
  void TearDown() override { library_.reset(); }

 private:
  std::unique_ptr<XmlLibrary> library_;
};
[[maybe_unused]] ::testing::Environment* const kXmlEnvironment =
    ::testing::AddGlobalTestEnvironment(new XmlLibraryEnvironment);

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Documents reach the registry through the production parser.
XmlDocPtr Parse(const std::string& text) {
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(text, XmlLimits{}, &problem);
  EXPECT_TRUE(doc.ok()) << problem.code << " " << problem.message;
  return doc.ok() ? std::move(doc).value() : nullptr;
}

void ReplaceOnce(std::string* text, const std::string& from, const std::string& to) {
  const std::size_t at = text->find(from);
  ASSERT_NE(at, std::string::npos) << from;
  text->replace(at, from.size(), to);
}

int LineOf(const std::string& text, const std::string& needle) {
  const std::size_t at = text.find(needle);
  return at == std::string::npos
             ? -1
             : 1 + static_cast<int>(std::count(
                       text.begin(), text.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
}

std::string Canonical(const std::string& xml) {
  XmlDocPtr doc = Parse(xml);
  if (doc == nullptr) {
    return "";
  }
  xmlChar* out = nullptr;
  const int size = xmlC14NDocDumpMemory(doc.get(), nullptr, XML_C14N_1_0, nullptr, 0, &out);
  XmlCharPtr owned(out);
  return size < 0 ? "" : std::string(reinterpret_cast<const char*>(out), size);
}

std::string Sha256HexOf(const std::string& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(), nullptr);
  std::string hex;
  char buffer[3];
  for (unsigned int i = 0; i < length; ++i) {
    std::snprintf(buffer, sizeof buffer, "%02x", digest[i]);
    hex += buffer;
  }
  return hex;
}

// A temporary folder removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "psl-schema-registry-XXXXXX").string();
    path_ = mkdtemp(pattern.data());
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  TempDir(TempDir&&) = delete;
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A writable copy of the shared schema tree at <temp>/<name> (so <temp> is outside the root).
fs::path CopySchemas(const TempDir& dir, const std::string& name = "root") {
  fs::path root = dir.path() / name;
  fs::copy(kSchemas, root, fs::copy_options::recursive);
  return root;
}

class SchemaRegistryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(kSchemas);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    registry_ = std::move(loaded).value().release();
  }
  static void TearDownTestSuite() {
    delete registry_;
    registry_ = nullptr;
  }

  static const SchemaRegistry& registry() { return *registry_; }

  static SchemaRegistry* registry_;
};
SchemaRegistry* SchemaRegistryTest::registry_ = nullptr;

TEST_F(SchemaRegistryTest, LoadsFromTheCanonicalRoot) {
  EXPECT_EQ(registry().root(), fs::canonical(kSchemas));
}

TEST_F(SchemaRegistryTest, LoadsEverythingThroughItsOwnLoaderWithoutWritingToStderr) {
  const std::uint64_t refused_before = RefusedExternalLoadCount();
  testing::internal::CaptureStderr();
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(kSchemas);
  const std::string written = testing::internal::GetCapturedStderr();
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(written, "");
  EXPECT_EQ(RefusedExternalLoadCount(), refused_before);
}

TEST_F(SchemaRegistryTest, ValidatesTheMhmSampleEnvelope) {
  XmlDocPtr doc = Parse(ReadFile(kSamples / kEnvelopeSample));
  std::vector<Problem> problems;
  EXPECT_TRUE(registry().ValidateEnvelope(EnvelopeSchema::kMhm, doc.get(), "envelope", &problems));
  EXPECT_TRUE(problems.empty()) << problems.front().message;
}

TEST_F(SchemaRegistryTest, MapsEachCdStandardToTheLowestVersionListingIt) {
  EXPECT_EQ(registry().KmehrVersionFor("20181201"), "1.29");
  EXPECT_EQ(registry().KmehrVersionFor("20010424"), "1.29");
  EXPECT_EQ(registry().KmehrVersionFor("20190901"), "1.29");
  EXPECT_EQ(registry().KmehrVersionFor("20200301"), "1.32");
  EXPECT_EQ(registry().KmehrVersionFor("20200901"), "1.32");
  EXPECT_EQ(registry().KmehrVersionFor("20201201"), "1.42");
  EXPECT_EQ(registry().KmehrVersionFor("20250601"), "1.42");
}

TEST_F(SchemaRegistryTest, MapsAnUnknownCdStandardToNothing) {
  EXPECT_EQ(registry().KmehrVersionFor("19990101"), "");
  EXPECT_EQ(registry().KmehrVersionFor(""), "");
  EXPECT_EQ(registry().KmehrVersionFor("1.42"), "");
}

TEST_F(SchemaRegistryTest, ValidatesTheSampleDetailWithEveryKmehrVersionFromItsStandardOn) {
  const std::string version = registry().KmehrVersionFor("20181201");
  for (const std::string& v : {version, std::string("1.32"), std::string("1.42")}) {
    XmlDocPtr doc = Parse(ReadFile(kSamples / kDetailSample));
    std::vector<Problem> problems;
    EXPECT_TRUE(registry().ValidateKmehrRequest(v, doc.get(), "detail", &problems)) << v;
    EXPECT_TRUE(problems.empty()) << v << ": " << problems.front().message;
  }
}

TEST_F(SchemaRegistryTest, RejectsAKmehrVersionWithoutACompiledSet) {
  XmlDocPtr doc = Parse(ReadFile(kSamples / kDetailSample));
  std::vector<Problem> problems;
  EXPECT_FALSE(registry().ValidateKmehrRequest("1.19", doc.get(), "detail", &problems));
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].code, "PSL-SCHEMA");
  EXPECT_EQ(problems[0].document, "detail");
}

TEST_F(SchemaRegistryTest, ChecksCodeTablesAgainstTheChosenKmehrVersion) {
  std::string text = ReadFile(kSamples / kDetailSample);
  ReplaceOnce(&text, "SV=\"1.28\">20181201<", "SV=\"1.28\">20250601<");
  ASSERT_EQ(registry().KmehrVersionFor("20250601"), "1.42");
  for (const char* older : {"1.29", "1.32"}) {
    XmlDocPtr doc = Parse(text);
    std::vector<Problem> problems;
    EXPECT_FALSE(registry().ValidateKmehrRequest(older, doc.get(), "detail", &problems));
    ASSERT_EQ(problems.size(), 1u) << older;
    EXPECT_EQ(problems[0].path, "/SendTransactionRequest/kmehrmessage/header/standard/cd");
    EXPECT_EQ(problems[0].line, LineOf(text, "<ns3:cd S=\"CD-STANDARD\""));
    EXPECT_EQ(problems[0].document, "detail");
    EXPECT_EQ(problems[0].message.find("20250601"), std::string::npos) << problems[0].message;
  }
  XmlDocPtr doc = Parse(text);
  std::vector<Problem> problems;
  EXPECT_TRUE(registry().ValidateKmehrRequest("1.42", doc.get(), "detail", &problems));
  EXPECT_TRUE(problems.empty());
}

// Patient-looking values in typed positions of the envelope (boolean, date, dateTime attribute),
// one of them containing a quote, which libxml2 does not escape in its messages.
std::string BrokenEnvelope() {
  std::string text = ReadFile(kSamples / kEnvelopeSample);
  ReplaceOnce(&text, "<mc:IsTest>true</mc:IsTest>", "<mc:IsTest>90010100124</mc:IsTest>");
  ReplaceOnce(&text, "<mc:ReferenceDate>2025-01-02</mc:ReferenceDate>",
              "<mc:ReferenceDate>O'Brien 90010100125</mc:ReferenceDate>");
  ReplaceOnce(&text, "IssueInstant=\"2025-01-02T09:30:00+01:00\"", "IssueInstant=\"90010100126\"");
  return text;
}

TEST_F(SchemaRegistryTest, ReportsEnvelopeErrorsWithLinesAndPathsButNoValues) {
  const std::string text = BrokenEnvelope();
  XmlDocPtr doc = Parse(text);
  std::vector<Problem> problems;
  EXPECT_FALSE(registry().ValidateEnvelope(EnvelopeSchema::kMhm, doc.get(), "envelope", &problems));
  ASSERT_GE(problems.size(), 3u);
  bool saw_reference_date = false;
  bool saw_issue_instant = false;
  for (const Problem& p : problems) {
    EXPECT_EQ(p.code, "PSL-SCHEMA");
    EXPECT_EQ(p.document, "envelope");
    EXPECT_GT(p.line, 0) << p.message;
    EXPECT_EQ(p.path.rfind("/SendSubscriptionRequest", 0), 0u) << p.path;
    EXPECT_FALSE(p.message.empty());
    EXPECT_NE(p.message.back(), '\n');
    for (const char* leaked : {"9001010012", "Brien", "O'"}) {
      EXPECT_EQ(p.message.find(leaked), std::string::npos) << p.message;
      EXPECT_EQ(p.path.find(leaked), std::string::npos) << p.path;
    }
    if (p.path == "/SendSubscriptionRequest/Routing/ReferenceDate") {
      saw_reference_date = true;
      EXPECT_EQ(p.line, LineOf(text, "<mc:ReferenceDate>"));
      EXPECT_NE(p.message.find("xs:date"), std::string::npos) << p.message;
    }
    if (p.path == "/SendSubscriptionRequest/@IssueInstant") {
      saw_issue_instant = true;
    }
  }
  EXPECT_TRUE(saw_reference_date);
  EXPECT_TRUE(saw_issue_instant);
}

TEST(SanitizeSchemaMessageTest, ReplacesThePatternFacetValueButKeepsThePattern) {
  const std::string message = SanitizeSchemaMessage(
      "Element '{urn:x}Ssin': [facet 'pattern'] The value '90010100123' is not accepted by the "
      "pattern '[0-9]{11}'.\n",
      nullptr);
  EXPECT_EQ(message,
            "Element '{urn:x}Ssin': [facet 'pattern'] The value '…' is not accepted by the "
            "pattern '[0-9]{11}'.");
}

TEST(SanitizeSchemaMessageTest, ReplacesTheNodeValueEvenWhenItContainsQuotes) {
  XmlDocPtr doc = Parse("<a>it's 'x' 90010100123</a>");
  const std::string message = SanitizeSchemaMessage(
      "Element 'a': 'it's 'x' 90010100123' is not a valid value of the atomic type 'xs:int'.",
      xmlDocGetRootElement(doc.get()));
  EXPECT_EQ(message, "Element 'a': '…' is not a valid value of the atomic type 'xs:int'.");
}

TEST(SanitizeSchemaMessageTest, ReplacesKeySequencesAndKeepsShortEnumerations) {
  EXPECT_EQ(SanitizeSchemaMessage("Element 'k': No match found for key-sequence ['90010100123'] "
                                  "of keyref 'ref'.",
                                  nullptr),
            "Element 'k': No match found for key-sequence ['…'] of keyref 'ref'.");
  EXPECT_EQ(SanitizeSchemaMessage("Element 'e': [facet 'enumeration'] The value 'Jean' is not an "
                                  "element of the set {'male', 'female'}.",
                                  nullptr),
            "Element 'e': [facet 'enumeration'] The value '…' is not an element of the set "
            "{'male', 'female'}.");
}

TEST(SanitizeSchemaMessageTest, ReplacesAnUnterminatedQuotedValue) {
  EXPECT_EQ(SanitizeSchemaMessage("Element 'e': The value 'Jean'Dupont", nullptr),
            "Element 'e': The value '…'");
}

TEST_F(SchemaRegistryTest, ValidatesConcurrentlyWithIdenticalResults) {
  const std::string broken = BrokenEnvelope();
  const std::string detail = ReadFile(kSamples / kDetailSample);
  auto run = [&](std::vector<Problem>* problems, int* valid_count) {
    for (int i = 0; i < 10; ++i) {
      XmlDocPtr broken_doc = Parse(broken);
      XmlDocPtr detail_doc = Parse(detail);
      std::vector<Problem> round;
      registry().ValidateEnvelope(EnvelopeSchema::kMhm, broken_doc.get(), "envelope", &round);
      if (registry().ValidateKmehrRequest("1.42", detail_doc.get(), "detail", &round)) {
        ++*valid_count;
      }
      if (i == 0) {
        *problems = round;
      }
      if (round.size() != problems->size()) {
        problems->clear();  // makes the comparison fail
      }
    }
  };
  std::vector<Problem> expected;
  int expected_valid = 0;
  run(&expected, &expected_valid);
  ASSERT_FALSE(expected.empty());
  ASSERT_EQ(expected_valid, 10);

  std::vector<std::vector<Problem>> results(4);
  std::vector<int> valid(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back(run, &results[t], &valid[t]);
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  for (int t = 0; t < 4; ++t) {
    EXPECT_EQ(valid[t], 10);
    ASSERT_EQ(results[t].size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      EXPECT_EQ(results[t][i].message, expected[i].message);
      EXPECT_EQ(results[t][i].line, expected[i].line);
      EXPECT_EQ(results[t][i].column, expected[i].column);
      EXPECT_EQ(results[t][i].path, expected[i].path);
    }
  }
}

TEST_F(SchemaRegistryTest, ListsEveryFileReadWithItsSha256) {
  const std::vector<SchemaFileDigest>& files = registry().LoadedFiles();
  ASSERT_FALSE(files.empty());
  EXPECT_TRUE(std::is_sorted(files.begin(), files.end(),
                             [](const SchemaFileDigest& a, const SchemaFileDigest& b) {
                               return a.relative_path < b.relative_path;
                             }));
  std::vector<std::string> paths;
  for (const SchemaFileDigest& file : files) {
    paths.push_back(file.relative_path);
    ASSERT_EQ(file.sha256_hex.size(), 64u) << file.relative_path;
    EXPECT_EQ(file.sha256_hex.find_first_not_of("0123456789abcdef"), std::string::npos);
    if (file.relative_path.rfind("generated:", 0) == 0) {
      continue;
    }
    EXPECT_FALSE(fs::path(file.relative_path).is_absolute()) << file.relative_path;
    EXPECT_TRUE(fs::is_regular_file(kSchemas / file.relative_path)) << file.relative_path;
  }
  for (const char* expected :
       {kMhmEntry, "ehealth-mycarenetcommons/XSD/mycarenet-commons-core-3_0.xsd",
        "ehealth-messageservices/XSD/messageservices_protocol-1_2.xsd",
        "ehealth-messageservices/XSD/messageservices_core-1_2.xsd",
        "ehealth-kmehr/XSD/kmehr-1_29.xsd", "ehealth-kmehr/XSD/cd-1_32.xsd",
        "ehealth-kmehr/XSD/id-1_42.xsd", "ehealth-kmehr/XSD/dt-1_42.xsd",
        "external/XSD/xmldsig-core-schema.xsd", "generated:messageservices_core-1_2@kmehr-1.42",
        "generated:messageservices_protocol-1_2@kmehr-1.29"}) {
    EXPECT_NE(std::find(paths.begin(), paths.end(), expected), paths.end()) << expected;
  }
  // Only the kmehr versions compiled, never the 1.19 the upstream core imports.
  EXPECT_EQ(std::find(paths.begin(), paths.end(), "ehealth-kmehr/XSD/kmehr-1_19.xsd"), paths.end());

  const std::string cd = "ehealth-kmehr/XSD/cd-1_42.xsd";
  auto it = std::find_if(files.begin(), files.end(),
                         [&](const SchemaFileDigest& f) { return f.relative_path == cd; });
  ASSERT_NE(it, files.end());
  EXPECT_EQ(it->sha256_hex, Sha256HexOf(ReadFile(kSchemas / cd)));

  const std::string generated = "generated:messageservices_core-1_2@kmehr-1.32";
  it = std::find_if(files.begin(), files.end(),
                    [&](const SchemaFileDigest& f) { return f.relative_path == generated; });
  ASSERT_NE(it, files.end());
  EXPECT_EQ(it->sha256_hex, Sha256HexOf(registry().GeneratedSchemas().at(generated)));
}

TEST_F(SchemaRegistryTest, GeneratesTheSameKmehr132WrappersAsTheLocalCopies) {
  const std::map<std::string, std::string>& generated = registry().GeneratedSchemas();
  const fs::path dir = kSchemas / "ehealth-messageservices/XSD";
  const std::string core = generated.at("generated:messageservices_core-1_2@kmehr-1.32");
  EXPECT_EQ(Canonical(core),
            Canonical(ReadFile(dir / "messageservices_core-1_2.kmehr-1_32.LOCAL.xsd")));
  EXPECT_NE(Canonical(core), Canonical(ReadFile(dir / "messageservices_core-1_2.xsd")));

  std::string protocol = generated.at("generated:messageservices_protocol-1_2@kmehr-1.32");
  ReplaceOnce(&protocol, "messageservices_core-1_2.kmehr-1_32.generated.xsd",
              "messageservices_core-1_2.kmehr-1_32.LOCAL.xsd");
  EXPECT_EQ(Canonical(protocol),
            Canonical(ReadFile(dir / "messageservices_protocol-1_2.kmehr-1_32.LOCAL.xsd")));
}

TEST(SchemaRegistryLoadTest, FailsForAMissingRoot) {
  TempDir dir;
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(dir.path() / "absent");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
}

TEST(SchemaRegistryLoadTest, FailsForAnEmptyRootNamingTheFirstFile) {
  TempDir dir;
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(dir.path());
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find(kMhmEntry), std::string::npos)
      << loaded.status().message();
}

TEST(SchemaRegistryLoadTest, FailsNamingAMissingImportedFile) {
  TempDir dir;
  const fs::path root = CopySchemas(dir);
  fs::remove(root / "ehealth-kmehr/XSD/dt-1_42.xsd");
  testing::internal::CaptureStderr();
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(root);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("ehealth-kmehr/XSD/dt-1_42.xsd"), std::string::npos)
      << loaded.status().message();
}

TEST(SchemaRegistryLoadTest, FailsNamingAFileThatDoesNotCompile) {
  TempDir dir;
  const fs::path root = CopySchemas(dir);
  WriteFile(root / "ehealth-kmehr/XSD/id-1_32.xsd",
            "<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema' "
            "targetNamespace='http://www.ehealth.fgov.be/standards/kmehr/id/v1'>"
            "<xs:element name='x' type='xs:nosuchtype'/></xs:schema>");
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(root);
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("id-1_32.xsd"), std::string::npos)
      << loaded.status().message();
}

TEST(SchemaRegistryLoadTest, FailsNamingAnUpstreamWrapperThatIsNotWellFormed) {
  TempDir dir;
  const fs::path root = CopySchemas(dir);
  WriteFile(root / "ehealth-messageservices/XSD/messageservices_core-1_2.xsd", "<xs:schema>");
  testing::internal::CaptureStderr();
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(root);
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("messageservices_core-1_2.xsd"), std::string::npos)
      << loaded.status().message();
}

TEST(SchemaRegistryLoadTest, FailsWhenTheUpstreamCoreNoLongerImportsKmehr) {
  TempDir dir;
  const fs::path root = CopySchemas(dir);
  const fs::path core = root / "ehealth-messageservices/XSD/messageservices_core-1_2.xsd";
  std::string text = ReadFile(core);
  ReplaceOnce(&text, "namespace=\"http://www.ehealth.fgov.be/standards/kmehr/cd/v1\"",
              "namespace=\"urn:elsewhere\"");
  WriteFile(core, text);
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(root);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("kmehr/cd/v1"), std::string::npos)
      << loaded.status().message();
}

// The MHM entry replaced by a schema importing `location`.
StatusOr<std::unique_ptr<SchemaRegistry>> LoadWithMhmImporting(const TempDir& dir,
                                                               const std::string& location) {
  const fs::path root = CopySchemas(dir);
  WriteFile(root / kMhmEntry,
            "<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema' targetNamespace='urn:t'>"
            "<xs:import namespace='urn:outside' schemaLocation='" +
                location + "'/><xs:element name='e' type='xs:string'/></xs:schema>");
  return SchemaRegistry::Load(root);
}

const char kOutsideXsd[] =
    "<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema' targetNamespace='urn:outside'>"
    "<xs:element name='o' type='xs:string'/></xs:schema>";

TEST(SchemaRegistryLoadTest, RefusesAnImportEscapingTheRootWithDotDot) {
  TempDir dir;
  WriteFile(dir.path() / "outside.xsd", kOutsideXsd);
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded =
      LoadWithMhmImporting(dir, "../../../outside.xsd");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("outside the schema root"), std::string::npos)
      << loaded.status().message();
}

TEST(SchemaRegistryLoadTest, RefusesAnImportThroughASymlinkLeavingTheRoot) {
  TempDir dir;
  WriteFile(dir.path() / "outside.xsd", kOutsideXsd);
  const fs::path root = CopySchemas(dir);
  fs::create_symlink(dir.path() / "outside.xsd",
                     root / "ehealth-mycarenet-medicalhousemembership/XSD/link.xsd");
  WriteFile(root / kMhmEntry,
            "<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema' targetNamespace='urn:t'>"
            "<xs:import namespace='urn:outside' schemaLocation='link.xsd'/></xs:schema>");
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(root);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("outside the schema root"), std::string::npos)
      << loaded.status().message();
}

TEST(SchemaRegistryLoadTest, RefusesANetworkImport) {
  TempDir dir;
  testing::internal::CaptureStderr();
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded =
      LoadWithMhmImporting(dir, "http://127.0.0.1:9/x.xsd");
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
  ASSERT_FALSE(loaded.ok());
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("http://127.0.0.1:9/x.xsd"), std::string::npos)
      << loaded.status().message();
}

TEST(SchemaRegistryLoadTest, LoadsACopiedTreeAndListsItsFilesRelativeToIt) {
  TempDir dir;
  const fs::path root = CopySchemas(dir, "schema root with spaces & 100%");
  StatusOr<std::unique_ptr<SchemaRegistry>> loaded = SchemaRegistry::Load(root);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ((*loaded)->root(), fs::canonical(root));
  for (const SchemaFileDigest& file : (*loaded)->LoadedFiles()) {
    EXPECT_EQ(file.relative_path.find(dir.path().string()), std::string::npos);
  }
}

// Single-threaded: nothing else reads the environment meanwhile.
// NOLINTBEGIN(concurrency-mt-unsafe)
TEST(SchemaRegistryDefaultRootTest, PrefersTheEnvironmentVariable) {
  const char* previous = std::getenv("PSL_SCHEMAS_DIR");
  const std::string saved = previous == nullptr ? "" : previous;
  setenv("PSL_SCHEMAS_DIR", "/configured/schemas", 1);
  EXPECT_EQ(SchemaRegistry::DefaultRoot(), fs::path("/configured/schemas"));
  unsetenv("PSL_SCHEMAS_DIR");
  EXPECT_FALSE(SchemaRegistry::DefaultRoot().empty());
  if (previous != nullptr) {
    setenv("PSL_SCHEMAS_DIR", saved.c_str(), 1);
  }
}
// NOLINTEND(concurrency-mt-unsafe)

}  // namespace
}  // namespace psl::codecs
