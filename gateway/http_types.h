// Plain HTTP request/response values shared by the Beast server (https_server.h), the outbound
// client (https_client.h) and the Asio-free request handling (api.h), so that everything above
// the socket is testable without a network. Value types; thread-compatible.
#ifndef PSL_GATEWAY_HTTP_TYPES_H_
#define PSL_GATEWAY_HTTP_TYPES_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace psl::gateway {

// Who is on the other end of a TLS connection, as established by the handshake.
struct PeerIdentity {
  bool has_certificate = false;  // a client certificate was presented AND verified
  std::string subject;           // RFC 2253 subject of the verified leaf ("" when none)
  std::string sha256;            // lowercase hex SHA-256 of the leaf's DER ("" when none)
  std::string remote;            // "127.0.0.1:54321" (for logs; never authorisation)
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;  // names lowercase

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // origin-form as received: "/v1/messages?state=queued"
  HttpHeaders headers;
  std::string body;
  PeerIdentity peer;

  // The first header named `name` (case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
  // The target without its query string.
  std::string_view Path() const;
  // The percent-decoded value of query parameter `name`, or nullopt.
  std::optional<std::string> Query(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  HttpHeaders headers;  // Content-Length and Connection are set by the server
  std::string body;
  // Fault injection (insurer simulator): write nothing and reset the connection (TCP RST, no
  // TLS close_notify); status, headers and body are ignored. HttpsClient reports kReset.
  bool close_without_response = false;

  std::optional<std::string_view> Header(std::string_view name) const;
};

// RFC 9110 grammar shared by the server (handler responses) and the client (callers' requests).
// A token: a method or a header name (non-empty; letters, digits, !#$%&'*+-.^_`|~).
bool IsHttpToken(std::string_view s);
// A header that cannot split a message: a token name and a value without CR, LF or NUL.
bool IsSafeHeaderField(std::string_view name, std::string_view value);
// `s` with ASCII A-Z lowered (header names, hosts); other bytes unchanged.
std::string AsciiLower(std::string_view s);

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_HTTP_TYPES_H_
