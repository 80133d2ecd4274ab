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
#include <initializer_list>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "base/testing/fake_clock.h"
#include "codecs/mediprima.h"
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

fs::path MediPrimaCorpusRoot() {
  return fs::path(PSL_SOURCE_DIR) / "conformance" / "mediprima";
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
    for (std::string& value : ReadLines(MediPrimaCorpusRoot() / "sensitive_values.txt"))
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

// The operation a valid/ file's name gives: the one of the first prefix in `by_prefix` the name
// starts with, else `otherwise`.
std::string OperationNamed(const std::string& name, const char* otherwise,
                           std::initializer_list<std::pair<const char*, const char*>> by_prefix) {
  for (const auto& [prefix, operation] : by_prefix) {
    if (name.starts_with(prefix))
      return operation;
  }
  return otherwise;
}

// A valid/ file's report: valid, of this kind, flow and operation.
void ExpectValidAs(const ValidationReport& report, const std::string& kind, const char* flow,
                   const std::string& operation) {
  EXPECT_TRUE(report.valid()) << Describe(report);
  EXPECT_EQ(report.kind, kind) << Describe(report);
  EXPECT_EQ(report.flow, flow);
  EXPECT_EQ(report.operation, operation);
}

// The error of `report` with `code`, or null.
const Problem* FindError(const ValidationReport& report, const std::string& code) {
  const auto found = std::find_if(
      report.problems.begin(), report.problems.end(),
      [&](const Problem& p) { return p.severity == Severity::kError && p.code == code; });
  return found == report.problems.end() ? nullptr : &*found;
}

// The codes a multi/ file's .expected lists (empty when missing or empty).
std::set<std::string> ExpectedCodes(const CorpusFile& file) {
  fs::path expected_path = file.path;
  expected_path.replace_extension(".expected");
  const std::vector<std::string> lines = ReadLines(expected_path);
  return std::set<std::string>(lines.begin(), lines.end());
}

// No message or path may echo one of `values` (STYLE.md §4).
void ExpectNoValueOf(const ValidationReport& report, const std::vector<std::string>& values) {
  for (const Problem& p : report.problems) {
    for (const std::string& value : values) {
      EXPECT_EQ(p.message.find(value), std::string::npos)
          << p.code << " message echoes a sensitive value: " << p.message;
      EXPECT_EQ(p.path.find(value), std::string::npos) << p.code << " path echoes a value";
    }
  }
}

// A folder under <root>/invalid/ is a code of the flow's error table (shared/errors/<table>) or a
// Passerelle PSL-* code; a typo in a folder name would otherwise expect a code nobody emits.
void ExpectInvalidFoldersNameKnownCodes(const fs::path& root, const char* table_file) {
  const std::string table = ReadFile(fs::path(PSL_SHARED_DIR) / "errors" / table_file);
  ASSERT_FALSE(table.empty()) << table_file;
  for (const CorpusFile& f : ListCorpus("invalid", root)) {
    if (f.code.starts_with("PSL-"))
      continue;
    EXPECT_NE(table.find("\"code\":\"" + f.code + "\""), std::string::npos)
        << f.path << ": " << f.code << " is not a code of " << table_file;
  }
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
    ExpectNoValueOf(report, GetShared().sensitive_values);
  }

  // The checks every invalid/ file gets: an error with the code of its folder, at a line (every
  // corpus fault is in a document: the envelope or the decoded Detail), with a message. Returns
  // that error, null (after a failure) when there is none.
  static const Problem* ExpectTheErrorOfItsFolder(const ValidationReport& report) {
    EXPECT_FALSE(report.valid()) << Describe(report);
    const Problem* found = FindError(report, GetParam().code);
    if (found == nullptr) {
      ADD_FAILURE() << "expected an error " << GetParam().code << "; got " << Describe(report);
      return nullptr;
    }
    EXPECT_GT(found->line, 0) << Describe(report);
    EXPECT_FALSE(found->message.empty());
    return found;
  }

  // The checks every multi/ file gets: exactly the codes its .expected lists, no patient value.
  static void ExpectExactlyTheExpectedCodes(const ValidationReport& report) {
    const std::set<std::string> expected = ExpectedCodes(GetParam());
    ASSERT_FALSE(expected.empty()) << "missing or empty .expected for " << GetParam().path;
    EXPECT_FALSE(report.valid());
    EXPECT_EQ(ErrorCodes(report), expected) << Describe(report);
  }
};

class ValidCorpusTest : public CorpusTest {};
class InvalidCorpusTest : public CorpusTest {};
class MultiFaultCorpusTest : public CorpusTest {};

TEST_P(ValidCorpusTest, ValidatesAsAnEnrolment) {
  const ValidationReport report = ValidateParam();
  // The file name says which operation it is.
  ExpectValidAs(report, "enrolment", "mhm",
                OperationNamed(GetParam().name, "SendSubscription",
                               {{"cancellation_", "CancelSubscription"},
                                {"closure_", "NotifySubscriptionClosure"}}));
  ExpectNoPatientValue(report);
}

TEST_P(InvalidCorpusTest, FailsWithTheCodeOfItsFolder) {
  const ValidationReport report = ValidateParam();
  ExpectTheErrorOfItsFolder(report);
  ExpectNoPatientValue(report);
}

TEST_P(MultiFaultCorpusTest, ReportsExactlyTheExpectedCodes) {
  const ValidationReport report = ValidateParam();
  ExpectExactlyTheExpectedCodes(report);
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

// A folder under invalid/ is a MyCareNet MHM code (errors/mhmSubscriptionError.json) or PSL-*.
TEST(MhmCorpusTest, InvalidFoldersNameKnownCodes) {
  ExpectInvalidFoldersNameKnownCodes(CorpusRoot(), "mhmSubscriptionError.json");
}

// eFact (genasync post carrying a 920000 file): same rules, its own corpus.
class EfactValidCorpusTest : public CorpusTest {};

TEST_P(EfactValidCorpusTest, ValidatesAsAnInvoicingPost) {
  const ValidationReport report = ValidateParam();
  // ECM-HCPFAC (urgent medical aid) files are named ecm_*.
  ExpectValidAs(report, GetParam().name.starts_with("ecm_") ? "amu" : "claim", "efact", "post");
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
  ExpectInvalidFoldersNameKnownCodes(EfactCorpusRoot(), "EfactErrors.json");
}

// --- eAttest v3 (conformance/eattest, generate_eattest_corpus.py) ------------------------------

fs::path EAttestCorpusRoot() {
  return fs::path(PSL_SOURCE_DIR) / "conformance" / "eattest";
}

class EAttestCorpusTest : public CorpusTest {
 protected:
  static void ExpectNoEAttestValue(const ValidationReport& report) {
    static const std::vector<std::string> values =
        ReadLines(EAttestCorpusRoot() / "sensitive_values.txt");
    ExpectNoValueOf(report, values);
  }
};
class EAttestValidCorpusTest : public EAttestCorpusTest {};
class EAttestInvalidCorpusTest : public EAttestCorpusTest {};
class EAttestMultiCorpusTest : public EAttestCorpusTest {};

TEST_P(EAttestValidCorpusTest, ValidatesAsAClaim) {
  const ValidationReport report = ValidateParam();
  ExpectValidAs(
      report, "claim", "eattest",
      OperationNamed(GetParam().name, "SendAttestation", {{"cancel_", "CancelAttestation"}}));
  ExpectNoEAttestValue(report);
}

TEST_P(EAttestInvalidCorpusTest, FailsWithTheCodeOfItsFolder) {
  const ValidationReport report = ValidateParam();
  const Problem* found = ExpectTheErrorOfItsFolder(report);
  ASSERT_NE(found, nullptr);
  EXPECT_FALSE(found->path.empty());
  ExpectNoEAttestValue(report);
}

TEST_P(EAttestMultiCorpusTest, ReportsExactlyTheExpectedCodes) {
  const ValidationReport report = ValidateParam();
  ExpectExactlyTheExpectedCodes(report);
  ExpectNoEAttestValue(report);
}

INSTANTIATE_TEST_SUITE_P(EAttest, EAttestValidCorpusTest,
                         ::testing::ValuesIn(ListCorpus("valid", EAttestCorpusRoot())), TestName);
INSTANTIATE_TEST_SUITE_P(EAttest, EAttestInvalidCorpusTest,
                         ::testing::ValuesIn(ListCorpus("invalid", EAttestCorpusRoot())), TestName);
INSTANTIATE_TEST_SUITE_P(EAttest, EAttestMultiCorpusTest,
                         ::testing::ValuesIn(ListCorpus("multi", EAttestCorpusRoot())), TestName);

TEST(EAttestCorpusTest, HoldsEnoughCases) {
  EXPECT_GE(ListCorpus("valid", EAttestCorpusRoot()).size(), 10u);
  EXPECT_GE(ListCorpus("invalid", EAttestCorpusRoot()).size(), 40u);
  EXPECT_GE(ListCorpus("multi", EAttestCorpusRoot()).size(), 3u);
}

// A folder under eattest/invalid/ is an eAttest code (errors/eAttestErrors.json) or PSL-*.
TEST(EAttestCorpusTest, InvalidFoldersNameKnownCodes) {
  ExpectInvalidFoldersNameKnownCodes(EAttestCorpusRoot(), "eAttestErrors.json");
}

// MediPrima / AMU (UMA v1 and consultation v2): decoded with MediPrimaCodec as the intake does,
// authenticated as the corpus physician (generate_mediprima_corpus.py PHYSICIAN), so the
// author-mismatch rule is exercised; the validator (no authenticated NIHII) must agree on
// everything else.
constexpr char kMediPrimaCorpusPhysician[] = "11478761004";

class MediPrimaCorpusTest : public CorpusTest {
 protected:
  ValidationReport DecodeParam() {
    static const MediPrimaCodec* const codec =
        new MediPrimaCodec(*GetShared().schemas, GetShared().clock);
    const std::string bytes = ReadFile(GetParam().path);
    EXPECT_FALSE(bytes.empty()) << "cannot read " << GetParam().path;
    ValidationReport report;
    const StatusOr<MediPrimaRequest> request =
        codec->Decode(bytes, kMediPrimaCorpusPhysician, &report);
    EXPECT_EQ(request.ok(), report.valid()) << Describe(report);
    return report;
  }
};

class MediPrimaValidCorpusTest : public MediPrimaCorpusTest {};
class MediPrimaInvalidCorpusTest : public MediPrimaCorpusTest {};
class MediPrimaMultiFaultCorpusTest : public MediPrimaCorpusTest {};

TEST_P(MediPrimaValidCorpusTest, ValidatesAsAnAmuRequest) {
  const ValidationReport report = DecodeParam();
  // The file name's prefix says which operation it is.
  ExpectValidAs(report, "amu", "mediprima",
                OperationNamed(GetParam().name, "SendUrgentMedicalAidAttestation",
                               {{"search_", "SearchUrgentMedicalAidAttestation"},
                                {"delete_", "DeleteUrgentMedicalAidAttestation"},
                                {"consult_", "ConsultCarmedIntervention"}}));
  ExpectNoPatientValue(report);
  const ValidationReport validated = ValidateParam();
  EXPECT_TRUE(validated.valid()) << Describe(validated);
  EXPECT_EQ(validated.flow, "mediprima");
}

TEST_P(MediPrimaInvalidCorpusTest, FailsWithTheCodeOfItsFolder) {
  const ValidationReport report = DecodeParam();
  const Problem* found = ExpectTheErrorOfItsFolder(report);
  ASSERT_NE(found, nullptr);
  if (!GetParam().code.starts_with("PSL-XML-")) {  // the parser reports a position, no path
    EXPECT_FALSE(found->path.empty()) << Describe(report);
  }
  ExpectNoPatientValue(report);
  // The validator knows no authenticated NIHII: it reports the same except the mismatch.
  if (GetParam().code != "PSL-MEDIPRIMA-AUTHOR-MISMATCH") {
    const ValidationReport validated = ValidateParam();
    EXPECT_TRUE(ErrorCodes(validated).count(GetParam().code)) << Describe(validated);
  }
}

TEST_P(MediPrimaMultiFaultCorpusTest, ReportsExactlyTheExpectedCodes) {
  const ValidationReport report = DecodeParam();
  ExpectExactlyTheExpectedCodes(report);
  ExpectNoPatientValue(report);
}

INSTANTIATE_TEST_SUITE_P(MediPrima, MediPrimaValidCorpusTest,
                         ::testing::ValuesIn(ListCorpus("valid", MediPrimaCorpusRoot())), TestName);
INSTANTIATE_TEST_SUITE_P(MediPrima, MediPrimaInvalidCorpusTest,
                         ::testing::ValuesIn(ListCorpus("invalid", MediPrimaCorpusRoot())),
                         TestName);
INSTANTIATE_TEST_SUITE_P(MediPrima, MediPrimaMultiFaultCorpusTest,
                         ::testing::ValuesIn(ListCorpus("multi", MediPrimaCorpusRoot())), TestName);

TEST(MediPrimaCorpusTest, HoldsEnoughCases) {
  EXPECT_GE(ListCorpus("valid", MediPrimaCorpusRoot()).size(), 15u);
  EXPECT_GE(ListCorpus("invalid", MediPrimaCorpusRoot()).size(), 40u);
  EXPECT_GE(ListCorpus("multi", MediPrimaCorpusRoot()).size(), 3u);
  EXPECT_FALSE(ReadLines(MediPrimaCorpusRoot() / "sensitive_values.txt").empty());
}

// A folder under mediprima/invalid/ is a MediPrima rule code (MediPrimaRuleTable) or one of the
// shared PSL codes the codec emits; a typo would otherwise expect a code nobody emits. Every
// MediPrima rule that is an error has at least one case.
TEST(MediPrimaCorpusTest, InvalidFoldersNameKnownCodesAndCoverEveryRule) {
  std::set<std::string> rules;
  for (const MediPrimaRuleSpec& spec : MediPrimaRuleTable()) {
    if (spec.severity == Severity::kError)
      rules.insert(std::string(spec.code));
  }
  std::set<std::string> seen;
  for (const CorpusFile& f : ListCorpus("invalid", MediPrimaCorpusRoot())) {
    const bool shared =
        f.code == "PSL-SCHEMA" || f.code == "PSL-FLOW-UNKNOWN" || f.code.starts_with("PSL-XML-");
    EXPECT_TRUE(shared || rules.count(f.code)) << f.path << ": " << f.code << " is not emitted";
    seen.insert(f.code);
  }
  for (const std::string& rule : rules)
    EXPECT_TRUE(seen.count(rule)) << "no corpus case for " << rule;
}

}  // namespace
}  // namespace psl::codecs
