// Belgian identifiers and their check algorithms (DOMAIN.md §2): NISS/INSZ and BIS, NIHII/INAMI,
// medical-house NIHII, CBE/KBO. Pure functions, thread-safe. Error messages name the rule broken
// and never echo the value.
#ifndef PSL_CODECS_IDENTIFIERS_H_
#define PSL_CODECS_IDENTIFIERS_H_

#include <string>
#include <string_view>

namespace psl::codecs {

enum class IdCheck {
  kValid,
  kWrongLength,     // not the required number of characters
  kNotDigits,       // a character other than 0-9
  kBadCheckDigits,  // modulus check fails
  kImpossibleDate,  // the birth date part cannot exist (e.g. month 13, 30 February)
  kBadSequence,     // NISS sequence 000 or 999
};

// Short English text for a failed check, e.g. "check digits do not match (97 - n mod 97)".
std::string_view IdCheckText(IdCheck check);

struct NissResult {
  IdCheck check = IdCheck::kWrongLength;
  bool is_bis = false;              // month + 20 or + 40
  bool born_2000_or_later = false;  // matched the "prefix 2" branch
  bool ok() const { return check == IdCheck::kValid; }
};

// NISS (national register) or BIS number, 11 digits. Tries the pre-2000 and the
// born-in-2000-or-later branch; BIS months are +20 (sex unknown) or +40 (sex known); for BIS,
// unknown date parts may be 00. `current_year` bounds the 2000 branch (2000+YY <= current_year).
NissResult CheckNiss(std::string_view niss, int current_year);

struct NihiiResult {
  IdCheck check = IdCheck::kWrongLength;
  bool mod89 = false;  // accepted only by the 89 - n mod 89 variant: accept with a warning
  bool ok() const { return check == IdCheck::kValid; }
};

// NIHII in its 8- or 11-digit form: 6-digit base + 2 check digits (97 - base mod 97, with the
// mod-89 variant accepted and flagged) [+ 3-digit qualification].
NihiiResult CheckNihii(std::string_view nihii);

// True when the 11-digit NIHII is valid and identifies a medical house: it starts with 8 and ends
// with a discipline flag 111, 110, 100, 101, 001, 010 or 011 (DOMAIN.md §2.3), or with 000, the
// form MyCareNet requests carry for the 8-digit institution number padded to 11 digits.
bool IsMedicalHouseNihii(std::string_view nihii11);

// CBE/KBO enterprise number: 10 digits starting with 0 or 1 (a 9-digit legacy form gets a
// leading 0), (first8 + last2) mod 97 == 0. Dots and spaces are not accepted here.
IdCheck CheckCbe(std::string_view cbe);

}  // namespace psl::codecs

#endif  // PSL_CODECS_IDENTIFIERS_H_
