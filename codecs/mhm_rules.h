// Business rules of the MyCareNet medical-house membership (MHM) flow, checked before a request
// leaves the gateway so that the practice gets every MyCareNet rejection it can predict at once.
//
// Each rule has one fixed (code, path, document, severity) entry in MhmRuleTable(): the code is
// the MyCareNet code (errors/mhmSubscriptionError.json) where the table defines one for that
// path, else a stable PSL-MHM-* code. Messages state the rule, never a value from the message.
// Rules never assume the schema passed: a missing element is a finding, never a crash.
// Pure functions over read-only documents; thread-safe.
#ifndef PSL_CODECS_MHM_RULES_H_
#define PSL_CODECS_MHM_RULES_H_

#include <libxml/tree.h>

#include <chrono>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/problem.h"

namespace psl::codecs {

enum class MhmOperation { kSubscription, kCancellation, kClosure };

// "SendSubscription", "CancelSubscription", "NotifySubscriptionClosure".
std::string_view MhmOperationName(MhmOperation operation);
// urn:be:fgov:ehealth:mycarenet:medicalHouseMembership:protocol:v1:<name> (camel case as eHealth).
std::string_view MhmSoapAction(MhmOperation operation);
// The CD-TRANSACTION-MYCARENET code the operation carries: maa, maacancellation, maaclosure.
std::string_view MhmTransactionCode(MhmOperation operation);

enum class MhmRule {
  kDetailRoot,
  kRequestIdFormat,
  kRequestIdAuthor,
  kRequestAuthorMissing,
  kRequestAuthorInvalid,
  kRequestAuthorMod89,
  kRequestAuthorEnvelope,
  kRequestDateFuture,
  kRequestDatePast,
  kHeaderStandard,
  kHeaderIdFormat,
  kHeaderDate,
  kHeaderSenderMissing,
  kHeaderSenderInvalid,
  kHeaderSenderMod89,
  kHeaderSenderAuthor,
  kRecipientMissing,
  kRecipientNotMycarenet,
  kFolderCount,
  kFolderId,
  kPatientNiss,
  kPatientFirstname,
  kPatientFamilyname,
  kPatientSex,
  kPatientNoIdentification,
  kMutualityWithNiss,
  kMembershipWithNiss,
  kMutualityFormat,
  kTransactionId,
  kTransactionCd,
  kTransactionDateFuture,
  kTransactionDatePast,
  kTransactionAuthorMissing,
  kTransactionAuthorInvalid,
  kTransactionAuthorMod89,
  kTransactionAuthorNotMedicalHouse,
  kTransactionAuthorSender,
  kAgreementTypeMissing,
  kAgreementTypeContent,
  kAgreementTypeValue,
  kStartDateMissing,
  kStartDateContent,
  kStartDateNotAllowed,
  kStartDateRecovery,
  kEndDateMissing,
  kEndDateContent,
  kEndDateNotAllowed,
  kEndDatePast,
  kEndDateTooLate,
  kDecisionReferenceMissing,
  kDecisionReferenceNotAllowed,
  kDecisionReferenceContent,
  kDecisionReferenceFormat,
  kTrialPeriodMissing,
  kTrialPeriodContent,
  kTrialPeriodNotAllowed,
  kClosureJustificationMissing,
  kClosureJustificationNotAllowed,
  kClosureDecisionContent,
  kClosureJustificationContent,
  kDocumentIdentityMissing,
  kSignatureTypeContent,
  kDocumentIdentityOtherContent,
  kDocumentIdentityNotAllowed,
  kEnvelopeQuality,
  kEnvelopeNihii,
  kEnvelopeNihiiMod89,
  kEnvelopeNotMedicalHouse,
  kRoutingSsin,
  kRoutingMismatch,
  kRouting,
};

struct MhmRuleSpec {
  MhmRule rule;
  std::string_view code;  // "111", or "PSL-MHM-..."
  // Detail rules: the MyCareNet path ("/SendTransactionRequest/Request/id"). Envelope rules: the
  // path below the root element ("/Routing/CareReceiver/Ssin"); the root's name is prepended.
  std::string_view path;
  std::string_view document;  // "detail" or "envelope"
  Severity severity;
  std::string_view message;  // the rule, in English
};

// Every rule, in MhmRule order; every problem CheckMhmRules emits comes from one entry.
std::span<const MhmRuleSpec> MhmRuleTable();
const MhmRuleSpec& MhmRuleSpecFor(MhmRule rule);

struct MhmRuleInput {
  MhmOperation operation = MhmOperation::kSubscription;
  // The SOAP body payload (SendSubscriptionRequest...); null when only the Detail is checked
  // (MhmCodec::CheckDetailOnly), which skips the envelope rules.
  const xmlDoc* envelope = nullptr;
  const xmlDoc* detail = nullptr;  // decoded kmehr SendTransactionRequest; null if undecodable
  // "Today" as MyCareNet sees it: the Europe/Brussels civil date.
  std::chrono::year_month_day today{};
  // Whether kmehr header/standard names a CD-STANDARD a compiled kmehr version knows (the codec
  // asks the schema registry); false emits 130.
  bool standard_known = true;
};

// What later stages need, extracted while checking. Empty when absent. Holds patient data:
// never log it.
struct MhmFacts {
  std::string request_id;
  std::string request_author_nihii;
  std::string care_provider_nihii;  // envelope CommonInput/Origin/CareProvider/Nihii/Value
  std::string patient_niss;         // kmehr ID-PATIENT
  bool patient_niss_valid = false;  // it passed CheckNiss
  std::string routing_ssin;
  std::string routing_mutuality;
  std::string routing_reg_nr_with_mut;
};

// Appends every finding to *problems (line numbers in the document the problem is in).
MhmFacts CheckMhmRules(const MhmRuleInput& input, std::vector<Problem>* problems);

// The kmehr CD-STANDARD value of a SendTransactionRequest (header/standard/cd), or "".
std::string KmehrStandardOf(const xmlDoc* detail);

// Whether `s` has the form of an insurer's decision reference (the rule kDecisionReferenceFormat
// checks on requests, and what an answer the gateway builds may carry): 1 to 64 characters, each
// an ASCII letter or digit, '.', '_', '/' or '-'.
bool IsDecisionReference(std::string_view s);

}  // namespace psl::codecs

#endif  // PSL_CODECS_MHM_RULES_H_
