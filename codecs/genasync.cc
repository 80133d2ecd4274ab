#include "codecs/genasync.h"

#include <algorithm>
#include <map>
#include <utility>

#include "codecs/blob.h"
#include "codecs/codec_util.h"
#include "codecs/xml_util.h"

namespace psl::codecs {
namespace {

Problem FileProblem(std::string code, std::string message, int ordinal, std::string path) {
  Problem p;
  p.code = std::move(code);
  p.message = std::move(message);
  p.line = ordinal;
  p.column = ordinal > 0 ? 1 : 0;
  p.path = std::move(path);
  p.document = "efact";
  return p;
}

// Decodes the Detail blob into the file bytes. Appends problems and returns nullopt on failure;
// *malformed tells whether the failure is about undecodable bytes (vs a refused attribute).
std::optional<std::string> DecodeBlob(const xmlNode* detail, std::size_t max_bytes,
                                      std::string* encoding, std::vector<Problem>* problems,
                                      bool* malformed) {
  bool refused = false;
  if (Attr(detail, "ContentType") != "text/plain") {
    problems->push_back(
        EnvelopeProblemAt("PSL-BLOB-CONTENTTYPE",
                          "Detail/@ContentType must be text/plain for an eFact file", detail));
    refused = true;
  }
  // The schema default when the attribute is absent is "deflate" (types:Blob).
  if (!ReadBlobEncoding(detail, encoding, problems)) {
    refused = true;
  }
  if (refused) {
    return std::nullopt;
  }
  std::optional<std::string> content = DecodeBlobContent(detail, *encoding, max_bytes, problems);
  *malformed = !content.has_value();
  return content;
}

// What the gateway rules need, read straight from the 350-character records (no checks): so the
// sender and destination rules report even when ParseEfact refuses the file.
struct RawFacts {
  std::string sender_nihii;  // record 10 zone 14 without its leading zero
  int sender_ordinal = 0;
  // Record 20 zone 18 → ordinal of the first record 20 naming it.
  std::map<std::string, int> destinations;
  int first_mediprima25 = 0;  // ordinal of the first record 25, 0 when none
};

RawFacts ScanRecords(std::string_view bytes) {
  RawFacts facts;
  const auto header = static_cast<std::size_t>(kEfactHeaderLength);
  const auto length = static_cast<std::size_t>(kEfactRecordLength);
  int ordinal = 0;
  for (std::size_t at = header; bytes.size() >= length && at <= bytes.size() - length;
       at += length) {
    ++ordinal;
    const std::optional<EfactRecord> r = EfactRecord::FromText(bytes.substr(at, length));
    if (!r) {
      continue;
    }
    if (r->type() == EfactRecordType::kSender10 && facts.sender_ordinal == 0) {
      const std::string_view zone = r->Zone("14");
      facts.sender_nihii = std::string(zone.empty() ? zone : zone.substr(1));
      facts.sender_ordinal = ordinal;
    } else if (r->type() == EfactRecordType::kInvoice20) {
      facts.destinations.emplace(std::string(r->Zone("18")), ordinal);
    } else if (r->type() == EfactRecordType::kMediPrima25 && facts.first_mediprima25 == 0) {
      facts.first_mediprima25 = ordinal;
    }
  }
  return facts;
}

// The insurer (WS-Addressing `To` code) a per-mutuality destination belongs to: 690 for
// MediPrima, else its union ("319" → "300").
std::string InsurerOf(std::string_view destination) {
  if (destination == kMediPrimaDestination) {
    return std::string(kMediPrimaDestination);
  }
  if (destination.size() != 3) {
    return std::string(destination);
  }
  return std::string(1, destination[0]) + "00";
}

// Origin/CareProvider/Nihii/Value and Origin/Sender/Nihii/Value must name the file's sender.
void CheckSender(const xmlNode* root, const RawFacts& facts, std::vector<Problem>* problems) {
  const xmlNode* origin =
      Child(Child(root, kGenAsyncNamespace, "CommonInput"), kCinCommonNamespace, "Origin");
  if (origin == nullptr || facts.sender_nihii.empty()) {
    return;
  }
  for (const char* party : {"CareProvider", "Sender"}) {
    const xmlNode* value =
        Child(Child(Child(origin, kCinCommonNamespace, party), kCinCommonNamespace, "Nihii"),
              kCinCommonNamespace, "Value");
    if (value == nullptr) {
      continue;
    }
    if (TrimmedContent(value) != facts.sender_nihii) {
      problems->push_back(EnvelopeProblemAt(
          "PSL-GENASYNC-SENDER",
          std::string("CommonInput/Origin/") + party +
              "/Nihii/Value must be the NIHII of the eFact file's sender (record 10 zone 14)",
          value));
    }
  }
}

// The destination rules; returns the insurer when exactly one is named.
std::string CheckDestination(std::string_view message_name, const RawFacts& facts,
                             std::vector<Problem>* problems) {
  if (facts.destinations.empty()) {
    problems->push_back(FileProblem("PSL-GENASYNC-DESTINATION",
                                    "the eFact file has no invoice (record 20) naming a "
                                    "destination mutuality (zone 18): the insurer cannot be "
                                    "determined",
                                    0, "record 20 zone 18"));
    return "";
  }
  std::map<std::string, int> insurers;  // insurer → first record naming it
  for (const auto& [destination, ordinal] : facts.destinations) {
    const std::string insurer = InsurerOf(destination);
    auto [it, inserted] = insurers.emplace(insurer, ordinal);
    if (!inserted) {
      it->second = std::min(it->second, ordinal);
    }
  }
  const bool mediprima = message_name == kMediPrimaMessageName;
  if (mediprima) {
    for (const auto& [insurer, ordinal] : insurers) {
      if (insurer != kMediPrimaDestination) {
        problems->push_back(FileProblem("PSL-GENASYNC-MEDIPRIMA",
                                        "an ECM-HCPFAC (urgent medical aid) file must send every "
                                        "invoice to destination 690 (record 20 zone 18)",
                                        ordinal, "record 20 zone 18"));
      }
    }
  } else {
    if (const auto it = insurers.find(std::string(kMediPrimaDestination)); it != insurers.end()) {
      problems->push_back(FileProblem("PSL-GENASYNC-MEDIPRIMA",
                                      "invoices for destination 690 (urgent medical aid) must be "
                                      "sent with MessageName ECM-HCPFAC",
                                      it->second, "record 20 zone 18"));
    }
    if (facts.first_mediprima25 != 0) {
      problems->push_back(FileProblem("PSL-GENASYNC-MEDIPRIMA",
                                      "a record 25 (urgent medical aid) must be sent with "
                                      "MessageName ECM-HCPFAC",
                                      facts.first_mediprima25, "record 25"));
    }
  }
  if (insurers.size() > 1) {
    std::string list;
    for (const auto& entry : insurers) {
      list += (list.empty() ? "" : ", ") + entry.first;
    }
    problems->push_back(FileProblem(
        "PSL-GENASYNC-MULTI-INSURER",
        "the batch's invoices target several insurers (" + list +
            "); send one file per insurer: the gateway refuses a mixed batch rather than split it",
        std::max_element(insurers.begin(), insurers.end(),
                         [](const auto& a, const auto& b) { return a.second < b.second; })
            ->second,
        "record 20 zone 18"));
    return "";
  }
  return insurers.begin()->first;
}

Status Summarise(StatusCode code, const std::vector<Problem>& problems) {
  return SummariseProblems(code, problems, "the genasync post");
}

}  // namespace

GenAsyncCodec::GenAsyncCodec(const SchemaRegistry& schemas, XmlLimits limits)
    : schemas_(schemas), limits_(limits) {}

bool GenAsyncCodec::IsGenAsync(const xmlNode* root) {
  return root != nullptr && root->type == XML_ELEMENT_NODE && root->ns != nullptr &&
         root->ns->href != nullptr && FromXmlChar(root->ns->href) == kGenAsyncNamespace;
}

StatusOr<GenAsyncPost> GenAsyncCodec::Decode(std::string_view bytes,
                                             ValidationReport* report) const {
  StatusOr<XmlDocPtr> doc = ParseEnvelopeReporting(bytes, limits_, &report->problems);
  if (!doc.ok()) {
    return doc.status();
  }
  return DecodeParsed(std::move(doc).value(), report);
}

StatusOr<GenAsyncPost> GenAsyncCodec::DecodeParsed(XmlDocPtr envelope,
                                                   ValidationReport* report) const {
  std::vector<Problem>& problems = report->problems;
  const xmlNode* root = xmlDocGetRootElement(envelope.get());
  if (!IsGenAsync(root)) {
    problems.push_back(EnvelopeProblemAt(
        "PSL-FLOW-UNKNOWN",
        "the root element must be post in namespace " + std::string(kGenAsyncNamespace), root));
    return Summarise(StatusCode::kInvalid, problems);
  }
  report->kind = "claim";
  report->flow = "efact";
  if (!IsElement(root, kGenAsyncNamespace, "post")) {
    problems.push_back(EnvelopeProblemAt("PSL-GENASYNC-OPERATION",
                                         "only the genasync post request is accepted from a "
                                         "practice (get and confirm are the gateway's own calls to "
                                         "the insurers)",
                                         root));
    return Summarise(StatusCode::kInvalid, problems);
  }
  report->operation = "post";

  GenAsyncPost post;
  (void)schemas_.ValidateEnvelope(EnvelopeSchema::kGenAsync, envelope.get(), "envelope", &problems);
  post.input_reference = TrimmedContent(
      Child(Child(root, kGenAsyncNamespace, "CommonInput"), kCinCommonNamespace, "InputReference"));

  bool malformed = false;
  // By namespace: the Detail decoded here must be the very element a signature covers.
  const xmlNode* detail = Child(root, kGenAsyncNamespace, "Detail");
  std::optional<std::string> bytes;
  if (detail != nullptr) {
    post.blob_id = Attr(detail, "Id");
    post.message_name = Attr(detail, "MessageName");
    if (post.message_name == kMediPrimaMessageName) {
      report->kind = "amu";
    }
    if (post.message_name != kHcpfacMessageName && post.message_name != kMediPrimaMessageName) {
      problems.push_back(
          EnvelopeProblemAt("PSL-GENASYNC-MESSAGENAME",
                            "Detail/@MessageName must be HCPFAC (third-party-payer "
                            "invoicing) or ECM-HCPFAC (urgent medical aid invoicing)",
                            detail));
    } else {
      bytes = DecodeBlob(detail, limits_.max_bytes, &post.content_encoding, &problems, &malformed);
    }
  }

  std::optional<EfactFile> file;
  if (bytes) {
    StatusOr<EfactFile> parsed = ParseEfact(*bytes, &problems);
    if (parsed.ok()) {
      file = std::move(parsed).value();
    } else if (parsed.status().code() == StatusCode::kMalformed) {
      malformed = true;
    }
    const RawFacts facts = ScanRecords(*bytes);
    CheckSender(root, facts, &problems);
    post.destination = CheckDestination(post.message_name, facts, &problems);
    post.sender_nihii = facts.sender_nihii;
  }

  if (HasErrors(problems) || !file) {
    if (!HasErrors(problems)) {
      problems.push_back(EnvelopeProblemAt("PSL-GENASYNC-DETAIL", "the post has no Detail", root));
    }
    return Summarise(malformed ? StatusCode::kMalformed : StatusCode::kInvalid, problems);
  }
  post.destination_mutualities = file->Destinations();
  post.is_test = file->IsTest();
  post.record_count = file->records.size();
  for (const EfactRecord& r : file->records) {
    if (r.type() == EfactRecordType::kInvoice20) {
      ++post.invoice_count;
    } else if (r.type() == EfactRecordType::kAct50) {
      ++post.act_count;
    }
  }
  post.total_amount = file->TotalAmount().value_or(0);
  const xmlNode* xades = Child(root, kGenAsyncNamespace, "Xades-t");
  post.has_xades = xades != nullptr && !Content(xades).empty();
  post.file = std::move(*file);
  post.envelope = std::move(envelope);
  return post;
}

}  // namespace psl::codecs
