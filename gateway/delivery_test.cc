#include "gateway/delivery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "base/testing/fake_clock.h"
#include "codecs/eattest.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/mediprima.h"
#include "codecs/soap.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/testing/soap_test_support.h"
#include "codecs/testing/xades_test_support.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"
#include "gateway/mailbox.h"
#include "gateway/testing/scripted_sender.h"
#include "store/memory_store.h"

namespace psl::gateway {
namespace {

using sender_test::Http;
using sender_test::ScriptedSender;
using sender_test::Transport;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr char kRequest[] =
    "<mhm:SendSubscriptionRequest xmlns:mhm=\"urn:be:fgov:ehealth:mycarenet:"
    "medicalhousemembership:protocol:v1\" Id=\"_m1\"/>";

std::string SoapAnswer(const std::string& decision) {
  StatusOr<std::string> env = codecs::BuildSoapResponse("<answer decision=\"" + decision + "\"/>");
  EXPECT_TRUE(env.ok());
  return env.ok() ? *env : "";
}

std::string SoapFaultOf(const std::string& code) {
  codecs::SoapFault fault;
  fault.code = code;
  fault.message = "scripted fault";
  StatusOr<std::string> env = codecs::BuildSoapFault(fault);
  EXPECT_TRUE(env.ok());
  return env.ok() ? *env : "";
}

class DeliveryTest : public ::testing::Test {
 protected:
  DeliveryTest() : store_(&clock_) {
    InsurerConfig insurer;
    insurer.key = "100";
    insurer.endpoints[MessageKind::kEnrolment] = "https://127.0.0.1:8443/insurers/100/mhm";
    insurer.endpoints[MessageKind::kClaim] = "https://127.0.0.1:8443/insurers/100/genasync";
    insurer.max_in_flight = 1;
    insurer.retry.base = milliseconds(1'000);
    insurer.retry.cap = milliseconds(60'000);
    insurer.retry.max_attempts = 3;
    insurer.retry.max_age = std::chrono::hours(48);
    insurer.breaker.failure_threshold = 2;
    insurer.breaker.open = seconds(30);
    insurer.breaker.half_open_probes = 1;
    config_.insurers["100"] = insurer;
    material_ = codecs::soap_test::LoadMaterial();
    clock_.Set(std::chrono::system_clock::now());  // after the test PKI, issued now
  }

  void SetUp() override {
    DeliveryOptions options;
    options.seed = 7;
    delivery_ = std::make_unique<Delivery>(
        config_, &store_, &clock_, &material_.gateway, &sender_,
        [](const store::Lease&, std::string_view body) -> StatusOr<ParsedAnswer> {
          if (body.find("decision=\"bad-signature\"") != std::string_view::npos) {
            return Status::Invalid("the answer's signature does not verify");
          }
          ParsedAnswer a;
          a.decision = body.find("refused") != std::string_view::npos ? "refused" : "accepted";
          if (a.decision == "refused") {
            a.codes = {"260"};
          } else {
            a.insurer_reference = "IO-1";
          }
          return a;
        },
        [this](const std::string& insurer, const std::string&, std::string_view outcome) {
          std::lock_guard<std::mutex> lock(outcomes_mu_);
          outcomes_.push_back(insurer + ":" + std::string(outcome));
          outcomes_cv_.notify_all();
        },
        options);
  }

  void Commit(const std::string& id) {
    store::NewMessage m;
    m.id = id;
    m.practice_nihii = "81234530000";
    m.flow_kind = "enrolment";
    m.operation = "SendSubscription";
    m.destinations = {"100"};
    m.payload = kRequest;
    ASSERT_TRUE(store_.Commit(m).ok());
  }

  store::MessageRecord Record(const std::string& id) {
    StatusOr<store::MessageRecord> r = store_.Get(id);
    EXPECT_TRUE(r.ok());
    return r.ok() ? *r : store::MessageRecord{};
  }

  void Advance(milliseconds d) { clock_.Set(clock_.Now() + d); }

  codecs::XmlLibrary xml_;
  codecs::XmlSecLibrary xmlsec_;
  testing::FakeClock clock_;
  store::MemoryStore store_;
  Config config_;
  codecs::soap_test::Material material_;
  ScriptedSender sender_;
  std::mutex outcomes_mu_;
  std::condition_variable outcomes_cv_;
  std::vector<std::string> outcomes_;
  std::unique_ptr<Delivery> delivery_;
};

TEST_F(DeliveryTest, AnAnswerIsRecordedWithItsDecisionAndReference) {
  Commit("m1");
  sender_.script.push_back(Http(200, SoapAnswer("accepted")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kAnswered);
  StatusOr<std::vector<store::StoredAnswer>> answers = store_.Answers("m1");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].decision, "accepted");
  EXPECT_EQ((*answers)[0].insurer_reference, "IO-1");
  EXPECT_THAT((*answers)[0].document, HasSubstr("<answer"));
  EXPECT_FALSE(delivery_->RunOnce("100"));  // nothing left
  EXPECT_EQ(outcomes_, std::vector<std::string>{"100:answered"});
}

TEST_F(DeliveryTest, TheRequestIsASignedSoapEnvelopeWithTheFlowsActionAndTheMessageId) {
  Commit("m1");
  sender_.script.push_back(Http(200, SoapAnswer("accepted")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_EQ(sender_.sent.size(), 1u);
  const ScriptedSender::Sent& sent = sender_.sent[0];
  EXPECT_EQ(sent.insurer, "100");
  EXPECT_EQ(sent.target, "/insurers/100/mhm");
  auto header = [&](const std::string& name) {
    for (const auto& [k, v] : sent.headers) {
      if (k == name) {
        return v;
      }
    }
    return std::string();
  };
  EXPECT_EQ(header("soapaction"),
            "\"urn:be:fgov:ehealth:mycarenet:medicalHouseMembership:protocol:v1:"
            "SendSubscription\"");
  EXPECT_EQ(header("x-passerelle-message-id"), "m1");
  EXPECT_EQ(header("x-passerelle-attempt"), "1");
  // The insurer's side of the contract: the WS-Security signature verifies.
  StatusOr<codecs::VerifiedSoap> verified = codecs::VerifySoapRequest(
      sent.body, material_.trust.get(), clock_,
      codecs::SoapVerifyOptions{seconds(300), &material_.intermediates, {}});
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_THAT(verified->body_xml, HasSubstr("Id=\"_m1\""));
}

TEST_F(DeliveryTest, ABusinessRefusalIsAnAnswerNotAFailure) {
  Commit("m1");
  sender_.script.push_back(Http(200, SoapAnswer("refused")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kAnswered);
  EXPECT_EQ((*store_.Answers("m1"))[0].codes, std::vector<std::string>{"260"});
  EXPECT_FALSE(delivery_->breaker_open("100"));
}

TEST_F(DeliveryTest, ServerErrorsAreRetriedWithBackoffUntilAnswered) {
  Commit("m1");
  sender_.script.push_back(Http(503, "busy"));
  sender_.script.push_back(Http(200, SoapAnswer("accepted")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  store::MessageRecord r = Record("m1");
  EXPECT_EQ(r.state, store::MessageState::kRetrying);
  EXPECT_EQ(r.last_error, "HTTP 503");
  EXPECT_LE(r.next_attempt_ms, store::ToEpochMs(clock_.Now()) + 1'000);  // base 1 s, full jitter
  Advance(milliseconds(1'001));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kAnswered);
  EXPECT_EQ(Record("m1").attempts, 2u);
}

TEST_F(DeliveryTest, RetryAfterIsHonoured) {
  Commit("m1");
  sender_.script.push_back(Http(429, "slow down", {{"retry-after", "45"}}));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  store::MessageRecord r = Record("m1");
  EXPECT_EQ(r.state, store::MessageState::kRetrying);
  EXPECT_GE(r.next_attempt_ms, store::ToEpochMs(clock_.Now()) + 45'000);
  Advance(seconds(30));
  EXPECT_FALSE(delivery_->RunOnce("100"));  // not due yet
}

TEST_F(DeliveryTest, RetryAfterIsCappedByThePolicy) {
  Commit("m1");
  sender_.script.push_back(Http(503, "down", {{"retry-after", "999999"}}));  // ~11 days
  ASSERT_TRUE(delivery_->RunOnce("100"));
  store::MessageRecord r = Record("m1");
  EXPECT_EQ(r.state, store::MessageState::kRetrying);
  EXPECT_LE(r.next_attempt_ms, store::ToEpochMs(clock_.Now()) + 60'000);  // cap 60 s
}

TEST_F(DeliveryTest, ARequestTimeoutFromTheInsurerIsRetried) {
  Commit("m1");
  sender_.script.push_back(Http(408, ""));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kRetrying);
}

TEST_F(DeliveryTest, ForeignTextIsSanitisedBeforeItIsStoredAsAReason) {
  Commit("m1");
  codecs::SoapFault fault;
  fault.code = "Client";
  fault.message = "patient 85010100147 unknown at mutuality";
  StatusOr<std::string> env = codecs::BuildSoapFault(fault);
  ASSERT_TRUE(env.ok());
  sender_.script.push_back(Http(500, *env));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  const std::string reason = store_.DeadLetters({})->letters.at(0).reason;
  EXPECT_THAT(reason, HasSubstr("patient [number] unknown"));
  EXPECT_EQ(reason.find("85010100147"), std::string::npos);
  EXPECT_EQ(Record("m1").last_error.find("85010100147"), std::string::npos);
}

TEST_F(DeliveryTest, TransportFailuresAreRetriedAndExhaustedAttemptsGoToDeadLetters) {
  Commit("m1");
  for (TransportError e : {TransportError::kReset, TransportError::kTimeout}) {
    sender_.script.push_back(Transport(e));
    ASSERT_TRUE(delivery_->RunOnce("100"));
    EXPECT_EQ(Record("m1").state, store::MessageState::kRetrying);
    EXPECT_THAT(Record("m1").last_error, HasSubstr(TransportErrorName(e)));
    Advance(seconds(61));  // past any back-off, and past the breaker's open time
    Advance(seconds(30));
  }
  sender_.script.push_back(Transport(TransportError::kConnect));
  ASSERT_TRUE(delivery_->RunOnce("100"));  // attempt 3 of 3
  EXPECT_EQ(Record("m1").state, store::MessageState::kDead);
  StatusOr<store::DeadLetterPage> dead = store_.DeadLetters({});
  ASSERT_TRUE(dead.ok());
  ASSERT_EQ(dead->letters.size(), 1u);
  EXPECT_THAT(dead->letters[0].reason, HasSubstr("attempts exhausted"));
  EXPECT_THAT(dead->letters[0].reason, HasSubstr("connect"));
}

TEST_F(DeliveryTest, ClientErrorsAndClientFaultsAreDeadLetteredAtOnce) {
  Commit("m1");
  Commit("m2");
  sender_.script.push_back(Http(400, "no"));
  sender_.script.push_back(Http(500, SoapFaultOf("Client")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kDead);
  EXPECT_EQ(Record("m2").state, store::MessageState::kDead);
  StatusOr<store::DeadLetterPage> dead = store_.DeadLetters({});
  ASSERT_EQ(dead->letters.size(), 2u);
  EXPECT_THAT(dead->letters[0].reason, HasSubstr("HTTP 400"));
  EXPECT_THAT(dead->letters[1].reason, HasSubstr("SOAP fault Client"));
}

TEST_F(DeliveryTest, AServerFaultIsRetried) {
  Commit("m1");
  sender_.script.push_back(Http(500, SoapFaultOf("Server")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kRetrying);
}

TEST_F(DeliveryTest, AnAnswerThatFailsVerificationIsDeadLettered) {
  Commit("m1");
  sender_.script.push_back(Http(200, SoapAnswer("bad-signature")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kDead);
  EXPECT_THAT(store_.DeadLetters({})->letters[0].reason, HasSubstr("signature"));
}

TEST_F(DeliveryTest, TheBreakerOpensAfterConsecutiveFailuresAndAProbeClosesIt) {
  Commit("m1");
  Commit("m2");
  sender_.script.push_back(Http(503, ""));
  sender_.script.push_back(Http(503, ""));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_TRUE(delivery_->breaker_open("100"));
  Advance(seconds(10));  // both entries are due again, but the breaker is open for 30 s
  EXPECT_FALSE(delivery_->RunOnce("100"));
  EXPECT_EQ(sender_.sent.size(), 2u);
  Advance(seconds(21));
  sender_.script.push_back(Http(200, SoapAnswer("accepted")));
  ASSERT_TRUE(delivery_->RunOnce("100"));  // the probe
  EXPECT_FALSE(delivery_->breaker_open("100"));
  sender_.script.push_back(Http(200, SoapAnswer("accepted")));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("m1").state, store::MessageState::kAnswered);
  EXPECT_EQ(Record("m2").state, store::MessageState::kAnswered);
}

TEST_F(DeliveryTest, AFailedProbeReopensTheBreaker) {
  Commit("m1");
  sender_.script.push_back(Http(503, ""));
  sender_.script.push_back(Http(503, ""));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  Advance(seconds(2));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_TRUE(delivery_->breaker_open("100"));
  Advance(seconds(31));
  sender_.script.push_back(Http(503, ""));
  ASSERT_TRUE(delivery_->RunOnce("100"));  // probe fails (attempt 3 of 3: dead, yet a failure)
  EXPECT_TRUE(delivery_->breaker_open("100"));
}

TEST_F(DeliveryTest, WorkersDeliverWhatIsCommittedAndStopCleanly) {
  for (int i = 0; i < 5; ++i) {
    Commit("w" + std::to_string(i));
    sender_.script.push_back(Http(200, SoapAnswer("accepted")));
  }
  delivery_->Start();
  delivery_->Notify("100");
  {
    std::unique_lock<std::mutex> lock(outcomes_mu_);
    // A bounded wait on the outcome itself (not a sleep): it returns as soon as five are in.
    outcomes_cv_.wait_for(lock, seconds(60), [&] { return outcomes_.size() >= 5; });
  }
  delivery_->Stop();
  EXPECT_EQ(delivery_->stats().answered, 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(Record("w" + std::to_string(i)).state, store::MessageState::kAnswered);
  }
}

TEST(DeliveryBackoffTest, FullJitterStaysUnderTheCappedExponential) {
  RetryPolicy policy;
  policy.base = milliseconds(100);
  policy.cap = milliseconds(5'000);
  std::mt19937_64 rng(1);
  for (std::uint32_t attempt = 1; attempt <= 12; ++attempt) {
    const std::int64_t ceiling = std::min<std::int64_t>(5'000, 100LL << (attempt - 1));
    std::int64_t highest = 0;
    for (int i = 0; i < 200; ++i) {
      const milliseconds d = Delivery::Backoff(policy, attempt, milliseconds(0), rng);
      EXPECT_GE(d.count(), 0);
      EXPECT_LE(d.count(), ceiling);
      highest = std::max<std::int64_t>(highest, d.count());
    }
    EXPECT_GT(highest, ceiling / 2);  // jitter covers the range, not a constant
  }
  EXPECT_GE(Delivery::Backoff(policy, 1, milliseconds(9'000), rng).count(), 9'000);
}

TEST(DeliveryBackoffTest, RetryAfterIsReadAsSecondsOrAnHttpDate) {
  const auto now = std::chrono::system_clock::from_time_t(784111777);  // 06 Nov 1994 08:49:37
  EXPECT_EQ(Delivery::ParseRetryAfter("120", now), seconds(120));
  EXPECT_EQ(Delivery::ParseRetryAfter(" 5 ", now), seconds(5));
  EXPECT_EQ(Delivery::ParseRetryAfter("Sun, 06 Nov 1994 08:50:37 GMT", now), seconds(60));
  EXPECT_EQ(Delivery::ParseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), seconds(0));
  EXPECT_EQ(Delivery::ParseRetryAfter("soon", now), seconds(0));
  EXPECT_EQ(Delivery::ParseRetryAfter("", now), seconds(0));
  EXPECT_EQ(Delivery::ParseRetryAfter("99999999999999", now), seconds(0));
}

// ---- Generic Async posts (eFact claims and AMU invoices) ----

class GenAsyncDeliveryTest : public DeliveryTest {
 protected:
  void SetUp() override {
    (void)codecs::mhm_test::TestSchemas();
    DeliveryOptions options;
    options.seed = 7;
    delivery_ = std::make_unique<Delivery>(
        config_, &store_, &clock_, &material_.gateway, &sender_,
        [](const store::Lease& lease, std::string_view body) {
          return ParsePostAnswer(lease, body, codecs::mhm_test::TestSchemas());
        },
        AttemptObserver{}, options);
  }

  void CommitClaim(const std::string& id) {
    store::NewMessage m;
    m.id = id;
    m.practice_nihii = "81234530000";
    m.flow_kind = "claim";
    m.operation = "post";
    m.destinations = {"100"};
    m.payload = "<gen:post xmlns:gen=\"urn:be:cin:nip:async:generic\"/>";
    ASSERT_TRUE(store_.Commit(m).ok());
  }

  static std::string TAckAnswer(const std::string& id, bool success) {
    codecs::TAck tack;
    tack.issuer = "urn:nip:issuer:io:100";
    tack.applies_to = codecs::TAckAppliesTo(id);
    tack.result_major = std::string(success ? codecs::kTAckSuccess : codecs::kTAckFailure);
    if (!success) {
      tack.result_minor = "urn:nip:tack:result:minor:invalid";
    }
    tack.reference = "NIP-" + id;
    StatusOr<std::string> body = codecs::BuildPostResponse(tack);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    StatusOr<std::string> env = codecs::BuildSoapResponse(body.ok() ? *body : "<x/>");
    EXPECT_TRUE(env.ok());
    return env.ok() ? *env : "";
  }
};

TEST_F(GenAsyncDeliveryTest, PostGoesToTheClaimEndpointWithItsActionAndAddressAndIsReceived) {
  CommitClaim("c1");
  sender_.script.push_back(Http(200, TAckAnswer("c1", true)));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_EQ(sender_.sent.size(), 1u);
  const ScriptedSender::Sent& sent = sender_.sent[0];
  EXPECT_EQ(sent.target, "/insurers/100/genasync");
  std::string action;
  for (const auto& [k, v] : sent.headers) {
    if (k == "soapaction") {
      action = v;
    }
  }
  EXPECT_EQ(action, "\"" + std::string(codecs::kGenAsyncPostAction) + "\"");
  EXPECT_THAT(sent.body, HasSubstr(">urn:nip:destination:io:100</wsa:To>"));
  EXPECT_THAT(sent.body, HasSubstr(">urn:be:cin:nip:async:generic:post:msg</wsa:Action>"));
  // The WS-Addressing headers do not disturb the WS-Security signature.
  StatusOr<codecs::VerifiedSoap> verified = codecs::VerifySoapRequest(
      sent.body, material_.trust.get(), clock_,
      codecs::SoapVerifyOptions{seconds(300), &material_.intermediates, {}});
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(Record("c1").state, store::MessageState::kAnswered);
  StatusOr<std::vector<store::StoredAnswer>> answers = store_.Answers("c1");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].decision, "received");
  EXPECT_EQ((*answers)[0].insurer_reference, "NIP-c1");
}

TEST_F(GenAsyncDeliveryTest, ARefusingTAckIsAnAnswerWithItsCode) {
  CommitClaim("c2");
  sender_.script.push_back(Http(200, TAckAnswer("c2", false)));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  StatusOr<std::vector<store::StoredAnswer>> answers = store_.Answers("c2");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].decision, "refused");
  EXPECT_EQ((*answers)[0].codes, std::vector<std::string>{"urn:nip:tack:result:minor:invalid"});
}

TEST_F(GenAsyncDeliveryTest, ServerErrorIsRetriedAndTheTAckOfAnotherPostIsRefused) {
  CommitClaim("c3");
  sender_.script.push_back(Http(503, "busy"));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("c3").state, store::MessageState::kRetrying);
  Advance(milliseconds(1'001));
  sender_.script.push_back(Http(200, TAckAnswer("someone-else", true)));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("c3").state, store::MessageState::kDead);
}

// ---- eAttest and MediPrima: per-service endpoints, actions, attempt numbers, answers ----

std::string CorpusFile(const std::string& name) {
  return codecs::xades_test::ReadFile(std::string(PSL_SOURCE_DIR) + "/conformance/" + name);
}

std::string HeaderOf(const HttpHeaders& headers, const std::string& name) {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

class FlowsDeliveryTest : public DeliveryTest {
 protected:
  void SetUp() override {
    (void)codecs::mhm_test::TestSchemas();
    InsurerConfig& insurer = config_.insurers["100"];
    insurer.eattest_url = "https://127.0.0.1:8443/insurers/100/eattest";
    insurer.mediprima_uma_url = "https://127.0.0.1:8443/MediPrima/UMA/v1";
    insurer.mediprima_consult_url = "https://127.0.0.1:8443/MediPrima/Consult/v2";
    DeliveryOptions options;
    options.seed = 7;
    delivery_ = std::make_unique<Delivery>(
        config_, &store_, &clock_, &material_.gateway, &sender_,
        [this](const store::Lease& lease, std::string_view body) -> StatusOr<ParsedAnswer> {
          if (IsMediPrimaMessage(lease.flow_kind, lease.operation)) {
            return ParseMediPrimaAnswer(lease, body, codecs::mhm_test::TestSchemas());
          }
          return ParseEAttestAnswer(lease, body, codecs::mhm_test::TestSchemas(), material_.gateway,
                                    material_.trust.get(), clock_);
        },
        AttemptObserver{}, options);
  }

  // A sealed eAttest request, as the intake stores it (root @Id "_<id>", attemptNbr 1).
  void CommitEAttest(const std::string& id, const std::string& file = "valid/send_basic.xml") {
    std::string xml = CorpusFile("eattest/" + file);
    xml = codecs::mhm_test::ReplaceAll(xml, "Id=\"_7f3a0c1e-0000-4000-8000-000000000000\"",
                                       "Id=\"_" + id + "\"");
    StatusOr<std::string> sealed = codecs::PrepareRequestXmlForInsurer(
        xml, material_.gateway, material_.insurer.certificate.get(), 1,
        codecs::mhm_test::TestSchemas(), clock_);
    ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
    store::NewMessage m;
    m.id = id;
    m.practice_nihii = "12345625004";
    m.flow_kind = "claim";
    m.operation =
        file.find("cancel") != std::string::npos ? "CancelAttestation" : "SendAttestation";
    m.destinations = {"100"};
    m.payload = *sealed;
    ASSERT_TRUE(store_.Commit(m).ok());
  }

  // What the insurer opens from a sent request.
  StatusOr<codecs::OpenedAttestation> Open(const ScriptedSender::Sent& sent) {
    StatusOr<codecs::VerifiedSoap> verified = codecs::VerifySoapRequest(
        sent.body, material_.trust.get(), clock_,
        codecs::SoapVerifyOptions{seconds(300), &material_.intermediates, {}});
    if (!verified.ok()) {
      return verified.status();
    }
    return codecs::OpenAtInsurer(verified->body_xml, codecs::mhm_test::TestSchemas(),
                                 material_.insurer, material_.trust.get(), clock_);
  }

  std::string EAttestAnswer(const codecs::OpenedAttestation& opened, bool accepted) {
    codecs::EAttestResponseSpec spec;
    spec.accepted = accepted;
    spec.insurer_code = "100";
    if (accepted) {
      spec.invoicing_number = "100.20250102.0001";
    } else {
      spec.errors.push_back({"187", "", ""});
    }
    StatusOr<std::string> body = codecs::BuildAttestationResponse(
        opened, spec, material_.insurer, codecs::mhm_test::TestSchemas(), clock_);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    StatusOr<std::string> env = codecs::BuildSoapResponse(body.ok() ? *body : "<x/>");
    EXPECT_TRUE(env.ok());
    return env.ok() ? *env : "";
  }

  // A MediPrima corpus request with root @Id "_<id>", committed for 100.
  void CommitMediPrima(const std::string& id, const std::string& file, const std::string& op) {
    std::string xml = CorpusFile("mediprima/" + file);
    StatusOr<XmlDocPtr> doc = codecs::ParseUntrustedXml(xml, codecs::XmlLimits{}, nullptr);
    ASSERT_TRUE(doc.ok());
    const std::string root_id = "_" + id;
    xmlSetProp(xmlDocGetRootElement(doc->get()), reinterpret_cast<const xmlChar*>("Id"),
               reinterpret_cast<const xmlChar*>(root_id.c_str()));
    xmlChar* buf = nullptr;
    int size = 0;
    xmlDocDumpMemoryEnc(doc->get(), &buf, &size, "UTF-8");
    std::string payload(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(size));
    xmlFree(buf);
    store::NewMessage m;
    m.id = id;
    m.practice_nihii = "81234530000";
    m.flow_kind = "amu";
    m.operation = op;
    m.destinations = {"100"};
    m.payload = payload;
    ASSERT_TRUE(store_.Commit(m).ok());
  }

  // The simulator's side: decode the sent request and answer it.
  std::string MediPrimaAnswer(const ScriptedSender::Sent& sent,
                              const codecs::MediPrimaResponseSpec& spec) {
    StatusOr<codecs::VerifiedSoap> verified = codecs::VerifySoapRequest(
        sent.body, material_.trust.get(), clock_,
        codecs::SoapVerifyOptions{seconds(300), &material_.intermediates, {}});
    EXPECT_TRUE(verified.ok()) << verified.status().ToString();
    if (!verified.ok()) {
      return "";
    }
    testing::FakeClock corpus_day;
    corpus_day.SetUtc(2025, 1, 2, 10, 0);
    codecs::ValidationReport report;
    StatusOr<codecs::MediPrimaRequest> request =
        codecs::MediPrimaCodec(codecs::mhm_test::TestSchemas(), corpus_day)
            .Decode(verified->body_xml, "", &report);
    EXPECT_TRUE(request.ok()) << request.status().ToString();
    if (!request.ok()) {
      return "";
    }
    StatusOr<std::string> body = codecs::BuildMediPrimaResponse(*request, spec, clock_);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    StatusOr<std::string> env = codecs::BuildSoapResponse(body.ok() ? *body : "<x/>");
    return env.ok() ? *env : "";
  }
};

TEST_F(FlowsDeliveryTest, EAttestGoesToItsEndpointNumberingEveryAttemptAndIsAnswered) {
  CommitEAttest("e1");
  sender_.script.push_back(Http(503, "busy"));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("e1").state, store::MessageState::kRetrying);
  ASSERT_EQ(sender_.sent.size(), 1u);
  EXPECT_EQ(sender_.sent[0].target, "/insurers/100/eattest");
  EXPECT_EQ(HeaderOf(sender_.sent[0].headers, "soapaction"),
            "\"" + std::string(codecs::EAttestSoapAction(codecs::EAttestOperation::kSend)) + "\"");
  StatusOr<codecs::OpenedAttestation> first = Open(sender_.sent[0]);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->attempt_nbr, 1);
  EXPECT_EQ(first->envelope_id, "_e1");

  Advance(milliseconds(1'001));
  // The retry carries attemptNbr 2; the insurer answers it (sealed for the gateway).
  sender_.script.push_back(Http(200, EAttestAnswer(*first, true)));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_EQ(sender_.sent.size(), 2u);
  StatusOr<codecs::OpenedAttestation> second = Open(sender_.sent[1]);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->attempt_nbr, 2);
  EXPECT_EQ(Record("e1").state, store::MessageState::kAnswered);
  StatusOr<std::vector<store::StoredAnswer>> answers = store_.Answers("e1");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].decision, "accepted");
  EXPECT_EQ((*answers)[0].insurer_reference, "100.20250102.0001");
}

TEST_F(FlowsDeliveryTest, EAttestRefusalIsAnAnswerWithItsCode) {
  CommitEAttest("e2");
  // The answer is built for the request as it will be sent (the first attempt).
  StatusOr<std::optional<store::Lease>> lease = store_.LeaseNext("100", clock_.Now(), seconds(1));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  StatusOr<codecs::OpenedAttestation> opened =
      codecs::OpenAtInsurer((*lease)->payload, codecs::mhm_test::TestSchemas(), material_.insurer,
                            material_.trust.get(), clock_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  Advance(seconds(2));  // the test's lease expires: the entry is due again
  sender_.script.push_back(Http(200, EAttestAnswer(*opened, false)));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  StatusOr<std::vector<store::StoredAnswer>> answers = store_.Answers("e2");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].decision, "refused");
  EXPECT_EQ((*answers)[0].codes, std::vector<std::string>{"187"});
}

TEST_F(FlowsDeliveryTest, EAttestAnswerToAnotherRequestIsDeadLettered) {
  CommitEAttest("e3");
  CommitEAttest("e4");
  StatusOr<std::optional<store::Lease>> lease = store_.LeaseNext("100", clock_.Now(), seconds(1));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  const std::string leased = (*lease)->message_id;
  StatusOr<codecs::OpenedAttestation> opened =
      codecs::OpenAtInsurer((*lease)->payload, codecs::mhm_test::TestSchemas(), material_.insurer,
                            material_.trust.get(), clock_);
  ASSERT_TRUE(opened.ok());
  const std::string other = leased == "e3" ? "e4" : "e3";
  Advance(seconds(2));
  // Deliver `other` first (it is due as well): answered with the leased one's answer.
  sender_.script.push_back(Http(200, EAttestAnswer(*opened, true)));
  sender_.script.push_back(Http(200, EAttestAnswer(*opened, true)));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record(leased).state, store::MessageState::kAnswered);
  EXPECT_EQ(Record(other).state, store::MessageState::kDead);
}

TEST_F(FlowsDeliveryTest, MediPrimaGoesUnsignedToItsServiceWithItsActionAndIsAnswered) {
  CommitMediPrima("p1", "valid/send_bis.xml", "SendUrgentMedicalAidAttestation");
  // The answer depends on the request: script it from what was sent.
  sender_.script.push_back(Transport(TransportError::kConnect));
  ASSERT_TRUE(delivery_->RunOnce("100"));  // retried
  ASSERT_EQ(sender_.sent.size(), 1u);
  EXPECT_EQ(sender_.sent[0].target, "/MediPrima/UMA/v1");
  EXPECT_EQ(HeaderOf(sender_.sent[0].headers, "soapaction"),
            "\"" + std::string(codecs::kMediPrimaSendSoapAction) + "\"");
  EXPECT_THAT(sender_.sent[0].body, ::testing::Not(HasSubstr("Xades")));
  codecs::MediPrimaResponseSpec spec;
  spec.attestation_number = "UMA-100-000001";
  sender_.script.push_back(Http(200, MediPrimaAnswer(sender_.sent[0], spec)));
  Advance(milliseconds(1'001));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("p1").state, store::MessageState::kAnswered);
  StatusOr<std::vector<store::StoredAnswer>> answers = store_.Answers("p1");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].decision, "accepted");
  EXPECT_EQ((*answers)[0].insurer_reference, "UMA-100-000001");
}

TEST_F(FlowsDeliveryTest, MediPrimaConsultGoesToTheConsultServiceAndARefusalKeepsItsCodes) {
  CommitMediPrima("p2", "valid/consult_niss.xml", "ConsultCarmedIntervention");
  sender_.script.push_back(Transport(TransportError::kConnect));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  ASSERT_EQ(sender_.sent.size(), 1u);
  EXPECT_EQ(sender_.sent[0].target, "/MediPrima/Consult/v2");
  EXPECT_EQ(HeaderOf(sender_.sent[0].headers, "soapaction"),
            "\"" + std::string(codecs::kMediPrimaConsultSoapAction) + "\"");
  codecs::MediPrimaResponseSpec spec;
  spec.status = std::string(codecs::kEhealthStatusRequester);
  spec.errors.push_back({"MSG-00001", "", ""});
  sender_.script.push_back(Http(200, MediPrimaAnswer(sender_.sent[0], spec)));
  Advance(milliseconds(1'001));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  StatusOr<std::vector<store::StoredAnswer>> answers = store_.Answers("p2");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].decision, "refused");
  EXPECT_THAT((*answers)[0].codes, ::testing::Contains("MSG-00001"));
}

TEST_F(FlowsDeliveryTest, MediPrimaAnswerToAnotherRequestIsDeadLettered) {
  CommitMediPrima("p3", "valid/send_bis.xml", "SendUrgentMedicalAidAttestation");
  sender_.script.push_back(Transport(TransportError::kConnect));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  codecs::MediPrimaResponseSpec spec;
  spec.attestation_number = "UMA-100-000002";
  std::string answer = MediPrimaAnswer(sender_.sent[0], spec);
  answer = codecs::mhm_test::ReplaceAll(answer, "InResponseTo=\"_p3\"", "InResponseTo=\"_p9\"");
  sender_.script.push_back(Http(200, answer));
  Advance(milliseconds(1'001));
  ASSERT_TRUE(delivery_->RunOnce("100"));
  EXPECT_EQ(Record("p3").state, store::MessageState::kDead);
  EXPECT_THAT(Record("p3").last_error, HasSubstr("another request"));
}

}  // namespace
}  // namespace psl::gateway
