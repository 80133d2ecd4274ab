// Random identifiers from OpenSSL's CSPRNG (RAND_bytes): signature and message Ids that must not
// be guessable or repeat. Thread-safe (OpenSSL 3's default RNG is).
#ifndef PSL_BASE_RANDOM_H_
#define PSL_BASE_RANDOM_H_

#include <cstddef>
#include <string>

namespace psl {

// A random (version 4, RFC 4122 variant) UUID in lowercase 8-4-4-4-12 form; "" when the RNG
// fails, which callers must treat as an internal error.
std::string RandomUuid();

// `bytes` random bytes as 2 * `bytes` lowercase hex digits; "" when the RNG fails.
std::string RandomHex(std::size_t bytes);

}  // namespace psl

#endif  // PSL_BASE_RANDOM_H_
