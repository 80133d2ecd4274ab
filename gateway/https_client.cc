// HttpsClient over Boost 1.74 Asio + Beast: each Send runs coroutines on the client's private
// io_context and waits in io_context::run(); the timeouts are beast::tcp_stream deadlines.

#include "gateway/https_client.h"

#include <openssl/ssl.h>
#include <poll.h>

#include <algorithm>
#include <exception>
#include <optional>
#include <string>
#include <utility>

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "base/crypto_handles.h"
#include "gateway/asio_base.h"

namespace psl::gateway {
namespace {

constexpr char kUserAgent[] = "Passerelle";  // never a version
constexpr std::uint32_t kMaxResponseHeaderBytes = 64 << 10;

HttpsResult Failure(TransportError error, std::string detail) {
  HttpsResult r;
  r.error = error;
  r.error_detail = std::move(detail);
  return r;
}

// A failed write or read of an established connection.
HttpsResult Classify(const error_code& ec, const std::string& during) {
  if (ec == beast::error::timeout) {
    return Failure(TransportError::kTimeout, "timed out " + during);
  }
  if (ec == http::error::body_limit) {
    return Failure(TransportError::kProtocol, "the response body exceeds max_response_bytes");
  }
  if (ec == http::error::header_limit) {
    return Failure(TransportError::kProtocol, "the response header is too large");
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
      ec == asio::error::eof || ec == ssl::error::stream_truncated ||
      ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
      ec == asio::error::connection_aborted) {
    return Failure(TransportError::kReset, "connection closed by the server " + during);
  }
  if (ec.category() == HttpErrorCategory()) {
    return Failure(TransportError::kProtocol, "invalid HTTP response (" + ec.message() + ")");
  }
  if (ec.category() == asio::error::get_ssl_category()) {
    return Failure(TransportError::kTls, "TLS error " + during + " (" + ec.message() + ")");
  }
  return Failure(TransportError::kReset, "network error " + during + " (" + ec.message() + ")");
}

std::string Authority(const HttpsUrl& url) {
  std::string host = url.host.find(':') != std::string::npos ? "[" + url.host + "]" : url.host;
  return url.port == 443 ? host : host + ":" + std::to_string(url.port);
}

class ClientImpl final : public HttpsClient {
 public:
  explicit ClientImpl(HttpsClientOptions options) : options_(std::move(options)) {}
  ~ClientImpl() override { CloseConnection(); }

  Status Init();
  HttpsResult Send(const HttpsUrl& url, std::string_view method, const HttpHeaders& headers,
                   std::string_view body) override;

 private:
  enum class Phase { kWrite, kRead };
  struct Exchange {
    HttpsResult result;
    Phase phase = Phase::kWrite;
    bool got_response_bytes = false;
    bool keep_alive = false;
  };

  HttpsResult SendOrThrow(const HttpsUrl& url, std::string_view method, const HttpHeaders& headers,
                          std::string_view body);
  asio::awaitable<HttpsResult> Connect(const HttpsUrl& url);
  asio::awaitable<Exchange> RoundTrip(const http::request<http::string_body>& request, bool head);
  // Runs `op` to completion on the private io_context (rethrows what escaped it).
  template <typename T>
  T RunSync(asio::awaitable<T> op);
  bool KeptConnectionUsable(const HttpsUrl& url);
  void CloseConnection();

  const HttpsClientOptions options_;
  asio::io_context ioc_{1};
  std::optional<ssl::context> tls_;
  tcp::resolver resolver_{ioc_};
  asio::steady_timer resolve_timer_{ioc_};
  std::unique_ptr<Stream> stream_;  // the kept-alive connection, if any
  std::string connected_host_;
  std::uint16_t connected_port_ = 0;
  beast::flat_buffer buffer_;
};

Status ClientImpl::Init() {
  PSL_RETURN_IF_ERROR(CreateTlsContext(ssl::context::tls_client, options_.tls_min_version, &tls_));
  PSL_RETURN_IF_ERROR(TrustCaFile(*tls_, options_.ca_file, SSL_VERIFY_PEER, "ca_file"));
  if (options_.client_cert_file.empty() != options_.client_key_file.empty()) {
    return Status::FailedPrecondition(
        "client_cert_file and client_key_file must be given together");
  }
  if (options_.client_cert_file.empty()) {
    if (!options_.client_chain_file.empty() || !options_.client_key_password_file.empty()) {
      return Status::FailedPrecondition(
          "client_chain_file and client_key_password_file need a client certificate and key");
    }
    return Status::Ok();
  }
  return UseTlsIdentity(*tls_,
                        {options_.client_cert_file, options_.client_chain_file,
                         options_.client_key_file, options_.client_key_password_file},
                        "client");
}

template <typename T>
T ClientImpl::RunSync(asio::awaitable<T> op) {
  std::optional<T> out;
  std::exception_ptr escaped;
  asio::co_spawn(ioc_, std::move(op), [&](std::exception_ptr e, T value) {
    escaped = e;
    out = std::move(value);
  });
  ioc_.restart();
  ioc_.run();
  if (escaped) {
    std::rethrow_exception(escaped);
  }
  return std::move(*out);
}

HttpsResult ClientImpl::Send(const HttpsUrl& url, std::string_view method,
                             const HttpHeaders& headers, std::string_view body) {
  try {
    return SendOrThrow(url, method, headers, body);
  } catch (const std::exception& e) {
    CloseConnection();
    return Failure(TransportError::kProtocol, std::string("internal error: ") + e.what());
  } catch (...) {
    CloseConnection();
    return Failure(TransportError::kProtocol, "internal error");
  }
}

HttpsResult ClientImpl::SendOrThrow(const HttpsUrl& url, std::string_view method,
                                    const HttpHeaders& headers, std::string_view body) {
  if (!IsHttpToken(method)) {
    return Failure(TransportError::kProtocol, "invalid request method");
  }
  if (url.host.empty() || url.target.empty() || url.target.front() != '/' ||
      url.target.find_first_of(std::string_view(" \r\n\0", 4)) != std::string::npos) {
    return Failure(TransportError::kProtocol, "invalid URL");
  }
  http::request<http::string_body> request;
  request.method_string(method);
  request.target(url.target);
  request.version(11);
  for (const auto& [name, value] : headers) {
    if (!IsSafeHeaderField(name, value)) {
      return Failure(TransportError::kProtocol, "invalid request header");
    }
    const std::string lower = AsciiLower(name);
    if (lower == "host" || lower == "content-length" || lower == "transfer-encoding") {
      continue;  // ours
    }
    request.insert(name, value);
  }
  request.set(http::field::host, Authority(url));
  if (request.count(http::field::user_agent) == 0) {
    request.set(http::field::user_agent, kUserAgent);
  }
  request.body() = std::string(body);
  request.content_length(body.size());
  const bool head = method == "HEAD";
  // Retried on a fresh connection after a failure on a kept-alive one only when the server
  // cannot have processed the request: GET/HEAD/OPTIONS before any response byte; any other
  // method only when the failure happened while writing.
  const bool idempotent = method == "GET" || method == "HEAD" || method == "OPTIONS";

  for (int attempt = 0;; ++attempt) {
    const bool reused = KeptConnectionUsable(url);
    if (!reused) {
      CloseConnection();
      HttpsResult connected = RunSync(Connect(url));
      if (connected.error != TransportError::kNone) {
        CloseConnection();
        return connected;
      }
    }
    Exchange exchange = RunSync(RoundTrip(request, head));
    if (exchange.result.error == TransportError::kNone) {
      if (!exchange.keep_alive) {
        CloseConnection();
      }
      return std::move(exchange.result);
    }
    CloseConnection();
    const bool retry = reused && attempt == 0 && !exchange.got_response_bytes &&
                       exchange.result.error != TransportError::kTimeout &&
                       (exchange.phase == Phase::kWrite || idempotent);
    if (!retry) {
      return std::move(exchange.result);
    }
  }
}

asio::awaitable<HttpsResult> ClientImpl::Connect(const HttpsUrl& url) {
  const std::string where = Authority(url);
  error_code ec;
  // The resolver has no deadline of its own: a timer cancels it.
  resolve_timer_.expires_after(options_.connect_timeout);
  resolve_timer_.async_wait([this](const error_code& e) {
    if (!e) {
      resolver_.cancel();
    }
  });
  const tcp::resolver::results_type endpoints = co_await resolver_.async_resolve(
      url.host, std::to_string(url.port), asio::redirect_error(asio::use_awaitable, ec));
  resolve_timer_.cancel();
  if (ec) {
    co_return Failure(TransportError::kConnect,
                      "cannot resolve " + url.host + " (" +
                          (ec == asio::error::operation_aborted ? "timed out" : ec.message()) +
                          ")");
  }

  stream_ = std::make_unique<Stream>(ioc_, *tls_);
  auto& tcp_stream = beast::get_lowest_layer(*stream_);
  tcp_stream.expires_after(options_.connect_timeout);  // TCP connect + TLS handshake
  co_await tcp_stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return Failure(TransportError::kConnect,
                      ec == beast::error::timeout
                          ? "connect to " + where + " timed out"
                          : "cannot connect to " + where + " (" + ec.message() + ")");
  }
  tcp_stream.socket().set_option(tcp::no_delay(true), ec);

  SSL* ssl_handle = stream_->native_handle();
  const std::string& name = options_.tls_server_name.empty() ? url.host : options_.tls_server_name;
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  error_code not_ip;
  (void)asio::ip::make_address(name, not_ip);
  const bool name_set =
      !not_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1
              : (SSL_set_tlsext_host_name(ssl_handle, name.c_str()) == 1 &&  // SNI: names only
                 X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) == 1);
  if (!name_set) {
    co_return Failure(TransportError::kTls,
                      "cannot set the expected server name (" + DrainOpenSslErrors() + ")");
  }
  co_await stream_->async_handshake(ssl::stream_base::client,
                                    asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (ec == beast::error::timeout) {
      co_return Failure(TransportError::kTimeout, "TLS handshake with " + where + " timed out");
    }
    std::string detail = "TLS handshake with " + where + " failed (" + ec.message() + ")";
    const long verify = SSL_get_verify_result(ssl_handle);
    if (verify != X509_V_OK) {
      detail += ": " + std::string(X509_verify_cert_error_string(verify));
    }
    DrainOpenSslErrors();
    co_return Failure(TransportError::kTls, std::move(detail));
  }
  tcp_stream.expires_never();
  connected_host_ = url.host;
  connected_port_ = url.port;
  co_return HttpsResult{};
}

asio::awaitable<ClientImpl::Exchange> ClientImpl::RoundTrip(
    const http::request<http::string_body>& request, bool head) {
  Exchange exchange;
  auto& tcp_stream = beast::get_lowest_layer(*stream_);
  tcp_stream.expires_after(options_.request_timeout);  // write + the whole response
  error_code ec;
  exchange.phase = Phase::kWrite;
  co_await http::async_write(*stream_, request, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    exchange.result = Classify(ec, "while sending the request");
    co_return exchange;
  }
  exchange.phase = Phase::kRead;
  for (;;) {
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxResponseHeaderBytes);
    parser.body_limit(options_.max_response_bytes);
    if (head) {
      parser.skip(true);
    }
    // Header first: Beast 1.74 loses the Content-Length vs body_limit check of a response when
    // the header and body are parsed in one eager pass, so the limit is checked here.
    co_await http::async_read_header(*stream_, buffer_, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    if (!ec && parser.content_length().value_or(0) > options_.max_response_bytes) {
      ec = http::error::body_limit;
    }
    if (!ec && !parser.is_done()) {
      co_await http::async_read(*stream_, buffer_, parser,
                                asio::redirect_error(asio::use_awaitable, ec));
    }
    if (parser.got_some() || buffer_.size() > 0) {
      exchange.got_response_bytes = true;
    }
    if (ec) {
      exchange.result = Classify(ec, "before the whole response arrived");
      co_return exchange;
    }
    http::response<http::string_body>& message = parser.get();
    const unsigned status = message.result_int();
    if (status == 101) {
      exchange.result = Failure(TransportError::kProtocol, "unexpected 101 Switching Protocols");
      co_return exchange;
    }
    if (status >= 100 && status < 200) {
      continue;  // interim response (100 Continue...): the final one follows
    }
    exchange.keep_alive = message.keep_alive() && buffer_.size() == 0;
    HttpResponse& out = exchange.result.response;
    out.status = static_cast<int>(status);
    for (const auto& field : message) {
      out.headers.emplace_back(AsciiLower(field.name_string()), std::string(field.value()));
    }
    out.body = std::move(message.body());
    break;
  }
  tcp_stream.expires_never();
  co_return exchange;
}

// A kept-alive connection to the same endpoint is reused unless the server has closed it (or
// sent anything) while it was idle: that is checked before writing, so no request is lost.
bool ClientImpl::KeptConnectionUsable(const HttpsUrl& url) {
  if (!stream_ || connected_host_ != url.host || connected_port_ != url.port) {
    return false;
  }
  auto& socket = beast::get_lowest_layer(*stream_).socket();
  if (!socket.is_open()) {
    return false;
  }
  pollfd fd{};
  fd.fd = socket.native_handle();
  fd.events = POLLIN;
  return ::poll(&fd, 1, 0) == 0;
}

void ClientImpl::CloseConnection() {
  if (stream_) {
    beast::get_lowest_layer(*stream_).close();
    stream_.reset();
  }
  buffer_.clear();
  connected_host_.clear();
  connected_port_ = 0;
}

bool ValidRegName(std::string_view host) {
  return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
           c == '.';
  });
}

}  // namespace

const char* TransportErrorName(TransportError e) {
  switch (e) {
    case TransportError::kNone:
      return "none";
    case TransportError::kConnect:
      return "connect";
    case TransportError::kTls:
      return "tls";
    case TransportError::kTimeout:
      return "timeout";
    case TransportError::kReset:
      return "reset";
    case TransportError::kProtocol:
      return "protocol";
  }
  return "unknown";
}

StatusOr<HttpsUrl> ParseHttpsUrl(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (url.size() < kScheme.size() || !beast::iequals(url.substr(0, kScheme.size()), kScheme)) {
    return Status::Invalid("the URL must start with https://");
  }
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return Status::Invalid("the URL holds a space or a control character");
    }
  }
  if (url.find('#') != std::string_view::npos) {
    return Status::Invalid("the URL must not have a fragment");
  }
  const std::string_view rest = url.substr(kScheme.size());
  const std::size_t end = rest.find_first_of("/?");
  const std::string_view authority = rest.substr(0, end);
  const std::string_view target =
      end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.find('@') != std::string_view::npos) {
    return Status::Invalid("the URL must not hold user information");
  }
  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::Invalid("unterminated IPv6 address in the URL");
    }
    host = authority.substr(1, close - 1);
    error_code ec;
    (void)asio::ip::make_address_v6(std::string(host), ec);
    if (ec) {
      return Status::Invalid("invalid IPv6 address in the URL");
    }
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status::Invalid("unexpected text after the IPv6 address in the URL");
      }
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    const std::size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_text = authority.substr(colon + 1);
    }
    if (!ValidRegName(host)) {
      return Status::Invalid("the URL has no valid host");
    }
  }
  HttpsUrl out;
  if (has_port) {
    if (port_text.empty() || port_text.size() > 5 ||
        !std::all_of(port_text.begin(), port_text.end(),
                     [](char c) { return c >= '0' && c <= '9'; })) {
      return Status::Invalid("invalid port in the URL");
    }
    const int port = std::stoi(std::string(port_text));
    if (port < 1 || port > 65535) {
      return Status::Invalid("invalid port in the URL");
    }
    out.port = static_cast<std::uint16_t>(port);
  }
  out.host = AsciiLower(host);
  if (target.empty()) {
    out.target = "/";
  } else if (target.front() == '?') {
    out.target = "/" + std::string(target);
  } else {
    out.target = std::string(target);
  }
  return out;
}

StatusOr<std::unique_ptr<HttpsClient>> HttpsClient::Create(HttpsClientOptions options) {
  auto client = std::make_unique<ClientImpl>(std::move(options));
  PSL_RETURN_IF_ERROR(client->Init());
  return std::unique_ptr<HttpsClient>(std::move(client));
}

}  // namespace psl::gateway
