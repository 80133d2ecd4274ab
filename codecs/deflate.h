// Raw deflate (RFC 1951, no zlib or gzip header) as MyCareNet uses it for Blob content
// (Detail/@ContentEncoding "deflate", Java's Deflater(-1, nowrap=true)).
//
// InflateRaw is the decoder for untrusted blobs: it stops as soon as the output would pass
// `max_bytes`, so a deflate bomb costs at most that much memory and little time.
// Pure functions; thread-safe.
#ifndef PSL_CODECS_DEFLATE_H_
#define PSL_CODECS_DEFLATE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "base/status.h"

namespace psl::codecs {

// The bytes `deflated` inflates to. kTooLarge when they would exceed `max_bytes`; kMalformed
// when `deflated` is not exactly one complete raw deflate stream (bad data, truncated, or bytes
// after the end of the stream); kInternal when zlib cannot be set up. Messages never quote data.
StatusOr<std::string> InflateRaw(std::string_view deflated, std::size_t max_bytes);

// `bytes` compressed as one raw deflate stream at zlib's default level.
// kInternal only when zlib fails (out of memory).
StatusOr<std::string> DeflateRaw(std::string_view bytes);

}  // namespace psl::codecs

#endif  // PSL_CODECS_DEFLATE_H_
