#include "gateway/api.h"

#include <libxml/tree.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <optional>
#include <string_view>
#include <utility>

#include "base/random.h"
#include "base/status_http.h"
#include "codecs/eattest.h"
#include "codecs/genasync.h"
#include "codecs/mediprima.h"
#include "codecs/mhm_codec.h"
#include "codecs/mhm_rules.h"
#include "codecs/soap.h"
#include "codecs/xades.h"
#include "codecs/xml_parser.h"
#include "codecs/xml_util.h"
#include "store/audit.h"

#include <nlohmann/json.hpp>

namespace psl::gateway {

using Json = nlohmann::json;

namespace {

constexpr char kJson[] = "application/json";
constexpr char kProblemJson[] = "application/problem+json";
constexpr char kRetryAfterSeconds[] = "5";
constexpr std::size_t kMaxIdempotencyKey = 255;
constexpr std::size_t kDefaultPageLimit = 50;
constexpr std::size_t kMaxPageLimit = 1000;

// ---- HTTP helpers ----

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() == '/') {
      path.remove_prefix(1);
      continue;
    }
    const std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash);
  }
  return out;
}

std::string Dump(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

HttpResponse JsonResponse(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", kJson);
  r.body = Dump(body);
  return r;
}

const char* TitleFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "OK";
    case StatusCode::kMalformed:
      return "Malformed request";
    case StatusCode::kInvalid:
      return "Invalid request document";
    case StatusCode::kTooLarge:
      return "Request too large";
    case StatusCode::kUnsupported:
      return "Unsupported media type or document";
    case StatusCode::kUnauthenticated:
      return "Authentication required";
    case StatusCode::kForbidden:
      return "Forbidden";
    case StatusCode::kNotFound:
      return "Not found";
    case StatusCode::kConflict:
      return "Conflict";
    case StatusCode::kUnavailable:
      return "Service unavailable";
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInternal:
      return "Internal error";
  }
  return "Internal error";
}

// A problem+json response; `errors` (an array) is added when not null. 500s never carry the
// internal detail (it goes to the log).
HttpResponse ProblemResponse(const Status& status, const Json* errors = nullptr) {
  const int http = HttpStatusFor(status.code());
  Json body{{"type", "urn:passerelle:problem:" + std::string(StatusCodeName(status.code()))},
            {"title", TitleFor(status.code())},
            {"status", http},
            {"detail",
             http == 500 ? std::string("internal error; see the gateway log") : status.message()}};
  if (errors != nullptr) {
    body["errors"] = *errors;
  }
  HttpResponse r;
  r.status = http;
  r.headers.emplace_back("content-type", kProblemJson);
  if (status.code() == StatusCode::kUnavailable) {
    r.headers.emplace_back("retry-after", kRetryAfterSeconds);
  }
  if (status.code() == StatusCode::kUnauthenticated) {
    r.headers.emplace_back("www-authenticate", "Bearer");
  }
  r.body = Dump(body);
  return r;
}

// A paged read that failed: a foreign cursor is the client's error (400), a store that cannot be
// read now is 503, anything else 500; *error gets the internal detail for the log.
HttpResponse PageReadFailure(const Status& status, const std::string& what, std::string* error) {
  if (status.code() == StatusCode::kMalformed) {
    return ProblemResponse(Status::Malformed("the cursor is not valid for this " + what));
  }
  *error = status.ToString();
  return ProblemResponse(status.code() == StatusCode::kUnavailable ? status
                                                                   : Status::Internal(*error));
}

// Retry-After (seconds) for a request refused because `insurer`'s backlog is full: the time the
// insurer needs to deliver the excess (depth - max_backlog + 1), at the delivery rate Little's
// law gives for a FIFO queue in steady state (depth / age of the oldest pending message). No
// history to keep: both come from the store's in-memory QueueStats. An insurer that delivers
// nothing (an outage) ages its oldest message and so gets a longer Retry-After. Clamped to
// [1, 300]; 5 when the age is unknown.
std::int64_t BacklogRetryAfterSeconds(const store::QueueStats& stats, std::uint64_t max_backlog,
                                      std::int64_t now_ms) {
  constexpr std::int64_t kMin = 1;
  constexpr std::int64_t kMax = 300;
  constexpr std::int64_t kUnknown = 5;
  if (stats.depth == 0 || stats.oldest_accepted_ms <= 0 || now_ms <= stats.oldest_accepted_ms) {
    return kUnknown;
  }
  const double age_s = static_cast<double>(now_ms - stats.oldest_accepted_ms) / 1000.0;
  const double rate = static_cast<double>(stats.depth) / age_s;  // deliveries per second
  const double excess = static_cast<double>(stats.depth - std::min(stats.depth, max_backlog) + 1);
  const double seconds = std::ceil(excess / rate);
  return std::clamp<std::int64_t>(static_cast<std::int64_t>(std::min(seconds, 1e9)), kMin, kMax);
}

// A page of `key` items with the cursor of the next page (null on the last page).
HttpResponse PageResponse(const char* key, Json items, const std::string& next_cursor) {
  return JsonResponse(
      200, Json{{key, std::move(items)},
                {"next_cursor", next_cursor.empty() ? Json(nullptr) : Json(next_cursor)}});
}

HttpResponse MethodNotAllowed(const char* allow) {
  HttpResponse r;
  r.status = 405;
  r.headers.emplace_back("content-type", kProblemJson);
  r.headers.emplace_back("allow", allow);
  r.body = Dump(Json{{"type", "urn:passerelle:problem:method-not-allowed"},
                     {"title", "Method not allowed"},
                     {"status", 405},
                     {"detail", std::string("allowed: ") + allow}});
  return r;
}

Json ProblemItem(const codecs::Problem& p) {
  return Json{{"code", p.code},     {"message", p.message}, {"line", p.line},
              {"column", p.column}, {"path", p.path},       {"document", p.document}};
}

Json OneError(std::string code, std::string message, int line = 0, std::string path = "") {
  codecs::Problem p;
  p.code = std::move(code);
  p.message = std::move(message);
  p.line = line;
  p.path = std::move(path);
  return Json::array({ProblemItem(p)});
}

void SplitProblems(const std::vector<codecs::Problem>& problems, Json* errors, Json* warnings) {
  *errors = Json::array();
  *warnings = Json::array();
  for (const codecs::Problem& p : problems) {
    (p.severity == codecs::Severity::kError ? *errors : *warnings).push_back(ProblemItem(p));
  }
}

// ---- times ----

Json TimeOrNull(std::int64_t ms) {
  return ms > 0 ? Json(FormatRfc3339Utc(ms)) : Json(nullptr);
}

bool Digits(std::string_view s, std::size_t n) {
  return s.size() == n &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

int ToInt(std::string_view s) {
  int v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
  }
  return v;
}

// "YYYY-MM-DD" (midnight UTC), "YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)", or epoch milliseconds.
std::optional<std::int64_t> ParseTime(std::string_view s) {
  using namespace std::chrono;  // NOLINT(google-build-using-namespace)
  if (!s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
      s.size() <= 15 && s.size() != 10) {
    std::int64_t v = 0;
    for (char c : s) {
      v = v * 10 + (c - '0');
    }
    return v;
  }
  if (s.size() < 10 || !Digits(s.substr(0, 4), 4) || s[4] != '-' || !Digits(s.substr(5, 2), 2) ||
      s[7] != '-' || !Digits(s.substr(8, 2), 2)) {
    return std::nullopt;
  }
  const year_month_day ymd{year{ToInt(s.substr(0, 4))},
                           month{static_cast<unsigned>(ToInt(s.substr(5, 2)))},
                           day{static_cast<unsigned>(ToInt(s.substr(8, 2)))}};
  if (!ymd.ok()) {
    return std::nullopt;
  }
  std::int64_t ms = duration_cast<milliseconds>(sys_days{ymd}.time_since_epoch()).count();
  if (s.size() == 10) {
    return ms;
  }
  std::string_view rest = s.substr(10);
  if (rest.size() < 9 || (rest[0] != 'T' && rest[0] != 't') || !Digits(rest.substr(1, 2), 2) ||
      rest[3] != ':' || !Digits(rest.substr(4, 2), 2) || rest[6] != ':' ||
      !Digits(rest.substr(7, 2), 2)) {
    return std::nullopt;
  }
  const int hh = ToInt(rest.substr(1, 2));
  const int mm = ToInt(rest.substr(4, 2));
  const int ss = ToInt(rest.substr(7, 2));
  if (hh > 23 || mm > 59 || ss > 60) {
    return std::nullopt;
  }
  ms += (hh * 3600LL + mm * 60LL + ss) * 1000LL;
  rest.remove_prefix(9);
  if (!rest.empty() && rest[0] == '.') {
    std::size_t n = 1;
    std::int64_t frac = 0;
    int digits = 0;
    while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') {
      if (digits < 3) {
        frac = frac * 10 + (rest[n] - '0');
        ++digits;
      }
      ++n;
    }
    if (n == 1) {
      return std::nullopt;
    }
    while (digits < 3) {
      frac *= 10;
      ++digits;
    }
    ms += frac;
    rest.remove_prefix(n);
  }
  if (rest == "Z" || rest == "z") {
    return ms;
  }
  if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && Digits(rest.substr(1, 2), 2) &&
      rest[3] == ':' && Digits(rest.substr(4, 2), 2)) {
    const std::int64_t offset =
        (ToInt(rest.substr(1, 2)) * 60LL + ToInt(rest.substr(4, 2))) * 60000;
    return rest[0] == '+' ? ms - offset : ms + offset;
  }
  return std::nullopt;
}

// ---- ids and documents ----

StatusOr<std::string> NewMessageId() {
  std::string id = RandomUuid();
  if (id.empty()) {
    return Status::Internal("the random generator failed: " + DrainOpenSslErrors());
  }
  return id;
}

// Message ids in paths: what NewMessageId makes, and nothing that could smuggle anything else.
bool PlausibleId(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
  });
}

std::string Serialize(xmlDoc* doc) {
  xmlChar* buf = nullptr;
  int size = 0;
  xmlDocDumpMemoryEnc(doc, &buf, &size, "UTF-8");
  std::string out;
  if (buf != nullptr) {
    out.assign(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(size));
    xmlFree(buf);
  }
  return out;
}

enum class DocumentKind { kEnrolment, kClaim, kAmu, kKmehrDetail, kUnknown };

const char* EndpointFor(DocumentKind kind) {
  switch (kind) {
    case DocumentKind::kEnrolment:
    case DocumentKind::kKmehrDetail:
      return "/v1/enrolments";
    case DocumentKind::kClaim:
      return "/v1/claims";
    case DocumentKind::kAmu:
      return "/v1/amu";
    case DocumentKind::kUnknown:
      break;
  }
  return "/v1/messages";
}

const char* KindName(DocumentKind kind) {
  switch (kind) {
    case DocumentKind::kEnrolment:
    case DocumentKind::kKmehrDetail:
      return "enrolment";
    case DocumentKind::kClaim:
      return "claim";
    case DocumentKind::kAmu:
      return "amu";
    case DocumentKind::kUnknown:
      break;
  }
  return "unknown";
}

// The flow a root element belongs to (DESIGN.md "Flows"); CodecFor picks its decoder.
DocumentKind DetectDocument(const xmlNode* root) {
  if (root == nullptr) {
    return DocumentKind::kUnknown;
  }
  if (codecs::MhmCodec::OperationOf(root).has_value()) {
    return DocumentKind::kEnrolment;
  }
  if (codecs::MhmCodec::IsKmehrRequest(root)) {
    return DocumentKind::kKmehrDetail;
  }
  if (codecs::GenAsyncCodec::IsGenAsync(root)) {
    // ECM-HCPFAC is an AMU invoice; anything else in the genasync namespace (HCPFAC, another
    // MessageName, a get) goes to the claims codec, which says precisely what is wrong with it.
    const std::string name =
        codecs::Attr(codecs::Child(root, codecs::kGenAsyncNamespace, "Detail"), "MessageName");
    return name == codecs::kMediPrimaMessageName ? DocumentKind::kAmu : DocumentKind::kClaim;
  }
  if (codecs::EAttestCodec::OperationOf(root).has_value()) {
    return DocumentKind::kClaim;
  }
  if (codecs::MediPrimaCodec::OperationOf(root).has_value()) {
    return DocumentKind::kAmu;
  }
  return DocumentKind::kUnknown;
}

std::optional<std::size_t> ParseLimit(const std::optional<std::string>& value) {
  if (!value) {
    return kDefaultPageLimit;
  }
  if (value->empty() || value->size() > 4 ||
      !std::all_of(value->begin(), value->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  const std::size_t n = static_cast<std::size_t>(ToInt(*value));
  if (n < 1 || n > kMaxPageLimit) {
    return std::nullopt;
  }
  return n;
}

// ?limit= (default kDefaultPageLimit) and ?cursor= of a paged listing; false for a bad limit.
bool ParsePage(const HttpRequest& request, store::PageRequest* page) {
  const std::optional<std::size_t> limit = ParseLimit(request.Query("limit"));
  if (!limit) {
    return false;
  }
  page->limit = *limit;
  page->after = request.Query("cursor").value_or("");
  return true;
}

Json DeliveryJson(const store::Delivery& d) {
  const bool pending =
      d.state != store::MessageState::kAnswered && d.state != store::MessageState::kDead;
  return Json{{"insurer", d.destination},
              {"state", std::string(store::MessageStateName(d.state))},
              {"attempts", d.attempts},
              {"next_attempt", pending ? TimeOrNull(d.next_attempt_ms) : Json(nullptr)},
              {"last_error", d.last_error.empty() ? Json(nullptr) : Json(d.last_error)}};
}

Json MessageJson(const store::MessageRecord& r) {
  const bool pending =
      r.state != store::MessageState::kAnswered && r.state != store::MessageState::kDead;
  Json deliveries = Json::array();
  for (const store::Delivery& d : r.deliveries) {
    deliveries.push_back(DeliveryJson(d));
  }
  return Json{{"id", r.id},
              {"kind", r.flow_kind},
              {"operation", r.operation},
              {"insurer", r.deliveries.empty() ? Json(nullptr) : Json(r.deliveries[0].destination)},
              {"state", std::string(store::MessageStateName(r.state))},
              {"attempts", r.attempts},
              {"next_attempt", pending ? TimeOrNull(r.next_attempt_ms) : Json(nullptr)},
              {"last_error", r.last_error.empty() ? Json(nullptr) : Json(r.last_error)},
              {"accepted", TimeOrNull(r.accepted_ms)},
              {"finished", TimeOrNull(r.finished_ms)},
              {"deliveries", deliveries}};
}

Json AnswerJson(const store::StoredAnswer& a, const std::string& document_path) {
  Json j{{"insurer", a.destination},
         {"decision", a.decision},
         {"codes", a.codes},
         {"insurer_reference",
          a.insurer_reference.empty() ? Json(nullptr) : Json(a.insurer_reference)},
         {"received", TimeOrNull(a.received_ms)}};
  if (!document_path.empty()) {
    j["document"] = document_path;
  }
  return j;
}

// The answer whose decision the practice sees: the latest, except that a "received"
// acknowledgement (a TAck) never hides a decision recorded before it. answers.size() when empty.
std::size_t LatestAnswer(const std::vector<store::StoredAnswer>& answers) {
  for (std::size_t i = answers.size(); i > 0; --i) {
    if (answers[i - 1].decision != "received") {
      return i - 1;
    }
  }
  return answers.empty() ? 0 : answers.size() - 1;
}

Json AuditEventJson(const store::AuditEvent& e) {
  return Json{{"sequence", e.sequence},
              {"time", FormatRfc3339Utc(e.time_ms)},
              {"time_ms", e.time_ms},
              {"kind", e.kind},
              {"message_id", e.message_id},
              {"practice", e.practice_nihii},
              {"flow_kind", e.flow_kind},
              {"insurer", e.insurer},
              {"outcome_codes", e.outcome_codes},
              {"payload_sha256", e.payload_sha256},
              {"actor", e.actor},
              {"patient_pseudonym", e.patient_pseudonym},
              {"prev_hash", e.prev_hash},
              {"hash", e.hash}};
}

// The NISS (or BIS) of an auditor's query with separators removed; nullopt unless 11 digits.
std::optional<std::string> NormaliseNiss(std::string_view value) {
  std::string digits;
  for (char c : value) {
    if (c == ' ' || c == '.' || c == '-' || c == '/') {
      continue;
    }
    digits += c;
  }
  if (!Digits(digits, 11)) {
    return std::nullopt;
  }
  return digits;
}

[[noreturn]] void DieMissingDependency(const char* what) {
  std::fprintf(stderr, "passerelle: Api constructed without %s\n", what);
  std::abort();
}

const Config& ConfigOf(const ApiDeps& deps) {
  if (deps.config == nullptr) {
    DieMissingDependency("config");
  }
  return *deps.config;
}

// ---- per-flow intake: one codec per root element ----

// What a flow's codec hands to the common tail of the intake (sender check, route, id, sign,
// commit). No patient value except `pseudonym` (keyed).
struct Prepared {
  const char* kind = "";  // enrolment | claim | amu
  const char* flow = "";  // mhm | efact | eattest | mediprima
  std::string operation;  // stored operation name (SOAPAction choice at delivery)
  std::string sender_nihii;
  std::string sender_rule;  // the 403's message: which field must name the practice
  int sender_line = 0;
  std::string sender_path;
  std::string pseudonym;  // PatientPseudonym of the patient, "" when none (or a batch)
  RoutingRequest routing;
  Json warnings = Json::array();
  XmlDocPtr envelope;  // the request document the gateway completes and signs
  bool has_signature = false;
  std::string signature_element;  // "Xades" | "Xades-t"
  // Writes the gateway's message id into `envelope`.
  Status (*set_id)(xmlDoc* doc, const std::string& id) = nullptr;
  StatusOr<std::string> (*sign)(std::string_view xml, const SigningIdentity& id, X509_STORE* trust,
                                const Clock& clock) = nullptr;
  StatusOr<codecs::VerifiedSignature> (*verify)(std::string_view xml, X509_STORE* trust,
                                                const Clock& clock) = nullptr;
  // eAttest: instead of `sign`, the request is sealed for the destination's encryption
  // certificate (ETEE) after routing, with the gateway identity.
  bool seal = false;
};

enum class Codec { kMhm, kGenAsync, kEAttest, kMediPrima, kNone };

// The codec of a root element DetectDocument recognised: adding a flow is a case here and a
// Prepare function.
Codec CodecFor(const xmlNode* root) {
  if (codecs::MhmCodec::OperationOf(root).has_value()) {
    return Codec::kMhm;
  }
  if (codecs::GenAsyncCodec::IsGenAsync(root)) {
    return Codec::kGenAsync;
  }
  if (codecs::EAttestCodec::OperationOf(root).has_value()) {
    return Codec::kEAttest;
  }
  if (codecs::MediPrimaCodec::OperationOf(root).has_value()) {
    return Codec::kMediPrima;
  }
  return Codec::kNone;
}

// MediPrima bodies travel unsigned (DOMAIN.md §4.5): only the transport WS-Security applies.
StatusOr<std::string> PassUnsigned(std::string_view xml, const SigningIdentity& /*id*/,
                                   X509_STORE* /*trust*/, const Clock& /*clock*/) {
  return std::string(xml);
}

// The 4xx for a document its codec refused, with every problem.
HttpResponse DecodeRefusal(const Status& decoded, const Json& errors, std::string* code) {
  *code = errors.empty() ? "PSL-INVALID" : errors[0]["code"].get<std::string>();
  Status status = decoded;
  if (status.code() == StatusCode::kInvalid) {
    status = Status::Invalid("the request has " + std::to_string(errors.size()) +
                             " problem(s); see errors");
  }
  return ProblemResponse(status, &errors);
}

Status SetMhmId(xmlDoc* doc, const std::string& id) {
  const std::string root_id = "_" + id;
  if (xmlSetProp(xmlDocGetRootElement(doc), reinterpret_cast<const xmlChar*>("Id"),
                 reinterpret_cast<const xmlChar*>(root_id.c_str())) == nullptr) {
    return Status::Internal("cannot set the root Id");
  }
  return Status::Ok();
}

// CommonInput/InputReference = the message id (xs:string: a UUID fits, genasync_mailbox.h), set
// or inserted after Origin (the schema's order: Request, Origin, InputReference, NIPReference).
Status SetGenAsyncId(xmlDoc* doc, const std::string& id) {
  xmlNode* root = xmlDocGetRootElement(doc);
  xmlNode* common = codecs::Child(root, codecs::kGenAsyncNamespace, "CommonInput");
  xmlNode* origin = codecs::Child(common, codecs::kCinCommonNamespace, "Origin");
  if (origin == nullptr) {
    return Status::Internal("the post has no CommonInput/Origin");
  }
  xmlNode* reference = codecs::Child(common, codecs::kCinCommonNamespace, "InputReference");
  if (reference == nullptr) {
    reference =
        xmlNewDocNode(doc, origin->ns, reinterpret_cast<const xmlChar*>("InputReference"), nullptr);
    if (reference == nullptr || xmlAddNextSibling(origin, reference) == nullptr) {
      return Status::Internal("cannot add CommonInput/InputReference");
    }
  }
  xmlNodeSetContent(reference, nullptr);
  xmlNodeAddContent(reference, reinterpret_cast<const xmlChar*>(id.c_str()));
  return Status::Ok();
}

std::optional<HttpResponse> PrepareMhm(XmlDocPtr doc, const codecs::SchemaRegistry& schemas,
                                       const Clock& clock, const codecs::XmlLimits& limits,
                                       const std::string& pseudonym_key, Prepared* out,
                                       std::string* code) {
  codecs::MhmCodec codec(schemas, clock, limits);
  codecs::ValidationReport report;
  StatusOr<codecs::MhmRequest> decoded = codec.DecodeParsed(std::move(doc), &report);
  Json errors;
  SplitProblems(report.problems, &errors, &out->warnings);
  if (!decoded.ok()) {
    return DecodeRefusal(decoded.status(), errors, code);
  }
  codecs::MhmRequest& mhm = decoded.value();
  out->kind = "enrolment";
  out->flow = "mhm";
  out->operation = std::string(codecs::MhmOperationName(mhm.operation));
  out->sender_nihii = mhm.author_nihii;
  out->sender_rule =
      "CommonInput/Origin/CareProvider/Nihii/Value must be the NIHII of the authenticated "
      "practice";
  out->pseudonym =
      mhm.patient_ssin.empty() ? "" : store::PatientPseudonym(pseudonym_key, mhm.patient_ssin);
  out->routing.kind = MessageKind::kEnrolment;
  out->routing.mutuality = mhm.mutuality;
  out->routing.patient_pseudonym = out->pseudonym;
  out->routing.sender_is_medical_house = true;
  out->envelope = std::move(mhm.envelope);
  out->has_signature = mhm.has_xades;
  out->signature_element = "Xades";
  out->set_id = &SetMhmId;
  out->sign = &codecs::SignBlobRequest;
  out->verify = &codecs::VerifyBlobRequest;
  return std::nullopt;
}

// An eFact invoicing post (HCPFAC: claim; ECM-HCPFAC: amu). The batch holds many patients: no
// single pseudonym; the insurer is the batch's destination (its union, or 690).
std::optional<HttpResponse> PrepareGenAsync(XmlDocPtr doc, const codecs::SchemaRegistry& schemas,
                                            const codecs::XmlLimits& limits, Prepared* out,
                                            std::string* code) {
  codecs::GenAsyncCodec codec(schemas, limits);
  codecs::ValidationReport report;
  StatusOr<codecs::GenAsyncPost> decoded = codec.DecodeParsed(std::move(doc), &report);
  Json errors;
  SplitProblems(report.problems, &errors, &out->warnings);
  if (!decoded.ok()) {
    // Blob or record problems are the document's content: 422 with every problem, like the
    // schema's (only a body that is not XML at all is a 400, before any codec runs).
    Status status = decoded.status();
    if (status.code() == StatusCode::kMalformed && !errors.empty()) {
      status = Status::Invalid(status.message());
    }
    return DecodeRefusal(status, errors, code);
  }
  codecs::GenAsyncPost& post = decoded.value();
  const bool amu = post.message_name == codecs::kMediPrimaMessageName;
  out->kind = amu ? "amu" : "claim";
  out->flow = "efact";
  out->operation = "post";
  out->sender_nihii = post.sender_nihii;
  out->sender_rule =
      "the eFact file's sender (record 10 zone 14) must be the NIHII of the authenticated "
      "practice";
  out->sender_line = 1;  // record 10 is the first record
  out->sender_path = "record 10 zone 14";
  out->routing.kind = amu ? MessageKind::kAmu : MessageKind::kClaim;
  out->routing.mutuality = post.destination;
  out->routing.sender_is_medical_house = true;
  out->envelope = std::move(post.envelope);
  out->has_signature = post.has_xades;
  out->signature_element = "Xades-t";
  out->set_id = &SetGenAsyncId;
  out->sign = &codecs::SignGenAsyncPost;
  out->verify = &codecs::VerifyGenAsyncPost;
  return std::nullopt;
}

// An eAttest v3 SendAttestation / CancelAttestation. `practice_nihii` is the authenticated
// practice: the codec requires it as CareProvider and as the kmehr author (codes 155, ...).
std::optional<HttpResponse> PrepareEAttest(XmlDocPtr doc, const codecs::SchemaRegistry& schemas,
                                           const Clock& clock, const codecs::XmlLimits& limits,
                                           const std::string& pseudonym_key,
                                           const std::string& practice_nihii, Prepared* out,
                                           std::string* code) {
  codecs::EAttestCodec codec(schemas, clock, limits);
  codecs::ValidationReport report;
  StatusOr<codecs::EAttestRequest> decoded =
      codec.DecodeParsed(std::move(doc), practice_nihii, &report);
  Json errors;
  SplitProblems(report.problems, &errors, &out->warnings);
  if (!decoded.ok()) {
    Status status = decoded.status();
    if (status.code() == StatusCode::kMalformed && !errors.empty()) {
      status = Status::Invalid(status.message());  // an undecodable Detail is content: 422
    }
    return DecodeRefusal(status, errors, code);
  }
  codecs::EAttestRequest& request = decoded.value();
  out->kind = "claim";
  out->flow = "eattest";
  out->operation = std::string(codecs::EAttestOperationName(request.operation));
  out->sender_nihii = request.care_provider_nihii;
  out->sender_rule =
      "CommonInput/Origin/CareProvider/Nihii/Value must be the NIHII of the authenticated "
      "practice";
  out->pseudonym = request.patient_ssin.empty()
                       ? ""
                       : store::PatientPseudonym(pseudonym_key, request.patient_ssin);
  out->routing.kind = MessageKind::kClaim;
  out->routing.service = Service::kEAttest;
  // "rcam" (and anything that is not a mutuality code) leaves routing to the member registry
  // or the hub.
  const std::string& mutuality = request.mutuality;
  const bool code_like =
      mutuality.size() == 3 &&
      std::all_of(mutuality.begin(), mutuality.end(), [](char c) { return c >= '0' && c <= '9'; });
  out->routing.mutuality = code_like ? mutuality : "";
  out->routing.patient_pseudonym = out->pseudonym;
  out->envelope = std::move(request.envelope);
  out->has_signature = false;  // the codec refuses an outer Xades (PSL-EATTEST-XADES)
  out->signature_element = "Xades";
  out->set_id = &SetMhmId;
  out->seal = true;
  return std::nullopt;
}

// A MediPrima UMA v1 or consult v2 request. `principal_nihii` is the authenticated NIHII; only a
// physician's (1…) is compared with the Author (see api.h for the medical-house rule); any other
// practice's Author of Send/Delete must be in `physicians` (its configured list; nullptr or empty:
// no physician, the request is refused).
std::optional<HttpResponse> PrepareMediPrima(XmlDocPtr doc, const codecs::SchemaRegistry& schemas,
                                             const Clock& clock, const codecs::XmlLimits& limits,
                                             const std::string& pseudonym_key,
                                             const std::string& principal_nihii,
                                             const std::vector<std::string>* physicians,
                                             Prepared* out, std::string* code) {
  codecs::MediPrimaCodec codec(schemas, clock, limits);
  codecs::ValidationReport report;
  const bool physician = principal_nihii.size() == 11 && principal_nihii[0] == '1';
  StatusOr<codecs::MediPrimaRequest> decoded =
      codec.DecodeParsed(std::move(doc), physician ? principal_nihii : "", &report);
  Json errors;
  SplitProblems(report.problems, &errors, &out->warnings);
  if (!decoded.ok()) {
    return DecodeRefusal(decoded.status(), errors, code);
  }
  codecs::MediPrimaRequest& request = decoded.value();
  // Fail closed: a practice that is not itself a physician sends UMA Send/Delete only for the
  // physicians its configuration lists; no list means none (never "any physician").
  const bool authored = request.operation == codecs::MediPrimaOperation::kSendAttestation ||
                        request.operation == codecs::MediPrimaOperation::kDeleteAttestation;
  const bool listed = physicians != nullptr && std::find(physicians->begin(), physicians->end(),
                                                         request.author_nihii) != physicians->end();
  if (!physician && authored && !listed) {
    *code = "PSL-MEDIPRIMA-AUTHOR-NOT-LISTED";
    const xmlNode* root = xmlDocGetRootElement(request.document.get());
    const xmlNode* author = codecs::Child(root, codecs::kEhealthProtocolV2Namespace, "Author");
    const Json listed_errors =
        OneError(*code,
                 "the Author must be one of the physicians configured for the "
                 "authenticated practice ([practices.<nihii>] physicians; none are configured "
                 "when the list is empty)",
                 author != nullptr ? codecs::Line(author) : 0,
                 author != nullptr ? codecs::NodePath(author) : "");
    return ProblemResponse(Status::Invalid("the request has 1 problem(s); see errors"),
                           &listed_errors);
  }
  out->kind = "amu";
  out->flow = "mediprima";
  out->operation = request.operation_name;
  // The practice itself: the Author rule is the codec's (above).
  out->sender_nihii = principal_nihii;
  out->pseudonym =
      request.patient.empty() ? "" : store::PatientPseudonym(pseudonym_key, request.patient);
  out->routing.kind = MessageKind::kAmu;
  out->routing.service = request.service == codecs::MediPrimaService::kUma
                             ? Service::kMediPrimaUma
                             : Service::kMediPrimaConsult;
  out->routing.patient_pseudonym = out->pseudonym;
  out->envelope = std::move(request.document);
  out->has_signature = false;
  out->set_id = &SetMhmId;
  out->sign = &PassUnsigned;
  return std::nullopt;
}

}  // namespace

// Per-request state for the log line and the metrics.
struct Api::Context {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::string kind = "other";  // metrics label
  // The matched route's template ("/v1/messages/{id}"), logged instead of the raw path: a
  // mistyped URL could carry a NISS.
  std::string route = "(unmatched)";
  std::string practice;
  std::string actor;
  std::string message_id;
  std::string insurer;
  std::string code;
  std::string error;  // internal detail for the log (no patient data)
};

Api::Api(ApiDeps deps) : deps_(std::move(deps)), auth_(ConfigOf(deps_)) {
  if (deps_.queue == nullptr || deps_.audit == nullptr) {
    DieMissingDependency("a store");
  }
  if (deps_.schemas == nullptr) {
    DieMissingDependency("schemas");
  }
  if (deps_.clock == nullptr) {
    DieMissingDependency("a clock");
  }
  if (deps_.routing == nullptr) {
    DieMissingDependency("a routing table");
  }
  if (deps_.signing_clock == nullptr) {
    deps_.signing_clock = deps_.clock;
  }
  if (deps_.logger == nullptr) {
    own_logger_ = std::make_unique<Logger>();
    logger_ = own_logger_.get();
  } else {
    logger_ = deps_.logger;
  }
  if (deps_.metrics != nullptr) {
    metrics_ = RegisterGatewayMetrics(*deps_.metrics);
  }
}

Api::~Api() = default;

HttpResponse Api::Handle(const HttpRequest& request) {
  Context ctx;
  HttpResponse response;
  try {
    response = Dispatch(request, ctx);
  } catch (const std::exception& e) {
    // Nothing on this path throws by design (std::bad_alloc aside); a bug must not take the
    // worker thread down with it.
    ctx.error = std::string("unexpected exception: ") + e.what();
    response = ProblemResponse(Status::Internal(ctx.error));
  }
  Finish(request, response, ctx);
  return response;
}

HttpResponse Api::HandleOps(const HttpRequest& request) {
  Context ctx;
  ctx.kind = "ops";
  const std::string_view path = request.Path();
  if (path == "/healthz" || path == "/readyz" || path == "/metrics") {
    ctx.route = std::string(path);
  }
  HttpResponse response;
  if (path != "/healthz" && path != "/readyz" && path != "/metrics") {
    response = ProblemResponse(Status::NotFound("no such ops endpoint"));
  } else if (request.method != "GET") {
    response = MethodNotAllowed("GET");
  } else if (path == "/healthz") {
    response = JsonResponse(200, Json{{"status", "ok"}});
  } else if (path == "/readyz") {
    Readiness readiness;
    if (deps_.readiness) {
      readiness = deps_.readiness();
    } else {
      readiness.reasons.emplace_back("no readiness probe");
    }
    response = JsonResponse(readiness.ready ? 200 : HttpStatusFor(StatusCode::kUnavailable),
                            Json{{"ready", readiness.ready}, {"reasons", readiness.reasons}});
    if (!readiness.ready) {
      response.headers.emplace_back("retry-after", kRetryAfterSeconds);
    }
  } else if (deps_.metrics == nullptr) {
    response = ProblemResponse(Status::NotFound("metrics are not enabled"));
  } else {
    response.status = 200;
    response.headers.emplace_back("content-type", kPrometheusContentType);
    response.body = deps_.metrics->Render();
  }
  Finish(request, response, ctx);
  return response;
}

void Api::Finish(const HttpRequest& request, const HttpResponse& response, Context& ctx) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - ctx.start).count();
  if (deps_.metrics != nullptr) {
    metrics_.requests_total->WithLabels({ctx.kind, std::to_string(response.status)})->Inc();
    metrics_.request_duration_seconds->WithLabels({ctx.kind})->Observe(seconds);
  }
  LogFields fields;
  fields.message_id = ctx.message_id;
  fields.practice = ctx.practice;
  fields.actor = ctx.actor;
  fields.kind = ctx.kind;
  fields.method = request.method;
  fields.path = ctx.route;  // never the raw path or query: either may hold a NISS
  fields.insurer = ctx.insurer;
  fields.code = ctx.code;
  fields.error = ctx.error;
  fields.status = response.status;
  fields.duration_ms = seconds * 1000.0;
  logger_->Log(response.status >= 500 ? LogLevel::kError : LogLevel::kInfo, "request", fields);
}

HttpResponse Api::Dispatch(const HttpRequest& request, Context& ctx) {
  const std::string_view path = request.Path();
  const std::vector<std::string_view> seg = Segments(path);
  const std::string& method = request.method;
  auto is = [&](std::initializer_list<std::string_view> parts) {
    if (seg.size() != parts.size()) {
      return false;
    }
    std::size_t i = 0;
    for (std::string_view p : parts) {
      if (p != "*" && seg[i] != p) {
        return false;
      }
      ++i;
    }
    ctx.route.clear();
    for (std::string_view p : parts) {
      ctx.route += "/" + std::string(p == "*" ? "{id}" : p);
    }
    return true;
  };
  if (seg.empty() || seg[0] != "v1") {
    return ProblemResponse(Status::NotFound("no such endpoint"));
  }
  if (is({"v1", "enrolments"}) || is({"v1", "claims"}) || is({"v1", "amu"})) {
    const std::string endpoint = seg[1] == "enrolments" ? "enrolment"
                                 : seg[1] == "claims"   ? "claim"
                                                        : "amu";
    ctx.kind = endpoint;
    return method == "POST" ? Intake(request, endpoint, ctx) : MethodNotAllowed("POST");
  }
  if (is({"v1", "messages"})) {
    if (method == "POST") {
      ctx.kind = "messages";
      return Intake(request, "any", ctx);
    }
    ctx.kind = "list";
    return method == "GET" ? ListMessages(request, ctx) : MethodNotAllowed("GET, POST");
  }
  if (is({"v1", "messages", "*"})) {
    ctx.kind = "status";
    return method == "GET" ? GetMessage(request, std::string(seg[2]), false, ctx)
                           : MethodNotAllowed("GET");
  }
  if (is({"v1", "messages", "*", "answer"})) {
    ctx.kind = "answer";
    return method == "GET" ? GetMessage(request, std::string(seg[2]), true, ctx)
                           : MethodNotAllowed("GET");
  }
  if (is({"v1", "admin", "dead-letters"})) {
    ctx.kind = "admin";
    return method == "GET" ? ListDeadLetters(request, ctx) : MethodNotAllowed("GET");
  }
  if (is({"v1", "admin", "messages", "*", "replay"})) {
    ctx.kind = "admin";
    return method == "POST" ? ReplayMessage(request, std::string(seg[3]), ctx)
                            : MethodNotAllowed("POST");
  }
  if (is({"v1", "audit"})) {
    ctx.kind = "audit";
    return method == "GET" ? QueryAudit(request, ctx) : MethodNotAllowed("GET");
  }
  if (is({"v1", "audit", "verify"})) {
    ctx.kind = "audit";
    return method == "GET" ? VerifyAudit(request, ctx) : MethodNotAllowed("GET");
  }
  return ProblemResponse(Status::NotFound("no such endpoint"));
}

void Api::AuditDenial(const std::string& actor, const std::string& practice,
                      const std::string& message_id, int status, const std::string& reason,
                      Context& ctx) {
  store::AuditEvent event;
  event.kind = "denied";
  event.actor = actor;
  event.practice_nihii = practice;
  event.message_id = message_id;
  event.outcome_codes = {std::to_string(status), reason, "endpoint:" + ctx.kind};
  StatusOr<store::AuditEvent> sealed = deps_.audit->Append(std::move(event));
  if (!sealed.ok()) {
    // The refusal stands either way; the log keeps the trace the audit log could not.
    logger_->Warn("cannot audit a denial", LogFields{.practice = practice,
                                                     .actor = actor,
                                                     .kind = ctx.kind,
                                                     .error = sealed.status().ToString(),
                                                     .status = status});
  }
}

std::optional<Principal> Api::Require(const HttpRequest& request, Role role, Context& ctx,
                                      HttpResponse* denied) {
  Identity identity;
  StatusOr<Principal> principal = auth_.Authorize(request, role, &identity);
  if (principal.ok()) {
    ctx.actor = principal->Actor();
    if (role == Role::kPractice) {
      ctx.practice = principal->practice_nihii;
    }
    return std::move(principal).value();
  }
  std::string actor = "anonymous";
  if (identity.authenticated()) {
    actor = identity.practice_nihii ? "practice:" + *identity.practice_nihii
            : identity.ops          ? "ops:" + identity.name
                                    : "auditor:" + identity.name;
  }
  if (identity.practice_nihii) {
    ctx.practice = *identity.practice_nihii;
  }
  ctx.actor = actor;
  ctx.code = principal.status().code() == StatusCode::kForbidden ? "role" : "identity";
  const int status = HttpStatusFor(principal.status().code());
  AuditDenial(actor, identity.practice_nihii.value_or(""), "", status,
              std::string("needs-role:") + RoleName(role), ctx);
  *denied = ProblemResponse(principal.status());
  return std::nullopt;
}

std::optional<HttpResponse> Api::ShedForBacklog(const std::string& insurer,
                                                const std::string& practice_nihii,
                                                const std::string& idempotency_key, Context& ctx) {
  const auto config = deps_.config->insurers.find(insurer);
  if (config == deps_.config->insurers.end()) {
    return std::nullopt;
  }
  const std::uint64_t max_backlog = config->second.max_backlog;
  StatusOr<store::QueueStats> stats = deps_.queue->Stats(insurer);
  if (!stats.ok()) {
    return std::nullopt;  // the commit reports a store that cannot be used
  }
  if (stats->depth < max_backlog) {
    return std::nullopt;
  }
  if (!idempotency_key.empty()) {
    StatusOr<bool> used = deps_.queue->IdempotencyKeyUsed(practice_nihii, idempotency_key);
    if (used.ok() && *used) {
      return std::nullopt;
    }
  }
  const std::int64_t now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(deps_.clock->Now().time_since_epoch())
          .count();
  const std::int64_t retry_after = BacklogRetryAfterSeconds(*stats, max_backlog, now_ms);
  ctx.code = "PSL-BACKLOG-FULL";
  const std::string detail = "the delivery backlog for insurer " + insurer + " is full (" +
                             std::to_string(stats->depth) + " of " + std::to_string(max_backlog) +
                             "); retry after " + std::to_string(retry_after) + " s";
  const Json errors = OneError(ctx.code, "max_backlog of insurer " + insurer + " reached");
  HttpResponse response = ProblemResponse(Status::Unavailable(detail), &errors);
  for (auto& [name, value] : response.headers) {
    if (name == "retry-after") {
      value = std::to_string(retry_after);
    }
  }
  if (metrics_.intake_shed_total != nullptr) {
    metrics_.intake_shed_total->WithLabels({"backlog", insurer})->Inc();
  }
  return response;
}

HttpResponse Api::Intake(const HttpRequest& request, const std::string& endpoint_kind,
                         Context& ctx) {
  HttpResponse denied;
  std::optional<Principal> principal = Require(request, Role::kPractice, ctx, &denied);
  if (!principal) {
    return denied;
  }
  const std::uint64_t max_body = deps_.config->server.max_body_bytes;
  if (request.body.size() > max_body) {
    ctx.code = "PSL-SIZE";
    return ProblemResponse(
        Status::TooLarge("the body exceeds " + std::to_string(max_body) + " bytes"));
  }
  const std::optional<std::string_view> content_type = request.Header("content-type");
  std::string media = content_type ? Lower(content_type->substr(0, content_type->find(';'))) : "";
  media.erase(std::remove(media.begin(), media.end(), ' '), media.end());
  if (media != "application/xml" && media != "text/xml") {
    ctx.code = "PSL-MEDIA-TYPE";
    return ProblemResponse(Status::Unsupported("Content-Type must be application/xml or text/xml"));
  }
  std::string idempotency_key;
  if (auto key = request.Header("idempotency-key")) {
    const bool printable =
        std::all_of(key->begin(), key->end(), [](char c) { return c > 0x20 && c < 0x7f; });
    if (key->empty() || key->size() > kMaxIdempotencyKey || !printable) {
      ctx.code = "PSL-IDEMPOTENCY-KEY";
      return ProblemResponse(
          Status::Malformed("Idempotency-Key must be 1 to 255 visible ASCII characters"));
    }
    idempotency_key = std::string(*key);
  }

  codecs::XmlLimits limits;
  limits.max_bytes = std::max<std::size_t>(max_body, 1);
  codecs::Problem parse_problem;
  StatusOr<XmlDocPtr> doc = codecs::ParseUntrustedXml(request.body, limits, &parse_problem);
  if (!doc.ok()) {
    ctx.code = parse_problem.code;
    const Json errors = Json::array({ProblemItem(parse_problem)});
    return ProblemResponse(doc.status(), &errors);
  }
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  if (codecs::IsElement(root, codecs::kSoap11Ns, "Envelope")) {
    StatusOr<codecs::SoapResponse> soap = codecs::ParseSoapResponse(request.body, limits);
    if (!soap.ok()) {
      ctx.code = "PSL-SOAP";
      return ProblemResponse(
          Status::Malformed("the SOAP envelope is not usable: " + soap.status().message()));
    }
    if (soap->fault) {
      ctx.code = "PSL-SOAP";
      return ProblemResponse(Status::Malformed("a SOAP Fault is not a request"));
    }
    doc = codecs::ParseUntrustedXml(soap->body_xml, limits, &parse_problem);
    if (!doc.ok()) {
      ctx.code = parse_problem.code;
      const Json errors = Json::array({ProblemItem(parse_problem)});
      return ProblemResponse(doc.status(), &errors);
    }
    root = xmlDocGetRootElement(doc->get());
  }

  // Flow detection and the endpoint's kind.
  const DocumentKind document = DetectDocument(root);
  const int root_line = codecs::Line(root);
  const std::string root_path = root != nullptr ? codecs::NodePath(root) : "";
  if (endpoint_kind == "any" && document != DocumentKind::kUnknown) {
    ctx.kind = KindName(document);
  }
  if (document == DocumentKind::kUnknown) {
    ctx.code = "PSL-FLOW-UNKNOWN";
    const Json errors = OneError(
        ctx.code,
        "the root element does not belong to a known flow (enrolment: MHM "
        "SendSubscriptionRequest, CancelSubscriptionRequest, NotifySubscriptionClosureRequest; "
        "claim: genasync post HCPFAC, eAttest v3 SendAttestationRequest, "
        "CancelAttestationRequest; amu: genasync post ECM-HCPFAC, MediPrima UMA "
        "Send/Search/DeleteUrgentMedicalAidAttestationRequest, ConsultCarmedInterventionRequest)",
        root_line, root_path);
    return ProblemResponse(Status::Unsupported("the document is not a known request"), &errors);
  }
  if (document == DocumentKind::kKmehrDetail) {
    ctx.code = "PSL-FLOW-DETAIL-ONLY";
    const Json errors = OneError(ctx.code,
                                 "a bare kmehr SendTransactionRequest is the Detail payload: send "
                                 "the MHM request envelope carrying it to POST /v1/enrolments",
                                 root_line, root_path);
    return ProblemResponse(Status::Invalid("send the MHM request envelope, not its payload"),
                           &errors);
  }
  const bool any = endpoint_kind == "any";
  if (!any && endpoint_kind != KindName(document)) {
    ctx.code = "PSL-FLOW-WRONG-ENDPOINT";
    const std::string message = std::string("this is a ") + KindName(document) +
                                " document: send it to POST " + EndpointFor(document);
    const Json errors = OneError(ctx.code, message, root_line, root_path);
    return ProblemResponse(Status::Invalid(message), &errors);
  }
  // Decode and validate with the codec of the document's root element: every problem at once.
  // One codec per root element (DESIGN.md "Flows"); a flow without its codec yet answers 415.
  Prepared prepared;
  std::optional<HttpResponse> refused;
  switch (CodecFor(root)) {
    case Codec::kMhm:
      refused = PrepareMhm(std::move(doc).value(), *deps_.schemas, *deps_.clock, limits,
                           deps_.pseudonym_key, &prepared, &ctx.code);
      break;
    case Codec::kGenAsync:
      refused =
          PrepareGenAsync(std::move(doc).value(), *deps_.schemas, limits, &prepared, &ctx.code);
      break;
    case Codec::kEAttest:
      refused =
          PrepareEAttest(std::move(doc).value(), *deps_.schemas, *deps_.clock, limits,
                         deps_.pseudonym_key, principal->practice_nihii, &prepared, &ctx.code);
      break;
    case Codec::kMediPrima: {
      const auto practice = deps_.config->practices.find(principal->practice_nihii);
      refused = PrepareMediPrima(
          std::move(doc).value(), *deps_.schemas, *deps_.clock, limits, deps_.pseudonym_key,
          principal->practice_nihii,
          practice != deps_.config->practices.end() ? &practice->second.physicians : nullptr,
          &prepared, &ctx.code);
      break;
    }
    case Codec::kNone: {
      ctx.code = "PSL-FLOW-UNSUPPORTED";
      const std::string message = std::string("this ") + KindName(document) +
                                  " document is not supported yet by this gateway (supported: "
                                  "MHM enrolments, eFact genasync posts HCPFAC and ECM-HCPFAC, "
                                  "eAttest v3, MediPrima UMA v1 and consult v2)";
      const Json errors = OneError(ctx.code, message, root_line, root_path);
      return ProblemResponse(Status::Unsupported(message), &errors);
    }
  }
  if (refused) {
    return *refused;
  }

  // The sender is the authenticated practice.
  if (prepared.sender_nihii != principal->practice_nihii) {
    ctx.code = "PSL-SENDER";
    AuditDenial(principal->Actor(), principal->practice_nihii, "", 403, "sender-mismatch", ctx);
    const Json sender_errors =
        OneError(ctx.code, prepared.sender_rule, prepared.sender_line, prepared.sender_path);
    return ProblemResponse(
        Status::Forbidden("the request's author is not the authenticated practice"),
        &sender_errors);
  }

  StatusOr<Route> route = deps_.routing->Resolve(prepared.routing);
  if (!route.ok() && route.status().code() == StatusCode::kUnavailable) {
    ctx.error = route.status().ToString();
    return ProblemResponse(
        Status::Unavailable("the gateway cannot route the request now; retry later"));
  }
  if (!route.ok()) {
    ctx.code = "PSL-ROUTE";
    const Json route_errors = OneError(ctx.code, route.status().message());
    return ProblemResponse(Status::Invalid("insurer cannot be determined"), &route_errors);
  }
  ctx.insurer = route->insurer;

  // Admission: a destination whose delivery backlog is full takes no new message (before the
  // signing, the expensive part). Nothing is stored, so nothing is audited and no idempotency
  // key is recorded: the client's retry with the same key is a new request. A retry of a message
  // already accepted is answered as usual (its original id).
  if (std::optional<HttpResponse> shed =
          ShedForBacklog(route->insurer, principal->practice_nihii, idempotency_key, ctx)) {
    return *shed;
  }

  // The gateway-owned id, written into the document before signing: the insurer de-duplicates
  // on it and echoes it in its answers (MHM root @Id, genasync CommonInput/InputReference).
  StatusOr<std::string> id = NewMessageId();
  if (!id.ok()) {
    ctx.error = id.status().ToString();
    return ProblemResponse(id.status());
  }
  ctx.message_id = *id;
  if (Status set = prepared.set_id(prepared.envelope.get(), *id); !set.ok()) {
    ctx.error = set.ToString();
    return ProblemResponse(Status::Internal(ctx.error));
  }
  const std::string envelope_xml = Serialize(prepared.envelope.get());

  // Seal (eAttest), sign, or verify a request that arrives signed (by the practice itself).
  std::string payload;
  if (prepared.seal) {
    auto cert = deps_.encryption_certs.find(route->insurer);
    // The sealing identity is chosen as for signing (the practice's own key, else the
    // gateway's); its certificate is the Reply-to the answer is sealed back to, and delivery
    // opens the answer with the same choice (app.cc).
    const SigningIdentity* sealer = deps_.gateway_identity;
    if (auto it = deps_.practice_identities.find(principal->practice_nihii);
        it != deps_.practice_identities.end() && it->second != nullptr) {
      sealer = it->second;
    }
    if (cert == deps_.encryption_certs.end() || cert->second == nullptr || sealer == nullptr) {
      ctx.code = "PSL-SEAL";
      ctx.error = "no encryption_cert_file (or no gateway identity) for insurer " + route->insurer +
                  ": eAttest requests routed there cannot be sealed";
      return ProblemResponse(Status::Internal(ctx.error));
    }
    StatusOr<std::string> sealed = codecs::PrepareRequestXmlForInsurer(
        envelope_xml, *sealer, cert->second, 1, *deps_.schemas, *deps_.signing_clock);
    if (!sealed.ok()) {
      const Status& s = sealed.status();
      ctx.code = "PSL-SEAL";
      if (s.code() == StatusCode::kInvalid || s.code() == StatusCode::kMalformed ||
          s.code() == StatusCode::kTooLarge) {
        const Json seal_errors = OneError(ctx.code, s.message());
        return ProblemResponse(Status::Invalid("the request cannot be sealed"), &seal_errors);
      }
      ctx.error = "sealing failed: " + s.ToString();
      if (s.code() == StatusCode::kFailedPrecondition) {
        // A certificate (ours, or the recipient's) is not valid now: an operator must renew it
        // (/readyz reports the key expiry); the practice retries later (503 + Retry-After).
        return ProblemResponse(
            Status::Unavailable("the request cannot be sealed now: a certificate of the gateway "
                                "is not valid; retry later"));
      }
      return ProblemResponse(Status::Internal(ctx.error));
    }
    payload = std::move(sealed).value();
  } else if (prepared.has_signature) {
    if (deps_.trust == nullptr) {
      ctx.code = "PSL-XADES";
      const Json sign_errors = OneError(ctx.code,
                                        "this gateway signs requests itself: send the "
                                        "request without a " +
                                            prepared.signature_element + " element");
      return ProblemResponse(Status::Invalid("signed requests are not accepted"), &sign_errors);
    }
    StatusOr<codecs::VerifiedSignature> verified =
        prepared.verify(envelope_xml, deps_.trust, *deps_.signing_clock);
    if (!verified.ok()) {
      ctx.code = "PSL-XADES";
      if (verified.status().code() == StatusCode::kFailedPrecondition) {
        // Our side cannot verify (trust store, clock, ...): internal detail for the log only
        // (STYLE.md §4); the practice gets a generic 500.
        ctx.error = "signature verification failed: " + verified.status().ToString();
        return ProblemResponse(Status::Internal("signature verification failed"));
      }
      const Json sign_errors = OneError(ctx.code, verified.status().message());
      return ProblemResponse(
          Status::Invalid("the request's " + prepared.signature_element + " does not verify"),
          &sign_errors);
    }
    const auto practice = deps_.config->practices.find(principal->practice_nihii);
    const bool listed =
        practice != deps_.config->practices.end() &&
        std::find(practice->second.cert_subjects.begin(), practice->second.cert_subjects.end(),
                  verified->signer_subject) != practice->second.cert_subjects.end();
    if (verified->signer_subject != request.peer.subject && !listed) {
      ctx.code = "PSL-SIGNER";
      AuditDenial(principal->Actor(), principal->practice_nihii, "", 403, "signer-mismatch", ctx);
      return ProblemResponse(Status::Forbidden(
          "the request is signed with a certificate that is not the authenticated practice's"));
    }
    payload = envelope_xml;  // the signature covers Detail, not the id the gateway wrote
  } else {
    const SigningIdentity* identity = deps_.gateway_identity;
    if (auto it = deps_.practice_identities.find(principal->practice_nihii);
        it != deps_.practice_identities.end() && it->second != nullptr) {
      identity = it->second;
    }
    if (identity == nullptr) {
      ctx.error = "no signing key for practice " + principal->practice_nihii;
      return ProblemResponse(Status::Internal(ctx.error));
    }
    StatusOr<std::string> signed_xml =
        prepared.sign(envelope_xml, *identity, nullptr, *deps_.signing_clock);
    if (!signed_xml.ok()) {
      const Status& s = signed_xml.status();
      if (s.code() == StatusCode::kInvalid || s.code() == StatusCode::kTooLarge ||
          s.code() == StatusCode::kMalformed) {
        ctx.code = "PSL-XADES";
        const Json sign_errors = OneError(ctx.code, s.message());
        return ProblemResponse(s, &sign_errors);
      }
      ctx.error = "signing failed: " + s.ToString();
      return ProblemResponse(Status::Internal(ctx.error));
    }
    payload = std::move(signed_xml).value();
  }

  store::NewMessage message;
  message.id = *id;
  message.practice_nihii = principal->practice_nihii;
  message.flow_kind = prepared.kind;
  message.operation = prepared.operation;
  message.destinations = {route->insurer};
  message.idempotency_key = idempotency_key;
  message.body_sha256 = Sha256Hex(request.body);
  message.payload = std::move(payload);
  message.patient_pseudonym = prepared.pseudonym;
  message.actor = principal->Actor();
  StatusOr<store::CommitResult> committed = deps_.queue->Commit(std::move(message));
  if (!committed.ok()) {
    ctx.code = "PSL-COMMIT";
    ctx.error = committed.status().ToString();
    if (committed.status().code() == StatusCode::kConflict) {
      return ProblemResponse(Status::Conflict(
          "the Idempotency-Key was already used with another body; use a new key"));
    }
    if (committed.status().code() == StatusCode::kUnavailable) {
      return ProblemResponse(
          Status::Unavailable("the gateway cannot store the request now; retry later"));
    }
    return ProblemResponse(Status::Internal(ctx.error));
  }
  ctx.message_id = committed->id;
  if (committed->outcome == store::CommitOutcome::kCommitted && deps_.on_committed) {
    deps_.on_committed(route->insurer);
  }
  std::string state = "queued";
  std::string insurer = route->insurer;
  if (committed->outcome == store::CommitOutcome::kDuplicate) {
    if (StatusOr<store::MessageRecord> record = deps_.queue->Get(committed->id); record.ok()) {
      state = std::string(store::MessageStateName(record->state));
      if (!record->deliveries.empty()) {
        insurer = record->deliveries[0].destination;
      }
    }
  }
  Json body{{"id", committed->id},   {"kind", prepared.kind},
            {"flow", prepared.flow}, {"operation", prepared.operation},
            {"insurer", insurer},    {"state", state}};
  if (!prepared.warnings.empty()) {
    body["warnings"] = prepared.warnings;
  }
  HttpResponse response = JsonResponse(202, body);
  response.headers.emplace_back("location", "/v1/messages/" + committed->id);
  if (committed->outcome == store::CommitOutcome::kDuplicate) {
    response.headers.emplace_back("idempotent-replayed", "true");
  }
  return response;
}

HttpResponse Api::GetMessage(const HttpRequest& request, const std::string& id, bool answer,
                             Context& ctx) {
  HttpResponse denied;
  std::optional<Principal> principal = Require(request, Role::kPractice, ctx, &denied);
  if (!principal) {
    return denied;
  }
  const Status not_found = Status::NotFound("no such message");
  if (!PlausibleId(id)) {
    return ProblemResponse(not_found);
  }
  StatusOr<store::MessageRecord> record = deps_.queue->Get(id);
  if (!record.ok()) {
    if (record.status().code() == StatusCode::kNotFound) {
      return ProblemResponse(not_found);
    }
    ctx.error = record.status().ToString();
    return ProblemResponse(record.status().code() == StatusCode::kUnavailable
                               ? record.status()
                               : Status::Internal(ctx.error));
  }
  if (record->practice_nihii != principal->practice_nihii) {
    // Another practice's message: as if it did not exist, and audited.
    ctx.code = "tenant";
    AuditDenial(principal->Actor(), principal->practice_nihii, id, 404, "other-practice", ctx);
    return ProblemResponse(not_found);
  }
  ctx.message_id = id;
  StatusOr<std::vector<store::StoredAnswer>> answers = deps_.queue->Answers(id);
  if (!answers.ok()) {
    ctx.error = answers.status().ToString();
    return ProblemResponse(answers.status().code() == StatusCode::kUnavailable
                               ? answers.status()
                               : Status::Internal(ctx.error));
  }
  if (answer) {
    if (answers->empty()) {
      return ProblemResponse(Status::NotFound("the insurer has not answered yet"));
    }
    const store::StoredAnswer& latest = (*answers)[LatestAnswer(*answers)];
    HttpResponse response;
    response.status = 200;
    response.headers.emplace_back("content-type", "application/xml");
    response.headers.emplace_back("x-insurer", latest.destination);
    response.body = latest.document;
    return response;
  }
  Json body = MessageJson(*record);
  const std::string document_path = "/v1/messages/" + id + "/answer";
  if (record->flow_kind == "enrolment" || record->operation != "post") {
    // Synchronous flows (MHM, eAttest, MediPrima): one answer. eAttest and MediPrima also show
    // its decision and codes at the top, as the eFact claims do.
    if (!answers->empty()) {
      body["answer"] = AnswerJson(answers->front(), document_path);
    } else {
      body["answer"] = nullptr;
    }
    if (record->flow_kind != "enrolment") {
      body["decision"] = answers->empty() ? Json(nullptr) : Json(answers->front().decision);
      body["codes"] = answers->empty() ? Json::array() : Json(answers->front().codes);
    }
    return JsonResponse(200, body);
  }
  // Asynchronous flows (eFact): the delivery's answer (the TAck), then the returns collected
  // from the insurer's mailbox; the decision is the latest one that says something.
  const store::StoredAnswer* delivery_answer = nullptr;
  Json returns = Json::array();
  for (const store::StoredAnswer& a : *answers) {
    if (a.mailbox_key.empty() && delivery_answer == nullptr) {
      delivery_answer = &a;
    } else {
      returns.push_back(AnswerJson(a, ""));
    }
  }
  const std::size_t latest = LatestAnswer(*answers);
  body["answer"] = delivery_answer != nullptr
                       ? AnswerJson(*delivery_answer, latest < answers->size() &&
                                                              &(*answers)[latest] == delivery_answer
                                                          ? document_path
                                                          : "")
                       : Json(nullptr);
  if (latest < answers->size() && &(*answers)[latest] != delivery_answer) {
    // The latest return's index in `returns`: the answers minus the delivery's.
    std::size_t index = latest;
    if (delivery_answer != nullptr && delivery_answer < &(*answers)[latest]) {
      --index;
    }
    returns[index]["document"] = document_path;
  }
  body["returns"] = std::move(returns);
  if (latest < answers->size()) {
    const store::StoredAnswer& a = (*answers)[latest];
    body["decision"] = a.decision;
    body["codes"] = a.codes;
  } else {
    body["decision"] = nullptr;
    body["codes"] = Json::array();
  }
  return JsonResponse(200, body);
}

HttpResponse Api::ListMessages(const HttpRequest& request, Context& ctx) {
  HttpResponse denied;
  std::optional<Principal> principal = Require(request, Role::kPractice, ctx, &denied);
  if (!principal) {
    return denied;
  }
  store::MessageFilter filter;
  if (auto state = request.Query("state"); state && !state->empty()) {
    filter.state = store::ParseMessageState(*state);
    if (!filter.state) {
      return ProblemResponse(
          Status::Malformed("state must be one of queued, delivering, retrying, answered, dead"));
    }
  }
  if (auto kind = request.Query("kind"); kind && !kind->empty()) {
    if (*kind != "enrolment" && *kind != "claim" && *kind != "amu") {
      return ProblemResponse(Status::Malformed("kind must be one of enrolment, claim, amu"));
    }
    filter.flow_kind = *kind;
  }
  if (auto since = request.Query("since"); since && !since->empty()) {
    std::optional<std::int64_t> ms = ParseTime(*since);
    if (!ms) {
      return ProblemResponse(Status::Malformed(
          "since must be a date (YYYY-MM-DD) or an RFC 3339 time (YYYY-MM-DDTHH:MM:SSZ)"));
    }
    filter.accepted_from_ms = *ms;
  }
  store::PageRequest page;
  if (!ParsePage(request, &page)) {
    return ProblemResponse(Status::Malformed("limit must be an integer from 1 to 1000"));
  }
  StatusOr<store::MessagePage> listed = deps_.queue->List(principal->practice_nihii, filter, page);
  if (!listed.ok()) {
    return PageReadFailure(listed.status(), "listing", &ctx.error);
  }
  Json messages = Json::array();
  for (const store::MessageRecord& r : listed->records) {
    messages.push_back(MessageJson(r));
  }
  return PageResponse("messages", std::move(messages), listed->next_cursor);
}

HttpResponse Api::ListDeadLetters(const HttpRequest& request, Context& ctx) {
  HttpResponse denied;
  if (!Require(request, Role::kOps, ctx, &denied)) {
    return denied;
  }
  store::PageRequest page;
  if (!ParsePage(request, &page)) {
    return ProblemResponse(Status::Malformed("limit must be an integer from 1 to 1000"));
  }
  StatusOr<store::DeadLetterPage> letters = deps_.queue->DeadLetters(page);
  if (!letters.ok()) {
    return PageReadFailure(letters.status(), "listing", &ctx.error);
  }
  Json items = Json::array();
  for (const store::DeadLetter& d : letters->letters) {
    items.push_back(Json{{"message_id", d.message_id},
                         {"insurer", d.destination},
                         {"reason", d.reason},
                         {"time", TimeOrNull(d.time_ms)}});
  }
  return PageResponse("dead_letters", std::move(items), letters->next_cursor);
}

HttpResponse Api::ReplayMessage(const HttpRequest& request, const std::string& id, Context& ctx) {
  HttpResponse denied;
  std::optional<Principal> principal = Require(request, Role::kOps, ctx, &denied);
  if (!principal) {
    return denied;
  }
  if (!PlausibleId(id)) {
    return ProblemResponse(Status::NotFound("no dead letter for this message"));
  }
  ctx.message_id = id;
  // The store audits the replay ("replayed") with the actor, in the same write.
  const Status replayed = deps_.queue->Replay(id, principal->Actor());
  if (!replayed.ok()) {
    ctx.error = replayed.ToString();
    switch (replayed.code()) {
      case StatusCode::kNotFound:
        return ProblemResponse(Status::NotFound("no dead letter for this message"));
      case StatusCode::kFailedPrecondition:
        return ProblemResponse(Status::Conflict(
            "the message's payload was purged by retention; it cannot be replayed"));
      case StatusCode::kUnavailable:
        return ProblemResponse(replayed);
      default:
        return ProblemResponse(Status::Internal(ctx.error));
    }
  }
  if (deps_.on_committed) {
    if (StatusOr<store::MessageRecord> record = deps_.queue->Get(id); record.ok()) {
      for (const store::Delivery& d : record->deliveries) {
        if (d.state == store::MessageState::kQueued) {
          deps_.on_committed(d.destination);
        }
      }
    }
  }
  return JsonResponse(200,
                      Json{{"id", id}, {"state", "queued"}, {"replayed_by", principal->Actor()}});
}

HttpResponse Api::QueryAudit(const HttpRequest& request, Context& ctx) {
  HttpResponse denied;
  std::optional<Principal> principal = Require(request, Role::kAuditor, ctx, &denied);
  if (!principal) {
    return denied;
  }
  store::AuditQuery query;
  std::vector<std::string> criteria;
  if (auto practice = request.Query("practice"); practice && !practice->empty()) {
    if (!Digits(*practice, 11) && !Digits(*practice, 8)) {
      return ProblemResponse(Status::Malformed("practice must be a NIHII (8 or 11 digits)"));
    }
    query.practice_nihii = *practice;
    criteria.emplace_back("practice");
  }
  if (auto patient = request.Query("patient"); patient && !patient->empty()) {
    const std::optional<std::string> niss = NormaliseNiss(*patient);
    if (!niss) {
      return ProblemResponse(Status::Malformed("patient must be a NISS or BIS (11 digits)"));
    }
    query.patient_pseudonym = store::PatientPseudonym(deps_.pseudonym_key, *niss);
    if (query.patient_pseudonym->empty()) {
      ctx.error = "no usable pseudonym key";
      return ProblemResponse(Status::Internal(ctx.error));
    }
    criteria.emplace_back("patient");
  }
  if (auto kind = request.Query("kind"); kind && !kind->empty()) {
    if (kind->size() > 64) {
      return ProblemResponse(Status::Malformed("kind is too long"));
    }
    query.kind = *kind;
    criteria.emplace_back("kind");
  }
  for (const char* bound : {"from", "to"}) {
    if (auto value = request.Query(bound); value && !value->empty()) {
      std::optional<std::int64_t> ms = ParseTime(*value);
      if (!ms) {
        return ProblemResponse(Status::Malformed(
            std::string(bound) +
            " must be a date (YYYY-MM-DD), an RFC 3339 time or epoch milliseconds"));
      }
      (std::string_view(bound) == "from" ? query.from_ms : query.to_ms) = *ms;
      criteria.emplace_back(bound);
    }
  }
  store::PageRequest page;
  if (!ParsePage(request, &page)) {
    return ProblemResponse(Status::Malformed("limit must be an integer from 1 to 1000"));
  }

  // Audited before it runs: no audit record, no answer.
  store::AuditEvent event;
  event.kind = "audit-query";
  event.actor = principal->Actor();
  event.practice_nihii = query.practice_nihii.value_or("");
  event.patient_pseudonym = query.patient_pseudonym.value_or("");
  std::string joined = "criteria:";
  for (std::size_t i = 0; i < criteria.size(); ++i) {
    joined += (i == 0 ? "" : ",") + criteria[i];
  }
  event.outcome_codes = {joined};
  if (StatusOr<store::AuditEvent> sealed = deps_.audit->Append(std::move(event)); !sealed.ok()) {
    ctx.error = sealed.status().ToString();
    return ProblemResponse(Status::Unavailable("the query cannot be audited now; retry later"));
  }
  StatusOr<store::AuditPage> result = deps_.audit->Query(query, page);
  if (!result.ok()) {
    return PageReadFailure(result.status(), "query", &ctx.error);
  }
  Json events = Json::array();
  for (const store::AuditEvent& e : result->events) {
    events.push_back(AuditEventJson(e));
  }
  return PageResponse("events", std::move(events), result->next_cursor);
}

HttpResponse Api::VerifyAudit(const HttpRequest& request, Context& ctx) {
  HttpResponse denied;
  std::optional<Principal> principal = Require(request, Role::kAuditor, ctx, &denied);
  if (!principal) {
    return denied;
  }
  store::AuditEvent event;
  event.kind = "audit-verify";
  event.actor = principal->Actor();
  if (StatusOr<store::AuditEvent> sealed = deps_.audit->Append(std::move(event)); !sealed.ok()) {
    ctx.error = sealed.status().ToString();
    return ProblemResponse(Status::Unavailable("the verification cannot be audited now"));
  }
  StatusOr<store::AuditVerifyReport> report = deps_.audit->Verify();
  if (!report.ok()) {
    ctx.error = report.status().ToString();
    return ProblemResponse(report.status().code() == StatusCode::kUnavailable
                               ? report.status()
                               : Status::Internal(ctx.error));
  }
  return JsonResponse(
      200, Json{{"ok", report->ok},
                {"events", report->events},
                {"checkpoints", report->checkpoints},
                {"first_bad_sequence",
                 report->first_bad_sequence ? Json(*report->first_bad_sequence) : Json(nullptr)},
                {"problem", report->problem.empty() ? Json(nullptr) : Json(report->problem)}});
}

}  // namespace psl::gateway
