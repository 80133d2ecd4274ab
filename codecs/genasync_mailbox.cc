#include "codecs/genasync_mailbox.h"

#include <libxml/tree.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <optional>
#include <sstream>
#include <utility>

#include "base/digest.h"
#include "base/random.h"
#include "codecs/base64.h"
#include "codecs/codec_util.h"
#include "codecs/deflate.h"
#include "codecs/soap.h"
#include "codecs/xades.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

constexpr char kCommonNs[] = "urn:be:cin:mycarenet:esb:common:v2";

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsNcName(std::string_view s) {
  if (s.empty()) {
    return false;
  }
  auto letter = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
  };
  if (!letter(s.front())) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return letter(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
  });
}

bool HasBlank(std::string_view s) {
  return std::any_of(s.begin(), s.end(),
                     [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string item;
  while (in >> item) {
    out.push_back(item);
  }
  return out;
}

std::string JoinList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    out += (out.empty() ? "" : " ") + item;
  }
  return out;
}

// A new document whose root is gen:<name>, with the gen and c namespaces declared on it.
struct NewDoc {
  XmlDocPtr doc;
  xmlNode* root = nullptr;
  xmlNs* gen = nullptr;
  xmlNs* c = nullptr;
};

StatusOr<NewDoc> MakeDoc(const char* root_name, bool with_common) {
  NewDoc d;
  d.doc.reset(xmlNewDoc(ToXmlChar("1.0")));
  if (d.doc == nullptr) {
    return Status::Internal("cannot create an XML document");
  }
  d.root = xmlNewDocNode(d.doc.get(), nullptr, ToXmlChar(root_name), nullptr);
  if (d.root == nullptr) {
    return Status::Internal("cannot create an XML element");
  }
  xmlDocSetRootElement(d.doc.get(), d.root);
  d.gen = xmlNewNs(d.root, ToXmlChar(kGenAsyncNs), ToXmlChar("gen"));
  xmlSetNs(d.root, d.gen);
  if (with_common) {
    d.c = xmlNewNs(d.root, ToXmlChar(kCommonNs), ToXmlChar("c"));
  }
  return d;
}

// gen:Origin{c:Package{c:Name?, c:License{Username, Password}}, c:CareProvider/c:Nihii{Quality,
// Value}} under `parent`.
void AddOrigin(xmlNode* parent, xmlNs* gen, xmlNs* c, const std::string& nihii,
               const std::string& quality, const std::string& package_name,
               const std::string& username, const std::string& password) {
  xmlNode* origin = AddElement(parent, gen, "Origin");
  xmlNode* package = AddElement(origin, c, "Package");
  if (!package_name.empty()) {
    AddElement(package, c, "Name", package_name);
  }
  xmlNode* license = AddElement(package, c, "License");
  AddElement(license, c, "Username", username);
  AddElement(license, c, "Password", password);
  xmlNode* provider = AddElement(origin, c, "CareProvider");
  xmlNode* id = AddElement(provider, c, "Nihii");
  AddElement(id, c, "Quality", quality);
  AddElement(id, c, "Value", nihii);
}

struct OriginFields {
  std::string nihii, quality, package_name, username, password;
};

OriginFields ReadOrigin(const xmlNode* origin) {
  OriginFields f;
  const xmlNode* package = Child(origin, kCommonNs, "Package");
  f.package_name = TrimmedContent(Child(package, kCommonNs, "Name"));
  const xmlNode* license = Child(package, kCommonNs, "License");
  f.username = Content(Child(license, kCommonNs, "Username"));
  f.password = Content(Child(license, kCommonNs, "Password"));
  const xmlNode* nihii = Child(Child(origin, kCommonNs, "CareProvider"), kCommonNs, "Nihii");
  f.quality = TrimmedContent(Child(nihii, kCommonNs, "Quality"));
  f.nihii = TrimmedContent(Child(nihii, kCommonNs, "Value"));
  return f;
}

Status CheckTAck(const TAck& t) {
  if (t.issuer.empty() || t.applies_to.empty() || t.result_major.empty()) {
    return Status::Invalid("a TAck needs Issuer, AppliesTo and ResultMajor");
  }
  if (!t.id.empty() && !IsNcName(t.id)) {
    return Status::Invalid("TAck/@Id must be an NCName");
  }
  if (!t.content.empty() && !DecodeBase64(t.content).ok()) {
    return Status::Invalid("the TAck content must be base64");
  }
  return Status::Ok();
}

void WriteTAck(xmlNode* element, const TAck& t) {
  if (!t.content.empty()) {
    xmlNodeSetContent(element, ToXmlChar(t.content));  // base64 needs no escaping
  }
  SetAttribute(element, "Issuer", t.issuer);
  SetAttribute(element, "AppliesTo", t.applies_to);
  SetAttribute(element, "ResultMajor", t.result_major);
  if (!t.result_minor.empty()) {
    SetAttribute(element, "ResultMinor", t.result_minor);
  }
  if (!t.result_message.empty()) {
    SetAttribute(element, "ResultMessage", t.result_message);
  }
  if (!t.id.empty()) {
    SetAttribute(element, "Id", t.id);
  }
  if (!t.reference.empty()) {
    SetAttribute(element, "Reference", t.reference);
  }
}

TAck ReadTAck(const xmlNode* element) {
  TAck t;
  t.issuer = Attr(element, "Issuer");
  t.applies_to = Attr(element, "AppliesTo");
  t.result_major = Attr(element, "ResultMajor");
  t.result_minor = Attr(element, "ResultMinor");
  t.result_message = Attr(element, "ResultMessage");
  t.id = Attr(element, "Id");
  t.reference = Attr(element, "Reference");
  t.content = TrimmedContent(element);
  return t;
}

// The body payload (or the Body of a SOAP 1.1 envelope), parsed with default limits, with root
// gen:<root_name>, valid against the genasync XSD.
struct ParsedBody {
  XmlDocPtr doc;
  xmlNode* root = nullptr;
};

StatusOr<ParsedBody> ParseBody(std::string_view bytes, const SchemaRegistry& schemas,
                               const char* root_name, const XmlLimits& limits = XmlLimits()) {
  const std::string what = std::string("the genasync ") + root_name;
  StatusOr<XmlDocPtr> parsed = ParseUntrustedXmlNamed(bytes, limits, what);
  if (!parsed.ok()) {
    return parsed.status().code() == StatusCode::kTooLarge
               ? parsed.status()
               : Status::Malformed(parsed.status().message());
  }
  ParsedBody b;
  b.doc = std::move(parsed).value();
  PSL_RETURN_IF_ERROR(UnwrapSoapAnswer(bytes, limits, "the insurer", &b.doc, nullptr));
  b.root = xmlDocGetRootElement(b.doc.get());
  if (!IsElement(b.root, kGenAsyncNs, root_name)) {
    return Status::Invalid("the document is not a " + std::string(root_name) + " (" + kGenAsyncNs +
                           ")");
  }
  std::vector<Problem> problems;
  if (!schemas.ValidateEnvelope(EnvelopeSchema::kGenAsync, b.doc.get(), "envelope", &problems)) {
    return Status::Invalid(what +
                           " does not pass the genasync schema: " + DescribeFirstProblem(problems));
  }
  return b;
}

StatusOr<std::string> Serialise(const NewDoc& d) {
  return SerialiseXml(d.doc.get());
}

// Parses a document this file just built (trusted shape) and appends a copy of its root to
// `parent`.
Status AppendSigned(xmlNode* parent, const std::string& xml) {
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(xml, XmlLimits(), nullptr);
  if (!doc.ok()) {
    return Status::Internal("cannot re-read a signed element: " + doc.status().message());
  }
  xmlNode* copy = xmlDocCopyNode(xmlDocGetRootElement(doc->get()), parent->doc, 1);
  if (copy == nullptr || xmlAddChild(parent, copy) == nullptr) {
    if (copy != nullptr) {
      xmlFreeNode(copy);
    }
    return Status::Internal("cannot copy a signed element");
  }
  xmlReconciliateNs(parent->doc, copy);
  return Status::Ok();
}

// Signs the element `e` holds (Xades-t, SignGenAsyncElement) and appends the signed copy to
// `parent`.
Status SignAndAppend(xmlNode* parent, const NewDoc& e, const SigningIdentity& insurer,
                     const Clock& clock) {
  StatusOr<std::string> unsigned_xml = Serialise(e);
  if (!unsigned_xml.ok()) {
    return unsigned_xml.status();
  }
  StatusOr<std::string> signed_xml = SignGenAsyncElement(*unsigned_xml, insurer, clock);
  if (!signed_xml.ok()) {
    return signed_xml.status();
  }
  return AppendSigned(parent, *signed_xml);
}

// The return file's error record (see the header).
constexpr std::size_t kReturnRecordChecksumAt = 348;

std::string Pad(std::string s, std::size_t width) {
  s.resize(width, ' ');
  return s;
}

std::string ZeroPad(std::uint64_t n, std::size_t width) {
  std::string s = std::to_string(n);
  return s.size() >= width ? s : std::string(width - s.size(), '0') + s;
}

}  // namespace

std::string TAckAppliesTo(std::string_view input_reference) {
  return std::string(kTAckAppliesToPrefix) + std::string(input_reference);
}

std::string TAckContentFor(std::string_view request_bytes, std::string_view result_major) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), result_major.data(), static_cast<int>(result_major.size()),
           reinterpret_cast<const unsigned char*>(request_bytes.data()), request_bytes.size(), mac,
           &length) == nullptr) {
    return "";
  }
  return EncodeBase64(std::string_view(reinterpret_cast<const char*>(mac), length));
}

std::string GenAsyncHashValue(std::string_view bytes_as_sent) {
  return EncodeBase64(Sha256(bytes_as_sent));
}

StatusOr<std::string> MailboxContentHash(std::string_view content) {
  StatusOr<std::string> deflated = DeflateRaw(content);
  if (!deflated.ok()) {
    return deflated.status();
  }
  return GenAsyncHashValue(*deflated);
}

bool TAck::success() const {
  return result_major == kTAckSuccess;
}

StatusOr<std::string> BuildPostResponse(const TAck& tack) {
  PSL_RETURN_IF_ERROR(CheckTAck(tack));
  StatusOr<NewDoc> d = MakeDoc("postResponse", false);
  if (!d.ok()) {
    return d.status();
  }
  WriteTAck(AddElement(d->root, d->gen, "return"), tack);
  return Serialise(*d);
}

StatusOr<TAck> ParsePostResponse(std::string_view body_xml, const SchemaRegistry& schemas) {
  StatusOr<ParsedBody> b = ParseBody(body_xml, schemas, "postResponse");
  if (!b.ok()) {
    return b.status();
  }
  return ReadTAck(Child(b->root, kGenAsyncNs, "return"));
}

StatusOr<std::string> BuildGetRequest(const GetRequest& request, const Clock& /*clock*/) {
  if (request.origin_nihii.size() != 11 || !IsDigits(request.origin_nihii)) {
    return Status::Invalid("the get Origin must be an 11-digit NIHII");
  }
  for (const std::string& name : request.message_names) {
    if (name.empty() || HasBlank(name)) {
      return Status::Invalid("a message name must be non-empty without blanks");
    }
  }
  constexpr auto kMaxInt = static_cast<std::uint32_t>(std::numeric_limits<std::int32_t>::max());
  if (request.max_messages == 0 || request.max_messages > kMaxInt || request.max_tacks > kMaxInt) {
    return Status::Invalid("MsgQuery/Max must be 1 … 2147483647");
  }
  StatusOr<NewDoc> d = MakeDoc("get", true);
  if (!d.ok()) {
    return d.status();
  }
  AddOrigin(d->root, d->gen, d->c, request.origin_nihii, request.origin_quality,
            request.package_name, request.license_username, request.license_password);
  xmlNode* msg = AddElement(d->root, d->gen, "MsgQuery");
  SetAttribute(msg, "Include", "true");
  AddElement(msg, d->gen, "Max", std::to_string(request.max_messages));
  AddElement(msg, d->gen, "MessageNames", JoinList(request.message_names));
  xmlNode* tack = AddElement(d->root, d->gen, "TAckQuery");
  SetAttribute(tack, "Include", request.include_tacks ? "true" : "false");
  AddElement(tack, d->gen, "Max", std::to_string(request.max_tacks));
  return Serialise(*d);
}

namespace {

bool IncludeOf(const xmlNode* query) {
  if (!HasAttr(query, "Include")) {
    return true;  // schema default
  }
  const std::string v = TrimXmlSpace(Attr(query, "Include"));
  return v == "true" || v == "1";
}

std::uint32_t MaxOf(const xmlNode* query) {
  const xmlNode* max = Child(query, kGenAsyncNs, "Max");
  if (max == nullptr) {
    return 100;  // schema default
  }
  const std::string v = TrimmedContent(max);
  // xs:int, already schema-checked; negative counts as 0.
  const long long n = std::strtoll(v.c_str(), nullptr, 10);
  return n <= 0 ? 0 : static_cast<std::uint32_t>(n);
}

}  // namespace

StatusOr<GetRequest> ParseGetRequest(std::string_view body_xml, const SchemaRegistry& schemas) {
  StatusOr<ParsedBody> b = ParseBody(body_xml, schemas, "get");
  if (!b.ok()) {
    return b.status();
  }
  GetRequest r;
  const OriginFields o = ReadOrigin(Child(b->root, kGenAsyncNs, "Origin"));
  if (o.nihii.empty()) {
    return Status::Invalid("the get names no Origin/CareProvider/Nihii/Value (the mailbox owner)");
  }
  r.origin_nihii = o.nihii;
  r.origin_quality = o.quality;
  r.package_name = o.package_name;
  r.license_username = o.username;
  r.license_password = o.password;
  const xmlNode* msg = Child(b->root, kGenAsyncNs, "MsgQuery");
  r.max_messages = IncludeOf(msg) ? MaxOf(msg) : 0;
  r.message_names = SplitList(Content(Child(msg, kGenAsyncNs, "MessageNames")));
  const xmlNode* tack = Child(b->root, kGenAsyncNs, "TAckQuery");
  r.include_tacks = IncludeOf(tack);
  r.max_tacks = MaxOf(tack);
  return r;
}

std::string_view EfactReturnMessageType(EfactReturnKind kind) {
  switch (kind) {
    case EfactReturnKind::kAcknowledged:
      return kEfactAcknowledgedType;
    case EfactReturnKind::kRefused:
      return kEfactRefusedType;
    case EfactReturnKind::kRefusedBlocking:
      return kEfactRefusedBlockingType;
    case EfactReturnKind::kAcceptedWithErrors:
      return kEfactAcceptedWithErrorsType;
  }
  return kEfactAcknowledgedType;
}

std::string_view EfactReturnDecision(EfactReturnKind kind) {
  switch (kind) {
    case EfactReturnKind::kAcknowledged:
      return "accepted";
    case EfactReturnKind::kRefused:
    case EfactReturnKind::kRefusedBlocking:
      return "refused";
    case EfactReturnKind::kAcceptedWithErrors:
      return "accepted-with-errors";
  }
  return "accepted";
}

bool EfactReturnKindFromName(std::string_view name, EfactReturnKind* kind) {
  if (name == "accepted" || name == "acknowledged" || name == kEfactAcknowledgedType) {
    *kind = EfactReturnKind::kAcknowledged;
  } else if (name == "refused" || name == kEfactRefusedType) {
    *kind = EfactReturnKind::kRefused;
  } else if (name == "refused-blocking" || name == kEfactRefusedBlockingType) {
    *kind = EfactReturnKind::kRefusedBlocking;
  } else if (name == "accepted-with-errors" || name == kEfactAcceptedWithErrorsType) {
    *kind = EfactReturnKind::kAcceptedWithErrors;
  } else {
    return false;
  }
  return true;
}

namespace {

Status CheckReturnErrors(EfactReturnKind kind, const std::vector<EfactReturnError>& errors) {
  if (kind == EfactReturnKind::kAcknowledged && !errors.empty()) {
    return Status::Invalid("a 931000 acknowledgement carries no error record");
  }
  if ((kind == EfactReturnKind::kRefusedBlocking || kind == EfactReturnKind::kAcceptedWithErrors) &&
      errors.empty()) {
    return Status::Invalid("a " + std::string(EfactReturnMessageType(kind)) +
                           " return needs at least one error record");
  }
  return Status::Ok();
}

StatusOr<std::string> BuildEfactReturnImpl(const EfactFile& original, EfactReturnKind kind,
                                           const std::vector<EfactReturnError>& errors,
                                           std::optional<std::uint64_t> return_reference);

}  // namespace

StatusOr<std::string> BuildEfactReturn(const EfactFile& original, EfactReturnKind kind,
                                       const std::vector<EfactReturnError>& errors) {
  return BuildEfactReturnImpl(original, kind, errors, std::nullopt);
}

StatusOr<std::string> BuildEfactReturn(const EfactFile& original, EfactReturnKind kind,
                                       const std::vector<EfactReturnError>& errors,
                                       std::uint64_t return_reference) {
  if (return_reference > 99'999'999'999'999ULL) {
    return Status::Invalid("the return reference has at most 14 digits");
  }
  return BuildEfactReturnImpl(original, kind, errors, return_reference);
}

namespace {

StatusOr<std::string> BuildEfactReturnImpl(const EfactFile& original, EfactReturnKind kind,
                                           const std::vector<EfactReturnError>& errors,
                                           std::optional<std::uint64_t> return_reference) {
  PSL_RETURN_IF_ERROR(CheckReturnErrors(kind, errors));
  for (const EfactReturnError& e : errors) {
    if (e.code.size() != 6 || !IsDigits(e.code)) {
      return Status::Invalid("an eFact error code has 6 digits");
    }
    if (e.zone.size() > 4 ||
        !std::all_of(e.zone.begin(), e.zone.end(), [](char c) { return c > ' ' && c < 127; })) {
      return Status::Invalid("an error record's zone has at most 4 printable characters");
    }
    if (e.record < 0 || e.record > 999999) {
      return Status::Invalid("an error record's record ordinal must be 0 … 999999");
    }
  }
  EfactRecord s200 = original.segment200;
  PSL_RETURN_IF_ERROR(s200.SetText("200", EfactReturnMessageType(kind)));
  if (return_reference) {
    PSL_RETURN_IF_ERROR(s200.SetNumber("205", *return_reference));
  }
  std::string out = s200.text() + original.segment300.text();
  for (const EfactReturnError& e : errors) {
    std::string record = std::string(kEfactErrorRecordType) +
                         ZeroPad(static_cast<std::uint64_t>(e.record), 6) + Pad(e.zone, 4) + e.code;
    record.resize(kReturnRecordChecksumAt, ' ');
    record += ZeroPad(static_cast<std::uint64_t>(EfactRecordChecksum(record)), 2);
    out += record;
  }
  return out;
}

}  // namespace

StatusOr<EfactReturn> ParseEfactReturn(std::string_view bytes) {
  const auto header = static_cast<std::size_t>(kEfactHeaderLength);
  const auto length = static_cast<std::size_t>(kEfactRecordLength);
  if (std::any_of(bytes.begin(), bytes.end(),
                  [](char c) { return static_cast<unsigned char>(c) >= 128 || c < ' '; })) {
    return Status::Malformed("the eFact return file holds a non-ASCII or control character");
  }
  if (bytes.size() < header || (bytes.size() - header) % length != 0) {
    return Status::Malformed(
        "the eFact return file is not a 227-character header followed by 350-character records");
  }
  EfactReturn r;
  r.message_type = std::string(bytes.substr(0, 6));
  if (r.message_type == kEfactAcknowledgedType) {
    r.kind = EfactReturnKind::kAcknowledged;
  } else if (r.message_type == kEfactRefusedType) {
    r.kind = EfactReturnKind::kRefused;
  } else if (r.message_type == kEfactRefusedBlockingType) {
    r.kind = EfactReturnKind::kRefusedBlocking;
  } else if (r.message_type == kEfactAcceptedWithErrorsType) {
    r.kind = EfactReturnKind::kAcceptedWithErrors;
  } else {
    return Status::Invalid(
        "segment 200 zone 200 is not a return message type (931000, 920999, 920099, 920098)");
  }
  // Segment 200: 200(6) 2001(2) 201(2) 2011(2) 202(2) 2021(2) 203(2) 2031(2) 204(14) …
  r.original_reference = std::string(bytes.substr(20, 14));
  if (!IsDigits(r.original_reference)) {
    return Status::Invalid("segment 200 zone 204 (the original file's reference) is not numeric");
  }
  r.return_reference = std::string(bytes.substr(36, 14));
  r.is_test = bytes.substr(12, 2) == "92";
  int ordinal = 0;
  for (std::size_t at = header; at < bytes.size(); at += length) {
    ++ordinal;
    const std::string_view rec = bytes.substr(at, length);
    const std::string where = "return record " + std::to_string(ordinal);
    if (rec.substr(0, 2) != kEfactErrorRecordType) {
      return Status::Invalid(where + " is not an error record (type 93)");
    }
    const std::string_view checksum = rec.substr(kReturnRecordChecksumAt, 2);
    if (!IsDigits(checksum) ||
        std::stoi(std::string(checksum)) != EfactRecordChecksum(rec.substr(0, 348))) {
      return Status::Invalid(where + " has a wrong checksum");
    }
    EfactReturnError e;
    const std::string_view number = rec.substr(2, 6);
    if (!IsDigits(number)) {
      return Status::Invalid(where + ": the record ordinal is not numeric");
    }
    e.record = std::stoi(std::string(number));
    e.zone = TrimXmlSpace(rec.substr(8, 4));
    e.code = std::string(rec.substr(12, 6));
    if (!IsDigits(e.code)) {
      return Status::Invalid(where + ": the error code is not 6 digits");
    }
    r.errors.push_back(std::move(e));
  }
  PSL_RETURN_IF_ERROR(CheckReturnErrors(r.kind, r.errors));
  return r;
}

StatusOr<std::string> BuildGetResponse(const std::vector<MailboxMessageSpec>& messages,
                                       const std::vector<TAck>& tacks,
                                       const SigningIdentity& insurer, const Clock& clock) {
  StatusOr<NewDoc> d = MakeDoc("getResponse", true);
  if (!d.ok()) {
    return d.status();
  }
  xmlNode* ret = AddElement(d->root, d->gen, "return");
  SetAttribute(ret, "MsgCount", std::to_string(messages.size()));
  SetAttribute(ret, "TAckCount", std::to_string(tacks.size()));
  for (const MailboxMessageSpec& m : messages) {
    if (m.message_name.empty() || m.input_reference.empty()) {
      return Status::Invalid("a mailbox message needs a message name and an input reference");
    }
    if (!m.blob_id.empty() && !IsNcName(m.blob_id)) {
      return Status::Invalid("Detail/@Id must be an NCName");
    }
    StatusOr<std::string> deflated = DeflateRaw(m.content);
    if (!deflated.ok()) {
      return deflated.status();
    }
    StatusOr<NewDoc> e = MakeDoc("MsgResponse", true);
    if (!e.ok()) {
      return e.status();
    }
    xmlNode* output = AddElement(e->root, e->gen, "CommonOutput");
    AddElement(output, e->c, "InputReference", m.input_reference);
    if (!m.nip_reference.empty()) {
      AddElement(output, e->c, "NIPReference", m.nip_reference);
    }
    if (!m.output_reference.empty()) {
      AddElement(output, e->c, "OutputReference", m.output_reference);
    }
    const std::string b64 = EncodeBase64(*deflated);
    xmlNode* detail = AddElement(e->root, e->gen, "Detail", b64);
    SetAttribute(detail, "ContentType", "text/plain");
    SetAttribute(detail, "ContentEncoding", "deflate");
    SetAttribute(detail, "MessageName", m.message_name);
    SetAttribute(detail, "HashValue", GenAsyncHashValue(*deflated));
    SetAttribute(detail, "Id", m.blob_id.empty() ? "_" + RandomUuid() : m.blob_id);
    PSL_RETURN_IF_ERROR(SignAndAppend(ret, *e, insurer, clock));
  }
  for (TAck t : tacks) {
    if (t.id.empty()) {
      t.id = "_" + RandomUuid();
    }
    PSL_RETURN_IF_ERROR(CheckTAck(t));
    StatusOr<NewDoc> e = MakeDoc("TAckResponse", false);
    if (!e.ok()) {
      return e.status();
    }
    WriteTAck(AddElement(e->root, e->gen, "TAck"), t);
    PSL_RETURN_IF_ERROR(SignAndAppend(ret, *e, insurer, clock));
  }
  return Serialise(*d);
}

namespace {

// One MsgResponse, checked on its own; the reason when it fails.
// `element` serialised as a document of its own, and the subject of the Xades-t it carries, which
// must verify.
struct VerifiedElement {
  std::string document;
  std::string signer_subject;
};

StatusOr<VerifiedElement> VerifyAsDocument(const xmlNode* element, const char* what,
                                           X509_STORE* trust, const Clock& clock) {
  XmlDocPtr own = CopyAsDocument(element);
  if (own == nullptr) {
    return Status::Internal(std::string("cannot copy the ") + what);
  }
  StatusOr<std::string> document = SerialiseXml(own.get());
  if (!document.ok()) {
    return document.status();
  }
  StatusOr<VerifiedSignature> verified = VerifyGenAsyncElement(*document, trust, clock);
  if (!verified.ok()) {
    return Status(verified.status().code(),
                  "Xades-t does not verify: " + verified.status().message());
  }
  return VerifiedElement{std::move(document).value(), verified->signer_subject};
}

StatusOr<MailboxMessage> ReadMessage(const xmlNode* response, X509_STORE* trust, const Clock& clock,
                                     std::size_t max_bytes) {
  StatusOr<VerifiedElement> verified = VerifyAsDocument(response, "MsgResponse", trust, clock);
  if (!verified.ok()) {
    return verified.status();
  }
  MailboxMessage m;
  m.document = std::move(verified->document);
  m.signer_subject = std::move(verified->signer_subject);
  const xmlNode* output = Child(response, kGenAsyncNs, "CommonOutput");
  m.input_reference = TrimmedContent(Child(output, kCommonNs, "InputReference"));
  m.nip_reference = TrimmedContent(Child(output, kCommonNs, "NIPReference"));
  m.output_reference = TrimmedContent(Child(output, kCommonNs, "OutputReference"));
  const xmlNode* detail = Child(response, kGenAsyncNs, "Detail");
  m.message_name = Attr(detail, "MessageName");
  if (Attr(detail, "ContentType") != "text/plain") {
    return Status::Invalid("Detail/@ContentType must be text/plain for an eFact return");
  }
  const std::string encoding =
      HasAttr(detail, "ContentEncoding") ? Attr(detail, "ContentEncoding") : "deflate";
  if (encoding != "deflate" && encoding != "none") {
    return Status::Invalid("Detail/@ContentEncoding must be none or deflate");
  }
  std::string text = Content(detail);
  std::erase_if(text, [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
  StatusOr<std::string> sent = DecodeBase64Of(text, "Detail");
  if (!sent.ok()) {
    return sent.status();
  }
  m.hash_value = Attr(detail, "HashValue");
  if (m.hash_value.empty()) {
    return Status::Invalid("Detail has no HashValue (nothing to confirm it with)");
  }
  if (m.hash_value != GenAsyncHashValue(*sent)) {
    return Status::Invalid("Detail/@HashValue is not the SHA-256 of the Detail content");
  }
  if (encoding == "deflate") {
    StatusOr<std::string> inflated = InflateRaw(*sent, max_bytes);
    if (!inflated.ok()) {
      return Status(inflated.status().code() == StatusCode::kTooLarge ? StatusCode::kTooLarge
                                                                      : StatusCode::kInvalid,
                    "Detail does not inflate: " + inflated.status().message());
    }
    m.content = std::move(inflated).value();
  } else {
    m.content = std::move(sent).value();
  }
  if (m.input_reference.empty()) {
    return Status::Invalid("CommonOutput has no InputReference");
  }
  return m;
}

StatusOr<MailboxTAck> ReadTAckResponse(const xmlNode* response, X509_STORE* trust,
                                       const Clock& clock) {
  StatusOr<VerifiedElement> verified = VerifyAsDocument(response, "TAckResponse", trust, clock);
  if (!verified.ok()) {
    return verified.status();
  }
  MailboxTAck t;
  t.tack = ReadTAck(Child(response, kGenAsyncNs, "TAck"));
  t.content = t.tack.content;
  t.signer_subject = std::move(verified->signer_subject);
  return t;
}

}  // namespace

StatusOr<GetResponse> ParseGetResponse(std::string_view body_xml, const SchemaRegistry& schemas,
                                       X509_STORE* trust, const Clock& clock,
                                       const XmlLimits& limits) {
  if (trust == nullptr) {
    return Status::FailedPrecondition("no trust store to verify the insurer's messages against");
  }
  StatusOr<ParsedBody> b = ParseBody(body_xml, schemas, "getResponse", limits);
  if (!b.ok()) {
    return b.status();
  }
  GetResponse out;
  xmlNode* ret = Child(b->root, kGenAsyncNs, "return");
  int index = 0;
  for (const xmlNode* response : Children(ret, kGenAsyncNs, "MsgResponse")) {
    ++index;
    StatusOr<MailboxMessage> m = ReadMessage(response, trust, clock, limits.max_bytes);
    if (!m.ok()) {
      if (m.status().code() == StatusCode::kInternal) {
        return m.status();
      }
      out.rejected.push_back("MsgResponse " + std::to_string(index) + ": " + m.status().message());
      continue;
    }
    out.messages.push_back(std::move(m).value());
  }
  index = 0;
  for (const xmlNode* response : Children(ret, kGenAsyncNs, "TAckResponse")) {
    ++index;
    StatusOr<MailboxTAck> t = ReadTAckResponse(response, trust, clock);
    if (!t.ok()) {
      if (t.status().code() == StatusCode::kInternal) {
        return t.status();
      }
      out.rejected.push_back("TAckResponse " + std::to_string(index) + ": " + t.status().message());
      continue;
    }
    out.tacks.push_back(std::move(t).value());
  }
  return out;
}

StatusOr<std::string> BuildConfirmRequest(const ConfirmRequest& request, const Clock& /*clock*/) {
  if (request.origin_nihii.size() != 11 || !IsDigits(request.origin_nihii)) {
    return Status::Invalid("the confirm Origin must be an 11-digit NIHII");
  }
  for (const auto* list : {&request.msg_hash_values, &request.tack_contents}) {
    for (const std::string& v : *list) {
      if (v.empty() || HasBlank(v) || !DecodeBase64(v).ok()) {
        return Status::Invalid("a confirmed hash or TAck content must be base64 without blanks");
      }
    }
  }
  StatusOr<NewDoc> d = MakeDoc("confirm", true);
  if (!d.ok()) {
    return d.status();
  }
  AddOrigin(d->root, d->gen, d->c, request.origin_nihii, request.origin_quality,
            request.package_name, request.license_username, request.license_password);
  if (!request.msg_hash_values.empty()) {
    AddElement(d->root, d->gen, "MsgHashValues", JoinList(request.msg_hash_values));
  }
  if (!request.tack_contents.empty()) {
    AddElement(d->root, d->gen, "TAckContents", JoinList(request.tack_contents));
  }
  return Serialise(*d);
}

StatusOr<ConfirmRequest> ParseConfirmRequest(std::string_view body_xml,
                                             const SchemaRegistry& schemas) {
  StatusOr<ParsedBody> b = ParseBody(body_xml, schemas, "confirm");
  if (!b.ok()) {
    return b.status();
  }
  ConfirmRequest r;
  const OriginFields o = ReadOrigin(Child(b->root, kGenAsyncNs, "Origin"));
  if (o.nihii.empty()) {
    return Status::Invalid(
        "the confirm names no Origin/CareProvider/Nihii/Value (the mailbox owner)");
  }
  r.origin_nihii = o.nihii;
  r.origin_quality = o.quality;
  r.package_name = o.package_name;
  r.license_username = o.username;
  r.license_password = o.password;
  r.msg_hash_values = SplitList(Content(Child(b->root, kGenAsyncNs, "MsgHashValues")));
  r.tack_contents = SplitList(Content(Child(b->root, kGenAsyncNs, "TAckContents")));
  return r;
}

StatusOr<std::string> BuildConfirmResponse() {
  StatusOr<NewDoc> d = MakeDoc("confirmResponse", false);
  if (!d.ok()) {
    return d.status();
  }
  return Serialise(*d);
}

Status ParseConfirmResponse(std::string_view body_xml, const SchemaRegistry& schemas) {
  StatusOr<ParsedBody> b = ParseBody(body_xml, schemas, "confirmResponse");
  return b.ok() ? Status::Ok() : b.status();
}

}  // namespace psl::codecs
