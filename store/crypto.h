// PayloadCipher: AES-256-GCM encryption at rest of payloads and answer documents (OpenSSL EVP).
//
// Sealed format: "\x01" (format version) | 12-byte random nonce | ciphertext | 16-byte tag. The
// associated data (the message id) binds a ciphertext to its record, so a payload copied under
// another id fails to open. Immutable after construction; safe to share across threads.
#ifndef PSL_STORE_CRYPTO_H_
#define PSL_STORE_CRYPTO_H_

#include <filesystem>
#include <string>
#include <string_view>

#include "base/status.h"

namespace psl::store {

class PayloadCipher {
 public:
  static constexpr std::size_t kKeyBytes = 32;
  static constexpr std::size_t kNonceBytes = 12;
  static constexpr std::size_t kTagBytes = 16;

  // `key` must be exactly 32 raw bytes. kFailedPrecondition otherwise.
  static StatusOr<PayloadCipher> FromKey(std::string_view key);
  // A file holding 32 raw bytes, or 64 hex digits (surrounding whitespace ignored).
  // kFailedPrecondition when unreadable or of another shape (the message never shows key bytes).
  static StatusOr<PayloadCipher> FromKeyFile(const std::filesystem::path& path);

  // Encrypts with a fresh random nonce. kInternal when OpenSSL fails.
  StatusOr<std::string> Seal(std::string_view plaintext, std::string_view aad) const;
  // Decrypts and authenticates. kFailedPrecondition when the tag does not verify (wrong key,
  // altered bytes or another aad), kMalformed when too short or of an unknown format version.
  StatusOr<std::string> Open(std::string_view sealed, std::string_view aad) const;

 private:
  explicit PayloadCipher(std::string key) : key_(std::move(key)) {}
  std::string key_;
};

}  // namespace psl::store

#endif  // PSL_STORE_CRYPTO_H_
