#include "gateway/delivery.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "base/testing/fake_clock.h"
#include "codecs/soap.h"
#include "codecs/testing/soap_test_support.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"
#include "store/memory_store.h"

namespace psl::gateway {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

constexpr char kRequest[] =
    "<mhm:SendSubscriptionRequest xmlns:mhm=\"urn:be:fgov:ehealth:mycarenet:"
    "medicalhousemembership:protocol:v1\" Id=\"_m1\"/>";

// Answers in the order given; records what was sent.
class ScriptedSender final : public Sender {
 public:
  HttpsResult Send(const std::string& insurer, const HttpsUrl& url, const HttpHeaders& headers,
                   std::string_view body) override {
    std::lock_guard<std::mutex> lock(mu_);
    sent.push_back({insurer, url.target, headers, std::string(body)});
    if (script.empty()) {
      HttpsResult r;
      r.error = TransportError::kConnect;
      r.error_detail = "nothing scripted";
      return r;
    }
    HttpsResult r = script.front();
    script.pop_front();
    return r;
  }

  struct Sent {
    std::string insurer;
    std::string target;
    HttpHeaders headers;
    std::string body;
  };
  std::mutex mu_;
  std::deque<HttpsResult> script;
  std::vector<Sent> sent;
};

HttpsResult Http(int status, std::string body, HttpHeaders headers = {}) {
  HttpsResult r;
  r.response.status = status;
  r.response.body = std::move(body);
  r.response.headers = std::move(headers);
  return r;
}

HttpsResult Transport(TransportError e) {
  HttpsResult r;
  r.error = e;
  r.error_detail = "scripted";
  return r;
}

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

}  // namespace
}  // namespace psl::gateway
