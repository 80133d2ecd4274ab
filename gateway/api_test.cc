#include "gateway/api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/pem.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <openssl/x509.h>

#include "base/testing/fake_clock.h"
#include "certs/key_store.h"
#include "certs/trust_store.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/eattest.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/testing/efact_test_support.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/testing/xades_test_support.h"
#include "codecs/xades.h"
#include "store/memory_store.h"

#include <nlohmann/json.hpp>

namespace psl::gateway {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

constexpr char kPracticeA[] = "81234530000";
constexpr char kPracticeB[] = "85432155100";
constexpr char kSampleNiss[] = "90010100123";
constexpr char kOpsToken[] = "ops-secret-token";
constexpr char kAuditorToken[] = "auditor-secret-token";
constexpr char kPseudonymKey[] = "0123456789abcdef0123456789abcdef";

const certs::testing::TestPki& Pki() {
  return certs::testing::SharedTestPki();
}

X509Ptr LoadCert(const std::string& name) {
  const std::string pem = codecs::xades_test::ReadFile((Pki() / (name + ".pem")).string());
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

// The identity the TLS layer would report for the leaf `name` of the test PKI.
PeerIdentity PeerOf(const std::string& name) {
  X509Ptr cert = LoadCert(name);
  EXPECT_NE(cert, nullptr) << name;
  PeerIdentity peer;
  if (cert == nullptr) {
    return peer;
  }
  unsigned char* der = nullptr;
  const int length = i2d_X509(cert.get(), &der);
  peer.has_certificate = true;
  peer.subject = certs::SubjectOf(cert.get());
  peer.sha256 = Sha256Hex(
      std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(length)));
  OPENSSL_free(der);
  peer.remote = "127.0.0.1:40000";
  return peer;
}

SigningIdentity LoadIdentity(const std::string& name) {
  const std::filesystem::path chain = Pki() / (name + "-chain.pem");
  StatusOr<SigningIdentity> id =
      certs::LoadPemIdentity(Pki() / (name + ".key"), Pki() / (name + ".pem"), &chain, nullptr);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? std::move(id).value() : SigningIdentity{};
}

std::optional<std::string> HeaderOf(const HttpResponse& r, std::string_view name) {
  for (const auto& [key, value] : r.headers) {
    if (key == name) {
      return value;
    }
  }
  return std::nullopt;
}

// Practice A's MHM sample (unsigned: the placeholder Xades removed).
std::string EnvelopeA() {
  return codecs::xades_test::SampleEnvelope();
}

// The same request authored by practice B.
std::string EnvelopeB() {
  const std::string detail =
      codecs::mhm_test::ReplaceAll(codecs::mhm_test::SampleDetail(), kPracticeA, kPracticeB);
  return codecs::mhm_test::ReplaceAll(codecs::mhm_test::WithDetail(EnvelopeA(), detail), kPracticeA,
                                      kPracticeB);
}

// A conformance eFact post (conformance/efact/), as committed.
std::string EfactCorpus(const std::string& name) {
  return codecs::xades_test::ReadFile(std::string(PSL_SOURCE_DIR) + "/conformance/efact/" + name);
}

// Practice A's HCPFAC post: a medical house (81234530000, the file's sender) invoicing union 300.
std::string ClaimA() {
  return EfactCorpus("valid/hcpfac_medical_house_306.xml");
}

// The same post carrying another file (deflated) under `message_name`.
std::string PostWithFile(const std::string& file, const std::string& message_name) {
  std::string env = ClaimA();
  StatusOr<std::string> deflated = codecs::DeflateRaw(file);
  EXPECT_TRUE(deflated.ok());
  const std::size_t open = env.find("<gen:Detail");
  const std::size_t close = env.find("</gen:Detail>") + std::string("</gen:Detail>").size();
  return env.replace(open, close - open,
                     "<gen:Detail ContentType=\"text/plain\" ContentEncoding=\"deflate\" "
                     "MessageName=\"" +
                         message_name + "\" Id=\"blob-1\">" + codecs::EncodeBase64(*deflated) +
                         "</gen:Detail>");
}

// Practice A's AMU invoice (ECM-HCPFAC, destination 690).
std::string AmuA() {
  codecs::EfactFile file = codecs::efact_test::SampleMediPrimaFile();
  for (codecs::EfactRecord& r : file.records) {
    if (!r.Zone("14").empty() &&
        r.Zone("14") == "0" + std::string(codecs::efact_test::kSenderNihii)) {
      codecs::efact_test::MustSet(r.SetText("14", "0" + std::string(kPracticeA)));
    }
  }
  return PostWithFile(codecs::WriteEfact(file), "ECM-HCPFAC");
}

// The eAttest and MediPrima corpora's patients (conformance/*/sensitive_values.txt): never in a
// response or a log line.
constexpr const char* kFlowPatients[] = {"85071412429", "91251200176", "85493000163", "85073000061",
                                         "17073003384"};
constexpr char kCorpusDoctor[] = "12345625004";     // eAttest corpus care provider
constexpr char kCorpusPhysician[] = "11478761004";  // MediPrima corpus author

std::string ConformanceFile(const std::string& name) {
  return codecs::xades_test::ReadFile(std::string(PSL_SOURCE_DIR) + "/conformance/" + name);
}

// An eAttest corpus request as practice A sends it: the corpus doctor replaced by A's NIHII in
// the envelope and in the kmehr Detail.
std::string EAttestA(const std::string& name) {
  std::string env = ConformanceFile("eattest/" + name);
  const std::size_t open = env.find("<p:Detail");
  const std::size_t start = env.find('>', open) + 1;
  const std::size_t end = env.find("</p:Detail>", start);
  std::string detail = env.substr(start, end - start);
  StatusOr<std::string> kmehr = codecs::DecodeBase64(detail);
  EXPECT_TRUE(kmehr.ok());
  if (kmehr.ok() && env.find("ContentEncoding=\"none\"", open) < start) {
    detail = codecs::EncodeBase64(codecs::mhm_test::ReplaceAll(*kmehr, kCorpusDoctor, kPracticeA));
  }
  env.replace(start, end - start, detail);
  return codecs::mhm_test::ReplaceAll(env, kCorpusDoctor, kPracticeA);
}

// Who calls: a certificate, a bearer token, both or neither.
struct Caller {
  std::string name;
  PeerIdentity peer;
  std::string bearer;  // "" = no Authorization header
};

class ApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    codecs::xades_test::InitLibraries();
    (void)codecs::mhm_test::TestSchemas();
    ASSERT_TRUE(Pki().ok());
  }

  void SetUp() override {
    clock_.SetUtc(2025, 1, 2, 10, 0);  // 11:00 in Brussels, the samples' request date
    practice_a_key_ = LoadIdentity("practice-81234530000");
    gateway_key_ = LoadIdentity("gateway");
    StatusOr<X509StorePtr> trust = certs::LoadTrustStore(Pki() / "ca.pem");
    ASSERT_TRUE(trust.ok()) << trust.status().ToString();
    trust_ = std::move(trust).value();

    peer_a_ = PeerOf("practice-81234530000");
    peer_b_ = PeerOf("practice-85432155100");
    PracticeConfig a;
    a.nihii = kPracticeA;
    a.cert_subjects = {peer_a_.subject};
    PracticeConfig b;
    b.nihii = kPracticeB;
    b.cert_sha256 = {peer_b_.sha256};   // B is recognised by fingerprint
    a.physicians = {kCorpusPhysician};  // MediPrima UMA: the corpus author
    config_.practices[kPracticeA] = a;
    config_.practices[kPracticeB] = b;
    config_.auth.ops_token_sha256 = {Sha256Hex(kOpsToken)};
    config_.auth.auditor_token_sha256 = {Sha256Hex(kAuditorToken)};
    config_.auth.ops_cert_subjects = {PeerOf("ops").subject};
    config_.auth.auditor_cert_subjects = {PeerOf("auditor").subject};
    config_.server.max_body_bytes = 256 << 10;
    InsurerConfig union300;
    union300.key = "300";
    union300.endpoints[MessageKind::kEnrolment] = "https://insurer-300.test/mhm";
    union300.endpoints[MessageKind::kClaim] = "https://insurer-300.test/genasync";
    union300.eattest_url = "https://insurer-300.test/eAttest/v3";
    config_.insurers["300"] = union300;
    InsurerConfig mediprima;
    mediprima.key = "690";
    mediprima.endpoints[MessageKind::kAmu] = "https://insurer-690.test/genasync";
    mediprima.mediprima_uma_url = "https://insurer-690.test/MediPrima/UMA/v1";
    mediprima.mediprima_consult_url = "https://insurer-690.test/MediPrima/Consult/v2";
    config_.insurers["690"] = mediprima;
    // A physician's certificate (MediPrima author rule); the PKI has no physician leaf, so the
    // TLS identity is made up: the Api only sees what the TLS layer reports.
    peer_doctor_.has_certificate = true;
    peer_doctor_.subject = "CN=Dr Synthetic,O=Passerelle tests";
    peer_doctor_.sha256 = std::string(64, 'd');
    peer_doctor_.remote = "127.0.0.1:40001";
    PracticeConfig doctor;
    doctor.nihii = kCorpusPhysician;
    doctor.cert_subjects = {peer_doctor_.subject};
    config_.practices[kCorpusPhysician] = doctor;
    // MyCareNet's encryption certificate (the eAttest seal's recipient): insurer-100's here.
    encryption_cert_ = LoadCert("insurer-100");
    ASSERT_NE(encryption_cert_, nullptr);
    Rebuild();
  }

  // (Re)creates the store, the routing table and the Api from config_.
  void Rebuild() {
    api_.reset();
    store_ = std::make_unique<store::MemoryStore>(&clock_);
    routing_ = std::make_unique<RoutingTable>(
        config_, [this](const std::string&) { return registry_answer_; });
    logger_ = std::make_unique<Logger>(
        LogLevel::kDebug, [this](std::string_view line) { log_lines_.emplace_back(line); },
        &clock_);
    metrics_ = std::make_unique<Metrics>();
    ApiDeps deps;
    deps.config = &config_;
    deps.queue = store_.get();
    deps.audit = store_.get();
    deps.schemas = &codecs::mhm_test::TestSchemas();
    deps.clock = &clock_;
    deps.signing_clock = signing_clock_;  // the test PKI is issued today, the samples are 2025
    deps.routing = routing_.get();
    deps.gateway_identity = &gateway_key_;
    deps.practice_identities[kPracticeA] = &practice_a_key_;
    deps.trust = trust_.get();
    if (with_encryption_cert_) {
      deps.encryption_certs["300"] = encryption_cert_.get();
    }
    deps.metrics = metrics_.get();
    deps.pseudonym_key = kPseudonymKey;
    deps.readiness = [this] {
      return readiness_;
    };
    deps.logger = logger_.get();
    deps.on_committed = [this](const std::string& insurer) {
      std::lock_guard<std::mutex> lock(notified_mu_);  // called from concurrent intakes
      notified_.push_back(insurer);
    };
    api_ = std::make_unique<Api>(std::move(deps));
  }

  void TearDown() override {
    // No patient value ever leaves: not in a response, not in a log line.
    for (const std::string& text : seen_) {
      for (std::string_view niss :
           {codecs::efact_test::kPatientNiss1, codecs::efact_test::kPatientNiss2,
            codecs::efact_test::kPatientBis}) {
        EXPECT_THAT(text, Not(HasSubstr(std::string(niss))));
      }
      EXPECT_THAT(text, Not(HasSubstr(kSampleNiss)));
      EXPECT_THAT(text, Not(HasSubstr("Jean")));  // the sample patient's first name
      for (const char* patient : kFlowPatients) {
        EXPECT_THAT(text, Not(HasSubstr(patient)));
      }
    }
    for (const std::string& line : log_lines_) {
      for (std::string_view niss :
           {codecs::efact_test::kPatientNiss1, codecs::efact_test::kPatientNiss2,
            codecs::efact_test::kPatientBis}) {
        EXPECT_THAT(line, Not(HasSubstr(std::string(niss))));
      }
      EXPECT_THAT(line, Not(HasSubstr(kSampleNiss)));
      EXPECT_THAT(line, Not(HasSubstr("Jean")));
      for (const char* patient : kFlowPatients) {
        EXPECT_THAT(line, Not(HasSubstr(patient)));
      }
      EXPECT_TRUE(Json::accept(line)) << line;
    }
  }

  Caller None() const { return {"none", {}, ""}; }
  Caller A() const { return {"practice A", peer_a_, ""}; }
  Caller B() const { return {"practice B", peer_b_, ""}; }
  Caller Doctor() const { return {"physician", peer_doctor_, ""}; }
  Caller OpsToken() const { return {"ops token", {}, kOpsToken}; }
  Caller OpsCert() const { return {"ops cert", PeerOf("ops"), ""}; }
  Caller AuditorToken() const { return {"auditor token", {}, kAuditorToken}; }
  Caller AuditorCert() const { return {"auditor cert", PeerOf("auditor"), ""}; }
  Caller BadToken() const { return {"bad token", {}, "not-a-known-token"}; }
  // A valid practice certificate with a wrong bearer token: still refused.
  Caller ABadToken() const { return {"practice A + bad token", peer_a_, "wrong"}; }

  HttpResponse Send(const Caller& who, std::string method, std::string target,
                    std::string body = "", HttpHeaders headers = {}) {
    HttpRequest request;
    request.method = std::move(method);
    request.target = std::move(target);
    request.body = std::move(body);
    request.peer = who.peer;
    request.headers = std::move(headers);
    if (!who.bearer.empty()) {
      request.headers.emplace_back("authorization", "Bearer " + who.bearer);
    }
    HttpResponse response = api_->Handle(request);
    seen_.push_back(response.body);
    for (const auto& [k, v] : response.headers) {
      seen_.push_back(v);
    }
    return response;
  }

  HttpResponse Post(const Caller& who, const std::string& path, std::string body,
                    std::string content_type = "application/xml", std::string key = "") {
    HttpHeaders headers = {{"content-type", std::move(content_type)}};
    if (!key.empty()) {
      headers.emplace_back("idempotency-key", std::move(key));
    }
    return Send(who, "POST", path, std::move(body), std::move(headers));
  }

  HttpResponse Ops(const std::string& target, const std::string& method = "GET") {
    HttpRequest request;
    request.method = method;
    request.target = target;
    HttpResponse response = api_->HandleOps(request);
    seen_.push_back(response.body);
    return response;
  }

  static Json Body(const HttpResponse& r) {
    Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(j.is_discarded()) << r.body;
    return j;
  }

  // Commits a message straight into the store (no signing) for `practice`.
  std::string SeedMessage(const std::string& practice, const std::string& id) {
    store::NewMessage m;
    m.id = id;
    m.practice_nihii = practice;
    m.flow_kind = "enrolment";
    m.operation = "SendSubscription";
    m.destinations = {"300"};
    m.body_sha256 = Sha256Hex(id);
    m.payload = "<signed/>";
    m.patient_pseudonym = store::PatientPseudonym(kPseudonymKey, kSampleNiss);
    StatusOr<store::CommitResult> r = store_->Commit(std::move(m));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return id;
  }

  // Delivers `id` (the only message due for 300) and records an answer.
  void Answer(const std::string& id) {
    StatusOr<std::optional<store::Lease>> lease =
        store_->LeaseNext("300", clock_.Now(), std::chrono::seconds(30));
    ASSERT_TRUE(lease.ok() && lease->has_value());
    ASSERT_EQ((*lease)->message_id, id);
    store::NewAnswer answer;
    answer.document = "<answer>accepted</answer>";
    answer.decision = "accepted";
    ASSERT_TRUE(store_->Ack(**lease, answer).ok());
  }

  void DeadLetter(const std::string& id) {
    StatusOr<std::optional<store::Lease>> lease =
        store_->LeaseNext("300", clock_.Now(), std::chrono::seconds(30));
    ASSERT_TRUE(lease.ok() && lease->has_value());
    ASSERT_EQ((*lease)->message_id, id);
    ASSERT_TRUE(store_->DeadLetter(**lease, "insurer answered 400").ok());
  }

  std::vector<store::AuditEvent> AuditEvents(const std::string& kind) {
    store::AuditQuery q;
    q.kind = kind;
    store::PageRequest page;
    page.limit = 1000;
    StatusOr<store::AuditPage> p = store_->Query(q, page);
    EXPECT_TRUE(p.ok());
    return p.ok() ? p->events : std::vector<store::AuditEvent>{};
  }

  psl::testing::FakeClock clock_;
  SystemClock system_clock_;
  const Clock* signing_clock_ = &system_clock_;
  Config config_;
  SigningIdentity practice_a_key_;
  SigningIdentity gateway_key_;
  X509StorePtr trust_;
  PeerIdentity peer_a_;
  PeerIdentity peer_b_;
  PeerIdentity peer_doctor_;
  X509Ptr encryption_cert_;
  bool with_encryption_cert_ = true;
  std::optional<std::string> registry_answer_ = "319";  // member registry: patient -> 319
  Readiness readiness_{true, {}};
  std::unique_ptr<store::MemoryStore> store_;
  std::unique_ptr<RoutingTable> routing_;
  std::unique_ptr<Logger> logger_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<Api> api_;
  std::vector<std::string> log_lines_;
  std::vector<std::string> seen_;
  std::mutex notified_mu_;
  std::vector<std::string> notified_;  // on_committed calls
};

TEST_F(ApiTest, AcceptedEnrolmentIsSignedCommittedAndQueued) {
  HttpResponse r = Post(A(), "/v1/enrolments", EnvelopeA());
  ASSERT_EQ(r.status, 202) << r.body;
  Json body = Body(r);
  const std::string id = body["id"];
  EXPECT_EQ(body["kind"], "enrolment");
  EXPECT_EQ(body["flow"], "mhm");
  EXPECT_EQ(body["insurer"], "300");  // mutuality 319 from the registry -> union 300
  EXPECT_EQ(body["state"], "queued");
  EXPECT_EQ(HeaderOf(r, "location"), "/v1/messages/" + id);
  EXPECT_THAT(id, ::testing::MatchesRegex(
                      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));

  HttpResponse status = Send(A(), "GET", "/v1/messages/" + id);
  ASSERT_EQ(status.status, 200) << status.body;
  Json state = Body(status);
  EXPECT_EQ(state["state"], "queued");
  EXPECT_EQ(state["insurer"], "300");
  EXPECT_EQ(state["attempts"], 0);
  EXPECT_TRUE(state["answer"].is_null());

  // The stored payload carries the gateway's id in the root @Id and a signature that verifies.
  StatusOr<std::string> payload = store_->Payload(id);
  ASSERT_TRUE(payload.ok());
  EXPECT_THAT(*payload, HasSubstr("Id=\"_" + id + "\""));
  StatusOr<codecs::VerifiedSignature> verified =
      codecs::VerifyBlobRequest(*payload, trust_.get(), system_clock_);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->signer_subject, peer_a_.subject);  // the practice's own key

  StatusOr<store::MessageRecord> record = store_->Get(id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->practice_nihii, kPracticeA);
  EXPECT_EQ(record->operation, "SendSubscription");
  EXPECT_EQ(record->patient_pseudonym, store::PatientPseudonym(kPseudonymKey, kSampleNiss));
  EXPECT_EQ(record->body_sha256, Sha256Hex(EnvelopeA()));
  std::vector<store::AuditEvent> accepted = AuditEvents("accepted");
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].actor, std::string("practice:") + kPracticeA);
  EXPECT_EQ(notified_, std::vector<std::string>{"300"});  // the delivery worker is woken
}

TEST_F(ApiTest, PracticeWithoutItsOwnKeyIsSignedWithTheGatewayKey) {
  HttpResponse r = Post(B(), "/v1/messages", EnvelopeB(), "text/xml; charset=utf-8");
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = Body(r)["id"];
  StatusOr<std::string> payload = store_->Payload(id);
  ASSERT_TRUE(payload.ok());
  StatusOr<codecs::VerifiedSignature> verified =
      codecs::VerifyBlobRequest(*payload, trust_.get(), system_clock_);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->signer_subject, certs::SubjectOf(gateway_key_.certificate.get()));
}

TEST_F(ApiTest, RequestSignedByThePracticeIsVerifiedNotResigned) {
  StatusOr<std::string> signed_a =
      codecs::SignBlobRequest(EnvelopeA(), practice_a_key_, nullptr, system_clock_);
  ASSERT_TRUE(signed_a.ok()) << signed_a.status().ToString();
  HttpResponse r = Post(A(), "/v1/enrolments", *signed_a);
  ASSERT_EQ(r.status, 202) << r.body;
  StatusOr<std::string> payload = store_->Payload(Body(r)["id"].get<std::string>());
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(codecs::xades_test::ElementText(*payload, "Xades"),
            codecs::xades_test::ElementText(*signed_a, "Xades"));
  EXPECT_TRUE(codecs::VerifyBlobRequest(*payload, trust_.get(), system_clock_).ok());

  // Signed with another practice's key: refused and audited.
  SigningIdentity key_b = LoadIdentity("practice-85432155100");
  StatusOr<std::string> signed_b =
      codecs::SignBlobRequest(EnvelopeA(), key_b, nullptr, system_clock_);
  ASSERT_TRUE(signed_b.ok());
  EXPECT_EQ(Post(A(), "/v1/enrolments", *signed_b).status, 403);
  ASSERT_EQ(AuditEvents("denied").size(), 1u);
  EXPECT_THAT(AuditEvents("denied")[0].outcome_codes, ::testing::Contains("signer-mismatch"));

  // A Xades that does not verify (the sample's placeholder) is a 422.
  const std::string placeholder =
      codecs::mhm_test::ReadShared("samples/mhm-SendSubscriptionRequest.SYNTHETIC.xml");
  HttpResponse bad = Post(A(), "/v1/enrolments", placeholder);
  EXPECT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(Body(bad)["errors"][0]["code"], "PSL-XADES");
}

TEST_F(ApiTest, ConcurrentIntakeGivesEveryRequestItsOwnMessage) {
  const std::string envelope = EnvelopeA();
  constexpr int kThreads = 4;
  constexpr int kPerThread = 5;
  std::vector<std::vector<HttpResponse>> responses(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        HttpRequest request;
        request.method = "POST";
        request.target = "/v1/enrolments";
        request.body = envelope;
        request.peer = peer_a_;
        request.headers = {{"content-type", "application/xml"},
                           {"idempotency-key", "k-" + std::to_string(t) + "-" + std::to_string(i)}};
        responses[t].push_back(api_->Handle(request));
      }
    });
  }
  for (std::thread& th : threads) {
    th.join();
  }
  std::set<std::string> ids;
  for (const auto& per_thread : responses) {
    for (const HttpResponse& r : per_thread) {
      ASSERT_EQ(r.status, 202) << r.body;
      seen_.push_back(r.body);
      ids.insert(Body(r)["id"].get<std::string>());
    }
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(AuditEvents("accepted").size(), ids.size());
}

TEST_F(ApiTest, SoapEnvelopeFromPracticeSoftwareIsUnwrapped) {
  std::string body = EnvelopeA();
  body.erase(0, body.find("<mhm:SendSubscriptionRequest"));
  const std::string soap =
      "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\">"
      "<soapenv:Header/><soapenv:Body>" +
      body + "</soapenv:Body></soapenv:Envelope>";
  HttpResponse r = Post(A(), "/v1/enrolments", soap, "text/xml");
  ASSERT_EQ(r.status, 202) << r.body;
}

TEST_F(ApiTest, IdempotentRetryReturnsTheSameId) {
  HttpResponse first = Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-1");
  ASSERT_EQ(first.status, 202) << first.body;
  HttpResponse again = Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-1");
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(Body(again)["id"], Body(first)["id"]);
  EXPECT_EQ(notified_.size(), 1u);  // nothing new to deliver for the duplicate
  EXPECT_EQ(HeaderOf(again, "location"), HeaderOf(first, "location"));
  EXPECT_EQ(HeaderOf(again, "idempotent-replayed"), "true");
  StatusOr<store::MessagePage> page = store_->List(kPracticeA, {}, {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 1u);

  // Without a key, the same body is a new message.
  HttpResponse other = Post(A(), "/v1/enrolments", EnvelopeA());
  ASSERT_EQ(other.status, 202);
  EXPECT_NE(Body(other)["id"], Body(first)["id"]);
}

TEST_F(ApiTest, IdempotencyKeyReusedWithAnotherBodyIsAConflict) {
  ASSERT_EQ(Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-2").status, 202);
  const std::string changed = EnvelopeA() + "\n<!-- another body -->\n";
  HttpResponse r = Post(A(), "/v1/enrolments", changed, "application/xml", "key-2");
  EXPECT_EQ(r.status, 409) << r.body;
  EXPECT_EQ(HeaderOf(r, "content-type"), "application/problem+json");
  EXPECT_EQ(Body(r)["status"], 409);
}

TEST_F(ApiTest, WrongMediaTypeIs415) {
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA(), "application/json").status, 415);
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA(), "text/plain").status, 415);
  HttpResponse none = Send(A(), "POST", "/v1/enrolments", EnvelopeA());
  EXPECT_EQ(none.status, 415);
  EXPECT_EQ(HeaderOf(none, "content-type"), "application/problem+json");
  EXPECT_EQ(Body(none)["type"], "urn:passerelle:problem:unsupported");
}

TEST_F(ApiTest, InvalidRequestIs422WithEveryProblem) {
  // Two independent rule breaches in the payload: a NISS with a bad check digit and a request
  // date that is not today.
  std::string detail = codecs::mhm_test::SampleDetail();
  detail = codecs::mhm_test::ReplaceAll(detail, ">90010100123<", ">90010100124<");
  detail = codecs::mhm_test::Replace(detail, "<ns2:date>2025-01-02</ns2:date>",
                                     "<ns2:date>2025-01-03</ns2:date>");
  std::string envelope = codecs::mhm_test::WithDetail(EnvelopeA(), detail);
  envelope = codecs::mhm_test::Replace(envelope, "<mc:Ssin>90010100123</mc:Ssin>",
                                       "<mc:Ssin>90010100124</mc:Ssin>");
  HttpResponse r = Post(A(), "/v1/enrolments", envelope);
  ASSERT_EQ(r.status, 422) << r.body;
  Json body = Body(r);
  EXPECT_EQ(body["status"], 422);
  ASSERT_TRUE(body["errors"].is_array());
  std::vector<std::string> codes;
  for (const Json& e : body["errors"]) {
    codes.push_back(e["code"]);
  }
  // 146: request date after today; 111: ID-PATIENT check digits; and the envelope's Ssin.
  EXPECT_THAT(codes, ::testing::IsSupersetOf({"146", "111", "PSL-MHM-ROUTING-SSIN"}));
  for (const Json& e : body["errors"]) {
    for (const char* field : {"code", "message", "line", "column", "path"}) {
      EXPECT_TRUE(e.contains(field)) << field << " in " << e.dump();
    }
    EXPECT_FALSE(e["code"].get<std::string>().empty());
  }
  EXPECT_THAT(r.body, Not(HasSubstr("90010100124")));  // never echoes a patient value
  EXPECT_TRUE(AuditEvents("accepted").empty());
}

TEST_F(ApiTest, MalformedXmlIs400AndOversizedBodyIs413) {
  HttpResponse bad = Post(A(), "/v1/enrolments", "<a><b></a>");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(Body(bad)["errors"][0]["code"], "PSL-XML-SYNTAX");
  HttpResponse doctype = Post(A(), "/v1/enrolments", "<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>");
  EXPECT_EQ(doctype.status, 400);
  EXPECT_EQ(Body(doctype)["errors"][0]["code"], "PSL-XML-DOCTYPE");

  const std::string big = "<a>" + std::string(config_.server.max_body_bytes, 'x') + "</a>";
  EXPECT_EQ(Post(A(), "/v1/enrolments", big).status, 413);
}

TEST_F(ApiTest, AuthorOtherThanTheAuthenticatedPracticeIs403AndAudited) {
  HttpResponse r = Post(B(), "/v1/enrolments", EnvelopeA());
  EXPECT_EQ(r.status, 403) << r.body;
  std::vector<store::AuditEvent> denied = AuditEvents("denied");
  ASSERT_EQ(denied.size(), 1u);
  EXPECT_EQ(denied[0].actor, std::string("practice:") + kPracticeB);
  EXPECT_THAT(denied[0].outcome_codes, ::testing::Contains("sender-mismatch"));
  EXPECT_TRUE(AuditEvents("accepted").empty());
}

TEST_F(ApiTest, UnknownInsurerIs422) {
  registry_answer_ = std::nullopt;  // the message names no mutuality; the registry knows nothing
  HttpResponse r = Post(A(), "/v1/enrolments", EnvelopeA());
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_EQ(Body(r)["detail"], "insurer cannot be determined");
  EXPECT_EQ(Body(r)["errors"][0]["code"], "PSL-ROUTE");
}

TEST_F(ApiTest, StoreThatCannotCommitGives503WithRetryAfter) {
  store_->SetUnavailable(true);
  HttpResponse r = Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-3");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_TRUE(HeaderOf(r, "retry-after").has_value());
  store_->SetUnavailable(false);
  StatusOr<store::MessagePage> page = store_->List(kPracticeA, {}, {});
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->records.empty());
  // The client's retry with the same key then succeeds.
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-3").status, 202);
}

TEST_F(ApiTest, FullBacklogIs503WithRetryAfterAndChangesNothing) {
  config_.insurers["300"].max_backlog = 2;
  Rebuild();
  SeedMessage(kPracticeA, "seed-1");
  SeedMessage(kPracticeA, "seed-2");
  clock_.Set(clock_.Now() + std::chrono::seconds(4));  // 2 pending for 4 s: ~0.5 delivered/s
  const store::AuditHead head = store_->Head();

  HttpResponse r = Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-backlog");
  ASSERT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(HeaderOf(r, "content-type"), "application/problem+json");
  // The excess (1 message) at the estimated delivery rate (depth / oldest age = 0.5/s): 2 s.
  EXPECT_EQ(HeaderOf(r, "retry-after"), "2");
  Json body = Body(r);
  EXPECT_EQ(body["status"], 503);
  EXPECT_EQ(body["detail"],
            "the delivery backlog for insurer 300 is full (2 of 2); retry after 2 s");
  EXPECT_EQ(body["errors"][0]["code"], "PSL-BACKLOG-FULL");
  ASSERT_FALSE(log_lines_.empty());
  EXPECT_THAT(log_lines_.back(), HasSubstr("PSL-BACKLOG-FULL"));

  // Nothing stored, nothing audited, nobody woken.
  StatusOr<store::QueueStats> stats = store_->Stats("300");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->depth, 2u);
  StatusOr<store::MessagePage> page = store_->List(kPracticeA, {}, {});
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->records.size(), 2u);
  EXPECT_EQ(store_->Head().sequence, head.sequence);
  EXPECT_TRUE(notified_.empty());
  EXPECT_THAT(Ops("/metrics").body,
              HasSubstr("passerelle_intake_shed_total{reason=\"backlog\",insurer=\"300\"} 1\n"));

  // Once one is delivered, the same request with the same key is a new message (the 503
  // recorded no key), and the backlog is full again.
  Answer("seed-1");
  HttpResponse retried = Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-backlog");
  ASSERT_EQ(retried.status, 202) << retried.body;
  EXPECT_FALSE(HeaderOf(retried, "idempotent-replayed").has_value());
  EXPECT_EQ(notified_, std::vector<std::string>{"300"});
  EXPECT_EQ(AuditEvents("accepted").size(), 3u);
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA()).status, 503);
}

TEST_F(ApiTest, BacklogBelowTheLimitOrOfAnotherInsurerIsAccepted) {
  config_.insurers["300"].max_backlog = 2;
  config_.insurers["690"].max_backlog = 1;
  Rebuild();
  SeedMessage(kPracticeA, "seed-1");
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA()).status, 202);  // 1 of 2 pending
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA()).status, 503);  // 2 of 2
  EXPECT_EQ(Post(A(), "/v1/amu", AmuA()).status, 202);              // 690: 0 of 1
  HttpResponse full = Post(A(), "/v1/amu", AmuA());
  EXPECT_EQ(full.status, 503) << full.body;
  EXPECT_THAT(Body(full)["detail"].get<std::string>(), HasSubstr("insurer 690 is full (1 of 1)"));
  const std::string metrics = Ops("/metrics").body;
  EXPECT_THAT(metrics,
              HasSubstr("passerelle_intake_shed_total{reason=\"backlog\",insurer=\"300\"} 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr("passerelle_intake_shed_total{reason=\"backlog\",insurer=\"690\"} 1\n"));
}

// A practice that retries an accepted request (its 202 was lost) while the insurer's backlog is
// full gets its original message back, not a 503: the retry adds nothing to the backlog.
TEST_F(ApiTest, ARetryOfAnAcceptedRequestIsAnsweredWhileTheBacklogIsFull) {
  config_.insurers["300"].max_backlog = 2;
  Rebuild();
  SeedMessage(kPracticeA, "seed-1");
  HttpResponse first = Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-lost");
  ASSERT_EQ(first.status, 202) << first.body;  // now 2 of 2
  const store::AuditHead head = store_->Head();
  HttpResponse retry = Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-lost");
  ASSERT_EQ(retry.status, 202) << retry.body;
  EXPECT_EQ(Body(retry)["id"], Body(first)["id"]);
  EXPECT_EQ(store_->Head().sequence, head.sequence);
  // The same key from another practice is a new request, and is refused.
  EXPECT_EQ(Post(B(), "/v1/enrolments", EnvelopeB(), "application/xml", "key-lost").status, 503);
  // A new key is refused.
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA(), "application/xml", "key-new").status, 503);
}

TEST_F(ApiTest, DocumentsOfOtherFlowsNameTheirEndpoint) {
  const std::string claim =
      codecs::mhm_test::ReadShared("samples/genasync-post-eFact-HCPFAC.SYNTHETIC.xml");
  HttpResponse to_enrolments = Post(A(), "/v1/enrolments", claim);
  EXPECT_EQ(to_enrolments.status, 422) << to_enrolments.body;
  EXPECT_THAT(Body(to_enrolments)["detail"].get<std::string>(), HasSubstr("/v1/claims"));
  // eAttest and MediPrima documents go to their codec (here: schema problems, 422), and name
  // their endpoint when sent to another one.
  const std::string attest =
      "<SendAttestationRequest xmlns=\"urn:be:fgov:ehealth:mycarenet:attest:protocol:v3\"/>";
  HttpResponse attest_reply = Post(A(), "/v1/claims", attest);
  EXPECT_EQ(attest_reply.status, 422) << attest_reply.body;
  EXPECT_EQ(Post(A(), "/v1/messages", attest).status, 422);
  HttpResponse attest_to_amu = Post(A(), "/v1/amu", attest);
  EXPECT_EQ(attest_to_amu.status, 422);
  EXPECT_THAT(Body(attest_to_amu)["detail"].get<std::string>(), HasSubstr("/v1/claims"));
  const std::string uma =
      "<SendUrgentMedicalAidAttestationRequest "
      "xmlns=\"urn:be:fgov:ehealth:mediprima:uma:protocol:v1\"/>";
  EXPECT_EQ(Post(A(), "/v1/amu", uma).status, 422);
  HttpResponse uma_to_claims = Post(A(), "/v1/claims", uma);
  EXPECT_EQ(uma_to_claims.status, 422);
  EXPECT_THAT(Body(uma_to_claims)["detail"].get<std::string>(), HasSubstr("/v1/amu"));

  HttpResponse mhm_to_claims = Post(A(), "/v1/claims", EnvelopeA());
  EXPECT_EQ(mhm_to_claims.status, 422);
  EXPECT_THAT(Body(mhm_to_claims)["detail"].get<std::string>(), HasSubstr("/v1/enrolments"));
  HttpResponse mhm_to_amu = Post(A(), "/v1/amu", EnvelopeA());
  EXPECT_EQ(mhm_to_amu.status, 422);

  const std::string unknown =
      codecs::mhm_test::ReadShared("samples/mda-AttributeQuery.SYNTHETIC.xml");
  HttpResponse r = Post(A(), "/v1/messages", unknown);
  EXPECT_EQ(r.status, 415) << r.body;
  EXPECT_EQ(Body(r)["errors"][0]["code"], "PSL-FLOW-UNKNOWN");

  const std::string bare = codecs::mhm_test::SampleDetail();
  EXPECT_EQ(Post(A(), "/v1/enrolments", bare).status, 422);
}

TEST_F(ApiTest, UnknownPathIs404AndWrongMethodIs405) {
  EXPECT_EQ(Send(A(), "GET", "/v1/nothing").status, 404);
  EXPECT_EQ(Send(A(), "GET", "/").status, 404);
  EXPECT_EQ(Send(A(), "GET", "/v2/messages").status, 404);
  HttpResponse r = Send(A(), "GET", "/v1/enrolments");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(HeaderOf(r, "allow"), "POST");
  EXPECT_EQ(Send(A(), "DELETE", "/v1/messages").status, 405);
  EXPECT_EQ(Send(OpsToken(), "GET", "/v1/admin/messages/x/replay").status, 405);
}

TEST_F(ApiTest, AnswerIsServedOnceRecorded) {
  HttpResponse r = Post(A(), "/v1/enrolments", EnvelopeA());
  ASSERT_EQ(r.status, 202);
  const std::string id = Body(r)["id"];
  EXPECT_EQ(Send(A(), "GET", "/v1/messages/" + id + "/answer").status, 404);
  Answer(id);
  HttpResponse answer = Send(A(), "GET", "/v1/messages/" + id + "/answer");
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "<answer>accepted</answer>");
  Json state = Body(Send(A(), "GET", "/v1/messages/" + id));
  EXPECT_EQ(state["state"], "answered");
  EXPECT_EQ(state["answer"]["decision"], "accepted");
}

TEST_F(ApiTest, ListingShowsOnlyOwnMessagesFilteredAndPaged) {
  SeedMessage(kPracticeA, "a-1");
  clock_.SetUtc(2025, 1, 2, 10, 1);
  SeedMessage(kPracticeA, "a-2");
  clock_.SetUtc(2025, 1, 2, 10, 2);
  SeedMessage(kPracticeA, "a-3");
  SeedMessage(kPracticeB, "b-1");
  Answer("a-1");

  Json all = Body(Send(A(), "GET", "/v1/messages?limit=2"));
  ASSERT_EQ(all["messages"].size(), 2u);
  EXPECT_EQ(all["messages"][0]["id"], "a-3");  // newest first
  ASSERT_TRUE(all["next_cursor"].is_string());
  Json rest = Body(
      Send(A(), "GET", "/v1/messages?limit=2&cursor=" + all["next_cursor"].get<std::string>()));
  ASSERT_EQ(rest["messages"].size(), 1u);
  EXPECT_EQ(rest["messages"][0]["id"], "a-1");
  EXPECT_TRUE(rest["next_cursor"].is_null());

  Json answered = Body(Send(A(), "GET", "/v1/messages?state=answered&kind=enrolment"));
  ASSERT_EQ(answered["messages"].size(), 1u);
  EXPECT_EQ(answered["messages"][0]["id"], "a-1");
  Json since = Body(Send(A(), "GET", "/v1/messages?since=2025-01-02T10:01:00Z"));
  EXPECT_EQ(since["messages"].size(), 2u);
  Json offset = Body(Send(A(), "GET", "/v1/messages?since=2025-01-02T11:01:00%2B01:00"));
  EXPECT_EQ(offset["messages"].size(), 2u);
  Json literal_plus = Body(Send(A(), "GET", "/v1/messages?since=2025-01-02T11:01:00+01:00"));
  EXPECT_EQ(literal_plus["messages"].size(), 2u);
  Json b = Body(Send(B(), "GET", "/v1/messages"));
  ASSERT_EQ(b["messages"].size(), 1u);
  EXPECT_EQ(b["messages"][0]["id"], "b-1");

  EXPECT_EQ(Send(A(), "GET", "/v1/messages?state=lost").status, 400);
  EXPECT_EQ(Send(A(), "GET", "/v1/messages?limit=0").status, 400);
  EXPECT_EQ(Send(A(), "GET", "/v1/messages?since=yesterday").status, 400);
  EXPECT_EQ(Send(A(), "GET", "/v1/messages?cursor=b-1").status, 400);
}

TEST_F(ApiTest, DeadLettersAreListedAndReplayIsAuditedWithTheActor) {
  SeedMessage(kPracticeA, "dead-1");
  DeadLetter("dead-1");
  Json list = Body(Send(OpsToken(), "GET", "/v1/admin/dead-letters"));
  ASSERT_EQ(list["dead_letters"].size(), 1u);
  EXPECT_EQ(list["dead_letters"][0]["message_id"], "dead-1");
  EXPECT_EQ(list["dead_letters"][0]["reason"], "insurer answered 400");

  HttpResponse replay = Send(OpsToken(), "POST", "/v1/admin/messages/dead-1/replay");
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(notified_, std::vector<std::string>{"300"});
  std::vector<store::AuditEvent> replayed = AuditEvents("replayed");
  ASSERT_EQ(replayed.size(), 1u);
  EXPECT_EQ(replayed[0].actor, "ops:token:" + Sha256Hex(kOpsToken).substr(0, 12));
  EXPECT_EQ(Body(Send(A(), "GET", "/v1/messages/dead-1"))["state"], "queued");
  EXPECT_EQ(Send(OpsToken(), "POST", "/v1/admin/messages/dead-1/replay").status, 404);
}

TEST_F(ApiTest, AuditQueryByNissMatchesThePseudonymAndIsItselfAudited) {
  ASSERT_EQ(Post(A(), "/v1/enrolments", EnvelopeA()).status, 202);
  HttpResponse r =
      Send(AuditorToken(), "GET", std::string("/v1/audit?patient=90.01.01-001.23&kind=accepted"));
  ASSERT_EQ(r.status, 200) << r.body;
  Json body = Body(r);
  ASSERT_EQ(body["events"].size(), 1u);
  EXPECT_EQ(body["events"][0]["patient_pseudonym"],
            store::PatientPseudonym(kPseudonymKey, kSampleNiss));
  EXPECT_EQ(body["events"][0]["practice"], kPracticeA);
  EXPECT_THAT(r.body, Not(HasSubstr("90.01.01")));

  std::vector<store::AuditEvent> queries = AuditEvents("audit-query");
  ASSERT_EQ(queries.size(), 1u);
  EXPECT_EQ(queries[0].actor, "auditor:token:" + Sha256Hex(kAuditorToken).substr(0, 12));
  EXPECT_EQ(queries[0].patient_pseudonym, store::PatientPseudonym(kPseudonymKey, kSampleNiss));
  EXPECT_THAT(queries[0].outcome_codes, ::testing::Contains("criteria:patient,kind"));

  Json by_practice = Body(
      Send(AuditorCert(), "GET",
           std::string("/v1/audit?practice=") + kPracticeA + "&from=2025-01-01&to=2025-01-03"));
  EXPECT_GE(by_practice["events"].size(), 1u);
  EXPECT_EQ(Send(AuditorToken(), "GET", "/v1/audit?patient=123").status, 400);
  EXPECT_EQ(Send(AuditorToken(), "GET", "/v1/audit?from=soon").status, 400);

  HttpResponse verify = Send(AuditorToken(), "GET", "/v1/audit/verify");
  ASSERT_EQ(verify.status, 200);
  EXPECT_EQ(Body(verify)["ok"], true);
  EXPECT_EQ(AuditEvents("audit-verify").size(), 1u);

  // An audit query that cannot be audited is not answered.
  store_->SetUnavailable(true);
  EXPECT_EQ(Send(AuditorToken(), "GET", "/v1/audit").status, 503);
}

TEST_F(ApiTest, OpsPortServesHealthReadinessAndMetrics) {
  EXPECT_EQ(Ops("/healthz").status, 200);
  EXPECT_EQ(Ops("/readyz").status, 200);
  readiness_ = Readiness{false, {"draining"}};
  HttpResponse not_ready = Ops("/readyz");
  EXPECT_EQ(not_ready.status, 503);
  EXPECT_EQ(Body(not_ready)["reasons"][0], "draining");
  EXPECT_EQ(Ops("/nothing").status, 404);
  EXPECT_EQ(Ops("/metrics", "POST").status, 405);

  ASSERT_EQ(Post(A(), "/v1/enrolments", EnvelopeA()).status, 202);
  EXPECT_EQ(Post(A(), "/v1/enrolments", EnvelopeA(), "text/plain").status, 415);
  HttpResponse metrics = Ops("/metrics");
  ASSERT_EQ(metrics.status, 200);
  EXPECT_EQ(HeaderOf(metrics, "content-type"), kPrometheusContentType);
  EXPECT_THAT(metrics.body, HasSubstr("# TYPE passerelle_requests_total counter"));
  EXPECT_THAT(metrics.body,
              HasSubstr("passerelle_requests_total{kind=\"enrolment\",status=\"202\"} 1\n"));
  EXPECT_THAT(metrics.body,
              HasSubstr("passerelle_requests_total{kind=\"enrolment\",status=\"415\"} 1\n"));
  EXPECT_THAT(metrics.body,
              HasSubstr("passerelle_request_duration_seconds_count{kind=\"enrolment\"} 2\n"));
  EXPECT_THAT(metrics.body, HasSubstr("# TYPE passerelle_queue_depth gauge"));
}

TEST_F(ApiTest, LogLinesAreJsonWithStatusAndNeverTheQueryString) {
  ASSERT_EQ(Post(A(), "/v1/enrolments", EnvelopeA()).status, 202);
  Send(AuditorToken(), "GET", "/v1/audit?patient=90010100123");
  ASSERT_GE(log_lines_.size(), 2u);
  Json accepted = Json::parse(log_lines_[0]);
  EXPECT_EQ(accepted["status"], 202);
  EXPECT_EQ(accepted["practice"], kPracticeA);
  EXPECT_EQ(accepted["level"], "info");
  EXPECT_EQ(accepted["time"], "2025-01-02T10:00:00.000Z");
  EXPECT_FALSE(accepted["message_id"].get<std::string>().empty());
  Json audit = Json::parse(log_lines_.back());
  EXPECT_EQ(audit["path"], "/v1/audit");
  // TearDown checks that no line holds the NISS.
}

// ---- the authorisation matrix ----

enum class Target {
  kPostEnrolment,    // practice A's document
  kPostMessages,     // practice A's document
  kPostClaims,       // practice A's MHM document (wrong endpoint)
  kPostAmu,          // idem
  kGetOwnMessage,    // practice A's message
  kGetOtherMessage,  // practice B's message
  kGetOwnAnswer,     // practice A's answered message
  kGetOtherAnswer,   // practice B's answered message
  kListMessages,
  kListDeadLetters,
  kReplay,  // a dead letter of practice A
  kAuditQuery,
  kAuditVerify,
};

struct MatrixCase {
  Target target;
  const char* name;
  // Expected status per caller: none, A, B, ops token, ops cert, auditor token, auditor cert,
  // bad token, A with a bad token.
  std::vector<int> expected;
};

TEST_F(ApiTest, AuthorisationMatrix) {
  const std::vector<MatrixCase> cases = {
      {Target::kPostEnrolment,
       "POST /v1/enrolments",
       {401, 202, 403, 403, 403, 403, 403, 401, 401}},
      {Target::kPostMessages, "POST /v1/messages", {401, 202, 403, 403, 403, 403, 403, 401, 401}},
      {Target::kPostClaims, "POST /v1/claims", {401, 422, 422, 403, 403, 403, 403, 401, 401}},
      {Target::kPostAmu, "POST /v1/amu", {401, 422, 422, 403, 403, 403, 403, 401, 401}},
      {Target::kGetOwnMessage, "GET own message", {401, 200, 404, 403, 403, 403, 403, 401, 401}},
      {Target::kGetOtherMessage,
       "GET other's message",
       {401, 404, 200, 403, 403, 403, 403, 401, 401}},
      {Target::kGetOwnAnswer, "GET own answer", {401, 200, 404, 403, 403, 403, 403, 401, 401}},
      {Target::kGetOtherAnswer,
       "GET other's answer",
       {401, 404, 200, 403, 403, 403, 403, 401, 401}},
      {Target::kListMessages, "GET /v1/messages", {401, 200, 200, 403, 403, 403, 403, 401, 401}},
      {Target::kListDeadLetters, "GET dead letters", {401, 403, 403, 200, 200, 403, 403, 401, 401}},
      {Target::kReplay, "POST replay", {401, 403, 403, 200, 200, 403, 403, 401, 401}},
      {Target::kAuditQuery, "GET /v1/audit", {401, 403, 403, 403, 403, 200, 200, 401, 401}},
      {Target::kAuditVerify, "GET /v1/audit/verify", {401, 403, 403, 403, 403, 200, 200, 401, 401}},
  };
  const std::vector<Caller> callers = {None(),        A(),        B(),
                                       OpsToken(),    OpsCert(),  AuditorToken(),
                                       AuditorCert(), BadToken(), ABadToken()};
  const std::string envelope_a = EnvelopeA();
  for (const MatrixCase& c : cases) {
    ASSERT_EQ(c.expected.size(), callers.size()) << c.name;
    for (std::size_t i = 0; i < callers.size(); ++i) {
      Rebuild();  // a fresh store per cell: no cell depends on another
      SeedMessage(kPracticeA, "msg-a");
      Answer("msg-a");
      SeedMessage(kPracticeB, "msg-b");
      Answer("msg-b");
      SeedMessage(kPracticeA, "dead-a");
      DeadLetter("dead-a");
      const std::size_t denials_before = AuditEvents("denied").size();
      const Caller& who = callers[i];
      HttpResponse r;
      switch (c.target) {
        case Target::kPostEnrolment:
          r = Post(who, "/v1/enrolments", envelope_a);
          break;
        case Target::kPostMessages:
          r = Post(who, "/v1/messages", envelope_a);
          break;
        case Target::kPostClaims:
          r = Post(who, "/v1/claims", envelope_a);
          break;
        case Target::kPostAmu:
          r = Post(who, "/v1/amu", envelope_a);
          break;
        case Target::kGetOwnMessage:
          r = Send(who, "GET", "/v1/messages/msg-a");
          break;
        case Target::kGetOtherMessage:
          r = Send(who, "GET", "/v1/messages/msg-b");
          break;
        case Target::kGetOwnAnswer:
          r = Send(who, "GET", "/v1/messages/msg-a/answer");
          break;
        case Target::kGetOtherAnswer:
          r = Send(who, "GET", "/v1/messages/msg-b/answer");
          break;
        case Target::kListMessages:
          r = Send(who, "GET", "/v1/messages");
          break;
        case Target::kListDeadLetters:
          r = Send(who, "GET", "/v1/admin/dead-letters");
          break;
        case Target::kReplay:
          r = Send(who, "POST", "/v1/admin/messages/dead-a/replay");
          break;
        case Target::kAuditQuery:
          r = Send(who, "GET", "/v1/audit?practice=81234530000");
          break;
        case Target::kAuditVerify:
          r = Send(who, "GET", "/v1/audit/verify");
          break;
      }
      const int want = c.expected[i];
      EXPECT_EQ(r.status, want) << c.name << " as " << who.name << ": " << r.body;
      if (want == 401 || want == 403) {
        EXPECT_EQ(HeaderOf(r, "content-type"), "application/problem+json");
      }
      // Every denial is audited; a tenant 404 (another practice's message) is a denial too.
      const bool tenant_denial =
          want == 404 &&
          (c.target == Target::kGetOtherMessage || c.target == Target::kGetOwnMessage ||
           c.target == Target::kGetOtherAnswer || c.target == Target::kGetOwnAnswer);
      if (want == 401 || want == 403 || tenant_denial) {
        EXPECT_EQ(AuditEvents("denied").size(), denials_before + 1) << c.name << " as " << who.name;
      }
    }
  }
  // The ops port needs no identity.
  EXPECT_EQ(Ops("/healthz").status, 200);
  EXPECT_EQ(Ops("/readyz").status, 200);
  EXPECT_EQ(Ops("/metrics").status, 200);
}

// ---- auth on its own ----

TEST(AuthenticatorTest, TokensAreComparedByHashAndCertificatesBySubjectOrFingerprint) {
  Config config;
  PracticeConfig p;
  p.nihii = "81234530000";
  p.cert_subjects = {"CN=a,O=x"};
  p.cert_sha256 = {std::string(64, 'A')};
  config.practices[p.nihii] = p;
  config.auth.ops_token_sha256 = {Sha256Hex("t1")};
  config.auth.auditor_token_sha256 = {Sha256Hex("t2")};
  Authenticator auth(config);

  HttpRequest by_fingerprint;
  by_fingerprint.peer = {true, "CN=other", std::string(64, 'a'), ""};
  StatusOr<Principal> practice = auth.Authorize(by_fingerprint, Role::kPractice);
  ASSERT_TRUE(practice.ok());
  EXPECT_EQ(practice->practice_nihii, "81234530000");
  EXPECT_EQ(practice->Actor(), "practice:81234530000");

  HttpRequest unverified;  // a subject without a verified certificate proves nothing
  unverified.peer = {false, "CN=a,O=x", "", ""};
  EXPECT_EQ(auth.Authorize(unverified, Role::kPractice).status().code(),
            StatusCode::kUnauthenticated);

  HttpRequest ops;
  ops.headers = {{"authorization", "bearer t1"}};
  EXPECT_TRUE(auth.Authorize(ops, Role::kOps).ok());
  EXPECT_EQ(auth.Authorize(ops, Role::kAuditor).status().code(), StatusCode::kForbidden);
  ops.headers = {{"authorization", "Bearer t2"}};
  EXPECT_TRUE(auth.Authorize(ops, Role::kAuditor).ok());
  ops.headers = {{"authorization", "Basic dDE6"}};
  EXPECT_EQ(auth.Authorize(ops, Role::kOps).status().code(), StatusCode::kUnauthenticated);
  ops.headers = {{"authorization", "Bearer " + Sha256Hex("t1")}};  // the hash is not the token
  EXPECT_EQ(auth.Authorize(ops, Role::kOps).status().code(), StatusCode::kUnauthenticated);

  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
}

TEST(AuthenticatorTest, CertificateMatchingTwoPracticesIsNoPractice) {
  Config config;
  for (const char* nihii : {"81234530000", "85432155100"}) {
    PracticeConfig p;
    p.nihii = nihii;
    p.cert_subjects = {"CN=shared"};
    config.practices[nihii] = p;
  }
  Authenticator auth(config);
  HttpRequest r;
  r.peer = {true, "CN=shared", std::string(64, 'b'), ""};
  EXPECT_EQ(auth.Authorize(r, Role::kPractice).status().code(), StatusCode::kUnauthenticated);
}

// ---- eFact (genasync post) intake ----

TEST_F(ApiTest, ClaimIsDecodedSignedWithItsIdAndQueuedForTheBatchInsurer) {
  HttpResponse r = Post(A(), "/v1/claims", ClaimA());
  ASSERT_EQ(r.status, 202) << r.body;
  Json body = Body(r);
  const std::string id = body["id"];
  EXPECT_EQ(body["kind"], "claim");
  EXPECT_EQ(body["flow"], "efact");
  EXPECT_EQ(body["operation"], "post");
  EXPECT_EQ(body["insurer"], "300");  // destinations 300 and 306: union 300
  EXPECT_EQ(body["state"], "queued");
  EXPECT_EQ(HeaderOf(r, "location"), "/v1/messages/" + id);
  EXPECT_EQ(notified_, std::vector<std::string>{"300"});

  StatusOr<store::MessageRecord> record = store_->Get(id);
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->flow_kind, "claim");
  EXPECT_EQ(record->operation, "post");
  EXPECT_EQ(record->practice_nihii, kPracticeA);
  StatusOr<std::string> payload = store_->Payload(id);
  ASSERT_TRUE(payload.ok());
  // The gateway's id is the post's InputReference (the TAck and the returns refer to it), and
  // the Detail is signed with the practice's key.
  EXPECT_THAT(*payload, HasSubstr("<c:InputReference>" + id + "</c:InputReference>"));
  EXPECT_THAT(*payload, Not(HasSubstr("20250102093000001")));
  StatusOr<codecs::VerifiedSignature> verified =
      codecs::VerifyGenAsyncPost(*payload, trust_.get(), system_clock_);
  ASSERT_TRUE(verified.ok()) << verified.status().ToString();
  EXPECT_EQ(verified->signer_subject, peer_a_.subject);

  // Also through /v1/messages, detected from the root element.
  HttpResponse any = Post(A(), "/v1/messages", ClaimA());
  ASSERT_EQ(any.status, 202) << any.body;
  EXPECT_EQ(Body(any)["kind"], "claim");
}

TEST_F(ApiTest, AmuInvoiceGoesToMediPrima690) {
  HttpResponse r = Post(A(), "/v1/amu", AmuA());
  ASSERT_EQ(r.status, 202) << r.body;
  Json body = Body(r);
  EXPECT_EQ(body["kind"], "amu");
  EXPECT_EQ(body["flow"], "efact");
  EXPECT_EQ(body["insurer"], "690");
  StatusOr<store::MessageRecord> record = store_->Get(body["id"].get<std::string>());
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->flow_kind, "amu");
  EXPECT_EQ(record->deliveries[0].destination, "690");
}

TEST_F(ApiTest, ClaimOnTheWrongEndpointNamesTheRightOne) {
  HttpResponse to_amu = Post(A(), "/v1/amu", ClaimA());
  EXPECT_EQ(to_amu.status, 422) << to_amu.body;
  EXPECT_THAT(Body(to_amu)["detail"].get<std::string>(), HasSubstr("/v1/claims"));
  HttpResponse to_claims = Post(A(), "/v1/claims", AmuA());
  EXPECT_EQ(to_claims.status, 422) << to_claims.body;
  EXPECT_THAT(Body(to_claims)["detail"].get<std::string>(), HasSubstr("/v1/amu"));
  HttpResponse to_enrolments = Post(A(), "/v1/enrolments", ClaimA());
  EXPECT_EQ(to_enrolments.status, 422);
  EXPECT_TRUE(store_->List(kPracticeA, {}, {}).value().records.empty());
}

TEST_F(ApiTest, InvalidClaimIs422WithRecordZoneAndCodeOfEveryProblem) {
  struct Case {
    const char* file;
    const char* code;
  };
  for (const Case& c : {Case{"invalid/209902/record_checksum.xml", "209902"},
                        Case{"invalid/200802/niss_check_digits.xml", "200802"},
                        Case{"invalid/PSL-EFACT-TOTAL/invoice_total.xml", "PSL-EFACT-TOTAL"}}) {
    HttpResponse r = Post(A(), "/v1/claims", EfactCorpus(c.file));
    ASSERT_EQ(r.status, 422) << c.file << " " << r.body;
    Json body = Body(r);
    bool found = false;
    for (const Json& e : body["errors"]) {
      if (e["code"] == c.code) {
        found = true;
        EXPECT_GT(e["line"].get<int>(), 0) << c.file;        // the record number
        EXPECT_FALSE(e["path"].get<std::string>().empty());  // the zone
        EXPECT_EQ(e["document"], "efact");
      }
    }
    EXPECT_TRUE(found) << c.file << " " << r.body;
  }
  EXPECT_TRUE(store_->List(kPracticeA, {}, {}).value().records.empty());
}

TEST_F(ApiTest, ClaimOfAnotherSenderIs403) {
  // The corpus's ordinary sender 12345625004 is not practice A.
  HttpResponse r = Post(A(), "/v1/claims", EfactCorpus("valid/hcpfac_deflate.xml"));
  EXPECT_EQ(r.status, 403) << r.body;
  EXPECT_EQ(Body(r)["errors"][0]["path"], "record 10 zone 14");
  EXPECT_EQ(AuditEvents("denied").size(), 1u);
}

TEST_F(ApiTest, ClaimSignedByThePracticeIsVerifiedNotResigned) {
  StatusOr<std::string> signed_post =
      codecs::SignGenAsyncPost(ClaimA(), practice_a_key_, nullptr, system_clock_);
  ASSERT_TRUE(signed_post.ok()) << signed_post.status().ToString();
  HttpResponse r = Post(A(), "/v1/claims", *signed_post);
  ASSERT_EQ(r.status, 202) << r.body;
  StatusOr<std::string> payload = store_->Payload(Body(r)["id"].get<std::string>());
  ASSERT_TRUE(payload.ok());
  ASSERT_TRUE(codecs::VerifyGenAsyncPost(*payload, trust_.get(), system_clock_).ok());
  // A practice's signature by another practice's certificate is refused.
  const SigningIdentity gateway = LoadIdentity("gateway");
  StatusOr<std::string> other = codecs::SignGenAsyncPost(ClaimA(), gateway, nullptr, system_clock_);
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(Post(A(), "/v1/claims", *other).status, 403);
}

TEST_F(ApiTest, ClaimIdempotencyKeyGivesTheSameId) {
  HttpResponse first = Post(A(), "/v1/claims", ClaimA(), "application/xml", "claim-1");
  ASSERT_EQ(first.status, 202) << first.body;
  HttpResponse again = Post(A(), "/v1/claims", ClaimA(), "application/xml", "claim-1");
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(Body(again)["id"], Body(first)["id"]);
  EXPECT_EQ(HeaderOf(again, "idempotent-replayed"), "true");
  EXPECT_EQ(Post(A(), "/v1/amu", AmuA(), "application/xml", "claim-1").status, 409);
}

TEST_F(ApiTest, ClaimStatusShowsTheTAckAndTheReturnsWithTheLatestDecision) {
  HttpResponse r = Post(A(), "/v1/claims", ClaimA());
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = Body(r)["id"];
  StatusOr<std::optional<store::Lease>> lease =
      store_->LeaseNext("300", clock_.Now(), std::chrono::seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  store::NewAnswer tack;
  tack.document = "<postResponse/>";
  tack.decision = "received";
  tack.insurer_reference = "TACK-1";
  ASSERT_TRUE(store_->Ack(**lease, tack).ok());
  Json state = Body(Send(A(), "GET", "/v1/messages/" + id));
  EXPECT_EQ(state["state"], "answered");
  EXPECT_EQ(state["answer"]["decision"], "received");
  EXPECT_EQ(state["decision"], "received");
  EXPECT_TRUE(state["returns"].empty());

  store::NewReturn ret;
  ret.destination = "300";
  ret.mailbox_key = "hash-1";
  ret.message_id = id;
  ret.practice_nihii = kPracticeA;
  ret.answer.document = "<MsgResponse>refused</MsgResponse>";
  ret.answer.decision = "refused";
  ret.answer.codes = {"200802"};
  ASSERT_TRUE(store_->RecordReturn(ret).ok());
  state = Body(Send(A(), "GET", "/v1/messages/" + id));
  EXPECT_EQ(state["answer"]["decision"], "received");
  EXPECT_EQ(state["answer"]["insurer_reference"], "TACK-1");
  ASSERT_EQ(state["returns"].size(), 1u);
  EXPECT_EQ(state["returns"][0]["decision"], "refused");
  EXPECT_EQ(state["returns"][0]["codes"], Json::array({"200802"}));
  EXPECT_EQ(state["decision"], "refused");
  EXPECT_EQ(state["codes"], Json::array({"200802"}));
  HttpResponse answer = Send(A(), "GET", "/v1/messages/" + id + "/answer");
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, "<MsgResponse>refused</MsgResponse>");
}

}  // namespace
}  // namespace psl::gateway

namespace psl::gateway {
namespace {

// ---- eAttest v3 ----

TEST_F(ApiTest, EAttestIsSealedForTheInsurersEncryptionCertificateAndQueued) {
  HttpResponse r = Post(A(), "/v1/claims", EAttestA("valid/send_basic.xml"));
  ASSERT_EQ(r.status, 202) << r.body;
  const Json body = Body(r);
  EXPECT_EQ(body["kind"], "claim");
  EXPECT_EQ(body["flow"], "eattest");
  EXPECT_EQ(body["operation"], "SendAttestation");
  EXPECT_EQ(body["insurer"], "300");  // the member registry's 319 -> union 300
  const std::string id = body["id"];

  // The committed payload is the sealed request: the insurer opens it with its key, attempt 1,
  // the gateway's id as the envelope @Id, sealed and signed by the practice's own identity (as
  // its other requests are signed), which is also the Reply-to of the answer.
  StatusOr<std::optional<store::Lease>> lease =
      store_->LeaseNext("300", clock_.Now(), std::chrono::seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  EXPECT_EQ((*lease)->operation, "SendAttestation");
  EXPECT_EQ((*lease)->flow_kind, "claim");
  SigningIdentity insurer = LoadIdentity("insurer-100");
  StatusOr<codecs::OpenedAttestation> opened = codecs::OpenAtInsurer(
      (*lease)->payload, codecs::mhm_test::TestSchemas(), insurer, trust_.get(), system_clock_);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  EXPECT_EQ(opened->envelope_id, "_" + id);
  EXPECT_EQ(opened->attempt_nbr, 1);
  EXPECT_EQ(opened->signer_subject, certs::SubjectOf(practice_a_key_.certificate.get()));
  ASSERT_NE(opened->reply_to, nullptr);
  EXPECT_EQ(certs::SubjectOf(opened->reply_to.get()),
            certs::SubjectOf(practice_a_key_.certificate.get()));
  EXPECT_THAT((*lease)->payload, HasSubstr("encryptedForKnownBED"));

  // The patient is audited as its pseudonym only.
  store::AuditQuery q;
  q.patient_pseudonym = store::PatientPseudonym(kPseudonymKey, "85071412429");
  store::PageRequest page;
  page.limit = 100;
  StatusOr<store::AuditPage> events = store_->Query(q, page);
  ASSERT_TRUE(events.ok());
  EXPECT_FALSE(events->events.empty());

  // Auto-detected on /v1/messages too; a cancellation as well.
  HttpResponse any = Post(A(), "/v1/messages", EAttestA("valid/send_basic.xml"));
  EXPECT_EQ(any.status, 202) << any.body;
  EXPECT_EQ(Body(any)["flow"], "eattest");
  HttpResponse cancel = Post(A(), "/v1/claims", EAttestA("valid/cancel_basic.xml"));
  ASSERT_EQ(cancel.status, 202) << cancel.body;
  EXPECT_EQ(Body(cancel)["operation"], "CancelAttestation");
}

TEST_F(ApiTest, InvalidEAttestIs422WithTheMyCareNetCodeAndPath) {
  struct Case {
    std::string file;
    std::string code;
  };
  for (const Case& c : {Case{"invalid/155/request_author_not_care_provider.xml", "155"},
                        Case{"invalid/111/patient_niss_check_digits.xml", "111"},
                        Case{"invalid/146/encounter_future.xml", "146"}}) {
    HttpResponse r = Post(A(), "/v1/claims", EAttestA(c.file));
    ASSERT_EQ(r.status, 422) << c.file << " " << r.body;
    const Json body = Body(r);
    bool found = false;
    for (const Json& e : body["errors"]) {
      if (e["code"] == c.code) {
        found = true;
        EXPECT_FALSE(e["path"].get<std::string>().empty()) << c.file;
      }
    }
    EXPECT_TRUE(found) << c.file << " " << r.body;
  }
  // Another care provider than the authenticated practice (the corpus doctor, unchanged).
  HttpResponse other = Post(A(), "/v1/claims", ConformanceFile("eattest/valid/send_basic.xml"));
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_THAT(other.body, HasSubstr("PSL-EATTEST-NOT-PRACTICE"));
  EXPECT_TRUE(notified_.empty());
}

// No eattest_url: the insurer takes no eAttest (never its claim_url, the genasync endpoint).
TEST_F(ApiTest, EAttestToAnInsurerWithoutEAttestUrlIs422) {
  config_.insurers["300"].eattest_url.clear();
  Rebuild();
  HttpResponse r = Post(A(), "/v1/claims", EAttestA("valid/send_basic.xml"));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_THAT(r.body, HasSubstr("eattest_url"));
  EXPECT_TRUE(notified_.empty());
}

// Our certificate is expired at sealing time: not the practice's fault, and not permanent: 503 +
// Retry-After, the detail in the log only.
TEST_F(ApiTest, EAttestSealWithAnExpiredGatewayCertificateIs503) {
  psl::testing::FakeClock later;
  later.SetUtc(2200, 1, 2, 10, 0);  // after every certificate of the test PKI
  signing_clock_ = &later;
  Rebuild();
  HttpResponse r = Post(A(), "/v1/claims", EAttestA("valid/send_basic.xml"));
  EXPECT_EQ(r.status, 503) << r.body;
  bool retry_after = false;
  for (const auto& [name, value] : r.headers)
    retry_after = retry_after || name == "retry-after";
  EXPECT_TRUE(retry_after);
  EXPECT_THAT(r.body, Not(HasSubstr("CN=")));
  EXPECT_TRUE(notified_.empty());
  api_.reset();  // before `later` goes
}

TEST_F(ApiTest, EAttestToAnInsurerWithoutEncryptionCertificateIsRefusedAndLogged) {
  with_encryption_cert_ = false;
  Rebuild();
  HttpResponse r = Post(A(), "/v1/claims", EAttestA("valid/send_basic.xml"));
  EXPECT_EQ(r.status, 500) << r.body;
  bool logged = false;
  for (const std::string& line : log_lines_) {
    logged = logged || line.find("encryption_cert_file") != std::string::npos;
  }
  EXPECT_TRUE(logged);
  EXPECT_TRUE(notified_.empty());
}

// ---- MediPrima UMA / consult ----

TEST_F(ApiTest, MediPrimaSendGoesUnsignedTo690WithItsIdAndTheBeneficiaryPseudonym) {
  HttpResponse r = Post(A(), "/v1/amu", ConformanceFile("mediprima/valid/send_bis.xml"));
  ASSERT_EQ(r.status, 202) << r.body;
  const Json body = Body(r);
  EXPECT_EQ(body["kind"], "amu");
  EXPECT_EQ(body["flow"], "mediprima");
  EXPECT_EQ(body["operation"], "SendUrgentMedicalAidAttestation");
  EXPECT_EQ(body["insurer"], "690");
  const std::string id = body["id"];
  StatusOr<std::optional<store::Lease>> lease =
      store_->LeaseNext("690", clock_.Now(), std::chrono::seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  EXPECT_THAT((*lease)->payload, HasSubstr("Id=\"_" + id + "\""));
  EXPECT_THAT((*lease)->payload, Not(HasSubstr("Signature")));  // no XAdES on MediPrima bodies
  // A BIS number is pseudonymised like a NISS.
  store::AuditQuery q;
  q.patient_pseudonym = store::PatientPseudonym(kPseudonymKey, "85493000163");
  store::PageRequest page;
  page.limit = 100;
  StatusOr<store::AuditPage> events = store_->Query(q, page);
  ASSERT_TRUE(events.ok());
  EXPECT_FALSE(events->events.empty());

  for (const char* file : {"mediprima/valid/search_by_number.xml", "mediprima/valid/delete_bis.xml",
                           "mediprima/valid/consult_niss.xml"}) {
    HttpResponse other = Post(A(), "/v1/messages", ConformanceFile(file));
    EXPECT_EQ(other.status, 202) << file << " " << other.body;
    EXPECT_EQ(Body(other)["flow"], "mediprima") << file;
  }
}

TEST_F(ApiTest, MediPrimaServiceWithoutItsUrlIs422) {
  config_.insurers["690"].mediprima_consult_url.clear();
  Rebuild();
  HttpResponse r = Post(A(), "/v1/amu", ConformanceFile("mediprima/valid/consult_niss.xml"));
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_THAT(r.body, HasSubstr("mediprima_consult_url"));
  EXPECT_EQ(Post(A(), "/v1/amu", ConformanceFile("mediprima/valid/send_bis.xml")).status, 202);
}

TEST_F(ApiTest, InvalidMediPrimaIs422WithCodeLineAndPath) {
  for (const char* file : {"mediprima/invalid/PSL-MEDIPRIMA-SSIN-CHECK/send_bis_check.xml",
                           "mediprima/invalid/PSL-MEDIPRIMA-SSIN-CHECK/consult_check.xml"}) {
    HttpResponse r = Post(A(), "/v1/amu", ConformanceFile(file));
    ASSERT_EQ(r.status, 422) << file << " " << r.body;
    const Json e = Body(r)["errors"][0];
    EXPECT_EQ(e["code"], "PSL-MEDIPRIMA-SSIN-CHECK") << r.body;
    EXPECT_GT(e["line"].get<int>(), 0);
    EXPECT_FALSE(e["path"].get<std::string>().empty());
  }
  EXPECT_TRUE(notified_.empty());
}

// The author rule (api.h): a physician's certificate must be the Author of Send/Delete; a
// medical house may send for any (valid) physician.
TEST_F(ApiTest, MediPrimaAuthorMustBeTheAuthenticatedPhysician) {
  const std::string own = ConformanceFile("mediprima/valid/send_bis.xml");
  const std::string other =
      ConformanceFile("mediprima/invalid/PSL-MEDIPRIMA-AUTHOR-MISMATCH/send_other_physician.xml");
  HttpResponse mine = Post(Doctor(), "/v1/amu", own);
  EXPECT_EQ(mine.status, 202) << mine.body;
  HttpResponse mismatch = Post(Doctor(), "/v1/amu", other);
  ASSERT_EQ(mismatch.status, 422) << mismatch.body;
  const Json e = Body(mismatch)["errors"][0];
  EXPECT_EQ(e["code"], "PSL-MEDIPRIMA-AUTHOR-MISMATCH");
  EXPECT_GT(e["line"].get<int>(), 0);
  EXPECT_FALSE(e["path"].get<std::string>().empty());
  // A medical house with a configured physician list: only those physicians.
  EXPECT_EQ(Post(A(), "/v1/amu", own).status, 202);
  HttpResponse unlisted = Post(A(), "/v1/amu", other);
  ASSERT_EQ(unlisted.status, 422) << unlisted.body;
  const Json u = Body(unlisted)["errors"][0];
  EXPECT_EQ(u["code"], "PSL-MEDIPRIMA-AUTHOR-NOT-LISTED");
  EXPECT_GT(u["line"].get<int>(), 0);
  EXPECT_THAT(u["path"].get<std::string>(), HasSubstr("Author"));
  // Not a physician at all is refused whoever sends it.
  HttpResponse dentist =
      Post(A(), "/v1/amu",
           ConformanceFile("mediprima/invalid/PSL-MEDIPRIMA-AUTHOR-NOT-PHYSICIAN/" +
                           std::string("send_author_dentist.xml")));
  EXPECT_EQ(dentist.status, 422) << dentist.body;
}

// Fail closed: a practice that is not a physician and lists no physician sends no UMA
// Send/Delete (Search and Consult name no Author and stay allowed).
TEST_F(ApiTest, MediPrimaPracticeWithoutPhysiciansCannotSendOrDelete) {
  config_.practices[kPracticeA].physicians.clear();
  Rebuild();
  for (const char* file : {"mediprima/valid/send_bis.xml", "mediprima/valid/delete_bis.xml"}) {
    HttpResponse r = Post(A(), "/v1/amu", ConformanceFile(file));
    ASSERT_EQ(r.status, 422) << file << " " << r.body;
    EXPECT_EQ(Body(r)["errors"][0]["code"], "PSL-MEDIPRIMA-AUTHOR-NOT-LISTED") << file;
  }
  EXPECT_EQ(Post(A(), "/v1/amu", ConformanceFile("mediprima/valid/consult_niss.xml")).status, 202);
  EXPECT_EQ(Post(A(), "/v1/amu", ConformanceFile("mediprima/valid/search_by_number.xml")).status,
            202);
}

TEST_F(ApiTest, SynchronousFlowAnswersShowTheDecisionAndReference) {
  HttpResponse r = Post(A(), "/v1/amu", ConformanceFile("mediprima/valid/send_bis.xml"));
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = Body(r)["id"];
  StatusOr<std::optional<store::Lease>> lease =
      store_->LeaseNext("690", clock_.Now(), std::chrono::seconds(30));
  ASSERT_TRUE(lease.ok() && lease->has_value());
  store::NewAnswer answer;
  answer.document = "<SendUrgentMedicalAidAttestationResponse/>";
  answer.decision = "accepted";
  answer.insurer_reference = "UMA-2025-000001";
  ASSERT_TRUE(store_->Ack(**lease, answer).ok());
  HttpResponse status = Send(A(), "GET", "/v1/messages/" + id);
  ASSERT_EQ(status.status, 200) << status.body;
  const Json body = Body(status);
  EXPECT_EQ(body["state"], "answered");
  EXPECT_EQ(body["decision"], "accepted");
  EXPECT_EQ(body["answer"]["insurer_reference"], "UMA-2025-000001");
  EXPECT_FALSE(body.contains("returns"));
}

}  // namespace
}  // namespace psl::gateway
