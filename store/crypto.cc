#include "store/crypto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <fstream>
#include <iterator>
#include <memory>

#include "base/crypto_handles.h"
#include "base/digest.h"

namespace psl::store {
namespace {

constexpr char kFormatVersion = '\x01';

struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* p) const { EVP_CIPHER_CTX_free(p); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

auto* Bytes(std::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

}  // namespace

StatusOr<PayloadCipher> PayloadCipher::FromKey(std::string_view key) {
  if (key.size() != kKeyBytes) {
    return Status::FailedPrecondition("the payload key must be 32 bytes (AES-256), got " +
                                      std::to_string(key.size()));
  }
  return PayloadCipher(std::string(key));
}

StatusOr<PayloadCipher> PayloadCipher::FromKeyFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::FailedPrecondition("cannot read the payload key file " + path.string());
  }
  std::string content((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (content.size() == kKeyBytes) {
    return FromKey(content);
  }
  // Hex form: trim whitespace (a trailing newline is usual).
  std::size_t begin = 0;
  std::size_t end = content.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(content[begin]))) {
    ++begin;
  }
  while (end > begin && std::isspace(static_cast<unsigned char>(content[end - 1]))) {
    --end;
  }
  std::string_view hex(content.data() + begin, end - begin);
  if (hex.size() != 2 * kKeyBytes) {
    return Status::FailedPrecondition("the payload key file " + path.string() +
                                      " must hold 32 raw bytes or 64 hex digits");
  }
  std::string key(kKeyBytes, '\0');
  for (std::size_t i = 0; i < kKeyBytes; ++i) {
    int hi = HexDigitValue(hex[2 * i]);
    int lo = HexDigitValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      return Status::FailedPrecondition("the payload key file " + path.string() +
                                        " holds a character that is not a hex digit");
    }
    key[i] = static_cast<char>(hi * 16 + lo);
  }
  return FromKey(key);
}

StatusOr<std::string> PayloadCipher::Seal(std::string_view plaintext, std::string_view aad) const {
  std::string out(1 + kNonceBytes + plaintext.size() + kTagBytes, '\0');
  out[0] = kFormatVersion;
  auto* nonce = reinterpret_cast<unsigned char*>(out.data() + 1);
  if (RAND_bytes(nonce, kNonceBytes) != 1) {
    return Status::Internal("RAND_bytes failed: " + DrainOpenSslErrors());
  }
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  auto* ciphertext = nonce + kNonceBytes;
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key_), nonce) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ciphertext, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), ciphertext + len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          ciphertext + plaintext.size()) != 1) {
    return Status::Internal("AES-256-GCM encryption failed: " + DrainOpenSslErrors());
  }
  return out;
}

StatusOr<std::string> PayloadCipher::Open(std::string_view sealed, std::string_view aad) const {
  if (sealed.size() < 1 + kNonceBytes + kTagBytes) {
    return Status::Malformed("an encrypted record is shorter than its header and tag");
  }
  if (sealed[0] != kFormatVersion) {
    return Status::Malformed("an encrypted record has an unknown format version");
  }
  const auto* nonce = Bytes(sealed) + 1;
  const std::size_t text_size = sealed.size() - 1 - kNonceBytes - kTagBytes;
  const auto* ciphertext = nonce + kNonceBytes;
  std::string tag(reinterpret_cast<const char*>(ciphertext + text_size), kTagBytes);
  std::string out(text_size, '\0');
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  auto* plain = reinterpret_cast<unsigned char*>(out.data());
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, Bytes(key_), nonce) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain, &len, ciphertext, static_cast<int>(text_size)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1) {
    return Status::Internal("AES-256-GCM decryption failed: " + DrainOpenSslErrors());
  }
  if (EVP_DecryptFinal_ex(ctx.get(), plain + len, &len) != 1) {
    DrainOpenSslErrors();
    return Status::FailedPrecondition(
        "an encrypted record does not authenticate (wrong key, altered bytes or another record)");
  }
  return out;
}

}  // namespace psl::store
