// The MyCareNet Generic Async mailbox (DOMAIN.md §4.3), both sides, as SOAP *body payloads*
// (wrapping and WS-Security stay in codecs/soap.h):
//
//   post answer   gen:postResponse/gen:return = TAck (BuildPostResponse / ParsePostResponse)
//   get           gen:get{Origin, MsgQuery(@Include, Max, MessageNames), TAckQuery(@Include, Max)}
//                 (BuildGetRequest: gateway; ParseGetRequest: insurer)
//   get answer    gen:getResponse/gen:return(@MsgCount, @TAckCount){
//                   MsgResponse{CommonOutput{InputReference, NIPReference?, OutputReference?},
//                               Detail(ContentType text/plain, ContentEncoding deflate,
//                                      MessageName, Id, HashValue), Xades-t}*,
//                   TAckResponse{TAck, Xades-t}*}
//                 (BuildGetResponse: insurer; ParseGetResponse: gateway)
//   confirm       gen:confirm{Origin, MsgHashValues?, TAckContents?} → gen:confirmResponse
//
// (gen = urn:be:cin:nip:async:generic, c = urn:be:cin:mycarenet:esb:common:v2.) Every Build output
// passes the genasync XSD (EnvelopeSchema::kGenAsync); every Parse validates against it first and
// fails closed.
//
// Facts and choices the XSD forces or leaves open:
//  * CommonInput/InputReference and CommonOutput/InputReference are xs:string: the gateway's
//    message id (a UUID) fits as is, no mapping is needed.
//  * Origin (c:OrigineType) requires Package/License{Username, Password}; GetRequest and
//    ConfirmRequest carry them (empty strings are schema-valid) and the mailbox owner as
//    Origin/CareProvider/Nihii/{Quality, Value}.
//  * TAck content (base64Binary): "the hmac-sha256 of the request with the content of the
//    ResultMajor as key" (XSD annotation). TAckContentFor computes it; BuildPostResponse writes
//    TAck::content as given ("" = an empty element, schema-valid).
//  * Detail/@HashValue = base64(SHA-256(the Detail bytes as sent)), i.e. of the base64-decoded
//    content BEFORE inflating (the deflated bytes). ParseGetResponse recomputes it and rejects
//    an item whose HashValue is absent or different.
//  * MsgResponse/Xades-t: the insurer's XAdES-BES over Detail (codecs/xades.h
//    SignGenAsyncElement, the profile of SignBlobResponse: the same no-TSA deviation, the
//    signature is XAdES-BES, not XAdES-T). TAckResponse/Xades-t: the same profile over the TAck
//    element (Reference "#<TAck/@Id>", transform base64 only: it signs the decoded TAck content).
//    Each is signed as a standalone element and verified the same way (the element copied out
//    of the getResponse), so the signatures do not depend on the surrounding document.
//
// eFact RETURN file (BuildEfactReturn / ParseEfactReturn). INFERRED layout (the MyCareNet eFact
// cookbook's return layout is not in shared/; FH reads 931000 as a stub and 92xxxx with a full
// header): ASCII, no separators,
//   segment 200 (67 characters, the invoicing file's layout): zone 200 = the return's message
//     type (931000 | 920999 | 920099 | 920098); zones 201, 202, 203, 204 copied from the
//     original file (so zone 204 = the original's numerical reference; 202 = 12/92 test flag);
//     zone 205 = the insurer's own reference of the return (or the original's zone 205); the
//     "xxx1" zones zero;
//   segment 300 (160 characters) copied from the original file;
//   one 350-character error record per error: positions 1-2 "93" (error record), 3-8 the
//     ordinal of the original record in error (000000 = the header), 9-12 the zone (left-aligned,
//     blank-padded, e.g. "7   ", "404 "), 13-18 the 6-digit code (errors/EfactErrors.json),
//     19-348 blanks, 349-350 the record checksum (EfactRecordChecksum over positions 1-348).
//   Rules: 931000 carries no error record; 920099 and 920098 carry at least one.
//
// Requires a live XmlLibrary and XmlSecLibrary. Thread-safe: pure functions over their own
// documents; the registry and the X509_STORE are only read. No message ever holds a patient
// value (return files name records and zones, never their content).
#ifndef PSL_CODECS_GENASYNC_MAILBOX_H_
#define PSL_CODECS_GENASYNC_MAILBOX_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "codecs/efact.h"
#include "codecs/schema_registry.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

inline constexpr std::string_view kGenAsyncPostAction = "urn:be:cin:nip:async:generic:post:msg";
inline constexpr std::string_view kGenAsyncGetAction = "urn:be:cin:nip:async:generic:get:query";
inline constexpr std::string_view kGenAsyncConfirmAction =
    "urn:be:cin:nip:async:generic:confirm:hash";
inline constexpr std::string_view kTAckSuccess = "urn:nip:tack:result:major:success";
// Non-success ResultMajor values used by this project (any anyURI is schema-valid).
inline constexpr std::string_view kTAckFailure = "urn:nip:tack:result:major:failure";
// Prefix of TAck/@AppliesTo: + the post's CommonInput/InputReference.
inline constexpr std::string_view kTAckAppliesToPrefix = "urn:nip:reference:input:";
// WS-Addressing `To` of a post: + the insurer code ("300").
inline constexpr std::string_view kGenAsyncDestinationPrefix = "urn:nip:destination:io:";

// "urn:nip:reference:input:" + input_reference.
std::string TAckAppliesTo(std::string_view input_reference);
// base64(HMAC-SHA256(key = result_major as UTF-8, data = request_bytes)): the TAck content the
// XSD describes.
std::string TAckContentFor(std::string_view request_bytes, std::string_view result_major);
// base64(SHA-256(bytes)): Detail/@HashValue for the Detail bytes as sent (deflated).
std::string GenAsyncHashValue(std::string_view bytes_as_sent);
// The Detail/@HashValue BuildGetResponse writes for a message whose return file is `content`:
// GenAsyncHashValue(DeflateRaw(content)) (raw deflate is deterministic for the same input), so an
// insurer can match a later confirm without keeping the document. kInternal when zlib fails.
StatusOr<std::string> MailboxContentHash(std::string_view content);

struct TAck {
  std::string issuer;          // @Issuer (anyURI, required), e.g. "urn:nip:issuer:io:300"
  std::string applies_to;      // @AppliesTo (required)
  std::string result_major;    // @ResultMajor (anyURI, required)
  std::string result_minor;    // @ResultMinor, "" → omitted
  std::string result_message;  // @ResultMessage, "" → omitted
  std::string id;              // @Id (NCName), "" → omitted (BuildGetResponse generates one)
  std::string reference;       // @Reference, "" → omitted
  std::string content;         // element content, base64 ("" allowed)
  bool success() const;        // result_major == kTAckSuccess
};

// Insurer side: gen:postResponse/gen:return = tack. Errors: kInvalid (issuer, applies_to or
// result_major empty; id not an NCName; content not base64), kInternal.
StatusOr<std::string> BuildPostResponse(const TAck& tack);
// Gateway side: the body payload (or a whole SOAP 1.1 envelope holding it; a SOAP Fault gives
// kInvalid with its faultcode/faultstring). Errors: kMalformed (not well-formed / over limits),
// kInvalid (wrong root, schema).
StatusOr<TAck> ParsePostResponse(std::string_view body_xml, const SchemaRegistry& schemas);

struct GetRequest {
  std::string origin_nihii;                     // 11-digit practice NIHII (the mailbox owner)
  std::string origin_quality = "medicalhouse";  // Origin/CareProvider/Nihii/Quality
  std::vector<std::string> message_names;       // e.g. {"HCPFAC"} or {"ECM-HCPFAC"}; empty = all
  std::uint32_t max_messages = 100;
  bool include_tacks = true;      // TAckQuery/@Include
  std::uint32_t max_tacks = 100;  // TAckQuery/Max
  std::string package_name;       // Origin/Package/Name, "" → omitted
  std::string license_username;   // Origin/Package/License/Username (required, may be "")
  std::string license_password;   // Origin/Package/License/Password (required, may be "")
};
// Gateway side. Errors: kInvalid (origin_nihii not 11 digits, a message name with a blank,
// max_messages 0 or > INT32_MAX). `clock` is unused today (kept for a future IssueInstant).
StatusOr<std::string> BuildGetRequest(const GetRequest& request, const Clock& clock);
// Insurer side: schema first; MsgQuery/@Include false → max_messages 0. Errors: kMalformed,
// kInvalid (wrong root, schema, no Origin/CareProvider/Nihii/Value).
StatusOr<GetRequest> ParseGetRequest(std::string_view body_xml, const SchemaRegistry& schemas);

enum class EfactReturnKind {
  kAcknowledged,       // 931000: file accepted (acknowledgement)
  kRefused,            // 920999: file refused
  kRefusedBlocking,    // 920099: refused after blocking errors
  kAcceptedWithErrors  // 920098: acceptable error rate, accepted
};
inline constexpr std::string_view kEfactAcknowledgedType = "931000";
inline constexpr std::string_view kEfactRefusedType = "920999";
inline constexpr std::string_view kEfactRefusedBlockingType = "920099";
inline constexpr std::string_view kEfactAcceptedWithErrorsType = "920098";
inline constexpr std::string_view kEfactErrorRecordType = "93";  // INFERRED, see above

struct EfactReturnError {
  std::string code;  // 6 digits (errors/EfactErrors.json)
  int record = 0;    // ordinal of the original record in error (record 10 = 1); 0 = header
  std::string zone;  // zone id as in efact.h ("7", "6a", "404"); at most 4 characters, "" allowed
  bool operator==(const EfactReturnError&) const = default;
};
struct EfactReturn {  // what a return file says (no patient data)
  EfactReturnKind kind = EfactReturnKind::kAcknowledged;
  std::string message_type;        // "931000", "920999", ...
  std::string original_reference;  // the invoicing file's reference (segment 200 zone 204)
  std::string return_reference;    // the insurer's reference of the return (zone 205, 14 digits)
  bool is_test = false;            // segment 200 zone 202 = 92
  std::vector<EfactReturnError> errors;
};
std::string_view EfactReturnMessageType(EfactReturnKind kind);  // "931000", ...
// "accepted", "refused", "refused", "accepted-with-errors"
std::string_view EfactReturnDecision(EfactReturnKind kind);
// The kind for a decision name as the simulator's control API spells it: "accepted",
// "refused", "refused-blocking", "accepted-with-errors"; false when unknown.
bool EfactReturnKindFromName(std::string_view name, EfactReturnKind* kind);

// Insurer side: the return file for an invoicing file it received. Errors: kInvalid (an error
// code that is not 6 digits, a zone longer than 4 or not printable ASCII, a negative or
// > 999999 record, errors given for kAcknowledged, none for kRefusedBlocking /
// kAcceptedWithErrors).
StatusOr<std::string> BuildEfactReturn(const EfactFile& original, EfactReturnKind kind,
                                       const std::vector<EfactReturnError>& errors);
// As above with zone 205 = `return_reference` (at most 14 digits; kInvalid beyond). An insurer
// should give every return its own reference: two returns for the same file are then different
// bytes with different HashValues (the gateway keys returns on the HashValue).
StatusOr<std::string> BuildEfactReturn(const EfactFile& original, EfactReturnKind kind,
                                       const std::vector<EfactReturnError>& errors,
                                       std::uint64_t return_reference);
// Gateway side. Errors: kMalformed (length not 227 + n × 350, non-ASCII), kInvalid (unknown
// message type, reference not digits, an error record with a wrong type, checksum or code, the
// rules above).
StatusOr<EfactReturn> ParseEfactReturn(std::string_view bytes);

struct MailboxMessageSpec {                     // insurer side, one MsgResponse
  std::string message_name;                     // "HCPFAC"
  std::string input_reference;                  // the post's InputReference
  std::string nip_reference, output_reference;  // "" → omitted
  std::string content;                          // the return file bytes (deflated by the builder)
  std::string blob_id;                          // Detail/@Id (NCName), "" → "_<uuid>"
};
struct MailboxMessage {  // gateway side, parsed and verified
  std::string message_name, input_reference, nip_reference, output_reference;
  std::string hash_value;      // Detail/@HashValue as sent (what confirm echoes)
  std::string content;         // the inflated return file bytes
  std::string document;        // the MsgResponse element serialised (what the practice can read)
  std::string signer_subject;  // RFC 2253 subject of the Xades-t signer
};
struct MailboxTAck {
  TAck tack;
  std::string content;  // what confirm's TAckContents echoes (= tack.content)
  std::string signer_subject;
};
struct GetResponse {
  std::vector<MailboxMessage> messages;
  std::vector<MailboxTAck> tacks;
  // Items that failed schema or XAdES verification: NOT in `messages`, never confirmed; the reason
  // (no patient data) for logs/metrics.
  std::vector<std::string> rejected;
};
// Insurer side: each MsgResponse and TAckResponse signed by `insurer` at clock.Now(). A TAck
// without id gets "_<uuid>". Errors: kInvalid (a spec without message_name or input_reference,
// a TAck as BuildPostResponse), kFailedPrecondition (no key, certificate not valid now),
// kInternal.
StatusOr<std::string> BuildGetResponse(const std::vector<MailboxMessageSpec>& messages,
                                       const std::vector<TAck>& tacks,
                                       const SigningIdentity& insurer, const Clock& clock);
// Gateway side: the body payload or a whole SOAP envelope. The document must pass the XSD
// (else kInvalid with the reason: nothing is returned, nothing may be confirmed); then every
// MsgResponse is checked on its own — Xades-t verifies against `trust` at clock.Now(), Detail is
// text/plain + deflate|none, HashValue present and equal to the recomputed one, the content
// inflates (capped at limits.max_bytes; base64 may be wrapped) — and every TAckResponse's Xades-t
// verifies; an item that fails goes to `rejected` with its reason. MsgCount/TAckCount are not
// trusted (counted). `limits` bound the whole answer (a get of 100 returns can pass the default
// 2 MiB: raise max_bytes or lower GetRequest::max_messages).
// Errors: kMalformed, kTooLarge, kInvalid (Fault, root, schema), kFailedPrecondition (trust null).
StatusOr<GetResponse> ParseGetResponse(std::string_view body_xml, const SchemaRegistry& schemas,
                                       X509_STORE* trust, const Clock& clock,
                                       const XmlLimits& limits = XmlLimits());

struct ConfirmRequest {
  std::string origin_nihii;
  std::vector<std::string> msg_hash_values;  // base64
  std::vector<std::string> tack_contents;    // base64
  std::string origin_quality = "medicalhouse";
  std::string package_name, license_username, license_password;  // as GetRequest
};
// Gateway side. Empty lists are omitted. Errors: kInvalid (origin_nihii not 11 digits, a value
// that is not base64 without blanks).
StatusOr<std::string> BuildConfirmRequest(const ConfirmRequest& request, const Clock& clock);
StatusOr<ConfirmRequest> ParseConfirmRequest(std::string_view body_xml,
                                             const SchemaRegistry& schemas);
StatusOr<std::string> BuildConfirmResponse();
Status ParseConfirmResponse(std::string_view body_xml, const SchemaRegistry& schemas);

}  // namespace psl::codecs

#endif  // PSL_CODECS_GENASYNC_MAILBOX_H_
