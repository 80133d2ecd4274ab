#include "base/digest.h"

#include <gtest/gtest.h>

#include <string>

namespace psl {
namespace {

TEST(DigestTest, HexEncodesEveryByteAsTwoLowercaseDigits) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string("\x00\x0f\xa5\xff", 4)), "000fa5ff");
}

TEST(DigestTest, HexDecodeReadsEitherCaseAndRefusesAnythingElse) {
  std::string out;
  ASSERT_TRUE(HexDecode("000fA5ff", &out));
  EXPECT_EQ(out, std::string("\x00\x0f\xa5\xff", 4));
  EXPECT_TRUE(HexDecode("", &out));
  EXPECT_EQ(out, "");
  EXPECT_FALSE(HexDecode("abc", &out));  // odd length
  EXPECT_FALSE(HexDecode("0g", &out));
  EXPECT_FALSE(HexDecode("0 ", &out));
  EXPECT_EQ(HexDigitValue('7'), 7);
  EXPECT_EQ(HexDigitValue('f'), 15);
  EXPECT_EQ(HexDigitValue('F'), 15);
  EXPECT_EQ(HexDigitValue('x'), -1);
}

TEST(DigestTest, Sha256MatchesTheFips180Vectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256("abc").size(), 32U);
  EXPECT_EQ(HexEncode(Sha256("abc")), Sha256Hex("abc"));
}

}  // namespace
}  // namespace psl
