#include "conformance/simulator/insurer_simulator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <string>

#include "base/brussels_time.h"
#include "base/testing/fake_clock.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/eattest.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/mediprima.h"
#include "codecs/mhm_response.h"
#include "codecs/mhm_rules.h"
#include "codecs/soap.h"
#include "codecs/xml_util.h"
// GCC 12 sees a false maybe-uninitialized in SampleFile()'s default SampleInvoice when inlined
// here (-O2); the header is fine.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "codecs/testing/efact_test_support.h"
#pragma GCC diagnostic pop
#include "codecs/testing/mhm_test_support.h"
#include "codecs/testing/soap_test_support.h"
#include "codecs/testing/xades_test_support.h"
#include "gateway/https_client.h"
#include "gateway/https_server.h"

#include <nlohmann/json.hpp>

namespace psl::simulator {
namespace {

using codecs::MhmAnswer;
using codecs::MhmOperation;
using codecs::mhm_test::Redated;
using codecs::mhm_test::ReplaceAll;
using gateway::HttpRequest;
using gateway::HttpResponse;
using std::chrono::seconds;

constexpr char kSampleId[] = "_a1b2c3d4-0000-4000-8000-000000000001";
constexpr char kSampleNiss[] = "90010100123";
constexpr char kOtherNiss[] = "85071412429";  // the conformance cancellation's patient

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) {
      return v;
    }
  }
  return "";
}

class InsurerSimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    codecs::xades_test::InitLibraries();
    ASSERT_TRUE(codecs::xades_test::Pki().ok()) << "certs/make-test-pki.sh failed";
    clock_.Set(std::chrono::floor<seconds>(std::chrono::system_clock::now()));
    material_ = codecs::soap_test::LoadMaterial();
    StatusOr<std::unique_ptr<InsurerSimulator>> sim = InsurerSimulator::Create(BaseOptions());
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim).value();
  }

  InsurerSimulator::Options BaseOptions() {
    InsurerSimulator::Options options;
    options.insurers = {"300", "500"};
    options.schemas = &codecs::mhm_test::TestSchemas();
    options.trust = material_.trust.get();
    options.intermediates = &material_.intermediates;
    options.signer = &material_.insurer;
    options.clock = &clock_;
    options.random_seed = 1;
    options.workers = 1;  // the async test relies on jobs running in order
    return options;
  }

  // The sample subscription for `niss`, with root @Id `id`.
  std::string Subscription(const std::string& id, const std::string& niss = kSampleNiss) {
    std::string envelope = Redated(codecs::xades_test::SampleEnvelope(), clock_,
                                   [&](std::string& d) { d = ReplaceAll(d, kSampleNiss, niss); });
    envelope = ReplaceAll(envelope, kSampleNiss, niss);
    return ReplaceAll(envelope, kSampleId, id);
  }

  // The conformance cancellation for the sample patient, sent by the sample's medical house,
  // naming `reference`.
  std::string Cancellation(const std::string& id, const std::string& reference) {
    std::string envelope = codecs::xades_test::ReadFile(
        std::string(PSL_SOURCE_DIR) + "/conformance/mhm/valid/cancellation_basic.xml");
    envelope = ReplaceAll(envelope, "81234530111", "81234530000");
    envelope = ReplaceAll(envelope, "_1f01f1df-06c5-5911-8770-fc03549ec7ba", id);
    return Redated(envelope, clock_, [&](std::string& d) {
      d = ReplaceAll(ReplaceAll(d, "81234530111", "81234530000"), "300123456789", reference);
    });
  }

  // XAdES by `xades_signer`, then WS-Security by `soap_signer`, posted to insurer `code`.
  HttpRequest Post(const std::string& body, MhmOperation op, const std::string& code = "300",
                   const SigningIdentity* xades_signer = nullptr,
                   const SigningIdentity* soap_signer = nullptr) {
    StatusOr<std::string> signed_body = codecs::SignBlobRequest(
        body, xades_signer != nullptr ? *xades_signer : material_.gateway, nullptr, clock_);
    EXPECT_TRUE(signed_body.ok()) << signed_body.status().ToString();
    StatusOr<std::string> envelope = codecs::BuildSoapRequest(
        signed_body.ok() ? *signed_body : body, codecs::SoapSecurityOptions(),
        soap_signer != nullptr ? *soap_signer : material_.gateway, clock_);
    EXPECT_TRUE(envelope.ok()) << envelope.status().ToString();
    HttpRequest request;
    request.method = "POST";
    request.target = "/insurers/" + code + "/mhm";
    request.headers = {{"content-type", codecs::kSoap11ContentType},
                       {"soapaction", "\"" + std::string(codecs::MhmSoapAction(op)) + "\""}};
    request.body = envelope.ok() ? *envelope : std::string();
    return request;
  }

  StatusOr<MhmAnswer> AnswerOf(const HttpResponse& response) {
    EXPECT_EQ(response.status, 200) << response.body.substr(0, 2000);
    return codecs::ParseMhmResponse(response.body, codecs::mhm_test::TestSchemas(),
                                    material_.trust.get(), clock_);
  }

  MhmAnswer Answered(const HttpRequest& request) {
    StatusOr<MhmAnswer> answer = AnswerOf(sim_->Handle(request));
    EXPECT_TRUE(answer.ok()) << answer.status().ToString();
    return answer.ok() ? std::move(answer).value() : MhmAnswer();
  }

  HttpResponse Control(const std::string& method, const std::string& path,
                       const std::string& body = "") {
    HttpRequest request;
    request.method = method;
    request.target = path;
    request.body = body;
    return sim_->Handle(request);
  }

  nlohmann::json Stats() { return nlohmann::json::parse(Control("GET", "/control/stats").body); }

  // The Fault reason of a SOAP Fault response (HTTP 500, faultcode Client).
  std::string ClientFaultReason(const HttpResponse& response) {
    EXPECT_EQ(response.status, 500);
    StatusOr<codecs::SoapFault> fault = codecs::ParseSoapFault(response.body);
    EXPECT_TRUE(fault.ok()) << fault.status().ToString() << response.body;
    if (!fault.ok()) {
      return "";
    }
    EXPECT_EQ(fault->code, "Client");
    EXPECT_EQ(fault->message.find(kSampleNiss), std::string::npos);
    return fault->message;
  }

  psl::testing::FakeClock clock_;
  codecs::soap_test::Material material_;
  std::unique_ptr<InsurerSimulator> sim_;
};

TEST_F(InsurerSimulatorTest, AcceptsASubscriptionWithASignedAnswer) {
  const MhmAnswer answer = Answered(Post(Subscription("_sub-1"), MhmOperation::kSubscription));
  EXPECT_EQ(answer.decision, codecs::kMhmAccepted);
  EXPECT_EQ(answer.insurer_reference, "300000000001");
  EXPECT_EQ(answer.input_reference, "_sub-1");
  EXPECT_TRUE(answer.codes.empty());
  EXPECT_NE(answer.signer_subject.find("CN=insurer-300"), std::string::npos);
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["received"], 1);
  EXPECT_EQ(stats["accepted"], 1);
  EXPECT_EQ(stats["by_insurer"]["300"]["accepted"], 1);
  EXPECT_EQ(stats["by_insurer"]["500"]["received"], 0);
}

TEST_F(InsurerSimulatorTest, ARepeatedIdGetsTheSameStoredAnswerAndCountsADuplicate) {
  const HttpRequest first = Post(Subscription("_sub-dup"), MhmOperation::kSubscription);
  const HttpResponse a = sim_->Handle(first);
  ASSERT_EQ(a.status, 200);
  // A retry is signed again (new WS-Security timestamp and XAdES): same @Id, same answer.
  clock_.Set(clock_.Now() + seconds(5));
  const HttpResponse b = sim_->Handle(Post(Subscription("_sub-dup"), MhmOperation::kSubscription));
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(a.body, b.body);
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["received"], 2);
  EXPECT_EQ(stats["accepted"], 1);
  EXPECT_EQ(stats["duplicates"], 1);
}

TEST_F(InsurerSimulatorTest, ASecondEnrolmentOfTheSamePatientIsRefused260) {
  EXPECT_EQ(Answered(Post(Subscription("_sub-a"), MhmOperation::kSubscription)).decision,
            codecs::kMhmAccepted);
  const MhmAnswer second = Answered(Post(Subscription("_sub-b"), MhmOperation::kSubscription));
  EXPECT_EQ(second.decision, codecs::kMhmRefused);
  EXPECT_EQ(second.codes, std::vector<std::string>{"260"});
  // Another patient, and the same patient at another insurer, are accepted.
  EXPECT_EQ(
      Answered(Post(Subscription("_sub-c", kOtherNiss), MhmOperation::kSubscription)).decision,
      codecs::kMhmAccepted);
  const MhmAnswer other_insurer =
      Answered(Post(Subscription("_sub-d"), MhmOperation::kSubscription, "500"));
  EXPECT_EQ(other_insurer.decision, codecs::kMhmAccepted);
  EXPECT_EQ(other_insurer.insurer_reference, "500000000001");
  EXPECT_EQ(Stats()["refused"], 1);
}

TEST_F(InsurerSimulatorTest, CancellingAnUnknownReferenceIsRefused152) {
  const MhmAnswer answer =
      Answered(Post(Cancellation("_cancel-1", "300999999999"), MhmOperation::kCancellation));
  EXPECT_EQ(answer.operation, MhmOperation::kCancellation);
  EXPECT_EQ(answer.decision, codecs::kMhmRefused);
  EXPECT_EQ(answer.codes, std::vector<std::string>{"152"});
}

TEST_F(InsurerSimulatorTest, CancelsAnEnrolmentOnceThenRefuses261AndAllowsANewOne) {
  const MhmAnswer subscribed =
      Answered(Post(Subscription("_sub-x", kOtherNiss), MhmOperation::kSubscription));
  ASSERT_EQ(subscribed.decision, codecs::kMhmAccepted);
  const MhmAnswer cancelled = Answered(
      Post(Cancellation("_cancel-x", subscribed.insurer_reference), MhmOperation::kCancellation));
  EXPECT_EQ(cancelled.decision, codecs::kMhmAccepted) << ::testing::PrintToString(cancelled.codes);
  const MhmAnswer again = Answered(
      Post(Cancellation("_cancel-y", subscribed.insurer_reference), MhmOperation::kCancellation));
  EXPECT_EQ(again.codes, std::vector<std::string>{"261"});
  EXPECT_EQ(
      Answered(Post(Subscription("_sub-y", kOtherNiss), MhmOperation::kSubscription)).decision,
      codecs::kMhmAccepted);
}

TEST_F(InsurerSimulatorTest, TheNextTwoRequestsAre503ThenTheInsurerAnswers) {
  const HttpResponse set = Control("POST", "/control/faults", R"({"fail_next": 2})");
  ASSERT_EQ(set.status, 200) << set.body;
  const HttpRequest request = Post(Subscription("_sub-f"), MhmOperation::kSubscription);
  EXPECT_EQ(sim_->Handle(request).status, 503);
  EXPECT_EQ(sim_->Handle(request).status, 503);
  EXPECT_EQ(Answered(request).decision, codecs::kMhmAccepted);
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["faults"]["http_503"], 2);
  EXPECT_EQ(stats["faults_injected"], 2);
  EXPECT_EQ(stats["received"], 3);
  EXPECT_EQ(stats["accepted"], 1);
}

TEST_F(InsurerSimulatorTest, ThrottlingAnswers429WithRetryAfterForOneInsurerOnly) {
  ASSERT_EQ(Control("POST", "/control/faults",
                    R"({"insurer": "300", "throttle_next": 1, "retry_after_s": 7})")
                .status,
            200);
  const HttpResponse throttled =
      sim_->Handle(Post(Subscription("_sub-t"), MhmOperation::kSubscription));
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(Header(throttled, "retry-after"), "7");
  EXPECT_EQ(Answered(Post(Subscription("_sub-u"), MhmOperation::kSubscription, "500")).decision,
            codecs::kMhmAccepted);
  EXPECT_EQ(Stats()["by_insurer"]["300"]["faults"]["http_429"], 1);
}

TEST_F(InsurerSimulatorTest, ResetsAndTimeoutsAreRepliesWithoutAnAnswer) {
  FaultPlan plan;
  plan.reset_next = 1;
  plan.timeout_next = 1;
  ASSERT_TRUE(sim_->SetFaultPlan("", plan).ok());
  const HttpRequest request = Post(Subscription("_sub-r"), MhmOperation::kSubscription);
  const SimulatorReply timeout = sim_->Process(request);  // timeouts come first
  EXPECT_TRUE(timeout.hold);
  const SimulatorReply reset = sim_->Process(request);
  EXPECT_FALSE(reset.hold);
  EXPECT_TRUE(reset.response.close_without_response);
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["faults"]["timeout"], 1);
  EXPECT_EQ(stats["faults"]["reset"], 1);
  EXPECT_EQ(Answered(request).decision, codecs::kMhmAccepted);
}

TEST_F(InsurerSimulatorTest, AScheduledOutageAnswers503UntilItEnds) {
  ASSERT_EQ(
      Control("POST", "/control/faults", R"({"outage": {"start_in_s": 10, "duration_s": 60}})")
          .status,
      200);
  EXPECT_EQ(Answered(Post(Subscription("_sub-o1"), MhmOperation::kSubscription)).decision,
            codecs::kMhmAccepted);
  clock_.Set(clock_.Now() + seconds(30));
  const HttpResponse down =
      sim_->Handle(Post(Subscription("_sub-o2", kOtherNiss), MhmOperation::kSubscription));
  EXPECT_EQ(down.status, 503);
  EXPECT_EQ(Header(down, "retry-after"), "40");
  clock_.Set(clock_.Now() + seconds(40));
  EXPECT_EQ(
      Answered(Post(Subscription("_sub-o2", kOtherNiss), MhmOperation::kSubscription)).decision,
      codecs::kMhmAccepted);
  EXPECT_EQ(Stats()["faults"]["outage"], 1);
}

TEST_F(InsurerSimulatorTest, AWsSecuritySignatureFromAnotherCaIsAClientFault) {
  const HttpRequest request = Post(Subscription("_sub-w"), MhmOperation::kSubscription, "300",
                                   nullptr, &material_.untrusted);
  EXPECT_NE(ClientFaultReason(sim_->Handle(request)).find("WS-Security"), std::string::npos);
  EXPECT_EQ(Stats()["soap_faults"], 1);
}

TEST_F(InsurerSimulatorTest, AnXadesFromAnotherCaIsAClientFault) {
  const HttpRequest request =
      Post(Subscription("_sub-x1"), MhmOperation::kSubscription, "300", &material_.untrusted);
  EXPECT_NE(ClientFaultReason(sim_->Handle(request)).find("XAdES"), std::string::npos);
}

TEST_F(InsurerSimulatorTest, AnAlteredDetailUnderAValidWsSecurityIsAClientFault) {
  // XAdES made over the original Detail, then the Detail changed before WS-Security signs.
  StatusOr<std::string> signed_body =
      codecs::SignBlobRequest(Subscription("_sub-alt"), material_.gateway, nullptr, clock_);
  ASSERT_TRUE(signed_body.ok());
  const std::string other =
      ReplaceAll(Redated(codecs::xades_test::SampleEnvelope(), clock_,
                         [](std::string& d) { d = ReplaceAll(d, ">Jean<", ">Marc<"); }),
                 kSampleId, "_sub-alt");
  std::string tampered = *signed_body;
  std::size_t b = 0, e = 0, b2 = 0, e2 = 0;
  codecs::xades_test::ElementText(tampered, "Detail", &b, &e);
  const std::string other_detail = codecs::xades_test::ElementText(other, "Detail", &b2, &e2);
  tampered.replace(b, e - b, other_detail);
  StatusOr<std::string> envelope =
      codecs::BuildSoapRequest(tampered, codecs::SoapSecurityOptions(), material_.gateway, clock_);
  ASSERT_TRUE(envelope.ok());
  HttpRequest request = Post(Subscription("_sub-alt"), MhmOperation::kSubscription);
  request.body = *envelope;
  const std::string reason = ClientFaultReason(sim_->Handle(request));
  EXPECT_NE(reason.find("XAdES"), std::string::npos) << reason;
  EXPECT_EQ(reason.find(kOtherNiss), std::string::npos);
}

TEST_F(InsurerSimulatorTest, ASchemaInvalidRequestIsAClientFault) {
  const std::string body = ReplaceAll(Subscription("_sub-s"), "<mc:IsTest>true</mc:IsTest>",
                                      "<mc:IsTest>maybe</mc:IsTest>");
  const std::string reason =
      ClientFaultReason(sim_->Handle(Post(body, MhmOperation::kSubscription)));
  EXPECT_NE(reason.find("not valid"), std::string::npos) << reason;
}

TEST_F(InsurerSimulatorTest, ChecksContentTypeSoapActionMethodAndInsurer) {
  HttpRequest request = Post(Subscription("_sub-h"), MhmOperation::kSubscription);
  HttpRequest wrong_type = request;
  wrong_type.headers[0].second = "application/json";
  EXPECT_EQ(sim_->Handle(wrong_type).status, 415);
  HttpRequest wrong_action = request;
  wrong_action.headers[1].second = std::string(codecs::MhmSoapAction(MhmOperation::kClosure));
  EXPECT_NE(ClientFaultReason(sim_->Handle(wrong_action)).find("SOAPAction names"),
            std::string::npos);
  HttpRequest no_action = request;
  no_action.headers.pop_back();
  EXPECT_NE(ClientFaultReason(sim_->Handle(no_action)).find("SOAPAction"), std::string::npos);
  HttpRequest get = request;
  get.method = "GET";
  EXPECT_EQ(sim_->Handle(get).status, 405);
  HttpRequest unknown = request;
  unknown.target = "/insurers/900/mhm";
  EXPECT_EQ(sim_->Handle(unknown).status, 404);
  EXPECT_EQ(Stats()["by_insurer"]["300"]["http_errors"], 2);
  EXPECT_EQ(Answered(request).decision, codecs::kMhmAccepted);
}

TEST_F(InsurerSimulatorTest, TheControlApiRefusesBadPlansAndResetsEverything) {
  EXPECT_EQ(Control("POST", "/control/faults", R"({"fail_nxt": 1})").status, 400);
  EXPECT_EQ(Control("POST", "/control/faults", R"({"error_rate": 2})").status, 400);
  EXPECT_EQ(Control("POST", "/control/faults", R"({"insurer": "999"})").status, 400);
  EXPECT_EQ(Control("POST", "/control/faults", "not json").status, 400);
  const HttpResponse faults = Control("GET", "/control/faults");
  EXPECT_EQ(nlohmann::json::parse(faults.body)["300"]["fail_status"], 503);

  EXPECT_EQ(Answered(Post(Subscription("_sub-z"), MhmOperation::kSubscription)).decision,
            codecs::kMhmAccepted);
  ASSERT_EQ(Control("POST", "/control/faults", R"({"fail_next": 5})").status, 200);
  EXPECT_EQ(Control("POST", "/control/reset").status, 200);
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["received"], 0);
  EXPECT_EQ(stats["accepted"], 0);
  // The plan is back to the start-up one, and the patient is no longer enrolled.
  EXPECT_EQ(Answered(Post(Subscription("_sub-z2"), MhmOperation::kSubscription)).decision,
            codecs::kMhmAccepted);
  EXPECT_EQ(Stats().dump().find(kSampleNiss), std::string::npos);
}

TEST_F(InsurerSimulatorTest, TheAsyncHandlerAnswersThroughTheResponderAndReleasesHeldRequests) {
  gateway::Handler handler = sim_->AsyncHandler();
  std::promise<HttpResponse> answered;
  handler(Post(Subscription("_sub-async"), MhmOperation::kSubscription),
          [&answered](HttpResponse r) { answered.set_value(std::move(r)); });
  StatusOr<MhmAnswer> answer = AnswerOf(answered.get_future().get());
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();

  FaultPlan plan;
  plan.timeout_next = 1;
  ASSERT_TRUE(sim_->SetFaultPlan("300", plan).ok());
  std::promise<HttpResponse> released;
  handler(Post(Subscription("_sub-held"), MhmOperation::kSubscription),
          [&released](HttpResponse r) { released.set_value(std::move(r)); });
  // The held request is answered only by a reset, with a closed connection.
  std::future<HttpResponse> release = released.get_future();
  // Stats through the async handler too: queued behind the held request, answered in order.
  std::promise<HttpResponse> stats;
  HttpRequest stats_request;
  stats_request.method = "GET";
  stats_request.target = "/control/stats";
  handler(stats_request, [&stats](HttpResponse r) { stats.set_value(std::move(r)); });
  const nlohmann::json counters = nlohmann::json::parse(stats.get_future().get().body);
  EXPECT_EQ(counters["faults"]["timeout"], 1);
  sim_->Reset();
  EXPECT_TRUE(release.get().close_without_response);
  EXPECT_EQ(sim_->HeldRequests(), 0U);
}

TEST_F(InsurerSimulatorTest, AnswersOverHttpsToAClientWithTheGatewaysCertificate) {
  const auto& pki = codecs::xades_test::Pki();
  gateway::HttpsServerOptions server_options;
  server_options.cert_chain_file = pki / "insurer-300-fullchain.pem";
  server_options.key_file = pki / "insurer-300.key";
  server_options.client_ca_file = pki / "ca.pem";
  server_options.client_certificates = gateway::ClientCertificateMode::kRequired;
  StatusOr<std::unique_ptr<gateway::HttpsServer>> server =
      gateway::HttpsServer::Start(server_options, sim_->AsyncHandler());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  gateway::HttpsClientOptions client_options;
  client_options.ca_file = pki / "ca.pem";
  client_options.client_cert_file = pki / "gateway-fullchain.pem";
  client_options.client_key_file = pki / "gateway.key";
  StatusOr<std::unique_ptr<gateway::HttpsClient>> client =
      gateway::HttpsClient::Create(client_options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  const HttpRequest request = Post(Subscription("_sub-tls"), MhmOperation::kSubscription);
  gateway::HttpsUrl url{"127.0.0.1", (*server)->port(), request.target};
  gateway::HttpsResult sent = (*client)->Send(url, "POST", request.headers, request.body);
  ASSERT_EQ(sent.error, gateway::TransportError::kNone) << sent.error_detail;
  StatusOr<MhmAnswer> answer = AnswerOf(sent.response);
  ASSERT_TRUE(answer.ok()) << answer.status().ToString();
  EXPECT_EQ(answer->decision, codecs::kMhmAccepted);

  ASSERT_EQ(
      Control("POST", "/control/faults", R"({"throttle_next": 1, "retry_after_s": 2})").status,
      200);
  sent = (*client)->Send(url, "POST", request.headers, request.body);
  ASSERT_EQ(sent.error, gateway::TransportError::kNone) << sent.error_detail;
  EXPECT_EQ(sent.response.status, 429);
  EXPECT_EQ(sent.response.Header("retry-after").value_or(""), "2");

  url.target = "/control/stats";
  sent = (*client)->Send(url, "GET", {}, "");
  ASSERT_EQ(sent.error, gateway::TransportError::kNone) << sent.error_detail;
  EXPECT_EQ(nlohmann::json::parse(sent.response.body)["received"], 2);

  (*server)->StopAccepting();
  sim_->Shutdown();
  (*server)->Stop();
}

TEST_F(InsurerSimulatorTest, ParsesAndPrintsFaultPlans) {
  const auto now = clock_.Now();
  std::string insurer;
  StatusOr<FaultPlan> plan = ParseFaultPlan(
      R"({"insurer":"500","latency_ms":25,"error_rate":0.5,"error_status":500,
          "outage":{"start_in_s":5,"duration_s":9}})",
      now, &insurer);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(insurer, "500");
  EXPECT_EQ(plan->latency.count(), 25);
  EXPECT_EQ(plan->error_status, 500);
  ASSERT_TRUE(plan->outage.has_value());
  EXPECT_EQ(plan->outage->start, now + seconds(5));
  const nlohmann::json printed = nlohmann::json::parse(FaultPlanJson(*plan, now));
  EXPECT_EQ(printed["outage"]["duration_s"], 9);
  EXPECT_EQ(printed["error_rate"], 0.5);
  EXPECT_FALSE(ParseFaultPlan(R"({"outage":{"start_in_s":1}})", now, nullptr).ok());
  EXPECT_FALSE(ParseFaultPlan(R"({"fail_status":404})", now, nullptr).ok());
  EXPECT_FALSE(ParseFaultPlan(R"({"reset_next":-1})", now, nullptr).ok());
}

TEST_F(InsurerSimulatorTest, RefusesUnusableOptions) {
  InsurerSimulator::Options options;
  EXPECT_FALSE(InsurerSimulator::Create(options).ok());
  options.insurers = {"042"};
  options.schemas = &codecs::mhm_test::TestSchemas();
  options.trust = material_.trust.get();
  options.signer = &material_.insurer;
  options.clock = &clock_;
  EXPECT_EQ(InsurerSimulator::Create(options).status().code(), StatusCode::kInvalid);
}

}  // namespace
}  // namespace psl::simulator

// ---- Generic Async ------------------------------------------------------------------------------

namespace psl::simulator {
namespace {

using codecs::efact_test::kSenderNihii;

constexpr char kTo300[] = "urn:nip:destination:io:300";

class GenAsyncSimulatorTest : public InsurerSimulatorTest {
 protected:
  // The shared synthetic post with the sample eFact file (sender kSenderNihii, destination 300)
  // and CommonInput/InputReference `input_reference`.
  static std::string PostBody(const std::string& input_reference,
                              const codecs::EfactFile& file = codecs::efact_test::SampleFile()) {
    std::string env =
        codecs::mhm_test::ReadShared("samples/genasync-post-eFact-HCPFAC.SYNTHETIC.xml");
    env = ReplaceAll(env, "81234530000", std::string(kSenderNihii));
    env = ReplaceAll(env, "<c:InputReference>20250102093000001</c:InputReference>",
                     "<c:InputReference>" + input_reference + "</c:InputReference>");
    const std::size_t open = env.find("<gen:Detail");
    const std::size_t close = env.find("</gen:Detail>") + std::string("</gen:Detail>").size();
    StatusOr<std::string> deflated = codecs::DeflateRaw(codecs::WriteEfact(file));
    EXPECT_TRUE(deflated.ok());
    const std::string detail =
        "<gen:Detail ContentType=\"text/plain\" ContentEncoding=\"deflate\" "
        "MessageName=\"HCPFAC\" Id=\"blob-1\">" +
        codecs::EncodeBase64(deflated.ok() ? *deflated : "") + "</gen:Detail>";
    return env.replace(open, close - open, detail);
  }

  // `body` under WS-Security by `soap_signer` (default: the gateway), with a wsa:To when `to` is
  // not empty, posted with `action` to /insurers/<code>/genasync.
  HttpRequest GenAsync(const std::string& body, std::string_view action, const std::string& to = "",
                       const std::string& code = "300",
                       const SigningIdentity* soap_signer = nullptr) {
    StatusOr<std::string> envelope =
        codecs::BuildSoapRequest(body, codecs::SoapSecurityOptions(),
                                 soap_signer != nullptr ? *soap_signer : material_.gateway, clock_);
    EXPECT_TRUE(envelope.ok()) << envelope.status().ToString();
    std::string bytes = envelope.ok() ? *envelope : std::string();
    if (!to.empty()) {
      const std::size_t at = bytes.find("</soapenv:Header>");
      EXPECT_NE(at, std::string::npos);
      bytes.insert(
          at, "<wsa:To xmlns:wsa=\"http://www.w3.org/2005/08/addressing\">" + to + "</wsa:To>");
    }
    HttpRequest request;
    request.method = "POST";
    request.target = "/insurers/" + code + "/genasync";
    request.headers = {{"content-type", codecs::kSoap11ContentType},
                       {"soapaction", "\"" + std::string(action) + "\""}};
    request.body = std::move(bytes);
    return request;
  }

  // A post whose Xades-t is made by `xades_signer` (default: the gateway).
  HttpRequest SignedPost(const std::string& input_reference, const std::string& to = kTo300,
                         const SigningIdentity* xades_signer = nullptr,
                         const std::string& code = "300") {
    StatusOr<std::string> signed_body = codecs::SignGenAsyncPost(
        PostBody(input_reference), xades_signer != nullptr ? *xades_signer : material_.gateway,
        nullptr, clock_);
    EXPECT_TRUE(signed_body.ok()) << signed_body.status().ToString();
    return GenAsync(signed_body.ok() ? *signed_body : "", codecs::kGenAsyncPostAction, to, code);
  }

  codecs::TAck TAckOf(const HttpResponse& response) {
    EXPECT_EQ(response.status, 200) << response.body.substr(0, 2000);
    StatusOr<codecs::TAck> tack =
        codecs::ParsePostResponse(response.body, codecs::mhm_test::TestSchemas());
    EXPECT_TRUE(tack.ok()) << tack.status().ToString();
    return tack.ok() ? *tack : codecs::TAck();
  }

  HttpRequest GetRequest(const std::string& origin = std::string(kSenderNihii),
                         const std::string& code = "300") {
    codecs::GetRequest get;
    get.origin_nihii = origin;
    get.message_names = {"HCPFAC"};
    StatusOr<std::string> body = codecs::BuildGetRequest(get, clock_);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    return GenAsync(body.ok() ? *body : "", codecs::kGenAsyncGetAction, "", code);
  }

  codecs::GetResponse Mailbox(const std::string& origin = std::string(kSenderNihii)) {
    const HttpResponse response = sim_->Handle(GetRequest(origin));
    EXPECT_EQ(response.status, 200) << response.body.substr(0, 2000);
    StatusOr<codecs::GetResponse> got = codecs::ParseGetResponse(
        response.body, codecs::mhm_test::TestSchemas(), material_.trust.get(), clock_);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (got.ok()) {
      EXPECT_TRUE(got->rejected.empty()) << got->rejected.front();
    }
    return got.ok() ? *got : codecs::GetResponse();
  }

  HttpRequest ConfirmRequest(const std::vector<std::string>& hashes,
                             const std::vector<std::string>& tacks = {}) {
    codecs::ConfirmRequest confirm;
    confirm.origin_nihii = std::string(kSenderNihii);
    confirm.msg_hash_values = hashes;
    confirm.tack_contents = tacks;
    StatusOr<std::string> body = codecs::BuildConfirmRequest(confirm, clock_);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    return GenAsync(body.ok() ? *body : "", codecs::kGenAsyncConfirmAction);
  }

  void Confirm(const std::vector<std::string>& hashes, const std::vector<std::string>& tacks = {}) {
    const HttpResponse response = sim_->Handle(ConfirmRequest(hashes, tacks));
    ASSERT_EQ(response.status, 200) << response.body.substr(0, 2000);
    EXPECT_TRUE(codecs::ParseConfirmResponse(response.body, codecs::mhm_test::TestSchemas()).ok());
  }
};

TEST_F(GenAsyncSimulatorTest, APostGetsASuccessTAckAndAnAcknowledgementInTheMailbox) {
  const codecs::TAck tack = TAckOf(sim_->Handle(SignedPost("msg-1")));
  EXPECT_TRUE(tack.success()) << tack.result_major << " " << tack.result_message;
  EXPECT_EQ(tack.applies_to, "urn:nip:reference:input:msg-1");
  EXPECT_EQ(tack.reference, "300-TACK-1");
  EXPECT_EQ(tack.issuer, "urn:nip:issuer:io:300");

  const codecs::GetResponse box = Mailbox();
  ASSERT_EQ(box.messages.size(), 1u);
  const codecs::MailboxMessage& m = box.messages[0];
  EXPECT_EQ(m.input_reference, "msg-1");
  EXPECT_EQ(m.message_name, "HCPFAC");
  EXPECT_NE(m.signer_subject.find("CN=insurer-300"), std::string::npos) << m.signer_subject;
  StatusOr<codecs::EfactReturn> ret = codecs::ParseEfactReturn(m.content);
  ASSERT_TRUE(ret.ok()) << ret.status().ToString();
  EXPECT_EQ(ret->kind, codecs::EfactReturnKind::kAcknowledged);
  EXPECT_EQ(ret->original_reference, codecs::efact_test::SampleFile().segment200.Zone("204"));
  EXPECT_TRUE(box.tacks.empty());  // mailbox TAcks are off by default
  // Another practice's mailbox is empty, and so is this practice's at another insurer.
  EXPECT_TRUE(Mailbox("81234530000").messages.empty());

  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["posts"], 1);
  EXPECT_EQ(stats["posts_accepted"], 1);
  EXPECT_EQ(stats["gets"], 2);
  EXPECT_EQ(stats["returns_delivered"], 1);
  EXPECT_EQ(stats["mailbox_depth"], 1);
  EXPECT_EQ(stats["by_insurer"]["300"]["mailboxes"][std::string(kSenderNihii)]["messages"], 1);
  EXPECT_EQ(stats["accepted"], 0);  // MHM counters untouched
}

TEST_F(GenAsyncSimulatorTest, UnconfirmedReturnsComeBackAndConfirmRemovesThemIdempotently) {
  TAckOf(sim_->Handle(SignedPost("msg-a")));
  TAckOf(sim_->Handle(SignedPost("msg-b")));
  const codecs::GetResponse first = Mailbox();
  ASSERT_EQ(first.messages.size(), 2u);
  const codecs::GetResponse again = Mailbox();
  ASSERT_EQ(again.messages.size(), 2u);
  EXPECT_EQ(again.messages[0].hash_value, first.messages[0].hash_value);

  Confirm({first.messages[0].hash_value, codecs::GenAsyncHashValue("unknown")});
  const codecs::GetResponse after = Mailbox();
  ASSERT_EQ(after.messages.size(), 1u);
  EXPECT_EQ(after.messages[0].input_reference, first.messages[1].input_reference);
  Confirm({first.messages[0].hash_value});  // again: nothing left to remove, still fine
  Confirm({first.messages[1].hash_value});
  EXPECT_TRUE(Mailbox().messages.empty());
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["confirms"], 3);
  EXPECT_EQ(stats["returns_confirmed"], 2);
  EXPECT_EQ(stats["returns_delivered"], 5);
  EXPECT_EQ(stats["mailbox_depth"], 0);
}

TEST_F(GenAsyncSimulatorTest, ARepeatedInputReferenceGetsTheSameTAckAndNoSecondReturn) {
  const HttpResponse a = sim_->Handle(SignedPost("msg-dup"));
  clock_.Set(clock_.Now() + seconds(5));  // a retry is signed again
  const HttpResponse b = sim_->Handle(SignedPost("msg-dup"));
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(Mailbox().messages.size(), 1u);
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["posts"], 2);
  EXPECT_EQ(stats["posts_accepted"], 1);
  EXPECT_EQ(stats["post_duplicates"], 1);
}

TEST_F(GenAsyncSimulatorTest, TheControlApiDecidesTheNextReturns) {
  const HttpResponse set = Control(
      "POST", "/control/efact",
      R"({"insurer": "300", "decision": "refused", "codes": ["200701", "100301"], "next": 1})");
  ASSERT_EQ(set.status, 200) << set.body;
  TAckOf(sim_->Handle(SignedPost("msg-r1")));
  TAckOf(sim_->Handle(SignedPost("msg-r2")));
  ASSERT_EQ(Control("POST", "/control/efact",
                    R"({"efact_return": "accepted-with-errors", "efact_code": "200802"})")
                .status,
            200);
  TAckOf(sim_->Handle(SignedPost("msg-r3")));
  const codecs::GetResponse box = Mailbox();
  ASSERT_EQ(box.messages.size(), 3u);
  StatusOr<codecs::EfactReturn> refused = codecs::ParseEfactReturn(box.messages[0].content);
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_EQ(refused->message_type, "920999");
  ASSERT_EQ(refused->errors.size(), 2u);
  EXPECT_EQ(refused->errors[0].code, "200701");
  EXPECT_EQ(refused->errors[0].record, 2);  // the first record 20 of the sample file
  EXPECT_EQ(refused->errors[0].zone, "7");
  EXPECT_EQ(refused->errors[1].record, 1);  // record 10
  StatusOr<codecs::EfactReturn> next = codecs::ParseEfactReturn(box.messages[1].content);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->message_type, "931000");
  StatusOr<codecs::EfactReturn> third = codecs::ParseEfactReturn(box.messages[2].content);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(third->message_type, "920098");
  EXPECT_EQ(third->errors.at(0).code, "200802");

  EXPECT_EQ(Control("POST", "/control/efact", R"({"decision": "maybe"})").status, 400);
  EXPECT_EQ(Control("POST", "/control/efact", R"({"decision": "refused", "codes": ["12"]})").status,
            400);
  EXPECT_EQ(
      Control("POST", "/control/efact", R"({"decision": "accepted", "codes": ["200701"]})").status,
      400);
  EXPECT_EQ(Control("POST", "/control/efact", R"({"next": 2})").status, 400);
  EXPECT_EQ(
      Control("POST", "/control/efact", R"({"insurer": "999", "decision": "refused"})").status,
      400);
  const nlohmann::json shown = nlohmann::json::parse(Control("GET", "/control/efact").body);
  EXPECT_EQ(shown["300"]["decision"], "accepted-with-errors");
  EXPECT_EQ(shown["500"]["decision"], "accepted-with-errors");
}

TEST_F(GenAsyncSimulatorTest, AReturnBecomesVisibleAfterTheReturnDelay) {
  ASSERT_EQ(Control("POST", "/control/efact", R"({"return_delay_ms": 10000})").status, 200);
  TAckOf(sim_->Handle(SignedPost("msg-late")));
  EXPECT_TRUE(Mailbox().messages.empty());
  EXPECT_EQ(Stats()["mailbox_depth"], 1);
  clock_.Set(clock_.Now() + seconds(11));
  EXPECT_EQ(Mailbox().messages.size(), 1u);
}

TEST_F(GenAsyncSimulatorTest, MailboxTAcksAreSignedAndConfirmedByContent) {
  ASSERT_EQ(Control("POST", "/control/efact", R"({"mailbox_tacks": true})").status, 200);
  const codecs::TAck posted = TAckOf(sim_->Handle(SignedPost("msg-t")));
  const codecs::GetResponse box = Mailbox();
  ASSERT_EQ(box.tacks.size(), 1u);
  EXPECT_EQ(box.tacks[0].content, posted.content);
  EXPECT_EQ(box.tacks[0].tack.applies_to, posted.applies_to);
  Confirm({}, {box.tacks[0].content});
  const codecs::GetResponse after = Mailbox();
  EXPECT_TRUE(after.tacks.empty());
  EXPECT_EQ(after.messages.size(), 1u);
  EXPECT_EQ(Stats()["tacks_confirmed"], 1);
}

TEST_F(GenAsyncSimulatorTest, AWronglySignedPostIsARefusalTAckNotAnHttpError) {
  const codecs::TAck tack =
      TAckOf(sim_->Handle(SignedPost("msg-bad", kTo300, &material_.untrusted)));
  EXPECT_FALSE(tack.success());
  EXPECT_EQ(tack.result_major, codecs::kTAckFailure);
  EXPECT_EQ(tack.result_minor, "urn:nip:tack:result:minor:invalid-signature");
  EXPECT_EQ(tack.applies_to, "urn:nip:reference:input:msg-bad");
  EXPECT_NE(tack.result_message.find("Xades-t"), std::string::npos) << tack.result_message;
  EXPECT_TRUE(Mailbox().messages.empty());
  // Not de-duplicated: once properly signed, the same reference is accepted.
  EXPECT_TRUE(TAckOf(sim_->Handle(SignedPost("msg-bad"))).success());
  const nlohmann::json stats = Stats();
  EXPECT_EQ(stats["posts_refused"], 1);
  EXPECT_EQ(stats["posts_accepted"], 1);
}

TEST_F(GenAsyncSimulatorTest, APostForAnotherInsurerOrAnInvalidFileIsRefused) {
  const codecs::TAck wrong_to =
      TAckOf(sim_->Handle(SignedPost("msg-to", "urn:nip:destination:io:500")));
  EXPECT_EQ(wrong_to.result_minor, "urn:nip:tack:result:minor:wrong-destination");
  // The file's invoices are for 300: posting it to 500 is refused even without a wsa:To.
  const codecs::TAck wrong_insurer =
      TAckOf(sim_->Handle(SignedPost("msg-500", "", nullptr, "500")));
  EXPECT_EQ(wrong_insurer.result_minor, "urn:nip:tack:result:minor:wrong-destination");
  EXPECT_EQ(wrong_insurer.issuer, "urn:nip:issuer:io:500");

  std::string bytes = codecs::WriteEfact(codecs::efact_test::SampleFile());
  bytes = codecs::efact_test::Patch(bytes, 2, "8", "0017073003385");  // bad NISS check digit
  std::string body = PostBody("msg-inv");
  const std::size_t open = body.find("Id=\"blob-1\">") + std::string("Id=\"blob-1\">").size();
  const std::size_t close = body.find("</gen:Detail>");
  StatusOr<std::string> deflated = codecs::DeflateRaw(bytes);
  ASSERT_TRUE(deflated.ok());
  body.replace(open, close - open, codecs::EncodeBase64(*deflated));
  StatusOr<std::string> signed_body =
      codecs::SignGenAsyncPost(body, material_.gateway, nullptr, clock_);
  ASSERT_TRUE(signed_body.ok());
  const codecs::TAck invalid =
      TAckOf(sim_->Handle(GenAsync(*signed_body, codecs::kGenAsyncPostAction, kTo300)));
  EXPECT_EQ(invalid.result_minor, "urn:nip:tack:result:minor:invalid-message");
  EXPECT_EQ(invalid.result_message.find(codecs::efact_test::kPatientNiss2), std::string::npos);
  EXPECT_TRUE(Mailbox().messages.empty());
  EXPECT_EQ(Stats()["posts_refused"], 3);
}

TEST_F(GenAsyncSimulatorTest, ABrokenEnvelopeIsAClientFault) {
  HttpRequest request = SignedPost("msg-ws");
  request.body =
      GenAsync(PostBody("msg-ws"), codecs::kGenAsyncPostAction, kTo300, "300", &material_.untrusted)
          .body;
  EXPECT_NE(ClientFaultReason(sim_->Handle(request)).find("WS-Security"), std::string::npos);
  // A get body under the post action.
  codecs::GetRequest get;
  get.origin_nihii = std::string(kSenderNihii);
  StatusOr<std::string> get_body = codecs::BuildGetRequest(get, clock_);
  ASSERT_TRUE(get_body.ok());
  EXPECT_NE(ClientFaultReason(sim_->Handle(GenAsync(*get_body, codecs::kGenAsyncPostAction)))
                .find("SOAPAction"),
            std::string::npos);
  EXPECT_EQ(Stats()["posts"], 0);
}

TEST_F(GenAsyncSimulatorTest, FaultsCanBeScopedToOneOperation) {
  TAckOf(sim_->Handle(SignedPost("msg-f")));
  const HttpResponse set = Control("POST", "/control/faults",
                                   R"({"insurer": "300", "operation": "confirm", "fail_next": 1})");
  ASSERT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(nlohmann::json::parse(set.body)["plan"]["operation"], "confirm");
  const codecs::GetResponse box = Mailbox();  // a get is not faulted
  ASSERT_EQ(box.messages.size(), 1u);
  EXPECT_EQ(sim_->Handle(ConfirmRequest({box.messages[0].hash_value})).status, 503);
  EXPECT_EQ(Mailbox().messages.size(), 1u);  // the faulted confirm was not applied
  Confirm({box.messages[0].hash_value});
  EXPECT_TRUE(Mailbox().messages.empty());
  const nlohmann::json faults = nlohmann::json::parse(Control("GET", "/control/faults").body);
  EXPECT_EQ(faults["300"]["by_operation"]["confirm"]["fail_next"], 0);
  EXPECT_EQ(faults["300"]["fail_next"], 0);

  // A held confirm (timeout) is never applied either; MHM is not affected by a post-scoped plan.
  TAckOf(sim_->Handle(SignedPost("msg-g")));
  const codecs::GetResponse second = Mailbox();
  ASSERT_EQ(second.messages.size(), 1u);
  FaultPlan plan;
  plan.operation = "confirm";
  plan.timeout_next = 1;
  ASSERT_TRUE(sim_->SetFaultPlan("300", plan).ok());
  const SimulatorReply held = sim_->Process(ConfirmRequest({second.messages[0].hash_value}));
  EXPECT_TRUE(held.hold);
  EXPECT_EQ(Mailbox().messages.size(), 1u);
  ASSERT_EQ(Control("POST", "/control/faults", R"({"operation": "post", "fail_next": 5})").status,
            200);
  EXPECT_EQ(Answered(Post(Subscription("_sub-scope"), MhmOperation::kSubscription)).decision,
            codecs::kMhmAccepted);
  EXPECT_EQ(sim_->Handle(SignedPost("msg-h")).status, 503);
  EXPECT_EQ(Control("POST", "/control/faults", R"({"operation": "delete"})").status, 400);
  plan.operation = "nope";
  EXPECT_FALSE(sim_->SetFaultPlan("300", plan).ok());
}

TEST_F(GenAsyncSimulatorTest, AHeldRequestIsClosedWhenItsHoldExpires) {
  sim_->Shutdown();
  InsurerSimulator::Options options = BaseOptions();
  options.timeout_hold = std::chrono::milliseconds(1);
  options.faults.timeout_next = 1;
  StatusOr<std::unique_ptr<InsurerSimulator>> sim = InsurerSimulator::Create(std::move(options));
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  sim_ = std::move(sim).value();
  gateway::Handler handler = sim_->AsyncHandler();
  std::promise<HttpResponse> released;
  handler(GetRequest(), [&released](HttpResponse r) { released.set_value(std::move(r)); });
  // Neither a reset nor a shutdown: the expiry alone closes it.
  EXPECT_TRUE(released.get_future().get().close_without_response);
  EXPECT_EQ(sim_->HeldRequests(), 0U);
  EXPECT_EQ(Stats()["faults"]["timeout"], 1);
  EXPECT_EQ(Stats()["gets"], 0);  // never processed
}

TEST_F(GenAsyncSimulatorTest, AStartUpPlanCanBeScopedToAnOperation) {
  sim_->Shutdown();
  InsurerSimulator::Options options = BaseOptions();
  options.faults.operation = "get";
  options.faults.fail_next = 1;
  StatusOr<std::unique_ptr<InsurerSimulator>> sim = InsurerSimulator::Create(std::move(options));
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  sim_ = std::move(sim).value();
  EXPECT_TRUE(TAckOf(sim_->Handle(SignedPost("msg-s"))).success());
  EXPECT_EQ(sim_->Handle(GetRequest()).status, 503);
  EXPECT_EQ(Mailbox().messages.size(), 1u);

  InsurerSimulator::Options bad = BaseOptions();
  bad.faults.operation = "delete";
  EXPECT_FALSE(InsurerSimulator::Create(std::move(bad)).ok());
}

TEST_F(GenAsyncSimulatorTest, PlaysTheMailboxOverHttps) {
  const auto& pki = codecs::xades_test::Pki();
  gateway::HttpsServerOptions server_options;
  server_options.cert_chain_file = pki / "insurer-300-fullchain.pem";
  server_options.key_file = pki / "insurer-300.key";
  server_options.client_ca_file = pki / "ca.pem";
  server_options.client_certificates = gateway::ClientCertificateMode::kRequired;
  StatusOr<std::unique_ptr<gateway::HttpsServer>> server =
      gateway::HttpsServer::Start(server_options, sim_->AsyncHandler());
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  gateway::HttpsClientOptions client_options;
  client_options.ca_file = pki / "ca.pem";
  client_options.client_cert_file = pki / "gateway-fullchain.pem";
  client_options.client_key_file = pki / "gateway.key";
  StatusOr<std::unique_ptr<gateway::HttpsClient>> client =
      gateway::HttpsClient::Create(client_options);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  auto send = [&](const HttpRequest& request) {
    gateway::HttpsUrl url{"127.0.0.1", (*server)->port(), request.target};
    gateway::HttpsResult sent = (*client)->Send(url, "POST", request.headers, request.body);
    EXPECT_EQ(sent.error, gateway::TransportError::kNone) << sent.error_detail;
    return sent.response;
  };
  EXPECT_TRUE(TAckOf(send(SignedPost("msg-tls"))).success());
  const HttpResponse got = send(GetRequest());
  ASSERT_EQ(got.status, 200);
  StatusOr<codecs::GetResponse> box = codecs::ParseGetResponse(
      got.body, codecs::mhm_test::TestSchemas(), material_.trust.get(), clock_);
  ASSERT_TRUE(box.ok()) << box.status().ToString();
  ASSERT_EQ(box->messages.size(), 1u);
  EXPECT_EQ(send(ConfirmRequest({box->messages[0].hash_value})).status, 200);
  EXPECT_EQ(Stats()["mailbox_depth"], 0);
  (*server)->StopAccepting();
  sim_->Shutdown();
  (*server)->Stop();
}

TEST_F(GenAsyncSimulatorTest, ParsesEfactControls) {
  StatusOr<EfactControl> c = ParseEfactControl(
      R"({"insurer":"300","decision":"920099","codes":["200701"],"next":2,
          "return_delay_ms":5,"mailbox_tacks":true})");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->insurer, "300");
  ASSERT_TRUE(c->decision.has_value());
  EXPECT_EQ(c->decision->kind, codecs::EfactReturnKind::kRefusedBlocking);
  EXPECT_EQ(c->next, 2u);
  EXPECT_EQ(c->return_delay->count(), 5);
  EXPECT_TRUE(*c->mailbox_tacks);
  EXPECT_FALSE(ParseEfactControl(R"({"decison":"refused"})").ok());
  EXPECT_FALSE(ParseEfactControl("[]").ok());
}

}  // namespace
}  // namespace psl::simulator

// ---- MediPrima and eAttest ------------------------------------------------------------------

namespace psl::simulator {
namespace {

constexpr char kBeneficiary[] = "85493000163";  // BIS, synthetic (codecs/mediprima_test.cc)
constexpr char kPoolBeneficiary[] = "85073003328";
constexpr char kUnknownBeneficiary[] = "17073003384";
constexpr char kPhysician[] = "11478761004";
constexpr char kEAttestDoctor[] = "12345625004";  // conformance/eattest practice
constexpr char kCorpusEnvelopeId[] = "_7f3a0c1e-0000-4000-8000-000000000000";
constexpr char kCorpusInvoicingNumber[] = "300.20250102.0001";

std::string Iso(std::chrono::sys_days d) {
  const std::chrono::year_month_day ymd{d};
  char out[16];
  std::snprintf(out, sizeof(out), "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return out;
}

class ServicesSimulatorTest : public InsurerSimulatorTest {
 protected:
  void SetUp() override {
    InsurerSimulatorTest::SetUp();
    sim_->Shutdown();
    StatusOr<EAttestErrorTable> table =
        LoadEAttestErrorTable(std::string(PSL_SHARED_DIR) + "/errors/eAttestErrors.json");
    ASSERT_TRUE(table.ok()) << table.status().ToString();
    InsurerSimulator::Options options = BaseOptions();
    options.mediprima_beneficiaries = {kPoolBeneficiary};
    options.eattest_errors = *table;
    StatusOr<std::unique_ptr<InsurerSimulator>> sim = InsurerSimulator::Create(std::move(options));
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim).value();

    const auto& pki = codecs::xades_test::Pki();
    gateway::HttpsServerOptions server_options;
    server_options.cert_chain_file = pki / "insurer-300-fullchain.pem";
    server_options.key_file = pki / "insurer-300.key";
    server_options.client_ca_file = pki / "ca.pem";
    server_options.client_certificates = gateway::ClientCertificateMode::kRequired;
    StatusOr<std::unique_ptr<gateway::HttpsServer>> server =
        gateway::HttpsServer::Start(server_options, sim_->AsyncHandler());
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    gateway::HttpsClientOptions client_options;
    client_options.ca_file = pki / "ca.pem";
    client_options.client_cert_file = pki / "gateway-fullchain.pem";
    client_options.client_key_file = pki / "gateway.key";
    StatusOr<std::unique_ptr<gateway::HttpsClient>> client =
        gateway::HttpsClient::Create(client_options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    client_ = std::move(client).value();
  }

  void TearDown() override {
    if (server_) {
      server_->StopAccepting();
    }
    sim_->Shutdown();
    if (server_) {
      server_->Stop();
    }
  }

  // Over HTTPS with the gateway's client certificate.
  HttpResponse Send(const HttpRequest& request) {
    gateway::HttpsUrl url{"127.0.0.1", server_->port(), request.target};
    gateway::HttpsResult sent = client_->Send(url, request.method, request.headers, request.body);
    EXPECT_EQ(sent.error, gateway::TransportError::kNone) << sent.error_detail;
    return sent.response;
  }

  nlohmann::json HttpsStats() {
    HttpRequest request;
    request.method = "GET";
    request.target = "/control/stats";
    return nlohmann::json::parse(Send(request).body);
  }

  HttpResponse HttpsControl(const std::string& path, const std::string& body) {
    HttpRequest request;
    request.method = "POST";
    request.target = path;
    request.headers = {{"content-type", "application/json"}};
    request.body = body;
    return Send(request);
  }

  // `body` under the gateway's WS-Security, posted with `action` to /insurers/<code>/<endpoint>.
  HttpRequest Soap(const std::string& body, std::string_view action, const std::string& endpoint,
                   const std::string& code = "300") {
    StatusOr<std::string> envelope =
        codecs::BuildSoapRequest(body, codecs::SoapSecurityOptions(), material_.gateway, clock_);
    EXPECT_TRUE(envelope.ok()) << envelope.status().ToString();
    HttpRequest request;
    request.method = "POST";
    request.target = "/insurers/" + code + "/" + endpoint;
    request.headers = {{"content-type", codecs::kSoap11ContentType},
                       {"soapaction", "\"" + std::string(action) + "\""}};
    request.body = envelope.ok() ? *envelope : std::string();
    return request;
  }

  // ---- MediPrima requests, dated today (Brussels).

  std::string Today(int plus_days = 0) {
    return Iso(std::chrono::sys_days{BrusselsToday(clock_)} + std::chrono::days{plus_days});
  }

  std::string UmaRoot(std::string_view name, const std::string& id, std::string_view body) {
    const std::string instant = codecs::FormatUtc(clock_.Now(), codecs::kXsDateTimeUtcFormat);
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<uma:" + std::string(name) +
           " xmlns:uma=\"urn:be:fgov:ehealth:mediprima:uma:protocol:v1\""
           " xmlns:prot=\"urn:be:fgov:ehealth:commons:protocol:v2\""
           " xmlns:core=\"urn:be:fgov:ehealth:commons:core:v2\""
           " Id=\"" +
           id + "\" IssueInstant=\"" + instant + "\">\n" + std::string(body) +
           "</uma:" + std::string(name) + ">\n";
  }

  static std::string Author() {
    return std::string(
               "  <prot:Author><core:HcParty>"
               "<core:Id Type=\"urn:be:fgov:ehealth:1.0:physician:nihii-number\">") +
           kPhysician +
           "</core:Id><core:FirstName>Synthetic</core:FirstName><core:Name>Doctor</core:Name>"
           "</core:HcParty></prot:Author>\n";
  }

  std::string UmaSend(const std::string& id, const std::string& ssin = kBeneficiary) {
    return UmaRoot("SendUrgentMedicalAidAttestationRequest", id,
                   Author() + "  <BeneficiarySsin>" + ssin +
                       "</BeneficiarySsin>\n  <ValidityPeriod><StartDate>" + Today() +
                       "</StartDate><EndDate>" + Today(29) +
                       "</EndDate></ValidityPeriod>\n  <MedicalCover>DOCTOR</MedicalCover>\n");
  }

  std::string UmaSearch(const std::string& id, const std::string& ssin = kBeneficiary) {
    return UmaRoot("SearchUrgentMedicalAidAttestationRequest", id,
                   "  <Criteria><BeneficiarySsin>" + ssin +
                       "</BeneficiarySsin><Period><StartDate>" + Today(-10) +
                       "</StartDate><EndDate>" + Today() + "</EndDate></Period></Criteria>\n");
  }

  std::string UmaDelete(const std::string& id, const std::string& number) {
    return UmaRoot("DeleteUrgentMedicalAidAttestationRequest", id,
                   Author() + "  <BeneficiarySsin>" + std::string(kBeneficiary) +
                       "</BeneficiarySsin>\n  <AttestationNumber>" + number +
                       "</AttestationNumber>\n");
  }

  std::string Consult(const std::string& id, const std::string& ssin) {
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<mp:ConsultCarmedInterventionRequest "
           "xmlns:mp=\"urn:be:fgov:ehealth:mediprima:protocol:v2\" Id=\"" +
           id + "\" IssueInstant=\"" +
           codecs::FormatUtc(clock_.Now(), codecs::kXsDateTimeUtcFormat) +
           "\"><SelectionCriteria><BySsin><Ssin>" + ssin + "</Ssin><ReferenceDate>" + Today() +
           "</ReferenceDate></BySsin></SelectionCriteria></mp:ConsultCarmedInterventionRequest>";
  }

  HttpRequest MediPrima(const std::string& body, codecs::MediPrimaOperation op) {
    return Soap(body, codecs::MediPrimaSoapAction(op), "mediprima");
  }

  codecs::MediPrimaAnswer MediPrimaAnswerOf(const HttpResponse& response) {
    EXPECT_EQ(response.status, 200) << response.body.substr(0, 2000);
    StatusOr<codecs::MediPrimaAnswer> answer =
        codecs::ParseMediPrimaResponse(response.body, codecs::mhm_test::TestSchemas());
    EXPECT_TRUE(answer.ok()) << answer.status().ToString() << response.body.substr(0, 2000);
    return answer.ok() ? *answer : codecs::MediPrimaAnswer();
  }

  // ---- eAttest requests: the conformance corpus, decoded on its own day, prepared now.

  codecs::EAttestRequest DecodeCorpus(const std::string& file, const std::string& envelope_id,
                                      const std::string& invoicing_number = "") {
    std::string xml =
        codecs::xades_test::ReadFile(std::string(PSL_SOURCE_DIR) + "/conformance/eattest/" + file);
    xml = ReplaceAll(xml, kCorpusEnvelopeId, envelope_id);
    if (!invoicing_number.empty()) {
      const std::size_t open = xml.find('>', xml.find("<p:Detail")) + 1;
      const std::size_t close = xml.find("</p:Detail>");
      StatusOr<std::string> kmehr = codecs::DecodeBase64(xml.substr(open, close - open));
      EXPECT_TRUE(kmehr.ok());
      xml.replace(open, close - open,
                  codecs::EncodeBase64(ReplaceAll(kmehr.ok() ? *kmehr : std::string(),
                                                  kCorpusInvoicingNumber, invoicing_number)));
    }
    psl::testing::FakeClock day;
    day.SetUtc(2025, 1, 2, 10);
    codecs::EAttestCodec codec(codecs::mhm_test::TestSchemas(), day);
    codecs::ValidationReport report;
    StatusOr<codecs::EAttestRequest> decoded = codec.Decode(xml, kEAttestDoctor, &report);
    EXPECT_TRUE(decoded.ok()) << decoded.status().ToString();
    return decoded.ok() ? std::move(decoded).value() : codecs::EAttestRequest();
  }

  // Sealed for the simulator's signing certificate (it plays MyCareNet's encryption key).
  std::string Prepared(const codecs::EAttestRequest& decoded, int attempt = 1) {
    StatusOr<std::string> prepared =
        codecs::PrepareForInsurer(decoded, material_.gateway, material_.insurer.certificate.get(),
                                  attempt, codecs::mhm_test::TestSchemas(), clock_);
    EXPECT_TRUE(prepared.ok()) << prepared.status().ToString();
    return prepared.ok() ? *prepared : std::string();
  }

  HttpRequest EAttest(const std::string& prepared, codecs::EAttestOperation op) {
    return Soap(prepared, codecs::EAttestSoapAction(op), "eattest");
  }

  codecs::EAttestAnswer EAttestAnswerOf(const HttpResponse& response) {
    EXPECT_EQ(response.status, 200) << response.body.substr(0, 2000);
    StatusOr<codecs::EAttestAnswer> answer =
        codecs::ParseAttestationResponse(response.body, codecs::mhm_test::TestSchemas(),
                                         material_.gateway, material_.trust.get(), clock_);
    EXPECT_TRUE(answer.ok()) << answer.status().ToString() << response.body.substr(0, 2000);
    return answer.ok() ? *answer : codecs::EAttestAnswer();
  }

  std::unique_ptr<gateway::HttpsServer> server_;
  std::unique_ptr<gateway::HttpsClient> client_;
};

using codecs::MediPrimaOperation;

TEST_F(ServicesSimulatorTest, MediPrimaSendSearchDeleteOverHttps) {
  const HttpResponse sent =
      Send(MediPrima(UmaSend("_uma-1"), MediPrimaOperation::kSendAttestation));
  const codecs::MediPrimaAnswer answer = MediPrimaAnswerOf(sent);
  EXPECT_EQ(answer.operation, MediPrimaOperation::kSendAttestation);
  EXPECT_EQ(answer.decision, codecs::kMediPrimaAccepted);
  EXPECT_EQ(answer.in_response_to, "_uma-1");
  ASSERT_TRUE(codecs::IsMediPrimaAttestationNumber(answer.insurer_reference))
      << answer.insurer_reference;
  EXPECT_EQ(answer.insurer_reference.rfind("UMA-300-", 0), 0u);

  // A retry (signed again) gets the same answer and number; nothing is recorded twice.
  clock_.Set(clock_.Now() + seconds(3));
  const HttpResponse again =
      Send(MediPrima(UmaSend("_uma-1"), MediPrimaOperation::kSendAttestation));
  EXPECT_EQ(again.body, sent.body);
  // Another @Id is another attestation.
  const codecs::MediPrimaAnswer second =
      MediPrimaAnswerOf(Send(MediPrima(UmaSend("_uma-2"), MediPrimaOperation::kSendAttestation)));
  EXPECT_NE(second.insurer_reference, answer.insurer_reference);

  codecs::MediPrimaAnswer found = MediPrimaAnswerOf(
      Send(MediPrima(UmaSearch("_search-1"), MediPrimaOperation::kSearchAttestation)));
  EXPECT_EQ(found.decision, codecs::kMediPrimaFound);
  EXPECT_EQ(found.attestation_numbers,
            (std::vector<std::string>{answer.insurer_reference, second.insurer_reference}));
  const codecs::MediPrimaAnswer other = MediPrimaAnswerOf(Send(
      MediPrima(UmaSearch("_search-2", kPoolBeneficiary), MediPrimaOperation::kSearchAttestation)));
  EXPECT_EQ(other.decision, codecs::kMediPrimaNotFound);

  const codecs::MediPrimaAnswer deleted = MediPrimaAnswerOf(Send(MediPrima(
      UmaDelete("_del-1", answer.insurer_reference), MediPrimaOperation::kDeleteAttestation)));
  EXPECT_EQ(deleted.decision, codecs::kMediPrimaAccepted);
  EXPECT_EQ(deleted.insurer_reference, answer.insurer_reference);
  found = MediPrimaAnswerOf(
      Send(MediPrima(UmaSearch("_search-3"), MediPrimaOperation::kSearchAttestation)));
  EXPECT_EQ(found.attestation_numbers, (std::vector<std::string>{second.insurer_reference}));
  // Deleting it again (another @Id) is a refusal with a status code.
  const codecs::MediPrimaAnswer unknown = MediPrimaAnswerOf(Send(MediPrima(
      UmaDelete("_del-2", answer.insurer_reference), MediPrimaOperation::kDeleteAttestation)));
  EXPECT_EQ(unknown.decision, codecs::kMediPrimaRefused);
  EXPECT_EQ(unknown.codes, (std::vector<std::string>{"urn:be:fgov:ehealth:2.0:status:Requester",
                                                     "UMA-ATTESTATION-UNKNOWN"}));

  const nlohmann::json stats = HttpsStats();
  EXPECT_EQ(stats["mediprima"]["sends"], 3);
  EXPECT_EQ(stats["mediprima"]["duplicates"], 1);
  EXPECT_EQ(stats["mediprima"]["searches"], 3);
  EXPECT_EQ(stats["mediprima"]["deletes"], 2);
  EXPECT_EQ(stats["mediprima"]["refused"], 1);
  EXPECT_EQ(stats["by_insurer"]["300"]["mediprima"]["sends"], 3);
  EXPECT_EQ(stats["accepted"], 0);  // MHM counters untouched
  EXPECT_EQ(stats.dump().find(kBeneficiary), std::string::npos);
}

TEST_F(ServicesSimulatorTest, MediPrimaConsultKnowsThePoolAndTheUmaBeneficiaries) {
  codecs::MediPrimaAnswer card = MediPrimaAnswerOf(
      Send(MediPrima(Consult("_c-1", kPoolBeneficiary), MediPrimaOperation::kConsult)));
  EXPECT_EQ(card.decision, codecs::kMediPrimaFound);
  ASSERT_EQ(card.carmeds.size(), 1u);
  EXPECT_EQ(card.carmeds[0].start_date, Today());
  EXPECT_EQ(card.carmeds[0].attestation_number, "");
  EXPECT_EQ(card.insurer_reference, card.carmeds[0].agreement_number);

  const codecs::MediPrimaAnswer refused = MediPrimaAnswerOf(
      Send(MediPrima(Consult("_c-2", kUnknownBeneficiary), MediPrimaOperation::kConsult)));
  EXPECT_EQ(refused.decision, codecs::kMediPrimaRefused);
  EXPECT_EQ(refused.codes.back(), "CARMED-NOT-FOUND");

  // A beneficiary with a UMA attestation has a card that names it.
  const codecs::MediPrimaAnswer uma =
      MediPrimaAnswerOf(Send(MediPrima(UmaSend("_uma-c"), MediPrimaOperation::kSendAttestation)));
  card = MediPrimaAnswerOf(
      Send(MediPrima(Consult("_c-3", kBeneficiary), MediPrimaOperation::kConsult)));
  ASSERT_EQ(card.carmeds.size(), 1u);
  EXPECT_EQ(card.carmeds[0].attestation_number, uma.insurer_reference);
  EXPECT_EQ(HttpsStats()["mediprima"]["consults"], 3);
}

TEST_F(ServicesSimulatorTest, MediPrimaRefusalsAreInjectedForTheNextRequests) {
  ASSERT_EQ(HttpsControl("/control/mediprima",
                         R"({"insurer":"300","decision":"refused","codes":["MSG-00010"],"next":1,
                             "operation":"send"})")
                .status,
            200);
  // A search is not a send: answered normally.
  EXPECT_EQ(MediPrimaAnswerOf(
                Send(MediPrima(UmaSearch("_s-inj"), MediPrimaOperation::kSearchAttestation)))
                .decision,
            codecs::kMediPrimaNotFound);
  const codecs::MediPrimaAnswer refused =
      MediPrimaAnswerOf(Send(MediPrima(UmaSend("_uma-r1"), MediPrimaOperation::kSendAttestation)));
  EXPECT_EQ(refused.decision, codecs::kMediPrimaRefused);
  EXPECT_EQ(refused.codes.back(), "MSG-00010");
  EXPECT_EQ(MediPrimaAnswerOf(
                Send(MediPrima(UmaSearch("_s-inj2"), MediPrimaOperation::kSearchAttestation)))
                .decision,
            codecs::kMediPrimaNotFound);  // the refused send recorded nothing
  EXPECT_EQ(
      MediPrimaAnswerOf(Send(MediPrima(UmaSend("_uma-r2"), MediPrimaOperation::kSendAttestation)))
          .decision,
      codecs::kMediPrimaAccepted);
  // A default refusal, then back to deciding.
  ASSERT_EQ(HttpsControl("/control/mediprima", R"({"decision":"refused"})").status, 200);
  EXPECT_EQ(MediPrimaAnswerOf(
                Send(MediPrima(Consult("_c-r", kPoolBeneficiary), MediPrimaOperation::kConsult)))
                .codes.back(),
            "SIM-REFUSED");
  ASSERT_EQ(HttpsControl("/control/mediprima", R"({"decision":"accepted"})").status, 200);
  EXPECT_EQ(MediPrimaAnswerOf(
                Send(MediPrima(Consult("_c-a", kPoolBeneficiary), MediPrimaOperation::kConsult)))
                .decision,
            codecs::kMediPrimaFound);
  EXPECT_EQ(HttpsControl("/control/mediprima", R"({"decision":"maybe"})").status, 400);
  EXPECT_EQ(HttpsControl("/control/mediprima", R"({"next":1})").status, 400);
  EXPECT_EQ(HttpsControl("/control/mediprima", R"({"insurer":"777","decision":"refused"})").status,
            400);
}

TEST_F(ServicesSimulatorTest, AMediPrimaBodyThatIsNotTheActionIsAClientFault) {
  const HttpResponse r = Send(MediPrima(UmaSearch("_wrong"), MediPrimaOperation::kSendAttestation));
  EXPECT_NE(ClientFaultReason(r).find("SendUrgentMedicalAidAttestationRequest"), std::string::npos);
  // An invalid body (bad SSIN check digits) is a Client fault naming the rule, not the value.
  std::string bad = UmaSend("_bad", "85493000164");
  const HttpResponse invalid = Send(MediPrima(bad, MediPrimaOperation::kSendAttestation));
  const std::string reason = ClientFaultReason(invalid);
  EXPECT_NE(reason.find("PSL-MEDIPRIMA-SSIN-CHECK"), std::string::npos) << reason;
  EXPECT_EQ(reason.find("85493000164"), std::string::npos);
  // An eAttest action over a MediPrima body too.
  const HttpResponse crossed = Send(
      Soap(UmaSend("_x"), codecs::EAttestSoapAction(codecs::EAttestOperation::kSend), "eattest"));
  EXPECT_NE(ClientFaultReason(crossed).find("SendAttestation"), std::string::npos);
  EXPECT_EQ(HttpsStats()["soap_faults"], 3);
}

TEST_F(ServicesSimulatorTest, FaultsCanBeScopedToMediPrimaAndEAttest) {
  ASSERT_EQ(
      HttpsControl("/control/faults", R"({"insurer":"300","operation":"mediprima","fail_next":1})")
          .status,
      200);
  ASSERT_EQ(HttpsControl("/control/faults", R"({"operation":"eattest","throttle_next":1})").status,
            200);
  // MHM is not faulted.
  EXPECT_EQ(
      AnswerOf(Send(Post(Subscription("_sub-mp"), MhmOperation::kSubscription))).value().decision,
      codecs::kMhmAccepted);
  EXPECT_EQ(Send(MediPrima(UmaSend("_uma-f"), MediPrimaOperation::kSendAttestation)).status, 503);
  EXPECT_EQ(
      MediPrimaAnswerOf(Send(MediPrima(UmaSend("_uma-f"), MediPrimaOperation::kSendAttestation)))
          .decision,
      codecs::kMediPrimaAccepted);
  const std::string prepared = Prepared(DecodeCorpus("valid/send_basic.xml", "_ea-f"));
  const HttpResponse throttled = Send(EAttest(prepared, codecs::EAttestOperation::kSend));
  EXPECT_EQ(throttled.status, 429);
  EXPECT_EQ(EAttestAnswerOf(Send(EAttest(prepared, codecs::EAttestOperation::kSend))).decision,
            codecs::kEAttestAccepted);
  const nlohmann::json stats = HttpsStats();
  EXPECT_EQ(stats["faults"]["http_503"], 1);
  EXPECT_EQ(stats["faults"]["http_429"], 1);
  EXPECT_EQ(stats["mediprima"]["sends"], 1);  // the faulted one was never processed
  EXPECT_EQ(stats["eattest"]["sends"], 1);
  const nlohmann::json faults = nlohmann::json::parse(Control("GET", "/control/faults").body);
  EXPECT_EQ(faults["300"]["by_operation"]["mediprima"]["fail_next"], 0);
}

TEST_F(ServicesSimulatorTest, EAttestSendIsAcceptedDeduplicatedAndCountsAttempts) {
  const codecs::EAttestRequest decoded = DecodeCorpus("valid/send_basic.xml", "_ea-1");
  const HttpResponse first = Send(EAttest(Prepared(decoded, 1), codecs::EAttestOperation::kSend));
  const codecs::EAttestAnswer answer = EAttestAnswerOf(first);
  EXPECT_EQ(answer.decision, codecs::kEAttestAccepted);
  EXPECT_EQ(answer.insurer_reference, "300.1");
  EXPECT_EQ(answer.input_reference, "_ea-1");
  EXPECT_NE(answer.signer_subject.find("CN=insurer-300"), std::string::npos);
  EXPECT_EQ(HttpsStats()["eattest"]["last_attempt"], 1);

  // The gateway's retry: re-prepared, attempt 2, same envelope id → the same answer.
  clock_.Set(clock_.Now() + seconds(2));
  const HttpResponse retry = Send(EAttest(Prepared(decoded, 2), codecs::EAttestOperation::kSend));
  EXPECT_EQ(retry.body, first.body);
  EXPECT_EQ(EAttestAnswerOf(retry).insurer_reference, "300.1");
  // Another message is another attestation.
  EXPECT_EQ(EAttestAnswerOf(Send(EAttest(Prepared(DecodeCorpus("valid/send_basic.xml", "_ea-2")),
                                         codecs::EAttestOperation::kSend)))
                .insurer_reference,
            "300.2");
  const nlohmann::json stats = HttpsStats();
  EXPECT_EQ(stats["eattest"]["sends"], 3);
  EXPECT_EQ(stats["eattest"]["accepted"], 2);
  EXPECT_EQ(stats["eattest"]["duplicates"], 1);
  EXPECT_EQ(stats["eattest"]["last_attempt"], 1);
  EXPECT_EQ(stats["by_insurer"]["300"]["eattest"]["attempts"]["_ea-1"], 2);
  EXPECT_EQ(stats["by_insurer"]["300"]["eattest"]["attempts"]["_ea-2"], 1);
  EXPECT_EQ(stats.dump().find("85071412429"), std::string::npos);
}

TEST_F(ServicesSimulatorTest, EAttestCancelOfAKnownNumberIsAcceptedOnce) {
  const codecs::EAttestAnswer sent = EAttestAnswerOf(Send(EAttest(
      Prepared(DecodeCorpus("valid/send_basic.xml", "_ea-s")), codecs::EAttestOperation::kSend)));
  ASSERT_EQ(sent.insurer_reference, "300.1");
  const codecs::EAttestAnswer cancelled = EAttestAnswerOf(
      Send(EAttest(Prepared(DecodeCorpus("valid/cancel_basic.xml", "_ea-c1", "300.1")),
                   codecs::EAttestOperation::kCancel)));
  EXPECT_EQ(cancelled.operation, codecs::EAttestOperation::kCancel);
  EXPECT_EQ(cancelled.decision, codecs::kEAttestAccepted);
  EXPECT_TRUE(cancelled.codes.empty());
  const codecs::EAttestAnswer twice = EAttestAnswerOf(
      Send(EAttest(Prepared(DecodeCorpus("valid/cancel_basic.xml", "_ea-c2", "300.1")),
                   codecs::EAttestOperation::kCancel)));
  EXPECT_EQ(twice.decision, codecs::kEAttestRefused);
  EXPECT_EQ(twice.codes, std::vector<std::string>{"240"});
  const codecs::EAttestAnswer unknown = EAttestAnswerOf(
      Send(EAttest(Prepared(DecodeCorpus("valid/cancel_basic.xml", "_ea-c3", "300.99")),
                   codecs::EAttestOperation::kCancel)));
  EXPECT_EQ(unknown.decision, codecs::kEAttestRefused);
  EXPECT_EQ(unknown.codes, std::vector<std::string>{"244"});
  EXPECT_EQ(HttpsStats()["eattest"]["cancels"], 3);
}

TEST_F(ServicesSimulatorTest, EAttestRefusalsAreInjectedWithTableCodes) {
  ASSERT_EQ(HttpsControl("/control/eattest",
                         R"({"insurer":"300","decision":"refused","codes":["187","169"],"next":1})")
                .status,
            200);
  const codecs::EAttestAnswer refused = EAttestAnswerOf(Send(EAttest(
      Prepared(DecodeCorpus("valid/send_basic.xml", "_ea-r1")), codecs::EAttestOperation::kSend)));
  EXPECT_EQ(refused.decision, codecs::kEAttestRefused);
  EXPECT_EQ(refused.codes, (std::vector<std::string>{"187", "169"}));
  EXPECT_EQ(refused.insurer_reference, "");
  EXPECT_EQ(EAttestAnswerOf(Send(EAttest(Prepared(DecodeCorpus("valid/send_basic.xml", "_ea-r2")),
                                         codecs::EAttestOperation::kSend)))
                .decision,
            codecs::kEAttestAccepted);
  EXPECT_EQ(HttpsControl("/control/eattest", R"({"decision":"refused","codes":["999"]})").status,
            400);
  EXPECT_EQ(HttpsControl("/control/eattest", R"({"codes":["187"]})").status, 400);
  const nlohmann::json stats = HttpsStats();
  EXPECT_EQ(stats["eattest"]["refused"], 1);
  EXPECT_EQ(stats["eattest"]["accepted"], 1);
}

TEST_F(ServicesSimulatorTest, AnEAttestSealedForSomeoneElseIsAClientFault) {
  StatusOr<std::string> prepared = codecs::PrepareForInsurer(
      DecodeCorpus("valid/send_basic.xml", "_ea-x"), material_.gateway,
      material_.gateway.certificate.get(), 1, codecs::mhm_test::TestSchemas(), clock_);
  ASSERT_TRUE(prepared.ok()) << prepared.status().ToString();
  const std::string reason =
      ClientFaultReason(Send(EAttest(*prepared, codecs::EAttestOperation::kSend)));
  EXPECT_NE(reason.find("eAttest"), std::string::npos) << reason;
  // A send body under the cancel action.
  EXPECT_NE(ClientFaultReason(Send(EAttest(Prepared(DecodeCorpus("valid/send_basic.xml", "_ea-y")),
                                           codecs::EAttestOperation::kCancel)))
                .find("CancelAttestation"),
            std::string::npos);
}

TEST_F(ServicesSimulatorTest, ParsesServiceControls) {
  StatusOr<MediPrimaControl> mp = ParseMediPrimaControl(
      R"({"decision":"refused","codes":["A-1"],"next":2,"operation":"delete"})");
  ASSERT_TRUE(mp.ok()) << mp.status().ToString();
  EXPECT_TRUE(mp->decision->refused);
  EXPECT_EQ(mp->decision->operation, "delete");
  EXPECT_EQ(mp->next, 2u);
  EXPECT_FALSE(ParseMediPrimaControl(R"({"decision":"accepted","codes":["A"]})").ok());
  EXPECT_FALSE(ParseMediPrimaControl(R"({"decision":"refused","codes":["a b"]})").ok());
  EXPECT_FALSE(ParseMediPrimaControl(R"({"decision":"refused","operation":"post"})").ok());
  EXPECT_TRUE(ParseEAttestControl(R"({"decision":"refused","codes":["777"]})", nullptr).ok());
  EXPECT_FALSE(ParseEAttestControl(R"({"decision":"refused","codes":["77"]})", nullptr).ok());
  EXPECT_FALSE(ParseEAttestControl(R"({"decison":"refused"})", nullptr).ok());
  EXPECT_TRUE(IsFaultOperation("mediprima"));
  EXPECT_TRUE(IsFaultOperation("eattest"));
  EXPECT_EQ(LoadEAttestErrorTable("/nonexistent.json").status().code(),
            StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace psl::simulator
