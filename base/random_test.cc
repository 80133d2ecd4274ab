#include "base/random.h"

#include <gtest/gtest.h>

#include <string>

namespace psl {
namespace {

TEST(RandomTest, UuidIsVersionFourWithTheRfc4122Variant) {
  const std::string uuid = RandomUuid();
  ASSERT_EQ(uuid.size(), 36U);
  for (std::size_t i : {8U, 13U, 18U, 23U}) {
    EXPECT_EQ(uuid[i], '-') << uuid;
  }
  EXPECT_EQ(uuid[14], '4') << uuid;
  EXPECT_NE(std::string("89ab").find(uuid[19]), std::string::npos) << uuid;
  EXPECT_EQ(uuid.find_first_not_of("0123456789abcdef-"), std::string::npos) << uuid;
  EXPECT_NE(RandomUuid(), uuid);
}

TEST(RandomTest, HexHasTwoLowercaseDigitsPerByte) {
  const std::string hex = RandomHex(16);
  EXPECT_EQ(hex.size(), 32U);
  EXPECT_EQ(hex.find_first_not_of("0123456789abcdef"), std::string::npos) << hex;
  EXPECT_NE(RandomHex(16), hex);
  EXPECT_EQ(RandomHex(0), "");
}

}  // namespace
}  // namespace psl
