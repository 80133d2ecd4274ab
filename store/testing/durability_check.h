// Shared by the power-cut test (fault_injection_test.cc), the kill -9 test (crash_test.cc) and the
// crash child: the messages they commit and the check run after every restart (DESIGN.md I1, I3,
// I4): every acknowledged commit is present and complete, nothing half-written is visible, no
// message exists twice, and the audit chain verifies.
#ifndef PSL_STORE_TESTING_DURABILITY_CHECK_H_
#define PSL_STORE_TESTING_DURABILITY_CHECK_H_

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "store/rocksdb_store.h"

namespace psl::store::testing {

inline constexpr char kCheckPractice[] = "19012345001";
inline constexpr char kCheckDestination[] = "100";

// A message whose payload and idempotency key derive from its id (so a checker knows what to
// expect from the id alone). A retry of the same request uses another id and the same key/body.
inline NewMessage DurabilityMessage(const std::string& id, const std::string& request = "") {
  const std::string req = request.empty() ? id : request;
  NewMessage m;
  m.id = id;
  m.practice_nihii = kCheckPractice;
  m.flow_kind = "enrolment";
  m.operation = "register";
  m.destinations = {kCheckDestination};
  m.idempotency_key = "key-" + req;
  m.body_sha256 = "body-of-" + req;
  m.payload = "<signed>" + req + std::string(200, 'p') + "</signed>";
  m.patient_pseudonym = std::string(64, 'a');
  return m;
}

inline std::string ExpectedPayload(const std::string& request) {
  return DurabilityMessage(request).payload;
}

struct DurabilityReport {
  std::vector<std::string> problems;  // empty = every invariant holds
  std::vector<std::string> lost;      // acknowledged ids not (completely) in the store
  std::uint64_t visible = 0;          // messages in the store
};

// `acknowledged`: id -> request name (DurabilityMessage's `request`) of every commit that returned
// OK. Every visible message must be complete whether acknowledged or not.
inline DurabilityReport CheckDurability(RocksDbStore& store,
                                        const std::map<std::string, std::string>& acknowledged) {
  DurabilityReport report;
  auto problem = [&](std::string text) {
    report.problems.push_back(std::move(text));
  };

  // All visible messages, each complete: record, payload, one queued entry, accepted event.
  std::set<std::string> visible;
  std::set<std::string> keys;
  PageRequest page;
  page.limit = 1000;
  for (;;) {
    StatusOr<MessagePage> list = store.List(kCheckPractice, MessageFilter{}, page);
    if (!list.ok()) {
      problem("List failed: " + list.status().ToString());
      return report;
    }
    for (const MessageRecord& record : list->records) {
      if (!visible.insert(record.id).second) {
        problem("message " + record.id + " listed twice");
      }
      if (!keys.insert(record.idempotency_key).second) {
        problem("idempotency key of " + record.id + " used by two messages");
      }
      StatusOr<std::string> payload = store.Payload(record.id);
      if (!payload.ok()) {
        problem("message " + record.id + " has no payload: " + payload.status().ToString());
      }
      if (record.deliveries.size() != 1 || record.state != MessageState::kQueued) {
        problem("message " + record.id + " is not exactly one queued delivery");
      }
    }
    if (list->next_cursor.empty()) {
      break;
    }
    page.after = list->next_cursor;
  }
  report.visible = visible.size();

  StatusOr<QueueStats> stats = store.Stats(kCheckDestination);
  if (!stats.ok()) {
    problem("Stats failed: " + stats.status().ToString());
  } else if (stats->depth != visible.size()) {
    problem("queue depth " + std::to_string(stats->depth) +
            " != " + std::to_string(visible.size()) + " messages");
  }

  std::set<std::string> accepted_events;
  AuditQuery query;
  query.kind = "accepted";
  PageRequest audit_page;
  audit_page.limit = 1000;
  for (;;) {
    StatusOr<AuditPage> events = store.Query(query, audit_page);
    if (!events.ok()) {
      problem("audit query failed: " + events.status().ToString());
      break;
    }
    for (const AuditEvent& event : events->events) {
      if (!accepted_events.insert(event.message_id).second) {
        problem("two accepted events for " + event.message_id);
      }
    }
    if (events->next_cursor.empty()) {
      break;
    }
    audit_page.after = events->next_cursor;
  }
  if (accepted_events != visible) {
    problem("accepted audit events (" + std::to_string(accepted_events.size()) +
            ") do not match the messages (" + std::to_string(visible.size()) + ")");
  }

  StatusOr<AuditVerifyReport> verify = store.Verify();
  if (!verify.ok()) {
    problem("audit verify failed: " + verify.status().ToString());
  } else if (!verify->ok) {
    problem("audit chain broken: " + verify->problem);
  }

  for (const auto& [id, request] : acknowledged) {
    StatusOr<std::string> payload = store.Payload(id);
    if (!payload.ok() || *payload != ExpectedPayload(request) || visible.count(id) == 0) {
      report.lost.push_back(id);
    }
  }
  return report;
}

}  // namespace psl::store::testing

#endif  // PSL_STORE_TESTING_DURABILITY_CHECK_H_
