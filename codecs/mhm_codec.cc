#include "codecs/mhm_codec.h"

#include <utility>

#include "base/brussels_time.h"
#include "codecs/blob.h"
#include "codecs/codec_util.h"
#include "codecs/xades.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

// Decodes the Detail blob into the payload bytes. Appends problems and returns nullopt on failure;
// *malformed tells whether the failure is about undecodable bytes (vs a refused attribute).
std::optional<std::string> DecodeBlob(const xmlNode* detail, std::size_t max_bytes,
                                      std::string* encoding, std::vector<Problem>* problems,
                                      bool* malformed) {
  bool refused = false;
  if (Attr(detail, "ContentType") != "text/xml") {
    problems->push_back(EnvelopeProblemAt("PSL-BLOB-CONTENTTYPE",
                                          "Detail/@ContentType must be text/xml for MHM", detail));
    refused = true;
  }
  // The schema default when the attribute is absent is "deflate" (BlobType).
  if (!ReadBlobEncoding(detail, encoding, problems)) {
    refused = true;
  }
  if (HasAttr(detail, "ContentEncryption")) {
    problems->push_back(
        EnvelopeProblemAt("PSL-BLOB-ENCRYPTION",
                          "Detail/@ContentEncryption is not used by MHM: the Detail must "
                          "be the plain kmehr request",
                          detail));
    refused = true;
  }
  if (refused) {
    return std::nullopt;
  }
  std::optional<std::string> content = DecodeBlobContent(detail, *encoding, max_bytes, problems);
  *malformed = !content.has_value();
  return content;
}

Status Summarise(StatusCode code, const std::vector<Problem>& problems) {
  return SummariseProblems(code, problems, "the MHM request");
}

}  // namespace

MhmCodec::MhmCodec(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits)
    : schemas_(schemas), clock_(clock), limits_(limits) {}

std::optional<MhmOperation> MhmCodec::OperationOf(const xmlNode* root) {
  if (IsElement(root, kMhmNamespace, "SendSubscriptionRequest")) {
    return MhmOperation::kSubscription;
  }
  if (IsElement(root, kMhmNamespace, "CancelSubscriptionRequest")) {
    return MhmOperation::kCancellation;
  }
  if (IsElement(root, kMhmNamespace, "NotifySubscriptionClosureRequest")) {
    return MhmOperation::kClosure;
  }
  return std::nullopt;
}

bool MhmCodec::IsKmehrRequest(const xmlNode* root) {
  return IsElement(root, kMessageServicesNamespace, "SendTransactionRequest");
}

Status MhmCodec::CheckDetailOnly(xmlDoc* detail, ValidationReport* report) const {
  std::vector<Problem>& problems = report->problems;
  const xmlNode* root = xmlDocGetRootElement(detail);
  const xmlNode* transaction = Child(Child(Child(root, "kmehrmessage"), "folder"), "transaction");
  std::string code;
  for (const xmlNode* c = transaction != nullptr ? transaction->children : nullptr; c != nullptr;
       c = c->next) {
    if (IsElement(c, "cd") && Attr(c, "S") == "CD-TRANSACTION-MYCARENET") {
      code = Content(c);
    }
  }
  MhmOperation operation = MhmOperation::kSubscription;
  bool known = false;
  for (MhmOperation op :
       {MhmOperation::kSubscription, MhmOperation::kCancellation, MhmOperation::kClosure}) {
    if (code == MhmTransactionCode(op)) {
      operation = op;
      known = true;
    }
  }
  report->kind = "enrolment";
  report->flow = "mhm";
  report->operation = known ? std::string(MhmOperationName(operation)) : std::string();

  std::string version;
  if (const std::string standard = KmehrStandardOf(detail); !standard.empty()) {
    version = schemas_.KmehrVersionFor(standard);
  }
  if (!version.empty()) {
    (void)schemas_.ValidateKmehrRequest(version, detail, "detail", &problems);
  }
  MhmRuleInput input;
  input.operation = operation;
  input.envelope = nullptr;  // envelope rules do not apply
  input.detail = detail;
  input.today = BrusselsToday(clock_);
  input.standard_known = !version.empty();
  (void)CheckMhmRules(input, &problems);
  return HasErrors(problems) ? Summarise(StatusCode::kInvalid, problems) : Status::Ok();
}

StatusOr<MhmRequest> MhmCodec::Decode(std::string_view bytes, ValidationReport* report) const {
  StatusOr<XmlDocPtr> doc = ParseEnvelopeReporting(bytes, limits_, &report->problems);
  if (!doc.ok()) {
    return doc.status();
  }
  return DecodeParsed(std::move(doc).value(), report);
}

StatusOr<MhmRequest> MhmCodec::DecodeParsed(XmlDocPtr envelope, ValidationReport* report) const {
  std::vector<Problem>& problems = report->problems;
  const xmlNode* root = xmlDocGetRootElement(envelope.get());
  const std::optional<MhmOperation> operation = OperationOf(root);
  if (!operation) {
    Problem p;
    p.code = "PSL-FLOW-UNKNOWN";
    p.message =
        "the root element must be SendSubscriptionRequest, CancelSubscriptionRequest or "
        "NotifySubscriptionClosureRequest in namespace " +
        std::string(kMhmNamespace);
    p.line = root != nullptr ? Line(root) : 0;
    p.path = root != nullptr ? NodePath(root) : "/";
    problems.push_back(std::move(p));
    return Summarise(StatusCode::kInvalid, problems);
  }
  report->kind = "enrolment";
  report->flow = "mhm";
  report->operation = std::string(MhmOperationName(*operation));

  MhmRequest request;
  request.operation = *operation;
  request.envelope_id = Attr(root, "Id");

  (void)schemas_.ValidateEnvelope(EnvelopeSchema::kMhm, envelope.get(), "envelope", &problems);

  bool malformed = false;
  XmlDocPtr detail_doc;
  // By namespace: the Detail decoded here must be the very element SignBlobRequest signs.
  if (const xmlNode* detail = Child(root, kCommonsProtocolNs, "Detail"); detail != nullptr) {
    request.detail_id = Attr(detail, "Id");
    std::optional<std::string> payload =
        DecodeBlob(detail, limits_.max_bytes, &request.content_encoding, &problems, &malformed);
    if (payload) {
      detail_doc = ParseDetailPayload(*payload, detail, limits_, &problems);
      if (detail_doc != nullptr) {
        request.detail_xml = std::move(*payload);
      } else {
        malformed = true;
      }
    }
  }

  if (detail_doc) {
    const std::string standard = KmehrStandardOf(detail_doc.get());
    if (!standard.empty()) {
      request.kmehr_version = schemas_.KmehrVersionFor(standard);
    }
    if (!request.kmehr_version.empty()) {
      (void)schemas_.ValidateKmehrRequest(request.kmehr_version, detail_doc.get(), "detail",
                                          &problems);
    }
  }

  MhmRuleInput input;
  input.operation = *operation;
  input.envelope = envelope.get();
  input.detail = detail_doc.get();
  input.today = BrusselsToday(clock_);
  input.standard_known = !request.kmehr_version.empty();
  MhmFacts facts = CheckMhmRules(input, &problems);

  if (HasErrors(problems)) {
    return Summarise(malformed ? StatusCode::kMalformed : StatusCode::kInvalid, problems);
  }
  request.author_nihii = std::move(facts.care_provider_nihii);
  request.patient_ssin =
      !facts.patient_niss.empty() ? std::move(facts.patient_niss) : std::move(facts.routing_ssin);
  request.mutuality = std::move(facts.routing_mutuality);
  request.reg_nr_with_mut = std::move(facts.routing_reg_nr_with_mut);
  request.request_id = std::move(facts.request_id);
  const xmlNode* xades = Child(root, kCommonsProtocolNs, "Xades");
  request.has_xades = xades != nullptr && !Content(xades).empty();
  request.envelope = std::move(envelope);
  return request;
}

}  // namespace psl::codecs
