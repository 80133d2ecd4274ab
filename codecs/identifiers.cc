#include "codecs/identifiers.h"

#include <array>
#include <cstdint>

namespace psl::codecs {
namespace {

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

// Callers have checked AllDigits; at most 10 digits, so no overflow.
std::int64_t ToNumber(std::string_view digits) {
  std::int64_t n = 0;
  for (char c : digits) {
    n = n * 10 + (c - '0');
  }
  return n;
}

// The 97 rule as published: the check number is 97 - (n mod 97), so it is never 00 and is 97
// when the remainder is 0. Written this way (rather than "(n * 100 + cc) mod 97 == 0") so that a
// check number 00 is refused.
bool Mod97Matches(std::int64_t base, std::int64_t check) {
  return check == 97 - base % 97;
}

bool IsLeapYear(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

int DaysInMonth(int year, int month) {
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && IsLeapYear(year)) {
    return 29;
  }
  return kDays[month - 1];
}

// `allow_unknown` is the BIS rule: an unknown month or day is written 00.
bool DateExists(int year, int month, int day, bool allow_unknown) {
  if (month < 0 || month > 12 || day < 0 || day > 31) {
    return false;
  }
  if (month == 0 || day == 0) {
    // Only BIS numbers may leave a part unknown; with the month unknown any day 1-31 may exist.
    return allow_unknown;
  }
  return day <= DaysInMonth(year, month);
}

}  // namespace

std::string_view IdCheckText(IdCheck check) {
  switch (check) {
    case IdCheck::kValid:
      return "valid";
    case IdCheck::kWrongLength:
      return "wrong number of digits";
    case IdCheck::kNotDigits:
      return "contains a character other than the digits 0-9";
    case IdCheck::kBadCheckDigits:
      return "check digits do not match (97 - n mod 97)";
    case IdCheck::kImpossibleDate:
      return "the birth date part cannot exist";
    case IdCheck::kBadSequence:
      return "sequence number 000 or 999 is never issued";
  }
  return "unknown identifier check";
}

NissResult CheckNiss(std::string_view niss, int current_year) {
  NissResult result;
  if (niss.size() != 11) {
    result.check = IdCheck::kWrongLength;
    return result;
  }
  if (!AllDigits(niss)) {
    result.check = IdCheck::kNotDigits;
    return result;
  }
  const std::int64_t base = ToNumber(niss.substr(0, 9));
  const std::int64_t check = ToNumber(niss.substr(9, 2));
  const int yy = static_cast<int>(ToNumber(niss.substr(0, 2)));
  const int mm = static_cast<int>(ToNumber(niss.substr(2, 2)));
  const int dd = static_cast<int>(ToNumber(niss.substr(4, 2)));
  const int sequence = static_cast<int>(ToNumber(niss.substr(6, 3)));

  // 2 000 000 000 is not a multiple of 97, so at most one branch can match: the match gives the
  // century. The 2000 branch is only tried for years that have already begun (python-stdnum).
  int year = 0;
  if (Mod97Matches(base, check)) {
    year = 1900 + yy;
  } else if (2000 + yy <= current_year && Mod97Matches(2'000'000'000 + base, check)) {
    year = 2000 + yy;
    result.born_2000_or_later = true;
  } else {
    result.check = IdCheck::kBadCheckDigits;
    return result;
  }

  int month = mm;
  if (mm >= 20 && mm <= 32) {
    result.is_bis = true;
    month = mm - 20;
  } else if (mm >= 40 && mm <= 52) {
    result.is_bis = true;
    month = mm - 40;
  }
  if (!DateExists(year, month, dd, result.is_bis)) {
    result.check = IdCheck::kImpossibleDate;
    return result;
  }
  if (sequence == 0 || sequence == 999) {
    result.check = IdCheck::kBadSequence;
    return result;
  }
  result.check = IdCheck::kValid;
  return result;
}

NihiiResult CheckNihii(std::string_view nihii) {
  NihiiResult result;
  if (nihii.size() != 8 && nihii.size() != 11) {
    result.check = IdCheck::kWrongLength;
    return result;
  }
  if (!AllDigits(nihii)) {
    result.check = IdCheck::kNotDigits;
    return result;
  }
  const std::int64_t base = ToNumber(nihii.substr(0, 6));
  const std::int64_t check = ToNumber(nihii.substr(6, 2));
  if (Mod97Matches(base, check)) {
    result.check = IdCheck::kValid;
  } else if (check == 89 - base % 89) {
    // Accepted by the FH schematron (id-hcparty.values.checks); callers warn about it.
    result.check = IdCheck::kValid;
    result.mod89 = true;
  } else {
    result.check = IdCheck::kBadCheckDigits;
  }
  return result;
}

bool IsMedicalHouseNihii(std::string_view nihii11) {
  if (nihii11.size() != 11 || nihii11.front() != '8') {
    return false;
  }
  if (!CheckNihii(nihii11).ok()) {
    return false;
  }
  // 000: the 8-digit institution number padded to 11 digits, as requests carry it.
  static constexpr std::array<std::string_view, 8> kDisciplineFlags = {"111", "110", "100", "101",
                                                                       "001", "010", "011", "000"};
  const std::string_view last3 = nihii11.substr(8, 3);
  for (std::string_view flags : kDisciplineFlags) {
    if (last3 == flags) {
      return true;
    }
  }
  return false;
}

IdCheck CheckCbe(std::string_view cbe) {
  if (cbe.size() != 9 && cbe.size() != 10) {
    return IdCheck::kWrongLength;
  }
  if (!AllDigits(cbe)) {
    return IdCheck::kNotDigits;
  }
  // The legacy 9-digit form is the 10-digit form without its leading 0.
  const std::size_t offset = cbe.size() == 9 ? 1 : 0;
  if (offset == 0 && cbe.front() != '0' && cbe.front() != '1') {
    // Not an enterprise number at all; no dedicated IdCheck exists for a wrong first digit.
    return IdCheck::kBadCheckDigits;
  }
  const std::int64_t base = ToNumber(cbe.substr(0, 8 - offset));
  const std::int64_t check = ToNumber(cbe.substr(8 - offset, 2));
  return Mod97Matches(base, check) ? IdCheck::kValid : IdCheck::kBadCheckDigits;
}

}  // namespace psl::codecs
