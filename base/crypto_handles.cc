#include "base/crypto_handles.h"

#include <openssl/err.h>

namespace psl {

std::string DrainOpenSslErrors() {
  std::string out;
  unsigned long err = 0;  // NOLINT(google-runtime-int): OpenSSL's type
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out;
}

}  // namespace psl
