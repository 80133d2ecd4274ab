#include "codecs/identifiers.h"

#include <gtest/gtest.h>

#include <string>

namespace psl::codecs {
namespace {

constexpr int kCurrentYear = 2026;

// Replaces the digit at `index` by the next digit (9 -> 0).
std::string AlterDigit(std::string value, std::size_t index) {
  value[index] = value[index] == '9' ? '0' : static_cast<char>(value[index] + 1);
  return value;
}

TEST(NissTest, AcceptsTheDomainExampleBornIn1985) {
  const NissResult r = CheckNiss("85073003328", kCurrentYear);
  EXPECT_EQ(r.check, IdCheck::kValid);
  EXPECT_FALSE(r.is_bis);
  EXPECT_FALSE(r.born_2000_or_later);
}

TEST(NissTest, AcceptsTheDomainExampleBornIn2017ThroughThePrefix2Branch) {
  const NissResult r = CheckNiss("17073003384", kCurrentYear);
  EXPECT_EQ(r.check, IdCheck::kValid);
  EXPECT_TRUE(r.born_2000_or_later);
  EXPECT_FALSE(r.is_bis);
}

TEST(NissTest, AcceptsTheSampleMessagesNiss) {
  EXPECT_TRUE(CheckNiss("90010100123", kCurrentYear).ok());
}

TEST(NissTest, AcceptsTheDomainBisExampleWithMonthPlus40) {
  const NissResult r = CheckNiss("85493000163", kCurrentYear);
  EXPECT_EQ(r.check, IdCheck::kValid);
  EXPECT_TRUE(r.is_bis);
  EXPECT_FALSE(r.born_2000_or_later);
}

TEST(NissTest, AcceptsCheckNumber97WhenTheRemainderIsZero) {
  EXPECT_TRUE(CheckNiss("85073006197", kCurrentYear).ok());
  const NissResult y2k = CheckNiss("17073002097", kCurrentYear);
  EXPECT_TRUE(y2k.ok());
  EXPECT_TRUE(y2k.born_2000_or_later);
}

TEST(NissTest, RefusesCheckNumber00WhenTheRemainderIsZero) {
  EXPECT_EQ(CheckNiss("85073006100", kCurrentYear).check, IdCheck::kBadCheckDigits);
}

TEST(NissTest, RejectsAWrongCheckDigit) {
  EXPECT_EQ(CheckNiss("85073003329", kCurrentYear).check, IdCheck::kBadCheckDigits);
}

TEST(NissTest, RejectsEveryNumberWithOneAlteredDigit) {
  for (const std::string valid : {"85073003328", "17073003384", "85493000163", "90010100123"}) {
    for (std::size_t i = 0; i < valid.size(); ++i) {
      const std::string altered = AlterDigit(valid, i);
      EXPECT_FALSE(CheckNiss(altered, kCurrentYear).ok())
          << "digit " << i << " of example " << valid;
    }
  }
}

TEST(NissTest, BoundsThePrefix2BranchByTheCurrentYear) {
  // 30010100153 only matches the 2000 branch: born 2030, which has not happened in 2026.
  EXPECT_EQ(CheckNiss("30010100153", kCurrentYear).check, IdCheck::kBadCheckDigits);
  EXPECT_TRUE(CheckNiss("30010100153", 2030).ok());
  EXPECT_TRUE(CheckNiss("30010100124", kCurrentYear).ok());  // born 1930
}

TEST(NissTest, RejectsMonth13) {
  EXPECT_EQ(CheckNiss("85130100102", kCurrentYear).check, IdCheck::kImpossibleDate);
}

TEST(NissTest, RejectsThirtiethOfFebruary) {
  EXPECT_EQ(CheckNiss("85023000125", kCurrentYear).check, IdCheck::kImpossibleDate);
}

TEST(NissTest, RejectsTwentyNinthOfFebruaryInANonLeapYear) {
  EXPECT_EQ(CheckNiss("85022900155", kCurrentYear).check, IdCheck::kImpossibleDate);
  EXPECT_TRUE(CheckNiss("84022900134", kCurrentYear).ok());
}

TEST(NissTest, UsesTheCenturyOfTheMatchingBranchForLeapYears) {
  EXPECT_TRUE(CheckNiss("00022900145", kCurrentYear).ok());  // 29 February 2000: leap
  EXPECT_EQ(CheckNiss("00022900116", kCurrentYear).check,
            IdCheck::kImpossibleDate);  // 29 February 1900: not leap
}

TEST(NissTest, RejectsAZeroDayOrMonthInAPlainNiss) {
  EXPECT_EQ(CheckNiss("85070000187", kCurrentYear).check, IdCheck::kImpossibleDate);
  EXPECT_EQ(CheckNiss("85001500173", kCurrentYear).check, IdCheck::kImpossibleDate);
}

TEST(NissTest, AcceptsUnknownDatePartsInABisNumber) {
  const NissResult month_unknown = CheckNiss("85200000181", kCurrentYear);
  EXPECT_TRUE(month_unknown.ok());
  EXPECT_TRUE(month_unknown.is_bis);
  EXPECT_TRUE(CheckNiss("85490000190", kCurrentYear).ok());
}

TEST(NissTest, RejectsAnImpossibleBisDate) {
  const NissResult r = CheckNiss("85223000168", kCurrentYear);
  EXPECT_EQ(r.check, IdCheck::kImpossibleDate);
  EXPECT_TRUE(r.is_bis);
}

TEST(NissTest, RejectsSequence000And999) {
  EXPECT_EQ(CheckNiss("85073000061", kCurrentYear).check, IdCheck::kBadSequence);
  EXPECT_EQ(CheckNiss("85073099932", kCurrentYear).check, IdCheck::kBadSequence);
}

TEST(NissTest, RejectsWrongLengths) {
  EXPECT_EQ(CheckNiss("", kCurrentYear).check, IdCheck::kWrongLength);
  EXPECT_EQ(CheckNiss("8507300332", kCurrentYear).check, IdCheck::kWrongLength);
  EXPECT_EQ(CheckNiss("850730033280", kCurrentYear).check, IdCheck::kWrongLength);
  EXPECT_EQ(CheckNiss("85.07.30-033.28", kCurrentYear).check, IdCheck::kWrongLength);
}

TEST(NissTest, RejectsNonDigits) {
  EXPECT_EQ(CheckNiss("8507300332A", kCurrentYear).check, IdCheck::kNotDigits);
  EXPECT_EQ(CheckNiss("85073 03328", kCurrentYear).check, IdCheck::kNotDigits);
  EXPECT_EQ(CheckNiss("-8507300332", kCurrentYear).check, IdCheck::kNotDigits);
}

TEST(NihiiTest, AcceptsTheDomainExampleIn11And8DigitForms) {
  const NihiiResult r = CheckNihii("11478761004");
  EXPECT_EQ(r.check, IdCheck::kValid);
  EXPECT_FALSE(r.mod89);
  EXPECT_TRUE(CheckNihii("11478761").ok());
}

TEST(NihiiTest, AcceptsTheSampleMedicalHouseNihii) {
  const NihiiResult r = CheckNihii("81234530000");
  EXPECT_EQ(r.check, IdCheck::kValid);
  EXPECT_FALSE(r.mod89);
}

TEST(NihiiTest, AcceptsCheckNumber97WhenTheRemainderIsZero) {
  EXPECT_TRUE(CheckNihii("10000797").ok());
  EXPECT_EQ(CheckNihii("10000700").check, IdCheck::kBadCheckDigits);
}

TEST(NihiiTest, AcceptsTheMod89VariantButFlagsIt) {
  const NihiiResult r = CheckNihii("11478723004");
  EXPECT_EQ(r.check, IdCheck::kValid);
  EXPECT_TRUE(r.mod89);
  EXPECT_TRUE(CheckNihii("12345676").mod89);
}

TEST(NihiiTest, RejectsEveryNumberWithOneAlteredCheckedDigit) {
  for (const std::string valid : {"11478761004", "81234530000"}) {
    // The 3-digit qualification is not covered by the check digits.
    for (std::size_t i = 0; i < 8; ++i) {
      const std::string altered = AlterDigit(valid, i);
      EXPECT_FALSE(CheckNihii(altered).ok() && !CheckNihii(altered).mod89)
          << "digit " << i << " of example " << valid;
    }
  }
  EXPECT_EQ(CheckNihii("11478762004").check, IdCheck::kBadCheckDigits);
}

TEST(NihiiTest, RejectsWrongLengthsAndNonDigits) {
  EXPECT_EQ(CheckNihii("").check, IdCheck::kWrongLength);
  EXPECT_EQ(CheckNihii("1147876").check, IdCheck::kWrongLength);
  EXPECT_EQ(CheckNihii("1147876100").check, IdCheck::kWrongLength);
  EXPECT_EQ(CheckNihii("114787610040").check, IdCheck::kWrongLength);
  EXPECT_EQ(CheckNihii("1147876A004").check, IdCheck::kNotDigits);
  EXPECT_EQ(CheckNihii("1-478761").check, IdCheck::kNotDigits);
}

TEST(MedicalHouseNihiiTest, RecognisesAValidNihiiStartingWith8AndEndingWithDisciplineFlags) {
  for (const char* flags : {"111", "110", "100", "101", "001", "010", "011"}) {
    EXPECT_TRUE(IsMedicalHouseNihii(std::string("81234530") + flags)) << flags;
  }
}

TEST(MedicalHouseNihiiTest, AcceptsTheInstitutionNumberPaddedWith000) {
  // DOMAIN.md §2.3: the samples' medical house, the 8-digit 81234530 padded as requests carry it.
  EXPECT_TRUE(IsMedicalHouseNihii("81234530000"));
  EXPECT_FALSE(IsMedicalHouseNihii("81234531000"));  // same form, bad check digits
}

TEST(MedicalHouseNihiiTest, RejectsOtherPrefixesBadCheckDigitsAndShortForms) {
  EXPECT_FALSE(IsMedicalHouseNihii("11478761111"));  // valid, but not starting with 8
  EXPECT_FALSE(IsMedicalHouseNihii("81234531111"));  // bad check digits
  EXPECT_FALSE(IsMedicalHouseNihii("81234530"));     // 8-digit form
  EXPECT_FALSE(IsMedicalHouseNihii("81234530112"));  // not a discipline flag
}

TEST(CbeTest, AcceptsTheDomainExamples) {
  EXPECT_EQ(CheckCbe("0403019261"), IdCheck::kValid);
  EXPECT_EQ(CheckCbe("0820563481"), IdCheck::kValid);
}

TEST(CbeTest, AcceptsCheckNumber97WhenTheRemainderIsZero) {
  EXPECT_EQ(CheckCbe("0428759497"), IdCheck::kValid);
  // (4287594 + 0) mod 97 == 0 too, but the published check number is 97, never 00.
  EXPECT_EQ(CheckCbe("0428759400"), IdCheck::kBadCheckDigits);
}

TEST(CbeTest, AcceptsTheLegacy9DigitFormAsIfPrefixedWith0) {
  EXPECT_EQ(CheckCbe("403019261"), IdCheck::kValid);
  EXPECT_EQ(CheckCbe("428759497"), IdCheck::kValid);
  EXPECT_EQ(CheckCbe("403019262"), IdCheck::kBadCheckDigits);
}

TEST(CbeTest, AcceptsANumberStartingWith1) {
  EXPECT_EQ(CheckCbe("1000000021"), IdCheck::kValid);
}

TEST(CbeTest, RejectsANumberStartingWithAnotherDigit) {
  EXPECT_EQ(CheckCbe("2000000021"), IdCheck::kBadCheckDigits);
}

TEST(CbeTest, RejectsEveryNumberWithOneAlteredDigit) {
  for (const std::string valid : {"0403019261", "0428759497", "0820563481"}) {
    for (std::size_t i = 0; i < valid.size(); ++i) {
      EXPECT_NE(CheckCbe(AlterDigit(valid, i)), IdCheck::kValid)
          << "digit " << i << " of example " << valid;
    }
  }
}

TEST(CbeTest, RejectsWrongLengthsAndNonDigits) {
  EXPECT_EQ(CheckCbe(""), IdCheck::kWrongLength);
  EXPECT_EQ(CheckCbe("40301926"), IdCheck::kWrongLength);
  EXPECT_EQ(CheckCbe("04030192610"), IdCheck::kWrongLength);
  EXPECT_EQ(CheckCbe("0403.019.261"), IdCheck::kWrongLength);
  EXPECT_EQ(CheckCbe("040301926X"), IdCheck::kNotDigits);
  EXPECT_EQ(CheckCbe("0403 19261"), IdCheck::kNotDigits);
}

TEST(IdCheckTextTest, DescribesEveryOutcome) {
  for (IdCheck c : {IdCheck::kValid, IdCheck::kWrongLength, IdCheck::kNotDigits,
                    IdCheck::kBadCheckDigits, IdCheck::kImpossibleDate, IdCheck::kBadSequence}) {
    EXPECT_FALSE(IdCheckText(c).empty());
  }
  EXPECT_NE(IdCheckText(IdCheck::kBadCheckDigits).find("97"), std::string_view::npos);
}

}  // namespace
}  // namespace psl::codecs
