#include "codecs/efact.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "codecs/identifiers.h"

namespace psl::codecs {
namespace {

// How a zone is written and checked.
enum class Kind : std::uint8_t {
  kNum,        // digits, right-aligned, zero-padded
  kText,       // printable ASCII, left-aligned, blank-padded
  kTextZeros,  // free text that FH pads with zeros when empty (network/SIS reference data)
  kAmount,     // "+" or "-" then digits (FH types these "A")
  kReserved,   // must be zeros
  kFreeText,   // reserved free text (any printable ASCII)
  kDate,       // YYYYMMDD, a real calendar date
  kDateOpt,    // YYYYMMDD or 00000000 (absent)
  kChecksum,   // zone 99: the record checksum
};

struct ZoneSpec {
  std::string_view id;  // first zone number of the group, as in the specification
  int length;
  Kind kind;
};

constexpr Kind N = Kind::kNum;
constexpr Kind A = Kind::kText;
constexpr Kind AZ = Kind::kTextZeros;
constexpr Kind S = Kind::kAmount;
constexpr Kind R = Kind::kReserved;
constexpr Kind RT = Kind::kFreeText;
constexpr Kind D = Kind::kDate;
constexpr Kind DO = Kind::kDateOpt;
constexpr Kind CS = Kind::kChecksum;

// Segment 200 (TK Segment200Description.kt). The "xxx1" zones are the insurer's error codes:
// zero in a file we send.
constexpr ZoneSpec kSegment200[] = {
    {"200", 6, N},  {"2001", 2, R}, {"201", 2, N},  {"2011", 2, R}, {"202", 2, N},
    {"2021", 2, R}, {"203", 2, N},  {"2031", 2, R}, {"204", 14, N}, {"2041", 2, R},
    {"205", 14, N}, {"2051", 2, R}, {"206", 15, R},
};

// Segment 300 (TK Segment300Description.kt).
constexpr ZoneSpec kSegment300[] = {
    {"300", 6, N},  {"3001", 2, R}, {"301", 3, N},  {"3011", 2, R}, {"302", 8, D},  {"3021", 2, R},
    {"303", 13, A}, {"3031", 2, R}, {"304", 7, N},  {"3041", 2, R}, {"305", 45, A}, {"3051", 2, R},
    {"306", 24, A}, {"3061", 2, R}, {"307", 10, N}, {"3071", 2, R}, {"308", 2, N},  {"3081", 2, R},
    {"309", 2, N},  {"3091", 2, R}, {"310", 20, R},
};

// Record 10 (FH Record10Description.kt).
constexpr ZoneSpec kRecord10[] = {
    {"1", 2, N},   {"2", 6, N},   {"3", 1, N},   {"4", 7, N},   {"5", 12, N},   {"6b", 4, R},
    {"7", 3, N},   {"8a", 12, N}, {"8b", 1, R},  {"9", 1, N},   {"10", 1, N},   {"11", 1, R},
    {"12", 1, R},  {"13", 3, N},  {"14", 12, N}, {"15", 12, N}, {"16", 1, R},   {"17", 4, R},
    {"18", 3, N},  {"19", 12, R}, {"20", 7, R},  {"21", 1, R},  {"22", 5, N},   {"23", 2, N},
    {"24", 5, R},  {"25", 8, D},  {"27", 10, N}, {"28", 25, A}, {"29", 2, R},   {"30", 2, R},
    {"31", 11, A}, {"35", 1, R},  {"36", 34, A}, {"42", 6, R},  {"43a", 11, A}, {"43b", 1, R},
    {"44", 4, R},  {"45", 26, R}, {"46", 1, R},  {"47", 8, R},  {"48", 1, R},   {"49", 34, A},
    {"53", 8, R},  {"54", 8, R},  {"55", 8, R},  {"56", 4, R},  {"57", 4, R},   {"58", 4, R},
    {"59", 6, R},  {"98", 2, R},  {"99", 2, CS},
};

// Record 20 (FH Record20Description.kt; 6a+6b read as one date, see efact.h).
constexpr ZoneSpec kRecord20[] = {
    {"1", 2, N},   {"2", 6, N},   {"3", 1, N},   {"4", 7, N},   {"5", 8, DO},   {"6a", 8, DO},
    {"7", 3, N},   {"8", 13, N},  {"9", 1, N},   {"10", 1, N},  {"11", 1, N},   {"12", 1, R},
    {"13", 3, N},  {"14", 12, N}, {"15", 12, N}, {"16", 1, N},  {"17", 4, N},   {"18", 3, N},
    {"19", 12, N}, {"20", 8, DO}, {"22", 5, N},  {"23", 2, R},  {"24", 12, N},  {"26", 1, N},
    {"27", 10, N}, {"28", 25, A}, {"29", 12, N}, {"32", 1, N},  {"33", 1, R},   {"34", 3, N},
    {"37", 3, N},  {"38", 22, A}, {"40", 2, R},  {"41", 6, N},  {"42", 48, AZ}, {"46", 1, R},
    {"47", 8, DO}, {"48", 1, R},  {"49", 22, A}, {"52", 12, R}, {"53", 8, DO},  {"54a", 8, DO},
    {"55", 8, DO}, {"56", 4, N},  {"57", 4, N},  {"58", 4, N},  {"59", 6, R},   {"98", 2, R},
    {"99", 2, CS},
};

// Record 25, MediPrima (INFERRED from FH Record25Description.kt placed on record 20's grid).
constexpr ZoneSpec kRecord25[] = {
    {"1", 2, N},    {"2", 6, N},   {"3", 1, R},   {"4", 7, R},   {"5", 8, R},   {"6a", 8, R},
    {"7", 3, N},    {"8", 13, A},  {"9", 1, N},   {"10", 1, R},  {"11", 1, R},  {"12", 1, N},
    {"13", 3, R},   {"14", 12, N}, {"15", 12, N}, {"16", 1, R},  {"17", 4, R},  {"18", 3, N},
    {"19", 12, R},  {"20", 8, R},  {"22", 5, R},  {"23", 2, R},  {"24", 12, N}, {"26", 1, R},
    {"27", 10, N},  {"28", 25, A}, {"29", 12, R}, {"32", 1, N},  {"33", 1, R},  {"34", 3, R},
    {"37", 3, R},   {"38", 12, N}, {"39", 10, R}, {"40", 2, R},  {"41", 6, R},  {"42", 48, R},
    {"46", 1, R},   {"47", 8, R},  {"48", 1, R},  {"49", 22, A}, {"52", 12, R}, {"53", 8, DO},
    {"54a", 8, DO}, {"55", 8, DO}, {"56", 12, N}, {"59", 6, N},  {"98", 2, R},  {"99", 2, CS},
};

// Record 50 (FH Record50Description.kt). Zone 47 is "+0000000" since 2019-07, "00000000"
// before: free text here.
constexpr ZoneSpec kRecord50[] = {
    {"1", 2, N},   {"2", 6, N},   {"3", 1, N},    {"4", 7, N},   {"5", 8, D},    {"6a", 8, D},
    {"7", 3, N},   {"8", 13, N},  {"9", 1, N},    {"10", 1, N},  {"11", 1, N},   {"12", 1, N},
    {"13", 3, N},  {"14", 12, N}, {"15", 12, N},  {"16", 1, N},  {"17", 7, N},   {"19", 12, S},
    {"20", 8, DO}, {"22", 5, S},  {"23", 2, N},   {"24", 12, N}, {"26", 1, N},   {"27", 10, S},
    {"28", 25, A}, {"29", 2, N},  {"30", 10, S},  {"32", 1, A},  {"33", 1, N},   {"34", 1, N},
    {"35", 1, N},  {"36", 4, N},  {"38", 12, N},  {"39", 12, N}, {"41", 12, AZ}, {"43a", 12, N},
    {"44", 30, A}, {"46", 1, N},  {"47", 8, A},   {"48", 1, N},  {"49", 12, N},  {"50", 4, R},
    {"51", 6, N},  {"52", 12, N}, {"53", 11, AZ}, {"54b", 5, R}, {"55", 12, N},  {"57", 14, N},
    {"98", 2, R},  {"99", 2, CS},
};

// Record 51 (FH Record51Description.kt).
constexpr ZoneSpec kRecord51[] = {
    {"1", 2, N},   {"2", 6, N},   {"3", 1, R},   {"4", 7, N},   {"5", 8, D},   {"6a", 4, R},
    {"6b", 4, R},  {"7", 3, R},   {"8", 13, N},  {"9", 1, R},   {"10", 1, R},  {"11", 1, R},
    {"12", 1, R},  {"13", 3, R},  {"14", 12, R}, {"15", 12, N}, {"16", 1, R},  {"17", 4, N},
    {"18", 3, R},  {"19", 12, S}, {"20", 7, R},  {"21", 1, R},  {"22", 5, R},  {"23", 2, R},
    {"24", 5, R},  {"25", 7, R},  {"26", 1, R},  {"27", 10, N}, {"28", 25, R}, {"29", 2, R},
    {"30", 2, R},  {"31", 8, R},  {"32", 1, R},  {"33", 1, R},  {"34", 1, R},  {"35", 1, R},
    {"36", 1, R},  {"37", 3, R},  {"38", 12, R}, {"39", 10, R}, {"40", 2, R},  {"41", 6, R},
    {"42", 48, A}, {"46", 1, R},  {"47", 8, R},  {"48", 1, R},  {"49", 12, R}, {"50", 4, R},
    {"51", 6, R},  {"52", 12, R}, {"53", 8, R},  {"54a", 3, R}, {"54b", 5, R}, {"55", 8, DO},
    {"56", 4, R},  {"57", 4, R},  {"58", 4, R},  {"59", 6, R},  {"98", 2, R},  {"99", 2, CS},
};

// Record 52 (FH Record52Description.kt; the error table already knows a newer layout that
// splits zone 18 into a device number and zone 19).
constexpr ZoneSpec kRecord52[] = {
    {"1", 2, N},   {"2", 6, N},   {"3", 1, N},   {"4", 7, N},   {"5", 8, D},    {"6a", 8, DO},
    {"7", 3, R},   {"8", 13, N},  {"9", 1, A},   {"10", 1, A},  {"11", 1, N},   {"12", 4, N},
    {"14", 12, R}, {"15", 12, N}, {"16", 15, A}, {"17", 25, N}, {"18", 229, R}, {"99", 2, CS},
};

// Record 80 (FH Record80Description.kt).
constexpr ZoneSpec kRecord80[] = {
    {"1", 2, N},   {"2", 6, N},   {"3", 1, R},   {"4", 7, N},    {"5", 8, DO},  {"6a", 8, DO},
    {"7", 3, N},   {"8", 13, N},  {"9", 1, N},   {"10", 1, N},   {"11", 1, R},  {"12", 1, R},
    {"13", 3, N},  {"14", 12, N}, {"15", 12, S}, {"16", 1, R},   {"17", 4, N},  {"18", 3, N},
    {"19", 12, S}, {"20", 8, DO}, {"22", 5, N},  {"23", 2, R},   {"24", 12, N}, {"26", 1, R},
    {"27", 10, S}, {"28", 25, A}, {"29", 2, R},  {"30", 10, S},  {"32", 1, N},  {"33", 1, R},
    {"34", 1, R},  {"35", 1, R},  {"36", 1, R},  {"37", 3, R},   {"38", 12, S}, {"39", 10, R},
    {"40", 2, R},  {"41", 6, R},  {"42", 6, R},  {"43a", 11, R}, {"43b", 1, R}, {"44", 4, R},
    {"45", 26, R}, {"46", 1, R},  {"47", 8, R},  {"48", 1, R},   {"49", 12, R}, {"50", 4, R},
    {"51", 6, R},  {"52", 12, R}, {"53", 8, R},  {"54a", 8, R},  {"55", 8, R},  {"56", 4, R},
    {"57", 4, R},  {"58", 4, R},  {"59", 6, R},  {"98", 2, N},   {"99", 2, CS},
};

// Record 90 (FH Record90Description.kt).
constexpr ZoneSpec kRecord90[] = {
    {"1", 2, N},   {"2", 6, N},   {"3", 1, R},   {"4", 7, R},   {"5", 12, N},  {"6b", 4, R},
    {"7", 3, N},   {"8a", 12, N}, {"8b", 1, R},  {"9", 1, R},   {"10", 1, R},  {"11", 1, R},
    {"12", 1, R},  {"13", 3, R},  {"14", 12, N}, {"15", 12, S}, {"16", 1, R},  {"17", 4, R},
    {"18", 3, R},  {"19", 12, S}, {"20", 7, R},  {"21", 1, R},  {"22", 5, N},  {"23", 2, N},
    {"24", 5, R},  {"25", 7, R},  {"26", 1, R},  {"27", 10, N}, {"28", 25, A}, {"29", 2, R},
    {"30", 2, R},  {"31", 11, A}, {"35", 1, R},  {"36", 34, A}, {"42", 6, R},  {"43a", 11, A},
    {"43b", 1, R}, {"44", 4, R},  {"45", 26, R}, {"46", 1, R},  {"47", 8, R},  {"48", 1, R},
    {"49", 34, A}, {"53", 8, R},  {"54a", 8, R}, {"55", 8, R},  {"56", 4, R},  {"57", 4, R},
    {"58", 4, R},  {"59", 6, R},  {"98", 2, N},  {"99", 2, CS},
};

// Segment 400 / record 95 (TK Segment400Record95Description.kt).
constexpr ZoneSpec kRecord95[] = {
    {"400", 2, N},  {"4001", 2, R}, {"401", 3, N},  {"4011", 2, R}, {"402", 12, N},
    {"4021", 2, R}, {"403", 1, A},  {"404", 11, N}, {"4041", 2, R}, {"405", 1, A},
    {"406", 11, N}, {"4061", 2, R}, {"407", 1, A},  {"408", 11, N}, {"4081", 2, R},
    {"409", 8, N},  {"4091", 2, R}, {"410", 2, N},  {"4101", 2, R}, {"411", 271, RT},
};

// Segment 500 / record 96 (TK Segment500Record96Description.kt).
constexpr ZoneSpec kRecord96[] = {
    {"500", 2, N},  {"5001", 2, R}, {"501", 3, N},  {"5011", 2, R}, {"502", 12, N},
    {"5021", 2, R}, {"503", 1, A},  {"504", 11, N}, {"5041", 2, R}, {"505", 1, A},
    {"506", 11, N}, {"5061", 2, R}, {"507", 1, A},  {"508", 11, N}, {"5081", 2, R},
    {"509", 8, N},  {"5091", 2, R}, {"510", 2, N},  {"5101", 2, R}, {"511", 271, RT},
};

constexpr int LayoutLength(std::span<const ZoneSpec> zones) {
  int total = 0;
  for (const ZoneSpec& z : zones) {
    total += z.length;
  }
  return total;
}

static_assert(LayoutLength(kSegment200) + LayoutLength(kSegment300) == kEfactHeaderLength);
static_assert(LayoutLength(kSegment200) == 67);
static_assert(LayoutLength(kRecord10) == kEfactRecordLength);
static_assert(LayoutLength(kRecord20) == kEfactRecordLength);
static_assert(LayoutLength(kRecord25) == kEfactRecordLength);
static_assert(LayoutLength(kRecord50) == kEfactRecordLength);
static_assert(LayoutLength(kRecord51) == kEfactRecordLength);
static_assert(LayoutLength(kRecord52) == kEfactRecordLength);
static_assert(LayoutLength(kRecord80) == kEfactRecordLength);
static_assert(LayoutLength(kRecord90) == kEfactRecordLength);
static_assert(LayoutLength(kRecord95) == kEfactRecordLength);
static_assert(LayoutLength(kRecord96) == kEfactRecordLength);

std::span<const ZoneSpec> ZonesOf(EfactRecordType type) {
  switch (type) {
    case EfactRecordType::kSegment200:
      return kSegment200;
    case EfactRecordType::kSegment300:
      return kSegment300;
    case EfactRecordType::kSender10:
      return kRecord10;
    case EfactRecordType::kInvoice20:
      return kRecord20;
    case EfactRecordType::kMediPrima25:
      return kRecord25;
    case EfactRecordType::kAct50:
      return kRecord50;
    case EfactRecordType::kInvolvement51:
      return kRecord51;
    case EfactRecordType::kEid52:
      return kRecord52;
    case EfactRecordType::kInvoiceEnd80:
      return kRecord80;
    case EfactRecordType::kSenderEnd90:
      return kRecord90;
    case EfactRecordType::kDestination95:
      return kRecord95;
    case EfactRecordType::kTotal96:
      return kRecord96;
  }
  return {};
}

// A zone located in its record: 0-based offset.
struct ZoneAt {
  const ZoneSpec* spec = nullptr;
  int offset = 0;
};

ZoneAt FindZone(EfactRecordType type, std::string_view id) {
  int offset = 0;
  for (const ZoneSpec& z : ZonesOf(type)) {
    if (z.id == id) {
      return {&z, offset};
    }
    offset += z.length;
  }
  return {};
}

bool IsNumericKind(Kind kind) {
  return kind == Kind::kNum || kind == Kind::kReserved || kind == Kind::kDate ||
         kind == Kind::kDateOpt || kind == Kind::kChecksum;
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool AllChar(std::string_view s, char want) {
  return std::all_of(s.begin(), s.end(), [want](char c) { return c == want; });
}

bool Printable(char c) {
  return c >= 0x20 && c <= 0x7e;
}

// Callers have checked the digits; at most 18 of them.
std::int64_t DigitsValue(std::string_view digits) {
  std::int64_t n = 0;
  for (char c : digits) {
    n = n * 10 + (c - '0');
  }
  return n;
}

std::optional<std::int64_t> ParseDigits(std::string_view s) {
  if (s.empty() || s.size() > 18 || !AllDigits(s)) {
    return std::nullopt;
  }
  return DigitsValue(s);
}

bool IsLeapYear(int year) {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

// YYYYMMDD naming a day that exists (years 1900-2999: the format's plausible range).
bool IsCalendarDate(std::string_view s) {
  if (s.size() != 8 || !AllDigits(s)) {
    return false;
  }
  const int year = static_cast<int>(DigitsValue(s.substr(0, 4)));
  const int month = static_cast<int>(DigitsValue(s.substr(4, 2)));
  const int day = static_cast<int>(DigitsValue(s.substr(6, 2)));
  static constexpr std::array<int, 12> kDays = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1900 || year > 2999 || month < 1 || month > 12 || day < 1) {
    return false;
  }
  const int days = (month == 2 && IsLeapYear(year)) ? 29 : kDays[month - 1];
  return day <= days;
}

int CharValue(char c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c == ' ') {
    return 10;
  }
  if (c >= 'A' && c <= 'Z') {
    return c - 'A' + 11;
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 11;
  }
  return 37;
}

// Codes of errors/EfactErrors.json for records 10…90 with the suffixes this codec emits (01, 02,
// 03, 04, 05, 09, 10, 11, 12), sorted; generated from the table (efact_test checks each one is in
// it). A rule whose record/zone has no such code gets a "PSL-EFACT-" code instead.
constexpr std::string_view kKnownCodes =
    "100101100103100110100111100201100203100301100303100310100311100312100401100403100501"
    "100502100503100504100511100601100701100703100801100802100803100804100809100812100901"
    "100903100911100912101001101003101011101101101201101301101303101401101402101403101404"
    "101501101503101601101701101801101901102001102101102201102203102204102210102211102301"
    "102303102310102311102312102401102501102503102510102701102702102704102710102901103001"
    "103103103110103501103602103603103604103605103610104201104303104309104310104312104401"
    "104501104601104701104801104902104903104904104905104910104912105301105401105501105601"
    "105701105801105901109801109902200101200103200110200111200201200203200210200301200303"
    "200401200403200404200410200411200412200501200503200510200511200601200603200610200611"
    "200701200703200710200711200801200802200803200810200812200901200903201001201003201011"
    "201101201103201110201201201301201303201304201311201312201401201402201403201404201410"
    "201412201501201502201503201504201510201511201601201603201701201703201704201801201803"
    "201810201812201901201903201910202001202003202010202011202201202203202204202210202211"
    "202212202301202401202403202601202603202701202703202704202710202901202903202910202911"
    "203201203203203210203301203401203403203410203411203701203703203710203711203803203810"
    "203811204001204101204103204110204111204112204203204209204601204701204703204709204710"
    "204801204903204910204911205201205301205303205311205401205403205411205501205503205511"
    "205601205603205611205701205703205711205801205803205811205901209801209902250101250103"
    "250110250111250201250203250210250301250401250501250601250701250703250710250711250801"
    "250802250803250810250812250901250903251001251101251201251203251401251402251403251404"
    "251410251411251412251501251502251503251504251510251511251601251701251801251803251810"
    "251812251901252001252101252201252301252401252403252601252701252703252704252901253001"
    "253101253201253203253301253401253501253601253701253801254001254101254201254210254601"
    "254701254801255201255301255303255310255401255403255410255501255503255510255601255901"
    "259801259902500101500103500110500111500112500201500203500210500301500303500401500402"
    "500403500404500410500411500412500501500503500510500511500601500603500610500611500612"
    "500701500703500712500801500802500803500810500812500901500903500912501001501003501010"
    "501011501012501101501103501110501201501203501301501303501304501311501312501401501402"
    "501403501404501501501502501503501504501505501512501601501603501701501702501703501704"
    "501901501903501905502001502003502004502010502011502012502201502203502205502212502301"
    "502303502401502402502403502404502405502601502603502701502703502705502712502901502903"
    "503001503003503005503012503201503203503301503303503310503311503401503403503411503501"
    "503503503601503603503801503802503803503804503811503812503901503903503911503912504111"
    "504112504301504302504303504311504312504411504412504601504603504701504703504801504803"
    "504901504902504903504904504911504912505001505101505103505104505111505201505202505203"
    "505204505301505303505304505305505401505409505501505502505503505504505511505512505701"
    "505702505703505704505711505712505801505901509801509803509804509902510101510103510110"
    "510111510201510203510210510301510401510402510403510404510412510501510503510512510601"
    "510701510801510802510803510810510812510901511001511101511201511301511401511501511502"
    "511503511504511512511601511701511702511703511704511705511712511801511901511903511905"
    "511912512001512101512201512301512401512501512601512701512703512704512712512801512901"
    "513001513101513201513301513401513501513601513701513801513901514001514101514201514203"
    "514601514701514801514901515001515101515201515301515401515501515503515511515601515701"
    "515801515901519801519902520101520103520110520111520201520203520210520301520303520304"
    "520309520310520401520412520501520512520601520603520604520701520801520812520901520903"
    "520904520910521003521004521101521103521104521105521109521110521201521203521204521401"
    "521501521512521601521603521604521701521703521704521801521802521803521804521805521901"
    "529902800101800103800110800111800201800203800210800301800401800403800404800412800501"
    "800503800512800601800603800612800701800703800712800801800802800803800812800901800903"
    "800912801001801003801012801101801201801301801303801304801312801401801402801403801404"
    "801412801501801503801505801510801601801701801703801704801712801801801803801812801901"
    "801903801905801910802001802003802010802011802201802203802204802212802301802401802403"
    "802412802601802701802703802705802710802901803001803003803005803010803201803203803212"
    "803301803401803501803601803701803801803803803805803901804001804101804201804301804401"
    "804501804601804701804801804901805001805101805201805301805401805501805601805701805801"
    "805901809802809902900101900103900104900110900111900201900203900210900301900401900501"
    "900502900503900504900512900601900701900703900712900801900802900803900804900809900812"
    "900901901001901101901201901301901401901402901403901404901412901501901503901505901510"
    "901511901601901701901801901901901903901905901910901911902001902101902201902203902204"
    "902212902301902303902312902401902501902601902701902712902901903001903112903501903612"
    "904201904309904312904401904501904601904701904801904912905301905401905501905601905701"
    "905801905901909801909802909902";
static_assert(kKnownCodes.size() % 6 == 0);

bool IsKnownCode(std::string_view code) {
  std::size_t lo = 0;
  std::size_t hi = kKnownCodes.size() / 6;
  while (lo < hi) {
    const std::size_t mid = (lo + hi) / 2;
    const std::string_view at = kKnownCodes.substr(mid * 6, 6);
    if (at == code) {
      return true;
    }
    if (at < code) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return false;
}

bool IsHeader(EfactRecordType type) {
  return type == EfactRecordType::kSegment200 || type == EfactRecordType::kSegment300;
}

// Records 10…90: those with a record number (zone 2), a checksum and 6-digit error codes.
bool IsNumbered(EfactRecordType type) {
  return !IsHeader(type) && type != EfactRecordType::kDestination95 &&
         type != EfactRecordType::kTotal96;
}

std::optional<EfactRecordType> TypeFromCode(std::string_view code) {
  static constexpr std::array<std::pair<std::string_view, EfactRecordType>, 10> kTypes = {{
      {"10", EfactRecordType::kSender10},
      {"20", EfactRecordType::kInvoice20},
      {"25", EfactRecordType::kMediPrima25},
      {"50", EfactRecordType::kAct50},
      {"51", EfactRecordType::kInvolvement51},
      {"52", EfactRecordType::kEid52},
      {"80", EfactRecordType::kInvoiceEnd80},
      {"90", EfactRecordType::kSenderEnd90},
      {"95", EfactRecordType::kDestination95},
      {"96", EfactRecordType::kTotal96},
  }};
  for (const auto& [text, type] : kTypes) {
    if (text == code) {
      return type;
    }
  }
  return std::nullopt;
}

// "08" for zone "8", "43" for "43a"; "" for the header/95/96 zone names, which have no code.
std::string ZoneCodeDigits(EfactRecordType type, std::string_view zone) {
  if (!IsNumbered(type)) {
    return "";
  }
  std::string digits;
  for (char c : zone) {
    if (c < '0' || c > '9') {
      break;
    }
    digits += c;
  }
  if (digits.empty() || digits.size() > 2) {
    return "";
  }
  return digits.size() == 1 ? "0" + digits : digits;
}

std::string SignedText(std::int64_t cents, int digits) {
  const std::uint64_t magnitude =
      cents < 0 ? static_cast<std::uint64_t>(-(cents + 1)) + 1 : static_cast<std::uint64_t>(cents);
  std::string text = std::to_string(magnitude);
  if (static_cast<int>(text.size()) < digits) {
    text.insert(0, static_cast<std::size_t>(digits) - text.size(), '0');
  }
  return (cents < 0 ? "-" : "+") + text;
}

}  // namespace

std::string_view EfactRecordTypeCode(EfactRecordType type) {
  switch (type) {
    case EfactRecordType::kSegment200:
      return "200";
    case EfactRecordType::kSegment300:
      return "300";
    case EfactRecordType::kSender10:
      return "10";
    case EfactRecordType::kInvoice20:
      return "20";
    case EfactRecordType::kMediPrima25:
      return "25";
    case EfactRecordType::kAct50:
      return "50";
    case EfactRecordType::kInvolvement51:
      return "51";
    case EfactRecordType::kEid52:
      return "52";
    case EfactRecordType::kInvoiceEnd80:
      return "80";
    case EfactRecordType::kSenderEnd90:
      return "90";
    case EfactRecordType::kDestination95:
      return "95";
    case EfactRecordType::kTotal96:
      return "96";
  }
  return "";
}

EfactRecord EfactRecord::Blank(EfactRecordType type) {
  std::string text;
  for (const ZoneSpec& z : ZonesOf(type)) {
    const auto length = static_cast<std::size_t>(z.length);
    switch (z.kind) {
      case Kind::kText:
      case Kind::kFreeText:
        text.append(length, ' ');
        break;
      case Kind::kAmount:
        text += '+';
        text.append(length - 1, '0');
        break;
      default:
        text.append(length, '0');
        break;
    }
  }
  EfactRecord record(type, std::move(text), 0);
  if (type == EfactRecordType::kSegment200) {
    (void)record.SetText("200", kEfactInvoiceMessageType);
  } else if (type != EfactRecordType::kSegment300) {
    // Zone 1 (records 10…90) or 400/500 (records 95/96) holds the record type.
    const std::string_view first = ZonesOf(type).front().id;
    (void)record.SetText(first, EfactRecordTypeCode(type));
  }
  return record;
}

std::optional<EfactRecord> EfactRecord::FromText(std::string_view text) {
  if (text.size() != static_cast<std::size_t>(kEfactRecordLength)) {
    return std::nullopt;
  }
  const std::optional<EfactRecordType> type = TypeFromCode(text.substr(0, 2));
  if (!type) {
    return std::nullopt;
  }
  return EfactRecord(*type, std::string(text), 0);
}

std::string_view EfactRecord::Zone(std::string_view zone) const {
  const ZoneAt at = FindZone(type_, zone);
  if (at.spec == nullptr || static_cast<std::size_t>(at.offset + at.spec->length) > text_.size()) {
    return {};
  }
  return std::string_view(text_).substr(static_cast<std::size_t>(at.offset),
                                        static_cast<std::size_t>(at.spec->length));
}

std::optional<std::int64_t> EfactRecord::Number(std::string_view zone) const {
  const ZoneAt at = FindZone(type_, zone);
  if (at.spec == nullptr || !IsNumericKind(at.spec->kind)) {
    return std::nullopt;
  }
  return ParseDigits(Zone(zone));
}

std::optional<std::int64_t> EfactRecord::Amount(std::string_view zone) const {
  const ZoneAt at = FindZone(type_, zone);
  if (at.spec == nullptr || at.spec->kind != Kind::kAmount) {
    return std::nullopt;
  }
  const std::string_view text = Zone(zone);
  if (text.size() < 2 || (text[0] != '+' && text[0] != '-')) {
    return std::nullopt;
  }
  const std::optional<std::int64_t> magnitude = ParseDigits(text.substr(1));
  if (!magnitude) {
    return std::nullopt;
  }
  return text[0] == '-' ? -*magnitude : *magnitude;
}

Status EfactRecord::SetText(std::string_view zone, std::string_view value) {
  const ZoneAt at = FindZone(type_, zone);
  const std::string where =
      "record " + std::string(EfactRecordTypeCode(type_)) + " zone " + std::string(zone);
  if (at.spec == nullptr) {
    return Status::Invalid(where + " does not exist");
  }
  const auto length = static_cast<std::size_t>(at.spec->length);
  if (value.size() > length) {
    return Status::Invalid(where + ": value longer than the zone (" + std::to_string(length) +
                           " characters)");
  }
  if (!std::all_of(value.begin(), value.end(), Printable)) {
    return Status::Invalid(where + ": only printable ASCII characters are allowed");
  }
  std::string padded;
  if (IsNumericKind(at.spec->kind) || (at.spec->kind == Kind::kTextZeros && AllDigits(value))) {
    if (!AllDigits(value)) {
      return Status::Invalid(where + ": numeric zone takes digits only");
    }
    padded.assign(length - value.size(), '0');
    padded += value;
  } else if (at.spec->kind == Kind::kAmount) {
    if (value.size() != length || (value[0] != '+' && value[0] != '-') ||
        !AllDigits(value.substr(1))) {
      return Status::Invalid(where + ": amount zone takes a sign and " +
                             std::to_string(length - 1) + " digits");
    }
    padded = value;
  } else {
    padded = value;
    padded.append(length - value.size(), ' ');
  }
  text_.replace(static_cast<std::size_t>(at.offset), length, padded);
  return Status::Ok();
}

Status EfactRecord::SetNumber(std::string_view zone, std::uint64_t value) {
  return SetText(zone, std::to_string(value));
}

Status EfactRecord::SetAmount(std::string_view zone, std::int64_t cents) {
  const ZoneAt at = FindZone(type_, zone);
  if (at.spec == nullptr || at.spec->kind != Kind::kAmount) {
    return Status::Invalid("record " + std::string(EfactRecordTypeCode(type_)) + " zone " +
                           std::string(zone) + " is not an amount zone");
  }
  return SetText(zone, SignedText(cents, at.spec->length - 1));
}

int EfactRecordChecksum(std::string_view zones) {
  std::int64_t sum = 0;
  for (char c : zones) {
    sum += CharValue(c);
  }
  const int modulo = static_cast<int>(sum % 97);
  return modulo == 0 ? 97 : modulo;
}

int EfactNomenclatureChecksum(const std::vector<std::int64_t>& codes) {
  std::int64_t sum = 0;
  for (std::int64_t code : codes) {
    sum = (sum + code % 97) % 97;
  }
  return sum == 0 ? 97 : static_cast<int>(sum);
}

std::optional<std::string> DestinationFor(std::string_view mutuality_code,
                                          bool sender_is_medical_house, EfactFlavour flavour) {
  if (flavour == EfactFlavour::kMediPrima) {
    return std::string(kMediPrimaDestination);
  }
  if (mutuality_code.size() != 3 || !AllDigits(mutuality_code)) {
    return std::nullopt;
  }
  if (mutuality_code[0] != '3') {
    return std::string(mutuality_code);
  }
  static constexpr std::array<std::string_view, 10> kToSolidarisUnion = {
      "304", "305", "309", "311", "315", "317", "319", "322", "323", "325"};
  if (std::find(kToSolidarisUnion.begin(), kToSolidarisUnion.end(), mutuality_code) !=
      kToSolidarisUnion.end()) {
    return std::string("300");
  }
  return sender_is_medical_house ? std::string("306") : std::string(mutuality_code);
}

bool EfactFile::IsTest() const {
  return segment200.Zone("202") == "92";
}

std::string_view EfactFile::SenderNihii() const {
  for (const EfactRecord& r : records) {
    if (r.type() == EfactRecordType::kSender10) {
      const std::string_view zone = r.Zone("14");
      return zone.empty() ? zone : zone.substr(1);
    }
  }
  return {};
}

bool EfactFile::SenderIsMedicalHouse() const {
  const std::string_view nihii = SenderNihii();
  return !nihii.empty() && IsMedicalHouseNihii(nihii);
}

std::vector<EfactInvoice> EfactFile::Invoices() const {
  std::vector<EfactInvoice> invoices;
  std::optional<EfactInvoice> open;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const EfactRecord& r = records[i];
    switch (r.type()) {
      case EfactRecordType::kInvoice20:
        open = EfactInvoice{};
        open->first = i;
        open->destination = std::string(r.Zone("18"));
        open->affiliation = std::string(r.Zone("7"));
        break;
      case EfactRecordType::kMediPrima25:
        if (open) {
          open->mediprima = true;
        }
        break;
      case EfactRecordType::kInvoiceEnd80:
        if (open) {
          open->last = i;
          open->amount = r.Amount("19").value_or(0);
          invoices.push_back(std::move(*open));
          open.reset();
        }
        break;
      case EfactRecordType::kAct50:
      case EfactRecordType::kInvolvement51:
      case EfactRecordType::kEid52:
        break;
      default:
        open.reset();
        break;
    }
  }
  return invoices;
}

std::vector<std::string> EfactFile::Destinations() const {
  std::vector<std::string> destinations;
  for (const EfactRecord& r : records) {
    if (r.type() == EfactRecordType::kInvoice20) {
      destinations.emplace_back(r.Zone("18"));
    }
  }
  std::sort(destinations.begin(), destinations.end());
  destinations.erase(std::unique(destinations.begin(), destinations.end()), destinations.end());
  return destinations;
}

bool EfactFile::IsMediPrima() const {
  return std::any_of(records.begin(), records.end(), [](const EfactRecord& r) {
    return r.type() == EfactRecordType::kMediPrima25;
  });
}

std::optional<std::int64_t> EfactFile::TotalAmount() const {
  for (const EfactRecord& r : records) {
    if (r.type() == EfactRecordType::kSenderEnd90) {
      return r.Amount("19");
    }
  }
  return std::nullopt;
}

namespace {

constexpr std::size_t kMaxProblems = 200;

std::string PathOf(EfactRecordType type, std::string_view zone) {
  const std::string kind = IsHeader(type) ? "segment " : "record ";
  return kind + std::string(EfactRecordTypeCode(type)) + " zone " + std::string(zone);
}

class Reporter {
 public:
  explicit Reporter(std::vector<Problem>* out) : out_(out) {}

  void Add(Severity severity, std::string code, std::string message, int line, int column,
           std::string path) {
    if (full_) {
      return;
    }
    if (out_->size() >= kMaxProblems) {
      full_ = true;
      out_->push_back(Problem{"PSL-EFACT-TOO-MANY-PROBLEMS",
                              "more than " + std::to_string(kMaxProblems) +
                                  " problems: the rest of the file was not reported",
                              0, 0, "", "efact", Severity::kError});
      return;
    }
    if (severity == Severity::kError) {
      errors_ = true;
    }
    out_->push_back(Problem{std::move(code), std::move(message), line, column, std::move(path),
                            "efact", severity});
  }

  // A problem about `zone` of `record`: the eFact code RR ZZ `suffix` when the table has one,
  // else "PSL-EFACT-<rule>". `what` states the rule broken.
  void AtZone(const EfactRecord& record, std::string_view zone, std::string_view suffix,
              std::string_view rule, std::string_view what, Severity severity = Severity::kError) {
    std::string code;
    const std::string zz = ZoneCodeDigits(record.type(), zone);
    if (!zz.empty() && !suffix.empty()) {
      const std::string candidate =
          std::string(EfactRecordTypeCode(record.type())) + zz + std::string(suffix);
      if (IsKnownCode(candidate)) {
        code = candidate;
      }
    }
    if (code.empty()) {
      code = "PSL-EFACT-" + std::string(rule);
    }
    const ZoneAt at = FindZone(record.type(), zone);
    int column = at.spec == nullptr ? 1 : at.offset + 1;
    if (record.type() == EfactRecordType::kSegment300) {
      column += static_cast<int>(kSegment200Length);
    }
    const std::string path = PathOf(record.type(), zone);
    Add(severity, std::move(code), path + ": " + std::string(what), record.ordinal(), column, path);
  }

  bool errors() const { return errors_; }

  static constexpr std::size_t kSegment200Length = 67;

 private:
  std::vector<Problem>* out_;
  bool full_ = false;
  bool errors_ = false;
};

// Zone-by-zone checks that need no other record: digits, reserved zeros, dates, signs.
void CheckZones(const EfactRecord& record, Reporter& rep) {
  int offset = 0;
  const std::string_view text = record.text();
  for (const ZoneSpec& z : ZonesOf(record.type())) {
    const std::string_view value =
        text.substr(static_cast<std::size_t>(offset), static_cast<std::size_t>(z.length));
    offset += z.length;
    switch (z.kind) {
      case Kind::kNum:
      case Kind::kChecksum:
        if (!AllDigits(value)) {
          rep.AtZone(record, z.id, "01", "NUMERIC",
                     "numeric zone holds a character other than 0-9");
        }
        break;
      case Kind::kReserved:
        if (!AllChar(value, '0')) {
          const bool sub_b = z.id.back() == 'b';
          const std::string zz = ZoneCodeDigits(record.type(), z.id);
          const std::string b_code = std::string(EfactRecordTypeCode(record.type())) + zz + "09";
          rep.AtZone(record, z.id, sub_b && !zz.empty() && IsKnownCode(b_code) ? "09" : "01",
                     "RESERVED", "reserved zone must hold zeros");
        }
        break;
      case Kind::kDate:
        if (!IsCalendarDate(value)) {
          rep.AtZone(record, z.id, "01", "DATE", "not a calendar date in the form YYYYMMDD");
        }
        break;
      case Kind::kDateOpt:
        if (!AllChar(value, '0') && !IsCalendarDate(value)) {
          rep.AtZone(record, z.id, "01", "DATE",
                     "not a calendar date in the form YYYYMMDD (00000000 when absent)");
        }
        break;
      case Kind::kAmount:
        if (value[0] != '+' && value[0] != '-') {
          rep.AtZone(record, z.id, "05", "AMOUNT-SIGN", "amount must start with + or -");
        } else if (!AllDigits(value.substr(1))) {
          rep.AtZone(record, z.id, "01", "AMOUNT", "amount must be a sign followed by digits");
        }
        break;
      case Kind::kText:
      case Kind::kTextZeros:
      case Kind::kFreeText:
        break;  // printable ASCII is checked for the whole record
    }
  }
}

// Sign zone + digits zone of records 95/96 as one signed value.
std::optional<std::int64_t> SplitAmount(const EfactRecord& r, std::string_view sign_zone,
                                        std::string_view amount_zone) {
  const std::string_view sign = r.Zone(sign_zone);
  const std::optional<std::int64_t> magnitude = r.Number(amount_zone);
  if ((sign != "+" && sign != "-") || !magnitude) {
    return std::nullopt;
  }
  return sign == "-" ? -*magnitude : *magnitude;
}

bool IsZeros(std::string_view s) {
  return AllChar(s, '0');
}

// The checks that relate records to each other and the identifiers.
class FileChecker {
 public:
  FileChecker(const EfactFile& file, Reporter& rep) : file_(file), rep_(rep) {}

  void Run() {
    FindAnchors();
    CheckHeader();
    CheckOrder();
    CheckNumbering();
    CheckChecksums();
    CheckRecords();
    CheckTotals();
  }

 private:
  void FindAnchors() {
    for (const EfactRecord& r : file_.records) {
      if (r.type() == EfactRecordType::kSender10 && record10_ == nullptr) {
        record10_ = &r;
      }
    }
    // The NISS 2000-branch bound: the file's creation year (no clock: the check is about the
    // file, and a fixed bound keeps the codec deterministic).
    const std::string_view created = file_.segment300.Zone("302");
    if (IsCalendarDate(created)) {
      current_year_ = static_cast<int>(DigitsValue(created.substr(0, 4)));
    }
  }

  void CheckHeader() {
    const EfactRecord& s200 = file_.segment200;
    const EfactRecord& s300 = file_.segment300;
    if (s200.Zone("200") != kEfactInvoiceMessageType) {
      rep_.AtZone(s200, "200", "", "MESSAGE-TYPE",
                  "message type must be 920000 (an invoicing file); returns (920999, 931000…) "
                  "are not accepted here");
    }
    const std::string_view kind = s200.Zone("202");
    if (kind != "12" && kind != "92") {
      rep_.AtZone(s200, "202", "", "HEADER", "must be 12 (production) or 92 (test)");
    }
    const std::string_view instructions = s300.Zone("304");
    if (instructions != "0001999" && instructions != "9991999") {
      rep_.AtZone(s300, "304", "", "HEADER",
                  "instructions version must be 0001999 (production) or 9991999 (test)");
    } else if ((instructions == "9991999") != (kind == "92")) {
      rep_.AtZone(s300, "304", "", "TEST-FLAG",
                  "test instructions version 9991999 goes with segment 200 zone 202 = 92, and "
                  "only with it");
    }
    const std::string_view month = s300.Zone("300");
    if (AllDigits(month)) {
      const std::int64_t mm = DigitsValue(month.substr(4, 2));
      if (mm < 1 || mm > 12) {
        rep_.AtZone(s300, "300", "", "HEADER", "invoicing month must be YYYYMM with MM 01-12");
      }
    }
    if (record10_ == nullptr) {
      return;
    }
    const EfactRecord& r10 = *record10_;
    const std::optional<std::int64_t> year = r10.Number("22");
    const std::optional<std::int64_t> mon = r10.Number("23");
    const std::optional<std::int64_t> s300_month = s300.Number("300");
    if (year && mon && s300_month && *year * 100 + *mon != *s300_month) {
      rep_.AtZone(s300, "300", "", "HEADER-LINK",
                  "must equal record 10 zones 22-23 (invoicing year and month)");
    }
    if (s300.Zone("301") != r10.Zone("7")) {
      rep_.AtZone(s300, "301", "", "HEADER-LINK", "must equal record 10 zone 7 (sending number)");
    }
    if (s300.Zone("302") != r10.Zone("25")) {
      rep_.AtZone(s300, "302", "", "HEADER-LINK", "must equal record 10 zone 25 (creation date)");
    }
    if (s300.Zone("304") != r10.Zone("4")) {
      rep_.AtZone(s300, "304", "", "HEADER-LINK",
                  "must equal record 10 zone 4 (instructions version)");
    }
  }

  static bool In(std::optional<EfactRecordType> t, std::initializer_list<EfactRecordType> set) {
    return t && std::find(set.begin(), set.end(), *t) != set.end();
  }

  void CheckOrder() {
    using T = EfactRecordType;
    const auto& recs = file_.records;
    int count10 = 0;
    int count90 = 0;
    int count95 = 0;
    int count96 = 0;
    for (std::size_t i = 0; i < recs.size(); ++i) {
      const EfactRecord& r = recs[i];
      const std::optional<T> prev = i == 0 ? std::nullopt : std::optional<T>(recs[i - 1].type());
      const std::optional<T> next =
          i + 1 == recs.size() ? std::nullopt : std::optional<T>(recs[i + 1].type());
      const char* preceded = nullptr;
      const char* followed = nullptr;
      switch (r.type()) {
        case T::kSender10:
          ++count10;
          if (prev) {
            preceded = "record 10 must be the first record after the header";
          }
          if (!In(next, {T::kInvoice20})) {
            followed = "record 10 must be followed by a record 20";
          }
          break;
        case T::kInvoice20:
          if (!In(prev, {T::kSender10, T::kInvoiceEnd80})) {
            preceded = "record 20 must follow a record 10 or 80";
          }
          if (!In(next, {T::kMediPrima25, T::kAct50})) {
            followed = "record 20 must be followed by a record 25 or 50";
          }
          break;
        case T::kMediPrima25:
          if (!In(prev, {T::kInvoice20})) {
            preceded = "record 25 must follow a record 20";
          }
          if (!In(next, {T::kAct50})) {
            followed = "record 25 must be followed by a record 50";
          }
          break;
        case T::kAct50:
          if (!In(prev,
                  {T::kInvoice20, T::kMediPrima25, T::kAct50, T::kInvolvement51, T::kEid52})) {
            preceded = "record 50 must follow a record 20, 25, 50, 51 or 52";
          }
          if (!In(next, {T::kAct50, T::kInvolvement51, T::kEid52, T::kInvoiceEnd80})) {
            followed = "record 50 must be followed by a record 50, 51, 52 or 80";
          }
          break;
        case T::kInvolvement51:
          if (!In(prev, {T::kAct50})) {
            preceded = "record 51 must follow a record 50";
          }
          if (!In(next, {T::kAct50, T::kEid52, T::kInvoiceEnd80})) {
            followed = "record 51 must be followed by a record 50, 52 or 80";
          }
          break;
        case T::kEid52:
          if (!In(prev, {T::kAct50, T::kInvolvement51})) {
            preceded = "record 52 must follow a record 50 or 51";
          }
          if (!In(next, {T::kAct50, T::kInvoiceEnd80})) {
            followed = "record 52 must be followed by a record 50 or 80";
          }
          break;
        case T::kInvoiceEnd80:
          if (!In(prev, {T::kAct50, T::kInvolvement51, T::kEid52})) {
            preceded = "record 80 must follow a record 50, 51 or 52";
          }
          if (!In(next, {T::kInvoice20, T::kSenderEnd90})) {
            followed = "record 80 must be followed by a record 20 or 90";
          }
          break;
        case T::kSenderEnd90:
          ++count90;
          if (!In(prev, {T::kInvoiceEnd80})) {
            preceded = "record 90 must follow a record 80";
          }
          if (!In(next, {T::kDestination95})) {
            followed = "record 90 must be the last numbered record, followed by the records 95";
          }
          break;
        case T::kDestination95:
          ++count95;
          if (!In(prev, {T::kSenderEnd90, T::kDestination95})) {
            preceded = "record 95 must follow the record 90 or another record 95";
          }
          if (!In(next, {T::kDestination95, T::kTotal96})) {
            followed = "record 95 must be followed by a record 95 or 96";
          }
          break;
        case T::kTotal96:
          ++count96;
          if (!In(prev, {T::kDestination95})) {
            preceded = "record 96 must follow a record 95";
          }
          if (next) {
            followed = "record 96 must be the last record of the file";
          }
          break;
        case T::kSegment200:
        case T::kSegment300:
          break;
      }
      if (preceded != nullptr) {
        rep_.AtZone(r, ZonesOf(r.type()).front().id, "10", "ORDER", preceded);
      }
      if (followed != nullptr) {
        rep_.AtZone(r, ZonesOf(r.type()).front().id, "11", "ORDER", followed);
      }
    }
    if (count10 == 0) {
      rep_.Add(Severity::kError, "PSL-EFACT-MISSING-10", "record 10 (sender) is missing", 0, 0,
               "record 10");
    }
    if (count90 == 0) {
      rep_.Add(Severity::kError, "900104", "record 90 (sender footer) is missing", 0, 0,
               "record 90");
    }
    if (count95 == 0) {
      rep_.Add(Severity::kError, "PSL-EFACT-MISSING-95",
               "record 95 (segment 400, totals per destination) is missing", 0, 0, "record 95");
    }
    if (count96 == 0) {
      rep_.Add(Severity::kError, "PSL-EFACT-MISSING-96",
               "record 96 (segment 500, totals of the file) is missing", 0, 0, "record 96");
    }
    if (count10 > 1 || count90 > 1 || count96 > 1) {
      rep_.Add(Severity::kError, "PSL-EFACT-DUPLICATE",
               "records 10, 90 and 96 may appear only once per file", 0, 0, "");
    }
  }

  // Zone 2: record 10 is 000001, each next record the previous one + 1.
  void CheckNumbering() {
    const EfactRecord* prev = nullptr;
    for (const EfactRecord& r : file_.records) {
      if (!IsNumbered(r.type())) {
        continue;
      }
      const std::optional<std::int64_t> n = r.Number("2");
      if (r.type() == EfactRecordType::kSender10) {
        if (n && *n != 1) {
          rep_.AtZone(r, "1", "10", "SEQUENCE", "record 10 must have record number 000001");
        }
      } else if (prev != nullptr) {
        const std::optional<std::int64_t> p = prev->Number("2");
        if (n && p && *n != *p + 1) {
          rep_.AtZone(r, "2", "10", "SEQUENCE",
                      "record number must be the previous record's number + 1");
        }
      }
      prev = &r;
    }
  }

  void CheckChecksums() {
    for (const EfactRecord& r : file_.records) {
      if (!IsNumbered(r.type())) {
        continue;
      }
      const std::optional<std::int64_t> written = r.Number("99");
      const int computed = EfactRecordChecksum(std::string_view(r.text()).substr(0, 348));
      if (written && *written != computed) {
        rep_.AtZone(r, "99", "02", "CHECKSUM",
                    "record checksum does not match (sum of character values mod 97)");
      }
    }
  }

  // NIHII in a 12-digit zone: "0" + 11 digits. `optional`: all zeros means absent.
  void CheckNihiiZone(const EfactRecord& r, std::string_view zone, bool optional) {
    const std::string_view value = r.Zone(zone);
    if (!AllDigits(value)) {
      return;  // reported as non-numeric
    }
    if (IsZeros(value)) {
      if (!optional) {
        rep_.AtZone(r, zone, "03", "NIHII", "NIHII number is missing");
      }
      return;
    }
    if (value[0] != '0') {
      rep_.AtZone(r, zone, "04", "NIHII", "first digit must be 0 (11-digit NIHII right-aligned)");
      return;
    }
    const NihiiResult result = CheckNihii(value.substr(1));
    if (!result.ok()) {
      rep_.AtZone(r, zone, result.check == IdCheck::kBadCheckDigits ? "02" : "03", "NIHII",
                  "NIHII number: " + std::string(IdCheckText(result.check)));
    } else if (result.mod89) {
      rep_.AtZone(r, zone, "", "NIHII-MOD89",
                  "NIHII check digits match only the 89 - n mod 89 variant", Severity::kWarning);
    }
  }

  // Beneficiary identification: "00" + NISS/BIS (11 digits) when `is_niss`.
  void CheckNissZone(const EfactRecord& r, std::string_view zone, std::string_view value) {
    std::string_view niss = value;
    if (niss.size() == 13 && niss.substr(0, 2) == "00") {
      niss = niss.substr(2);
    }
    if (niss.size() != 11 || !AllDigits(niss)) {
      rep_.AtZone(r, zone, "03", "NISS",
                  "beneficiary NISS must be 11 digits right-aligned in the zone");
      return;
    }
    const NissResult result = CheckNiss(niss, current_year_);
    if (!result.ok()) {
      rep_.AtZone(r, zone, result.check == IdCheck::kBadCheckDigits ? "02" : "03", "NISS",
                  "beneficiary NISS: " + std::string(IdCheckText(result.check)));
    }
  }

  // Zones of `r` that must equal the same zones of `ref` (code RR ZZ 12).
  void CheckSame(const EfactRecord& r, const EfactRecord& ref,
                 std::initializer_list<std::string_view> zones) {
    for (std::string_view zone : zones) {
      if (r.Zone(zone) != ref.Zone(zone)) {
        rep_.AtZone(r, zone, "12", "CONSISTENCY",
                    "must equal zone " + std::string(zone) + " of the corresponding record " +
                        std::string(EfactRecordTypeCode(ref.type())));
      }
    }
  }

  void CheckOneOf(const EfactRecord& r, std::string_view zone,
                  std::initializer_list<std::string_view> allowed, std::string_view what) {
    const std::string_view value = r.Zone(zone);
    if (!AllDigits(value)) {
      return;
    }
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      rep_.AtZone(r, zone, "03", "VALUE", what);
    }
  }

  void CheckRecords() {
    const EfactRecord* r20 = nullptr;
    const EfactRecord* last50 = nullptr;
    std::string previous_destination;
    for (const EfactRecord& r : file_.records) {
      switch (r.type()) {
        case EfactRecordType::kSender10:
          Check10(r);
          break;
        case EfactRecordType::kInvoice20:
          Check20(r, previous_destination);
          previous_destination = std::string(r.Zone("18"));
          r20 = &r;
          last50 = nullptr;
          break;
        case EfactRecordType::kMediPrima25:
          Check25(r, r20);
          break;
        case EfactRecordType::kAct50:
          CheckNihiiZone(r, "14", true);
          CheckNihiiZone(r, "15", true);
          CheckNihiiZone(r, "24", true);
          CheckNihiiZone(r, "49", true);
          if (r20 != nullptr) {
            CheckSame(r, *r20, {"8", "9"});
            if (!AffiliationIsWaived(*r20)) {
              CheckSame(r, *r20, {"7"});
            }
          }
          last50 = &r;
          break;
        case EfactRecordType::kInvolvement51:
          CheckNihiiZone(r, "15", true);
          if (last50 != nullptr) {
            CheckSame(r, *last50, {"4", "5", "15", "19"});
          }
          if (r20 != nullptr) {
            CheckSame(r, *r20, {"8", "27"});
          }
          break;
        case EfactRecordType::kEid52:
          CheckNihiiZone(r, "15", true);
          if (last50 != nullptr) {
            CheckSame(r, *last50, {"4", "5", "15"});
          }
          if (r20 != nullptr) {
            CheckSame(r, *r20, {"8"});
          }
          break;
        case EfactRecordType::kInvoiceEnd80:
          CheckOneOf(r, "9", {"1", "2"}, "beneficiary sex code must be 1 or 2");
          CheckOneOf(r, "32", {"0", "1"}, "beneficiary identification flag must be 0 or 1");
          CheckNihiiZone(r, "14", false);
          if (r20 != nullptr) {
            CheckSame(r, *r20,
                      {"4", "5", "6a", "8", "9", "10", "13", "14", "17", "18", "22", "24", "32"});
            if (!AffiliationIsWaived(*r20)) {
              CheckSame(r, *r20, {"7"});
            }
          }
          r20 = nullptr;
          last50 = nullptr;
          break;
        case EfactRecordType::kSenderEnd90:
          if (r.Zone("7") == "000") {
            rep_.AtZone(r, "7", "03", "VALUE", "sending number must not be 000");
          }
          CheckNihiiZone(r, "14", false);
          if (record10_ != nullptr) {
            CheckSame(r, *record10_, {"7", "14", "22", "23", "27", "31", "36", "43a", "49"});
          }
          break;
        default:
          break;
      }
    }
  }

  // The affiliation mutuality of the 50s/80 need not repeat record 20's for the unions 2, 4
  // and 5 (500712: "ne s'applique pas aux unions nationales 2, 4 et 5"), whose record 20 carries
  // 000 (FH writes 000 in 20 for 2xx/4xx/5xx but keeps 4xx in 50/80). Applied to 80 too
  // (inferred: FH's 80 keeps 4xx as well).
  static bool AffiliationIsWaived(const EfactRecord& r20) {
    const std::string_view destination = r20.Zone("18");
    const char union_digit = destination.empty() ? '0' : destination[0];
    return r20.Zone("7") == "000" || union_digit == '2' || union_digit == '4' || union_digit == '5';
  }

  void Check10(const EfactRecord& r) {
    if (r.Zone("7") == "000") {
      rep_.AtZone(r, "7", "03", "VALUE", "sending number must not be 000");
    }
    const std::optional<std::int64_t> month = r.Number("23");
    if (month && (*month < 1 || *month > 12)) {
      rep_.AtZone(r, "23", "03", "VALUE", "invoicing month must be 01-12");
    }
    if (AllDigits(r.Zone("22")) && r.Zone("22")[0] != '0') {
      rep_.AtZone(r, "22", "04", "VALUE", "first digit of the 5-digit year must be 0");
    }
    CheckOneOf(r, "4", {"0001999", "9991999"},
               "instructions version must be 0001999 (production) or 9991999 (test)");
    CheckNihiiZone(r, "14", false);
    const std::string_view cbe = r.Zone("27");
    if (AllDigits(cbe) && !IsZeros(cbe) && CheckCbe(cbe) != IdCheck::kValid) {
      rep_.AtZone(r, "27", "02", "CBE", "CBE number: " + std::string(IdCheckText(CheckCbe(cbe))));
    }
  }

  void Check20(const EfactRecord& r, const std::string& previous_destination) {
    CheckOneOf(r, "9", {"1", "2"}, "beneficiary sex code must be 1 or 2");
    CheckOneOf(r, "32", {"0", "1"}, "beneficiary identification flag must be 0 or 1");
    if (r.Zone("32") == "1" && AllDigits(r.Zone("8"))) {
      CheckNissZone(r, "8", r.Zone("8"));
    } else if (IsZeros(r.Zone("8"))) {
      rep_.AtZone(r, "8", "10", "BENEFICIARY", "beneficiary identification is missing");
    }
    CheckNihiiZone(r, "14", false);
    CheckNihiiZone(r, "15", true);
    if (record10_ != nullptr && AllDigits(r.Zone("14")) && r.Zone("14") != record10_->Zone("14")) {
      rep_.AtZone(r, "14", "12", "CONSISTENCY",
                  "invoicing institution must equal record 10 zone 14 (third-party number)");
    }
    const std::string_view destination = r.Zone("18");
    if (!AllDigits(destination)) {
      return;
    }
    if (destination == "000") {
      rep_.AtZone(r, "18", "03", "DESTINATION", "destination mutuality must not be 000");
      return;
    }
    if (!previous_destination.empty() && destination < previous_destination) {
      rep_.AtZone(r, "18", "12", "DESTINATION",
                  "invoices must be sorted by destination mutuality (lower than the previous one)");
    }
    const std::string_view affiliation = r.Zone("7");
    if (AllDigits(affiliation) && affiliation != "000") {
      const std::optional<std::string> expected =
          DestinationFor(affiliation, file_.SenderIsMedicalHouse());
      if (expected && *expected != destination) {
        rep_.AtZone(r, "18", "", "DESTINATION",
                    "destination does not follow from the affiliation mutuality (zone 7) and the "
                    "routing rules (Solidaris 304…325 → 300, other 3xx → own code or 306 for a "
                    "medical house, others → own code)");
      }
    }
  }

  void Check25(const EfactRecord& r, const EfactRecord* r20) {
    if (AllDigits(r.Zone("18")) && r.Zone("18") != kMediPrimaDestination) {
      rep_.AtZone(r, "18", "03", "DESTINATION", "MediPrima destination mutuality must be 690");
    }
    CheckOneOf(r, "32", {"1"}, "MediPrima beneficiary identification flag must be 1");
    CheckNihiiZone(r, "14", false);
    CheckNihiiZone(r, "15", true);
    std::string_view id = r.Zone("8");
    while (!id.empty() && id.back() == ' ') {
      id.remove_suffix(1);
    }
    if (id.empty()) {
      rep_.AtZone(r, "8", "10", "BENEFICIARY", "beneficiary identification is missing");
    } else {
      CheckNissZone(r, "8", id);
    }
    if (r20 != nullptr) {
      if (r.Zone("24") != r20->Zone("24")) {
        rep_.AtZone(r, "24", "03", "CONSISTENCY", "must equal record 20 zone 24 (invoice number)");
      }
      if (r20->Zone("18") != kMediPrimaDestination) {
        rep_.AtZone(*r20, "18", "", "DESTINATION",
                    "an invoice with a record 25 (MediPrima) must have destination 690");
      }
    }
  }

  struct Totals {
    std::int64_t amount = 0;
    std::int64_t records = 0;
    std::vector<std::int64_t> codes50;  // zone 4 of the records 50
    std::vector<std::int64_t> codes;    // zone 4 of the records 50, 51 and 52
  };

  void CheckTotals() {
    std::map<std::string, Totals> per_destination;
    Totals file;
    std::int64_t numbered = 0;
    // The open invoice.
    const EfactRecord* r20 = nullptr;
    Totals invoice;
    std::int64_t fee = 0;
    std::int64_t supplement = 0;
    for (const EfactRecord& r : file_.records) {
      if (IsNumbered(r.type())) {
        ++numbered;
      }
      if (r20 != nullptr) {
        ++invoice.records;
      }
      switch (r.type()) {
        case EfactRecordType::kInvoice20:
          r20 = &r;
          invoice = Totals{};
          invoice.records = 1;
          fee = 0;
          supplement = 0;
          break;
        case EfactRecordType::kAct50:
          invoice.amount += r.Amount("19").value_or(0);
          fee += r.Amount("27").value_or(0);
          supplement += r.Amount("30").value_or(0);
          if (const auto code = r.Number("4")) {
            invoice.codes50.push_back(*code);
            invoice.codes.push_back(*code);
          }
          break;
        case EfactRecordType::kInvolvement51:
        case EfactRecordType::kEid52:
          if (const auto code = r.Number("4")) {
            invoice.codes.push_back(*code);
          }
          break;
        case EfactRecordType::kInvoiceEnd80:
          if (r20 == nullptr) {
            break;
          }
          CheckAmount(r, "19", invoice.amount,
                      "invoice total must equal the sum of zone 19 of its records 50");
          CheckAmount(r, "27", fee,
                      "personal share total must equal the sum of zone 27 of its records 50");
          CheckAmount(r, "30", supplement,
                      "supplement total must equal the sum of zone 30 of its records 50");
          if (const auto written = r.Number("98");
              written && *written != EfactNomenclatureChecksum(invoice.codes)) {
            rep_.AtZone(r, "98", "02", "NOMENCLATURE-CHECKSUM",
                        "invoice control number must be the sum of the nomenclature codes of "
                        "its records 50, 51 and 52 mod 97 (0 → 97)");
          }
          {
            Totals& dest = per_destination[std::string(r20->Zone("18"))];
            dest.amount += invoice.amount;
            dest.records += invoice.records;
            dest.codes50.insert(dest.codes50.end(), invoice.codes50.begin(), invoice.codes50.end());
            dest.codes.insert(dest.codes.end(), invoice.codes.begin(), invoice.codes.end());
            file.amount += invoice.amount;
            file.codes.insert(file.codes.end(), invoice.codes.begin(), invoice.codes.end());
          }
          r20 = nullptr;
          break;
        case EfactRecordType::kSenderEnd90:
          CheckAmount(r, "19", file.amount,
                      "file total must equal the sum of zone 19 of the records 80");
          if (const auto written = r.Number("98");
              written && *written != EfactNomenclatureChecksum(file.codes)) {
            rep_.AtZone(r, "98", "02", "NOMENCLATURE-CHECKSUM",
                        "file control number must be the sum of the nomenclature codes of all "
                        "records 50, 51 and 52 mod 97 (0 → 97)");
          }
          break;
        default:
          break;
      }
    }
    CheckDestinationRecords(per_destination);
    CheckTotalRecord(per_destination, file, numbered);
  }

  void CheckAmount(const EfactRecord& r, std::string_view zone, std::int64_t expected,
                   std::string_view what) {
    const std::optional<std::int64_t> written = r.Amount(zone);
    if (written && *written != expected) {
      rep_.AtZone(r, zone, "", "TOTAL", what);
    }
  }

  void CheckSplitAmount(const EfactRecord& r, std::string_view sign_zone,
                        std::string_view amount_zone, std::int64_t expected,
                        std::string_view what) {
    const std::string_view sign = r.Zone(sign_zone);
    if (sign != "+" && sign != "-") {
      rep_.AtZone(r, sign_zone, "", "AMOUNT-SIGN", "sign must be + or -");
      return;
    }
    const std::optional<std::int64_t> written = SplitAmount(r, sign_zone, amount_zone);
    if (written && *written != expected) {
      rep_.AtZone(r, amount_zone, "", "TOTAL", what);
    }
  }

  void CheckDestinationRecords(const std::map<std::string, Totals>& per_destination) {
    std::vector<std::string> seen;
    const std::string_view reference = file_.segment200.Zone("204");
    for (const EfactRecord& r : file_.records) {
      if (r.type() != EfactRecordType::kDestination95) {
        continue;
      }
      const std::string destination(r.Zone("401"));
      if (std::find(seen.begin(), seen.end(), destination) != seen.end()) {
        rep_.AtZone(r, "401", "", "DESTINATION", "a second record 95 for the same destination");
        continue;
      }
      seen.push_back(destination);
      const auto it = per_destination.find(destination);
      if (it == per_destination.end()) {
        rep_.AtZone(r, "401", "", "DESTINATION",
                    "no invoice (record 20 zone 18) has this destination");
        continue;
      }
      const Totals& t = it->second;
      if (reference.size() == 14 && r.Zone("402") != reference.substr(2)) {
        rep_.AtZone(r, "402", "", "HEADER-LINK",
                    "must be the last 12 digits of segment 200 zone 204 (message reference)");
      }
      CheckSplitAmount(r, "403", "404", t.amount,
                       "amount must equal the sum of zone 19 of this destination's records 80");
      CheckSplitAmount(r, "407", "408", t.amount,
                       "amount A + B must equal the sum of zone 19 of this destination's "
                       "records 80");
      const std::string_view sign_b = r.Zone("405");
      if (sign_b != "+" && sign_b != "-" && sign_b != " ") {
        rep_.AtZone(r, "405", "", "AMOUNT-SIGN", "sign must be +, - or blank");
      }
      if (const auto b = r.Number("406"); b && *b != 0) {
        rep_.AtZone(r, "406", "", "TOTAL", "account B amount must be zero");
      }
      if (const auto count = r.Number("409"); count && *count != t.records) {
        rep_.AtZone(r, "409", "", "COUNT",
                    "must equal the number of records 20 to 80 of this destination");
      }
      if (const auto cs = r.Number("410"); cs && *cs != EfactNomenclatureChecksum(t.codes50) &&
                                           *cs != EfactNomenclatureChecksum(t.codes)) {
        rep_.AtZone(r, "410", "", "NOMENCLATURE-CHECKSUM",
                    "must be the sum of the nomenclature codes of this destination's records 50 "
                    "mod 97 (0 → 97)");
      }
    }
    for (const auto& [destination, totals] : per_destination) {
      if (std::find(seen.begin(), seen.end(), destination) == seen.end()) {
        rep_.Add(Severity::kError, "PSL-EFACT-DESTINATION",
                 "record 95: destination of some invoices (record 20 zone 18) has no record 95", 0,
                 0, "record 95");
      }
    }
  }

  void CheckTotalRecord(const std::map<std::string, Totals>& per_destination, const Totals& file,
                        std::int64_t numbered) {
    for (const EfactRecord& r : file_.records) {
      if (r.type() != EfactRecordType::kTotal96) {
        continue;
      }
      const std::string_view federation = r.Zone("501");
      bool federation_ok = federation.size() == 3 && federation.substr(1) == "99";
      for (const auto& entry : per_destination) {
        if (!entry.first.empty() && !federation.empty() && entry.first[0] != federation[0]) {
          federation_ok = false;
        }
      }
      if (!federation_ok) {
        rep_.AtZone(r, "501", "", "FEDERATION",
                    "must be the destinations' union digit followed by 99 (e.g. 399)");
      }
      if (const auto unused = r.Number("502"); unused && *unused != 0) {
        rep_.AtZone(r, "502", "", "VALUE", "must be zero");
      }
      CheckSplitAmount(r, "503", "504", file.amount,
                       "amount must equal the sum of zone 19 of all records 80");
      CheckSplitAmount(r, "507", "508", file.amount,
                       "amount A + B must equal the sum of zone 19 of all records 80");
      const std::string_view sign_b = r.Zone("505");
      if (sign_b != "+" && sign_b != "-" && sign_b != " ") {
        rep_.AtZone(r, "505", "", "AMOUNT-SIGN", "sign must be +, - or blank");
      }
      if (const auto b = r.Number("506"); b && *b != 0) {
        rep_.AtZone(r, "506", "", "TOTAL", "account B amount must be zero");
      }
      if (const auto count = r.Number("509"); count && *count != numbered) {
        rep_.AtZone(r, "509", "", "COUNT", "must equal the number of records 10 to 90");
      }
      if (const auto cs = r.Number("510"); cs && *cs != EfactNomenclatureChecksum(file.codes)) {
        rep_.AtZone(r, "510", "", "NOMENCLATURE-CHECKSUM",
                    "must be the sum of the nomenclature codes of all records 50, 51 and 52 "
                    "mod 97 (0 → 97)");
      }
    }
  }

  const EfactFile& file_;
  Reporter& rep_;
  const EfactRecord* record10_ = nullptr;
  int current_year_ = 2100;
};

// First byte outside printable ASCII, or npos.
std::size_t FirstNonAscii(std::string_view s) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (!Printable(s[i])) {
      return i;
    }
  }
  return std::string_view::npos;
}

}  // namespace

StatusOr<EfactFile> ParseEfact(std::string_view bytes, std::vector<Problem>* problems) {
  Reporter rep(problems);
  bool malformed = false;
  const auto header_length = static_cast<std::size_t>(kEfactHeaderLength);
  const auto record_length = static_cast<std::size_t>(kEfactRecordLength);
  if (bytes.size() < header_length) {
    rep.Add(Severity::kError, bytes.empty() ? "PSL-EFACT-EMPTY" : "PSL-EFACT-TRUNCATED",
            bytes.empty() ? "the file is empty"
                          : "the file is shorter than its header (segments 200 and 300, 227 "
                            "characters)",
            0, 0, "segment 200");
    return Status::Malformed("eFact file: no complete header");
  }
  EfactFile file;
  const std::size_t segment200_length = Reporter::kSegment200Length;
  file.segment200 =
      EfactRecord(EfactRecordType::kSegment200, std::string(bytes.substr(0, segment200_length)), 0);
  file.segment300 = EfactRecord(
      EfactRecordType::kSegment300,
      std::string(bytes.substr(segment200_length, header_length - segment200_length)), 0);
  if (const std::size_t bad = FirstNonAscii(bytes.substr(0, header_length));
      bad != std::string_view::npos) {
    malformed = true;
    rep.Add(Severity::kError, "PSL-EFACT-CHARSET",
            "header: a byte outside printable ASCII (0x20-0x7E); the file must be plain ASCII "
            "without line breaks",
            0, static_cast<int>(bad) + 1, "segment 200");
  }
  CheckZones(file.segment200, rep);
  CheckZones(file.segment300, rep);

  const std::string_view body = bytes.substr(header_length);
  const std::size_t whole = body.size() / record_length;
  if (body.size() % record_length != 0) {
    malformed = true;
    rep.Add(Severity::kError, "PSL-EFACT-LENGTH",
            "file length is not 227 + a multiple of 350: a record is too short or too long, or "
            "the file is truncated (the last " +
                std::to_string(body.size() % record_length) + " characters are not a whole record)",
            static_cast<int>(whole) + 1, 1, "record");
  }
  for (std::size_t i = 0; i < whole; ++i) {
    const std::string_view text = body.substr(i * record_length, record_length);
    const int ordinal = static_cast<int>(i) + 1;
    if (const std::size_t bad = FirstNonAscii(text); bad != std::string_view::npos) {
      malformed = true;
      rep.Add(Severity::kError, "PSL-EFACT-CHARSET",
              "record: a byte outside printable ASCII (0x20-0x7E); the file must be plain ASCII "
              "without line breaks",
              ordinal, static_cast<int>(bad) + 1, "record");
    }
    const std::optional<EfactRecordType> type = TypeFromCode(text.substr(0, 2));
    if (!type) {
      rep.Add(Severity::kError, "PSL-EFACT-RECORD-TYPE",
              "record: unknown record type (allowed: 10, 20, 25, 50, 51, 52, 80, 90, 95, 96)",
              ordinal, 1, "record zone 1");
      continue;
    }
    file.records.push_back(EfactRecord(*type, std::string(text), ordinal));
    CheckZones(file.records.back(), rep);
  }
  FileChecker(file, rep).Run();
  if (!rep.errors()) {
    return file;
  }
  std::size_t errors = 0;
  for (const Problem& p : *problems) {
    errors += p.severity == Severity::kError ? 1 : 0;
  }
  const std::string summary = "eFact file: " + std::to_string(errors) + " error(s)";
  return malformed ? Status::Malformed(summary) : Status::Invalid(summary);
}

std::string WriteEfact(const EfactFile& file) {
  std::vector<EfactRecord> records;
  for (const EfactRecord& r : file.records) {
    if (IsNumbered(r.type())) {
      records.push_back(r);
    }
  }
  struct DestinationTotals {
    std::int64_t amount = 0;
    std::int64_t records = 0;
    std::vector<std::int64_t> codes50;
  };
  std::map<std::string, DestinationTotals> per_destination;
  std::int64_t file_amount = 0;
  std::vector<std::int64_t> file_codes;
  std::string destination;
  std::int64_t invoice_amount = 0;
  std::int64_t invoice_records = 0;
  std::int64_t fee = 0;
  std::int64_t supplement = 0;
  std::vector<std::int64_t> invoice_codes;
  std::vector<std::int64_t> invoice_codes50;
  bool in_invoice = false;
  std::uint64_t number = 0;
  for (EfactRecord& r : records) {
    (void)r.SetNumber("2", ++number);
    if (in_invoice) {
      ++invoice_records;
    }
    switch (r.type()) {
      case EfactRecordType::kInvoice20:
        in_invoice = true;
        destination = std::string(r.Zone("18"));
        invoice_amount = fee = supplement = 0;
        invoice_records = 1;
        invoice_codes.clear();
        invoice_codes50.clear();
        break;
      case EfactRecordType::kAct50:
        invoice_amount += r.Amount("19").value_or(0);
        fee += r.Amount("27").value_or(0);
        supplement += r.Amount("30").value_or(0);
        if (const auto code = r.Number("4")) {
          invoice_codes.push_back(*code);
          invoice_codes50.push_back(*code);
        }
        break;
      case EfactRecordType::kInvolvement51:
      case EfactRecordType::kEid52:
        if (const auto code = r.Number("4")) {
          invoice_codes.push_back(*code);
        }
        break;
      case EfactRecordType::kInvoiceEnd80: {
        (void)r.SetAmount("19", invoice_amount);
        (void)r.SetAmount("27", fee);
        (void)r.SetAmount("30", supplement);
        (void)r.SetNumber("98",
                          static_cast<std::uint64_t>(EfactNomenclatureChecksum(invoice_codes)));
        DestinationTotals& totals = per_destination[destination];
        totals.amount += invoice_amount;
        totals.records += invoice_records;
        totals.codes50.insert(totals.codes50.end(), invoice_codes50.begin(), invoice_codes50.end());
        file_amount += invoice_amount;
        file_codes.insert(file_codes.end(), invoice_codes.begin(), invoice_codes.end());
        in_invoice = false;
        break;
      }
      case EfactRecordType::kSenderEnd90:
        (void)r.SetAmount("19", file_amount);
        (void)r.SetNumber("98", static_cast<std::uint64_t>(EfactNomenclatureChecksum(file_codes)));
        break;
      default:
        break;
    }
  }
  std::string out = file.segment200.text() + file.segment300.text();
  for (EfactRecord& r : records) {
    (void)r.SetNumber("99", static_cast<std::uint64_t>(
                                EfactRecordChecksum(std::string_view(r.text()).substr(0, 348))));
    out += r.text();
  }
  const std::string_view reference = file.segment200.Zone("204");
  const std::string_view reference12 = reference.size() == 14 ? reference.substr(2) : reference;
  for (const auto& [code, totals] : per_destination) {
    EfactRecord r = EfactRecord::Blank(EfactRecordType::kDestination95);
    (void)r.SetText("401", code);
    (void)r.SetText("402", reference12);
    (void)r.SetText("403", totals.amount < 0 ? "-" : "+");
    (void)r.SetNumber("404", static_cast<std::uint64_t>(std::abs(totals.amount)));
    (void)r.SetText("405", "+");
    (void)r.SetText("407", totals.amount < 0 ? "-" : "+");
    (void)r.SetNumber("408", static_cast<std::uint64_t>(std::abs(totals.amount)));
    (void)r.SetNumber("409", static_cast<std::uint64_t>(totals.records));
    (void)r.SetNumber("410", static_cast<std::uint64_t>(EfactNomenclatureChecksum(totals.codes50)));
    out += r.text();
  }
  EfactRecord total = EfactRecord::Blank(EfactRecordType::kTotal96);
  const std::string federation = per_destination.empty() || per_destination.begin()->first.empty()
                                     ? std::string("999")
                                     : per_destination.begin()->first.substr(0, 1) + "99";
  (void)total.SetText("501", federation);
  (void)total.SetText("503", file_amount < 0 ? "-" : "+");
  (void)total.SetNumber("504", static_cast<std::uint64_t>(std::abs(file_amount)));
  (void)total.SetText("505", "+");
  (void)total.SetText("507", file_amount < 0 ? "-" : "+");
  (void)total.SetNumber("508", static_cast<std::uint64_t>(std::abs(file_amount)));
  (void)total.SetNumber("509", static_cast<std::uint64_t>(records.size()));
  (void)total.SetNumber("510", static_cast<std::uint64_t>(EfactNomenclatureChecksum(file_codes)));
  out += total.text();
  return out;
}

}  // namespace psl::codecs
