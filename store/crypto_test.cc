#include "store/crypto.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace psl::store {
namespace {

std::string Key(char fill) {
  return std::string(PayloadCipher::kKeyBytes, fill);
}

class KeyFile {
 public:
  explicit KeyFile(const std::string& content) {
    path_ =
        std::filesystem::temp_directory_path() /
        ("psl-crypto-test-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::ofstream(path_, std::ios::binary) << content;
  }
  KeyFile(const KeyFile&) = delete;
  KeyFile& operator=(const KeyFile&) = delete;
  ~KeyFile() { std::filesystem::remove(path_); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

TEST(PayloadCipherTest, OpensWhatItSealed) {
  auto cipher = PayloadCipher::FromKey(Key('k'));
  ASSERT_TRUE(cipher.ok());
  auto sealed = cipher->Seal("<signed payload/>", "msg-1");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->find("signed payload"), std::string::npos);
  auto opened = cipher->Open(*sealed, "msg-1");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(*opened, "<signed payload/>");
}

TEST(PayloadCipherTest, UsesAFreshNonceForEveryRecord) {
  auto cipher = PayloadCipher::FromKey(Key('k'));
  ASSERT_TRUE(cipher.ok());
  EXPECT_NE(cipher->Seal("same", "id").value(), cipher->Seal("same", "id").value());
}

TEST(PayloadCipherTest, RefusesAnotherMessageIdAsAssociatedData) {
  auto cipher = PayloadCipher::FromKey(Key('k'));
  auto sealed = cipher->Seal("payload", "msg-1");
  auto opened = cipher->Open(*sealed, "msg-2");
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
}

TEST(PayloadCipherTest, RefusesAWrongKey) {
  auto sealed = PayloadCipher::FromKey(Key('a'))->Seal("payload", "id");
  auto opened = PayloadCipher::FromKey(Key('b'))->Open(*sealed, "id");
  EXPECT_EQ(opened.status().code(), StatusCode::kFailedPrecondition);
}

TEST(PayloadCipherTest, RefusesAnAlteredCiphertext) {
  auto cipher = PayloadCipher::FromKey(Key('k'));
  std::string sealed = cipher->Seal("payload", "id").value();
  sealed[1 + PayloadCipher::kNonceBytes] ^= 0x01;
  EXPECT_EQ(cipher->Open(sealed, "id").status().code(), StatusCode::kFailedPrecondition);
}

TEST(PayloadCipherTest, RefusesATruncatedRecord) {
  auto cipher = PayloadCipher::FromKey(Key('k'));
  EXPECT_EQ(cipher->Open("\x01short", "id").status().code(), StatusCode::kMalformed);
}

TEST(PayloadCipherTest, RefusesAKeyOfTheWrongLength) {
  EXPECT_EQ(PayloadCipher::FromKey("too short").status().code(), StatusCode::kFailedPrecondition);
}

TEST(PayloadCipherTest, ReadsARawKeyFile) {
  KeyFile file(Key('r'));
  auto cipher = PayloadCipher::FromKeyFile(file.path());
  ASSERT_TRUE(cipher.ok()) << cipher.status().ToString();
  auto sealed = cipher->Seal("x", "id");
  EXPECT_EQ(PayloadCipher::FromKey(Key('r'))->Open(*sealed, "id").value(), "x");
}

TEST(PayloadCipherTest, ReadsAHexKeyFileWithATrailingNewline) {
  KeyFile file(std::string(64, 'a') + "\n");
  auto cipher = PayloadCipher::FromKeyFile(file.path());
  ASSERT_TRUE(cipher.ok()) << cipher.status().ToString();
  auto sealed = cipher->Seal("x", "id");
  EXPECT_EQ(PayloadCipher::FromKey(std::string(32, '\xaa'))->Open(*sealed, "id").value(), "x");
}

TEST(PayloadCipherTest, RefusesAKeyFileWithoutHexDigits) {
  KeyFile file(std::string(64, 'z'));
  auto cipher = PayloadCipher::FromKeyFile(file.path());
  EXPECT_EQ(cipher.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(cipher.status().message().find("hex digit"), std::string::npos);
}

TEST(PayloadCipherTest, RefusesAMissingKeyFile) {
  auto cipher = PayloadCipher::FromKeyFile("/nonexistent/psl/key");
  EXPECT_EQ(cipher.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace psl::store
