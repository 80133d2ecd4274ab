// The MHM answer document (DOMAIN.md §4.1), both sides: BuildMhmResponse writes what an insurer
// answers to a SendSubscription / CancelSubscription / NotifySubscriptionClosure request, and
// ParseMhmResponse reads and verifies such an answer on the gateway side.
//
//   mhm:<Operation>Response Id="_<uuid>" InResponseTo="<request @Id>" IssueInstant=...
//     mcp:Return
//       mcp:CommonOutput/{mc:InputReference (request @Id), mc:NIPReference, mc:OutputReference}
//       mcp:Detail ContentType="text/xml" ContentEncoding="none" Id="_<uuid>"
//         = base64 of a kmehr messageservices SendTransactionResponse:
//           response/{id, author (the insurer), date, time, request (copied from the request)}
//           acknowledge/{iscomplete, error*/{cd S="CD-ERROR" (CD-ERROR-MYCARENET), description,
//                        url (XPath into the request)}}
//           kmehrmessage (accepted subscription only): header (the request's standard, insurer
//             → medical house), folder/{patient (copied), transaction maaagreement with items
//             agreementtype, decisionreference (LOCAL, SL="IOreferencesystemname"),
//             agreementstartdate}}
//       mcp:XadesT = XAdES-BES by the insurer's key over Detail (codecs/xades.h
//         SignBlobResponse; the XAdES-T timestamp is the documented deviation there)
//
// (mhm = urn:be:fgov:ehealth:mycarenet:medicalhousemembership:protocol:v1, mcp = commons
// protocol:v3, mc = commons core:v3.) Every Build output passes the MHM protocol XSD and its
// Detail the kmehr set of the request's CD-STANDARD.
//
// Requires a live XmlLibrary and XmlSecLibrary. Thread-safe: pure functions over their own
// documents; the registry and the X509_STORE are only read. No message ever holds a patient
// value.
#ifndef PSL_CODECS_MHM_RESPONSE_H_
#define PSL_CODECS_MHM_RESPONSE_H_

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "codecs/mhm_codec.h"
#include "codecs/mhm_rules.h"
#include "codecs/schema_registry.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

inline constexpr std::string_view kMhmAccepted = "accepted";
inline constexpr std::string_view kMhmRefused = "refused";

// "SendSubscriptionResponse", "CancelSubscriptionResponse", "NotifySubscriptionClosureResponse".
std::string_view MhmResponseElement(MhmOperation operation);

// One acknowledge/error of the answer.
struct MhmAnswerError {
  std::string code;         // MyCareNet code (errors/mhmSubscriptionError.json), e.g. "260"
  std::string url;          // XPath into the request, "" → omitted
  std::string description;  // English text, "" → "MyCareNet error <code>"
};

// What the insurer decided, and the references it gives.
struct MhmResponseSpec {
  bool accepted = true;                // false: acknowledge/iscomplete false with `errors`
  std::vector<MhmAnswerError> errors;  // required (non-empty) when refused
  // The IO's decision reference for an accepted subscription (required then; digits, letters,
  // ".", "_", "/", "-", at most 64: what mhm_rules accepts back in a cancellation); else unused.
  std::string decision_reference;
  std::string insurer_code;      // "300": response author and kmehr sender (ID-HCPARTY); required
  std::string insurer_name;      // "" → "Insurer <code>"
  std::string nip_reference;     // CommonOutput/NIPReference, "" → omitted
  std::string output_reference;  // CommonOutput/OutputReference, "" → omitted
  std::string response_id;       // root @Id (an NCName), "" → "_<random uuid>"
};

// Builds and signs the answer to `request` (as MhmCodec::Decode returned it: its envelope_id,
// operation and decoded Detail are used; the request's patient is copied into an accepted
// subscription's folder, never into a message). Date, time and IssueInstant from clock.Now()
// (kmehr dates in Brussels civil time). Returns the SOAP body payload (UTF-8, with an XML
// declaration), to be wrapped by BuildSoapResponse.
// Errors: kInvalid (spec inconsistent: refused without errors, accepted subscription without a
// well-formed decision_reference, no insurer_code, a request without envelope id or whose Detail
// lacks request/patient); kFailedPrecondition (no key/certificate, or the certificate is not
// valid now); kInternal (libxml2/xmlsec failure).
StatusOr<std::string> BuildMhmResponse(const MhmRequest& request, const MhmResponseSpec& spec,
                                       const SigningIdentity& insurer, const Clock& clock);

// What the gateway keeps of an insurer's answer. Holds no patient value.
struct MhmAnswer {
  MhmOperation operation = MhmOperation::kSubscription;  // from the root element
  std::string decision;                                  // kMhmAccepted | kMhmRefused
  std::string insurer_reference;   // decisionreference when present, else OutputReference
  std::vector<std::string> codes;  // acknowledge error codes, in document order
  std::string input_reference;     // CommonOutput/InputReference (the request's @Id)
  std::string nip_reference;       // CommonOutput/NIPReference ("" when absent)
  std::string output_reference;    // CommonOutput/OutputReference ("" when absent)
  std::string response_id;         // root @Id
  std::string signer_subject;      // RFC 2253 subject of the XadesT signer
  std::chrono::system_clock::time_point signing_time;
};

// Reads an answer: the SOAP body payload, or a whole SOAP 1.1 envelope holding it (read with
// ParseSoapResponse; no WS-Security is expected on answers). Checks, failing closed: root is one
// of the three MHM *Response elements; the document passes the MHM protocol XSD; XadesT verifies
// against `trust` at clock.Now() (VerifyBlobResponse); Detail (text/xml, none|deflate) decodes,
// parses with `limits` and is a kmehr SendTransactionResponse valid against the kmehr set of its
// CD-STANDARD (the MHM standard 20181201 when it has no kmehrmessage). Decision: accepted when
// acknowledge/iscomplete is true and no transaction is maarefusal; refused otherwise.
// The caller still checks that input_reference is the message it sent and that signer_subject
// is the insurer it sent it to.
// Errors: kMalformed (bytes not well-formed or over limits), kTooLarge (over limits.max_bytes or
// a deflate bomb), kInvalid with the reason (a SOAP Fault — its faultcode and faultstring —,
// wrong root, schema errors, signature, Detail), kFailedPrecondition (trust is null).
StatusOr<MhmAnswer> ParseMhmResponse(std::string_view bytes, const SchemaRegistry& schemas,
                                     X509_STORE* trust, const Clock& clock,
                                     const XmlLimits& limits = XmlLimits());

}  // namespace psl::codecs

#endif  // PSL_CODECS_MHM_RESPONSE_H_
