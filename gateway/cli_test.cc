#include "gateway/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "certs/key_store.h"
#include "certs/testing/test_pki.h"
#include "codecs/base64.h"
#include "store/audit.h"
#include "store/rocksdb_store.h"
#include "store/testing/audit_tamper.h"

#include <nlohmann/json.hpp>

namespace psl::gateway {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

const fs::path kSamples = fs::path(PSL_SHARED_DIR) / "samples";
const fs::path kEnvelopeSample = kSamples / "mhm-SendSubscriptionRequest.SYNTHETIC.xml";
const fs::path kDetailSample =
    kSamples / "mhm-SendTransactionRequest-maa-subscription.SYNTHETIC.xml";

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sample envelope, its placeholder Xades removed, with the Detail payload `detail`.
std::string EnvelopeWithDetail(const std::string& detail) {
  std::string env = ReadAll(kEnvelopeSample);
  size_t open = env.find('>', env.find("<mcp:Detail")) + 1;
  size_t close = env.find("</mcp:Detail>");
  env.replace(open, close - open, codecs::EncodeBase64(detail));
  size_t x0 = env.find("<mcp:Xades>");
  size_t x1 = env.find("</mcp:Xades>") + std::string("</mcp:Xades>").size();
  env.erase(x0, x1 - x0);
  return env;
}

// The decoded Detail of the sample envelope, exactly as the envelope carries it.
std::string SampleDetail() {
  std::string env = ReadAll(kEnvelopeSample);
  size_t open = env.find('>', env.find("<mcp:Detail")) + 1;
  size_t close = env.find("</mcp:Detail>");
  StatusOr<std::string> detail = codecs::DecodeBase64(env.substr(open, close - open));
  EXPECT_TRUE(detail.ok()) << detail.status().ToString();
  return detail.ok() ? std::move(detail).value() : std::string();
}

int LineOf(const std::string& text, const std::string& needle) {
  size_t at = text.find(needle);
  if (at == std::string::npos)
    return -1;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

std::string ReplaceOnce(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos)
    s.replace(at, from.size(), to);
  return s;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("psl-cli-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path Write(const std::string& name, const std::string& content) {
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    args.insert(args.begin(), "passerelle");
    return RunCli(args, out_, err_);
  }

  std::vector<Json> OutputLines() const {
    std::vector<Json> lines;
    std::istringstream in(out_.str());
    for (std::string line; std::getline(in, line);)
      lines.push_back(Json::parse(line));
    return lines;
  }

  // Validates `detail` inside the sample envelope at 2025-01-02 and returns the single report.
  Json ValidateDetail(const std::string& detail, int* exit_code) {
    fs::path file = Write("request.xml", EnvelopeWithDetail(detail));
    *exit_code = Run({"validate", "--schemas", std::string(PSL_SHARED_DIR) + "/schemas", "--at",
                      "2025-01-02", file.string()});
    auto lines = OutputLines();
    EXPECT_EQ(lines.size(), 1U) << err_.str();
    return lines.empty() ? Json{} : lines.front();
  }

  static bool HasError(const Json& report, const std::string& code, const std::string& path,
                       int line) {
    for (const auto& e : report["errors"]) {
      if (e["code"] == code && e["path"] == path && e["line"] == line &&
          e["document"] == "detail") {
        return true;
      }
    }
    return false;
  }

  fs::path dir_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CliTest, AFileNameThatIsNotUtf8IsReportedInsteadOfEndingTheProgram) {
  fs::path file = Write("request-\xff.xml", ReadAll(kEnvelopeSample));
  int code = Run({"validate", "--schemas", std::string(PSL_SHARED_DIR) + "/schemas", "--at",
                  "2025-01-02", file.string()});
  EXPECT_EQ(code, 0) << out_.str() << err_.str();
  auto lines = OutputLines();
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_TRUE(lines.front()["valid"].get<bool>());
  EXPECT_NE(lines.front()["file"].get<std::string>().find("request-\xEF\xBF\xBD.xml"),
            std::string::npos);
}

TEST_F(CliTest, SharedSamplesValidateOnTheirDate) {
  int code = Run({"validate", "--schemas", std::string(PSL_SHARED_DIR) + "/schemas", "--at",
                  "2025-01-02", kEnvelopeSample.string(), kDetailSample.string()});
  EXPECT_EQ(code, 0) << out_.str() << err_.str();
  auto lines = OutputLines();
  ASSERT_EQ(lines.size(), 2U);
  for (const auto& line : lines) {
    EXPECT_TRUE(line["valid"].get<bool>()) << line.dump();
    EXPECT_EQ(line["kind"], "enrolment");
    EXPECT_EQ(line["flow"], "mhm");
    EXPECT_TRUE(line["errors"].empty());
  }
  EXPECT_EQ(lines[0]["operation"], "SendSubscription");
  EXPECT_EQ(lines[0]["file"], kEnvelopeSample.string());
}

TEST_F(CliTest, AlteredPatientCheckDigitIsReportedAtItsLine) {
  std::string detail = SampleDetail();
  std::string bad = ReplaceOnce(detail, ">90010100123<", ">90010100124<");
  int code = 0;
  Json report = ValidateDetail(bad, &code);
  EXPECT_EQ(code, 1);
  EXPECT_FALSE(report["valid"].get<bool>());
  EXPECT_TRUE(HasError(report, "111", "/SendTransactionRequest/kmehrmessage/folder/patient/id",
                       LineOf(bad, ">90010100124<")))
      << report.dump(2);
  EXPECT_EQ(report.dump().find("9001010012"), std::string::npos) << "patient value echoed";
}

TEST_F(CliTest, TransactionCodeThatDoesNotMatchTheOperationIsReported) {
  std::string bad = ReplaceOnce(SampleDetail(), "SV=\"1.5\">maa<", "SV=\"1.5\">maaclosure<");
  int code = 0;
  Json report = ValidateDetail(bad, &code);
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(HasError(report, "130", "/SendTransactionRequest/kmehrmessage/folder/transaction/cd",
                       LineOf(bad, ">maaclosure<")))
      << report.dump(2);
}

TEST_F(CliTest, AlteredAuthorNihiiIsReported) {
  std::string detail = SampleDetail();
  // The request author's NIHII with broken check digits (the 7th and 8th digits).
  std::string from = "<ns3:id S=\"ID-HCPARTY\" SV=\"1.0\">81234530000</ns3:id>";
  std::string to = "<ns3:id S=\"ID-HCPARTY\" SV=\"1.0\">81234531000</ns3:id>";
  std::string bad = ReplaceOnce(detail, from, to);
  int code = 0;
  Json report = ValidateDetail(bad, &code);
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(
      HasError(report, "111", "/SendTransactionRequest/Request/author",
               LineOf(bad, "<ns2:author>")) ||
      HasError(report, "111", "/SendTransactionRequest/Request/author", LineOf(bad, "81234531000")))
      << report.dump(2);
}

TEST_F(CliTest, RequestDateInTheFutureIsReported) {
  std::string bad = ReplaceOnce(SampleDetail(), "<ns2:date>2025-01-02</ns2:date>",
                                "<ns2:date>2025-01-03</ns2:date>");
  int code = 0;
  Json report = ValidateDetail(bad, &code);
  EXPECT_EQ(code, 1);
  EXPECT_TRUE(HasError(report, "146", "/SendTransactionRequest/Request/date",
                       LineOf(bad, "<ns2:date>2025-01-03")))
      << report.dump(2);
}

TEST_F(CliTest, ValidateSaysWhichFilesAreInvalidAndExitsOne) {
  fs::path good = Write("good.xml", EnvelopeWithDetail(SampleDetail()));
  fs::path broken = Write("broken.xml", "<not-closed>");
  int code = Run({"validate", "--at", "2025-01-02", "--schemas",
                  std::string(PSL_SHARED_DIR) + "/schemas", good.string(), broken.string()});
  EXPECT_EQ(code, 1);
  auto lines = OutputLines();
  ASSERT_EQ(lines.size(), 2U);
  EXPECT_TRUE(lines[0]["valid"].get<bool>()) << lines[0].dump();
  EXPECT_FALSE(lines[1]["valid"].get<bool>());
  EXPECT_EQ(lines[1]["errors"][0]["code"], "PSL-XML-SYNTAX");
}

TEST_F(CliTest, MissingFileAndBadUsageExitTwo) {
  EXPECT_EQ(Run({"validate", "--schemas", std::string(PSL_SHARED_DIR) + "/schemas",
                 (dir_ / "absent.xml").string()}),
            2);
  EXPECT_EQ(Run({"validate"}), 2);
  EXPECT_EQ(Run({"frobnicate"}), 2);
  EXPECT_EQ(Run({"validate", "--at", "yesterday", kEnvelopeSample.string()}), 2);
}

// A configuration error found before the service exists is reported and exits non-zero; it used
// to end in a crash (the shutdown of the half-built service logged through a missing logger).
TEST_F(CliTest, ServeWithAConfigurationErrorReportsItInsteadOfCrashing) {
  std::ifstream example(std::string(PSL_SOURCE_DIR) + "/deploy/passerelle.example.toml");
  ASSERT_TRUE(example) << "deploy/passerelle.example.toml";
  std::stringstream text;
  text << example.rdbuf();
  std::string config = text.str();
  const std::string key = "failure_threshold = ";
  const std::size_t at = config.find(key);
  ASSERT_NE(at, std::string::npos);
  config.replace(at, config.find('\n', at) - at, key + "1000000");
  const fs::path file = Write("bad.toml", config);
  EXPECT_NE(Run({"serve", "--config", file.string()}), 0);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("1000000 is out of range"));
}

TEST_F(CliTest, MissingSchemaFolderIsAnEnvironmentError) {
  EXPECT_EQ(Run({"validate", "--schemas", (dir_ / "nowhere").string(), kEnvelopeSample.string()}),
            2);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("cannot load schemas"));
}

// --- passerelle audit ------------------------------------------------------------------------

class CliAuditTest : public CliTest {
 protected:
  static constexpr const char* kNiss = "85073003328";

  // A store at dir_/data holding `count` audit events (closed on return); with `identity`, a
  // signed checkpoint every 4 events.
  void MakeStore(int count, const SigningIdentity* identity = nullptr) {
    pseudonym_key_ = Write("pseudonym.key", std::string(32, 'q'));
    store::RocksDbStoreOptions options;
    options.path = dir_ / "data";
    options.payload_key = std::string(32, 'p');
    options.free_space_probe = [](const fs::path&) -> StatusOr<std::uint64_t> {
      return std::uint64_t{1} << 40;
    };
    options.checkpoint_identity = identity;
    options.checkpoint_every_events = 4;
    auto opened = store::RocksDbStore::Open(std::move(options));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    for (int i = 0; i < count; ++i) {
      store::AuditEvent event;
      event.kind = i % 2 == 0 ? "accepted" : "answered";
      event.practice_nihii = i % 3 == 0 ? "81234530000" : "85432155100";
      event.patient_pseudonym =
          i == 2 ? store::PatientPseudonym(std::string(32, 'q'), kNiss) : std::string();
      event.actor = "gateway";
      event.time_ms = 1735689600000 + i * 3'600'000;  // 2025-01-01T00:00Z + i hours
      ASSERT_TRUE((*opened)->Append(event).ok());
    }
  }

  std::string Data() const { return (dir_ / "data").string(); }

  std::vector<std::uint64_t> Sequences() const {
    std::vector<std::uint64_t> sequences;
    for (const Json& line : OutputLines())
      sequences.push_back(line["sequence"].get<std::uint64_t>());
    return sequences;
  }

  fs::path pseudonym_key_;
};

TEST_F(CliAuditTest, VerifyPassesOnAnIntactStore) {
  MakeStore(10);
  EXPECT_EQ(Run({"audit", "verify", "--data", Data()}), 0) << err_.str();
  auto lines = OutputLines();
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0]["ok"], true);
  EXPECT_EQ(lines[0]["events"], 10);
}

TEST_F(CliAuditTest, VerifyNamesTheFirstBadEventOfATamperedStore) {
  MakeStore(10);
  ASSERT_TRUE(store::testing::AlterAuditEvent(dir_ / "data", 7));
  EXPECT_EQ(Run({"audit", "verify", "--data", Data()}), 1);
  auto lines = OutputLines();
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_EQ(lines[0]["ok"], false);
  EXPECT_EQ(lines[0]["first_bad_sequence"], 7);
  EXPECT_THAT(lines[0]["problem"].get<std::string>(), ::testing::HasSubstr("event 7 was altered"));
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("event 7 was altered"));

  ASSERT_TRUE(store::testing::RemoveAuditEvent(dir_ / "data", 3));
  EXPECT_EQ(Run({"audit", "verify", "--data", Data()}), 1);
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("event 3 was removed"));
}

TEST_F(CliAuditTest, VerifyChecksCheckpointSignersAgainstTheGivenCa) {
  const auto& pki = certs::testing::SharedTestPki();
  ASSERT_TRUE(pki.ok());
  const fs::path chain = pki / "gateway-chain.pem";
  auto identity = certs::LoadPemIdentity(pki / "gateway.key", pki / "gateway.pem", &chain, nullptr);
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  MakeStore(9, &*identity);

  EXPECT_EQ(Run({"audit", "verify", "--data", Data(), "--key", (pki / "ca.pem").string()}), 0)
      << out_.str() << err_.str();
  EXPECT_EQ(OutputLines().at(0)["checkpoints"], 2);
  EXPECT_EQ(
      Run({"audit", "verify", "--data", Data(), "--key", (pki / "untrusted-root-ca.pem").string()}),
      1);
  EXPECT_THAT(out_.str(), ::testing::HasSubstr("is forged: checkpoint signer is not trusted"));
}

TEST_F(CliAuditTest, QueryFiltersByPracticeKindPatientAndTime) {
  MakeStore(10);
  EXPECT_EQ(Run({"audit", "query", "--data", Data(), "--practice", "81234530000"}), 0)
      << err_.str();
  EXPECT_EQ(Sequences(), (std::vector<std::uint64_t>{1, 4, 7, 10}));

  EXPECT_EQ(
      Run({"audit", "query", "--data", Data(), "--practice", "81234530000", "--kind", "accepted"}),
      0);
  EXPECT_EQ(Sequences(), (std::vector<std::uint64_t>{1, 7}));

  EXPECT_EQ(Run({"audit", "query", "--data", Data(), "--patient", "85.07.30-033.28",
                 "--pseudonym-key", pseudonym_key_.string()}),
            0)
      << err_.str();
  EXPECT_EQ(Sequences(), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(out_.str().find(kNiss), std::string::npos);

  EXPECT_EQ(Run({"audit", "query", "--data", Data(), "--from", "2025-01-01T02:00:00Z", "--to",
                 "1735696800000"}),
            0);
  EXPECT_EQ(Sequences(), (std::vector<std::uint64_t>{3}));  // 02:00 .. 02:00 inclusive
  EXPECT_EQ(Run({"audit", "query", "--data", Data(), "--from", "2025-01-01", "--to", "2025-01-01"}),
            0);
  EXPECT_EQ(Sequences().size(), 10U);
}

TEST_F(CliAuditTest, QueryRefusesAPatientWithoutThePseudonymKeyOrABadTime) {
  MakeStore(2);
  EXPECT_EQ(Run({"audit", "query", "--data", Data(), "--patient", kNiss}), 2);
  EXPECT_EQ(err_.str().find(kNiss), std::string::npos);
  EXPECT_EQ(Run({"audit", "query", "--data", Data(), "--from", "last week"}), 2);
}

TEST_F(CliAuditTest, ExportWritesEveryStoredEventInSequenceOrder) {
  MakeStore(5);
  EXPECT_EQ(Run({"audit", "export", "--data", Data()}), 0) << err_.str();
  EXPECT_EQ(Sequences(), (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  for (const Json& line : OutputLines())
    EXPECT_EQ(line["hash"].get<std::string>().size(), 64U);
}

TEST_F(CliAuditTest, AuditCommandsOnAMissingStoreExitTwo) {
  EXPECT_EQ(Run({"audit", "verify", "--data", (dir_ / "absent").string()}), 2);
  EXPECT_EQ(Run({"audit", "export", "--data", (dir_ / "absent").string()}), 2);
  EXPECT_EQ(Run({"audit", "query", "--data", (dir_ / "absent").string()}), 2);
  EXPECT_EQ(Run({"audit"}), 2);
}

}  // namespace
}  // namespace psl::gateway
