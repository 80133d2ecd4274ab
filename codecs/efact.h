// eFact 920000 flat file (third-party-payer invoicing, DOMAIN.md §4.3): a table-driven codec that
// cuts the file into its segments and records, checks every zone (type, reserved zeros, dates,
// identifiers with their check digits), the record order, the per-record checksum, the
// nomenclature checksums and every total that must add up across records, and writes a file
// back (filling record numbers, checksums and totals). Synchronous, Asio-free, never throws on
// input; all functions are thread-safe (no shared state).
//
// File layout (no separators between records; ASCII only):
//   header  = segment 200 (67 characters) + segment 300 (160 characters)
//   records = 350 characters each: 10, then per patient invoice 20 [25] (50 [51] [52])+ 80, then
//             90, then one record 95 (segment 400) per destination mutuality, then one record 96
//             (segment 500).
//
// Where each layout fact comes from (public code, read with the `search` tool; nothing copied):
//   FH = icure/freehealth-connector, src/main/kotlin/org/taktik/freehealth/middleware/format/
//   TK = taktik/freehealth-connector (FH's predecessor), same path.
//   - zone positions/lengths/types of records 10 (FH efact/segments/Record10Description.kt
//   @4f086c06),
//     20, 50, 51 (FH …/Record{20,50,51}Description.kt @0a7cac36), 52 (FH …/Record52Description.kt
//     @006cbeaa), 80, 90 (FH …/Record{80,90}Description.kt @c28a9800);
//   - segments 200 (TK efact/segments/Segment200Description.kt @59fa3dbf), 300 (TK …/Segment300
//     Description.kt @b6775d95), 400/record 95 (TK …/Segment400Record95Description.kt
//     @6fc15df8), 500/record 96 (TK …/Segment500Record96Description.kt @59fa3dbf);
//   - record checksum (zone 99: sum of character values of all other zones, digit → value,
//     space → 10, A–Z/a–z → 11…36, else 37, mod 97, 0 → 97) FH WriterSession.kt @c28a9800;
//     segments 200–500 carry no record checksum (FH writes them "without checksum");
//   - record order, record numbering from 1 (record 10) to record 90, the totals and the
//     nomenclature checksums: FH efact/BelgianInsuranceInvoicingFormatWriter.kt @d0607ab5 and
//     makeFlatFileCore in FH's EfactServiceImpl.kt: 80 z19/z27/z30 = sums of the invoice's 50
//     z19/z27/z30; 80 z98 = (sum of zone 4 over the invoice's 50, 51 and 52) mod 97, 0 → 97;
//     90 z19 = sum of 80 z19; 90 z98 = same checksum over the whole file; per destination
//     (record 20 z18) one 95: z401 destination, z402 = segment 200 z204 (last 12 digits),
//     z403/z404 and z407/z408 = signed amount of that destination, z406 = 0, z409 = number of
//     records 20…80 of that destination, z410 = (sum of zone 4 of its records 50) mod 97, 0 → 97;
//     96: z501 = first digit of the destinations + "99", z502 = 0, amounts as 90 z19, z509 = all
//     records 10…90, z510 = 90 z98;
//   - Solidaris destinations (DestinationFor): FH getDestCode @d0607ab5; 690 for MediPrima:
//     DOMAIN.md §1.2.
//   - error codes: errors/EfactErrors.json; the FH reader (BelgianInsuranceInvoicingFormatReader.kt
//     @0a7cac36) reads a code as RR ZZ EE (record type, zone, error). Suffixes used here, checked
//     against the table's labels: 01 not numeric / reserved zone not zero / bad date format,
//     02 wrong check digits, 03 value not allowed, 04 first digit not zero, 05 sign not + or -,
//     09 reserved "b" sub-zone not zero, 10/11 not preceded/followed by an allowed record,
//     12 content differs from the corresponding record 10/20/50; 98 02 and 99 02 checksums.
//
// INFERRED (not backed by a layout file; review against the MyCareNet eFact cookbook):
//   - record 25 (MediPrima): FH's Record25Description.kt (@ddc55c4d, @232938a7) lists its zones
//     but without the reserved ones (154 characters). We place its zones at the positions of
//     the same zone numbers in record 20 (the error table names zones 3…59 for record 25 with the
//     same meanings as record 20's) and fill the gaps with reserved zones; zone 38 = CPAS CBE
//     (12) + zone 39 reserved (10); zones 49-51 = electronic AMU reference (22, FH has 21 at
//     "47,48,49", but the table requires 47/48 to be zero).
//   - record 20 zones 6a+6b (exit date) are read as one 8-digit date (FH keeps them apart there,
//     but merges them in records 50 and 80).
//   - z410 of record 95: FH sums zone 4 over records 50 only while 80/90/96 also count 51 and 52;
//     the parser accepts either sum, the writer writes FH's (50 only).
//   - z405 (sign of account B) of records 95/96: FH versions write "+", the record's sign or a
//     blank; any of "+", "-", " " is accepted; the writer writes "+".
//   - record 96 z501 and the federation: FH writes the batch's federation code with 00 → 99.
//   - zones 411/511 (271 characters) are treated as free reserved text (FH versions differ).
//   - the beneficiary identification (zone 8, 13 digits) holds a NISS/BIS ("00" + 11 digits)
//     when zone 32 = 1 (FH writes 1 exactly when it writes the SSIN), else the membership number.
//   - the affiliation (zone 7) of the records 50/80 must repeat record 20's except for the
//     unions 2, 4 and 5 (500712 says so for 50; applied to 80 too since FH writes 000 in 20 but
//     keeps 4xx in 50/80).
//   - a file's destinations must share one union digit (z501 of record 96 names one federation):
//     a file mixing unions gets PSL-EFACT-FEDERATION.
//   - record 10 zone 18 (profession code) is written by FH but must be zero per the error table
//     (101801): accepted either way.
#ifndef PSL_CODECS_EFACT_H_
#define PSL_CODECS_EFACT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "codecs/problem.h"

namespace psl::codecs {

inline constexpr std::string_view kEfactInvoiceMessageType = "920000";
inline constexpr std::string_view kMediPrimaDestination = "690";
inline constexpr int kEfactHeaderLength = 227;  // segment 200 (67) + segment 300 (160)
inline constexpr int kEfactRecordLength = 350;

enum class EfactRecordType {
  kSegment200,     // message type, references (header)
  kSegment300,     // invoicing month, sending number, creation date, contact (header)
  kSender10,       // record 10: the invoicing third party (sender)
  kInvoice20,      // record 20: one patient invoice (opens it)
  kMediPrima25,    // record 25: MediPrima/AMU data of the invoice (inferred layout)
  kAct50,          // record 50: one act
  kInvolvement51,  // record 51: insurer involvement (agreement reference) of the act above
  kEid52,          // record 52: eID reading of the act above
  kInvoiceEnd80,   // record 80: invoice footer with its totals
  kSenderEnd90,    // record 90: sender footer with the file's totals
  kDestination95,  // segment 400 / record 95: totals per destination mutuality
  kTotal96,        // segment 500 / record 96: totals of the file
};

// "10", "20"…, "200" and "300" for the header segments.
std::string_view EfactRecordTypeCode(EfactRecordType type);

struct EfactFile;
StatusOr<EfactFile> ParseEfact(std::string_view bytes, std::vector<Problem>* problems);

// One record or header segment, kept as its fixed-width text. Zones are named as in the eFact
// specification by their first zone number ("8" for zones 8a-8b, "6a" for 6a-6b, "404"…); asking
// for a zone the record does not have gives an empty view / nullopt / kInvalid. Value type.
class EfactRecord {
 public:
  // A record of `type` with every zone at its empty value (zeros, blanks, "+0…0" for amounts)
  // and its type zone set.
  static EfactRecord Blank(EfactRecordType type);

  // The 350-character record `text` as it stands (type from its first two characters), without
  // any check; nullopt when the length or the type is wrong. For tools and tests that patch a
  // written file; ParseEfact is the way to read one.
  static std::optional<EfactRecord> FromText(std::string_view text);

  EfactRecordType type() const { return type_; }
  const std::string& text() const { return text_; }
  // 1-based ordinal among the 350-character records of the parsed file (record 10 = 1); 0 for a
  // header segment or a record built in memory.
  int ordinal() const { return ordinal_; }

  std::string_view Zone(std::string_view zone) const;
  // The zone's digits as a number (numeric zones of at most 18 digits); nullopt otherwise.
  std::optional<std::int64_t> Number(std::string_view zone) const;
  // A signed amount zone ("+" or "-" then digits), in cents; nullopt when malformed.
  std::optional<std::int64_t> Amount(std::string_view zone) const;

  // Setters check the value fits the zone: kInvalid if the zone does not exist, the value is too
  // long, a numeric zone gets a non-digit or text is not printable ASCII. Numeric values are
  // right-aligned with zeros, text is left-aligned with blanks.
  Status SetText(std::string_view zone, std::string_view value);
  Status SetNumber(std::string_view zone, std::uint64_t value);
  Status SetAmount(std::string_view zone, std::int64_t cents);

  bool operator==(const EfactRecord& other) const {
    return type_ == other.type_ && text_ == other.text_;
  }

 private:
  friend StatusOr<EfactFile> ParseEfact(std::string_view bytes, std::vector<Problem>* problems);
  EfactRecord(EfactRecordType type, std::string text, int ordinal)
      : type_(type), text_(std::move(text)), ordinal_(ordinal) {}

  EfactRecordType type_ = EfactRecordType::kSender10;
  std::string text_;
  int ordinal_ = 0;
};

// One patient invoice: records 20 … 80 (indexes into EfactFile::records).
struct EfactInvoice {
  std::size_t first = 0;    // the record 20
  std::size_t last = 0;     // the record 80
  std::string destination;  // record 20 zone 18
  std::string affiliation;  // record 20 zone 7
  bool mediprima = false;   // has a record 25
  std::int64_t amount = 0;  // record 80 zone 19 (cents). Sensitive: never log.
};

// A parsed (or to-be-written) 920000 file.
struct EfactFile {
  EfactRecord segment200 = EfactRecord::Blank(EfactRecordType::kSegment200);
  EfactRecord segment300 = EfactRecord::Blank(EfactRecordType::kSegment300);
  // Every record after the header in file order: 10, 20, 25, 50, 51, 52, 80, 90, 95…, 96.
  // WriteEfact writes the records 10…90 and generates the 95s and the 96 itself.
  std::vector<EfactRecord> records;

  bool IsTest() const;                         // segment 200 zone 202 = 92
  std::string_view SenderNihii() const;        // record 10 zone 14, 11 digits; "" without record 10
  bool SenderIsMedicalHouse() const;           // IsMedicalHouseNihii(SenderNihii())
  std::vector<EfactInvoice> Invoices() const;  // well-formed 20…80 runs, in file order
  std::vector<std::string> Destinations() const;    // distinct record 20 zone 18, sorted
  bool IsMediPrima() const;                         // some invoice has a record 25
  std::optional<std::int64_t> TotalAmount() const;  // record 90 zone 19 (cents)
};

// Cuts and checks `bytes`. Every problem goes into *problems (must not be null): code = the
// 6-digit eFact code when the table has one for that record/zone/rule, else "PSL-EFACT-<RULE>";
// line = the record's ordinal (record 10 = 1; 0 for the header), column = the zone's 1-based
// start in the record (or in the header), path = "record 20 zone 7" / "segment 300 zone 302";
// document = "efact". Messages name the rule, never a value from the file.
// Returns the file when no error-severity problem was found (warnings allowed); else kMalformed
// when the bytes cannot be cut into a header and whole records (size, truncation, non-ASCII),
// kInvalid when they can but break a rule. At most 200 problems are listed.
StatusOr<EfactFile> ParseEfact(std::string_view bytes, std::vector<Problem>* problems);

// Writes `file`: the header segments as given, the records 10…90 of file.records (any 95/96 in
// it are ignored) with zone 2 renumbered from 1, the totals of every 80 and of the 90 (zones 19,
// 27, 30, 98) and each record's checksum (zone 99) computed, then one record 95 per destination
// (sorted) and the record 96. It does not repair anything else: ParseEfact of the result reports
// what is still wrong (order, identifiers, dates…). Never fails.
std::string WriteEfact(const EfactFile& file);

// Per-record checksum of DOMAIN.md §2.5 over `zones` (the record without its zone 99): 1…97.
int EfactRecordChecksum(std::string_view zones);
// (sum of the nomenclature codes) mod 97, 0 → 97.
int EfactNomenclatureChecksum(const std::vector<std::int64_t>& codes);

// The destination mutuality (record 20 zone 18) for a patient affiliated to `mutuality_code`
// (3 digits): Solidaris 304, 305, 309, 311, 315, 317, 319, 322, 323, 325 → 300; any other 3xx →
// itself, or 306 when the sender is a medical house; any other code → itself; MediPrima → 690
// whatever the affiliation. nullopt when `mutuality_code` is not 3 digits (and not MediPrima).
enum class EfactFlavour { kHcpfac, kMediPrima };
std::optional<std::string> DestinationFor(std::string_view mutuality_code,
                                          bool sender_is_medical_house,
                                          EfactFlavour flavour = EfactFlavour::kHcpfac);

}  // namespace psl::codecs

#endif  // PSL_CODECS_EFACT_H_
