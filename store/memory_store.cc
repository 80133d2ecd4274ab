#include "store/memory_store.h"

#include <algorithm>
#include <cstdlib>

#include "base/digest.h"
#include "store/store_internal.h"

namespace psl::store {

using internal::FindDelivery;
using internal::UpdateAggregate;

namespace {

std::size_t ClampLimit(std::size_t limit, std::size_t max) {
  return std::clamp<std::size_t>(limit, 1, max);
}

}  // namespace

MemoryStore::MemoryStore(const Clock* clock, std::chrono::milliseconds delivered_retention)
    : clock_(clock), delivered_retention_(delivered_retention) {
  chain_.Reset(AuditHead{0, std::string(kZeroAuditHash)});
}

void MemoryStore::SetUnavailable(bool unavailable) {
  std::lock_guard<std::mutex> lock(mu_);
  unavailable_ = unavailable;
}

AuditEvent MemoryStore::SealLocked(AuditEvent event) {
  if (event.time_ms == 0) {
    event.time_ms = ToEpochMs(clock_->Now());
  }
  AuditEvent sealed = chain_.Seal(std::move(event));
  audit_[sealed.sequence] = EncodeStoredAuditEvent(sealed);
  return sealed;
}

AuditEvent MemoryStore::EventFor(const MessageRecord& record, std::string kind, std::string insurer,
                                 std::vector<std::string> codes, std::string actor) {
  return internal::EventFor(record, std::move(kind), std::move(insurer), std::move(codes),
                            std::move(actor), ToEpochMs(clock_->Now()));
}

#define PSL_MEMORY_STORE_WRITABLE()                           \
  do {                                                        \
    if (unavailable_)                                         \
      return Status::Unavailable("the store is unavailable"); \
  } while (false)

StatusOr<CommitResult> MemoryStore::Commit(NewMessage message) {
  PSL_RETURN_IF_ERROR(internal::PrepareNewMessage(message));
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  auto idem_key = std::make_pair(message.practice_nihii, message.idempotency_key);
  if (!message.idempotency_key.empty()) {
    auto it = idempotency_.find(idem_key);
    if (it != idempotency_.end()) {
      if (it->second.second != message.body_sha256) {
        return Status::Conflict("idempotency key already used with another body");
      }
      return CommitResult{it->second.first, CommitOutcome::kDuplicate};
    }
  }
  if (messages_.count(message.id) != 0) {
    return Status::Conflict("message id " + message.id + " already exists");
  }
  const std::int64_t now_ms = ToEpochMs(clock_->Now());
  MessageRecord record = internal::RecordFor(message, now_ms);
  std::string insurers;
  for (const Delivery& d : record.deliveries) {
    queue_.insert({d.destination, d.next_attempt_ms, record.id});
    insurers += (insurers.empty() ? "" : ",") + d.destination;
  }
  if (!message.idempotency_key.empty()) {
    idempotency_[idem_key] = {message.id, message.body_sha256};
  }
  payloads_[message.id] = message.payload;
  SealLocked(EventFor(record, "accepted", insurers, {"202"}, message.actor));
  messages_[message.id] = std::move(record);
  return CommitResult{message.id, CommitOutcome::kCommitted};
}

StatusOr<std::optional<Lease>> MemoryStore::LeaseNext(std::string_view destination, TimePoint now,
                                                      std::chrono::milliseconds lease_for) {
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  const std::int64_t now_ms = ToEpochMs(now);
  auto it = queue_.lower_bound({std::string(destination), INT64_MIN, ""});
  if (it == queue_.end() || std::get<0>(*it) != destination || std::get<1>(*it) > now_ms) {
    return std::optional<Lease>();
  }
  const std::string id = std::get<2>(*it);
  MessageRecord& record = messages_.at(id);
  Delivery* delivery = FindDelivery(record, destination);
  const std::int64_t expires = now_ms + lease_for.count();
  queue_.erase(it);
  queue_.insert({std::string(destination), expires, id});
  ++delivery->attempts;
  delivery->state = MessageState::kDelivering;
  delivery->next_attempt_ms = expires;
  UpdateAggregate(record, ToEpochMs(clock_->Now()));
  SealLocked(EventFor(record, "attempt", std::string(destination),
                      {"attempt:" + std::to_string(delivery->attempts)}, "gateway"));
  Lease lease;
  lease.message_id = id;
  lease.destination = std::string(destination);
  lease.expires_ms = expires;
  lease.attempt = delivery->attempts;
  lease.practice_nihii = record.practice_nihii;
  lease.flow_kind = record.flow_kind;
  lease.operation = record.operation;
  lease.payload = payloads_.at(id);
  return std::optional<Lease>(std::move(lease));
}

Status MemoryStore::FindLeaseLocked(const Lease& lease, MessageRecord** record,
                                    Delivery** delivery) {
  auto it = messages_.find(lease.message_id);
  if (it == messages_.end()) {
    return Status::NotFound("no message " + lease.message_id);
  }
  *record = &it->second;
  *delivery = FindDelivery(it->second, lease.destination);
  if (*delivery == nullptr ||
      queue_.count({lease.destination, lease.expires_ms, lease.message_id}) == 0) {
    return Status::Conflict("the lease on message " + lease.message_id + " for destination " +
                            lease.destination + " is no longer held");
  }
  return Status::Ok();
}

Status MemoryStore::Ack(const Lease& lease, NewAnswer answer) {
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  MessageRecord* record = nullptr;
  Delivery* delivery = nullptr;
  PSL_RETURN_IF_ERROR(FindLeaseLocked(lease, &record, &delivery));
  const std::int64_t now_ms = ToEpochMs(clock_->Now());
  queue_.erase({lease.destination, lease.expires_ms, lease.message_id});
  if (answer.decision == "accepted" && !record->patient_pseudonym.empty()) {
    members_[record->patient_pseudonym] = lease.destination;
  }
  delivery->state = MessageState::kAnswered;
  delivery->next_attempt_ms = 0;
  UpdateAggregate(*record, now_ms);
  std::vector<std::string> codes{answer.decision};
  codes.insert(codes.end(), answer.codes.begin(), answer.codes.end());
  answers_[{lease.message_id, lease.destination}] =
      StoredAnswer{lease.message_id,
                   lease.destination,
                   std::move(answer.document),
                   std::move(answer.decision),
                   std::move(answer.codes),
                   std::move(answer.insurer_reference),
                   now_ms};
  SealLocked(EventFor(*record, "answered", lease.destination, std::move(codes), "gateway"));
  return Status::Ok();
}

Status MemoryStore::Nack(const Lease& lease, TimePoint next_attempt_at, std::string_view error) {
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  MessageRecord* record = nullptr;
  Delivery* delivery = nullptr;
  PSL_RETURN_IF_ERROR(FindLeaseLocked(lease, &record, &delivery));
  const std::int64_t next_ms = ToEpochMs(next_attempt_at);
  queue_.erase({lease.destination, lease.expires_ms, lease.message_id});
  queue_.insert({lease.destination, next_ms, lease.message_id});
  delivery->state = MessageState::kRetrying;
  delivery->next_attempt_ms = next_ms;
  delivery->last_error = std::string(error);
  UpdateAggregate(*record, ToEpochMs(clock_->Now()));
  SealLocked(EventFor(*record, "retry", lease.destination, {std::string(error)}, "gateway"));
  return Status::Ok();
}

Status MemoryStore::DeadLetter(const Lease& lease, std::string_view reason) {
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  MessageRecord* record = nullptr;
  Delivery* delivery = nullptr;
  PSL_RETURN_IF_ERROR(FindLeaseLocked(lease, &record, &delivery));
  const std::int64_t now_ms = ToEpochMs(clock_->Now());
  queue_.erase({lease.destination, lease.expires_ms, lease.message_id});
  delivery->state = MessageState::kDead;
  delivery->next_attempt_ms = 0;
  delivery->last_error = std::string(reason);
  UpdateAggregate(*record, now_ms);
  dead_letters_[{lease.message_id, lease.destination}] =
      store::DeadLetter{lease.message_id, lease.destination, std::string(reason), now_ms};
  SealLocked(
      EventFor(*record, "dead-lettered", lease.destination, {std::string(reason)}, "gateway"));
  return Status::Ok();
}

Status MemoryStore::Replay(std::string_view id, std::string_view actor) {
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  auto it = messages_.find(id);
  if (it == messages_.end()) {
    return Status::NotFound("no message " + std::string(id));
  }
  MessageRecord& record = it->second;
  bool any_dead = std::any_of(record.deliveries.begin(), record.deliveries.end(),
                              [](const Delivery& d) { return d.state == MessageState::kDead; });
  if (!any_dead) {
    return Status::NotFound("message " + std::string(id) + " has no dead letter");
  }
  if (record.payload_purged) {
    return Status::FailedPrecondition("message " + std::string(id) +
                                      " cannot be replayed: its payload was purged");
  }
  const std::int64_t now_ms = ToEpochMs(clock_->Now());
  std::string insurers;
  for (Delivery& d : record.deliveries) {
    if (d.state != MessageState::kDead) {
      continue;
    }
    dead_letters_.erase({record.id, d.destination});
    queue_.insert({d.destination, now_ms, record.id});
    d.state = MessageState::kQueued;
    d.next_attempt_ms = now_ms;
    insurers += (insurers.empty() ? "" : ",") + d.destination;
  }
  UpdateAggregate(record, now_ms);
  SealLocked(EventFor(record, "replayed", insurers, {}, std::string(actor)));
  return Status::Ok();
}

StatusOr<MessageRecord> MemoryStore::Get(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = messages_.find(id);
  if (it == messages_.end()) {
    return Status::NotFound("no message " + std::string(id));
  }
  return it->second;
}

StatusOr<std::string> MemoryStore::Payload(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = payloads_.find(id);
  if (it == payloads_.end()) {
    return Status::NotFound("no payload for message " + std::string(id));
  }
  return it->second;
}

StatusOr<std::vector<StoredAnswer>> MemoryStore::Answers(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (messages_.find(id) == messages_.end()) {
    return Status::NotFound("no message " + std::string(id));
  }
  std::vector<StoredAnswer> out;
  for (auto it = answers_.lower_bound({std::string(id), ""});
       it != answers_.end() && it->first.first == id; ++it) {
    out.push_back(it->second);
  }
  for (auto it = returns_.lower_bound({std::string(id), 0});
       it != returns_.end() && it->first.first == id; ++it) {
    out.push_back(it->second.answer);
  }
  return out;
}

StatusOr<ReturnOutcome> MemoryStore::RecordReturn(NewReturn r) {
  if (r.destination.empty() || r.mailbox_key.empty()) {
    return Status::Invalid("a return needs a destination and a mailbox key");
  }
  auto has_nul = [](const std::string& s) {
    return s.find('\0') != std::string::npos;
  };
  if (has_nul(r.destination) || has_nul(r.mailbox_key) || has_nul(r.message_id) ||
      has_nul(r.practice_nihii)) {
    return Status::Invalid("a return's destination, mailbox key or message id holds a NUL byte");
  }
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  if (!return_keys_.insert({r.destination, r.mailbox_key}).second) {
    return ReturnOutcome::kDuplicate;
  }
  const std::int64_t now_ms = ToEpochMs(clock_->Now());
  const MessageRecord* record = nullptr;
  std::string reason;
  if (r.message_id.empty()) {
    reason = "no-reference";
  } else if (auto it = messages_.find(r.message_id); it == messages_.end()) {
    reason = "unknown-message";
  } else if (FindDelivery(it->second, r.destination) == nullptr) {
    reason = "destination-mismatch";
  } else if (!r.practice_nihii.empty() && it->second.practice_nihii != r.practice_nihii) {
    reason = "practice-mismatch";
  } else {
    record = &it->second;
  }
  std::vector<std::string> codes;
  if (!reason.empty()) {
    codes = {"orphan", reason};
  }
  codes.push_back(r.answer.decision);
  codes.insert(codes.end(), r.answer.codes.begin(), r.answer.codes.end());
  AuditEvent event;
  if (record != nullptr) {
    event = EventFor(*record, "return-received", r.destination, std::move(codes),
                     "insurer:" + r.destination);
  } else {
    event.kind = "return-received";
    event.practice_nihii = r.practice_nihii;
    event.insurer = r.destination;
    event.outcome_codes = std::move(codes);
    event.actor = "insurer:" + r.destination;
    event.time_ms = now_ms;
  }
  event.payload_sha256 = Sha256Hex(r.answer.document);
  const AuditEvent sealed = SealLocked(std::move(event));
  OrphanReturn stored;
  stored.claimed_message_id = r.message_id;
  stored.reason = reason;
  stored.answer.message_id = record != nullptr ? r.message_id : "";
  stored.answer.destination = r.destination;
  stored.answer.document = std::move(r.answer.document);
  stored.answer.decision = std::move(r.answer.decision);
  stored.answer.codes = std::move(r.answer.codes);
  stored.answer.insurer_reference = std::move(r.answer.insurer_reference);
  stored.answer.received_ms = now_ms;
  stored.answer.mailbox_key = r.mailbox_key;
  returns_[{stored.answer.message_id, sealed.sequence}] = std::move(stored);
  return ReturnOutcome::kRecorded;
}

StatusOr<OrphanReturnPage> MemoryStore::OrphanReturns(const PageRequest& page) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t limit = ClampLimit(page.limit, 1000);
  std::uint64_t after = 0;
  if (!page.after.empty()) {
    char* end = nullptr;
    after = std::strtoull(page.after.c_str(), &end, 10);
    if (end == nullptr || *end != '\0') {
      return Status::Malformed("the page cursor is not valid for this listing");
    }
  }
  OrphanReturnPage result;
  std::uint64_t last = 0;
  for (auto it = returns_.upper_bound({"", after}); it != returns_.end() && it->first.first.empty();
       ++it) {
    if (result.returns.size() == limit) {
      result.next_cursor = std::to_string(last);
      break;
    }
    result.returns.push_back(it->second);
    last = it->first.second;
  }
  return result;
}

StatusOr<MessagePage> MemoryStore::List(std::string_view practice_nihii,
                                        const MessageFilter& filter, const PageRequest& page) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t limit = ClampLimit(page.limit, 1000);
  std::vector<const MessageRecord*> matching;
  for (const auto& [id, record] : messages_) {
    if (record.practice_nihii != practice_nihii) {
      continue;
    }
    if (record.accepted_ms < filter.accepted_from_ms ||
        record.accepted_ms >= filter.accepted_to_ms) {
      continue;
    }
    if (filter.state && record.state != *filter.state) {
      continue;
    }
    if (!filter.flow_kind.empty() && record.flow_kind != filter.flow_kind) {
      continue;
    }
    if (!filter.destination.empty() &&
        FindDelivery(const_cast<MessageRecord&>(record), filter.destination) == nullptr) {
      continue;
    }
    matching.push_back(&record);
  }
  // Newest first, then by id (the RocksDB index order).
  std::sort(matching.begin(), matching.end(), [](const MessageRecord* a, const MessageRecord* b) {
    return a->accepted_ms != b->accepted_ms ? a->accepted_ms > b->accepted_ms : a->id < b->id;
  });
  std::size_t start = 0;
  if (!page.after.empty()) {
    auto it = std::find_if(matching.begin(), matching.end(),
                           [&](const MessageRecord* r) { return r->id == page.after; });
    if (it == matching.end()) {
      return Status::Malformed("the page cursor is not valid for this listing");
    }
    start = static_cast<std::size_t>(it - matching.begin()) + 1;
  }
  MessagePage result;
  for (std::size_t i = start; i < matching.size() && result.records.size() < limit; ++i) {
    result.records.push_back(*matching[i]);
  }
  if (start + result.records.size() < matching.size()) {
    result.next_cursor = result.records.back().id;
  }
  return result;
}

StatusOr<DeadLetterPage> MemoryStore::DeadLetters(const PageRequest& page) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t limit = ClampLimit(page.limit, 1000);
  DeadLetterPage result;
  auto it = dead_letters_.begin();
  if (!page.after.empty()) {
    std::size_t nul = page.after.find('|');
    if (nul == std::string::npos) {
      return Status::Malformed("the page cursor is not valid");
    }
    it = dead_letters_.upper_bound({page.after.substr(0, nul), page.after.substr(nul + 1)});
  }
  for (; it != dead_letters_.end(); ++it) {
    if (result.letters.size() == limit) {
      const store::DeadLetter& last = result.letters.back();
      result.next_cursor = last.message_id + "|" + last.destination;
      break;
    }
    result.letters.push_back(it->second);
  }
  return result;
}

StatusOr<std::optional<std::string>> MemoryStore::MemberInsurer(
    std::string_view patient_pseudonym) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = members_.find(std::string(patient_pseudonym));
  if (it == members_.end()) {
    return std::optional<std::string>();
  }
  return std::optional<std::string>(it->second);
}

StatusOr<bool> MemoryStore::IdempotencyKeyUsed(std::string_view practice_nihii,
                                               std::string_view idempotency_key) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unavailable_) {
    return Status::Unavailable("the store is unavailable");
  }
  return idempotency_.count({std::string(practice_nihii), std::string(idempotency_key)}) != 0;
}

StatusOr<QueueStats> MemoryStore::Stats(std::string_view destination) {
  std::lock_guard<std::mutex> lock(mu_);
  QueueStats stats;
  for (auto it = queue_.lower_bound({std::string(destination), INT64_MIN, ""});
       it != queue_.end() && std::get<0>(*it) == destination; ++it) {
    ++stats.depth;
    std::int64_t accepted = messages_.at(std::get<2>(*it)).accepted_ms;
    if (stats.oldest_accepted_ms == 0 || accepted < stats.oldest_accepted_ms) {
      stats.oldest_accepted_ms = accepted;
    }
  }
  return stats;
}

StatusOr<PurgeResult> MemoryStore::PurgeDelivered(TimePoint now) {
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  const std::int64_t cutoff = ToEpochMs(now) - delivered_retention_.count();
  PurgeResult result;
  for (auto& [id, record] : messages_) {
    if (record.payload_purged || record.finished_ms == 0 || record.finished_ms > cutoff) {
      continue;
    }
    record.payload_purged = true;
    payloads_.erase(id);
    ++result.payloads_purged;
  }
  if (result.payloads_purged == 0) {
    return result;
  }
  AuditEvent event;
  event.kind = "payloads-purged";
  event.actor = "gateway";
  event.outcome_codes = {"count:" + std::to_string(result.payloads_purged)};
  SealLocked(std::move(event));
  return result;
}

StatusOr<AuditEvent> MemoryStore::Append(AuditEvent event) {
  if (event.kind.empty()) {
    return Status::Invalid("an audit event needs a kind");
  }
  std::lock_guard<std::mutex> lock(mu_);
  PSL_MEMORY_STORE_WRITABLE();
  return SealLocked(std::move(event));
}

StatusOr<AuditPage> MemoryStore::Query(const AuditQuery& query, const PageRequest& page) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::size_t limit = ClampLimit(page.limit, 10000);
  std::vector<AuditEvent> matching;
  for (const auto& [sequence, encoded] : audit_) {
    StatusOr<AuditEvent> event = DecodeAuditEvent(encoded);
    if (!event.ok()) {
      return Status::Internal("a stored audit event does not decode");
    }
    if (AuditQueryMatches(query, *event)) {
      matching.push_back(std::move(event).value());
    }
  }
  std::stable_sort(matching.begin(), matching.end(), [](const AuditEvent& a, const AuditEvent& b) {
    return a.time_ms != b.time_ms ? a.time_ms < b.time_ms : a.sequence < b.sequence;
  });
  std::size_t start = 0;
  if (!page.after.empty()) {
    auto it = std::find_if(matching.begin(), matching.end(), [&](const AuditEvent& e) {
      return std::to_string(e.sequence) == page.after;
    });
    if (it == matching.end()) {
      return Status::Malformed("the audit cursor is not valid for this query");
    }
    start = static_cast<std::size_t>(it - matching.begin()) + 1;
  }
  AuditPage result;
  for (std::size_t i = start; i < matching.size() && result.events.size() < limit; ++i) {
    result.events.push_back(matching[i]);
  }
  if (start + result.events.size() < matching.size()) {
    result.next_cursor = std::to_string(result.events.back().sequence);
  }
  return result;
}

AuditHead MemoryStore::Head() {
  std::lock_guard<std::mutex> lock(mu_);
  return chain_.head();
}

StatusOr<AuditVerifyReport> MemoryStore::Verify() {
  std::lock_guard<std::mutex> lock(mu_);
  AuditChainVerifier verifier;
  for (const auto& [sequence, encoded] : audit_) {
    verifier.AddEvent(sequence, encoded);
  }
  return verifier.Finish();
}

StatusOr<PurgeResult> MemoryStore::PurgeAudit(TimePoint /*cutoff*/) {
  // Without a signing identity there is no anchor to keep the purged log verifiable (as
  // RocksDbStore without a checkpoint identity).
  return Status::FailedPrecondition(
      "purging audit events needs a checkpoint identity to sign the anchor of the kept log");
}

#undef PSL_MEMORY_STORE_WRITABLE

}  // namespace psl::store
