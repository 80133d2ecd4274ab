// Data-driven conformance test over conformance/mhm and conformance/efact (see
// conformance/README.md): one test per corpus file, the folder naming the expected outcome. The
// corpora are written by generate_mhm_corpus.py and generate_efact_corpus.py; every document is
// dated 2025-01-02, hence the fixed clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/testing/fake_clock.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

namespace fs = std::filesystem;

fs::path CorpusRoot() {
  return fs::path(PSL_SOURCE_DIR) / "conformance" / "mhm";
}

fs::path EfactCorpusRoot() {
  return fs::path(PSL_SOURCE_DIR) / "conformance" / "efact";
}

struct CorpusFile {
  fs::path path;
  std::string outcome;  // "valid", "invalid" or "multi"
  std::string code;     // invalid: the folder name, the expected error code
  std::string name;     // file stem
};

// gtest prints a failing parameter with this instead of its bytes.
void PrintTo(const CorpusFile& file, std::ostream* os) {
  *os << file.path.string();
}

// Sorted, so that test names and order are stable.
std::vector<CorpusFile> ListCorpus(const std::string& outcome,
                                   const fs::path& root = CorpusRoot()) {
  std::vector<CorpusFile> files;
  const fs::path dir = root / outcome;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return files;
  for (const auto& entry : fs::recursive_directory_iterator(dir, ec)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".xml")
      continue;
    CorpusFile f;
    f.path = entry.path();
    f.outcome = outcome;
    f.name = entry.path().stem().string();
    if (outcome == "invalid")
      f.code = entry.path().parent_path().filename().string();
    files.push_back(std::move(f));
  }
  std::sort(files.begin(), files.end(),
            [](const CorpusFile& a, const CorpusFile& b) { return a.path < b.path; });
  return files;
}

// gtest names allow only letters, digits and underscores: "invalid/PSL-MHM-NIHII/x.xml" becomes
// "PSL_MHM_NIHII_x".
std::string TestName(const ::testing::TestParamInfo<CorpusFile>& info) {
  std::string name =
      info.param.code.empty() ? info.param.name : info.param.code + "_" + info.param.name;
  for (char& c : name) {
    const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!ok)
      c = '_';
  }
  return name;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> ReadLines(const fs::path& path) {
  std::vector<std::string> lines;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.empty() || line.front() == '#')
      continue;
    lines.push_back(line);
  }
  return lines;
}

// libxml2 set-up, schemas, clock and validator, created once for the binary and never destroyed
// (libxml2 cannot be initialised again after its clean-up).
struct Shared {
  XmlLibrary library;
  std::unique_ptr<SchemaRegistry> schemas;
  testing::FakeClock clock;
  std::unique_ptr<MessageValidator> validator;
  std::vector<std::string> sensitive_values;
};

const Shared& GetShared() {
  static Shared* const shared = [] {
    auto* s = new Shared();
    auto loaded = SchemaRegistry::Load(fs::path(PSL_SHARED_DIR) / "schemas");
    if (!loaded.ok()) {
      // Nothing here can run without schemas; say why before stopping the binary.
      std::fprintf(stderr, "conformance_test: cannot load the schemas: %s\n",
                   loaded.status().ToString().c_str());
      std::abort();
    }
    s->schemas = std::move(loaded).value();
    s->clock.SetUtc(2025, 1, 2, 10, 0);
    s->validator = std::make_unique<MessageValidator>(*s->schemas, s->clock);
    s->sensitive_values = ReadLines(CorpusRoot() / "sensitive_values.txt");
    for (std::string& value : ReadLines(EfactCorpusRoot() / "sensitive_values.txt"))
      s->sensitive_values.push_back(std::move(value));
    return s;
  }();
  return *shared;
}

std::string Describe(const ValidationReport& report) {
  std::ostringstream out;
  out << "kind=\"" << report.kind << "\" flow=\"" << report.flow << "\" operation=\""
      << report.operation << "\", " << report.problems.size() << " problem(s)";
  for (const Problem& p : report.problems) {
    out << "\n  " << (p.severity == Severity::kError ? "error " : "warning ") << p.code << " "
        << p.document << ":" << p.line << ":" << p.column << " " << p.path << ": " << p.message;
  }
  return out.str();
}

std::set<std::string> ErrorCodes(const ValidationReport& report) {
  std::set<std::string> codes;
  for (const Problem& p : report.problems) {
    if (p.severity == Severity::kError)
      codes.insert(p.code);
  }
  return codes;
}

class CorpusTest : public ::testing::TestWithParam<CorpusFile> {
 protected:
  ValidationReport ValidateParam() {
    const std::string bytes = ReadFile(GetParam().path);
    EXPECT_FALSE(bytes.empty()) << "cannot read " << GetParam().path;
    return GetShared().validator->Validate(bytes);
  }

  // No message may echo a patient value (STYLE.md §4): checked on every file's report.
  static void ExpectNoPatientValue(const ValidationReport& report) {
    for (const Problem& p : report.problems) {
      for (const std::string& value : GetShared().sensitive_values) {
        EXPECT_EQ(p.message.find(value), std::string::npos)
            << p.code << " message echoes a patient value: " << p.message;
        EXPECT_EQ(p.path.find(value), std::string::npos)
            << p.code << " path echoes a patient value";
      }
    }
  }
};

class ValidCorpusTest : public CorpusTest {};
class InvalidCorpusTest : public CorpusTest {};
class MultiFaultCorpusTest : public CorpusTest {};

TEST_P(ValidCorpusTest, ValidatesAsAnEnrolment) {
  const ValidationReport report = ValidateParam();
  EXPECT_TRUE(report.valid()) << Describe(report);
  EXPECT_EQ(report.kind, "enrolment") << Describe(report);
  EXPECT_EQ(report.flow, "mhm");
  // The file name says which operation it is.
  const std::string& name = GetParam().name;
  std::string operation = "SendSubscription";
  if (name.starts_with("cancellation_"))
    operation = "CancelSubscription";
  if (name.starts_with("closure_"))
    operation = "NotifySubscriptionClosure";
  EXPECT_EQ(report.operation, operation);
  ExpectNoPatientValue(report);
}

TEST_P(InvalidCorpusTest, FailsWithTheCodeOfItsFolder) {
  const ValidationReport report = ValidateParam();
  EXPECT_FALSE(report.valid()) << Describe(report);
  const Problem* found = nullptr;
  for (const Problem& p : report.problems) {
    if (p.severity == Severity::kError && p.code == GetParam().code) {
      found = &p;
      break;
    }
  }
  ASSERT_NE(found, nullptr) << "expected an error " << GetParam().code << "; got "
                            << Describe(report);
  // Every corpus fault is in a document (the envelope or the decoded Detail): it has a line.
  EXPECT_GT(found->line, 0) << Describe(report);
  EXPECT_FALSE(found->message.empty());
  ExpectNoPatientValue(report);
}

TEST_P(MultiFaultCorpusTest, ReportsExactlyTheExpectedCodes) {
  const ValidationReport report = ValidateParam();
  fs::path expected_path = GetParam().path;
  expected_path.replace_extension(".expected");
  const std::vector<std::string> lines = ReadLines(expected_path);
  ASSERT_FALSE(lines.empty()) << "missing or empty " << expected_path;
  const std::set<std::string> expected(lines.begin(), lines.end());
  EXPECT_FALSE(report.valid());
  EXPECT_EQ(ErrorCodes(report), expected) << Describe(report);
  ExpectNoPatientValue(report);
}

INSTANTIATE_TEST_SUITE_P(Mhm, ValidCorpusTest, ::testing::ValuesIn(ListCorpus("valid")), TestName);
INSTANTIATE_TEST_SUITE_P(Mhm, InvalidCorpusTest, ::testing::ValuesIn(ListCorpus("invalid")),
                         TestName);
INSTANTIATE_TEST_SUITE_P(Mhm, MultiFaultCorpusTest, ::testing::ValuesIn(ListCorpus("multi")),
                         TestName);

// Guards against an empty or truncated corpus, which would make the suites above pass vacuously.
TEST(MhmCorpusTest, HoldsEnoughCases) {
  EXPECT_GE(ListCorpus("valid").size(), 30u);
  EXPECT_GE(ListCorpus("invalid").size(), 60u);
  EXPECT_GE(ListCorpus("multi").size(), 3u);
  EXPECT_FALSE(ReadLines(CorpusRoot() / "sensitive_values.txt").empty());
}

// A folder under invalid/ is a MyCareNet MHM code (errors/mhmSubscriptionError.json) or a
// Passerelle PSL-* code; a typo in a folder name would otherwise expect a code nobody emits.
TEST(MhmCorpusTest, InvalidFoldersNameKnownCodes) {
  const std::string table =
      ReadFile(fs::path(PSL_SHARED_DIR) / "errors" / "mhmSubscriptionError.json");
  ASSERT_FALSE(table.empty());
  for (const CorpusFile& f : ListCorpus("invalid")) {
    if (f.code.starts_with("PSL-"))
      continue;
    EXPECT_NE(table.find("\"code\":\"" + f.code + "\""), std::string::npos)
        << f.path << ": " << f.code << " is not an MHM error code";
  }
}

// eFact (genasync post carrying a 920000 file): same rules, its own corpus.
class EfactValidCorpusTest : public CorpusTest {};

TEST_P(EfactValidCorpusTest, ValidatesAsAnInvoicingPost) {
  const ValidationReport report = ValidateParam();
  EXPECT_TRUE(report.valid()) << Describe(report);
  // ECM-HCPFAC (urgent medical aid) files are named ecm_*.
  EXPECT_EQ(report.kind, GetParam().name.starts_with("ecm_") ? "amu" : "claim") << Describe(report);
  EXPECT_EQ(report.flow, "efact");
  EXPECT_EQ(report.operation, "post");
  ExpectNoPatientValue(report);
}

INSTANTIATE_TEST_SUITE_P(Efact, EfactValidCorpusTest,
                         ::testing::ValuesIn(ListCorpus("valid", EfactCorpusRoot())), TestName);
INSTANTIATE_TEST_SUITE_P(Efact, InvalidCorpusTest,
                         ::testing::ValuesIn(ListCorpus("invalid", EfactCorpusRoot())), TestName);

TEST(EfactCorpusTest, HoldsEnoughCases) {
  EXPECT_GE(ListCorpus("valid", EfactCorpusRoot()).size(), 5u);
  EXPECT_GE(ListCorpus("invalid", EfactCorpusRoot()).size(), 15u);
  EXPECT_FALSE(ReadLines(EfactCorpusRoot() / "sensitive_values.txt").empty());
}

// A folder under efact/invalid/ is a 6-digit eFact code (errors/EfactErrors.json) or PSL-*.
TEST(EfactCorpusTest, InvalidFoldersNameKnownCodes) {
  const std::string table = ReadFile(fs::path(PSL_SHARED_DIR) / "errors" / "EfactErrors.json");
  ASSERT_FALSE(table.empty());
  for (const CorpusFile& f : ListCorpus("invalid", EfactCorpusRoot())) {
    if (f.code.starts_with("PSL-"))
      continue;
    EXPECT_NE(table.find("\"code\":\"" + f.code + "\""), std::string::npos)
        << f.path << ": " << f.code << " is not an eFact error code";
  }
}

}  // namespace
}  // namespace psl::codecs
