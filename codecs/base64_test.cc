#include "codecs/base64.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace psl::codecs {
namespace {

// RFC 4648 §10.
const std::vector<std::pair<std::string, std::string>> kRfc4648Vectors = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST(Base64Test, EncodesTheRfc4648TestVectors) {
  for (const auto& [plain, encoded] : kRfc4648Vectors) {
    EXPECT_EQ(EncodeBase64(plain), encoded) << plain;
  }
}

TEST(Base64Test, DecodesTheRfc4648TestVectors) {
  for (const auto& [plain, encoded] : kRfc4648Vectors) {
    StatusOr<std::string> decoded = DecodeBase64(encoded);
    ASSERT_TRUE(decoded.ok()) << encoded << ": " << decoded.status().ToString();
    EXPECT_EQ(*decoded, plain) << encoded;
  }
}

TEST(Base64Test, RoundTripsEveryByteValueIncludingTheLastTwoAlphabetCharacters) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) {
    bytes.push_back(static_cast<char>(i));
  }
  const std::string encoded = EncodeBase64(bytes);
  EXPECT_NE(encoded.find('+'), std::string::npos);
  EXPECT_NE(encoded.find('/'), std::string::npos);
  StatusOr<std::string> decoded = DecodeBase64(encoded);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, bytes);
}

TEST(Base64Test, IgnoresXmlWhitespaceBetweenCharacters) {
  StatusOr<std::string> decoded = DecodeBase64(" Zm9v\r\nYmE=\n\t");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, "fooba");
  decoded = DecodeBase64("Zg\n==");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, "f");
}

TEST(Base64Test, RefusesWhitespaceThatIsNotXmlWhitespace) {
  EXPECT_FALSE(DecodeBase64("Zm9v\vYmFy").ok());
  EXPECT_FALSE(DecodeBase64("Zm9v\fYmFy").ok());
}

TEST(Base64Test, RefusesCharactersOutsideTheAlphabet) {
  const std::vector<std::string> texts = {"Zm9v!mFy", "Zm9v-mFy", "Zm9v_mFy",
                                          std::string("Zm9v\0mFy", 8),
                                          std::string("Zm9v\xC3\xA9mF", 8)};
  for (const std::string& text : texts) {
    StatusOr<std::string> decoded = DecodeBase64(text);
    ASSERT_FALSE(decoded.ok()) << text;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalid);
    EXPECT_NE(decoded.status().message().find("outside the base64 alphabet"), std::string::npos)
        << decoded.status().message();
  }
}

TEST(Base64Test, RefusesMisplacedPadding) {
  for (const char* text : {"=", "====", "Z===", "=m9v", "Z=9v", "Zm9v=", "Zm9v===="}) {
    EXPECT_FALSE(DecodeBase64(text).ok()) << text;
  }
}

TEST(Base64Test, RefusesDataAfterThePadding) {
  for (const char* text : {"Zg==Zm9v", "Zm8=Zm9v", "Zm=v", "Zg===", "Zm8==", "Zg== Zg=="}) {
    StatusOr<std::string> decoded = DecodeBase64(text);
    ASSERT_FALSE(decoded.ok()) << text;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalid);
  }
  EXPECT_NE(DecodeBase64("Zg==Zm9v").status().message().find("after the padding"),
            std::string::npos);
}

TEST(Base64Test, RefusesAnIncompleteFinalQuantum) {
  for (const char* text : {"Z", "Zm", "Zm9", "Zm9vY", "Zm8", "Zg="}) {
    StatusOr<std::string> decoded = DecodeBase64(text);
    ASSERT_FALSE(decoded.ok()) << text;
    EXPECT_NE(decoded.status().message().find("multiple of 4"), std::string::npos)
        << decoded.status().message();
  }
}

TEST(Base64Test, ErrorMessagesGiveTheOffsetButNeverTheText) {
  const std::string secret = "85073003328";  // looks like a NISS: must not be echoed
  StatusOr<std::string> decoded = DecodeBase64("Zm9v" + secret + "!");
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.status().message().find(secret), std::string::npos);
  EXPECT_NE(decoded.status().message().find("offset 15"), std::string::npos)
      << decoded.status().message();
}

TEST(Base64Test, AcceptsNonZeroPadBitsBecauseTheSignatureCoversTheDecodedBytes) {
  // "Zh==" carries bits the canonical "Zg==" leaves zero; both decode to "f".
  StatusOr<std::string> decoded = DecodeBase64("Zh==");
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(*decoded, "f");
}

}  // namespace
}  // namespace psl::codecs
