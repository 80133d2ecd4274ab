#include "gateway/mailbox.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/digest.h"
#include "certs/key_store.h"
#include "certs/trust_store.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/efact.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/soap.h"
#include "codecs/testing/efact_test_support.h"
#include "codecs/testing/mhm_test_support.h"
#include "codecs/testing/xades_test_support.h"
#include "codecs/xades.h"
#include "gateway/testing/scripted_sender.h"
#include "store/memory_store.h"

namespace psl::gateway {
namespace {

using sender_test::Http;
using sender_test::ScriptedSender;
using sender_test::Transport;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPractice[] = "81234530000";
constexpr char kOtherPractice[] = "85432155100";

const certs::testing::TestPki& Pki() {
  return certs::testing::SharedTestPki();
}

SigningIdentity LoadIdentity(const std::string& name) {
  const std::filesystem::path chain = Pki() / (name + "-chain.pem");
  StatusOr<SigningIdentity> id =
      certs::LoadPemIdentity(Pki() / (name + ".key"), Pki() / (name + ".pem"), &chain, nullptr);
  EXPECT_TRUE(id.ok()) << id.status().ToString();
  return id.ok() ? std::move(id).value() : SigningIdentity{};
}

HttpsResult Soap(const std::string& body_xml) {
  StatusOr<std::string> env = codecs::BuildSoapResponse(body_xml);
  EXPECT_TRUE(env.ok()) << env.status().ToString();
  return Http(200, env.ok() ? *env : "");
}

class MailboxTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    codecs::xades_test::InitLibraries();
    (void)codecs::mhm_test::TestSchemas();
    ASSERT_TRUE(Pki().ok());
  }

  void SetUp() override {
    gateway_key_ = LoadIdentity("gateway");
    insurer_key_ = LoadIdentity("insurer-300");
    StatusOr<X509StorePtr> trust = certs::LoadTrustStore(Pki() / "ca.pem");
    ASSERT_TRUE(trust.ok());
    trust_ = std::move(trust).value();
    PracticeConfig practice;
    practice.nihii = kPractice;
    config_.practices[kPractice] = practice;
    InsurerConfig insurer;
    insurer.key = "300";
    insurer.endpoints[MessageKind::kEnrolment] = "https://insurer-300.test/mhm";
    insurer.endpoints[MessageKind::kClaim] = "https://insurer-300.test/genasync";
    config_.insurers["300"] = insurer;
    store_ = std::make_unique<store::MemoryStore>(&clock_);
    logger_ = std::make_unique<Logger>(
        LogLevel::kDebug, [this](std::string_view line) { log_lines_.emplace_back(line); },
        &clock_);
    MailboxDeps deps = Deps();
    deps.metrics = &metrics_;
    mailbox_ = std::make_unique<Mailbox>(std::move(deps));
  }

  MailboxDeps Deps() {
    MailboxDeps deps;
    deps.config = &config_;
    deps.queue = store_.get();
    deps.schemas = &codecs::mhm_test::TestSchemas();
    deps.clock = &clock_;
    deps.identity = &gateway_key_;
    deps.sender = &sender_;
    deps.trust = [this](const std::string& key) -> X509_STORE* {
      return key == "300" ? trust_.get() : nullptr;
    };
    deps.logger = logger_.get();
    return deps;
  }

  void TearDown() override {
    for (const std::string& line : log_lines_) {
      for (std::string_view niss :
           {codecs::efact_test::kPatientNiss1, codecs::efact_test::kPatientNiss2}) {
        EXPECT_THAT(line, Not(HasSubstr(std::string(niss))));
      }
    }
  }

  // The stored payload of a post carrying `file` (the shared synthetic post, Detail replaced).
  static std::string PostPayload(const std::string& file) {
    std::string env =
        codecs::mhm_test::ReadShared("samples/genasync-post-eFact-HCPFAC.SYNTHETIC.xml");
    const std::size_t open = env.find("<gen:Detail");
    const std::size_t close = env.find("</gen:Detail>") + std::string("</gen:Detail>").size();
    StatusOr<std::string> deflated = codecs::DeflateRaw(file);
    EXPECT_TRUE(deflated.ok());
    const std::string detail =
        "<gen:Detail ContentType=\"text/plain\" ContentEncoding=\"deflate\" "
        "MessageName=\"HCPFAC\" Id=\"blob\">" +
        codecs::EncodeBase64(deflated.ok() ? *deflated : "") + "</gen:Detail>";
    return env.replace(open, close - open, detail);
  }
  static std::string SampleFileBytes() {
    return codecs::WriteEfact(codecs::efact_test::SampleFile());
  }

  // A claim of `practice` delivered to 300 (its TAck recorded), carrying `file` (default: the
  // sample file the Return()s answer).
  // The confirm request the mailbox sent as its request number `i` (from the SOAP body).
  StatusOr<codecs::ConfirmRequest> SentConfirm(std::size_t i) {
    StatusOr<codecs::SoapResponse> soap = codecs::ParseSoapResponse(sender_.sent.at(i).body);
    if (!soap.ok()) {
      return soap.status();
    }
    return codecs::ParseConfirmRequest(soap->body_xml, codecs::mhm_test::TestSchemas());
  }

  std::string DeliveredClaim(const std::string& id, const std::string& practice = kPractice,
                             const std::string& file = SampleFileBytes()) {
    store::NewMessage m;
    m.id = id;
    m.practice_nihii = practice;
    m.flow_kind = "claim";
    m.operation = "post";
    m.destinations = {"300"};
    m.body_sha256 = Sha256Hex(id);
    m.payload = PostPayload(file);
    EXPECT_TRUE(store_->Commit(std::move(m)).ok());
    StatusOr<std::optional<store::Lease>> lease =
        store_->LeaseNext("300", clock_.Now(), std::chrono::seconds(30));
    EXPECT_TRUE(lease.ok() && lease->has_value());
    store::NewAnswer tack;
    tack.document = "<postResponse/>";
    tack.decision = "received";
    EXPECT_TRUE(store_->Ack(**lease, tack).ok());
    return id;
  }

  std::string Return(codecs::EfactReturnKind kind,
                     const std::vector<codecs::EfactReturnError>& errors = {}) {
    StatusOr<std::string> file =
        codecs::BuildEfactReturn(codecs::efact_test::SampleFile(), kind, errors);
    EXPECT_TRUE(file.ok()) << file.status().ToString();
    return file.ok() ? *file : "";
  }

  // A getResponse holding one message per (input reference, return file).
  std::string GetResponse(const std::vector<std::pair<std::string, std::string>>& items) {
    std::vector<codecs::MailboxMessageSpec> specs;
    int n = 0;
    for (const auto& [reference, content] : items) {
      codecs::MailboxMessageSpec spec;
      spec.message_name = "HCPFAC";
      spec.input_reference = reference;
      spec.output_reference = "OUT-" + std::to_string(++n);
      spec.content = content;
      specs.push_back(spec);
    }
    StatusOr<std::string> body = codecs::BuildGetResponse(specs, {}, insurer_key_, clock_);
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    return body.ok() ? *body : "";
  }

  std::string ConfirmResponse() {
    StatusOr<std::string> body = codecs::BuildConfirmResponse();
    EXPECT_TRUE(body.ok());
    return body.ok() ? *body : "";
  }

  std::vector<store::StoredAnswer> Answers(const std::string& id) {
    StatusOr<std::vector<store::StoredAnswer>> a = store_->Answers(id);
    EXPECT_TRUE(a.ok());
    return a.ok() ? *a : std::vector<store::StoredAnswer>{};
  }

  SystemClock clock_;  // the test PKI is issued today: signatures are checked against now
  Config config_;
  SigningIdentity gateway_key_;
  SigningIdentity insurer_key_;
  X509StorePtr trust_;
  ScriptedSender sender_;
  Metrics metrics_;
  std::unique_ptr<store::MemoryStore> store_;
  std::unique_ptr<Logger> logger_;
  std::vector<std::string> log_lines_;
  std::unique_ptr<Mailbox> mailbox_;
};

TEST_F(MailboxTest, PollsInsurersWithAGenAsyncEndpointOnly) {
  InsurerConfig mhm_only;
  mhm_only.key = "500";
  mhm_only.endpoints[MessageKind::kEnrolment] = "https://insurer-500.test/mhm";
  config_.insurers["500"] = mhm_only;
  MailboxDeps deps;
  deps.config = &config_;
  deps.queue = store_.get();
  deps.schemas = &codecs::mhm_test::TestSchemas();
  deps.clock = &clock_;
  deps.identity = &gateway_key_;
  deps.sender = &sender_;
  Mailbox mailbox(std::move(deps));
  EXPECT_EQ(mailbox.insurers(), std::vector<std::string>{"300"});
  EXPECT_EQ(mailbox.RunOnce("500").gets, 0u);
  EXPECT_TRUE(sender_.sent.empty());
}

TEST_F(MailboxTest, ReturnIsRecordedOnItsMessageAndOnlyThenConfirmed) {
  const std::string id = DeliveredClaim("m-1");
  sender_.script.push_back(
      Soap(GetResponse({{id, Return(codecs::EfactReturnKind::kAcknowledged)}})));
  sender_.script.push_back(Soap(ConfirmResponse()));
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.gets, 1u);
  EXPECT_EQ(stats.recorded, 1u);
  EXPECT_EQ(stats.orphans, 0u);
  EXPECT_EQ(stats.confirmed, 1u);
  EXPECT_EQ(stats.confirm_failures, 0u);

  ASSERT_EQ(sender_.sent.size(), 2u);
  EXPECT_EQ(sender_.sent[0].action, "\"" + std::string(codecs::kGenAsyncGetAction) + "\"");
  EXPECT_EQ(sender_.sent[0].target, "/genasync");
  EXPECT_THAT(sender_.sent[0].body, HasSubstr("wsse:Security"));  // signed by the gateway
  StatusOr<codecs::SoapResponse> get = codecs::ParseSoapResponse(sender_.sent[0].body);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  StatusOr<codecs::GetRequest> parsed =
      codecs::ParseGetRequest(get->body_xml, codecs::mhm_test::TestSchemas());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->origin_nihii, kPractice);
  EXPECT_EQ(parsed->message_names, std::vector<std::string>{"HCPFAC"});
  EXPECT_THAT(sender_.sent[0].body, HasSubstr("urn:nip:destination:io:300"));

  EXPECT_EQ(sender_.sent[1].action, "\"" + std::string(codecs::kGenAsyncConfirmAction) + "\"");
  StatusOr<codecs::ConfirmRequest> confirmed = SentConfirm(1);
  ASSERT_TRUE(confirmed.ok()) << confirmed.status().ToString();
  ASSERT_EQ(confirmed->msg_hash_values.size(), 1u);

  const std::vector<store::StoredAnswer> answers = Answers(id);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].decision, "received");
  EXPECT_EQ(answers[1].decision, "accepted");
  // Keyed on the inflated content + InputReference, not on the HashValue of the deflated bytes.
  EXPECT_NE(answers[1].mailbox_key, confirmed->msg_hash_values[0]);
  EXPECT_EQ(answers[1].mailbox_key,
            Sha256Hex(Return(codecs::EfactReturnKind::kAcknowledged) + "|" + id));
  EXPECT_EQ(answers[1].insurer_reference, "OUT-1");
  EXPECT_THAT(answers[1].document, HasSubstr("MsgResponse"));
  EXPECT_THAT(
      metrics_.Render(),
      HasSubstr("passerelle_mailbox_returns_total{insurer=\"300\",outcome=\"recorded\"} 1"));
}

TEST_F(MailboxTest, RefusedReturnCarriesItsCodes) {
  const std::string id = DeliveredClaim("m-2");
  sender_.script.push_back(
      Soap(GetResponse({{id, Return(codecs::EfactReturnKind::kRefused, {{"200802", 2, "8"}})}})));
  sender_.script.push_back(Soap(ConfirmResponse()));
  EXPECT_EQ(mailbox_->RunOnce("300").recorded, 1u);
  const std::vector<store::StoredAnswer> answers = Answers(id);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].decision, "refused");
  EXPECT_EQ(answers[1].codes, std::vector<std::string>{"200802"});
}

TEST_F(MailboxTest, LostConfirmIsRepeatedAndTheReturnRecordedOnce) {
  const std::string id = DeliveredClaim("m-3");
  const std::string get = GetResponse({{id, Return(codecs::EfactReturnKind::kAcknowledged)}});
  sender_.script.push_back(Soap(get));
  sender_.script.push_back(Transport());  // the confirm is lost
  MailboxStats first = mailbox_->RunOnce("300");
  EXPECT_EQ(first.recorded, 1u);
  EXPECT_EQ(first.confirm_failures, 1u);
  EXPECT_EQ(first.get_failures, 0u);
  // The item is still in the mailbox: the next get brings it again.
  sender_.script.push_back(Soap(get));
  sender_.script.push_back(Soap(ConfirmResponse()));
  MailboxStats second = mailbox_->RunOnce("300");
  EXPECT_EQ(second.recorded, 0u);
  EXPECT_EQ(second.duplicates, 1u);
  EXPECT_EQ(second.confirmed, 1u);
  EXPECT_EQ(Answers(id).size(), 2u);  // the TAck and one return
  EXPECT_EQ(sender_.sent.size(), 4u);
}

TEST_F(MailboxTest, UnverifiableItemIsNeitherRecordedNorConfirmed) {
  const std::string id = DeliveredClaim("m-4");
  std::string get = GetResponse({{id, Return(codecs::EfactReturnKind::kAcknowledged)}});
  // Another insurer's trust: the signature does not reach an anchor.
  StatusOr<X509StorePtr> empty = certs::LoadTrustStore(Pki() / "gateway.pem");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  X509StorePtr foreign = std::move(empty).value();
  MailboxDeps deps;
  deps.config = &config_;
  deps.queue = store_.get();
  deps.schemas = &codecs::mhm_test::TestSchemas();
  deps.clock = &clock_;
  deps.identity = &gateway_key_;
  deps.sender = &sender_;
  deps.trust = [&foreign](const std::string&) {
    return foreign.get();
  };
  Mailbox mailbox(std::move(deps));
  sender_.script.push_back(Soap(get));
  const MailboxStats stats = mailbox.RunOnce("300");
  EXPECT_EQ(stats.rejected, 1u);
  EXPECT_EQ(stats.recorded, 0u);
  EXPECT_EQ(sender_.sent.size(), 1u);  // no confirm
  EXPECT_EQ(Answers(id).size(), 1u);
}

TEST_F(MailboxTest, ReturnOfAnUnknownOrForeignMessageIsAnOrphanAndConfirmed) {
  const std::string other = DeliveredClaim("m-5", kOtherPractice);
  sender_.script.push_back(Soap(
      GetResponse({{"no-such-message", Return(codecs::EfactReturnKind::kAcknowledged)},
                   {other, Return(codecs::EfactReturnKind::kRefused, {{"200802", 2, "8"}})}})));
  sender_.script.push_back(Soap(ConfirmResponse()));
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.recorded, 2u);
  EXPECT_EQ(stats.orphans, 2u);
  EXPECT_EQ(stats.confirmed, 2u);
  EXPECT_EQ(Answers(other).size(), 1u);  // not linked to another practice's message
  StatusOr<store::OrphanReturnPage> orphans = store_->OrphanReturns({});
  ASSERT_TRUE(orphans.ok());
  EXPECT_EQ(orphans->returns.size(), 2u);
}

TEST_F(MailboxTest, FailedGetIsCountedAndNothingElseIsSent) {
  sender_.script.push_back(Transport());
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.get_failures, 1u);
  EXPECT_EQ(sender_.sent.size(), 1u);
  HttpsResult server_error;
  server_error.response.status = 503;
  sender_.script.push_back(server_error);
  EXPECT_EQ(mailbox_->RunOnce("300").get_failures, 1u);
  EXPECT_EQ(mailbox_->stats().get_failures, 2u);
}

TEST_F(MailboxTest, PostAnswerIsTheTAckOfThisMessage) {
  store::Lease lease;
  lease.message_id = "m-6";
  lease.flow_kind = "claim";
  lease.operation = "post";
  codecs::TAck tack;
  tack.issuer = "urn:nip:issuer:io:300";
  tack.applies_to = codecs::TAckAppliesTo("m-6");
  tack.result_major = std::string(codecs::kTAckSuccess);
  tack.reference = "NIP-1";
  StatusOr<std::string> ok = codecs::BuildPostResponse(tack);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  StatusOr<ParsedAnswer> received = ParsePostAnswer(lease, *ok, codecs::mhm_test::TestSchemas());
  ASSERT_TRUE(received.ok()) << received.status().ToString();
  EXPECT_EQ(received->decision, "received");
  EXPECT_EQ(received->insurer_reference, "NIP-1");
  EXPECT_TRUE(received->codes.empty());

  tack.result_major = std::string(codecs::kTAckFailure);
  tack.result_minor = "urn:nip:tack:result:minor:invalid";
  StatusOr<std::string> refused_body = codecs::BuildPostResponse(tack);
  ASSERT_TRUE(refused_body.ok());
  StatusOr<ParsedAnswer> refused =
      ParsePostAnswer(lease, *refused_body, codecs::mhm_test::TestSchemas());
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ(refused->decision, "refused");
  EXPECT_EQ(refused->codes, std::vector<std::string>{"urn:nip:tack:result:minor:invalid"});

  lease.message_id = "m-7";
  EXPECT_EQ(ParsePostAnswer(lease, *ok, codecs::mhm_test::TestSchemas()).status().code(),
            StatusCode::kInvalid);
}

TEST_F(MailboxTest, MailboxTAckIsRecordedOnceAndConfirmedByItsContent) {
  const std::string id = DeliveredClaim("m-8");
  codecs::TAck tack;
  tack.issuer = "urn:nip:issuer:io:300";
  tack.applies_to = codecs::TAckAppliesTo(id);
  tack.result_major = std::string(codecs::kTAckFailure);
  tack.result_minor = "urn:nip:tack:result:minor:invalid";
  tack.content = codecs::TAckContentFor("the post", tack.result_major);
  StatusOr<std::string> get = codecs::BuildGetResponse({}, {tack}, insurer_key_, clock_);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  for (int round = 0; round < 2; ++round) {  // the first confirm is lost
    sender_.script.push_back(Soap(*get));
    sender_.script.push_back(round == 0 ? Transport() : Soap(ConfirmResponse()));
    mailbox_->RunOnce("300");
  }
  const MailboxStats stats = mailbox_->stats();
  EXPECT_EQ(stats.recorded, 1u);
  EXPECT_EQ(stats.duplicates, 1u);
  EXPECT_EQ(stats.confirmed, 1u);
  ASSERT_EQ(sender_.sent.size(), 4u);
  StatusOr<codecs::ConfirmRequest> confirmed = SentConfirm(3);
  ASSERT_TRUE(confirmed.ok()) << confirmed.status().ToString();
  EXPECT_EQ(confirmed->tack_contents, std::vector<std::string>{tack.content});
  // Its attributes are not signed: informational only, it never reaches the message's decision.
  EXPECT_EQ(stats.tacks, 1u);
  const std::vector<store::StoredAnswer> answers = Answers(id);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].decision, "received");
  StatusOr<store::OrphanReturnPage> orphans = store_->OrphanReturns({});
  ASSERT_TRUE(orphans.ok());
  ASSERT_EQ(orphans->returns.size(), 1u);
  const store::StoredAnswer& kept = orphans->returns[0].answer;
  EXPECT_EQ(kept.decision, "refused");
  EXPECT_EQ(kept.codes, std::vector<std::string>{"urn:nip:tack:result:minor:invalid"});
  // The TAck itself is kept, not a placeholder.
  EXPECT_THAT(kept.document, HasSubstr("ResultMinor=\"urn:nip:tack:result:minor:invalid\""));
  EXPECT_THAT(kept.document, HasSubstr(tack.content));
  EXPECT_THAT(kept.document, HasSubstr(codecs::TAckAppliesTo(id)));
}

TEST_F(MailboxTest, RefusedMailboxTAckDoesNotOverrideTheSignedReturn) {
  const std::string id = DeliveredClaim("m-9");
  codecs::TAck tack;
  tack.issuer = "urn:nip:issuer:io:300";
  tack.applies_to = codecs::TAckAppliesTo(id);
  tack.result_major = std::string(codecs::kTAckFailure);
  tack.content = codecs::TAckContentFor("the post", tack.result_major);
  codecs::MailboxMessageSpec spec;
  spec.message_name = "HCPFAC";
  spec.input_reference = id;
  spec.content = Return(codecs::EfactReturnKind::kAcknowledged);
  StatusOr<std::string> get = codecs::BuildGetResponse({spec}, {tack}, insurer_key_, clock_);
  ASSERT_TRUE(get.ok()) << get.status().ToString();
  sender_.script.push_back(Soap(*get));
  sender_.script.push_back(Soap(ConfirmResponse()));
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.recorded, 2u);
  EXPECT_EQ(stats.confirmed, 2u);
  const std::vector<store::StoredAnswer> answers = Answers(id);
  ASSERT_FALSE(answers.empty());
  EXPECT_EQ(answers.back().decision, "accepted");
}

TEST_F(MailboxTest, ReturnNamingAnotherFileThanTheMessageIsAnOrphan) {
  std::string other_file = SampleFileBytes();
  other_file.replace(20, 14, "99999999999999");  // segment 200 zone 204
  const std::string id = DeliveredClaim("m-10", kPractice, other_file);
  sender_.script.push_back(
      Soap(GetResponse({{id, Return(codecs::EfactReturnKind::kRefused, {{"200802", 2, "8"}})}})));
  sender_.script.push_back(Soap(ConfirmResponse()));
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.recorded, 1u);
  EXPECT_EQ(stats.orphans, 1u);
  EXPECT_EQ(stats.link_refused, 1u);
  EXPECT_EQ(stats.confirmed, 1u);
  EXPECT_EQ(Answers(id).size(), 1u);  // only its own post answer
  StatusOr<store::OrphanReturnPage> orphans = store_->OrphanReturns({});
  ASSERT_TRUE(orphans.ok());
  ASSERT_EQ(orphans->returns.size(), 1u);
  EXPECT_EQ(orphans->returns[0].answer.decision, "refused");
}

TEST_F(MailboxTest, ReturnOfAMessageWhosePayloadWasPurgedIsAnOrphan) {
  const std::string id = DeliveredClaim("m-11");
  StatusOr<store::PurgeResult> purged =
      store_->PurgeDelivered(clock_.Now() + std::chrono::hours(24 * 365));
  ASSERT_TRUE(purged.ok());
  ASSERT_FALSE(store_->Payload(id).ok());
  sender_.script.push_back(
      Soap(GetResponse({{id, Return(codecs::EfactReturnKind::kAcknowledged)}})));
  sender_.script.push_back(Soap(ConfirmResponse()));
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.orphans, 1u);
  EXPECT_EQ(stats.link_refused, 1u);
  EXPECT_EQ(stats.confirmed, 1u);
  EXPECT_EQ(Answers(id).size(), 1u);
}

TEST_F(MailboxTest, UnreadableReturnIsRecordedConfirmedAndDoesNotStarveTheNext) {
  const std::string id = DeliveredClaim("m-12");
  sender_.script.push_back(Soap(GetResponse(
      {{id, "not an eFact return file"}, {id, Return(codecs::EfactReturnKind::kAcknowledged)}})));
  sender_.script.push_back(Soap(ConfirmResponse()));
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.unreadable, 1u);
  EXPECT_EQ(stats.recorded, 2u);
  EXPECT_EQ(stats.confirmed, 2u);
  ASSERT_EQ(sender_.sent.size(), 2u);
  StatusOr<codecs::ConfirmRequest> confirmed = SentConfirm(1);
  ASSERT_TRUE(confirmed.ok());
  EXPECT_EQ(confirmed->msg_hash_values.size(), 2u);
  StatusOr<store::OrphanReturnPage> orphans = store_->OrphanReturns({});
  ASSERT_TRUE(orphans.ok());
  ASSERT_EQ(orphans->returns.size(), 1u);
  EXPECT_EQ(orphans->returns[0].answer.decision, "unreadable");
  EXPECT_TRUE(orphans->returns[0].answer.codes.empty());
  EXPECT_THAT(orphans->returns[0].answer.document, HasSubstr("MsgResponse"));
  EXPECT_EQ(Answers(id).back().decision, "accepted");
}

// `content` as one raw deflate STORED block: valid deflate, other bytes than DeflateRaw's.
std::string StoredDeflate(const std::string& content) {
  const std::size_t n = content.size();
  std::string out;
  out.push_back('\x01');  // BFINAL, BTYPE 00
  out.push_back(static_cast<char>(n & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(~n & 0xff));
  out.push_back(static_cast<char>((~n >> 8) & 0xff));
  return out + content;
}

TEST_F(MailboxTest, SameReturnReservedWithOtherDeflateBytesIsADuplicate) {
  const std::string id = DeliveredClaim("m-14");
  const std::string file = Return(codecs::EfactReturnKind::kAcknowledged);
  const std::string first = GetResponse({{id, file}});
  // The same item, its Detail stored instead of compressed (and re-signed by the insurer).
  const std::string deflated = StoredDeflate(file);
  StatusOr<std::string> inflated = codecs::InflateRaw(deflated, 1 << 20);
  ASSERT_TRUE(inflated.ok());
  ASSERT_EQ(*inflated, file);
  const std::string element =
      "<gen:MsgResponse xmlns:gen=\"urn:be:cin:nip:async:generic\" "
      "xmlns:c=\"urn:be:cin:mycarenet:esb:common:v2\"><gen:CommonOutput><c:InputReference>" +
      id +
      "</c:InputReference><c:OutputReference>OUT-1</c:OutputReference></gen:CommonOutput>"
      "<gen:Detail ContentType=\"text/plain\" ContentEncoding=\"deflate\" "
      "MessageName=\"HCPFAC\" HashValue=\"" +
      codecs::GenAsyncHashValue(deflated) + "\" Id=\"_other\">" + codecs::EncodeBase64(deflated) +
      "</gen:Detail></gen:MsgResponse>";
  StatusOr<std::string> signed_element = codecs::SignGenAsyncElement(element, insurer_key_, clock_);
  ASSERT_TRUE(signed_element.ok()) << signed_element.status().ToString();
  std::string again = first;
  const std::size_t open = again.find("<gen:MsgResponse");
  const std::size_t close =
      again.find("</gen:MsgResponse>") + std::string("</gen:MsgResponse>").size();
  ASSERT_NE(open, std::string::npos);
  std::string piece = *signed_element;
  if (piece.rfind("<?xml", 0) == 0) {
    piece = piece.substr(piece.find("?>") + 2);
  }
  again.replace(open, close - open, piece);

  sender_.script.push_back(Soap(first));
  sender_.script.push_back(Transport());  // the confirm is lost
  EXPECT_EQ(mailbox_->RunOnce("300").recorded, 1u);
  sender_.script.push_back(Soap(again));
  sender_.script.push_back(Soap(ConfirmResponse()));
  const MailboxStats second = mailbox_->RunOnce("300");
  EXPECT_EQ(second.rejected, 0u);
  EXPECT_EQ(second.recorded, 0u);
  EXPECT_EQ(second.duplicates, 1u);
  EXPECT_EQ(second.confirmed, 1u);
  EXPECT_EQ(Answers(id).size(), 2u);  // the post answer and one return
  // The confirm echoes the HashValue as served this time.
  ASSERT_EQ(sender_.sent.size(), 4u);
  StatusOr<codecs::ConfirmRequest> confirmed = SentConfirm(3);
  ASSERT_TRUE(confirmed.ok());
  EXPECT_EQ(confirmed->msg_hash_values,
            std::vector<std::string>{codecs::GenAsyncHashValue(deflated)});
}

TEST_F(MailboxTest, HcpfacAndMediPrimaOnOneUrlAreSeparateGets) {
  config_.insurers["300"].endpoints[MessageKind::kAmu] = "https://insurer-300.test/genasync";
  Mailbox mailbox(Deps());
  sender_.script.push_back(Soap(GetResponse({})));
  sender_.script.push_back(Soap(GetResponse({})));
  EXPECT_EQ(mailbox.RunOnce("300").gets, 2u);
  ASSERT_EQ(sender_.sent.size(), 2u);
  std::vector<std::vector<std::string>> names;
  for (const ScriptedSender::Sent& sent : sender_.sent) {
    StatusOr<codecs::SoapResponse> get = codecs::ParseSoapResponse(sent.body);
    ASSERT_TRUE(get.ok());
    StatusOr<codecs::GetRequest> parsed =
        codecs::ParseGetRequest(get->body_xml, codecs::mhm_test::TestSchemas());
    ASSERT_TRUE(parsed.ok());
    names.push_back(parsed->message_names);
  }
  EXPECT_EQ(names, (std::vector<std::vector<std::string>>{{"HCPFAC"}, {"ECM-HCPFAC"}}));
}

TEST_F(MailboxTest, UnverifiedItemsAreAGauge) {
  StatusOr<X509StorePtr> empty = certs::LoadTrustStore(Pki() / "gateway.pem");
  ASSERT_TRUE(empty.ok());
  X509StorePtr foreign = std::move(empty).value();
  MailboxDeps deps = Deps();
  deps.trust = [&foreign](const std::string&) {
    return foreign.get();
  };
  Mailbox mailbox(std::move(deps));
  const std::string get = GetResponse({{"a", Return(codecs::EfactReturnKind::kAcknowledged)},
                                       {"b", Return(codecs::EfactReturnKind::kAcknowledged)}});
  sender_.script.push_back(Soap(get));
  sender_.script.push_back(Soap(get));
  mailbox.RunOnce("300");
  mailbox.RunOnce("300");
  EXPECT_EQ(mailbox.stats().rejected, 4u);
  EXPECT_EQ(mailbox.stats().unverified_pending, 2u);  // the latest get's, not a sum
}

TEST_F(MailboxTest, FaultForOnePracticeDoesNotStopTheOthers) {
  PracticeConfig other;
  other.nihii = kOtherPractice;
  config_.practices[kOtherPractice] = other;
  Mailbox mailbox(Deps());
  codecs::SoapFault fault;
  fault.code = "Client";
  fault.message = "unknown origin";
  StatusOr<std::string> fault_env = codecs::BuildSoapFault(fault);
  ASSERT_TRUE(fault_env.ok());
  HttpsResult faulted;
  faulted.response.status = 500;
  faulted.response.body = *fault_env;
  sender_.script.push_back(faulted);                // kPractice (first in order)
  sender_.script.push_back(Soap(GetResponse({})));  // kOtherPractice: empty mailbox
  MailboxStats stats = mailbox.RunOnce("300");
  EXPECT_EQ(stats.gets, 2u);
  EXPECT_EQ(stats.get_failures, 1u);
  EXPECT_EQ(stats.practice_failures, 1u);
  // Only kPractice backs off: the next round polls kOtherPractice alone.
  sender_.script.push_back(Soap(GetResponse({})));
  stats = mailbox.RunOnce("300");
  EXPECT_EQ(stats.gets, 1u);
  ASSERT_EQ(sender_.sent.size(), 3u);
  EXPECT_THAT(sender_.sent[2].body, HasSubstr(kOtherPractice));
  EXPECT_THAT(sender_.sent[2].body, Not(HasSubstr(kPractice)));
}

TEST_F(MailboxTest, TransportFailureStopsTheInsurerRound) {
  PracticeConfig other;
  other.nihii = kOtherPractice;
  config_.practices[kOtherPractice] = other;
  Mailbox mailbox(Deps());
  sender_.script.push_back(Transport());
  const MailboxStats stats = mailbox.RunOnce("300");
  EXPECT_EQ(stats.gets, 1u);
  EXPECT_EQ(stats.practice_failures, 0u);
  EXPECT_EQ(sender_.sent.size(), 1u);
}

TEST_F(MailboxTest, StoppedMailboxSendsNothingAndDoesNotConfirmAfterTheGet) {
  const std::string id = DeliveredClaim("m-13");
  sender_.script.push_back(
      Soap(GetResponse({{id, Return(codecs::EfactReturnKind::kAcknowledged)}})));
  sender_.script.push_back(Soap(ConfirmResponse()));
  sender_.on_send = [this] {
    mailbox_->Stop();
  };  // Stop arrives while the get is in flight
  const MailboxStats stats = mailbox_->RunOnce("300");
  EXPECT_EQ(stats.recorded, 1u);       // what the get brought is recorded...
  EXPECT_EQ(sender_.sent.size(), 1u);  // ...but not confirmed (it comes back: a duplicate)
  sender_.on_send = nullptr;
  EXPECT_EQ(mailbox_->RunOnce("300").gets, 0u);
  EXPECT_EQ(sender_.sent.size(), 1u);
}

TEST_F(MailboxTest, PracticeWithAnEightDigitNihiiIsLoggedOnce) {
  PracticeConfig eight;
  eight.nihii = "81234530";
  config_.practices["81234530"] = eight;
  log_lines_.clear();
  Mailbox mailbox(Deps());
  int warned = 0;
  for (const std::string& line : log_lines_) {
    if (line.find("never polled") != std::string::npos &&
        line.find("81234530") != std::string::npos) {
      ++warned;
    }
  }
  EXPECT_EQ(warned, 1);
  sender_.script.push_back(Soap(GetResponse({})));
  mailbox.RunOnce("300");
  ASSERT_EQ(sender_.sent.size(), 1u);  // the 11-digit practice only
}

}  // namespace
}  // namespace psl::gateway
