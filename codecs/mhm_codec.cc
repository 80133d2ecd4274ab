#include "codecs/mhm_codec.h"

#include <zlib.h>

#include <array>
#include <cstring>
#include <utility>

#include "base/brussels_time.h"

namespace psl::codecs {
namespace {

bool IsElement(const xmlNode* n, std::string_view local_name) {
  return n != nullptr && n->type == XML_ELEMENT_NODE && n->name != nullptr &&
         local_name == reinterpret_cast<const char*>(n->name);
}

const xmlNode* Child(const xmlNode* parent, std::string_view local_name) {
  if (parent == nullptr) {
    return nullptr;
  }
  for (const xmlNode* c = parent->children; c != nullptr; c = c->next) {
    if (IsElement(c, local_name)) {
      return c;
    }
  }
  return nullptr;
}

std::optional<std::string> Attr(const xmlNode* n, const char* name) {
  XmlCharPtr v(xmlGetNoNsProp(n, reinterpret_cast<const xmlChar*>(name)));
  if (!v) {
    return std::nullopt;
  }
  return std::string(reinterpret_cast<const char*>(v.get()));
}

std::string Content(const xmlNode* n) {
  XmlCharPtr v(xmlNodeGetContent(n));
  return v ? std::string(reinterpret_cast<const char*>(v.get())) : std::string();
}

int Line(const xmlNode* n) {
  const auto line = xmlGetLineNo(n);
  return line > 0 ? static_cast<int>(line) : 0;
}

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') {
    return c - 'A';
  }
  if (c >= 'a' && c <= 'z') {
    return c - 'a' + 26;
  }
  if (c >= '0' && c <= '9') {
    return c - '0' + 52;
  }
  if (c == '+') {
    return 62;
  }
  if (c == '/') {
    return 63;
  }
  return -1;
}

// Strict RFC 4648 base64 (xs:base64Binary): whitespace between characters is ignored, padding
// only at the end, no other character. nullopt when the text is not base64.
std::optional<std::string> DecodeBase64(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::array<int, 4> quad{};
  int filled = 0;
  int padding = 0;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      continue;
    }
    if (c == '=') {
      // Padding may fill only the last two places of the final quad.
      if (filled < 2) {
        return std::nullopt;
      }
      ++padding;
      quad[filled++] = 0;
    } else {
      if (padding > 0) {
        return std::nullopt;  // data after padding
      }
      const int v = Base64Value(c);
      if (v < 0) {
        return std::nullopt;
      }
      quad[filled++] = v;
    }
    if (filled == 4) {
      const unsigned triple =
          (static_cast<unsigned>(quad[0]) << 18) | (static_cast<unsigned>(quad[1]) << 12) |
          (static_cast<unsigned>(quad[2]) << 6) | static_cast<unsigned>(quad[3]);
      out.push_back(static_cast<char>((triple >> 16) & 0xFF));
      if (padding < 2) {
        out.push_back(static_cast<char>((triple >> 8) & 0xFF));
      }
      if (padding < 1) {
        out.push_back(static_cast<char>(triple & 0xFF));
      }
      filled = 0;
      if (padding > 0) {
        padding = 3;  // marks "ended": any further character is refused
      }
    }
  }
  if (filled != 0) {
    return std::nullopt;
  }
  return out;
}

enum class InflateOutcome { kOk, kTooLarge, kCorrupt };

// Raw RFC 1951 (no zlib or gzip header), as MyCareNet's Deflater(-1, nowrap=true). Stops as soon
// as the output would exceed `max_bytes` (a zip bomb costs at most that much memory).
InflateOutcome InflateRaw(std::string_view in, std::size_t max_bytes, std::string* out) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  if (inflateInit2(&zs, -15) != Z_OK) {
    return InflateOutcome::kCorrupt;
  }
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  std::array<char, 16384> buffer{};
  InflateOutcome outcome = InflateOutcome::kOk;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buffer.data());
    zs.avail_out = static_cast<uInt>(buffer.size());
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      outcome = InflateOutcome::kCorrupt;  // bad data, or truncated (Z_BUF_ERROR)
      break;
    }
    const std::size_t produced = buffer.size() - zs.avail_out;
    if (out->size() + produced > max_bytes) {
      outcome = InflateOutcome::kTooLarge;
      break;
    }
    out->append(buffer.data(), produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in != 0) {
        outcome = InflateOutcome::kCorrupt;  // bytes after the stream
      }
      break;
    }
  }
  inflateEnd(&zs);
  return outcome;
}

Problem BlobProblem(std::string code, std::string message, const xmlNode* detail) {
  Problem p;
  p.code = std::move(code);
  p.message = std::move(message);
  p.line = Line(detail);
  p.path = NodePath(detail);
  p.document = "envelope";
  return p;
}

// Decodes the Detail blob into the payload bytes. Appends problems and returns nullopt on failure;
// *malformed tells whether the failure is about undecodable bytes (vs a refused attribute).
std::optional<std::string> DecodeBlob(const xmlNode* detail, std::size_t max_bytes,
                                      std::string* encoding, std::vector<Problem>* problems,
                                      bool* malformed) {
  bool refused = false;
  if (Attr(detail, "ContentType").value_or("") != "text/xml") {
    problems->push_back(BlobProblem("PSL-BLOB-CONTENTTYPE",
                                    "Detail/@ContentType must be text/xml for MHM", detail));
    refused = true;
  }
  // The schema default when the attribute is absent is "deflate" (BlobType).
  *encoding = Attr(detail, "ContentEncoding").value_or("deflate");
  if (*encoding != "none" && *encoding != "deflate") {
    problems->push_back(BlobProblem("PSL-BLOB-ENCODING",
                                    "Detail/@ContentEncoding must be none or deflate (deflate when "
                                    "absent)",
                                    detail));
    refused = true;
  }
  if (Attr(detail, "ContentEncryption").has_value()) {
    problems->push_back(BlobProblem("PSL-BLOB-ENCRYPTION",
                                    "Detail/@ContentEncryption is not used by MHM: the Detail must "
                                    "be the plain kmehr request",
                                    detail));
    refused = true;
  }
  if (refused) {
    return std::nullopt;
  }

  const std::string text = Content(detail);
  std::optional<std::string> raw = DecodeBase64(text);
  if (!raw) {
    problems->push_back(BlobProblem(
        "PSL-BLOB-BASE64",
        "the Detail content must be base64 (A-Z a-z 0-9 + /, '=' padding only at the end)",
        detail));
    *malformed = true;
    return std::nullopt;
  }
  if (*encoding == "none") {
    if (raw->size() > max_bytes) {
      problems->push_back(BlobProblem(
          "PSL-BLOB-SIZE", "the decoded Detail must not exceed the configured document size limit",
          detail));
      *malformed = true;
      return std::nullopt;
    }
    return raw;
  }
  std::string inflated;
  switch (InflateRaw(*raw, max_bytes, &inflated)) {
    case InflateOutcome::kOk:
      return inflated;
    case InflateOutcome::kTooLarge:
      problems->push_back(BlobProblem(
          "PSL-BLOB-SIZE", "the inflated Detail must not exceed the configured document size limit",
          detail));
      break;
    case InflateOutcome::kCorrupt:
      problems->push_back(BlobProblem(
          "PSL-BLOB-DEFLATE",
          "the Detail content must be one complete raw deflate stream (RFC 1951, no zlib or gzip "
          "header) when ContentEncoding is deflate",
          detail));
      break;
  }
  *malformed = true;
  return std::nullopt;
}

Status Summarise(StatusCode code, const std::vector<Problem>& problems) {
  std::size_t errors = 0;
  const Problem* first = nullptr;
  for (const Problem& p : problems) {
    if (p.severity != Severity::kError) {
      continue;
    }
    ++errors;
    if (first == nullptr) {
      first = &p;
    }
  }
  std::string message = std::to_string(errors) + " problem(s) in the MHM request";
  if (first != nullptr) {
    message += "; first: " + first->code + " at " + first->path + " (" + first->document + ")";
  }
  return Status(code, std::move(message));
}

}  // namespace

MhmCodec::MhmCodec(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits)
    : schemas_(schemas), clock_(clock), limits_(limits) {}

std::optional<MhmOperation> MhmCodec::OperationOf(const xmlNode* root) {
  if (root == nullptr || root->type != XML_ELEMENT_NODE || root->ns == nullptr ||
      root->ns->href == nullptr || kMhmNamespace != reinterpret_cast<const char*>(root->ns->href)) {
    return std::nullopt;
  }
  if (IsElement(root, "SendSubscriptionRequest")) {
    return MhmOperation::kSubscription;
  }
  if (IsElement(root, "CancelSubscriptionRequest")) {
    return MhmOperation::kCancellation;
  }
  if (IsElement(root, "NotifySubscriptionClosureRequest")) {
    return MhmOperation::kClosure;
  }
  return std::nullopt;
}

bool MhmCodec::IsKmehrRequest(const xmlNode* root) {
  return root != nullptr && root->type == XML_ELEMENT_NODE && root->ns != nullptr &&
         root->ns->href != nullptr &&
         kMessageServicesNamespace == reinterpret_cast<const char*>(root->ns->href) &&
         IsElement(root, "SendTransactionRequest");
}

Status MhmCodec::CheckDetailOnly(xmlDoc* detail, ValidationReport* report) const {
  std::vector<Problem>& problems = report->problems;
  const xmlNode* root = xmlDocGetRootElement(detail);
  const xmlNode* transaction = Child(Child(Child(root, "kmehrmessage"), "folder"), "transaction");
  std::string code;
  for (const xmlNode* c = transaction != nullptr ? transaction->children : nullptr; c != nullptr;
       c = c->next) {
    if (IsElement(c, "cd") && Attr(c, "S").value_or("") == "CD-TRANSACTION-MYCARENET") {
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
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(bytes, limits_, &problem);
  if (!doc.ok()) {
    problem.document = "envelope";
    report->problems.push_back(std::move(problem));
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
  request.envelope_id = Attr(root, "Id").value_or("");

  (void)schemas_.ValidateEnvelope(EnvelopeSchema::kMhm, envelope.get(), "envelope", &problems);

  bool malformed = false;
  XmlDocPtr detail_doc;
  if (const xmlNode* detail = Child(root, "Detail"); detail != nullptr) {
    request.detail_id = Attr(detail, "Id").value_or("");
    std::optional<std::string> payload =
        DecodeBlob(detail, limits_.max_bytes, &request.content_encoding, &problems, &malformed);
    if (payload) {
      Problem parse_problem;
      StatusOr<XmlDocPtr> parsed = ParseUntrustedXml(*payload, limits_, &parse_problem);
      if (parsed.ok()) {
        detail_doc = std::move(parsed).value();
        request.detail_xml = std::move(*payload);
      } else {
        parse_problem.document = "detail";
        if (parse_problem.line == 0) {
          // Nothing to point at inside the payload (e.g. it is empty): point at the blob.
          parse_problem.document = "envelope";
          parse_problem.line = Line(detail);
          parse_problem.path = NodePath(detail);
        }
        problems.push_back(std::move(parse_problem));
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
  const xmlNode* xades = Child(root, "Xades");
  request.has_xades = xades != nullptr && !Content(xades).empty();
  request.envelope = std::move(envelope);
  return request;
}

}  // namespace psl::codecs
