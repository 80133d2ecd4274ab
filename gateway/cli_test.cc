#include "gateway/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

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

std::string Base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Unbase64(const std::string& in) {
  std::string out(in.size(), '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  while (!in.empty() && in.back() == '=' && !out.empty() && out.back() == '\0')
    out.pop_back();
  return out;
}

// The sample envelope, its placeholder Xades removed, with the Detail payload `detail`.
std::string EnvelopeWithDetail(const std::string& detail) {
  std::string env = ReadAll(kEnvelopeSample);
  size_t open = env.find('>', env.find("<mcp:Detail")) + 1;
  size_t close = env.find("</mcp:Detail>");
  env.replace(open, close - open, Base64(detail));
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
  return Unbase64(env.substr(open, close - open));
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

TEST_F(CliTest, MissingSchemaFolderIsAnEnvironmentError) {
  EXPECT_EQ(Run({"validate", "--schemas", (dir_ / "nowhere").string(), kEnvelopeSample.string()}),
            2);
  EXPECT_THAT(err_.str(), ::testing::HasSubstr("cannot load schemas"));
}

}  // namespace
}  // namespace psl::gateway
