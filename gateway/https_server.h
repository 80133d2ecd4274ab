// HttpsServer: the one Beast/Asio HTTP/1.1-over-TLS listener (practices' port, the ops port, the
// insurer simulator). Owns its io_context and network threads. Every connection is one C++20
// coroutine: TLS handshake under the read deadline → read headers (size cap) → refuse any
// Transfer-Encoding → read the body (size cap, 413) → hand the request to the Handler → write the
// response under the write deadline → keep-alive until idle_timeout.
//
// The Handler runs on a network thread and must not block: it hands CPU or disk work to a pool
// and calls `respond` exactly once, from any thread (the server posts back to the connection).
// A response with close_without_response set is not written: the connection is reset (TCP RST,
// no TLS close_notify), so the client sees no response byte.
// Thread-safety: Start/Stop from one controlling thread; port() and counters from any thread.
#ifndef PSL_GATEWAY_HTTPS_SERVER_H_
#define PSL_GATEWAY_HTTPS_SERVER_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "gateway/http_types.h"

namespace psl::gateway {

enum class ClientCertificateMode {
  kNone,      // no client certificate requested
  kOptional,  // requested and verified when presented (bearer-token clients need none)
  kRequired,  // the handshake fails without a valid client certificate
};

struct HttpsServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;                 // 0 = any free port (see HttpsServer::port())
  std::filesystem::path cert_chain_file;  // PEM: server leaf, then its chain
  // PEM intermediates sent after those of cert_chain_file (nearest issuer first); "" = none.
  std::filesystem::path chain_file;
  std::filesystem::path key_file;  // PEM private key, unencrypted
  // PEM anchors for client certificates (kOptional/kRequired).
  std::filesystem::path client_ca_file;
  ClientCertificateMode client_certificates = ClientCertificateMode::kOptional;
  std::string tls_min_version = "1.2";  // "1.2" or "1.3"; AEAD suites only
  std::uint64_t max_header_bytes = 16 << 10;
  std::uint64_t max_body_bytes = 4 << 20;            // larger: 413 and the connection is closed
  std::chrono::milliseconds read_deadline{10'000};   // handshake + whole request
  std::chrono::milliseconds write_deadline{10'000};  // whole response
  std::chrono::milliseconds idle_timeout{30'000};    // keep-alive wait for the next request
  std::uint32_t max_connections = 1024;              // beyond it: 503 + Retry-After, then close
  std::uint32_t network_threads = 1;
};

// Callable from any thread, once (a second call is logged and ignored; a call after Stop() is
// ignored). When every copy is destroyed without a call, the client gets a 500.
using Responder = std::function<void(HttpResponse)>;
using Handler = std::function<void(HttpRequest, Responder respond)>;

// Counters for /metrics and tests.
struct HttpsServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_refused_full = 0;  // over max_connections
  std::uint64_t handshakes_failed = 0;
  std::uint64_t requests = 0;
  std::uint64_t requests_refused = 0;  // refused by the server itself (limits, smuggling, garbage)
  std::uint64_t active_connections = 0;
};

class HttpsServer {
 public:
  // Loads the TLS material, binds, listens and starts the network threads. Errors:
  // kFailedPrecondition (unreadable, empty or mismatched certificate/chain/key/CA files, naming
  // the file),
  // kUnavailable (cannot bind address:port).
  static StatusOr<std::unique_ptr<HttpsServer>> Start(HttpsServerOptions options, Handler handler);

  virtual ~HttpsServer() = default;  // Stop()s when still running
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  virtual std::uint16_t port() const = 0;  // the bound port
  // Closes the listener; connections in progress finish their current request (answered with
  // Connection: close); kept-alive connections waiting for a request are closed.
  virtual void StopAccepting() = 0;
  // StopAccepting, then waits (at most write_deadline) for requests in flight to be answered,
  // closes every connection and joins the network threads. Idempotent.
  virtual void Stop() = 0;
  virtual HttpsServerStats stats() const = 0;

 protected:
  HttpsServer() = default;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_HTTPS_SERVER_H_
