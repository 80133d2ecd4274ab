// Synthetic eFact 920000 files for tests and fuzz seeds. Every identifier is invented (or a
// DOMAIN.md worked example) and carries valid check digits; no real patient or provider.
#ifndef PSL_CODECS_TESTING_EFACT_TEST_SUPPORT_H_
#define PSL_CODECS_TESTING_EFACT_TEST_SUPPORT_H_

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/efact.h"

namespace psl::codecs::efact_test {

// 123456 mod 97 = 72 → check 25; qualification 004 (general practitioner).
inline constexpr std::string_view kSenderNihii = "12345625004";
// DOMAIN.md §2.2 worked example.
inline constexpr std::string_view kDoctorNihii = "11478761004";
// DOMAIN.md §2.1 worked examples (1985 and 2017 branches) and the synthetic BIS.
inline constexpr std::string_view kPatientNiss1 = "85073003328";
inline constexpr std::string_view kPatientNiss2 = "17073003384";
inline constexpr std::string_view kPatientBis = "85493000163";
inline constexpr std::string_view kSenderCbe = "0403019261";

struct SampleAct {
  std::int64_t code = 101032;  // nomenclature code
  std::int64_t amount = 2150;  // insurer share, cents
  std::int64_t fee = 400;      // patient share, cents
  std::int64_t supplement = 0;
  bool involvement51 = false;
  bool eid52 = false;
};

struct SampleInvoice {
  std::string affiliation = "319";
  std::string destination = "300";
  std::string niss{kPatientNiss1};
  std::int64_t number = 1;
  bool mediprima = false;
  std::vector<SampleAct> acts = {SampleAct{}};
};

inline void MustSet(Status status) {
  if (!status.ok()) {
    // A test fixture bug: stop loudly rather than produce a silently wrong sample.
    std::abort();
  }
}

inline EfactRecord Record20(const SampleInvoice& inv) {
  EfactRecord r = EfactRecord::Blank(EfactRecordType::kInvoice20);
  MustSet(r.SetText("7", inv.mediprima ? "000" : inv.affiliation));
  MustSet(r.SetText("8", "00" + inv.niss));
  MustSet(r.SetText("9", "1"));
  MustSet(r.SetText("10", "3"));
  MustSet(r.SetText("14", "0" + std::string(kSenderNihii)));
  MustSet(r.SetText("18", inv.destination));
  MustSet(r.SetNumber("24", static_cast<std::uint64_t>(inv.number)));
  MustSet(r.SetNumber("27", 110110));
  MustSet(r.SetText("28", "INV-" + std::to_string(inv.number)));
  MustSet(r.SetText("32", "1"));
  return r;
}

inline EfactFile SampleFile(const std::vector<SampleInvoice>& invoices) {
  EfactFile file;
  MustSet(file.segment200.SetText("201", "02"));
  MustSet(file.segment200.SetText("202", "92"));
  MustSet(file.segment200.SetText("204", "00000000012345"));
  MustSet(file.segment300.SetText("300", "202501"));
  MustSet(file.segment300.SetText("301", "001"));
  MustSet(file.segment300.SetText("302", "20250102"));
  MustSet(file.segment300.SetText("303", "BATCH-1"));
  MustSet(file.segment300.SetText("304", "9991999"));
  MustSet(file.segment300.SetText("305", "CONTACT"));
  MustSet(file.segment300.SetText("306", "TEST"));
  MustSet(file.segment300.SetText("307", "0212345678"));
  MustSet(file.segment300.SetText("308", "03"));
  MustSet(file.segment300.SetText("309", "01"));

  EfactRecord r10 = EfactRecord::Blank(EfactRecordType::kSender10);
  MustSet(r10.SetText("4", "9991999"));
  MustSet(r10.SetText("7", "001"));
  MustSet(r10.SetText("13", "040"));
  MustSet(r10.SetText("14", "0" + std::string(kSenderNihii)));
  MustSet(r10.SetText("22", "02025"));
  MustSet(r10.SetText("23", "01"));
  MustSet(r10.SetText("25", "20250102"));
  MustSet(r10.SetText("27", kSenderCbe));
  MustSet(r10.SetText("28", "BATCH-1"));
  MustSet(r10.SetText("31", "GEBABEBB"));
  MustSet(r10.SetText("36", "BE71096123456769"));
  file.records.push_back(r10);

  for (const SampleInvoice& inv : invoices) {
    const EfactRecord r20 = Record20(inv);
    file.records.push_back(r20);
    if (inv.mediprima) {
      EfactRecord r25 = EfactRecord::Blank(EfactRecordType::kMediPrima25);
      MustSet(r25.SetText("8", inv.niss));
      MustSet(r25.SetText("9", "1"));
      MustSet(r25.SetText("12", "1"));
      MustSet(r25.SetText("14", "0" + std::string(kSenderNihii)));
      MustSet(r25.SetText("18", kMediPrimaDestination));
      MustSet(r25.SetNumber("24", static_cast<std::uint64_t>(inv.number)));
      MustSet(r25.SetNumber("27", 1));
      MustSet(r25.SetText("28", "AMU-" + std::to_string(inv.number)));
      MustSet(r25.SetText("32", "1"));
      MustSet(r25.SetText("38", "0207781243"));
      MustSet(r25.SetText("53", "20250101"));
      MustSet(r25.SetText("54a", "20251231"));
      MustSet(r25.SetNumber("56", 123456));
      MustSet(r25.SetNumber("59", 1));
      file.records.push_back(r25);
    }
    for (const SampleAct& act : inv.acts) {
      EfactRecord r50 = EfactRecord::Blank(EfactRecordType::kAct50);
      MustSet(r50.SetNumber("4", static_cast<std::uint64_t>(act.code)));
      MustSet(r50.SetText("5", "20250110"));
      MustSet(r50.SetText("6a", "20250110"));
      MustSet(r50.SetText("7", r20.Zone("7")));
      MustSet(r50.SetText("8", r20.Zone("8")));
      MustSet(r50.SetText("9", "1"));
      MustSet(r50.SetText("13", "990"));
      MustSet(r50.SetText("15", "0" + std::string(kDoctorNihii)));
      MustSet(r50.SetText("16", "1"));
      MustSet(r50.SetAmount("19", act.amount));
      MustSet(r50.SetAmount("22", 1));
      MustSet(r50.SetAmount("27", act.fee));
      MustSet(r50.SetText("28", "ACT"));
      MustSet(r50.SetAmount("30", act.supplement));
      MustSet(r50.SetText("32", "0"));
      MustSet(r50.SetText("47", "+0000000"));
      file.records.push_back(r50);
      if (act.involvement51) {
        EfactRecord r51 = EfactRecord::Blank(EfactRecordType::kInvolvement51);
        MustSet(r51.SetNumber("4", static_cast<std::uint64_t>(act.code)));
        MustSet(r51.SetText("5", "20250110"));
        MustSet(r51.SetText("8", r20.Zone("8")));
        MustSet(r51.SetText("15", r50.Zone("15")));
        MustSet(r51.SetAmount("19", act.amount));
        MustSet(r51.SetText("27", r20.Zone("27")));
        MustSet(r51.SetText("42", "AGREEMENT-REF"));
        MustSet(r51.SetText("55", "20250105"));
        file.records.push_back(r51);
      }
      if (act.eid52) {
        EfactRecord r52 = EfactRecord::Blank(EfactRecordType::kEid52);
        MustSet(r52.SetNumber("4", static_cast<std::uint64_t>(act.code)));
        MustSet(r52.SetText("5", "20250110"));
        MustSet(r52.SetText("6a", "20250110"));
        MustSet(r52.SetText("8", r20.Zone("8")));
        MustSet(r52.SetText("9", "1"));
        MustSet(r52.SetText("10", "1"));
        MustSet(r52.SetText("12", "0930"));
        MustSet(r52.SetText("15", r50.Zone("15")));
        MustSet(r52.SetText("16", "592000123456"));
        file.records.push_back(r52);
      }
    }
    EfactRecord r80 = EfactRecord::Blank(EfactRecordType::kInvoiceEnd80);
    for (std::string_view zone :
         {"4", "5", "6a", "7", "8", "9", "10", "13", "14", "17", "18", "22", "24", "32"}) {
      MustSet(r80.SetText(zone, r20.Zone(zone)));
    }
    MustSet(r80.SetText("20", "20250102"));
    MustSet(r80.SetText("28", r20.Zone("28")));
    file.records.push_back(r80);
  }

  EfactRecord r90 = EfactRecord::Blank(EfactRecordType::kSenderEnd90);
  for (std::string_view zone : {"7", "14", "22", "23", "27", "31", "36"}) {
    MustSet(r90.SetText(zone, r10.Zone(zone)));
  }
  MustSet(r90.SetText("28", "202501"));
  file.records.push_back(r90);
  return file;
}

// Two invoices for two Solidaris destinations of one union (as a file goes to one federation):
// mutuality 319 → 300, then 306 → 306 (ordinary sender); the second act has a 51 and a 52.
inline EfactFile SampleFile() {
  SampleInvoice first;
  first.affiliation = "319";
  first.destination = "300";
  first.niss = std::string(kPatientNiss2);
  first.number = 1;
  first.acts = {SampleAct{101032, 2150, 400, 0}, SampleAct{102771, 1890, 0, 250}};
  SampleInvoice second;
  second.affiliation = "306";
  second.destination = "306";
  second.number = 2;
  second.acts = {SampleAct{101076, 3000, 0, 0, true, true}};
  return SampleFile({first, second});
}

// A MediPrima (AMU) file: one invoice with a record 25, destination 690.
inline EfactFile SampleMediPrimaFile() {
  SampleInvoice amu;
  amu.mediprima = true;
  amu.destination = std::string(kMediPrimaDestination);
  amu.niss = std::string(kPatientBis);
  return SampleFile({amu});
}

// The bytes of the record with `ordinal` (record 10 = 1) in a written file.
inline std::string_view RecordAt(std::string_view bytes, int ordinal) {
  return bytes.substr(static_cast<std::size_t>(kEfactHeaderLength) +
                          static_cast<std::size_t>(ordinal - 1) * kEfactRecordLength,
                      kEfactRecordLength);
}

// Sets `zone` of the record with `ordinal` to `value`; recomputes its checksum (zone 99) unless
// `keep_checksum` (records 95/96 have none).
inline std::string Patch(std::string bytes, int ordinal, std::string_view zone,
                         std::string_view value, bool keep_checksum = false) {
  std::optional<EfactRecord> r = EfactRecord::FromText(RecordAt(bytes, ordinal));
  if (!r) {
    std::abort();
  }
  MustSet(r->SetText(zone, value));
  if (!keep_checksum && !r->Zone("99").empty()) {
    MustSet(r->SetNumber("99", static_cast<std::uint64_t>(EfactRecordChecksum(
                                   std::string_view(r->text()).substr(0, 348)))));
  }
  bytes.replace(static_cast<std::size_t>(kEfactHeaderLength) +
                    static_cast<std::size_t>(ordinal - 1) * kEfactRecordLength,
                kEfactRecordLength, r->text());
  return bytes;
}

}  // namespace psl::codecs::efact_test

#endif  // PSL_CODECS_TESTING_EFACT_TEST_SUPPORT_H_
