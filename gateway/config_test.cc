#include "gateway/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "certs/testing/test_pki.h"
#include "gateway/cli.h"

namespace psl::gateway {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const fs::path& path, const std::string& text, fs::perms perms = fs::perms(0600)) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
  fs::permissions(path, perms);
}

std::string ReplaceAll(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos;
       at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// A minimal valid configuration whose paths are relative to the file's folder, as the demo writes
// them. Line numbers below refer to this text.
constexpr const char* kMinimal = R"([server]
tls_cert_file = "tls/server.crt"
tls_key_file = "tls/server.key"
client_ca_file = "tls/ca.crt"

[store]
data_dir = "state/store"
payload_key_file = "keys/payload.key"
pseudonym_key_file = "keys/pseudonym.key"

[schemas]
dir = "schemas"

[signing]
key_file = "signing/gateway.key"
cert_file = "signing/gateway.crt"
[insurers.100]
enrolment_url = "https://insurer-100.test/mhm"
client_key_file = "insurers/client.key"
client_cert_file = "insurers/client.crt"
signing_ca_file = "insurers/signing-ca.crt"
ca_file = "insurers/ca.crt"
)";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("psl-config-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "state");
    fs::create_directories(dir_ / "schemas");
    for (const char* file :
         {"tls/server.crt", "tls/server.key", "tls/ca.crt", "keys/payload.key",
          "keys/pseudonym.key", "signing/gateway.key", "signing/gateway.crt", "insurers/client.key",
          "insurers/client.crt", "insurers/ca.crt", "insurers/signing-ca.crt"})
      WriteText(dir_ / file, "x");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Loads `text` written as dir_/passerelle.toml; problems land in problems_.
  StatusOr<Config> Load(const std::string& text, LoadOptions options = {}) {
    WriteText(dir_ / "passerelle.toml", text, fs::perms(0640));
    problems_.clear();
    return LoadConfig(dir_ / "passerelle.toml", options, &problems_);
  }

  fs::path dir_;
  std::vector<ConfigProblem> problems_;
};

auto ProblemAt(const std::string& path, int line, const std::string& message_part) {
  return AllOf(Field(&ConfigProblem::path, path), Field(&ConfigProblem::line, line),
               Field(&ConfigProblem::message, HasSubstr(message_part)));
}

TEST_F(ConfigTest, MinimalConfigurationLoadsWithDefaultsAndResolvedPaths) {
  auto config = Load(kMinimal);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_THAT(problems_, IsEmpty());
  EXPECT_EQ(config->server.listen_address, "127.0.0.1");
  EXPECT_EQ(config->server.port, 8443);
  EXPECT_TRUE(config->store.sync);
  EXPECT_EQ(config->store.payload_key_file, dir_ / "keys/payload.key");
  EXPECT_EQ(config->insurers.at("100").endpoints.at(MessageKind::kEnrolment),
            "https://insurer-100.test/mhm");
  EXPECT_EQ(config->insurers.at("100").retry.max_attempts, 20u);
  EXPECT_TRUE(config->routing.mutuality_to_union);
}

TEST_F(ConfigTest, TheDeployExampleLoadsWithoutAnyProblem) {
  std::string text = ReadText(fs::path(PSL_SOURCE_DIR) / "deploy/passerelle.example.toml");
  ASSERT_FALSE(text.empty());
  text = ReplaceAll(text, "/etc/passerelle/", dir_.string() + "/etc/");
  text = ReplaceAll(text, "/var/lib/passerelle/", dir_.string() + "/state/");
  text = ReplaceAll(text, "/usr/share/passerelle/schemas", (dir_ / "schemas").string());
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto quote = line.find('"');
    if (line.find("_file = \"") != std::string::npos && line[0] != '#')
      WriteText(line.substr(quote + 1, line.rfind('"') - quote - 1), "x");
  }
  auto config = Load(text);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_THAT(problems_, IsEmpty());
  const PracticeConfig& practice = config->practices.at("81234530");
  EXPECT_EQ(practice.cert_sha256.at(0),
            "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
  EXPECT_EQ(config->insurers.at("100").retry.cap, std::chrono::milliseconds(300'000));
  EXPECT_EQ(config->insurers.size(), 3u);
  EXPECT_EQ(config->insurers.at("690").mediprima_uma_url,
            "https://services.ehealth.example/MediPrima/UMA/v1");
  EXPECT_TRUE(config->mailbox.enabled);
  EXPECT_EQ(config->mailbox.poll_interval, std::chrono::milliseconds(60'000));
  EXPECT_EQ(config->mailbox.max_messages, 100u);
}

TEST_F(ConfigTest, MailboxSettingsAreReadAndChecked) {
  auto config =
      Load(std::string(kMinimal) +
           "[mailbox]\npoll_interval_ms = 500\nmax_messages = 20\nmax_backoff_ms = 4000\n");
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_EQ(config->mailbox.poll_interval, std::chrono::milliseconds(500));
  EXPECT_EQ(config->mailbox.max_messages, 20u);
  EXPECT_EQ(config->mailbox.max_backoff, std::chrono::milliseconds(4000));
  auto bad = Load(std::string(kMinimal) +
                  "[mailbox]\npoll_interval_ms = 5000\nmax_messages = 0\nmax_backoff_ms = 1000\n"
                  "pol_interval = 1\n");
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(problems_, Contains(Field(&ConfigProblem::path, "mailbox.max_messages")));
  EXPECT_THAT(problems_, Contains(Field(&ConfigProblem::path, "mailbox.max_backoff_ms")));
  EXPECT_THAT(problems_, Contains(Field(&ConfigProblem::path, "mailbox.pol_interval")));
}

TEST_F(ConfigTest, UnknownKeyIsReportedWithItsPathAndLine) {
  auto config = Load(std::string(kMinimal) + "[logging]\nlevel = \"info\"\nfromat = \"json\"\n");
  EXPECT_EQ(config.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(problems_, ElementsAre(ProblemAt("logging.fromat", 25, "unknown key \"fromat\"")));
}

TEST_F(ConfigTest, UnknownTablesAreReportedAtTopLevelAndInsideInsurers) {
  auto config = Load(std::string(kMinimal) + "[insurers.100.retyr]\nbase_ms = 5\n[metrics]\n");
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_, Contains(ProblemAt("insurers.100.retyr", 23, "unknown table")));
  EXPECT_THAT(problems_, Contains(ProblemAt("metrics", 25, "unknown table [metrics]")));
}

TEST_F(ConfigTest, WrongTypeIsReportedWithPathAndLine) {
  auto config = Load(ReplaceAll(kMinimal, "[store]\n", "[store]\nsync = \"yes\"\n"));
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_,
              ElementsAre(ProblemAt("store.sync", 7, "must be a boolean, not a string")));
}

TEST_F(ConfigTest, MissingRequiredKeyIsReportedAtItsTable) {
  auto config = Load(ReplaceAll(kMinimal, "dir = \"schemas\"\n", ""));
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_,
              ElementsAre(ProblemAt("schemas.dir", 11, "required key \"dir\" is missing")));
}

TEST_F(ConfigTest, OutOfRangeValueIsReported) {
  auto config = Load(ReplaceAll(kMinimal, "[server]\n", "[server]\nport = 70000\n"));
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_,
              ElementsAre(ProblemAt("server.port", 2, "70000 is out of range [0, 65535]")));
}

TEST_F(ConfigTest, AdmissionLimitsHaveDefaultsAndAreRead) {
  auto defaults = Load(kMinimal);
  ASSERT_TRUE(defaults.ok()) << defaults.status().message();
  EXPECT_EQ(defaults->server.max_queue_delay, std::chrono::milliseconds(500));
  EXPECT_EQ(defaults->insurers.at("100").max_backlog, 100'000u);

  auto set =
      Load(ReplaceAll(ReplaceAll(kMinimal, "[server]\n", "[server]\nmax_queue_delay_ms = 250\n"),
                      "[insurers.100]\n", "[insurers.100]\nmax_backlog = 3\n"));
  ASSERT_TRUE(set.ok()) << set.status().message();
  EXPECT_THAT(problems_, IsEmpty());
  EXPECT_EQ(set->server.max_queue_delay, std::chrono::milliseconds(250));
  EXPECT_EQ(set->insurers.at("100").max_backlog, 3u);
}

TEST_F(ConfigTest, AdmissionLimitsOutOfRangeNameTheirKey) {
  auto low =
      Load(ReplaceAll(ReplaceAll(kMinimal, "[server]\n", "[server]\nmax_queue_delay_ms = 0\n"),
                      "[insurers.100]\n", "[insurers.100]\nmax_backlog = 0\n"));
  EXPECT_FALSE(low.ok());
  EXPECT_THAT(
      problems_,
      ElementsAre(ProblemAt("server.max_queue_delay_ms", 2, "0 is out of range [1, 600000]"),
                  ProblemAt("insurers.100.max_backlog", 19, "0 is out of range [1, 100000000]")));
  problems_.clear();
  auto high =
      Load(ReplaceAll(ReplaceAll(kMinimal, "[server]\n", "[server]\nmax_queue_delay_ms = 600001\n"),
                      "[insurers.100]\n", "[insurers.100]\nmax_backlog = 100000001\n"));
  EXPECT_FALSE(high.ok());
  EXPECT_THAT(problems_,
              ElementsAre(ProblemAt("server.max_queue_delay_ms", 2, "600001 is out of range"),
                          ProblemAt("insurers.100.max_backlog", 19, "100000001 is out of range")));
  problems_.clear();
  auto wrong =
      Load(ReplaceAll(kMinimal, "[insurers.100]\n", "[insurers.100]\nmax_backlog = \"3\"\n"));
  EXPECT_FALSE(wrong.ok());
  EXPECT_THAT(problems_, ElementsAre(ProblemAt("insurers.100.max_backlog", 18,
                                               "must be an integer, not a string")));
}

TEST_F(ConfigTest, MissingFileIsReported) {
  fs::remove(dir_ / "tls/ca.crt");
  auto config = Load(kMinimal);
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_, ElementsAre(ProblemAt("server.client_ca_file", 4, "does not exist")));
}

TEST_F(ConfigTest, InlinePemKeyIsRefused) {
  auto config = Load(ReplaceAll(kMinimal, "tls_key_file = \"tls/server.key\"",
                                // A fake, truncated PEM block (split so that no committed file
                                // looks like it holds a key).
                                "tls_key_file = \"\"\"-----BEGIN PRIVATE"
                                " KEY-----\nMIIE\n-----END PRIVATE"
                                " KEY-----\"\"\""));
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_, ElementsAre(ProblemAt("server.tls_key_file", 3, "never inline")));
  for (const auto& p : problems_)
    EXPECT_THAT(p.message, ::testing::Not(HasSubstr("MIIE")));
}

TEST_F(ConfigTest, InlineTokenInPlaceOfAKeyFileIsRefused) {
  auto config =
      Load(ReplaceAll(kMinimal, "\"keys/payload.key\"", "\"q7Zt9vXy2LmN4pQ8rS1uW3aB5cD6eF0g\""));
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_, ElementsAre(ProblemAt("store.payload_key_file", 8, "never inline")));
}

TEST_F(ConfigTest, BearerTokenInsteadOfItsHashIsRefused) {
  auto config = Load(std::string(kMinimal) + "[auth]\nops_token_sha256 = [\"s3cr3t-token\"]\n");
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_, ElementsAre(ProblemAt("auth.ops_token_sha256[0]", 24, "never the token")));
}

TEST_F(ConfigTest, SecretReadableByOthersIsAWarningOnly) {
  fs::permissions(dir_ / "keys/pseudonym.key", fs::perms(0644));
  auto config = Load(kMinimal);
  ASSERT_TRUE(config.ok()) << config.status().message();
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_TRUE(problems_[0].warning);
  EXPECT_THAT(problems_[0], ProblemAt("store.pseudonym_key_file", 9, "mode 0644"));
}

TEST_F(ConfigTest, EveryProblemOfABadFileIsReportedAtOnceInLineOrder) {
  const std::string bad = R"([server]
port = "8443"
tls_cert_file = "tls/missing.crt"
client_ca_file = "tls/ca.crt"
colour = "blue"

[store]
data_dir = "nowhere/at/all"
payload_key_file = "keys/payload.key"
pseudonym_key_file = "keys/pseudonym.key"
sync = false

[schemas]
dir = "schemas"

[signing]
key_file = "signing/gateway.key"
cert_file = "signing/gateway.crt"

[practices.12345678]
cert_subjects = ["CN=a"]
[insurers.100]
enrolment_url = "http://insurer-100.test/mhm"
client_key_file = "insurers/client.key"
client_cert_file = "insurers/client.crt"
signing_ca_file = "insurers/signing-ca.crt"
ca_file = "insurers/ca.crt"
[insurers.100.retry]
base_ms = 5000
cap_ms = 1000

[routing]
hub = "mycarenet"
)";
  auto config = Load(bad);
  EXPECT_EQ(config.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(config.status().message(), HasSubstr("has 11 problem(s)"));
  EXPECT_THAT(problems_,
              ElementsAre(ProblemAt("server.tls_key_file", 1, "required key"),
                          ProblemAt("server.port", 2, "must be an integer, not a string"),
                          ProblemAt("server.tls_cert_file", 3, "does not exist"),
                          ProblemAt("server.colour", 5, "unknown key"),
                          ProblemAt("store.data_dir", 8, "neither does its parent"),
                          ProblemAt("store.sync", 11, "must be true"),
                          ProblemAt("practices.12345678", 20, "not a valid NIHII"),
                          ProblemAt("insurers.100", 22, "at least one of enrolment_url"),
                          ProblemAt("insurers.100.enrolment_url", 23, "https://"),
                          ProblemAt("insurers.100.retry.cap_ms", 30, "not be below base_ms"),
                          ProblemAt("routing.hub", 33, "names no [insurers.mycarenet]")));
}

TEST_F(ConfigTest, UnsyncedStoreIsAcceptedOnlyWhenTheCallerAllowsIt) {
  const std::string text = ReplaceAll(kMinimal, "[store]\n", "[store]\nsync = false\n");
  EXPECT_FALSE(Load(text).ok());
  LoadOptions options;
  options.allow_unsynced_store = true;
  auto config = Load(text, options);
  ASSERT_TRUE(config.ok()) << config.status().message();
  EXPECT_FALSE(config->store.sync);
}

TEST_F(ConfigTest, TomlSyntaxErrorIsReportedWithItsLine) {
  auto config = Load("[server]\nport = 8443\nport = 8444\n");
  EXPECT_EQ(config.status().code(), StatusCode::kInvalid);
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_EQ(problems_[0].line, 3);
  EXPECT_THAT(problems_[0].message, HasSubstr("TOML syntax"));
}

TEST_F(ConfigTest, UnreadableFileIsAFailedPrecondition) {
  auto config = LoadConfig(dir_ / "absent.toml", &problems_);
  EXPECT_EQ(config.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(problems_, IsEmpty());
}

TEST_F(ConfigTest, ACertificateMappedToTwoPracticesIsRefused) {
  auto config = Load(std::string(kMinimal) +
                     "[practices.81234530]\ncert_subjects = [\"CN=shared\"]\n"
                     "[practices.12345625]\ncert_subjects = [\"CN=shared\"]\n");
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_, ElementsAre(ProblemAt("practices.81234530", 23, "also mapped")));
}

TEST_F(ConfigTest, FormatProblemGivesFileLinePathAndMessage) {
  EXPECT_EQ(FormatProblem("p.toml", {"server.port", 2, 1, "bad", false}),
            "p.toml:2: server.port: bad");
  EXPECT_EQ(FormatProblem("p.toml", {"store.x", 9, 1, "open", true}),
            "p.toml:9: store.x: warning: open");
}

TEST_F(ConfigTest, CheckConfigCommandListsEveryProblemAndSetsTheExitCode) {
  WriteText(dir_ / "good.toml", kMinimal);
  std::ostringstream out;
  std::ostringstream err;
  const std::string good = (dir_ / "good.toml").string();
  EXPECT_EQ(RunCli({"passerelle", "check-config", good}, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), good + ": ok\n");

  WriteText(dir_ / "bad.toml",
            ReplaceAll(kMinimal, "[server]\n", "[server]\nport = -1\nbogus = 1\n"));
  const std::string bad = (dir_ / "bad.toml").string();
  out.str("");
  EXPECT_EQ(RunCli({"passerelle", "check-config", bad}, out, err), 1);
  EXPECT_EQ(out.str(), bad + ":2: server.port: -1 is out of range [0, 65535]\n" + bad +
                           ":3: server.bogus: unknown key \"bogus\" in [server]\n");

  out.str("");
  EXPECT_EQ(RunCli({"passerelle", "check-config", (dir_ / "absent.toml").string()}, out, err), 2);
  EXPECT_EQ(RunCli({"passerelle", "check-config"}, out, err), 2);
}

TEST_F(ConfigTest, MediPrimaAndEAttestEndpointsAreReadAndChecked) {
  auto config = Load(std::string(kMinimal) +
                     "[insurers.690]\n"
                     "mediprima_uma_url = \"https://services.test/MediPrima/UMA/v1\"\n"
                     "mediprima_consult_url = \"https://services.test/MediPrima/Consult/v2\"\n"
                     "client_key_file = \"insurers/client.key\"\n"
                     "client_cert_file = \"insurers/client.crt\"\n"
                     "ca_file = \"insurers/ca.crt\"\n"
                     "[insurers.300]\n"
                     "claim_url = \"https://insurer-300.test/genasync\"\n"
                     "eattest_url = \"https://services.test/MyCareNet/eAttest/v3\"\n"
                     "encryption_cert_file = \"" +
                     (certs::testing::SharedTestPki() / "insurer-100.pem").string() +
                     "\"\n"
                     "client_key_file = \"insurers/client.key\"\n"
                     "client_cert_file = \"insurers/client.crt\"\n"
                     "ca_file = \"insurers/ca.crt\"\n");
  ASSERT_TRUE(config.ok()) << config.status().message();
  const InsurerConfig& mediprima = config->insurers.at("690");
  EXPECT_TRUE(mediprima.endpoints.empty());  // an insurer may serve MediPrima only
  EXPECT_TRUE(ServesAnything(mediprima));
  EXPECT_EQ(InsurerUrl(mediprima, MessageKind::kAmu, Service::kMediPrimaUma),
            "https://services.test/MediPrima/UMA/v1");
  EXPECT_EQ(InsurerUrl(mediprima, MessageKind::kAmu, Service::kMediPrimaConsult),
            "https://services.test/MediPrima/Consult/v2");
  EXPECT_EQ(InsurerUrl(mediprima, MessageKind::kAmu, Service::kDefault), "");
  const InsurerConfig& union300 = config->insurers.at("300");
  EXPECT_EQ(InsurerUrl(union300, MessageKind::kClaim, Service::kEAttest),
            "https://services.test/MyCareNet/eAttest/v3");
  EXPECT_EQ(InsurerUrl(config->insurers.at("100"), MessageKind::kClaim, Service::kEAttest), "");

  auto bad = Load(std::string(kMinimal) +
                  "[insurers.690]\n"
                  "mediprima_uma_url = \"http://services.test/MediPrima/UMA/v1\"\n"
                  "eattest_url = \"https://services.test/MyCareNet/eAttest/v3\"\n"
                  "client_key_file = \"insurers/client.key\"\n"
                  "client_cert_file = \"insurers/client.crt\"\n"
                  "ca_file = \"insurers/ca.crt\"\n");
  EXPECT_FALSE(bad.ok());
  EXPECT_THAT(problems_, Contains(ProblemAt("insurers.690.mediprima_uma_url", 24, "https://")));
  EXPECT_THAT(problems_, Contains(ProblemAt("insurers.690.eattest_url", 25, "claim_url")));
  // eAttest is sealed: an eattest_url without encryption_cert_file is an error, not a 500 at
  // intake for every eAttest.
  EXPECT_THAT(problems_,
              Contains(ProblemAt("insurers.690.eattest_url", 25, "encryption_cert_file")));
}

TEST_F(ConfigTest, EncryptionCertificateMustBeAUsableRsaCertificate) {
  const certs::testing::TestPki& pki = certs::testing::SharedTestPki();
  ASSERT_TRUE(pki.ok());
  auto with_cert = [&](const std::string& file) {
    return Load(
        ReplaceAll(kMinimal, "ca_file = \"insurers/ca.crt\"\n",
                   "ca_file = \"insurers/ca.crt\"\nencryption_cert_file = \"" + file + "\"\n"));
  };
  auto good = with_cert((pki / "insurer-100.pem").string());
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_EQ(good->insurers.at("100").encryption_cert_file, pki / "insurer-100.pem");

  auto garbage = with_cert("insurers/ca.crt");  // "x"
  EXPECT_FALSE(garbage.ok());
  EXPECT_THAT(problems_, Contains(ProblemAt("insurers.100.encryption_cert_file", 23,
                                            "not a PEM certificate")));
  auto expired = with_cert((pki / "expired.pem").string());
  EXPECT_FALSE(expired.ok());
  EXPECT_THAT(problems_,
              Contains(ProblemAt("insurers.100.encryption_cert_file", 23, "has expired")));
  auto missing = with_cert("insurers/nothing.pem");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(problems_,
              Contains(ProblemAt("insurers.100.encryption_cert_file", 23, "does not exist")));
}

// The insurer's answer/return signatures are verified against its signing CAs, not its TLS
// server CAs; an older file without signing_ca_file still loads, with a warning (fallback).
TEST_F(ConfigTest, InsurerSigningCaFileIsReadAndItsAbsenceIsAWarning) {
  auto config = Load(kMinimal);
  ASSERT_TRUE(config.ok()) << config.status().message();
  const InsurerConfig& insurer = config->insurers.at("100");
  EXPECT_EQ(insurer.signing_ca_file, dir_ / "insurers/signing-ca.crt");
  EXPECT_EQ(insurer.SigningTrustFile(), dir_ / "insurers/signing-ca.crt");
  EXPECT_EQ(insurer.ca_file, dir_ / "insurers/ca.crt");

  auto old = Load(ReplaceAll(kMinimal, "signing_ca_file = \"insurers/signing-ca.crt\"\n", ""));
  ASSERT_TRUE(old.ok()) << old.status().message();
  ASSERT_EQ(problems_.size(), 1u);
  EXPECT_TRUE(problems_[0].warning);
  EXPECT_THAT(problems_[0], ProblemAt("insurers.100.signing_ca_file", 17, "ca_file"));
  EXPECT_EQ(old->insurers.at("100").SigningTrustFile(), dir_ / "insurers/ca.crt");

  auto missing = Load(ReplaceAll(kMinimal, "signing-ca.crt", "absent.crt"));
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(problems_,
              ElementsAre(ProblemAt("insurers.100.signing_ca_file", 21, "does not exist")));
}

TEST_F(ConfigTest, PracticePhysiciansMustBePhysicianNihiis) {
  const std::string practice =
      "[practices.81234530]\ncert_sha256 = [\"" + std::string(64, 'a') +
      "\"]\nphysicians = [\"11478761004\", \"81234530000\", \"11478762004\"]\n";
  auto config = Load(std::string(kMinimal) + practice);
  EXPECT_FALSE(config.ok());
  EXPECT_THAT(problems_, Contains(ProblemAt("practices.81234530.physicians[1]", 25, "physician")));
  EXPECT_THAT(problems_, Contains(ProblemAt("practices.81234530.physicians[2]", 25, "physician")));
  auto good =
      Load(std::string(kMinimal) + ReplaceAll(practice, ", \"81234530000\", \"11478762004\"", ""));
  ASSERT_TRUE(good.ok()) << good.status().message();
  EXPECT_THAT(good->practices.at("81234530").physicians, ElementsAre("11478761004"));
}

}  // namespace
}  // namespace psl::gateway
