#include "codecs/validator.h"

#include <utility>

#include "codecs/eattest.h"
#include "codecs/genasync.h"
#include "codecs/mediprima.h"
#include "codecs/mhm_codec.h"
#include "codecs/xml_util.h"

namespace psl::codecs {

MessageValidator::MessageValidator(const SchemaRegistry& schemas, const Clock& clock,
                                   XmlLimits limits)
    : schemas_(schemas), clock_(clock), limits_(limits) {}

ValidationReport MessageValidator::Validate(std::string_view bytes) const {
  ValidationReport report;
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(bytes, limits_, &problem);
  if (!doc.ok()) {
    problem.document = "envelope";
    report.problems.push_back(std::move(problem));
    return report;
  }
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  if (MhmCodec::OperationOf(root).has_value()) {
    // The report carries every finding; the request itself is not needed here.
    (void)MhmCodec(schemas_, clock_, limits_).DecodeParsed(std::move(doc).value(), &report);
    return report;
  }
  if (MhmCodec::IsKmehrRequest(root)) {
    (void)MhmCodec(schemas_, clock_, limits_).CheckDetailOnly(doc->get(), &report);
    return report;
  }
  if (MediPrimaCodec::OperationOf(root).has_value()) {
    // No authenticated NIHII here: the author-is-the-caller rule is the intake's.
    (void)MediPrimaCodec(schemas_, clock_, limits_)
        .DecodeParsed(std::move(doc).value(), "", &report);
    return report;
  }
  if (EAttestCodec::OperationOf(root).has_value()) {
    // No authenticated NIHII here: the author-is-the-caller rule is the intake's.
    (void)EAttestCodec(schemas_, clock_, limits_).DecodeParsed(std::move(doc).value(), "", &report);
    return report;
  }
  if (GenAsyncCodec::IsGenAsync(root)) {
    (void)GenAsyncCodec(schemas_, limits_).DecodeParsed(std::move(doc).value(), &report);
    return report;
  }
  Problem unknown;
  unknown.code = "PSL-FLOW-UNKNOWN";
  unknown.message =
      "the root element does not belong to a supported flow (MHM: SendSubscriptionRequest, "
      "CancelSubscriptionRequest or NotifySubscriptionClosureRequest in namespace " +
      std::string(kMhmNamespace) + ", or their kmehr payload SendTransactionRequest in namespace " +
      std::string(kMessageServicesNamespace) + "; eFact: post in namespace " +
      std::string(kGenAsyncNamespace) +
      "; MediPrima: Send|Search|DeleteUrgentMedicalAidAttestationRequest in namespace " +
      std::string(kMediPrimaUmaNamespace) + " or ConsultCarmedInterventionRequest in namespace " +
      std::string(kMediPrimaConsultNamespace) +
      "; eAttest: SendAttestationRequest or CancelAttestationRequest in namespace " +
      std::string(kEAttestNamespace) + ")";
  if (root != nullptr) {
    unknown.line = Line(root);
    unknown.path = NodePath(root);
  }
  report.problems.push_back(std::move(unknown));
  return report;
}

}  // namespace psl::codecs
