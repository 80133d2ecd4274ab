// Base64 as MyCareNet carries it (Detail blobs, Xades, X509Certificate, DigestValue): the RFC 4648
// §4 alphabet with '=' padding, i.e. xs:base64Binary.
//
// Decoding is strict because what the gateway decodes is what it validates, signs and forwards:
// XML whitespace (space, tab, CR, LF) between characters is ignored (line-wrapped blobs), any
// other byte outside the alphabet, padding anywhere but at the end of the last quantum, and a
// length that is not a whole number of 4-character quanta are refused. Non-zero bits in the
// last character before the padding are accepted (RFC 4648 §3.5 leaves that to the decoder; the
// signature covers the decoded bytes, so the encoding's slack cannot change what is signed).
// Pure functions; thread-safe.
#ifndef PSL_CODECS_BASE64_H_
#define PSL_CODECS_BASE64_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace psl::codecs {

// `bytes` as padded base64 on one line (no line breaks).
std::string EncodeBase64(std::string_view bytes);

// The bytes `text` encodes. kInvalid when `text` is not strict base64 (see above); the message
// names the defect and the offset in `text`, never the text itself.
StatusOr<std::string> DecodeBase64(std::string_view text);

// DecodeBase64 for a value that the error message calls `what`: kInvalid "<what> is not valid
// base64 (<DecodeBase64's message>)".
StatusOr<std::string> DecodeBase64Of(std::string_view text, std::string_view what);

}  // namespace psl::codecs

#endif  // PSL_CODECS_BASE64_H_
