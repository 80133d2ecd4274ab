// Helpers shared by the store implementations (not part of the store's contract).
#ifndef PSL_STORE_STORE_INTERNAL_H_
#define PSL_STORE_STORE_INTERNAL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "store/store.h"

namespace psl::store::internal {

// Recomputes the aggregate fields of `record` from its deliveries; `now_ms` stamps finished_ms
// when the last pending delivery ends.
void UpdateAggregate(MessageRecord& record, std::int64_t now_ms);

// Validates a NewMessage (kInvalid names the missing field) and fills its defaults (payload digest,
// actor).
Status PrepareNewMessage(NewMessage& message);

MessageRecord RecordFor(const NewMessage& message, std::int64_t now_ms);

// The audit event describing `record`, without sequence/hashes.
AuditEvent EventFor(const MessageRecord& record, std::string kind, std::string insurer,
                    std::vector<std::string> codes, std::string actor, std::int64_t now_ms);

Delivery* FindDelivery(MessageRecord& record, std::string_view destination);

// JSON codecs of the stored values; decoding errors are kInternal (a corrupt store, never user
// input) and name the record kind only.
std::string EncodeRecord(const MessageRecord& record);
StatusOr<MessageRecord> DecodeRecord(std::string_view bytes);

}  // namespace psl::store::internal

#endif  // PSL_STORE_STORE_INTERNAL_H_
