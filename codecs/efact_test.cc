#include "codecs/efact.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "codecs/testing/efact_test_support.h"

#include <nlohmann/json.hpp>

namespace psl::codecs {
namespace {

using efact_test::kPatientNiss1;
using efact_test::kPatientNiss2;
using efact_test::kSenderNihii;
using efact_test::Patch;
using efact_test::RecordAt;
using efact_test::SampleFile;
using efact_test::SampleMediPrimaFile;
using ::testing::Contains;
using ::testing::Field;
using ::testing::IsEmpty;

// Ordinals of the records in SampleFile(): 10, 20, 50, 50, 80, 20, 50, 51, 52, 80, 90, 95 (300),
// 95 (306), 96.
constexpr int k10 = 1;
constexpr int kFirst20 = 2;
constexpr int kFirst50 = 3;
constexpr int kFirst80 = 5;
constexpr int kSecond20 = 6;
constexpr int kSecond50 = 7;
constexpr int k51 = 8;
constexpr int k52 = 9;
constexpr int kSecond80 = 10;
constexpr int k90 = 11;
constexpr int kFirst95 = 12;
constexpr int k96 = 14;

std::vector<Problem> ProblemsOf(std::string_view bytes) {
  std::vector<Problem> problems;
  (void)ParseEfact(bytes, &problems);
  return problems;
}

std::vector<std::string> CodesOf(const std::vector<Problem>& problems) {
  std::vector<std::string> codes;
  for (const Problem& p : problems) {
    codes.push_back(p.code);
  }
  return codes;
}

std::vector<std::string> CodesOf(std::string_view bytes) {
  return CodesOf(ProblemsOf(bytes));
}

// Overwrites bytes of the record with `ordinal` from 1-based `column`, bypassing the setters (to
// put what they refuse: letters in numeric zones, bad signs).
std::string Raw(std::string bytes, int ordinal, int column, std::string_view text) {
  bytes.replace(static_cast<std::size_t>(kEfactHeaderLength + (ordinal - 1) * kEfactRecordLength +
                                         column - 1),
                text.size(), text);
  return bytes;
}

const Problem* Find(const std::vector<Problem>& problems, std::string_view code) {
  for (const Problem& p : problems) {
    if (p.code == code) {
      return &p;
    }
  }
  return nullptr;
}

TEST(EfactWriteTest, WritesAHeaderAndWhole350CharacterRecords) {
  const std::string bytes = WriteEfact(SampleFile());
  ASSERT_EQ((bytes.size() - kEfactHeaderLength) % kEfactRecordLength, 0u);
  EXPECT_EQ((bytes.size() - kEfactHeaderLength) / kEfactRecordLength, 14u);
  EXPECT_EQ(bytes.substr(0, 6), "920000");
  EXPECT_EQ(RecordAt(bytes, k10).substr(0, 8), "10000001");
  EXPECT_EQ(RecordAt(bytes, k90).substr(0, 8), "90000011");
  EXPECT_EQ(RecordAt(bytes, kFirst95).substr(0, 2), "95");
  EXPECT_EQ(RecordAt(bytes, k96).substr(0, 2), "96");
}

TEST(EfactRoundTripTest, ParsingWhatWasWrittenGivesBackTheSameContent) {
  const std::string bytes = WriteEfact(SampleFile());
  std::vector<Problem> problems;
  const StatusOr<EfactFile> parsed = ParseEfact(bytes, &problems);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString()
                           << " first: " << (problems.empty() ? "" : problems[0].message);
  EXPECT_THAT(problems, IsEmpty());
  EXPECT_EQ(WriteEfact(*parsed), bytes);
  // The records 10…90 given to the writer come back with only numbers, checksums and totals
  // filled: compare the zones the sample set.
  const EfactFile original = SampleFile();
  ASSERT_EQ(parsed->records.size(), 14u);
  for (std::size_t i = 0; i < original.records.size(); ++i) {
    EXPECT_EQ(parsed->records[i].type(), original.records[i].type()) << i;
    EXPECT_EQ(parsed->records[i].Zone("28"), original.records[i].Zone("28")) << i;
    EXPECT_EQ(parsed->records[i].Zone("8"), original.records[i].Zone("8")) << i;
  }
  EXPECT_EQ(parsed->segment300, original.segment300);
}

TEST(EfactRoundTripTest, TypedAccessorsGiveWhatLaterStagesNeed) {
  std::vector<Problem> problems;
  const StatusOr<EfactFile> parsed = ParseEfact(WriteEfact(SampleFile()), &problems);
  ASSERT_TRUE(parsed.ok());
  EXPECT_TRUE(parsed->IsTest());
  EXPECT_EQ(parsed->SenderNihii(), kSenderNihii);
  EXPECT_FALSE(parsed->SenderIsMedicalHouse());
  EXPECT_FALSE(parsed->IsMediPrima());
  EXPECT_EQ(parsed->Destinations(), (std::vector<std::string>{"300", "306"}));
  const std::vector<EfactInvoice> invoices = parsed->Invoices();
  ASSERT_EQ(invoices.size(), 2u);
  EXPECT_EQ(invoices[0].destination, "300");
  EXPECT_EQ(invoices[0].affiliation, "319");
  EXPECT_EQ(invoices[0].amount, 2150 + 1890);
  EXPECT_EQ(invoices[1].destination, "306");
  EXPECT_EQ(invoices[1].affiliation, "306");
  EXPECT_EQ(invoices[1].first, 5u);
  EXPECT_EQ(invoices[1].last, 9u);
  EXPECT_EQ(parsed->TotalAmount(), 2150 + 1890 + 3000);
}

TEST(EfactWriteTest, FillsTheTotalsOfRecords80And90And95And96) {
  const std::string bytes = WriteEfact(SampleFile());
  const auto r80 = EfactRecord::FromText(RecordAt(bytes, kFirst80));
  ASSERT_TRUE(r80.has_value());
  EXPECT_EQ(r80->Amount("19"), 2150 + 1890);
  EXPECT_EQ(r80->Amount("27"), 400);
  EXPECT_EQ(r80->Amount("30"), 250);
  EXPECT_EQ(r80->Number("98"), EfactNomenclatureChecksum({101032, 102771}));
  const auto second80 = EfactRecord::FromText(RecordAt(bytes, kSecond80));
  // The act's code counts once for the 50, once for its 51 and once for its 52.
  EXPECT_EQ(second80->Number("98"), EfactNomenclatureChecksum({101076, 101076, 101076}));
  const auto r95 = EfactRecord::FromText(RecordAt(bytes, kFirst95));
  EXPECT_EQ(r95->Zone("401"), "300");
  EXPECT_EQ(r95->Zone("402"), "000000012345");
  EXPECT_EQ(r95->Zone("403"), "+");
  EXPECT_EQ(r95->Number("404"), 2150 + 1890);
  EXPECT_EQ(r95->Number("409"), 4);  // 20, 50, 50, 80
  const auto r96 = EfactRecord::FromText(RecordAt(bytes, k96));
  EXPECT_EQ(r96->Zone("501"), "399");
  EXPECT_EQ(r96->Number("508"), 2150 + 1890 + 3000);
  EXPECT_EQ(r96->Number("509"), 11);  // records 10…90
}

TEST(EfactRoundTripTest, AMediPrimaFileWithRecord25RoundTrips) {
  const std::string bytes = WriteEfact(SampleMediPrimaFile());
  std::vector<Problem> problems;
  const StatusOr<EfactFile> parsed = ParseEfact(bytes, &problems);
  ASSERT_TRUE(parsed.ok()) << (problems.empty() ? "" : problems[0].message);
  EXPECT_TRUE(parsed->IsMediPrima());
  EXPECT_EQ(parsed->Destinations(), std::vector<std::string>{"690"});
  EXPECT_EQ(WriteEfact(*parsed), bytes);
  const auto r96 = EfactRecord::FromText(RecordAt(bytes, 8));  // 10 20 25 50 80 90 95 96
  EXPECT_EQ(r96->Zone("501"), "699");
}

TEST(EfactChecksumTest, RecordChecksumFollowsTheCharacterValues) {
  EXPECT_EQ(EfactRecordChecksum(""), 97);   // 0 → 97
  EXPECT_EQ(EfactRecordChecksum("5"), 5);   // digit → its value
  EXPECT_EQ(EfactRecordChecksum(" "), 10);  // space → 10
  EXPECT_EQ(EfactRecordChecksum("A"), 11);  // letters → 11…36, case-insensitive
  EXPECT_EQ(EfactRecordChecksum("z"), 36);
  EXPECT_EQ(EfactRecordChecksum("+"), 37);    // anything else → 37
  EXPECT_EQ(EfactRecordChecksum("ZZZ"), 11);  // 108 mod 97
  EXPECT_EQ(EfactRecordChecksum(std::string(97, '1')), 97);
}

TEST(EfactChecksumTest, NomenclatureChecksumIsTheSumOfCodesMod97) {
  EXPECT_EQ(EfactNomenclatureChecksum({1, 2}), 3);
  EXPECT_EQ(EfactNomenclatureChecksum({97}), 97);
  EXPECT_EQ(EfactNomenclatureChecksum({}), 97);
  EXPECT_EQ(EfactNomenclatureChecksum({101032, 102771}), (101032 + 102771) % 97);
}

TEST(EfactChecksumTest, ACorruptedRecordChecksumIsReportedWithRecordZoneAndCode) {
  const std::string bytes =
      Patch(WriteEfact(SampleFile()), kSecond20, "28", "CHANGED", /*keep_checksum=*/true);
  std::vector<Problem> problems;
  const StatusOr<EfactFile> parsed = ParseEfact(bytes, &problems);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kInvalid);
  const Problem* p = Find(problems, "209902");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->line, kSecond20);
  EXPECT_EQ(p->column, 349);
  EXPECT_EQ(p->path, "record 20 zone 99");
  EXPECT_EQ(p->document, "efact");
}

TEST(EfactChecksumTest, EveryNumberedRecordTypeHasItsChecksumChecked) {
  const std::string valid = WriteEfact(SampleFile());
  for (int ordinal : {k10, kFirst50, k51, k52, kFirst80, k90}) {
    const std::string type(RecordAt(valid, ordinal).substr(0, 2));
    const std::string bad = Patch(valid, ordinal, "99", "00", /*keep_checksum=*/true);
    EXPECT_THAT(CodesOf(bad), Contains(type + "9902")) << type;
  }
}

TEST(EfactChecksumTest, AWrongInvoiceNomenclatureChecksumIsReported) {
  const std::string bytes = Patch(WriteEfact(SampleFile()), kFirst80, "98", "01");
  EXPECT_THAT(CodesOf(bytes), Contains("809802"));
}

TEST(EfactChecksumTest, AWrongFileNomenclatureChecksumIsReported) {
  const std::string bytes = Patch(WriteEfact(SampleFile()), k90, "98", "01");
  EXPECT_THAT(CodesOf(bytes), Contains("909802"));
}

TEST(EfactChecksumTest, AWrongDestinationNomenclatureChecksumIsReported) {
  const std::string bytes = Patch(WriteEfact(SampleFile()), kFirst95, "410", "01");
  const std::vector<Problem> problems = ProblemsOf(bytes);
  const Problem* p = Find(problems, "PSL-EFACT-NOMENCLATURE-CHECKSUM");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->path, "record 95 zone 410");
  EXPECT_EQ(p->column, 76);
}

TEST(EfactChecksumTest, Zone410AcceptsTheSumOverRecords5051And52Too) {
  // FH counts only the 50s for z410 but 50+51+52 elsewhere; both sums are accepted.
  const int all = EfactNomenclatureChecksum({101076, 101076, 101076});
  const std::string bytes =
      Patch(WriteEfact(SampleFile()), kFirst95 + 1, "410", std::to_string(all));
  std::vector<Problem> problems;
  EXPECT_TRUE(ParseEfact(bytes, &problems).ok());
}

TEST(EfactTotalsTest, AnInvoiceTotalThatIsNotTheSumOfItsActsIsRefused) {
  const std::vector<Problem> problems =
      ProblemsOf(Patch(WriteEfact(SampleFile()), kFirst80, "19", "+00000000001"));
  const Problem* p = Find(problems, "PSL-EFACT-TOTAL");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->line, kFirst80);
  EXPECT_EQ(p->path, "record 80 zone 19");
}

TEST(EfactTotalsTest, PersonalShareAndSupplementTotalsMustAddUp) {
  const std::string valid = WriteEfact(SampleFile());
  EXPECT_THAT(ProblemsOf(Patch(valid, kFirst80, "27", "+000000001")),
              Contains(Field(&Problem::path, "record 80 zone 27")));
  EXPECT_THAT(ProblemsOf(Patch(valid, kFirst80, "30", "+000000001")),
              Contains(Field(&Problem::path, "record 80 zone 30")));
}

TEST(EfactTotalsTest, TheFileTotalMustBeTheSumOfTheInvoices) {
  EXPECT_THAT(ProblemsOf(Patch(WriteEfact(SampleFile()), k90, "19", "+00000000002")),
              Contains(Field(&Problem::path, "record 90 zone 19")));
}

TEST(EfactTotalsTest, DestinationAmountsAndCountsMustAddUp) {
  const std::string valid = WriteEfact(SampleFile());
  EXPECT_THAT(ProblemsOf(Patch(valid, kFirst95, "404", "00000000001")),
              Contains(Field(&Problem::path, "record 95 zone 404")));
  EXPECT_THAT(ProblemsOf(Patch(valid, kFirst95, "408", "00000000001")),
              Contains(Field(&Problem::path, "record 95 zone 408")));
  const std::vector<Problem> count = ProblemsOf(Patch(valid, kFirst95, "409", "00000005"));
  ASSERT_NE(Find(count, "PSL-EFACT-COUNT"), nullptr);
  EXPECT_EQ(Find(count, "PSL-EFACT-COUNT")->path, "record 95 zone 409");
}

TEST(EfactTotalsTest, TheFileTotalRecordMustAddUp) {
  const std::string valid = WriteEfact(SampleFile());
  EXPECT_THAT(ProblemsOf(Patch(valid, k96, "504", "00000000001")),
              Contains(Field(&Problem::path, "record 96 zone 504")));
  EXPECT_THAT(ProblemsOf(Patch(valid, k96, "509", "00000012")),
              Contains(Field(&Problem::path, "record 96 zone 509")));
  EXPECT_THAT(ProblemsOf(Patch(valid, k96, "510", "01")),
              Contains(Field(&Problem::path, "record 96 zone 510")));
  EXPECT_THAT(ProblemsOf(Patch(valid, k96, "501", "199")),
              Contains(Field(&Problem::path, "record 96 zone 501")));
}

TEST(EfactTotalsTest, ADestinationWithoutRecord95IsRefused) {
  // Re-point the second invoice (20 and 80) to 301: no record 95 names it.
  std::string bytes = WriteEfact(SampleFile());
  bytes = Patch(bytes, kSecond20, "7", "301");
  bytes = Patch(bytes, kSecond20, "18", "301");
  bytes = Patch(bytes, kSecond80, "7", "301");
  bytes = Patch(bytes, kSecond80, "18", "301");
  const std::vector<std::string> codes = CodesOf(bytes);
  EXPECT_THAT(codes, Contains("PSL-EFACT-DESTINATION"));
}

TEST(EfactDateTest, AnImpossibleActDateIsRefused) {
  const std::vector<Problem> problems =
      ProblemsOf(Patch(WriteEfact(SampleFile()), kFirst50, "5", "20250230"));
  const Problem* p = Find(problems, "500501");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->column, 17);
}

TEST(EfactDateTest, AMalformedCreationDateIsRefused) {
  EXPECT_THAT(CodesOf(Patch(WriteEfact(SampleFile()), k10, "25", "20251301")), Contains("102501"));
}

TEST(EfactDateTest, AnAbsentOptionalDateIsAccepted) {
  std::vector<Problem> problems;
  const std::string bytes = Patch(WriteEfact(SampleFile()), kFirst50, "20", "00000000");
  EXPECT_TRUE(ParseEfact(bytes, &problems).ok());
}

TEST(EfactIdentifierTest, ABadNissCheckDigitIsRefusedWithTheTableCode) {
  // Only the record 20 is changed: its check digits fail, and the 50s/80 no longer match it.
  const std::string bad = "00" + std::string(kPatientNiss2.substr(0, 9)) + "85";
  const std::vector<Problem> problems =
      ProblemsOf(Patch(WriteEfact(SampleFile()), kFirst20, "8", bad));
  const std::vector<std::string> codes = CodesOf(problems);
  EXPECT_THAT(codes, Contains("200802"));
  EXPECT_THAT(codes, Contains("500812"));
  EXPECT_THAT(codes, Contains("800812"));
  EXPECT_EQ(Find(problems, "200802")->column, 36);
}

TEST(EfactIdentifierTest, AMembershipNumberIsNotCheckedAsANiss) {
  std::string bytes = WriteEfact(SampleFile());
  for (int ordinal : {kFirst20, kFirst50, kFirst50 + 1, kFirst80}) {
    bytes = Patch(bytes, ordinal, "8", "0000123456789");
  }
  bytes = Patch(bytes, kFirst20, "32", "0");
  bytes = Patch(bytes, kFirst80, "32", "0");
  std::vector<Problem> problems;
  EXPECT_TRUE(ParseEfact(bytes, &problems).ok()) << CodesOf(problems).size();
}

TEST(EfactConsistencyTest, ActsMustRepeatTheInvoiceAffiliation) {
  EXPECT_THAT(CodesOf(Patch(WriteEfact(SampleFile()), kFirst50, "7", "318")), Contains("500712"));
}

TEST(EfactConsistencyTest, UnionsTwoFourAndFiveAreExemptFromRepeatingTheAffiliation) {
  // As FH writes them: 000 in the record 20, the own 4xx code in the 50s and the 80.
  efact_test::SampleInvoice liberal;
  liberal.affiliation = "403";
  liberal.destination = "403";
  std::string bytes = WriteEfact(efact_test::SampleFile({liberal}));
  bytes = Patch(bytes, 2, "7", "000");
  std::vector<Problem> problems;
  EXPECT_TRUE(ParseEfact(bytes, &problems).ok()) << CodesOf(problems).size();
}

TEST(EfactIdentifierTest, ABadSenderNihiiCheckDigitIsRefused) {
  EXPECT_THAT(CodesOf(Patch(WriteEfact(SampleFile()), k10, "14", "012345626004")),
              Contains("101402"));
}

TEST(EfactIdentifierTest, ANihiiZoneMustStartWithZero) {
  EXPECT_THAT(CodesOf(Patch(WriteEfact(SampleFile()), kFirst50, "15", "111478761004")),
              Contains("501504"));
}

TEST(EfactIdentifierTest, ABadCbeCheckDigitIsRefused) {
  EXPECT_THAT(CodesOf(Patch(WriteEfact(SampleFile()), k10, "27", "0403019262")),
              Contains("102702"));
}

TEST(EfactFramingTest, AShortRecordMakesTheFileMalformed) {
  std::string bytes = WriteEfact(SampleFile());
  bytes.erase(kEfactHeaderLength + 3 * kEfactRecordLength + 100, 1);
  std::vector<Problem> problems;
  const StatusOr<EfactFile> parsed = ParseEfact(bytes, &problems);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kMalformed);
  EXPECT_THAT(CodesOf(problems), Contains("PSL-EFACT-LENGTH"));
}

TEST(EfactFramingTest, ATruncatedFileIsMalformedAndMissesItsTrailer) {
  const std::string valid = WriteEfact(SampleFile());
  std::vector<Problem> problems;
  const StatusOr<EfactFile> parsed = ParseEfact(valid.substr(0, valid.size() - 100), &problems);
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.status().code(), StatusCode::kMalformed);
  const std::vector<std::string> codes = CodesOf(problems);
  EXPECT_THAT(codes, Contains("PSL-EFACT-LENGTH"));
  EXPECT_THAT(codes, Contains("PSL-EFACT-MISSING-96"));
  EXPECT_EQ(Find(problems, "PSL-EFACT-LENGTH")->line, k96);
}

TEST(EfactFramingTest, AFileShorterThanItsHeaderOrEmptyIsMalformed) {
  std::vector<Problem> problems;
  EXPECT_EQ(ParseEfact(WriteEfact(SampleFile()).substr(0, 100), &problems).status().code(),
            StatusCode::kMalformed);
  EXPECT_THAT(CodesOf(problems), Contains("PSL-EFACT-TRUNCATED"));
  problems.clear();
  EXPECT_EQ(ParseEfact("", &problems).status().code(), StatusCode::kMalformed);
  EXPECT_THAT(CodesOf(problems), Contains("PSL-EFACT-EMPTY"));
}

TEST(EfactFramingTest, NonAsciiBytesAreRefused) {
  std::string bytes = WriteEfact(SampleFile());
  bytes[kEfactHeaderLength + kEfactRecordLength + 140] = static_cast<char>(0xE9);
  std::vector<Problem> problems;
  const StatusOr<EfactFile> parsed = ParseEfact(bytes, &problems);
  EXPECT_EQ(parsed.status().code(), StatusCode::kMalformed);
  const Problem* p = Find(problems, "PSL-EFACT-CHARSET");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->line, kFirst20);
  EXPECT_EQ(p->column, 141);
}

TEST(EfactFramingTest, ALineBreakBetweenRecordsIsRefused) {
  std::string bytes = WriteEfact(SampleFile());
  bytes.insert(kEfactHeaderLength + kEfactRecordLength, "\n");
  EXPECT_THAT(CodesOf(bytes), Contains("PSL-EFACT-LENGTH"));
}

TEST(EfactFramingTest, AnUnknownRecordTypeIsReported) {
  std::string bytes = WriteEfact(SampleFile());
  bytes.replace(kEfactHeaderLength + (kFirst50 - 1) * kEfactRecordLength, 2, "77");
  const std::vector<Problem> problems = ProblemsOf(bytes);
  const Problem* p = Find(problems, "PSL-EFACT-RECORD-TYPE");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->line, kFirst50);
}

TEST(EfactFramingTest, AReturnMessageTypeIsNotAnInvoiceFile) {
  std::string bytes = WriteEfact(SampleFile());
  bytes.replace(0, 6, "920999");
  EXPECT_THAT(CodesOf(bytes), Contains("PSL-EFACT-MESSAGE-TYPE"));
}

TEST(EfactOrderTest, AMissingSenderFooterIsReported) {
  std::string bytes = WriteEfact(SampleFile());
  bytes.erase(kEfactHeaderLength + (k90 - 1) * kEfactRecordLength, kEfactRecordLength);
  const std::vector<std::string> codes = CodesOf(bytes);
  EXPECT_THAT(codes, Contains("900104"));
  EXPECT_THAT(codes, Contains("800111"));  // the last 80 is no longer followed by 20 or 90
}

TEST(EfactOrderTest, AMissingInvoiceFooterIsReported) {
  std::string bytes = WriteEfact(SampleFile());
  bytes.erase(kEfactHeaderLength + (kSecond80 - 1) * kEfactRecordLength, kEfactRecordLength);
  const std::vector<std::string> codes = CodesOf(bytes);
  EXPECT_THAT(codes, Contains("900110"));  // 90 not preceded by an 80
  EXPECT_THAT(codes, Contains("520111"));  // 52 not followed by 50 or 80
}

TEST(EfactOrderTest, RecordsOutOfOrderAreReported) {
  // Swap the first invoice's 80 and its last 50.
  std::string bytes = WriteEfact(SampleFile());
  const std::string r50(RecordAt(bytes, kFirst50 + 1));
  const std::string r80(RecordAt(bytes, kFirst80));
  bytes.replace(kEfactHeaderLength + kFirst50 * kEfactRecordLength, kEfactRecordLength, r80);
  bytes.replace(kEfactHeaderLength + (kFirst80 - 1) * kEfactRecordLength, kEfactRecordLength, r50);
  const std::vector<std::string> codes = CodesOf(bytes);
  EXPECT_THAT(codes, Contains("800111"));  // 80 followed by a 50
  EXPECT_THAT(codes, Contains("500110"));  // 50 after an 80
  EXPECT_THAT(codes, Contains("800210"));  // record numbers no longer follow each other
}

TEST(EfactOrderTest, InvoicesMustBeSortedByDestination) {
  SampleFile();  // the sample is sorted (101, 300): reversing the invoices breaks the rule
  efact_test::SampleInvoice a;
  a.affiliation = "319";
  a.destination = "300";
  efact_test::SampleInvoice b;
  b.affiliation = "101";
  b.destination = "101";
  b.niss = std::string(kPatientNiss2);
  b.number = 2;
  EXPECT_THAT(CodesOf(WriteEfact(efact_test::SampleFile({a, b}))), Contains("201812"));
}

TEST(EfactRoutingTest, ADestinationThatIgnoresTheSolidarisRuleIsRefused) {
  std::string bytes = WriteEfact(SampleFile());
  bytes = Patch(bytes, kSecond20, "18", "300");
  EXPECT_THAT(ProblemsOf(bytes), Contains(Field(&Problem::path, "record 20 zone 18")));
}

TEST(EfactRoutingTest, AFileMixingUnionsIsRefused) {
  efact_test::SampleInvoice christian;
  christian.affiliation = "101";
  christian.destination = "101";
  efact_test::SampleInvoice solidaris;
  solidaris.number = 2;
  EXPECT_THAT(CodesOf(WriteEfact(efact_test::SampleFile({christian, solidaris}))),
              Contains("PSL-EFACT-FEDERATION"));
}

TEST(EfactRoutingTest, AMediPrimaRecordMustTargetDestination690) {
  const std::string bytes = Patch(WriteEfact(SampleMediPrimaFile()), 3, "18", "300");
  EXPECT_THAT(CodesOf(bytes), Contains("251803"));
}

TEST(EfactDestinationForTest, SolidarisMutualitiesGoToTheUnion) {
  for (const char* code : {"304", "305", "309", "311", "315", "317", "319", "322", "323", "325"}) {
    EXPECT_EQ(DestinationFor(code, false), "300") << code;
    EXPECT_EQ(DestinationFor(code, true), "300") << code;
  }
}

TEST(EfactDestinationForTest,
     OtherSolidarisMutualitiesKeepTheirCodeUnlessTheSenderIsAMedicalHouse) {
  for (const char* code : {"301", "306", "310", "318", "326"}) {
    EXPECT_EQ(DestinationFor(code, false), code);
    EXPECT_EQ(DestinationFor(code, true), "306");
  }
}

TEST(EfactDestinationForTest, OtherUnionsKeepTheirCode) {
  for (const char* code : {"101", "216", "403", "509", "601", "910"}) {
    EXPECT_EQ(DestinationFor(code, false), code);
    EXPECT_EQ(DestinationFor(code, true), code);
  }
}

TEST(EfactDestinationForTest, MediPrimaAlwaysGoesTo690) {
  EXPECT_EQ(DestinationFor("319", false, EfactFlavour::kMediPrima), "690");
  EXPECT_EQ(DestinationFor("", true, EfactFlavour::kMediPrima), "690");
}

TEST(EfactDestinationForTest, ACodeThatIsNotThreeDigitsHasNoDestination) {
  EXPECT_EQ(DestinationFor("31", false), std::nullopt);
  EXPECT_EQ(DestinationFor("3a1", false), std::nullopt);
  EXPECT_EQ(DestinationFor("3190", false), std::nullopt);
}

TEST(EfactRecordTest, SettersRefuseValuesThatDoNotFitTheZone) {
  EfactRecord r = EfactRecord::Blank(EfactRecordType::kInvoice20);
  EXPECT_EQ(r.SetText("7", "3191").code(), StatusCode::kInvalid);          // too long
  EXPECT_EQ(r.SetText("7", "31A").code(), StatusCode::kInvalid);           // numeric zone
  EXPECT_EQ(r.SetText("28", "caf\xc3\xa9").code(), StatusCode::kInvalid);  // not ASCII
  EXPECT_EQ(r.SetText("404", "1").code(), StatusCode::kInvalid);           // no such zone
  EXPECT_EQ(r.SetAmount("7", 1).code(), StatusCode::kInvalid);             // not an amount zone
  EXPECT_TRUE(r.SetText("7", "31").ok());
  EXPECT_EQ(r.Zone("7"), "031");
  EXPECT_TRUE(r.SetText("28", "REF").ok());
  EXPECT_EQ(r.Zone("28"), "REF                      ");
  EXPECT_EQ(r.text().size(), static_cast<std::size_t>(kEfactRecordLength));
}

TEST(EfactRecordTest, AmountsCarryTheirSign) {
  EfactRecord r = EfactRecord::Blank(EfactRecordType::kAct50);
  EXPECT_EQ(r.Zone("19"), "+00000000000");
  ASSERT_TRUE(r.SetAmount("19", -2914).ok());
  EXPECT_EQ(r.Zone("19"), "-00000002914");
  EXPECT_EQ(r.Amount("19"), -2914);
  EXPECT_EQ(r.Amount("4"), std::nullopt);
}

TEST(EfactRecordTest, EveryBlankRecordIsTheSpecifiedLength) {
  for (EfactRecordType type :
       {EfactRecordType::kSender10, EfactRecordType::kInvoice20, EfactRecordType::kMediPrima25,
        EfactRecordType::kAct50, EfactRecordType::kInvolvement51, EfactRecordType::kEid52,
        EfactRecordType::kInvoiceEnd80, EfactRecordType::kSenderEnd90,
        EfactRecordType::kDestination95, EfactRecordType::kTotal96}) {
    const EfactRecord r = EfactRecord::Blank(type);
    EXPECT_EQ(r.text().size(), static_cast<std::size_t>(kEfactRecordLength));
    EXPECT_EQ(r.text().substr(0, 2), EfactRecordTypeCode(type));
  }
  EXPECT_EQ(EfactRecord::Blank(EfactRecordType::kSegment200).text().size() +
                EfactRecord::Blank(EfactRecordType::kSegment300).text().size(),
            static_cast<std::size_t>(kEfactHeaderLength));
}

// A battery of broken files: every code is either a PSL-EFACT code or one of the eFact table's,
// and no message echoes a value from the file.
TEST(EfactProblemTest, CodesComeFromTheTableAndMessagesHoldNoPatientValue) {
  std::ifstream in(std::filesystem::path(PSL_SHARED_DIR) / "errors" / "EfactErrors.json");
  ASSERT_TRUE(in) << "errors/EfactErrors.json";
  const nlohmann::json table = nlohmann::json::parse(in);
  std::set<std::string> known;
  for (const auto& entry : table) {
    known.insert(entry.at("code").get<std::string>());
  }
  const std::string valid = WriteEfact(SampleFile());
  std::vector<std::string> inputs = {
      Patch(valid, kFirst20, "8", "0085073003329"),
      Patch(valid, kFirst80, "19", "+00000099999"),
      Patch(valid, kFirst50, "5", "20251399"),
      Raw(valid, kFirst50, 33, "ABC"),
      Patch(valid, kFirst50, "50", "1234"),
      Patch(valid, k10, "8b", "1"),
      Raw(valid, kFirst50, 88, "*"),
      Raw(valid, kFirst50, 90, "X"),
      Patch(valid, kFirst20, "9", "7"),
      Patch(valid, k51, "19", "+00000000001"),
      Patch(valid, k52, "4", "0101077"),
      Patch(valid, k90, "14", "012345625005"),
      valid.substr(0, valid.size() - 351),
  };
  std::size_t total = 0;
  for (const std::string& bytes : inputs) {
    for (const Problem& p : ProblemsOf(bytes)) {
      ++total;
      EXPECT_TRUE(p.code.rfind("PSL-EFACT-", 0) == 0 || known.count(p.code) == 1) << p.code;
      for (std::string_view secret : {kPatientNiss1, kPatientNiss2, std::string_view("85073003329"),
                                      std::string_view("99999"), std::string_view("2150")}) {
        EXPECT_EQ(p.message.find(secret), std::string::npos) << p.message;
      }
      EXPECT_FALSE(p.message.empty());
    }
  }
  EXPECT_GT(total, 12u);
}

TEST(EfactProblemTest, AReservedZoneThatIsNotZeroIsReported) {
  EXPECT_THAT(CodesOf(Patch(WriteEfact(SampleFile()), k10, "8b", "1")), Contains("100809"));
  EXPECT_THAT(CodesOf(Patch(WriteEfact(SampleFile()), kFirst80, "33", "1")), Contains("803301"));
}

TEST(EfactProblemTest, ProblemsAreCapped) {
  // 400 records of an unknown type.
  std::string bytes = WriteEfact(SampleFile()).substr(0, kEfactHeaderLength);
  bytes += std::string(400 * kEfactRecordLength, '7');
  const std::vector<Problem> problems = ProblemsOf(bytes);
  EXPECT_LE(problems.size(), 201u);
  EXPECT_EQ(problems.back().code, "PSL-EFACT-TOO-MANY-PROBLEMS");
}

}  // namespace
}  // namespace psl::codecs
