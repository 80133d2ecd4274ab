// MhmCodec: decodes and checks a medical-house membership request (DOMAIN.md §4.1), the SOAP body
// payload SendSubscriptionRequest, CancelSubscriptionRequest or NotifySubscriptionClosureRequest.
//
// Pipeline: hardened parse → root element picks the operation → envelope XSD → Detail blob
// (ContentType text/xml, ContentEncoding none|deflate, strict base64, raw-deflate capped at
// XmlLimits::max_bytes) → hardened parse of the payload → kmehr version from CD-STANDARD → kmehr
// XSD → business rules (mhm_rules.h). Every problem found goes into the report; problems in the
// payload have document "detail" and lines in the decoded payload.
// Thread-safe (const); the registry and the clock are borrowed and must outlive the codec.
#ifndef PSL_CODECS_MHM_CODEC_H_
#define PSL_CODECS_MHM_CODEC_H_

#include <optional>
#include <string>
#include <string_view>

#include "base/clock.h"
#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/mhm_rules.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

inline constexpr std::string_view kMhmNamespace =
    "urn:be:fgov:ehealth:mycarenet:medicalhousemembership:protocol:v1";
inline constexpr std::string_view kMessageServicesNamespace =
    "http://www.ehealth.fgov.be/messageservices/protocol/v1";

// What later stages (routing, signing, audit) need from a valid request.
struct MhmRequest {
  MhmOperation operation = MhmOperation::kSubscription;
  std::string envelope_id;       // root @Id
  std::string detail_id;         // Detail/@Id ("" when absent: optional in the schema)
  std::string content_encoding;  // "none" | "deflate" (the schema default when absent)
  std::string author_nihii;      // CommonInput/Origin/CareProvider/Nihii/Value
  std::string patient_ssin;      // kmehr ID-PATIENT, else Routing Ssin. Sensitive: never log.
  std::string mutuality;         // Routing/CareReceiver/Mutuality
  std::string reg_nr_with_mut;   // Routing/CareReceiver/RegNrWithMut
  std::string kmehr_version;     // "1.29", "1.32"... chosen from CD-STANDARD
  std::string request_id;        // kmehr request/id <NIHII11>.<yyyyMMddHHmmss>
  bool has_xades = false;        // a non-empty Xades element is present
  XmlDocPtr envelope;            // the parsed SOAP body payload
  std::string detail_xml;        // the decoded Detail payload
};

class MhmCodec {
 public:
  MhmCodec(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits = {});

  // Checks everything, reporting ALL problems into *report (which must not be null; its kind,
  // flow and operation are set once the operation is known). Returns the request when no error
  // was found; else kMalformed (the envelope or the Detail payload is not well-formed, breaks a
  // parse limit, or the blob cannot be decoded), kTooLarge (the envelope exceeds max_bytes) or
  // kInvalid (schema or business rules).
  StatusOr<MhmRequest> Decode(std::string_view bytes, ValidationReport* report) const;

  // As Decode, for an envelope already parsed by ParseUntrustedXml (MessageValidator parses once
  // to find the flow).
  StatusOr<MhmRequest> DecodeParsed(XmlDocPtr envelope, ValidationReport* report) const;

  // Checks a bare kmehr SendTransactionRequest, the Detail payload on its own as practice software
  // builds it before wrapping it: kmehr schema and every rule that needs no envelope. The
  // operation is the one the transaction code names (maa, maacancellation, maaclosure); an
  // unknown code is reported (130) and the rules run as for a subscription. Returns OK or
  // kInvalid; problems have document "detail".
  Status CheckDetailOnly(xmlDoc* detail, ValidationReport* report) const;

  // The operation an MHM root element stands for, or nullopt for any other element.
  static std::optional<MhmOperation> OperationOf(const xmlNode* root);

  // True for a kmehr messageservices SendTransactionRequest root element.
  static bool IsKmehrRequest(const xmlNode* root);

 private:
  const SchemaRegistry& schemas_;
  const Clock& clock_;
  XmlLimits limits_;
};

}  // namespace psl::codecs

#endif  // PSL_CODECS_MHM_CODEC_H_
