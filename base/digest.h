// SHA-256 and lowercase hex, the digests the gateway records (schema files, bearer tokens) and
// signs (XAdES CertDigest). Pure functions; thread-safe.
#ifndef PSL_BASE_DIGEST_H_
#define PSL_BASE_DIGEST_H_

#include <string>
#include <string_view>

namespace psl {

// Two lowercase hex digits per byte of `bytes`, most significant nibble first.
std::string HexEncode(std::string_view bytes);

// 0..15 for a hex digit (either case), -1 for anything else.
int HexDigitValue(char c);

// Decodes pairs of hex digits (either case) into *out. False, with *out unspecified, for an odd
// length or a character that is not a hex digit.
bool HexDecode(std::string_view hex, std::string* out);

// The 32-byte SHA-256 of `bytes`; "" if OpenSSL cannot compute it (never seen in practice).
std::string Sha256(std::string_view bytes);

// HexEncode(Sha256(bytes)): 64 lowercase hex digits, or "" if OpenSSL cannot compute it.
std::string Sha256Hex(std::string_view bytes);

}  // namespace psl

#endif  // PSL_BASE_DIGEST_H_
