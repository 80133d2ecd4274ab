#include "codecs/mhm_response.h"

#include <libxml/tree.h>

#include <utility>

#include "base/brussels_time.h"
#include "base/random.h"
#include "codecs/base64.h"
#include "codecs/codec_util.h"
#include "codecs/deflate.h"
#include "codecs/kmehr_util.h"
#include "codecs/mhm_rules.h"
#include "codecs/soap.h"
#include "codecs/xades.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

using std::chrono::system_clock;

constexpr char kCommonsCoreNs[] = "urn:be:fgov:ehealth:mycarenet:commons:core:v3";
// The MHM requests' kmehr standard (DOMAIN.md §4.1): the set used for an answer without a
// kmehrmessage, which then has no CD-STANDARD of its own.
constexpr char kMhmCdStandard[] = "20181201";

// Brussels civil time, as kmehr dates and times are read by MyCareNet.
system_clock::time_point BrusselsLocal(system_clock::time_point t) {
  return t + BrusselsUtcOffset(t);
}

// The kmehr item of `transaction` whose cd is `code`, or null.
const xmlNode* ItemOf(const xmlNode* transaction, std::string_view code) {
  for (const xmlNode* item : Children(transaction, "item")) {
    for (const xmlNode* cd : Children(item, "cd")) {
      if (TrimmedContent(cd) == code) {
        return item;
      }
    }
  }
  return nullptr;
}

struct Party {
  std::string id;
  std::string name;
};

xmlNode* AddItemCd(xmlNode* item, xmlNs* kmehr, const char* code) {
  return AddKmehrCd(item, kmehr, "CD-ITEM-MYCARENET", "1.6", code);
}

// The kmehr SendTransactionResponse answering `detail` (the request's decoded payload).
StatusOr<std::string> BuildDetail(const xmlDoc* detail, const MhmRequest& request,
                                  const MhmResponseSpec& spec, const Party& insurer,
                                  system_clock::time_point now) {
  const xmlNode* req_root = xmlDocGetRootElement(const_cast<xmlDoc*>(detail));
  const xmlNode* req_request = Child(req_root, "request");
  const xmlNode* req_message = Child(req_root, "kmehrmessage");
  const xmlNode* req_header = Child(req_message, "header");
  const xmlNode* req_folder = Child(req_message, "folder");
  const xmlNode* req_patient = Child(req_folder, "patient");
  const xmlNode* req_transaction = Child(req_folder, "transaction");
  if (req_request == nullptr || req_patient == nullptr || req_header == nullptr) {
    return Status::Invalid("the request's Detail lacks request, header or folder/patient");
  }

  const system_clock::time_point local = BrusselsLocal(now);
  const KmehrAnswerer by{insurer.id, insurer.name, local};
  // response: who answers, when, to which request.
  StatusOr<KmehrAnswer> answer = StartKmehrAnswer(req_request, "1.27", by, "Detail");
  if (!answer.ok()) {
    return answer.status();
  }
  AddKmehrAcknowledge(*answer, spec.accepted, spec.errors);

  if (spec.accepted && request.operation == MhmOperation::kSubscription) {
    StatusOr<xmlNode*> transaction =
        AddKmehrAnswerTransaction(*answer, req_header, req_patient, by, "maaagreement", "Detail");
    if (!transaction.ok()) {
      return transaction.status();
    }
    xmlNode* tx = *transaction;
    xmlNs* kmehr = answer->kmehr;
    int item_id = 0;
    if (const xmlNode* type = ItemOf(req_transaction, "agreementtype")) {
      xmlNode* item = AddElement(tx, kmehr, "item");
      AddKmehrId(item, kmehr, std::to_string(++item_id));
      AddItemCd(item, kmehr, "agreementtype");
      AppendCopy(item, Child(type, "content"));
    }
    xmlNode* reference = AddElement(tx, kmehr, "item");
    AddKmehrId(reference, kmehr, std::to_string(++item_id));
    AddItemCd(reference, kmehr, "decisionreference");
    xmlNode* content = AddElement(reference, kmehr, "content");
    xmlNode* ref_id = AddElement(content, kmehr, "id", spec.decision_reference);
    SetAttribute(ref_id, "S", "LOCAL");
    SetAttribute(ref_id, "SV", "1.0");
    SetAttribute(ref_id, "SL", "IOreferencesystemname");
    if (const xmlNode* start = ItemOf(req_transaction, "agreementstartdate")) {
      xmlNode* item = AddElement(tx, kmehr, "item");
      AddKmehrId(item, kmehr, std::to_string(++item_id));
      AddItemCd(item, kmehr, "agreementstartdate");
      AppendCopy(item, Child(start, "content"));
    }
  }
  return SerialiseXml(answer->doc.get());
}

std::optional<MhmOperation> ResponseOperationOf(const xmlNode* root) {
  for (MhmOperation op :
       {MhmOperation::kSubscription, MhmOperation::kCancellation, MhmOperation::kClosure}) {
    if (IsElement(root, kMhmNamespace, MhmResponseElement(op))) {
      return op;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view MhmResponseElement(MhmOperation operation) {
  switch (operation) {
    case MhmOperation::kSubscription:
      return "SendSubscriptionResponse";
    case MhmOperation::kCancellation:
      return "CancelSubscriptionResponse";
    case MhmOperation::kClosure:
      return "NotifySubscriptionClosureResponse";
  }
  return "SendSubscriptionResponse";
}

StatusOr<std::string> BuildMhmResponse(const MhmRequest& request, const MhmResponseSpec& spec,
                                       const SigningIdentity& insurer, const Clock& clock) {
  if (spec.insurer_code.empty()) {
    return Status::Invalid("the answer needs the insurer's code");
  }
  if (!spec.accepted && spec.errors.empty()) {
    return Status::Invalid("a refused answer needs at least one error code");
  }
  for (const MhmAnswerError& e : spec.errors) {
    if (e.code.empty()) {
      return Status::Invalid("an answer error has no code");
    }
  }
  if (spec.accepted && request.operation == MhmOperation::kSubscription &&
      !IsDecisionReference(spec.decision_reference)) {
    return Status::Invalid(
        "an accepted subscription needs a decision reference of at most 64 letters, digits, "
        "'.', '_', '/' or '-'");
  }
  if (request.envelope_id.empty()) {
    return Status::Invalid("the request has no @Id to answer to");
  }
  if (insurer.key == nullptr || insurer.certificate == nullptr) {
    return Status::FailedPrecondition("no insurer signing key or certificate");
  }
  StatusOr<XmlDocPtr> detail = ParseUntrustedXmlAs(request.detail_xml, XmlLimits{},
                                                   "the request's Detail", StatusCode::kInvalid);
  if (!detail.ok()) {
    return detail.status();
  }
  const Party party{spec.insurer_code,
                    spec.insurer_name.empty() ? "Insurer " + spec.insurer_code : spec.insurer_name};
  const system_clock::time_point now = clock.Now();
  StatusOr<std::string> kmehr = BuildDetail(detail->get(), request, spec, party, now);
  if (!kmehr.ok()) {
    return kmehr.status();
  }

  const std::string uuid = RandomUuid();
  const std::string detail_uuid = RandomUuid();
  if (uuid.empty() || detail_uuid.empty()) {
    return Status::Internal("no randomness for the answer's Ids");
  }
  XmlDocPtr doc(xmlNewDoc(ToXmlChar("1.0")));
  xmlNode* root = xmlNewDocNode(
      doc.get(), nullptr, ToXmlChar(std::string(MhmResponseElement(request.operation))), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  xmlNs* mhm = xmlNewNs(root, ToXmlChar(std::string(kMhmNamespace)), ToXmlChar("mhm"));
  xmlSetNs(root, mhm);
  xmlNs* mcp = xmlNewNs(root, ToXmlChar(kCommonsProtocolNs), ToXmlChar("mcp"));
  xmlNs* mc = xmlNewNs(root, ToXmlChar(kCommonsCoreNs), ToXmlChar("mc"));
  SetAttribute(root, "Id", spec.response_id.empty() ? "_" + uuid : spec.response_id);
  SetAttribute(root, "InResponseTo", request.envelope_id);
  SetAttribute(root, "IssueInstant", FormatUtc(now, kXsDateTimeUtcFormat));
  xmlNode* ret = AddElement(root, mcp, "Return");
  xmlNode* output = AddElement(ret, mcp, "CommonOutput");
  AddElement(output, mc, "InputReference", request.envelope_id);
  if (!spec.nip_reference.empty()) {
    AddElement(output, mc, "NIPReference", spec.nip_reference);
  }
  if (!spec.output_reference.empty()) {
    AddElement(output, mc, "OutputReference", spec.output_reference);
  }
  xmlNode* blob = AddElement(ret, mcp, "Detail", EncodeBase64(*kmehr));
  SetAttribute(blob, "ContentEncoding", "none");
  SetAttribute(blob, "ContentType", "text/xml");
  SetAttribute(blob, "Id", "_" + detail_uuid);
  StatusOr<std::string> unsigned_xml = SerialiseXml(doc.get());
  if (!unsigned_xml.ok()) {
    return unsigned_xml.status();
  }
  return SignBlobResponse(*unsigned_xml, insurer, clock);
}

StatusOr<MhmAnswer> ParseMhmResponse(std::string_view bytes, const SchemaRegistry& schemas,
                                     X509_STORE* trust, const Clock& clock,
                                     const XmlLimits& limits) {
  if (trust == nullptr) {
    return Status::FailedPrecondition("no trust store to verify the insurer's answer against");
  }
  StatusOr<XmlDocPtr> parsed =
      ParseUntrustedXmlAs(bytes, limits, "the answer", StatusCode::kMalformed);
  if (!parsed.ok()) {
    return parsed.status();
  }
  XmlDocPtr doc = std::move(parsed).value();
  std::string body_xml(bytes);
  PSL_RETURN_IF_ERROR(UnwrapSoapAnswer(bytes, limits, "the insurer", &doc, &body_xml));
  xmlNode* root = xmlDocGetRootElement(doc.get());
  const std::optional<MhmOperation> operation = ResponseOperationOf(root);
  if (!operation) {
    return Status::Invalid(
        "the answer is not an MHM SendSubscriptionResponse, "
        "CancelSubscriptionResponse or NotifySubscriptionClosureResponse");
  }
  std::vector<Problem> problems;
  if (!schemas.ValidateEnvelope(EnvelopeSchema::kMhm, doc.get(), "envelope", &problems)) {
    return Status::Invalid("the answer does not pass the MHM schema: " +
                           DescribeFirstProblem(problems));
  }
  StatusOr<VerifiedSignature> verified = VerifyBlobResponse(body_xml, trust, clock);
  if (!verified.ok()) {
    if (verified.status().code() == StatusCode::kInvalid) {
      return Status::Invalid("the answer's XadesT does not verify: " + verified.status().message());
    }
    return verified.status();
  }

  MhmAnswer answer;
  answer.operation = *operation;
  answer.response_id = Attr(root, "Id");
  answer.signer_subject = verified->signer_subject;
  answer.signing_time = verified->signing_time;
  xmlNode* ret = Child(root, kCommonsProtocolNs, "Return");
  xmlNode* output = Child(ret, kCommonsProtocolNs, "CommonOutput");
  answer.input_reference = TrimmedContent(Child(output, kCommonsCoreNs, "InputReference"));
  answer.nip_reference = TrimmedContent(Child(output, kCommonsCoreNs, "NIPReference"));
  answer.output_reference = TrimmedContent(Child(output, kCommonsCoreNs, "OutputReference"));

  // The Detail exactly as VerifyBlobResponse found it (one Return, one Detail: the schema and
  // the verifier both insist), decoded with the same caps.
  xmlNode* blob = Child(ret, kCommonsProtocolNs, "Detail");
  if (Attr(blob, "ContentType") != "text/xml") {
    return Status::Invalid("the answer's Detail/@ContentType must be text/xml");
  }
  const std::string encoding =
      HasAttr(blob, "ContentEncoding") ? Attr(blob, "ContentEncoding") : std::string("deflate");
  StatusOr<std::string> kmehr_bytes = DecodeBase64(Content(blob));
  if (!kmehr_bytes.ok()) {
    return Status::Invalid("the answer's Detail is not base64: " + kmehr_bytes.status().message());
  }
  if (encoding == "deflate") {
    StatusOr<std::string> inflated = InflateRaw(*kmehr_bytes, limits.max_bytes);
    if (!inflated.ok()) {
      return inflated.status().code() == StatusCode::kTooLarge
                 ? inflated.status()
                 : Status::Invalid("the answer's Detail does not inflate: " +
                                   inflated.status().message());
    }
    kmehr_bytes = std::move(inflated);
  } else if (encoding != "none") {
    return Status::Invalid("the answer's Detail/@ContentEncoding must be none or deflate");
  }
  StatusOr<XmlDocPtr> kmehr =
      ParseUntrustedXmlAs(*kmehr_bytes, limits, "the answer's Detail", StatusCode::kInvalid);
  if (!kmehr.ok()) {
    return kmehr.status();
  }
  xmlNode* kroot = xmlDocGetRootElement(kmehr->get());
  if (!IsElement(kroot, kMessageServicesNamespace, "SendTransactionResponse")) {
    return Status::Invalid("the answer's Detail is not a kmehr SendTransactionResponse");
  }
  const xmlNode* message = Child(kroot, "kmehrmessage");
  const std::string standard =
      message != nullptr ? TrimmedContent(Child(Child(Child(message, "header"), "standard"), "cd"))
                         : std::string(kMhmCdStandard);
  const std::string version = schemas.KmehrVersionFor(standard);
  if (version.empty()) {
    return Status::Invalid("the answer's Detail names a kmehr standard no schema set knows");
  }
  problems.clear();
  if (!schemas.ValidateKmehrRequest(version, kmehr->get(), "detail", &problems)) {
    return Status::Invalid("the answer's Detail does not pass the kmehr " + version +
                           " schema: " + DescribeFirstProblem(problems));
  }

  const xmlNode* acknowledge = Child(kroot, "acknowledge");
  const std::string complete = TrimmedContent(Child(acknowledge, "iscomplete"));
  bool accepted = complete == "true" || complete == "1";
  for (const xmlNode* error : Children(acknowledge, "error")) {
    for (const xmlNode* cd : Children(error, "cd")) {
      answer.codes.push_back(TrimmedContent(cd));
    }
  }
  std::string decision_reference;
  for (const xmlNode* folder : Children(message, "folder")) {
    for (const xmlNode* tx : Children(folder, "transaction")) {
      const std::string code = CdOf(tx, "CD-TRANSACTION-MYCARENET");
      if (code == "maarefusal") {
        accepted = false;
      }
      if (decision_reference.empty() && (code == "maaagreement" || code == "maa")) {
        const xmlNode* item = ItemOf(tx, "decisionreference");
        decision_reference = TrimmedContent(Child(Child(item, "content"), "id"));
      }
    }
  }
  answer.decision = std::string(accepted ? kMhmAccepted : kMhmRefused);
  answer.insurer_reference =
      decision_reference.empty() ? answer.output_reference : decision_reference;
  return answer;
}

}  // namespace psl::codecs
