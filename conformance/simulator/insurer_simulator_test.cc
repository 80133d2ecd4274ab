#include "conformance/simulator/insurer_simulator.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <string>

#include "base/brussels_time.h"
#include "base/testing/fake_clock.h"
#include "codecs/mhm_response.h"
#include "codecs/mhm_rules.h"
#include "codecs/soap.h"
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
    InsurerSimulator::Options options;
    options.insurers = {"300", "500"};
    options.schemas = &codecs::mhm_test::TestSchemas();
    options.trust = material_.trust.get();
    options.intermediates = &material_.intermediates;
    options.signer = &material_.insurer;
    options.clock = &clock_;
    options.random_seed = 1;
    options.workers = 1;  // the async test relies on jobs running in order
    StatusOr<std::unique_ptr<InsurerSimulator>> sim = InsurerSimulator::Create(std::move(options));
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(sim).value();
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
