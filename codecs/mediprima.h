// MediPrima / AMU (urgent medical aid, DOMAIN.md §4.5), both sides, no XAdES and no ETEE (the
// MediPrima bodies travel as plain eHealth SOAP; only the transport WS-Security applies):
//
//  * MediPrimaCodec (gateway side, requests): the SOAP body payloads
//      UMA v1 (ns urn:be:fgov:ehealth:mediprima:uma:protocol:v1):
//        SendUrgentMedicalAidAttestationRequest   {protocol:Author, BeneficiarySsin,
//                                                  ValidityPeriod{StartDate, EndDate?},
//                                                  MedicalCover}
//        SearchUrgentMedicalAidAttestationRequest {Criteria{BeneficiarySsin,
//                                                  AttestationNumber | (Period, MedicalCover?)}}
//        DeleteUrgentMedicalAidAttestationRequest {protocol:Author, BeneficiarySsin,
//                                                  AttestationNumber}
//      consultation v2 (ns urn:be:fgov:ehealth:mediprima:protocol:v2):
//        ConsultCarmedInterventionRequest {SelectionCriteria/BySsin{Ssin, Period | ReferenceDate}}
//    (every child of the root is unqualified except protocol:Author, whose core:HcParty/core:Id
//    carry Type="urn:be:fgov:ehealth:1.0:physician:nihii-number").
//    Pipeline: hardened parse → root picks the operation → XSD (EnvelopeSchema::kMediPrimaUma or
//    kMediPrimaConsult) → the rules below. Every problem is reported at once, with line, column
//    (schema problems) and path.
//  * BuildMediPrimaResponse (insurer side: the simulator) and ParseMediPrimaResponse (gateway side:
//    delivery) for the four *Response documents.
//
// Rules (code; the related code of errors/ConsultTarificationMediprimaErrors.json, the MyCareNet
// table closest to MediPrima, in brackets; it is not what the eHealth service answers, so the
// Problem carries the PSL code and names the table code in its message):
//   PSL-MEDIPRIMA-SSIN [111]         beneficiary SSIN not 11 digits, impossible birth date or
//                                    sequence 000/999 (NISS, or BIS with month +20/+40)
//   PSL-MEDIPRIMA-SSIN-CHECK [112]   SSIN check digits fail both centuries (DOMAIN §2.1)
//   PSL-MEDIPRIMA-AUTHOR-MISSING [100]   Send/Delete: the Author holds no core:Id of Type
//                                        ...:physician:nihii-number (no Author: PSL-SCHEMA)
//   PSL-MEDIPRIMA-AUTHOR-NIHII [111]     that NIHII not 11 digits or check digits fail
//   PSL-MEDIPRIMA-AUTHOR-MOD89           (warning) valid only by the 89 - n mod 89 variant
//   PSL-MEDIPRIMA-AUTHOR-NOT-PHYSICIAN [140]  valid NIHII that is not a physician's: physicians'
//                                    NIHII start with 1 (INAMI numbering; DOMAIN §2.2 names 30-39
//                                    dentists and §2.3 8... institutions; the "1 = physician"
//                                    rule itself is an inference, not in DOMAIN.md)
//   PSL-MEDIPRIMA-AUTHOR-AMBIGUOUS       more than one distinct physician NIHII in the Author
//   PSL-MEDIPRIMA-AUTHOR-MISMATCH [155]  physician NIHII ≠ the authenticated NIHII (when given)
//   PSL-MEDIPRIMA-PERIOD-ORDER [113]     StartDate after EndDate (ValidityPeriod, Period)
//   PSL-MEDIPRIMA-PERIOD-LENGTH [113]    EndDate more than max_period_days after StartDate
//   PSL-MEDIPRIMA-DATE-PAST [113]        StartDate / ReferenceDate more than max_days_in_past
//                                        before today (Europe/Brussels)
//   PSL-MEDIPRIMA-DATE-FUTURE [146]      StartDate / ReferenceDate more than max_days_in_future
//                                        after today
//   PSL-MEDIPRIMA-ATTESTATION-NUMBER [111]  Search/Delete AttestationNumber not 1-64 characters
//                                        of A-Z a-z 0-9 . _ / - (the format the builder emits)
//   PSL-MEDIPRIMA-COVER [100]            MedicalCover empty (Send; Search when present)
//   PSL-MEDIPRIMA-ISSUE-INSTANT          IssueInstant more than 24 h after now
//   PSL-FLOW-UNKNOWN, PSL-SCHEMA, PSL-XML-* as for the other codecs.
// A date the schema already refuses (not an xs:date) is left to PSL-SCHEMA. Line numbers are the
// element's (for IssueInstant: the root's); column is 0 for rule findings.
// Also unchecked here on purpose: the MedicalCover vocabulary (xs:string in the XSD, no public
// code list found) and whether the beneficiary is known to MediPrima (the service's answer).
//
// Thread-safe: const methods and pure functions; the registry and the clock are borrowed and must
// outlive the codec. Never logs; no message holds a patient value.
#ifndef PSL_CODECS_MEDIPRIMA_H_
#define PSL_CODECS_MEDIPRIMA_H_

#include <libxml/tree.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/problem.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

inline constexpr std::string_view kMediPrimaUmaNamespace =
    "urn:be:fgov:ehealth:mediprima:uma:protocol:v1";
inline constexpr std::string_view kMediPrimaUmaCoreNamespace =
    "urn:be:fgov:ehealth:mediprima:uma:core:v1";
inline constexpr std::string_view kMediPrimaConsultNamespace =
    "urn:be:fgov:ehealth:mediprima:protocol:v2";
inline constexpr std::string_view kMediPrimaConsultCoreNamespace =
    "urn:be:fgov:ehealth:mediprima:core:v2";
inline constexpr std::string_view kEhealthProtocolV2Namespace =
    "urn:be:fgov:ehealth:commons:protocol:v2";
inline constexpr std::string_view kEhealthCoreV2Namespace = "urn:be:fgov:ehealth:commons:core:v2";
inline constexpr std::string_view kPhysicianNihiiIdType =
    "urn:be:fgov:ehealth:1.0:physician:nihii-number";

// SOAPActions (DOMAIN.md §4.5; "Attestion" is eHealth's spelling, sic).
inline constexpr std::string_view kMediPrimaSendSoapAction =
    "urn:be:fgov:ehealth:mediprima:uma:protocol:v1:sendMedicalEmergencyAttestion";
inline constexpr std::string_view kMediPrimaSearchSoapAction =
    "urn:be:fgov:ehealth:mediprima:uma:protocol:v1:searchMedicalEmergencyAttestion";
inline constexpr std::string_view kMediPrimaDeleteSoapAction =
    "urn:be:fgov:ehealth:mediprima:uma:protocol:v1:deleteMedicalEmergencyAttestion";
inline constexpr std::string_view kMediPrimaConsultSoapAction =
    "urn:be:fgov:ehealth:mediprima:protocol:v2:consultCarmedIntervention";

// eHealth status codes (commons core v2 StatusCode/@Value).
inline constexpr std::string_view kEhealthStatusSuccess = "urn:be:fgov:ehealth:2.0:status:Success";
inline constexpr std::string_view kEhealthStatusRequester =
    "urn:be:fgov:ehealth:2.0:status:Requester";
inline constexpr std::string_view kEhealthStatusResponder =
    "urn:be:fgov:ehealth:2.0:status:Responder";

// The report's kind and flow for every MediPrima request.
inline constexpr std::string_view kMediPrimaKind = "amu";
inline constexpr std::string_view kMediPrimaFlow = "mediprima";

enum class MediPrimaOperation {
  kSendAttestation,
  kSearchAttestation,
  kDeleteAttestation,
  kConsult
};

// The two eHealth MediPrima services (separate endpoints, DOMAIN.md §3):
// UMA https://services.ehealth.fgov.be/MediPrima/UMA/v1, consult .../MediPrima/Consult/v2.
enum class MediPrimaService { kUma, kConsult };

// "SendUrgentMedicalAidAttestation", "SearchUrgentMedicalAidAttestation",
// "DeleteUrgentMedicalAidAttestation", "ConsultCarmedIntervention" (the root without "Request":
// the operation name stored with the message and shown to the practice).
std::string_view MediPrimaOperationName(MediPrimaOperation operation);
// The operation whose MediPrimaOperationName is `name`, or nullopt.
std::optional<MediPrimaOperation> MediPrimaOperationNamed(std::string_view name);
std::string_view MediPrimaSoapAction(MediPrimaOperation operation);
// The operation a SOAPAction names (with or without the surrounding quotes), or nullopt.
std::optional<MediPrimaOperation> MediPrimaOperationForSoapAction(std::string_view action);
MediPrimaService MediPrimaServiceOf(MediPrimaOperation operation);
// "<Operation>Request" / "<Operation>Response".
std::string MediPrimaRequestElement(MediPrimaOperation operation);
std::string MediPrimaResponseElement(MediPrimaOperation operation);

// Plausibility window of request dates (Europe/Brussels days). Defaults, chosen here (no public
// MediPrima rule was found): an AMU attestation or a medical-card consultation concerns care at
// most two years old (the eFact invoicing horizon) and at most a month ahead; a period spans at
// most a year and a day (medical cards are granted for up to a year).
struct MediPrimaDateLimits {
  int max_days_in_past = 730;
  int max_days_in_future = 31;
  int max_period_days = 366;
};

enum class MediPrimaRule {
  kSsinFormat,
  kSsinCheck,
  kAuthorMissing,
  kAuthorNihii,
  kAuthorMod89,
  kAuthorNotPhysician,
  kAuthorAmbiguous,
  kAuthorMismatch,
  kPeriodOrder,
  kPeriodLength,
  kDatePast,
  kDateFuture,
  kAttestationNumber,
  kCover,
  kIssueInstant,
};

struct MediPrimaRuleSpec {
  MediPrimaRule rule;
  std::string_view code;        // "PSL-MEDIPRIMA-..."
  std::string_view table_code;  // ConsultTarificationMediprimaErrors.json code, "" when none
  Severity severity;
  std::string_view message;  // the rule, in English (no value from the message)
};

// Every rule, in MediPrimaRule order.
std::span<const MediPrimaRuleSpec> MediPrimaRuleTable();
const MediPrimaRuleSpec& MediPrimaRuleSpecFor(MediPrimaRule rule);

// Whether `s` has the form of a MediPrima attestation number as the gateway accepts it in
// Search/Delete and the builder emits it: 1 to 64 characters, each an ASCII letter or digit, '.',
// '_', '/' or '-'.
bool IsMediPrimaAttestationNumber(std::string_view s);

// What later stages (routing, delivery, audit) need from a valid request.
struct MediPrimaRequest {
  MediPrimaOperation operation = MediPrimaOperation::kSendAttestation;
  MediPrimaService service = MediPrimaService::kUma;
  std::string operation_name;      // MediPrimaOperationName
  std::string soap_action;         // MediPrimaSoapAction
  std::string request_id;          // root @Id ("" when absent: optional in the schema)
  std::string issue_instant;       // root @IssueInstant, as sent
  std::string author_nihii;        // Send/Delete: the physician NIHII ("" for Search/Consult)
  std::string attestation_number;  // Delete, Search by number ("" otherwise)
  // The beneficiary's SSIN (NISS or BIS), only as the value to pseudonymise (audit). Sensitive:
  // never log it, never put it in a message.
  std::string patient;
  bool patient_is_bis = false;
  XmlDocPtr document;  // the parsed SOAP body payload
};

class MediPrimaCodec {
 public:
  MediPrimaCodec(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits = {},
                 MediPrimaDateLimits dates = {});

  // Checks everything, reporting ALL problems into *report (not null; kind "amu", flow
  // "mediprima" and the operation are set once the root is known). `authenticated_nihii` is the
  // NIHII the client certificate authenticated (11 digits, or the 8-digit form, compared with the
  // first 8 digits); "" skips PSL-MEDIPRIMA-AUTHOR-MISMATCH (`passerelle validate`).
  // Returns the request when no error was found (warnings allowed); else kMalformed (not
  // well-formed, a parse limit), kTooLarge (over max_bytes) or kInvalid (root, schema, rules).
  StatusOr<MediPrimaRequest> Decode(std::string_view bytes, std::string_view authenticated_nihii,
                                    ValidationReport* report) const;

  // As Decode, for a document already parsed by ParseUntrustedXml (MessageValidator).
  StatusOr<MediPrimaRequest> DecodeParsed(XmlDocPtr document, std::string_view authenticated_nihii,
                                          ValidationReport* report) const;

  // The operation a MediPrima request root element stands for (namespace and local name), or
  // nullopt for any other element.
  static std::optional<MediPrimaOperation> OperationOf(const xmlNode* root);

 private:
  const SchemaRegistry& schemas_;
  const Clock& clock_;
  XmlLimits limits_;
  MediPrimaDateLimits dates_;
};

// Insurer side.

struct MediPrimaAnswerError {
  std::string code;        // e.g. "MSG-00001" (RegistryStatus/ErrorDetail/Code, ReasonCode)
  std::string message_fr;  // "" → "Erreur <code>"
  std::string message_nl;  // "" → "Fout <code>"
};

// One attestation of a Search result (the beneficiary SSIN is copied from the request).
struct MediPrimaAttestationSpec {
  std::string number;        // IsMediPrimaAttestationNumber
  std::string start_date;    // YYYY-MM-DD
  std::string end_date;      // "" → omitted
  std::string cover;         // MedicalCover, "" → the request's, else "DOCTOR"
  std::string author_nihii;  // the physician, "" → the request's author (Send), else required
};

// One medical card of a Consult result (synthetic content for the simulator; the beneficiary SSIN
// is copied from the request).
struct MediPrimaCarmedSpec {
  std::string carmed_number;  // required
  int version = 1;
  std::string last_name = "SYNTHETIC";
  std::string start_date;  // YYYY-MM-DD, required
  std::string end_date;    // YYYY-MM-DD, required
  std::string cpas_cbe;    // Pswc/CbeNumber, required
  std::string municipality_ins = "21004";
  std::string cpas_name_fr = "CPAS";
  std::string cpas_name_nl = "OCMW";
  bool doctor_cover = true;        // CarmedContent/MedicalCover/Doctor over the validity
  std::string agreement_number;    // "" → omitted
  std::string attestation_number;  // UrgentMedicalAidAttestationNumber, "" → omitted
};

struct MediPrimaResponseSpec {
  // Top-level StatusCode/@Value: kEhealthStatusSuccess (default), Requester or Responder.
  std::string status{kEhealthStatusSuccess};
  std::string sub_status;      // nested StatusCode/@Value, "" → none
  std::string status_message;  // StatusMessage, "" → omitted
  // StatusDetail: UMA RegistryStatus/ErrorDetail (Origin "MEDIPRIMA"), consult
  // MedicalCardRegistryStatus/MedicalCardRegistryMessage (Severity ERROR, Source ECARMED).
  std::vector<MediPrimaAnswerError> errors;
  // Send (success): the new attestation's number, required. Delete: echoed in AttestionNumber
  // ("" → the request's number when success).
  std::string attestation_number;
  std::vector<MediPrimaAttestationSpec> attestations;  // Search results (success only)
  std::vector<MediPrimaCarmedSpec> carmeds;            // Consult results (success only)
  std::string response_id;                             // root @Id (NCName), "" → "_<uuid>"
};

// Builds the answer to `request` (as MediPrimaCodec returned it; its document is read, never
// changed): root <Operation>Response with Id, InResponseTo = request @Id (omitted when it has
// none), IssueInstant = clock.Now() in UTC, core:Status, then the operation's content:
//   Send    success: Attestion (sic) {Author (copied), BeneficiarySsin, ValidityPeriod,
//           MedicalCover (copied), AttestationNumber}
//   Search  success: one Attestation per spec.attestations
//   Delete  success: AttestionNumber (sic)
//   Consult SelectionCriteria (copied), success with carmeds: Result/Carmed*
// Returns the SOAP body payload (UTF-8 with an XML declaration) that passes the operation's XSD;
// wrap it with BuildSoapResponse. Errors: kInvalid (inconsistent spec: success Send without a
// well-formed attestation number, a non-success status without errors or with results, an
// attestation or carmed missing a required field, a request without its document).
StatusOr<std::string> BuildMediPrimaResponse(const MediPrimaRequest& request,
                                             const MediPrimaResponseSpec& spec, const Clock& clock);

// Gateway side.

inline constexpr std::string_view kMediPrimaAccepted = "accepted";   // Send / Delete success
inline constexpr std::string_view kMediPrimaRefused = "refused";     // any non-success status
inline constexpr std::string_view kMediPrimaFound = "found";         // Search / Consult results
inline constexpr std::string_view kMediPrimaNotFound = "not-found";  // success, no result

// One medical card of a Consult answer (no beneficiary data).
struct MediPrimaCarmed {
  std::string carmed_number;
  std::string version;
  std::string start_date;
  std::string end_date;
  std::string cpas_cbe;
  std::string agreement_number;    // "" when absent
  std::string attestation_number;  // UrgentMedicalAidAttestationNumber, "" when absent
};

// What the gateway keeps of an answer. Holds no patient value (no SSIN, no name).
struct MediPrimaAnswer {
  MediPrimaOperation operation = MediPrimaOperation::kSendAttestation;  // from the root
  // kMediPrimaAccepted | kMediPrimaRefused | kMediPrimaFound | kMediPrimaNotFound. Send: accepted
  // when Success carries the Attestion it created (a Success without one counts as refused: the
  // practice has no number to print); Delete: accepted on Success; Search and Consult: found
  // when Success carries at least one result, else not-found; refused otherwise.
  std::string decision;
  // When the status is not Success: the StatusCode values (outer first, nested after). Then, in
  // any case, every StatusDetail code in document order (UMA ErrorDetail/Code, consult
  // MedicalCardRegistryMessage/ReasonCode, CbssStatus/Code).
  std::vector<std::string> codes;
  // Send: Attestion/AttestationNumber; Delete: AttestionNumber; Search: the first attestation's
  // number; Consult: the first card's AgreementNumber, else its CarmedNumber. "" when none.
  std::string insurer_reference;
  std::vector<std::string> attestation_numbers;  // Search: every result's number
  std::vector<MediPrimaCarmed> carmeds;          // Consult
  std::string response_id;                       // root @Id
  std::string in_response_to;                    // root @InResponseTo ("" when absent)
};

// Reads an answer: the SOAP body payload, or a whole SOAP 1.1 envelope holding it. Fails closed:
// the root must be one of the four *Response elements and the document must pass its XSD.
// Errors: kMalformed (not well-formed or over limits), kTooLarge, kInvalid with the reason (a
// SOAP Fault — its faultcode and a faultstring prefix —, wrong root, schema errors). The caller
// checks in_response_to against the request it sent and the operation against what it sent.
StatusOr<MediPrimaAnswer> ParseMediPrimaResponse(std::string_view bytes,
                                                 const SchemaRegistry& schemas,
                                                 const XmlLimits& limits = XmlLimits());

}  // namespace psl::codecs

#endif  // PSL_CODECS_MEDIPRIMA_H_
