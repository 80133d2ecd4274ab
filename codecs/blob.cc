#include "codecs/blob.h"

#include <utility>

#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/xml_parser.h"
#include "codecs/xml_util.h"

namespace psl::codecs {

Problem EnvelopeProblemAt(std::string code, std::string message, const xmlNode* node) {
  Problem p;
  p.code = std::move(code);
  p.message = std::move(message);
  p.line = node != nullptr ? Line(node) : 0;
  p.path = node != nullptr ? NodePath(node) : "/";
  p.document = "envelope";
  return p;
}

bool ReadBlobEncoding(const xmlNode* detail, std::string* encoding,
                      std::vector<Problem>* problems) {
  *encoding = HasAttr(detail, "ContentEncoding") ? Attr(detail, "ContentEncoding") : "deflate";
  if (*encoding == "none" || *encoding == "deflate") {
    return true;
  }
  problems->push_back(EnvelopeProblemAt(
      "PSL-BLOB-ENCODING", "Detail/@ContentEncoding must be none or deflate (deflate when absent)",
      detail));
  return false;
}

std::optional<std::string> DecodeBlobContent(const xmlNode* detail, std::string_view encoding,
                                             std::size_t max_bytes,
                                             std::vector<Problem>* problems) {
  StatusOr<std::string> raw = DecodeBase64(Content(detail));
  if (!raw.ok()) {
    problems->push_back(EnvelopeProblemAt(
        "PSL-BLOB-BASE64",
        "the Detail content must be base64 (A-Z a-z 0-9 + /, '=' padding only at the end)",
        detail));
    return std::nullopt;
  }
  if (encoding == "none") {
    if (raw->size() > max_bytes) {
      problems->push_back(EnvelopeProblemAt(
          "PSL-BLOB-SIZE", "the decoded Detail must not exceed the configured document size limit",
          detail));
      return std::nullopt;
    }
    return std::move(raw).value();
  }
  StatusOr<std::string> inflated = InflateRaw(*raw, max_bytes);
  if (inflated.ok()) {
    return std::move(inflated).value();
  }
  if (inflated.status().code() == StatusCode::kTooLarge) {
    problems->push_back(EnvelopeProblemAt(
        "PSL-BLOB-SIZE", "the inflated Detail must not exceed the configured document size limit",
        detail));
  } else {
    problems->push_back(EnvelopeProblemAt(
        "PSL-BLOB-DEFLATE",
        "the Detail content must be one complete raw deflate stream (RFC 1951, no zlib or gzip "
        "header) when ContentEncoding is deflate",
        detail));
  }
  return std::nullopt;
}

}  // namespace psl::codecs
