// The Detail blob shared by the MyCareNet request envelopes (commons BlobType, genasync
// types:Blob): its ContentEncoding and its content (strict base64, then raw deflate when the
// encoding says so), with the size cap applied before and while inflating. Each flow codec checks
// its own ContentType and other attributes, then calls these. Problems sit at the Detail element,
// document "envelope", and never quote the content. Pure functions; thread-safe.
#ifndef PSL_CODECS_BLOB_H_
#define PSL_CODECS_BLOB_H_

#include <libxml/tree.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/problem.h"

namespace psl::codecs {

// A problem at `node` (its line and path; "/" and line 0 for null), document "envelope".
Problem EnvelopeProblemAt(std::string code, std::string message, const xmlNode* node);

// Detail/@ContentEncoding, or the schema default "deflate" when absent. False (and a
// PSL-BLOB-ENCODING problem) for anything but none or deflate.
bool ReadBlobEncoding(const xmlNode* detail, std::string* encoding, std::vector<Problem>* problems);

// The decoded content of `detail` for `encoding` ("none" or "deflate"), at most `max_bytes`.
// nullopt after one problem: PSL-BLOB-BASE64, PSL-BLOB-SIZE (decoded or inflated beyond
// max_bytes) or PSL-BLOB-DEFLATE (not one complete raw deflate stream).
std::optional<std::string> DecodeBlobContent(const xmlNode* detail, std::string_view encoding,
                                             std::size_t max_bytes, std::vector<Problem>* problems);

}  // namespace psl::codecs

#endif  // PSL_CODECS_BLOB_H_
