// eAttest v3 (DOMAIN.md §4.2), both sides of the wire:
//
//  gateway, intake   EAttestCodec::Decode: SendAttestationRequest / CancelAttestationRequest
//                    (ns urn:be:fgov:ehealth:mycarenet:attest:protocol:v3, commons protocol v4)
//                    as practice software sends it: UNSIGNED and UNSEALED, Detail = the plain
//                    kmehr SendTransactionRequest (ContentType text/xml, ContentEncoding
//                    none|deflate, no ContentEncryption, no Xades).
//  gateway, delivery PrepareForInsurer (seal + inner XAdES), SetAttemptNumber (retries),
//                    ParseAttestationResponse (unseal the answer, verify, extract the decision).
//  insurer (sim)     OpenAtInsurer, BuildAttestationResponse.
//
// kmehr schema set: the eAttest v3 kmehr is "1.34/1.35, CD-STANDARD 20210120"; no 1.35 XSD is
// stored. The registry maps CD-STANDARD 20210120 to the lowest compiled kmehr version listing it,
// kmehr 1.42 (1.29 and 1.32 also define cga/cgd/cgacancellation and every item code used here,
// but their CD-STANDARD tables stop at 20200901). So an eAttest v3 message validates with the
// messageservices 1.2 set re-pointed at kmehr 1.42 (SchemaRegistry generated wrapper).
//
// Business rules (EAttestRuleTable): one fixed (code, path, document, severity) per rule; the
// code is the MyCareNet code of errors/eAttestErrors.json where that table has one for the path,
// else PSL-EATTEST-*. Messages state the rule, never a value from the message (no NISS, name or
// amount).
//
// Outbound format (PrepareForInsurer), the request as sent to MyCareNet:
//   Detail ContentType="text/xml" ContentEncoding="none" ContentEncryption="encryptedForKnownBED"
//          MessageVersion="3.0" Id="_<uuid>"
//     = base64(Seal(EncryptedKnownContent, gateway signer, {MyCareNet encryption certificate}))
//   EncryptedKnownContent (urn:be:cin:encrypted, ehealth-mycarenet-attest encryption XSD):
//     Reply-to-Etk = base64(DER of the signer certificate: where the answer is sealed to)
//     BusinessContent id="_<uuid>" = base64(kmehr SendTransactionRequest bytes)
//     Xades = base64(ds:Signature document): XAdES-BES, the profile of codecs/xades.h, whose
//             data Reference is URI="#<BusinessContent/@id>" with transforms base64 → exc-c14n.
//   CommonInput/Attribute Key="urn:be:cin:nippin:attemptNbr" Value=<n>; no outer Xades.
// Deviations (stated): a real Reply-to-Etk is an eHealth ETK (signed token holding the
// encryption certificate); here it is the bare DER certificate. The Xades is kept as a separate
// ds:Signature document in Xades (the schema types it base64Binary), covering BusinessContent by
// Id — the "enveloped over EncryptedKnownContent" of DOMAIN §4.2 read as "inside it".
//
// Requires a live XmlLibrary and XmlSecLibrary. Thread-safe (const codec; pure functions over
// their own documents; registry, identities and X509_STOREs are only read).
#ifndef PSL_CODECS_EATTEST_H_
#define PSL_CODECS_EATTEST_H_

#include <libxml/tree.h>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/problem.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

inline constexpr std::string_view kEAttestNamespace =
    "urn:be:fgov:ehealth:mycarenet:attest:protocol:v3";
inline constexpr char kCommonsProtocolV4Ns[] = "urn:be:fgov:ehealth:mycarenet:commons:protocol:v4";
inline constexpr char kCommonsCoreV4Ns[] = "urn:be:fgov:ehealth:mycarenet:commons:core:v4";
inline constexpr char kEncryptedContentNs[] = "urn:be:cin:encrypted";
inline constexpr std::string_view kAttemptNbrKey = "urn:be:cin:nippin:attemptNbr";
inline constexpr std::string_view kEncryptedForKnownBed = "encryptedForKnownBED";

enum class EAttestOperation { kSend, kCancel };

// "SendAttestation", "CancelAttestation".
std::string_view EAttestOperationName(EAttestOperation operation);
// urn:be:fgov:ehealth:mycarenet:attest:protocol:v3:SendAttestation | ...:CancelAttestation
std::string_view EAttestSoapAction(EAttestOperation operation);
// "SendAttestationResponse", "CancelAttestationResponse".
std::string_view EAttestResponseElement(EAttestOperation operation);

enum class EAttestRule {
  kDetailRoot,
  kRequestIdFormat,
  kRequestAuthorMissing,
  kRequestAuthorInvalid,
  kRequestAuthorPractice,
  kRequestDateFuture,
  kHeaderStandard,
  kHeaderSenderMissing,
  kHeaderSenderInvalid,
  kHeaderSenderAuthor,
  kRecipientMissing,
  kRecipientNotMycarenet,
  kPatientNiss,
  kPatientRouting,
  kNoCga,
  kNoCgd,
  kNoCancellation,
  kTransactionCd,
  kCgaId,
  kCgdId,
  kCgaDateFuture,
  kCgdDateFuture,
  kCgaAuthorMissing,
  kCgaAuthorInvalid,
  kCgaAuthorRequest,
  kCgdAuthorMissing,
  kCgdAuthorInvalid,
  kPatientPaidMissing,
  kPatientPaidFormat,
  kPatientPaidValue,
  kSupplementFormat,
  kSupplementValue,
  kCurrency,
  kCgdAmount,
  kPaymentReceivingPartyFormat,
  kClaimMissing,
  kClaimCode,
  kClaimNormMissing,
  kQuantityMissing,
  kQuantityFormat,
  kEncounterMissing,
  kEncounterFuture,
  kRequestorNihiiMissing,
  kRequestorNihii,
  kRequestorDateFuture,
  kGmdManagerNihii,
  kInvoicingNumberMissing,
  kInvoicingNumberText,
  kInvoicingNumberFormat,
  kCancellationReasonMissing,
  kEnvelopeNihii,
  kEnvelopeNihiiMod89,
  kEnvelopePractice,
  kRoutingSsin,
  kDetailContentType,
  kDetailEncrypted,
  kOuterXades,
};

struct EAttestRuleSpec {
  EAttestRule rule;
  std::string_view code;
  // Detail rules: the MyCareNet path; envelope rules: the path below the root (root prepended).
  std::string_view path;
  std::string_view document;  // "detail" | "envelope"
  Severity severity;
  std::string_view message;
};

// Every rule, in EAttestRule order.
std::span<const EAttestRuleSpec> EAttestRuleTable();
const EAttestRuleSpec& EAttestRuleSpecFor(EAttestRule rule);

// What later stages need from a valid request. patient_ssin is sensitive: never log it.
struct EAttestRequest {
  EAttestOperation operation = EAttestOperation::kSend;
  std::string envelope_id;          // root @Id
  std::string detail_id;            // Detail/@Id ("" when absent)
  std::string care_provider_nihii;  // CommonInput/Origin/CareProvider/Nihii/Value
  std::string patient_ssin;         // Routing/CareReceiver/Ssin (= kmehr ID-PATIENT)
  std::string mutuality;            // Routing/CareReceiver/Mutuality ("" or e.g. "rcam")
  std::string kmehr_version;        // "1.42" for CD-STANDARD 20210120
  std::string request_id;           // kmehr request/id
  std::string invoicing_number;     // cancellation: the eAttest being cancelled
  XmlDocPtr envelope;               // the parsed request document
  std::string detail_xml;           // the decoded kmehr payload (bytes as received)
};

class EAttestCodec {
 public:
  EAttestCodec(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits = {});

  // Checks everything, reporting ALL problems into *report (kind "claim", flow "eattest",
  // operation EAttestOperationName). `practice_nihii` is the NIHII of the authenticated practice
  // (client certificate); "" skips the comparison (passerelle validate). Returns the request
  // when no error was found; else kMalformed (envelope/Detail not well-formed, undecodable
  // blob), kTooLarge, or kInvalid (schema or rules).
  StatusOr<EAttestRequest> Decode(std::string_view bytes, std::string_view practice_nihii,
                                  ValidationReport* report) const;
  StatusOr<EAttestRequest> DecodeParsed(XmlDocPtr envelope, std::string_view practice_nihii,
                                        ValidationReport* report) const;

  // The operation of an eAttest v3 request root, or nullopt.
  static std::optional<EAttestOperation> OperationOf(const xmlNode* root);

 private:
  const SchemaRegistry& schemas_;
  const Clock& clock_;
  XmlLimits limits_;
};

// Builds the request as sent to MyCareNet (format in the file comment) from a decoded request:
// seals EncryptedKnownContent with `signer` (XAdES-BES and CMS signature) for
// `mycarenet_encryption_cert`, sets the Detail attributes, removes any outer Xades, sets
// attemptNbr = `attempt_nbr` (>= 1). The result passes the eAttest v3 XSD (checked).
// Errors: kInvalid (attempt_nbr < 1, request without envelope or Detail),
// kFailedPrecondition (certificates not valid now, no key), kInternal.
StatusOr<std::string> PrepareForInsurer(const EAttestRequest& decoded,
                                        const SigningIdentity& signer,
                                        const X509* mycarenet_encryption_cert, int attempt_nbr,
                                        const SchemaRegistry& schemas, const Clock& clock);

// PrepareForInsurer over a serialised request that EAttestCodec::Decode accepted (possibly after
// the gateway set its ids): parses it (default XmlLimits), decodes the
// Detail (none|deflate) and prepares it. For intake code that holds the document as bytes.
// Errors as PrepareForInsurer; kMalformed when the bytes or the Detail do not decode.
StatusOr<std::string> PrepareRequestXmlForInsurer(std::string_view request_xml,
                                                  const SigningIdentity& signer,
                                                  const X509* mycarenet_encryption_cert,
                                                  int attempt_nbr, const SchemaRegistry& schemas,
                                                  const Clock& clock);

// Sets (adds or replaces) CommonInput/Attribute[@Key=attemptNbr]/Value = n in a prepared
// request; nothing else changes meaning (the document is re-serialised). kMalformed when the
// bytes do not parse, kInvalid when n < 1 or there is no CommonInput.
StatusOr<std::string> SetAttemptNumber(std::string_view request_xml, int n);

// Insurer side: what a sealed request holds.
struct OpenedAttestation {
  EAttestOperation operation = EAttestOperation::kSend;
  std::string envelope_id;
  std::string kmehr_xml;       // the BusinessContent bytes
  XmlDocPtr kmehr;             // parsed
  X509Ptr reply_to;            // Reply-to-Etk certificate: seal the answer for it
  std::string signer_subject;  // CMS and XAdES signer (the same certificate, checked)
  int attempt_nbr = 0;         // 0 when absent
};

// Opens a request PrepareForInsurer built: envelope XSD, Detail ContentEncryption
// encryptedForKnownBED, Unseal with `insurer` against `trust`, EncryptedKnownContent XSD, the
// inner XAdES (VerifyBlobRequest profile over BusinessContent) against `trust`, same signer
// certificate for both signatures, Reply-to-Etk a certificate, BusinessContent a kmehr
// SendTransactionRequest. Errors: kMalformed, kInvalid with the reason, kFailedPrecondition.
StatusOr<OpenedAttestation> OpenAtInsurer(std::string_view request_xml,
                                          const SchemaRegistry& schemas,
                                          const SigningIdentity& insurer, X509_STORE* trust,
                                          const Clock& clock, const XmlLimits& limits = {});

struct EAttestAnswerError {
  std::string code;         // eAttestErrors.json code, e.g. "187"
  std::string url;          // XPath into the request ("" → omitted)
  std::string description;  // "" → "MyCareNet error <code>"
};

struct EAttestResponseSpec {
  bool accepted = true;
  std::vector<EAttestAnswerError> errors;  // required when refused
  std::string invoicing_number;  // accepted SendAttestation: required (1-64 of [A-Za-z0-9._/-])
  std::string insurer_code;      // "300"; required
  std::string insurer_name;      // "" → "Insurer <code>"
  std::string response_id;       // "" → "_<uuid>"
};

// The insurer's answer to an opened request: <Op>Response{Return{CommonOutput{InputReference =
// request @Id}, Detail (encryptedForKnownBED, MessageVersion 3.0) = base64(Seal(
// EncryptedKnownContent{BusinessContent = kmehr SendTransactionResponse (acknowledge; for an
// accepted SendAttestation a kmehrmessage with transaction cga holding item invoicingnumber),
// Xades by the insurer}, insurer, {request.reply_to}))}}. XSD-valid (checked).
StatusOr<std::string> BuildAttestationResponse(const OpenedAttestation& request,
                                               const EAttestResponseSpec& spec,
                                               const SigningIdentity& insurer,
                                               const SchemaRegistry& schemas, const Clock& clock);

inline constexpr std::string_view kEAttestAccepted = "accepted";
inline constexpr std::string_view kEAttestRefused = "refused";

// What the gateway keeps of an answer (no patient value).
struct EAttestAnswer {
  EAttestOperation operation = EAttestOperation::kSend;
  std::string decision;            // kEAttestAccepted | kEAttestRefused
  std::vector<std::string> codes;  // acknowledge error codes in order
  std::string insurer_reference;   // the invoicingnumber (accepted SendAttestation), else ""
  std::string input_reference;     // CommonOutput/InputReference
  std::string response_id;
  std::string signer_subject;  // the insurer (CMS and XAdES signer)
};

// Gateway side: the answer (SOAP body payload, or a whole SOAP 1.1 envelope holding it; a SOAP
// Fault is kInvalid with its faultcode) → XSD, Unseal with `ours` against
// `insurer_trust`, EncryptedKnownContent XSD + inner XAdES, kmehr SendTransactionResponse
// against its kmehr set. Decision: accepted when acknowledge/iscomplete is true and no error.
// The caller checks input_reference and that signer_subject is the insurer it sent to.
StatusOr<EAttestAnswer> ParseAttestationResponse(std::string_view response_xml,
                                                 const SchemaRegistry& schemas,
                                                 const SigningIdentity& ours,
                                                 X509_STORE* insurer_trust, const Clock& clock,
                                                 const XmlLimits& limits = {});

}  // namespace psl::codecs

#endif  // PSL_CODECS_EATTEST_H_
