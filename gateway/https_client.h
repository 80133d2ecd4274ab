// HttpsClient: outbound HTTP/1.1 over TLS with a client certificate (mTLS to the insurers), server
// certificate verified against a CA bundle with hostname (or IP) verification, one kept-alive
// connection reused across requests and re-opened when the peer closed it. Blocking calls with a
// connect timeout and a whole-request timeout (Beast inside; the caller's thread waits).
//
// Thread-safety: one HttpsClient per caller thread (a delivery slot); not shared.
#ifndef PSL_GATEWAY_HTTPS_CLIENT_H_
#define PSL_GATEWAY_HTTPS_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "gateway/http_types.h"

namespace psl::gateway {

struct HttpsUrl {
  std::string host;  // DNS name or IP literal, checked against the server certificate
  std::uint16_t port = 443;
  std::string target = "/";  // path + query
};
// "https://host[:port]/path". kInvalid for anything else (http://, userinfo, fragments, no host).
StatusOr<HttpsUrl> ParseHttpsUrl(std::string_view url);

struct HttpsClientOptions {
  std::filesystem::path ca_file;           // PEM anchors for the server certificate; required
  std::filesystem::path client_cert_file;  // PEM leaf (+ chain); "" = no client certificate
  // PEM intermediates sent after those of client_cert_file (nearest issuer first); "" = none.
  std::filesystem::path client_chain_file;
  std::filesystem::path client_key_file;  // PEM private key, encrypted or not
  // Secret: its first line decrypts client_key_file; "" = the key is not encrypted.
  std::filesystem::path client_key_password_file;
  std::chrono::milliseconds connect_timeout{5'000};   // TCP connect + TLS handshake
  std::chrono::milliseconds request_timeout{30'000};  // write request + read whole response
  std::uint64_t max_response_bytes = 16 << 20;
  std::string tls_min_version = "1.2";
  // The name sent as SNI and checked against the server certificate; "" = the URL's host. For an
  // endpoint reached by IP address whose certificate names a host (and for tests).
  std::string tls_server_name;
};

// Why a request got no HTTP response (delivery classifies retries with it).
//   kConnect: resolving or the TCP connect failed or timed out (nothing was sent);
//   kTls: handshake, certificate or hostname verification failed, or a TLS alert (e.g. the
//         server refused our certificate);
//   kTimeout: the TLS handshake or the request (write + whole response) passed its deadline;
//   kReset: the connection was reset (TCP RST) or closed (FIN, with or without TLS close_notify)
//           before the whole response arrived, including before its first byte: a server that
//           dropped the connection without answering (e.g. HttpResponse::close_without_response,
//           the simulator's reset fault) is kReset, not kProtocol. The request may have been
//           processed;
//   kProtocol: the response is not valid HTTP/1.1 or exceeds max_response_bytes, or the
//              caller's method/header/URL cannot be sent.
enum class TransportError { kNone, kConnect, kTls, kTimeout, kReset, kProtocol };
const char* TransportErrorName(
    TransportError e);  // "connect", "tls", "timeout", "reset", "protocol"

struct HttpsResult {
  TransportError error = TransportError::kNone;
  std::string error_detail;  // "" when error is kNone; never holds body bytes
  HttpResponse response;     // valid when error is kNone
};

class HttpsClient {
 public:
  // Loads the CA bundle and the client identity (certificate, chain, key with its password).
  // kFailedPrecondition naming the unusable file (unreadable, empty, wrong password, mismatch).
  static StatusOr<std::unique_ptr<HttpsClient>> Create(HttpsClientOptions options);

  virtual ~HttpsClient() = default;
  HttpsClient(const HttpsClient&) = delete;
  HttpsClient& operator=(const HttpsClient&) = delete;

  // Sends one request and waits for the whole response (or the failure). Headers are sent as
  // given plus Host, Content-Length and User-Agent. Never throws. A kept-alive connection that
  // the server closed while idle is replaced before sending; a failure on a reused connection
  // is retried once on a new one only when the server cannot have processed the request (GET,
  // HEAD, OPTIONS before any response byte; other methods only when writing failed).
  virtual HttpsResult Send(const HttpsUrl& url, std::string_view method, const HttpHeaders& headers,
                           std::string_view body) = 0;

 protected:
  HttpsClient() = default;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_HTTPS_CLIENT_H_
