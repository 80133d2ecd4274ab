// GenAsyncCodec: decodes and checks a MyCareNet Generic Async `post` request carrying an eFact
// 920000 invoicing file (DOMAIN.md §4.3; AMU invoices §4.5): the SOAP body payload
// {urn:be:cin:nip:async:generic}post{CommonInput, Detail, Xades-t?}.
//
// Pipeline: hardened parse → root element (a genasync `post`; `get`/`confirm` and other genasync
// elements are refused) → envelope XSD (EnvelopeSchema::kGenAsync) → Detail attributes
// (MessageName HCPFAC or ECM-HCPFAC, ContentType text/plain, ContentEncoding none|deflate, the
// schema default deflate when absent) → strict base64 and raw deflate capped at
// XmlLimits::max_bytes → the eFact file through ParseEfact (efact.h), every problem kept with its
// record (line), zone (path) and 6-digit code (document "efact") → gateway rules:
//  * sender: CommonInput/Origin/CareProvider/Nihii/Value and Origin/Sender/Nihii/Value, where
//    present, must equal the file's sender (record 10 zone 14) — PSL-GENASYNC-SENDER;
//  * destination: the insurer the batch goes to, i.e. the WS-Addressing `To` code
//    urn:nip:destination:io:<destination>. For HCPFAC it is the union of the per-mutuality
//    destinations (record 20 zone 18, which ParseEfact checks against the Solidaris rules of
//    DestinationFor: 304/305/…→300, other 3xx → own code or 306 for a medical house): the union
//    digit followed by "00" (300 for Solidaris). For ECM-HCPFAC it is 690 and every invoice must
//    go to 690 (PSL-GENASYNC-MEDIPRIMA; also raised for an HCPFAC file holding 690 invoices).
//  * a batch whose records target several insurers (destinations in more than one union) is
//    REFUSED, never split: PSL-GENASYNC-MULTI-INSURER. Practice software builds one file per
//    insurer, as MyCareNet expects; splitting would re-number and re-total a file the practice
//    has already referenced and signed.
// The sender and destination rules read the records straight from the decoded bytes, so they are
// reported even when ParseEfact refuses the file for another reason.
//
// Problem codes beyond the shared ones (PSL-XML-*, PSL-SCHEMA, PSL-BLOB-*, eFact codes):
// PSL-FLOW-UNKNOWN (not a genasync element), PSL-GENASYNC-OPERATION (a genasync element other
// than post), PSL-GENASYNC-MESSAGENAME, PSL-GENASYNC-SENDER, PSL-GENASYNC-MULTI-INSURER,
// PSL-GENASYNC-MEDIPRIMA, PSL-GENASYNC-DESTINATION (no invoice names a destination),
// PSL-GENASYNC-DETAIL (no Detail; the schema reports it too). Messages
// never carry a NISS, a name or an amount.
// Thread-safe (const); the registry is borrowed and must outlive the codec.
#ifndef PSL_CODECS_GENASYNC_H_
#define PSL_CODECS_GENASYNC_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/efact.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xades.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

inline constexpr std::string_view kGenAsyncNamespace = kGenAsyncNs;  // codecs/xades.h
inline constexpr std::string_view kCinCommonNamespace = "urn:be:cin:mycarenet:esb:common:v2";
inline constexpr std::string_view kHcpfacMessageName = "HCPFAC";
inline constexpr std::string_view kMediPrimaMessageName = "ECM-HCPFAC";

// What later stages (routing, signing, audit) need from a valid post.
struct GenAsyncPost {
  std::string message_name;      // "HCPFAC" | "ECM-HCPFAC"
  std::string blob_id;           // Detail/@Id ("" when absent: optional in the schema)
  std::string content_encoding;  // "none" | "deflate"
  std::string input_reference;   // CommonInput/InputReference ("" when absent)
  std::string sender_nihii;      // record 10 zone 14, 11 digits
  std::string destination;       // WS-Addressing To code: "100"…"900" (union) or "690"
  std::vector<std::string> destination_mutualities;  // distinct record 20 zone 18, sorted
  bool is_test = false;                              // segment 200 zone 202 = 92
  std::size_t record_count = 0;                      // records after the header (10 … 96)
  std::size_t invoice_count = 0;                     // records 20 (patient invoices)
  std::size_t act_count = 0;                         // records 50
  std::int64_t total_amount = 0;  // record 90 zone 19, cents. Sensitive: never log.
  bool has_xades = false;         // a non-empty Xades-t element is present
  EfactFile file;                 // the decoded file. Sensitive (NISS, amounts): never log.
  XmlDocPtr envelope;             // the parsed post element
};

class GenAsyncCodec {
 public:
  explicit GenAsyncCodec(const SchemaRegistry& schemas, XmlLimits limits = {});

  // Checks everything, reporting ALL problems into *report (must not be null; kind "claim" for
  // HCPFAC and "amu" for ECM-HCPFAC (DESIGN.md "Flows"), flow "efact", operation "post").
  // Returns the post when no error was found; else kMalformed (the envelope is not well-formed or
  // breaks a parse limit, the blob cannot be decoded, or the eFact file cannot be cut into
  // records), kTooLarge (the envelope exceeds max_bytes) or kInvalid (schema, eFact or gateway
  // rules).
  StatusOr<GenAsyncPost> Decode(std::string_view bytes, ValidationReport* report) const;

  // As Decode, for an envelope already parsed by ParseUntrustedXml.
  StatusOr<GenAsyncPost> DecodeParsed(XmlDocPtr envelope, ValidationReport* report) const;

  // True for any element in the genasync namespace (post, get, confirm, responses…): the
  // document belongs to this codec, which refuses all but `post`.
  static bool IsGenAsync(const xmlNode* root);

 private:
  const SchemaRegistry& schemas_;
  XmlLimits limits_;
};

}  // namespace psl::codecs

#endif  // PSL_CODECS_GENASYNC_H_
