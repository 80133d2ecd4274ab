// The behaviour shared by RocksDbStore and MemoryStore (instantiated in their own test files).
#include "store/testing/store_behaviour.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/digest.h"
#include "base/testing/fake_clock.h"

namespace psl::store::testing {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr milliseconds kRetention = hours(24 * 7);

class Fixture {
 public:
  explicit Fixture(const StoreFactory& factory) {
    clock_.SetUtc(2026, 1, 10, 12, 0);
    store_ = factory(&clock_, kRetention);
  }
  DurableQueue& queue() { return store_->queue(); }
  AuditLog& audit() { return store_->audit(); }
  psl::testing::FakeClock& clock() { return clock_; }
  StoreUnderTest& store() { return *store_; }
  TimePoint now() const { return clock_.Now(); }

 private:
  psl::testing::FakeClock clock_;
  std::unique_ptr<StoreUnderTest> store_;
};

NewMessage Message(std::string id, std::string key = "", const std::string& body = "body-1",
                   std::vector<std::string> destinations = {"100"}) {
  NewMessage m;
  m.id = std::move(id);
  m.practice_nihii = "19012345001";
  m.flow_kind = "enrolment";
  m.operation = "register";
  m.destinations = std::move(destinations);
  m.idempotency_key = std::move(key);
  m.body_sha256 = "sha-of-" + body;
  m.payload = "<signed>" + m.id + "</signed>";
  m.patient_pseudonym = std::string(64, 'a');
  return m;
}

std::vector<std::string> AuditKinds(AuditLog& audit) {
  PageRequest page;
  page.limit = 1000;
  auto result = audit.Query(AuditQuery{}, page);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  std::vector<std::string> kinds;
  if (result.ok()) {
    for (const AuditEvent& e : result->events) {
      kinds.push_back(e.kind);
    }
  }
  return kinds;
}

Lease MustLease(DurableQueue& queue, std::string_view destination, TimePoint now,
                milliseconds lease_for = seconds(30)) {
  auto lease = queue.LeaseNext(destination, now, lease_for);
  EXPECT_TRUE(lease.ok()) << lease.status().ToString();
  EXPECT_TRUE(lease.ok() && lease->has_value());
  return lease.ok() && lease->has_value() ? **lease : Lease{};
}

TEST_P(StoreBehaviourTest, CommittedMessageIsQueuedWithItsPayload) {
  Fixture f(GetParam());
  auto result = f.queue().Commit(Message("m1", "k1"));
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->id, "m1");
  EXPECT_EQ(result->outcome, CommitOutcome::kCommitted);
  auto record = f.queue().Get("m1");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->state, MessageState::kQueued);
  EXPECT_EQ(record->accepted_ms, ToEpochMs(f.now()));
  EXPECT_EQ(record->practice_nihii, "19012345001");
  ASSERT_EQ(record->deliveries.size(), 1u);
  EXPECT_EQ(record->deliveries[0].destination, "100");
  EXPECT_EQ(f.queue().Payload("m1").value(), "<signed>m1</signed>");
  EXPECT_EQ(AuditKinds(f.audit()), std::vector<std::string>{"accepted"});
  EXPECT_EQ(f.audit().Head().sequence, 1u);
}

TEST_P(StoreBehaviourTest, SameKeyAndBodyReturnsTheOriginalIdAndWritesNothing) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1", "k1")).ok());
  auto again = f.queue().Commit(Message("m2", "k1"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->id, "m1");
  EXPECT_EQ(again->outcome, CommitOutcome::kDuplicate);
  EXPECT_EQ(f.queue().Get("m2").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f.audit().Head().sequence, 1u);
}

TEST_P(StoreBehaviourTest, SameKeyWithAnotherBodyIsAConflict) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1", "k1", "body-1")).ok());
  auto again = f.queue().Commit(Message("m2", "k1", "body-2"));
  EXPECT_EQ(again.status().code(), StatusCode::kConflict);
  EXPECT_EQ(f.queue().Get("m2").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreBehaviourTest, KeysAreScopedToThePractice) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1", "k1")).ok());
  NewMessage other = Message("m2", "k1", "body-2");
  other.practice_nihii = "19099999001";
  auto result = f.queue().Commit(other);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->outcome, CommitOutcome::kCommitted);
}

TEST_P(StoreBehaviourTest, AUsedIdempotencyKeyIsKnownPerPractice) {
  Fixture f(GetParam());
  NewMessage m = Message("m1", "k1");
  EXPECT_FALSE(*f.queue().IdempotencyKeyUsed(m.practice_nihii, "k1"));
  ASSERT_TRUE(f.queue().Commit(m).ok());
  EXPECT_TRUE(*f.queue().IdempotencyKeyUsed(m.practice_nihii, "k1"));
  EXPECT_FALSE(*f.queue().IdempotencyKeyUsed(m.practice_nihii, "k2"));
  EXPECT_FALSE(*f.queue().IdempotencyKeyUsed("19099999001", "k1"));
  EXPECT_FALSE(*f.queue().IdempotencyKeyUsed(m.practice_nihii, ""));
}

TEST_P(StoreBehaviourTest, AnExistingIdIsAConflict) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  EXPECT_EQ(f.queue().Commit(Message("m1")).status().code(), StatusCode::kConflict);
}

TEST_P(StoreBehaviourTest, RefusesAMessageWithoutDestination) {
  Fixture f(GetParam());
  EXPECT_EQ(f.queue().Commit(Message("m1", "", "b", {})).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(f.queue().Commit(Message("")).status().code(), StatusCode::kInvalid);
}

TEST_P(StoreBehaviourTest, LeasesDueEntriesInDueOrderPerDestination) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  f.clock().Set(f.now() + seconds(1));
  ASSERT_TRUE(f.queue().Commit(Message("m2")).ok());
  ASSERT_TRUE(f.queue().Commit(Message("m3", "", "b", {"200"})).ok());
  Lease first = MustLease(f.queue(), "100", f.now());
  Lease second = MustLease(f.queue(), "100", f.now());
  EXPECT_EQ(first.message_id, "m1");
  EXPECT_EQ(first.attempt, 1u);
  EXPECT_EQ(first.payload, "<signed>m1</signed>");
  EXPECT_EQ(first.flow_kind, "enrolment");
  EXPECT_EQ(second.message_id, "m2");
  auto none = f.queue().LeaseNext("100", f.now(), seconds(30));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(MustLease(f.queue(), "200", f.now()).message_id, "m3");
  auto record = f.queue().Get("m1");
  EXPECT_EQ(record->state, MessageState::kDelivering);
  EXPECT_EQ(record->attempts, 1u);
}

TEST_P(StoreBehaviourTest, AnExpiredLeaseComesBackAndTheOldLeaseIsStale) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  Lease crashed = MustLease(f.queue(), "100", f.now(), seconds(30));
  auto early = f.queue().LeaseNext("100", f.now() + seconds(29), seconds(30));
  ASSERT_TRUE(early.ok());
  EXPECT_FALSE(early->has_value());
  Lease retaken = MustLease(f.queue(), "100", f.now() + seconds(30), seconds(30));
  EXPECT_EQ(retaken.message_id, "m1");
  EXPECT_EQ(retaken.attempt, 2u);
  EXPECT_EQ(f.queue().Ack(crashed, NewAnswer{"doc", "accepted", {}}).code(), StatusCode::kConflict);
  EXPECT_TRUE(f.queue().Ack(retaken, NewAnswer{"doc", "accepted", {}}).ok());
}

TEST_P(StoreBehaviourTest, AnAcceptedAnswerTeachesTheMemberRegistryAndARefusalDoesNot) {
  Fixture f(GetParam());
  NewMessage refused = Message("m1", "", "body-1", {"300"});
  refused.patient_pseudonym = std::string(64, 'c');
  NewMessage accepted = Message("m2", "", "body-2", {"500"});
  accepted.patient_pseudonym = std::string(64, 'd');
  ASSERT_TRUE(f.queue().Commit(refused).ok());
  ASSERT_TRUE(f.queue().Commit(accepted).ok());
  EXPECT_EQ(*f.queue().MemberInsurer(std::string(64, 'd')), std::nullopt);
  Lease l1 = MustLease(f.queue(), "300", f.now());
  ASSERT_TRUE(f.queue().Ack(l1, NewAnswer{"<a/>", "refused", {"260"}}).ok());
  Lease l2 = MustLease(f.queue(), "500", f.now());
  ASSERT_TRUE(f.queue().Ack(l2, NewAnswer{"<a/>", "accepted", {}}).ok());
  EXPECT_EQ(*f.queue().MemberInsurer(std::string(64, 'c')), std::nullopt);
  EXPECT_EQ(*f.queue().MemberInsurer(std::string(64, 'd')), std::optional<std::string>("500"));
  EXPECT_EQ(*f.queue().MemberInsurer(""), std::nullopt);
}

TEST_P(StoreBehaviourTest, AckStoresTheAnswerAndEndsTheMessage) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  Lease lease = MustLease(f.queue(), "100", f.now());
  ASSERT_TRUE(f.queue().Ack(lease, NewAnswer{"<answer/>", "refused", {"E123"}, "IO-REF-7"}).ok());
  auto record = f.queue().Get("m1");
  EXPECT_EQ(record->state, MessageState::kAnswered);
  EXPECT_EQ(record->finished_ms, ToEpochMs(f.now()));
  auto answers = f.queue().Answers("m1");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].document, "<answer/>");
  EXPECT_EQ((*answers)[0].decision, "refused");
  EXPECT_EQ((*answers)[0].codes, std::vector<std::string>{"E123"});
  EXPECT_EQ((*answers)[0].insurer_reference, "IO-REF-7");
  EXPECT_EQ((*answers)[0].destination, "100");
  EXPECT_EQ(f.queue().Stats("100")->depth, 0u);
  EXPECT_EQ(f.queue().Ack(lease, NewAnswer{"x", "accepted", {}}).code(), StatusCode::kConflict);
  EXPECT_EQ(AuditKinds(f.audit()), (std::vector<std::string>{"accepted", "attempt", "answered"}));
}

TEST_P(StoreBehaviourTest, NackedEntryComesBackAtItsNextAttempt) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  Lease lease = MustLease(f.queue(), "100", f.now());
  ASSERT_TRUE(f.queue().Nack(lease, f.now() + seconds(60), "http 503").ok());
  auto record = f.queue().Get("m1");
  EXPECT_EQ(record->state, MessageState::kRetrying);
  EXPECT_EQ(record->last_error, "http 503");
  EXPECT_EQ(record->next_attempt_ms, ToEpochMs(f.now() + seconds(60)));
  auto early = f.queue().LeaseNext("100", f.now() + seconds(59), seconds(30));
  EXPECT_FALSE(early->has_value());
  Lease again = MustLease(f.queue(), "100", f.now() + seconds(60));
  EXPECT_EQ(again.attempt, 2u);
  EXPECT_EQ(f.queue().Nack(lease, f.now(), "late").code(), StatusCode::kConflict);
  EXPECT_EQ(AuditKinds(f.audit()),
            (std::vector<std::string>{"accepted", "attempt", "retry", "attempt"}));
}

TEST_P(StoreBehaviourTest, DeadLetteredMessageCanBeReplayedOnce) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  Lease lease = MustLease(f.queue(), "100", f.now());
  ASSERT_TRUE(f.queue().DeadLetter(lease, "http 400").ok());
  EXPECT_EQ(f.queue().Get("m1")->state, MessageState::kDead);
  auto letters = f.queue().DeadLetters(PageRequest{});
  ASSERT_TRUE(letters.ok());
  ASSERT_EQ(letters->letters.size(), 1u);
  EXPECT_EQ(letters->letters[0].message_id, "m1");
  EXPECT_EQ(letters->letters[0].reason, "http 400");
  auto none = f.queue().LeaseNext("100", f.now() + hours(1), seconds(30));
  EXPECT_FALSE(none->has_value());

  f.clock().Set(f.now() + seconds(5));
  ASSERT_TRUE(f.queue().Replay("m1", "ops:alice").ok());
  EXPECT_EQ(f.queue().Get("m1")->state, MessageState::kQueued);
  EXPECT_TRUE(f.queue().DeadLetters(PageRequest{})->letters.empty());
  EXPECT_EQ(f.queue().Replay("m1", "ops:alice").code(), StatusCode::kNotFound);
  EXPECT_EQ(f.queue().Replay("nope", "ops:alice").code(), StatusCode::kNotFound);
  Lease again = MustLease(f.queue(), "100", f.now());
  EXPECT_EQ(again.attempt, 2u);
  EXPECT_EQ(AuditKinds(f.audit()), (std::vector<std::string>{"accepted", "attempt", "dead-lettered",
                                                             "replayed", "attempt"}));
}

TEST_P(StoreBehaviourTest, EachDestinationIsDeliveredSeparately) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1", "", "b", {"100", "300"})).ok());
  Lease a = MustLease(f.queue(), "100", f.now());
  Lease b = MustLease(f.queue(), "300", f.now());
  ASSERT_TRUE(f.queue().Ack(a, NewAnswer{"a", "accepted", {}}).ok());
  EXPECT_EQ(f.queue().Get("m1")->state, MessageState::kDelivering);
  ASSERT_TRUE(f.queue().Ack(b, NewAnswer{"b", "accepted", {}}).ok());
  auto record = f.queue().Get("m1");
  EXPECT_EQ(record->state, MessageState::kAnswered);
  EXPECT_EQ(record->attempts, 2u);
  EXPECT_EQ(f.queue().Answers("m1")->size(), 2u);
}

TEST_P(StoreBehaviourTest, ListsAPracticesMessagesNewestFirstInPages) {
  Fixture f(GetParam());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(f.queue().Commit(Message("m" + std::to_string(i))).ok());
    f.clock().Set(f.now() + seconds(1));
  }
  NewMessage other = Message("x1");
  other.practice_nihii = "19099999001";
  ASSERT_TRUE(f.queue().Commit(other).ok());
  Lease lease = MustLease(f.queue(), "100", f.now());  // m0
  ASSERT_TRUE(f.queue().Ack(lease, NewAnswer{"a", "accepted", {}}).ok());

  std::vector<std::string> ids;
  PageRequest page;
  page.limit = 2;
  for (int guard = 0; guard < 10; ++guard) {
    auto result = f.queue().List("19012345001", MessageFilter{}, page);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    for (const MessageRecord& r : result->records) {
      ids.push_back(r.id);
    }
    if (result->next_cursor.empty()) {
      break;
    }
    page.after = result->next_cursor;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"m4", "m3", "m2", "m1", "m0"}));

  MessageFilter answered;
  answered.state = MessageState::kAnswered;
  auto only = f.queue().List("19012345001", answered, PageRequest{});
  ASSERT_EQ(only->records.size(), 1u);
  EXPECT_EQ(only->records[0].id, "m0");
}

TEST_P(StoreBehaviourTest, StatsCountTheQueueAndItsOldestMessage) {
  Fixture f(GetParam());
  const std::int64_t first = ToEpochMs(f.now());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  f.clock().Set(f.now() + seconds(10));
  ASSERT_TRUE(f.queue().Commit(Message("m2")).ok());
  auto stats = f.queue().Stats("100");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->depth, 2u);
  EXPECT_EQ(stats->oldest_accepted_ms, first);
  EXPECT_EQ(f.queue().Stats("999")->depth, 0u);
}

TEST_P(StoreBehaviourTest, PurgeDeletesOnlyPayloadsDeliveredLongerThanTheRetention) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("old")).ok());
  ASSERT_TRUE(f.queue().Commit(Message("pending")).ok());
  Lease lease = MustLease(f.queue(), "100", f.now());
  ASSERT_TRUE(f.queue().Ack(lease, NewAnswer{"answer", "accepted", {}}).ok());
  f.clock().Set(f.now() + hours(1));
  ASSERT_TRUE(f.queue().Commit(Message("recent")).ok());
  Lease recent = MustLease(f.queue(), "100", f.now() + hours(1));  // pending was due first
  ASSERT_EQ(recent.message_id, "pending");

  auto none = f.queue().PurgeDelivered(f.now() + kRetention - hours(1) - milliseconds(1));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->payloads_purged, 0u);
  auto purged = f.queue().PurgeDelivered(f.now() + kRetention);
  ASSERT_TRUE(purged.ok()) << purged.status().ToString();
  EXPECT_EQ(purged->payloads_purged, 1u);
  EXPECT_EQ(f.queue().Payload("old").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(f.queue().Get("old")->payload_purged);
  EXPECT_EQ(f.queue().Answers("old")->size(), 1u);  // answers are kept
  EXPECT_TRUE(f.queue().Payload("pending").ok());
  EXPECT_TRUE(f.queue().Payload("recent").ok());
}

TEST_P(StoreBehaviourTest, ReplayOfAPurgedMessageIsRefused) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  ASSERT_TRUE(f.queue().DeadLetter(MustLease(f.queue(), "100", f.now()), "http 400").ok());
  ASSERT_TRUE(f.queue().PurgeDelivered(f.now() + kRetention).ok());
  EXPECT_EQ(f.queue().Replay("m1", "ops:alice").code(), StatusCode::kFailedPrecondition);
}

TEST_P(StoreBehaviourTest, RefusedNewWorkIsUnavailableAndWritesNothing) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  f.store().RefuseNewWork(true);
  EXPECT_EQ(f.queue().Commit(Message("m2")).status().code(), StatusCode::kUnavailable);
  AuditEvent denial;
  denial.kind = "denied";
  EXPECT_EQ(f.audit().Append(denial).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.queue().Get("m2").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(f.audit().Head().sequence, 1u);
  f.store().RefuseNewWork(false);
  ASSERT_TRUE(f.queue().Commit(Message("m2")).ok());
  EXPECT_EQ(f.audit().Head().sequence, 2u);
  auto report = f.audit().Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

TEST_P(StoreBehaviourTest, AppendedEventsAreChainedAndQueryable) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  AuditEvent denial;
  denial.kind = "denied";
  denial.practice_nihii = "19099999001";
  denial.actor = "practice:19099999001";
  denial.outcome_codes = {"403"};
  auto sealed = f.audit().Append(denial);
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  EXPECT_EQ(sealed->sequence, 2u);
  EXPECT_EQ(sealed->time_ms, ToEpochMs(f.now()));
  EXPECT_EQ(f.audit().Head().hash, sealed->hash);

  AuditQuery by_practice;
  by_practice.practice_nihii = "19099999001";
  auto page = f.audit().Query(by_practice, PageRequest{});
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->events.size(), 1u);
  EXPECT_EQ(page->events[0].kind, "denied");

  AuditQuery by_patient;
  by_patient.patient_pseudonym = std::string(64, 'a');
  EXPECT_EQ(f.audit().Query(by_patient, PageRequest{})->events.size(), 1u);

  AuditQuery by_kind;
  by_kind.kind = "accepted";
  by_kind.to_ms = ToEpochMs(f.now()) - 1;
  EXPECT_TRUE(f.audit().Query(by_kind, PageRequest{})->events.empty());

  AuditEvent no_kind;
  EXPECT_EQ(f.audit().Append(no_kind).status().code(), StatusCode::kInvalid);
  auto report = f.audit().Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->events, 2u);
}

TEST_P(StoreBehaviourTest, AuditQueriesPage) {
  Fixture f(GetParam());
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(f.queue().Commit(Message("m" + std::to_string(i))).ok());
    f.clock().Set(f.now() + seconds(1));
  }
  AuditQuery query;
  query.kind = "accepted";
  PageRequest page;
  page.limit = 3;
  std::vector<std::string> ids;
  for (int guard = 0; guard < 10; ++guard) {
    auto result = f.audit().Query(query, page);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    for (const AuditEvent& e : result->events) {
      ids.push_back(e.message_id);
    }
    if (result->next_cursor.empty()) {
      break;
    }
    page.after = result->next_cursor;
  }
  EXPECT_EQ(ids, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4", "m5", "m6"}));
}

TEST_P(StoreBehaviourTest, ConcurrentCommitsAreAllAcknowledgedOnce) {
  Fixture f(GetParam());
  constexpr int kThreads = 16;
  constexpr int kPerThread = 20;
  std::vector<std::vector<std::string>> acknowledged(kThreads);
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Every second commit repeats the previous key: a duplicate, never a second message.
        const int n = i - (i % 2);
        auto result =
            f.queue().Commit(Message("t" + std::to_string(t) + "-" + std::to_string(i),
                                     "key-" + std::to_string(t) + "-" + std::to_string(n), "body"));
        if (result.ok() && result->outcome == CommitOutcome::kCommitted) {
          acknowledged[t].push_back(result->id);
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  std::set<std::string> ids;
  for (const auto& list : acknowledged) {
    ids.insert(list.begin(), list.end());
  }
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(kThreads * kPerThread / 2));
  for (const std::string& id : ids) {
    EXPECT_TRUE(f.queue().Get(id).ok()) << id;
  }
  EXPECT_EQ(f.queue().Stats("100")->depth, ids.size());
  EXPECT_EQ(f.audit().Head().sequence, ids.size());
  auto report = f.audit().Verify();
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
}

// --- Asynchronous returns (RecordReturn) ------------------------------------------------------

NewReturn Return(std::string mailbox_key, std::string message_id, std::string decision = "accepted",
                 std::string destination = "100") {
  NewReturn r;
  r.destination = std::move(destination);
  r.mailbox_key = std::move(mailbox_key);
  r.message_id = std::move(message_id);
  r.answer.document = "<MsgResponse>" + r.mailbox_key + "</MsgResponse>";
  r.answer.decision = std::move(decision);
  r.answer.codes = {"931000"};
  r.answer.insurer_reference = "NIP-" + r.mailbox_key;
  return r;
}

std::vector<AuditEvent> EventsOfKind(AuditLog& audit, std::string kind) {
  AuditQuery query;
  query.kind = std::move(kind);
  PageRequest page;
  page.limit = 1000;
  auto result = audit.Query(query, page);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? result->events : std::vector<AuditEvent>{};
}

void ExpectChainVerifies(AuditLog& audit) {
  auto report = audit.Verify();
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok) << report->problem;
}

TEST_P(StoreBehaviourTest, AReturnIsRecordedOnceAndASecondCallIsADuplicateWritingNothing) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  Lease lease = MustLease(f.queue(), "100", f.now());
  ASSERT_TRUE(f.queue().Ack(lease, NewAnswer{"<tack/>", "received", {}}).ok());
  f.clock().Set(f.now() + seconds(5));

  auto first = f.queue().RecordReturn(Return("hash-1", "m1"));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(*first, ReturnOutcome::kRecorded);
  const AuditHead head = f.audit().Head();
  NewReturn again = Return("hash-1", "m1", "refused");  // same key: whatever the content
  auto second = f.queue().RecordReturn(again);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, ReturnOutcome::kDuplicate);
  EXPECT_EQ(f.audit().Head().sequence, head.sequence);
  EXPECT_EQ(f.audit().Head().hash, head.hash);

  auto answers = f.queue().Answers("m1");
  ASSERT_TRUE(answers.ok()) << answers.status().ToString();
  ASSERT_EQ(answers->size(), 2u);
  EXPECT_EQ((*answers)[0].decision, "received");
  EXPECT_EQ((*answers)[0].mailbox_key, "");
  const StoredAnswer& ret = (*answers)[1];
  EXPECT_EQ(ret.message_id, "m1");
  EXPECT_EQ(ret.destination, "100");
  EXPECT_EQ(ret.mailbox_key, "hash-1");
  EXPECT_EQ(ret.document, "<MsgResponse>hash-1</MsgResponse>");
  EXPECT_EQ(ret.decision, "accepted");
  EXPECT_EQ(ret.codes, std::vector<std::string>{"931000"});
  EXPECT_EQ(ret.insurer_reference, "NIP-hash-1");
  EXPECT_EQ(ret.received_ms, ToEpochMs(f.now()));
  // The message itself stays answered.
  EXPECT_EQ(f.queue().Get("m1")->state, MessageState::kAnswered);

  std::vector<AuditEvent> events = EventsOfKind(f.audit(), "return-received");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].message_id, "m1");
  EXPECT_EQ(events[0].practice_nihii, "19012345001");
  EXPECT_EQ(events[0].insurer, "100");
  EXPECT_EQ(events[0].actor, "insurer:100");
  EXPECT_EQ(events[0].payload_sha256, Sha256Hex("<MsgResponse>hash-1</MsgResponse>"));
  EXPECT_EQ(events[0].outcome_codes, (std::vector<std::string>{"accepted", "931000"}));
  EXPECT_EQ(events[0].sequence, head.sequence);
  ExpectChainVerifies(f.audit());
}

TEST_P(StoreBehaviourTest, ReturnsFollowTheDeliveryAnswerInTheOrderRecorded) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  Lease lease = MustLease(f.queue(), "100", f.now());
  // The poller may collect returns before the delivery worker has recorded the post's TAck.
  ASSERT_EQ(*f.queue().RecordReturn(Return("z-first", "m1", "refused")), ReturnOutcome::kRecorded);
  ASSERT_EQ(*f.queue().RecordReturn(Return("a-second", "m1", "accepted")),
            ReturnOutcome::kRecorded);
  ASSERT_TRUE(f.queue().Ack(lease, NewAnswer{"<tack/>", "received", {}}).ok());
  ASSERT_EQ(*f.queue().RecordReturn(Return("m-third", "m1", "accepted-with-errors")),
            ReturnOutcome::kRecorded);
  auto answers = f.queue().Answers("m1");
  ASSERT_TRUE(answers.ok());
  std::vector<std::string> order;
  for (const StoredAnswer& a : *answers) {
    order.push_back(a.decision + "/" + a.mailbox_key);
  }
  EXPECT_EQ(order, (std::vector<std::string>{"received/", "refused/z-first", "accepted/a-second",
                                             "accepted-with-errors/m-third"}));
  ExpectChainVerifies(f.audit());
}

TEST_P(StoreBehaviourTest, KeysAreScopedToTheInsurer) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1", "", "b", {"100", "300"})).ok());
  EXPECT_EQ(*f.queue().RecordReturn(Return("same-hash", "m1", "accepted", "100")),
            ReturnOutcome::kRecorded);
  EXPECT_EQ(*f.queue().RecordReturn(Return("same-hash", "m1", "accepted", "300")),
            ReturnOutcome::kRecorded);
  EXPECT_EQ(f.queue().Answers("m1")->size(), 2u);
}

TEST_P(StoreBehaviourTest, UnlinkedReturnsAreKeptAsAuditedOrphans) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());  // to "100", practice 19012345001
  ASSERT_EQ(*f.queue().RecordReturn(Return("h-none", "")), ReturnOutcome::kRecorded);
  ASSERT_EQ(*f.queue().RecordReturn(Return("h-unknown", "no-such-id")), ReturnOutcome::kRecorded);
  ASSERT_EQ(*f.queue().RecordReturn(Return("h-other-insurer", "m1", "accepted", "300")),
            ReturnOutcome::kRecorded);
  NewReturn other_practice = Return("h-other-practice", "m1");
  other_practice.practice_nihii = "19099999001";
  ASSERT_EQ(*f.queue().RecordReturn(other_practice), ReturnOutcome::kRecorded);
  // An orphan is de-duplicated like any return.
  EXPECT_EQ(*f.queue().RecordReturn(Return("h-none", "")), ReturnOutcome::kDuplicate);
  // The owner's practice given explicitly still links.
  NewReturn own_practice = Return("h-linked", "m1");
  own_practice.practice_nihii = "19012345001";
  ASSERT_EQ(*f.queue().RecordReturn(own_practice), ReturnOutcome::kRecorded);

  auto answers = f.queue().Answers("m1");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 1u);
  EXPECT_EQ((*answers)[0].mailbox_key, "h-linked");

  std::vector<OrphanReturn> orphans;
  PageRequest page;
  page.limit = 3;
  for (int guard = 0; guard < 10; ++guard) {
    auto result = f.queue().OrphanReturns(page);
    ASSERT_TRUE(result.ok()) << result.status().ToString();
    orphans.insert(orphans.end(), result->returns.begin(), result->returns.end());
    if (result->next_cursor.empty()) {
      break;
    }
    page.after = result->next_cursor;
  }
  ASSERT_EQ(orphans.size(), 4u);
  EXPECT_EQ(orphans[0].answer.mailbox_key, "h-none");
  EXPECT_EQ(orphans[0].reason, "no-reference");
  EXPECT_EQ(orphans[0].claimed_message_id, "");
  EXPECT_EQ(orphans[1].answer.mailbox_key, "h-unknown");
  EXPECT_EQ(orphans[1].reason, "unknown-message");
  EXPECT_EQ(orphans[1].claimed_message_id, "no-such-id");
  EXPECT_EQ(orphans[2].reason, "destination-mismatch");
  EXPECT_EQ(orphans[2].answer.destination, "300");
  EXPECT_EQ(orphans[3].reason, "practice-mismatch");
  for (const OrphanReturn& o : orphans) {
    EXPECT_EQ(o.answer.message_id, "");
    EXPECT_EQ(o.answer.document, "<MsgResponse>" + o.answer.mailbox_key + "</MsgResponse>");
    EXPECT_EQ(o.answer.decision, "accepted");
  }
  PageRequest bad;
  bad.after = "not-a-cursor";
  EXPECT_EQ(f.queue().OrphanReturns(bad).status().code(), StatusCode::kMalformed);

  std::vector<AuditEvent> events = EventsOfKind(f.audit(), "return-received");
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].message_id, "");
  EXPECT_EQ(events[0].actor, "insurer:100");
  EXPECT_EQ(events[0].patient_pseudonym, "");
  EXPECT_EQ(events[0].payload_sha256, Sha256Hex("<MsgResponse>h-none</MsgResponse>"));
  EXPECT_EQ(events[0].outcome_codes,
            (std::vector<std::string>{"orphan", "no-reference", "accepted", "931000"}));
  EXPECT_EQ(events[2].insurer, "300");
  EXPECT_EQ(events[2].outcome_codes[0], "orphan");
  EXPECT_EQ(events[4].message_id, "m1");
  EXPECT_EQ(events[4].outcome_codes[0], "accepted");
  ExpectChainVerifies(f.audit());
}

TEST_P(StoreBehaviourTest, AReturnNeedsADestinationAndAMailboxKey) {
  Fixture f(GetParam());
  EXPECT_EQ(f.queue().RecordReturn(Return("", "")).status().code(), StatusCode::kInvalid);
  EXPECT_EQ(f.queue().RecordReturn(Return("h", "", "accepted", "")).status().code(),
            StatusCode::kInvalid);
  EXPECT_EQ(f.queue().RecordReturn(Return(std::string("h\0x", 3), "")).status().code(),
            StatusCode::kInvalid);
  EXPECT_EQ(f.audit().Head().sequence, 0u);
}

TEST_P(StoreBehaviourTest, BelowTheReserveAReturnIsUnavailableAndWritesNothing) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  f.store().RefuseNewWork(true);
  EXPECT_EQ(f.queue().RecordReturn(Return("hash-1", "m1")).status().code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(f.queue().RecordReturn(Return("hash-2", "")).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(f.audit().Head().sequence, 1u);
  EXPECT_TRUE(f.queue().Answers("m1")->empty());
  EXPECT_TRUE(f.queue().OrphanReturns(PageRequest{})->returns.empty());
  f.store().RefuseNewWork(false);
  // Nothing was recorded, so the poller's next round records it (not a duplicate).
  EXPECT_EQ(*f.queue().RecordReturn(Return("hash-1", "m1")), ReturnOutcome::kRecorded);
  EXPECT_EQ(f.queue().Answers("m1")->size(), 1u);
  ExpectChainVerifies(f.audit());
}

TEST_P(StoreBehaviourTest, RetentionKeepsReturnsAndAPurgedPayloadDoesNotPreventOne) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  ASSERT_TRUE(
      f.queue().Ack(MustLease(f.queue(), "100", f.now()), NewAnswer{"t", "received", {}}).ok());
  ASSERT_EQ(*f.queue().RecordReturn(Return("hash-1", "m1")), ReturnOutcome::kRecorded);
  ASSERT_EQ(f.queue().PurgeDelivered(f.now() + kRetention)->payloads_purged, 1u);
  ASSERT_EQ(*f.queue().RecordReturn(Return("hash-2", "m1", "refused")), ReturnOutcome::kRecorded);
  auto answers = f.queue().Answers("m1");
  ASSERT_TRUE(answers.ok());
  ASSERT_EQ(answers->size(), 3u);
  EXPECT_EQ((*answers)[1].document, "<MsgResponse>hash-1</MsgResponse>");
  EXPECT_EQ((*answers)[2].decision, "refused");
}

TEST_P(StoreBehaviourTest, ConcurrentIdenticalReturnsAreRecordedOnce) {
  Fixture f(GetParam());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  constexpr int kThreads = 8;
  constexpr int kKeys = 10;
  std::vector<int> recorded(kThreads, 0);
  std::vector<int> failed(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kKeys; ++k) {
        // Every thread records every key: two pollers racing over the same mailbox.
        auto result = f.queue().RecordReturn(Return("hash-" + std::to_string(k), "m1"));
        if (!result.ok()) {
          ++failed[t];
        } else if (*result == ReturnOutcome::kRecorded) {
          ++recorded[t];
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  int total = 0;
  for (int t = 0; t < kThreads; ++t) {
    total += recorded[t];
    EXPECT_EQ(failed[t], 0);
  }
  EXPECT_EQ(total, kKeys);
  auto answers = f.queue().Answers("m1");
  ASSERT_TRUE(answers.ok());
  std::set<std::string> keys;
  for (const StoredAnswer& a : *answers) {
    keys.insert(a.mailbox_key);
  }
  EXPECT_EQ(answers->size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(keys.size(), static_cast<std::size_t>(kKeys));
  EXPECT_EQ(EventsOfKind(f.audit(), "return-received").size(), static_cast<std::size_t>(kKeys));
  ExpectChainVerifies(f.audit());
}

TEST_P(StoreBehaviourTest, StatsFollowEveryTransition) {
  Fixture f(GetParam());
  const std::int64_t t1 = ToEpochMs(f.now());
  ASSERT_TRUE(f.queue().Commit(Message("m1")).ok());
  f.clock().Set(f.now() + seconds(10));
  const std::int64_t t2 = ToEpochMs(f.now());
  ASSERT_TRUE(f.queue().Commit(Message("m2", "", "b", {"100", "300"})).ok());
  f.clock().Set(f.now() + seconds(10));
  const std::int64_t t3 = ToEpochMs(f.now());
  ASSERT_TRUE(f.queue().Commit(Message("m3")).ok());
  auto expect = [&](std::string_view destination, std::uint64_t depth, std::int64_t oldest) {
    auto stats = f.queue().Stats(destination);
    ASSERT_TRUE(stats.ok()) << stats.status().ToString();
    EXPECT_EQ(stats->depth, depth) << destination;
    EXPECT_EQ(stats->oldest_accepted_ms, oldest) << destination;
  };
  expect("100", 3, t1);
  expect("300", 1, t2);

  // Leases and nacks move entries but keep them.
  Lease l1 = MustLease(f.queue(), "100", f.now());
  ASSERT_EQ(l1.message_id, "m1");
  expect("100", 3, t1);
  ASSERT_TRUE(f.queue().Nack(l1, f.now() + seconds(60), "http 503").ok());
  expect("100", 3, t1);
  // A stale lease changes nothing.
  EXPECT_EQ(f.queue().Ack(l1, NewAnswer{"a", "accepted", {}}).code(), StatusCode::kConflict);
  expect("100", 3, t1);

  Lease l2 = MustLease(f.queue(), "100", f.now());
  ASSERT_EQ(l2.message_id, "m2");
  ASSERT_TRUE(f.queue().DeadLetter(l2, "http 400").ok());
  expect("100", 2, t1);
  expect("300", 1, t2);

  Lease l3 = MustLease(f.queue(), "100", f.now() + seconds(60));  // m3 was due first
  ASSERT_EQ(l3.message_id, "m3");
  Lease l1b = MustLease(f.queue(), "100", f.now() + seconds(60));
  ASSERT_EQ(l1b.message_id, "m1");
  ASSERT_TRUE(f.queue().Ack(l1b, NewAnswer{"a", "accepted", {}}).ok());
  expect("100", 1, t3);

  // A replay brings m2 back with its original accepted time.
  ASSERT_TRUE(f.queue().Replay("m2", "ops:alice").ok());
  expect("100", 2, t2);

  Lease l300 = MustLease(f.queue(), "300", f.now());
  ASSERT_TRUE(f.queue().Ack(l300, NewAnswer{"a", "accepted", {}}).ok());
  expect("300", 0, 0);
  // Returns and purges leave the queue alone.
  ASSERT_TRUE(f.queue().RecordReturn(Return("hash-1", "m1")).ok());
  ASSERT_TRUE(f.queue().PurgeDelivered(f.now() + kRetention + hours(1)).ok());
  expect("100", 2, t2);
  // A refused commit changes nothing either.
  f.store().RefuseNewWork(true);
  EXPECT_FALSE(f.queue().Commit(Message("m4")).ok());
  f.store().RefuseNewWork(false);
  EXPECT_EQ(f.queue().Commit(Message("m3")).status().code(), StatusCode::kConflict);
  expect("100", 2, t2);
}

}  // namespace
}  // namespace psl::store::testing
