#include "codecs/deflate.h"

#include <gtest/gtest.h>

#include <string>

namespace psl::codecs {
namespace {

TEST(DeflateTest, InflatesWhatItDeflates) {
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    text += "<item>" + std::to_string(i) + "</item>";
  }
  StatusOr<std::string> deflated = DeflateRaw(text);
  ASSERT_TRUE(deflated.ok()) << deflated.status().ToString();
  EXPECT_LT(deflated->size(), text.size());
  StatusOr<std::string> inflated = InflateRaw(*deflated, text.size());
  ASSERT_TRUE(inflated.ok()) << inflated.status().ToString();
  EXPECT_EQ(*inflated, text);
}

TEST(DeflateTest, InflatesAnEmptyStream) {
  StatusOr<std::string> deflated = DeflateRaw("");
  ASSERT_TRUE(deflated.ok());
  StatusOr<std::string> inflated = InflateRaw(*deflated, 0);
  ASSERT_TRUE(inflated.ok()) << inflated.status().ToString();
  EXPECT_EQ(*inflated, "");
}

TEST(DeflateTest, WritesRawDeflateWithoutAZlibHeader) {
  // A zlib stream starts 0x78; the same data with a zlib header is not raw deflate.
  StatusOr<std::string> deflated = DeflateRaw("hello hello hello");
  ASSERT_TRUE(deflated.ok());
  EXPECT_NE(static_cast<unsigned char>(deflated->front()), 0x78);
  const std::string zlib_stream = "\x78\x9c" + *deflated;
  EXPECT_EQ(InflateRaw(zlib_stream, 1024).status().code(), StatusCode::kMalformed);
}

TEST(DeflateTest, StopsAtTheSizeLimitWithTooLarge) {
  StatusOr<std::string> bomb = DeflateRaw(std::string(1024 * 1024, ' '));
  ASSERT_TRUE(bomb.ok());
  EXPECT_LT(bomb->size(), 8U * 1024);
  StatusOr<std::string> inflated = InflateRaw(*bomb, 64 * 1024);
  ASSERT_FALSE(inflated.ok());
  EXPECT_EQ(inflated.status().code(), StatusCode::kTooLarge);
  // Exactly at the limit is allowed.
  EXPECT_TRUE(InflateRaw(*bomb, 1024 * 1024).ok());
  EXPECT_EQ(InflateRaw(*bomb, 1024 * 1024 - 1).status().code(), StatusCode::kTooLarge);
}

TEST(DeflateTest, RefusesATruncatedStream) {
  StatusOr<std::string> deflated = DeflateRaw(std::string(5000, 'x') + "end");
  ASSERT_TRUE(deflated.ok());
  const std::string truncated = deflated->substr(0, deflated->size() / 2);
  EXPECT_EQ(InflateRaw(truncated, 1 << 20).status().code(), StatusCode::kMalformed);
  EXPECT_EQ(InflateRaw("", 1 << 20).status().code(), StatusCode::kMalformed);
}

TEST(DeflateTest, RefusesBytesAfterTheEndOfTheStream) {
  StatusOr<std::string> deflated = DeflateRaw("payload");
  ASSERT_TRUE(deflated.ok());
  StatusOr<std::string> inflated = InflateRaw(*deflated + "trailing", 1 << 20);
  ASSERT_FALSE(inflated.ok());
  EXPECT_EQ(inflated.status().code(), StatusCode::kMalformed);
  EXPECT_NE(inflated.status().message().find("follow the end"), std::string::npos);
}

TEST(DeflateTest, RefusesDataThatIsNotDeflate) {
  EXPECT_EQ(InflateRaw("\xff\xff\xff\xff garbage", 1 << 20).status().code(),
            StatusCode::kMalformed);
}

}  // namespace
}  // namespace psl::codecs
