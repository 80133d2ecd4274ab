#include "store/audit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <openssl/x509.h>

#include "certs/key_store.h"
#include "certs/testing/test_pki.h"

namespace psl::store {
namespace {

using ::testing::HasSubstr;

AuditEvent SampleEvent() {
  AuditEvent event;
  event.kind = "accepted";
  event.message_id = "01HZX3K4Q0ABCDEF";
  event.practice_nihii = "81234530000";
  event.flow_kind = "enrolment";
  event.insurer = "100";
  event.outcome_codes = {"202"};
  event.payload_sha256 = std::string(64, 'a');
  event.actor = "practice:81234530000";
  event.patient_pseudonym = std::string(64, 'b');
  event.time_ms = 1795000000000;
  return event;
}

// --- Encoding -------------------------------------------------------------------------------

TEST(AuditEncodingTest, IsCompactJsonWithSortedKeysAndWithoutTheHash) {
  AuditEvent event = SampleEvent();
  event.sequence = 7;
  event.prev_hash = std::string(kZeroAuditHash);
  event.hash = std::string(64, 'c');
  EXPECT_EQ(EncodeAuditEvent(event),
            R"({"actor":"practice:81234530000","flow_kind":"enrolment","insurer":"100",)"
            R"("kind":"accepted","message_id":"01HZX3K4Q0ABCDEF","outcome_codes":["202"],)"
            R"("patient_pseudonym":")" +
                std::string(64, 'b') + R"(","payload_sha256":")" + std::string(64, 'a') +
                R"(","practice_nihii":"81234530000","prev_hash":")" + std::string(kZeroAuditHash) +
                R"(","sequence":7,"time_ms":1795000000000})");
}

TEST(AuditEncodingTest, RoundTripsEveryFieldInBothForms) {
  AuditEvent event = SampleEvent();
  event.outcome_codes = {"422", "MCN-E123", "reason with \"quotes\" and é"};
  event.time_ms = -5;
  event = AuditChain(AuditHead{41, std::string(64, 'd')}).Seal(event);

  StatusOr<AuditEvent> stored = DecodeAuditEvent(EncodeStoredAuditEvent(event));
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  EXPECT_EQ(EncodeStoredAuditEvent(*stored), EncodeStoredAuditEvent(event));
  EXPECT_EQ(stored->hash, event.hash);
  EXPECT_EQ(stored->sequence, 42u);
  EXPECT_EQ(stored->time_ms, -5);
  EXPECT_EQ(stored->outcome_codes, event.outcome_codes);

  StatusOr<AuditEvent> hashless = DecodeAuditEvent(EncodeAuditEvent(event));
  ASSERT_TRUE(hashless.ok()) << hashless.status().ToString();
  EXPECT_EQ(hashless->hash, "");
  EXPECT_EQ(EncodeAuditEvent(*hashless), EncodeAuditEvent(event));
}

TEST(AuditEncodingTest, OutputIsAsciiEvenForNonAsciiText) {
  AuditEvent event = SampleEvent();
  event.actor = "ops:Zoë";
  for (char c : EncodeAuditEvent(event)) {
    EXPECT_GE(static_cast<unsigned char>(c), 0x20);
    EXPECT_LT(static_cast<unsigned char>(c), 0x80);
  }
}

class AuditDecodeStrictnessTest : public ::testing::Test {
 protected:
  // The stored encoding of a sealed event with `from` replaced by `to` (which must occur).
  static std::string Edited(const std::string& from, const std::string& to) {
    std::string bytes = EncodeStoredAuditEvent(
        AuditChain(AuditHead{0, std::string(kZeroAuditHash)}).Seal(SampleEvent()));
    const std::size_t at = bytes.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return bytes.replace(at, from.size(), to);
  }
  static void ExpectMalformed(const std::string& bytes, const std::string& why) {
    StatusOr<AuditEvent> decoded = DecodeAuditEvent(bytes);
    ASSERT_FALSE(decoded.ok()) << bytes;
    EXPECT_EQ(decoded.status().code(), StatusCode::kMalformed);
    EXPECT_THAT(decoded.status().message(), HasSubstr(why));
  }
};

TEST_F(AuditDecodeStrictnessTest, RefusesAnUnknownField) {
  ExpectMalformed(Edited(R"("actor")", R"("zzz":"1","actor")"), "unknown field");
}

TEST_F(AuditDecodeStrictnessTest, RefusesAMissingFieldAndNamesIt) {
  ExpectMalformed(Edited(R"("insurer":"100",)", ""), "\"insurer\"");
}

TEST_F(AuditDecodeStrictnessTest, RefusesWrongTypes) {
  ExpectMalformed(Edited(R"("sequence":1)", R"("sequence":"1")"), "\"sequence\"");
  ExpectMalformed(Edited(R"("sequence":1)", R"("sequence":-1)"), "\"sequence\"");
  ExpectMalformed(Edited(R"("time_ms":1795000000000)", R"("time_ms":1.5)"), "\"time_ms\"");
  ExpectMalformed(Edited(R"("time_ms":1795000000000)", R"("time_ms":18446744073709551615)"),
                  "\"time_ms\"");
  ExpectMalformed(Edited(R"(["202"])", R"([202])"), "\"outcome_codes\"");
  ExpectMalformed(Edited(R"("insurer":"100")", R"("insurer":100)"), "\"insurer\"");
  ExpectMalformed(Edited(R"("kind":"accepted")", R"("kind":null)"), "\"kind\"");
}

TEST_F(AuditDecodeStrictnessTest, RefusesHashesThatAreNotLowercaseHex) {
  ExpectMalformed(Edited(std::string(kZeroAuditHash), std::string(64, 'G')), "\"prev_hash\"");
  ExpectMalformed(Edited(R"("hash":")", R"("hash":"A)"), "\"hash\"");
}

TEST_F(AuditDecodeStrictnessTest, RefusesNonCanonicalBytes) {
  ExpectMalformed(Edited(R"("actor":)", R"("actor": )"), "canonical");
  ExpectMalformed(Edited(R"("actor")", R"("kind":"x","actor")"), "canonical");  // duplicate key
  ExpectMalformed(Edited(R"("sequence":1)", R"("sequence":1.0)"), "\"sequence\"");
  ExpectMalformed(Edited(R"("time_ms":1795000000000)", R"("time_ms":1795000000000.0)"),
                  "\"time_ms\"");
}

TEST_F(AuditDecodeStrictnessTest, RefusesWhatIsNotAJsonObject) {
  ExpectMalformed("", "not valid JSON");
  ExpectMalformed("{", "not valid JSON");
  ExpectMalformed("[]", "not a JSON object");
  ExpectMalformed(std::string(2 << 20, ' '), "larger than 1 MiB");
}

// --- Hashes and pseudonyms ------------------------------------------------------------------

TEST(AuditHashTest, GoldenHashOfAFixedEventNeverChanges) {
  // Computed once; a change here means every stored chain stops verifying.
  const AuditEvent sealed =
      AuditChain(AuditHead{0, std::string(kZeroAuditHash)}).Seal(SampleEvent());
  EXPECT_EQ(sealed.hash, "3c68e6ddca9d00c7938cea31ec2d1ed55f306723c86b61fd28df399b4aec3adb");
}

TEST(AuditHashTest, CoversEveryField) {
  AuditEvent base = SampleEvent();
  base.sequence = 3;
  base.prev_hash = std::string(64, '1');
  const std::string original = ComputeAuditHash(base);
  const std::vector<void (*)(AuditEvent&)> edits = {
      [](AuditEvent& e) { e.kind = "retry"; },
      [](AuditEvent& e) { e.message_id += "x"; },
      [](AuditEvent& e) { e.practice_nihii = "85432155100"; },
      [](AuditEvent& e) { e.flow_kind = "claim"; },
      [](AuditEvent& e) { e.insurer = "300"; },
      [](AuditEvent& e) { e.outcome_codes.push_back("500"); },
      [](AuditEvent& e) { e.payload_sha256 = std::string(64, 'f'); },
      [](AuditEvent& e) { e.actor = "gateway"; },
      [](AuditEvent& e) { e.patient_pseudonym = ""; },
      [](AuditEvent& e) { e.time_ms += 1; },
      [](AuditEvent& e) { e.sequence += 1; },
      [](AuditEvent& e) { e.prev_hash = std::string(64, '2'); },
  };
  for (std::size_t i = 0; i < edits.size(); ++i) {
    AuditEvent edited = base;
    edits[i](edited);
    EXPECT_NE(ComputeAuditHash(edited), original) << "edit " << i;
  }
}

TEST(PseudonymTest, HmacPrimitiveMatchesRfc4231TestCase2) {
  EXPECT_EQ(HmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(PseudonymTest, IsTheHmacOfTheNissDigitsUnderTheKey) {
  const std::string key(32, 'k');
  const std::string pseudonym = PatientPseudonym(key, "85073003328");
  EXPECT_EQ(pseudonym, HmacSha256Hex(key, "85073003328"));
  EXPECT_EQ(pseudonym.size(), 64u);
  EXPECT_EQ(PatientPseudonym(key, "85.07.30-033.28"), pseudonym);
  EXPECT_NE(PatientPseudonym(key, "85073003329"), pseudonym);
  EXPECT_NE(PatientPseudonym(std::string(32, 'K'), "85073003328"), pseudonym);
}

TEST(PseudonymTest, RefusesAKeyShorterThan32Bytes) {
  EXPECT_EQ(PatientPseudonym(std::string(31, 'k'), "85073003328"), "");
  EXPECT_EQ(PatientPseudonym("", "85073003328"), "");
}

TEST(PseudonymTest, KeyFileMustHoldAtLeast32Bytes) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path();
  const std::string short_file =
      (dir / ("psl-audit-short-key-" + std::to_string(getpid()))).string();
  const std::string good_file = (dir / ("psl-audit-good-key-" + std::to_string(getpid()))).string();
  std::ofstream(short_file, std::ios::binary) << std::string(31, '\x01');
  std::ofstream(good_file, std::ios::binary) << std::string(31, '\x02') << '\0' << "\n";

  StatusOr<std::string> too_short = ReadPseudonymKeyFile(short_file);
  ASSERT_FALSE(too_short.ok());
  EXPECT_EQ(too_short.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(too_short.status().message(), HasSubstr("31 bytes"));

  StatusOr<std::string> good = ReadPseudonymKeyFile(good_file);
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_EQ(*good, std::string(31, '\x02') + std::string(1, '\0') + "\n");

  EXPECT_FALSE(ReadPseudonymKeyFile((dir / "psl-audit-absent-key").string()).ok());
  std::filesystem::remove(short_file);
  std::filesystem::remove(good_file);
}

// --- Chain, checkpoints and verification ------------------------------------------------------

class AuditChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(Pki().ok()) << "certs/make-test-pki.sh failed";
    identity_ = Load("gateway");
    untrusted_ = Load("untrusted");
    trust_.reset(X509_STORE_new());
    ASSERT_EQ(X509_STORE_load_file(trust_.get(), (Pki() / "ca.pem").c_str()), 1);
  }

  // Checkpoints are trusted at their own time, and the test PKI is issued at test start.
  static std::int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

  static const certs::testing::TestPki& Pki() { return certs::testing::SharedTestPki(); }

  static SigningIdentity Load(const std::string& name) {
    const std::filesystem::path chain =
        name == "untrusted" ? Pki() / "untrusted-root-ca.pem" : Pki() / (name + "-chain.pem");
    StatusOr<SigningIdentity> identity =
        certs::LoadPemIdentity(Pki() / (name + ".key"), Pki() / (name + ".pem"), &chain, nullptr);
    EXPECT_TRUE(identity.ok()) << identity.status().ToString();
    return identity.ok() ? std::move(identity).value() : SigningIdentity{};
  }

  // Seals `count` events into log_ (key = sequence) and keeps every head in heads_.
  void Build(int count) {
    AuditChain chain(AuditHead{0, std::string(kZeroAuditHash)});
    heads_.push_back(chain.head());
    for (int i = 0; i < count; ++i) {
      AuditEvent event = SampleEvent();
      event.message_id = "msg-" + std::to_string(i);
      event.time_ms += i;
      const AuditEvent sealed = chain.Seal(event);
      EXPECT_EQ(sealed.sequence, static_cast<std::uint64_t>(i + 1));
      log_[sealed.sequence] = EncodeStoredAuditEvent(sealed);
      heads_.push_back(chain.head());
    }
  }

  std::string Checkpoint(std::uint64_t sequence, const SigningIdentity* identity = nullptr) {
    StatusOr<AuditCheckpoint> checkpoint =
        SignCheckpoint(heads_.at(sequence), NowMs(), identity ? *identity : identity_);
    EXPECT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
    return checkpoint.ok() ? EncodeCheckpoint(*checkpoint) : "";
  }

  AuditEvent EventAt(std::uint64_t key) {
    StatusOr<AuditEvent> event = DecodeAuditEvent(log_.at(key));
    EXPECT_TRUE(event.ok());
    return event.ok() ? *event : AuditEvent{};
  }

  AuditVerifyReport Verify(const std::vector<std::string>& checkpoints,
                           AuditChainVerifier verifier) {
    for (const auto& [key, value] : log_) {
      verifier.AddEvent(key, value);
    }
    for (const std::string& checkpoint : checkpoints) {
      verifier.AddCheckpoint(checkpoint);
    }
    return verifier.Finish();
  }
  AuditVerifyReport Verify(const std::vector<std::string>& checkpoints = {}) {
    return Verify(checkpoints, AuditChainVerifier(trust_.get()));
  }

  static void ExpectBad(const AuditVerifyReport& report, std::uint64_t sequence,
                        const std::string& problem) {
    EXPECT_FALSE(report.ok);
    EXPECT_EQ(report.first_bad_sequence, std::optional<std::uint64_t>(sequence)) << report.problem;
    EXPECT_THAT(report.problem, HasSubstr(problem));
  }

  SigningIdentity identity_;
  SigningIdentity untrusted_;
  X509StorePtr trust_;
  std::map<std::uint64_t, std::string> log_;
  std::vector<AuditHead> heads_;
};

TEST_F(AuditChainTest, SealAssignsSequenceAndLinksToThePreviousHash) {
  AuditChain chain(AuditHead{0, std::string(kZeroAuditHash)});
  const AuditEvent first = chain.Seal(SampleEvent());
  const AuditEvent second = chain.Seal(SampleEvent());
  EXPECT_EQ(first.sequence, 1u);
  EXPECT_EQ(first.prev_hash, kZeroAuditHash);
  EXPECT_EQ(first.hash, ComputeAuditHash(first));
  EXPECT_EQ(second.sequence, 2u);
  EXPECT_EQ(second.prev_hash, first.hash);
  EXPECT_NE(second.hash, first.hash);
  EXPECT_EQ(chain.head().sequence, 2u);
  EXPECT_EQ(chain.head().hash, second.hash);

  chain.Reset(AuditHead{1, first.hash});  // the batch holding `second` failed
  EXPECT_EQ(chain.Seal(SampleEvent()).hash, second.hash);
}

TEST_F(AuditChainTest, PreparedEventsSealToTheSameBytesAndHashes) {
  AuditChain plain(AuditHead{0, std::string(kZeroAuditHash)});
  AuditChain prepared(AuditHead{0, std::string(kZeroAuditHash)});
  std::vector<AuditEvent> events;
  AuditEvent odd = SampleEvent();
  odd.actor = "ops:\"quoted\",\"prev_hash\":\"x";  // key-like text inside a value
  odd.insurer = ",\"insurer\":\"";
  odd.outcome_codes = {"202", "\u00e9t\xc3\xa9"};
  AuditEvent empty;
  empty.kind = "denied";
  empty.time_ms = 1;
  for (const AuditEvent& event : {SampleEvent(), odd, empty, SampleEvent()}) {
    const AuditEvent expected = plain.Seal(event);
    AuditEvent sealed;
    std::string stored;
    prepared.SealPrepared(PrepareAuditEvent(event), &sealed, &stored);
    EXPECT_EQ(sealed.sequence, expected.sequence);
    EXPECT_EQ(sealed.prev_hash, expected.prev_hash);
    EXPECT_EQ(sealed.hash, expected.hash);
    EXPECT_EQ(stored, EncodeStoredAuditEvent(expected));
  }
  EXPECT_EQ(prepared.head().hash, plain.head().hash);
  EXPECT_EQ(prepared.head().sequence, 4u);
}

TEST_F(AuditChainTest, AHundredSealedEventsWithCheckpointsVerify) {
  Build(100);
  const AuditVerifyReport report = Verify({Checkpoint(50), Checkpoint(100), Checkpoint(0)});
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, 100u);
  EXPECT_EQ(report.checkpoints, 3u);
  EXPECT_EQ(report.first_bad_sequence, std::nullopt);
}

TEST_F(AuditChainTest, AnEmptyLogVerifies) {
  EXPECT_TRUE(Verify().ok);
}

TEST_F(AuditChainTest, AlteredFieldIsNamed) {
  Build(30);
  AuditEvent event = EventAt(17);
  event.insurer = "300";  // the hash is left as it was
  log_[17] = EncodeStoredAuditEvent(event);
  const AuditVerifyReport report = Verify();
  ExpectBad(report, 17, "event 17 was altered: its hash does not match its content");
  EXPECT_EQ(report.events, 30u);
}

TEST_F(AuditChainTest, UnreadableEventIsNamedAsAltered) {
  Build(30);
  log_[9] = "{garbage";
  ExpectBad(Verify(), 9, "event 9 was altered: it is not a well-formed audit event");
}

TEST_F(AuditChainTest, EventStoredUnderAnotherKeyIsNamedAsAltered) {
  Build(5);
  AuditChainVerifier verifier;
  verifier.AddEvent(1, log_[1]);
  verifier.AddEvent(7, log_[2]);
  ExpectBad(verifier.Finish(), 2, "event 2 was altered: it is stored under sequence 7");
}

TEST_F(AuditChainTest, RemovedEventIsNamed) {
  Build(30);
  log_.erase(17);
  ExpectBad(Verify(), 17, "event 17 was removed: the log jumps from event 16 to event 18");
}

TEST_F(AuditChainTest, RemovedRunOfEventsIsNamed) {
  Build(30);
  log_.erase(17);
  log_.erase(18);
  ExpectBad(Verify(), 17, "events 17 to 18 were removed");
}

TEST_F(AuditChainTest, RemovedEventBeforeTheLastIsNamed) {
  Build(30);
  log_.erase(29);
  ExpectBad(Verify(), 29, "event 29 was removed");
}

TEST_F(AuditChainTest, InsertedForgedButSelfConsistentEventIsNamed) {
  Build(30);
  // The attacker seals a forged event after 16 and shifts the real events 17..30 one key on.
  AuditChain forger(heads_[16]);
  AuditEvent forged = SampleEvent();
  forged.message_id = "forged";
  std::map<std::uint64_t, std::string> tampered;
  for (const auto& [key, value] : log_) {
    tampered[key < 17 ? key : key + 1] = value;
  }
  tampered[17] = EncodeStoredAuditEvent(forger.Seal(forged));
  log_ = tampered;
  ExpectBad(Verify(), 17, "an event was inserted at sequence 17: two different events claim");
}

TEST_F(AuditChainTest, ReplacedEventThatDoesNotChainIsNamedAsInserted) {
  Build(30);
  AuditChain forger(AuditHead{16, std::string(64, 'e')});  // does not know event 16's hash
  log_[17] = EncodeStoredAuditEvent(forger.Seal(SampleEvent()));
  ExpectBad(Verify(), 17,
            "event 17 was inserted or replaced: its own hash is valid but it does not chain to "
            "event 16");
}

TEST_F(AuditChainTest, DuplicatedEventIsNamedAsInserted) {
  Build(20);
  AuditChainVerifier verifier;
  for (std::uint64_t key = 1; key <= 12; ++key) {
    verifier.AddEvent(key, log_[key]);
  }
  verifier.AddEvent(12, log_[12]);
  ExpectBad(verifier.Finish(), 13, "it is a copy of event 12");
}

TEST_F(AuditChainTest, SwappedEventsAreNamedAsReordered) {
  Build(30);
  std::swap(log_[17], log_[18]);
  ExpectBad(Verify(), 17,
            "events were reordered at sequence 17: event 18 is stored before event 17");
}

TEST_F(AuditChainTest, DistantSwapIsNamedAsReordered) {
  Build(30);
  std::swap(log_[5], log_[25]);
  ExpectBad(Verify(), 5, "reordered at sequence 5");
}

TEST_F(AuditChainTest, TruncatedTailIsCaughtByALaterCheckpoint) {
  Build(30);
  const std::vector<std::string> checkpoints = {Checkpoint(10), Checkpoint(30)};
  for (std::uint64_t key = 26; key <= 30; ++key) {
    log_.erase(key);
  }
  ExpectBad(Verify(checkpoints), 26,
            "the log was truncated after event 25: checkpoint 30 was signed at sequence 30");
}

TEST_F(AuditChainTest, ForgedCheckpointSignatureIsNamed) {
  Build(30);
  StatusOr<AuditCheckpoint> checkpoint = DecodeCheckpoint(Checkpoint(20));
  ASSERT_TRUE(checkpoint.ok());
  checkpoint->sequence = 25;  // moved without the key: the signature no longer matches
  checkpoint->head_hash = heads_[25].hash;
  const AuditVerifyReport report = Verify({Checkpoint(10), EncodeCheckpoint(*checkpoint)});
  ExpectBad(report, 25, "checkpoint 25 is forged: checkpoint signature does not verify");
  EXPECT_EQ(report.checkpoints, 1u);
}

TEST_F(AuditChainTest, CheckpointSignedByAnUntrustedKeyIsForged) {
  Build(30);
  const std::string checkpoint = Checkpoint(20, &untrusted_);
  ExpectBad(Verify({checkpoint}), 20, "checkpoint 20 is forged: checkpoint signer is not trusted");
  // Without a trust store only the signature is checked (the caller's choice, documented).
  EXPECT_TRUE(Verify({checkpoint}, AuditChainVerifier()).ok);
}

TEST_F(AuditChainTest, CheckpointWithAWrongHeadHashNamesTheRewrittenRange) {
  Build(30);
  StatusOr<AuditCheckpoint> wrong =
      SignCheckpoint(AuditHead{20, heads_[19].hash}, NowMs(), identity_);
  ASSERT_TRUE(wrong.ok());
  ExpectBad(Verify({Checkpoint(10), EncodeCheckpoint(*wrong), Checkpoint(30)}), 11,
            "events 11 to 20 were rewritten: checkpoint 20 signs head hash");
}

TEST_F(AuditChainTest, ConsistentlyRebuiltChainIsCaughtByItsCheckpoint) {
  Build(30);
  const std::vector<std::string> checkpoints = {Checkpoint(10), Checkpoint(20)};
  // Alter event 15 and re-seal everything after it: every hash and link is self-consistent.
  AuditChain forger(heads_[14]);
  for (std::uint64_t key = 15; key <= 30; ++key) {
    AuditEvent event = EventAt(key);
    if (key == 15) {
      event.outcome_codes = {"200"};
    }
    log_[key] = EncodeStoredAuditEvent(forger.Seal(event));
  }
  ExpectBad(Verify(checkpoints), 11, "events 11 to 20 were rewritten");
}

TEST_F(AuditChainTest, TheEarliestProblemWins) {
  Build(30);
  const std::vector<std::string> checkpoints = {Checkpoint(10), Checkpoint(20)};
  AuditChain forger(heads_[14]);  // rebuilt from 15 on: only checkpoint 20 sees it
  for (std::uint64_t key = 15; key <= 30; ++key) {
    AuditEvent event = EventAt(key);
    event.actor = "ops:mallory";
    log_[key] = EncodeStoredAuditEvent(forger.Seal(event));
  }
  log_[25] = "{}";  // and a later event visibly altered
  ExpectBad(Verify(checkpoints), 11, "events 11 to 20 were rewritten");
}

TEST_F(AuditChainTest, VerificationStartsAtAnAnchorCheckpointAfterRetention) {
  Build(30);
  const std::string anchor = Checkpoint(10);
  const std::string later = Checkpoint(30);
  for (std::uint64_t key = 1; key <= 10; ++key) {
    log_.erase(key);
  }
  AuditChainVerifier verifier(trust_.get());
  verifier.StartAtCheckpoint(anchor);
  const AuditVerifyReport report = Verify({later, anchor}, std::move(verifier));
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.events, 20u);
  EXPECT_EQ(report.checkpoints, 3u);  // the anchor (as anchor, then fed again) and 30

  // Without the anchor the purge looks like removal, and the message says what to do.
  ExpectBad(Verify({later}), 1, "verify from their anchor checkpoint");
}

TEST_F(AuditChainTest, AnchorHeadAlsoWorksWithoutACheckpoint) {
  Build(30);
  const AuditHead anchor = heads_[10];
  for (std::uint64_t key = 1; key <= 10; ++key) {
    log_.erase(key);
  }
  AuditChainVerifier verifier;
  verifier.StartAt(anchor);
  EXPECT_TRUE(Verify({}, std::move(verifier)).ok);
}

TEST_F(AuditChainTest, FirstEventAfterTheAnchorMustChainToIt) {
  Build(30);
  const std::string anchor = Checkpoint(10);
  for (std::uint64_t key = 1; key <= 10; ++key) {
    log_.erase(key);
  }
  AuditChain forger(AuditHead{10, std::string(64, 'e')});
  log_[11] = EncodeStoredAuditEvent(forger.Seal(SampleEvent()));
  AuditChainVerifier verifier(trust_.get());
  verifier.StartAtCheckpoint(anchor);
  ExpectBad(Verify({}, std::move(verifier)), 11, "does not chain to the anchor checkpoint");
}

TEST_F(AuditChainTest, ForgedAnchorIsReported) {
  Build(30);
  StatusOr<AuditCheckpoint> anchor = DecodeCheckpoint(Checkpoint(10));
  ASSERT_TRUE(anchor.ok());
  anchor->time_ms += 1;
  for (std::uint64_t key = 1; key <= 10; ++key) {
    log_.erase(key);
  }
  AuditChainVerifier verifier(trust_.get());
  verifier.StartAtCheckpoint(EncodeCheckpoint(*anchor));
  ExpectBad(Verify({}, std::move(verifier)), 10, "the anchor checkpoint 10 is forged");
}

TEST_F(AuditChainTest, UnreadableCheckpointIsReported) {
  Build(3);
  const AuditVerifyReport report = Verify({"not a checkpoint"});
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.first_bad_sequence, std::nullopt);
  EXPECT_THAT(report.problem, HasSubstr("a checkpoint is forged or damaged"));
}

// --- Checkpoints on their own -----------------------------------------------------------------

TEST_F(AuditChainTest, CheckpointRoundTripsAndVerifies) {
  const AuditHead head{7, std::string(64, '7')};
  StatusOr<AuditCheckpoint> checkpoint = SignCheckpoint(head, NowMs(), identity_);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
  EXPECT_THAT(checkpoint->certificate_pem, HasSubstr("BEGIN CERTIFICATE"));
  StatusOr<AuditCheckpoint> decoded = DecodeCheckpoint(EncodeCheckpoint(*checkpoint));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->sequence, 7u);
  EXPECT_EQ(decoded->head_hash, head.hash);
  EXPECT_EQ(decoded->time_ms, checkpoint->time_ms);
  EXPECT_TRUE(VerifyCheckpointSignature(*decoded).ok());
  EXPECT_TRUE(VerifyCheckpointSignature(*decoded, trust_.get()).ok());

  for (int field = 0; field < 3; ++field) {
    AuditCheckpoint tampered = *decoded;
    if (field == 0)
      tampered.sequence += 1;
    if (field == 1)
      tampered.head_hash[0] = '8';
    if (field == 2)
      tampered.time_ms += 1;
    const Status status = VerifyCheckpointSignature(tampered);
    EXPECT_EQ(status.code(), StatusCode::kUnauthenticated) << field;
  }
}

TEST_F(AuditChainTest, CheckpointDecodeIsStrict) {
  StatusOr<AuditCheckpoint> checkpoint =
      SignCheckpoint(AuditHead{7, std::string(64, '7')}, 1, identity_);
  ASSERT_TRUE(checkpoint.ok());
  std::string bytes = EncodeCheckpoint(*checkpoint);
  EXPECT_EQ(DecodeCheckpoint(bytes.substr(0, bytes.size() - 1) + R"(,"x":1})").status().code(),
            StatusCode::kMalformed);
  EXPECT_EQ(DecodeCheckpoint(R"({"sequence":1})").status().code(), StatusCode::kMalformed);
  AuditCheckpoint bad_hash = *checkpoint;
  bad_hash.head_hash = "00";
  EXPECT_EQ(DecodeCheckpoint(EncodeCheckpoint(bad_hash)).status().code(), StatusCode::kMalformed);
  EXPECT_EQ(SignCheckpoint(AuditHead{1, "00"}, 1, identity_).status().code(), StatusCode::kInvalid);
}

TEST_F(AuditChainTest, CheckpointSignatureMustBeBase64AndCertificatePem) {
  StatusOr<AuditCheckpoint> checkpoint =
      SignCheckpoint(AuditHead{7, std::string(64, '7')}, 1, identity_);
  ASSERT_TRUE(checkpoint.ok());
  AuditCheckpoint bad = *checkpoint;
  bad.signature_b64 = "!!!!";
  EXPECT_EQ(VerifyCheckpointSignature(bad).code(), StatusCode::kMalformed);
  bad = *checkpoint;
  bad.certificate_pem = "not pem";
  EXPECT_EQ(VerifyCheckpointSignature(bad).code(), StatusCode::kMalformed);
}

TEST_F(AuditChainTest, TrustIsCheckedAtTheCheckpointsOwnTime) {
  const AuditHead head{7, std::string(64, '7')};
  // The test PKI is issued at test start, so a checkpoint dated 2020 predates its certificates.
  StatusOr<AuditCheckpoint> now = SignCheckpoint(head, NowMs(), identity_);
  StatusOr<AuditCheckpoint> in_2020 = SignCheckpoint(head, 1590969600000, identity_);
  StatusOr<AuditCheckpoint> expired = SignCheckpoint(head, NowMs(), Load("expired"));
  ASSERT_TRUE(now.ok());
  ASSERT_TRUE(in_2020.ok());
  ASSERT_TRUE(expired.ok());
  EXPECT_TRUE(VerifyCheckpointSignature(*now, trust_.get()).ok());
  EXPECT_EQ(VerifyCheckpointSignature(*in_2020, trust_.get()).code(), StatusCode::kUnauthenticated);
  const Status expired_status = VerifyCheckpointSignature(*expired, trust_.get());
  EXPECT_EQ(expired_status.code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(expired_status.message(), HasSubstr("expired"));
}

TEST_F(AuditChainTest, EcdsaKeysSignCheckpointsToo) {
  SigningIdentity ec;
  ec.key.reset(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(ec.key, nullptr);
  ec.certificate.reset(X509_new());
  X509* cert = ec.certificate.get();
  ASSERT_EQ(X509_set_version(cert, 2), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ec test"), -1, -1, 0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  ASSERT_EQ(X509_set_pubkey(cert, ec.key.get()), 1);
  ASSERT_GT(X509_sign(cert, ec.key.get(), EVP_sha256()), 0);

  StatusOr<AuditCheckpoint> checkpoint = SignCheckpoint(AuditHead{3, std::string(64, '3')}, 5, ec);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().ToString();
  EXPECT_TRUE(VerifyCheckpointSignature(*checkpoint).ok());
  checkpoint->time_ms = 6;
  EXPECT_EQ(VerifyCheckpointSignature(*checkpoint).code(), StatusCode::kUnauthenticated);
}

// --- Keys and indexes -------------------------------------------------------------------------

TEST(AuditKeysTest, EventKeysSortInSequenceOrderAndParseBack) {
  EXPECT_LT(AuditEventKey(255), AuditEventKey(256));
  EXPECT_LT(AuditEventKey(1), AuditEventKey(std::uint64_t{1} << 40));
  StatusOr<std::uint64_t> parsed = ParseAuditEventKey(AuditEventKey(0x0102030405060708));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, 0x0102030405060708u);
  EXPECT_FALSE(ParseAuditEventKey("short").ok());
}

TEST(AuditKeysTest, IndexKeysParseBack) {
  const std::string key = AuditIndexKey(AuditIndex::kPatient, std::string(64, 'a'), -3, 99);
  StatusOr<AuditIndexEntry> entry = ParseAuditIndexKey(key);
  ASSERT_TRUE(entry.ok()) << entry.status().ToString();
  EXPECT_EQ(entry->index, AuditIndex::kPatient);
  EXPECT_EQ(entry->value, std::string(64, 'a'));
  EXPECT_EQ(entry->time_ms, -3);
  EXPECT_EQ(entry->sequence, 99u);

  StatusOr<AuditIndexEntry> time_entry =
      ParseAuditIndexKey(AuditIndexKey(AuditIndex::kTime, "", 5, 1));
  ASSERT_TRUE(time_entry.ok());
  EXPECT_EQ(time_entry->value, "");
  EXPECT_EQ(time_entry->time_ms, 5);
}

TEST(AuditKeysTest, MalformedIndexKeysAreRefused) {
  EXPECT_FALSE(ParseAuditIndexKey("").ok());
  std::string key = AuditIndexKey(AuditIndex::kKind, "accepted", 1, 1);
  EXPECT_FALSE(ParseAuditIndexKey(key.substr(1)).ok());
  key[0] = 'z';
  EXPECT_FALSE(ParseAuditIndexKey(key).ok());
  EXPECT_FALSE(ParseAuditIndexKey(std::string(1, 'k') + std::string(20, 'x')).ok());
}

TEST(AuditKeysTest, IndexKeysSortByValueThenTimeThenSequence) {
  const std::vector<std::string> ordered = {
      AuditIndexKey(AuditIndex::kPractice, "1", 5, 1),
      AuditIndexKey(AuditIndex::kPractice, "11", std::numeric_limits<std::int64_t>::min(), 0),
      AuditIndexKey(AuditIndex::kPractice, "11", -1, 7),
      AuditIndexKey(AuditIndex::kPractice, "11", 0, 3),
      AuditIndexKey(AuditIndex::kPractice, "11", 0, 4),
      AuditIndexKey(AuditIndex::kPractice, "11", 256, 1),
      AuditIndexKey(AuditIndex::kPractice, "2", 0, 0),
  };
  for (std::size_t i = 1; i < ordered.size(); ++i) {
    EXPECT_LT(ordered[i - 1], ordered[i]) << i;
  }
}

// Simulates the index column family: sealed events, their index keys, and a range scan.
class AuditQueryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuditChain chain(AuditHead{0, std::string(kZeroAuditHash)});
    const std::vector<std::pair<std::string, std::string>> practices_and_kinds = {
        {"81234530000", "accepted"},
        {"85432155100", "accepted"},
        {"81234530000", "answered"},
        {"81234530000", "accepted"},
        {"", "denied"},
        {"85432155100", "retry"}};
    for (std::size_t i = 0; i < practices_and_kinds.size(); ++i) {
      AuditEvent event = SampleEvent();
      event.practice_nihii = practices_and_kinds[i].first;
      event.kind = practices_and_kinds[i].second;
      event.patient_pseudonym = i % 2 == 0 ? PatientPseudonym(kKey, "85073003328") : "";
      event.time_ms = 1000 * static_cast<std::int64_t>(i);
      events_.push_back(chain.Seal(event));
      for (const std::string& key : AuditIndexKeysFor(events_.back())) {
        index_.insert(key);
      }
    }
  }

  std::vector<std::uint64_t> Run(const AuditQuery& query) const {
    const AuditIndexScan scan = PlanAuditIndexScan(query);
    std::vector<std::uint64_t> found;
    for (auto it = index_.lower_bound(scan.lower); it != index_.end() && *it < scan.upper; ++it) {
      StatusOr<AuditIndexEntry> entry = ParseAuditIndexKey(*it);
      EXPECT_TRUE(entry.ok());
      if (entry.ok() && AuditQueryMatches(query, events_.at(entry->sequence - 1))) {
        found.push_back(entry->sequence);
      }
    }
    return found;
  }

  static constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";
  std::vector<AuditEvent> events_;
  std::set<std::string> index_;
};

TEST_F(AuditQueryTest, EveryEventHasKindAndTimeEntriesAndOptionalOnes) {
  EXPECT_EQ(AuditIndexKeysFor(events_[0]).size(), 4u);  // practice, patient, kind, time
  EXPECT_EQ(AuditIndexKeysFor(events_[4]).size(), 3u);  // no practice, patient present
  EXPECT_EQ(AuditIndexKeysFor(events_[5]).size(), 3u);  // practice, no patient
}

TEST_F(AuditQueryTest, FindsByPracticeKindPatientAndTimeRange) {
  AuditQuery by_practice;
  by_practice.practice_nihii = "81234530000";
  EXPECT_EQ(Run(by_practice), (std::vector<std::uint64_t>{1, 3, 4}));

  AuditQuery by_kind;
  by_kind.kind = "accepted";
  EXPECT_EQ(Run(by_kind), (std::vector<std::uint64_t>{1, 2, 4}));

  AuditQuery by_patient;
  by_patient.patient_pseudonym = PatientPseudonym(kKey, "85.07.30-033.28");
  EXPECT_EQ(Run(by_patient), (std::vector<std::uint64_t>{1, 3, 5}));

  AuditQuery by_time;
  by_time.from_ms = 1000;
  by_time.to_ms = 3000;
  EXPECT_EQ(Run(by_time), (std::vector<std::uint64_t>{2, 3, 4}));

  AuditQuery combined;
  combined.practice_nihii = "81234530000";
  combined.kind = "accepted";
  combined.from_ms = 1;
  EXPECT_EQ(Run(combined), (std::vector<std::uint64_t>{4}));

  EXPECT_EQ(Run(AuditQuery{}).size(), 6u);
  AuditQuery none;
  none.practice_nihii = "8123453000";  // a prefix of a real value matches nothing
  EXPECT_TRUE(Run(none).empty());
}

}  // namespace
}  // namespace psl::store
