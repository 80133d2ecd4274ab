#include "store/store.h"

#include <algorithm>

#include "base/digest.h"
#include "store/store_internal.h"

#include <nlohmann/json.hpp>

namespace psl::store {

std::int64_t ToEpochMs(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

TimePoint FromEpochMs(std::int64_t ms) {
  return TimePoint(std::chrono::milliseconds(ms));
}

std::string_view MessageStateName(MessageState state) {
  switch (state) {
    case MessageState::kQueued:
      return "queued";
    case MessageState::kDelivering:
      return "delivering";
    case MessageState::kRetrying:
      return "retrying";
    case MessageState::kAnswered:
      return "answered";
    case MessageState::kDead:
      return "dead";
  }
  return "unknown";
}

std::optional<MessageState> ParseMessageState(std::string_view name) {
  for (auto s : {MessageState::kQueued, MessageState::kDelivering, MessageState::kRetrying,
                 MessageState::kAnswered, MessageState::kDead}) {
    if (MessageStateName(s) == name) {
      return s;
    }
  }
  return std::nullopt;
}

namespace internal {
namespace {

bool Pending(MessageState s) {
  return s == MessageState::kQueued || s == MessageState::kDelivering ||
         s == MessageState::kRetrying;
}

int Rank(MessageState s) {
  switch (s) {
    case MessageState::kDelivering:
      return 0;
    case MessageState::kRetrying:
      return 1;
    case MessageState::kQueued:
      return 2;
    case MessageState::kDead:
      return 3;
    case MessageState::kAnswered:
      return 4;
  }
  return 5;
}

}  // namespace

void UpdateAggregate(MessageRecord& record, std::int64_t now_ms) {
  bool any_pending = false;
  record.attempts = 0;
  record.next_attempt_ms = 0;
  MessageState best = MessageState::kAnswered;
  for (const Delivery& d : record.deliveries) {
    record.attempts += d.attempts;
    if (Rank(d.state) < Rank(best)) {
      best = d.state;
    }
    if (Pending(d.state)) {
      any_pending = true;
      if (record.next_attempt_ms == 0 || d.next_attempt_ms < record.next_attempt_ms) {
        record.next_attempt_ms = d.next_attempt_ms;
      }
    }
    if (!d.last_error.empty()) {
      record.last_error = d.last_error;
    }
  }
  record.state = best;
  if (any_pending) {
    record.finished_ms = 0;
  } else if (record.finished_ms == 0) {
    record.finished_ms = now_ms;
  }
}

Status PrepareNewMessage(NewMessage& message) {
  if (message.id.empty()) {
    return Status::Invalid("a new message needs an id");
  }
  if (message.id.find('\0') != std::string::npos) {
    return Status::Invalid("a message id must not contain a NUL byte");
  }
  if (message.practice_nihii.empty()) {
    return Status::Invalid("a new message needs a practice");
  }
  if (message.destinations.empty()) {
    return Status::Invalid("a new message needs at least one destination");
  }
  for (std::size_t i = 0; i < message.destinations.size(); ++i) {
    const std::string& d = message.destinations[i];
    if (d.empty() || d.find('\0') != std::string::npos) {
      return Status::Invalid("a destination code is empty or holds a NUL byte");
    }
    const auto end = message.destinations.begin() + static_cast<std::ptrdiff_t>(i);
    if (std::find(message.destinations.begin(), end, d) != end) {
      return Status::Invalid("destination " + d + " is listed twice");
    }
  }
  if (message.practice_nihii.find('\0') != std::string::npos ||
      message.idempotency_key.find('\0') != std::string::npos) {
    return Status::Invalid("the practice or idempotency key holds a NUL byte");
  }
  if (message.payload_sha256.empty()) {
    message.payload_sha256 = Sha256Hex(message.payload);
  }
  if (message.actor.empty()) {
    message.actor = "practice:" + message.practice_nihii;
  }
  return Status::Ok();
}

MessageRecord RecordFor(const NewMessage& message, std::int64_t now_ms) {
  MessageRecord record;
  record.id = message.id;
  record.practice_nihii = message.practice_nihii;
  record.flow_kind = message.flow_kind;
  record.operation = message.operation;
  for (const std::string& d : message.destinations) {
    Delivery delivery;
    delivery.destination = d;
    delivery.next_attempt_ms = now_ms;
    record.deliveries.push_back(std::move(delivery));
  }
  record.accepted_ms = now_ms;
  record.idempotency_key = message.idempotency_key;
  record.body_sha256 = message.body_sha256;
  record.payload_sha256 = message.payload_sha256;
  record.patient_pseudonym = message.patient_pseudonym;
  UpdateAggregate(record, now_ms);
  return record;
}

AuditEvent EventFor(const MessageRecord& record, std::string kind, std::string insurer,
                    std::vector<std::string> codes, std::string actor, std::int64_t now_ms) {
  AuditEvent event;
  event.kind = std::move(kind);
  event.message_id = record.id;
  event.practice_nihii = record.practice_nihii;
  event.flow_kind = record.flow_kind;
  event.insurer = std::move(insurer);
  event.outcome_codes = std::move(codes);
  event.payload_sha256 = record.payload_sha256;
  event.actor = std::move(actor);
  event.patient_pseudonym = record.patient_pseudonym;
  event.time_ms = now_ms;
  return event;
}

Delivery* FindDelivery(MessageRecord& record, std::string_view destination) {
  for (Delivery& d : record.deliveries) {
    if (d.destination == destination) {
      return &d;
    }
  }
  return nullptr;
}

std::string EncodeRecord(const MessageRecord& r) {
  nlohmann::json deliveries = nlohmann::json::array();
  for (const Delivery& d : r.deliveries) {
    deliveries.push_back({{"destination", d.destination},
                          {"state", MessageStateName(d.state)},
                          {"attempts", d.attempts},
                          {"next_attempt_ms", d.next_attempt_ms},
                          {"last_error", d.last_error}});
  }
  nlohmann::json j = {{"id", r.id},
                      {"practice", r.practice_nihii},
                      {"flow", r.flow_kind},
                      {"operation", r.operation},
                      {"deliveries", std::move(deliveries)},
                      {"accepted_ms", r.accepted_ms},
                      {"finished_ms", r.finished_ms},
                      {"idempotency_key", r.idempotency_key},
                      {"body_sha256", r.body_sha256},
                      {"payload_sha256", r.payload_sha256},
                      {"patient_pseudonym", r.patient_pseudonym},
                      {"payload_purged", r.payload_purged}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

StatusOr<MessageRecord> DecodeRecord(std::string_view bytes) {
  nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Internal("a stored message record is not valid JSON");
  }
  try {
    MessageRecord r;
    r.id = j.at("id").get<std::string>();
    r.practice_nihii = j.at("practice").get<std::string>();
    r.flow_kind = j.at("flow").get<std::string>();
    r.operation = j.at("operation").get<std::string>();
    for (const auto& d : j.at("deliveries")) {
      Delivery delivery;
      delivery.destination = d.at("destination").get<std::string>();
      auto state = ParseMessageState(d.at("state").get<std::string>());
      if (!state) {
        return Status::Internal("a stored message record has an unknown state");
      }
      delivery.state = *state;
      delivery.attempts = d.at("attempts").get<std::uint32_t>();
      delivery.next_attempt_ms = d.at("next_attempt_ms").get<std::int64_t>();
      delivery.last_error = d.at("last_error").get<std::string>();
      r.deliveries.push_back(std::move(delivery));
    }
    r.accepted_ms = j.at("accepted_ms").get<std::int64_t>();
    r.finished_ms = j.at("finished_ms").get<std::int64_t>();
    r.idempotency_key = j.at("idempotency_key").get<std::string>();
    r.body_sha256 = j.at("body_sha256").get<std::string>();
    r.payload_sha256 = j.at("payload_sha256").get<std::string>();
    r.patient_pseudonym = j.at("patient_pseudonym").get<std::string>();
    r.payload_purged = j.at("payload_purged").get<bool>();
    std::int64_t finished = r.finished_ms;
    UpdateAggregate(r, finished);
    r.finished_ms = finished;
    return r;
  } catch (const nlohmann::json::exception&) {
    return Status::Internal("a stored message record misses a field or has a wrong type");
  }
}

}  // namespace internal
}  // namespace psl::store
