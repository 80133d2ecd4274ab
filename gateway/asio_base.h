// The one header that includes Asio and Beast (STYLE.md §5): the Beast translation units
// (https_server.cc, https_client.cc, https_server_test.cc) include it instead of any Boost.Asio
// or Beast header, and nothing else includes it (each such unit costs ~10 s to compile). It holds
// the prologue Boost 1.74 needs, the namespace aliases every such unit uses, and the TLS set-up
// the server and the client share: protocol floor, AEAD suites, certificate + chain + key
// loading, trust anchors. BOOST_BEAST_USE_STD_STRING_VIEW and BOOST_ASIO_NO_DEPRECATED come from
// psl_http (PUBLIC): Beast templates instantiated in several units must be identical (ODR).
#ifndef PSL_GATEWAY_ASIO_BASE_H_
#define PSL_GATEWAY_ASIO_BASE_H_

// Asio 1.74 detects C++20 coroutines on clang only through <experimental/coroutine>, which
// libstdc++ lacks; its standard <coroutine> works (clang sanitizer builds, clang-tidy).
#if defined(__clang__) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1       // NOLINT(readability-identifier-naming): Boost's
#define BOOST_ASIO_HAS_STD_COROUTINE 1  // NOLINT(readability-identifier-naming): Boost's
#endif

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <cstddef>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange (g++ 12)

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/x509.h>

#include "base/crypto_handles.h"
#include "base/status.h"

namespace psl::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;  // NOLINT(readability-identifier-naming): as Asio spells it
using boost::system::error_code;
using Stream = beast::ssl_stream<beast::tcp_stream>;

// TLS 1.2: forward-secret AEAD suites only. TLS 1.3 suites are all AEAD.
inline constexpr char kTls12Ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr char kTls13Suites[] =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";

// The category of Beast's http::error codes (to tell a malformed message from a network error).
inline const boost::system::error_category& HttpErrorCategory() {
  static const boost::system::error_category& category =
      http::make_error_code(http::error::end_of_stream).category();
  return category;
}

namespace tls_internal {

// OpenSSL's password callback: the std::string passed as userdata, or a refusal when there is
// none (never OpenSSL's default, which would prompt on the terminal).
inline int PasswordCallback(char* buf, int size, int /*rwflag*/, void* userdata) {
  const auto* password = static_cast<const std::string*>(userdata);
  if (password == nullptr || size < 0 || password->size() > static_cast<std::size_t>(size)) {
    return -1;
  }
  return static_cast<int>(password->copy(buf, password->size()));  // not NUL-terminated
}

// The first line of `file` without its line end; kFailedPrecondition naming the file when it
// cannot be read or that line is empty.
inline StatusOr<std::string> ReadPasswordFile(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line)) {
    return Status::FailedPrecondition("cannot read the password file " + file.string());
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  if (line.empty()) {
    return Status::FailedPrecondition("the password file " + file.string() +
                                      " has an empty first line");
  }
  return line;
}

// Appends every certificate of the PEM file `file` to the chain sent after the leaf last loaded
// into `ctx`. kFailedPrecondition naming the file when it is unreadable, malformed or holds no
// certificate.
inline Status AddChainFile(SSL_CTX* ctx, const std::filesystem::path& file) {
  const std::string name = file.string();
  DrainOpenSslErrors();
  BioPtr bio(BIO_new_file(name.c_str(), "r"));
  if (!bio) {
    return Status::FailedPrecondition("cannot read the chain file " + name + ": " +
                                      DrainOpenSslErrors());
  }
  int added = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (SSL_CTX_add1_chain_cert(ctx, cert.get()) != 1) {
      return Status::FailedPrecondition("cannot add a certificate of " + name +
                                        " to the chain: " + DrainOpenSslErrors());
    }
    ++added;
  }
  // The loop ends with "no start line" at the end of the file; anything else is a broken block.
  const auto last = ERR_peek_last_error();
  if (last != 0 &&
      !(ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE)) {
    return Status::FailedPrecondition("invalid PEM in the chain file " + name + ": " +
                                      DrainOpenSslErrors());
  }
  DrainOpenSslErrors();
  if (added == 0) {
    return Status::FailedPrecondition("no certificate in the chain file " + name);
  }
  return Status::Ok();
}

}  // namespace tls_internal

// Creates `out` for `method` (ssl::context::tls_server or tls_client) with compression,
// renegotiation and everything before TLS 1.2 off, the protocol floor `min_version` ("1.2" or
// "1.3") and only the AEAD suites above; a private key is never asked for on the terminal.
// kFailedPrecondition for another min_version or when OpenSSL refuses the settings.
inline Status CreateTlsContext(ssl::context::method method, std::string_view min_version,
                               std::optional<ssl::context>* out) {
  try {
    out->emplace(method);
  } catch (const std::exception& e) {
    return Status::FailedPrecondition(std::string("cannot create the TLS context: ") + e.what());
  }
  SSL_CTX* ctx = (*out)->native_handle();
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_SSLv3 |
                               SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1);
  int version = 0;
  if (min_version == "1.2") {
    version = TLS1_2_VERSION;
  } else if (min_version == "1.3") {
    version = TLS1_3_VERSION;
  } else {
    return Status::FailedPrecondition("tls_min_version must be \"1.2\" or \"1.3\", not \"" +
                                      std::string(min_version) + "\"");
  }
  if (SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
      SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1) {
    return Status::FailedPrecondition("cannot configure TLS versions and ciphers: " +
                                      DrainOpenSslErrors());
  }
  SSL_CTX_set_default_passwd_cb(ctx, tls_internal::PasswordCallback);  // userdata null: refuse
  return Status::Ok();
}

// The PEM files of the certificate one side of a connection presents.
struct TlsIdentityFiles {
  std::filesystem::path cert_file;      // the leaf, optionally followed by intermediates
  std::filesystem::path chain_file;     // intermediates sent after those; "" = none
  std::filesystem::path key_file;       // the private key
  std::filesystem::path password_file;  // secret: its first line decrypts key_file; "" = none
};

// Loads `files` into a context made by CreateTlsContext. `role` words the errors ("server",
// "client"). kFailedPrecondition naming the unusable file: unreadable, empty, malformed, an
// encrypted key without (or with the wrong) password, a key that is not the leaf's.
inline Status UseTlsIdentity(ssl::context& tls, const TlsIdentityFiles& files,
                             std::string_view role) {
  SSL_CTX* ctx = tls.native_handle();
  const std::string cert = files.cert_file.string();
  const std::string key = files.key_file.string();
  const std::string what(role);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return Status::FailedPrecondition("cannot load the " + what + " certificate " + cert + ": " +
                                      DrainOpenSslErrors());
  }
  if (!files.chain_file.empty()) {
    PSL_RETURN_IF_ERROR(tls_internal::AddChainFile(ctx, files.chain_file));
  }
  std::string password;
  if (!files.password_file.empty()) {
    StatusOr<std::string> read = tls_internal::ReadPasswordFile(files.password_file);
    if (!read.ok()) {
      return read.status();
    }
    password = std::move(read).value();
  }
  SSL_CTX_set_default_passwd_cb_userdata(ctx, files.password_file.empty() ? nullptr : &password);
  const int loaded = SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM);
  // Reset before `password` dies (ssl::context's destructor would also delete a non-null one).
  SSL_CTX_set_default_passwd_cb_userdata(ctx, nullptr);
  OPENSSL_cleanse(password.data(), password.size());
  if (loaded != 1) {
    return Status::FailedPrecondition(
        "cannot load the " + what + " key " + key +
        (files.password_file.empty() ? " (an encrypted key needs a password file)" : "") + ": " +
        DrainOpenSslErrors());
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status::FailedPrecondition("the " + what + " key " + key + " does not match " + cert +
                                      ": " + DrainOpenSslErrors());
  }
  return Status::Ok();
}

// Verifies the peer against the PEM anchors of `ca_file` (`verify_mode`: SSL_VERIFY_* flags,
// chains of at most 8 certificates). `what` names the option in errors ("ca_file"...).
// kFailedPrecondition naming the file when it is missing or unusable.
inline Status TrustCaFile(ssl::context& tls, const std::filesystem::path& ca_file, int verify_mode,
                          std::string_view what) {
  const std::string ca = ca_file.string();
  if (ca.empty()) {
    return Status::FailedPrecondition(std::string(what) + " is required to verify the peer");
  }
  SSL_CTX* ctx = tls.native_handle();
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    return Status::FailedPrecondition("cannot load " + std::string(what) + " " + ca + ": " +
                                      DrainOpenSslErrors());
  }
  SSL_CTX_set_verify(ctx, verify_mode, nullptr);
  SSL_CTX_set_verify_depth(ctx, 8);
  return Status::Ok();
}

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_ASIO_BASE_H_
