// HttpsServer over Boost 1.74 Asio + Beast: one C++20 coroutine per connection, each on its own
// strand; the deadlines are beast::tcp_stream expiries (a deadline, not a per-operation timeout:
// one expires_after() before the handshake covers handshake + headers + body).

#include "gateway/https_server.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <openssl/x509.h>

#include "base/crypto_handles.h"
#include "base/x509.h"
#include "gateway/asio_base.h"

namespace psl::gateway {
namespace {

constexpr char kServerHeader[] = "Passerelle";  // never a version
// Closing after a final response: at most this long / this many bytes read and discarded, so
// the peer reads our response instead of a reset caused by its unread request bytes.
constexpr std::chrono::milliseconds kMaxLinger{2000};
constexpr std::size_t kMaxLingerBytes = 256 << 10;
// Connections over max_connections that are given a 503 at the same time; beyond, plain close.
constexpr std::uint32_t kMaxConcurrentRefusals = 64;
constexpr std::size_t kFirstReadBytes = 16 << 10;

void LogLine(std::string_view line) {
  std::fprintf(stderr, "https_server: %.*s\n", static_cast<int>(line.size()), line.data());
}

// Completion of every co_spawn: network errors are values, so an exception here is a bug (or
// bad_alloc). Logged without request content.
void LogEscaped(const char* what, const std::exception_ptr& e) {
  if (!e) {
    return;
  }
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "https_server: %s ended by an exception: %s\n", what, ex.what());
  } catch (...) {
    std::fprintf(stderr, "https_server: %s ended by an unknown exception\n", what);
  }
}

bool IEquals(std::string_view a, std::string_view b) {
  return beast::iequals(a, b);
}

// Handler-supplied headers must not split the response.
bool HeadersValid(const HttpHeaders& headers) {
  return std::all_of(headers.begin(), headers.end(), [](const auto& field) {
    return IsSafeHeaderField(field.first, field.second);
  });
}

// A problem+json response for refusals decided by the server itself (constant texts only).
HttpResponse Problem(int status, std::string_view title, std::string_view detail) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/problem+json");
  r.body = std::string("{\"title\":\"") + std::string(title) +
           "\",\"status\":" + std::to_string(status) + ",\"detail\":\"" + std::string(detail) +
           "\"}";
  return r;
}

http::response<http::string_body> ToBeast(HttpResponse r, unsigned version, bool keep_alive,
                                          bool head) {
  if (r.status < 200 || r.status > 599 || !HeadersValid(r.headers)) {
    LogLine("handler gave an invalid status or header; answering 500");
    r = Problem(500, "Internal Server Error", "the server could not produce a valid response");
  }
  http::response<http::string_body> res;
  res.version(version);
  res.result(static_cast<unsigned>(r.status));
  for (auto& [name, value] : r.headers) {
    if (IEquals(name, "content-length") || IEquals(name, "connection") ||
        IEquals(name, "transfer-encoding") || IEquals(name, "keep-alive") ||
        IEquals(name, "server")) {
      continue;  // owned by the server
    }
    res.insert(name, value);
  }
  res.set(http::field::server, kServerHeader);
  res.set(http::field::connection, keep_alive ? "keep-alive" : "close");
  if (r.status == 204 || r.status == 304) {
    return res;  // no body, no Content-Length
  }
  res.content_length(r.body.size());
  if (!head) {
    res.body() = std::move(r.body);
  }
  return res;
}

// Why a parsed header is refused before its body is read (request smuggling defences: Beast 1.74
// accepts Transfer-Encoding lists not ending in chunked, TE + CL and chunked HTTP/1.0).
std::optional<std::string_view> RefusalReason(const http::request_header<>& req) {
  if (req.count(http::field::transfer_encoding) > 0) {
    return "Transfer-Encoding is not accepted; send the body with Content-Length";
  }
  const std::size_t lengths = req.count(http::field::content_length);
  if (lengths > 1) {
    return "duplicate Content-Length";
  }
  if (lengths == 1 && req[http::field::content_length].find(',') != std::string_view::npos) {
    return "Content-Length must be one value";
  }
  if (req.count(http::field::host) > 1) {
    return "duplicate Host";
  }
  if (req.target().empty() || req.target().front() != '/') {
    return "the request target must be an absolute path";
  }
  return std::nullopt;
}

// The response for a parse error, or nullopt when the connection just ends (peer gone, deadline).
std::optional<HttpResponse> RefusalForParseError(const error_code& ec) {
  if (ec == http::error::header_limit) {
    return Problem(431, "Request Header Fields Too Large",
                   "the request header is larger than the server accepts");
  }
  if (ec == http::error::body_limit) {
    return Problem(413, "Content Too Large", "the request body is larger than the server accepts");
  }
  if (ec.category() == HttpErrorCategory() && ec != http::error::end_of_stream &&
      ec != http::error::partial_message) {
    return Problem(400, "Bad Request", "the request is not valid HTTP/1.1");
  }
  return std::nullopt;
}

std::string Sha256Hex(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &len) != 1) {
    DrainOpenSslErrors();
    return "";
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[md[i] >> 4]);
    out.push_back(kHex[md[i] & 0xf]);
  }
  return out;
}

std::string EndpointString(const tcp::endpoint& ep) {
  const auto address = ep.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(ep.port());
}

class ServerImpl;
class Session;

// Shared by the server and every Responder (which may outlive the server): `open` turns false
// under `mu` once the network threads are joined and before the io_context is destroyed, so a late
// respond() never posts into a dead io_context.
struct ServerLink {
  std::mutex mu;
  bool open = true;
};

// The answer slot of one request: filled once by the Responder (any thread), read on the strand.
struct PendingResponse {
  std::mutex mu;
  bool done = false;
  HttpResponse response;
  std::weak_ptr<Session> session;
  std::shared_ptr<ServerLink> link;

  bool IsDone() {
    std::lock_guard lock(mu);
    return done;
  }
  // False when the request was already answered.
  bool Complete(HttpResponse r);
};

// Owned by the copies of one Responder: when the last copy goes away unanswered, the client gets
// a 500 instead of a connection that hangs until Stop().
class ResponderGuard {
 public:
  explicit ResponderGuard(std::shared_ptr<PendingResponse> pending)
      : pending_(std::move(pending)) {}
  ~ResponderGuard() {
    (void)pending_->Complete(Problem(500, "Internal Server Error", "the request was not answered"));
  }
  ResponderGuard(const ResponderGuard&) = delete;
  ResponderGuard& operator=(const ResponderGuard&) = delete;

  void Respond(HttpResponse r) {
    if (!pending_->Complete(std::move(r))) {
      LogLine("respond() called more than once for a request; ignored");
    }
  }

 private:
  std::shared_ptr<PendingResponse> pending_;
};

// One accepted connection. Every member is used only on the connection's strand.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(ServerImpl& server, tcp::socket socket, bool refuse_full);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  static asio::awaitable<void> Run(std::shared_ptr<Session> self) { co_await self->Serve(); }

  asio::any_io_executor executor() { return stream_.get_executor(); }
  // Stop accepting: close a connection that is between requests; others end after the response.
  void BeginDrain();
  // Stop() gave up waiting: close now, abandon an unanswered request.
  void ForceClose();
  // The Responder answered (posted here from its thread).
  void Wake() { wake_.cancel(); }

 private:
  enum class State { kHandshake, kIdle, kReading, kHandling, kWriting, kClosing };
  // kAbort: the handler asked for close_without_response (fault injection): reset, no bytes.
  enum class Outcome { kKeepAlive, kCloseGracefully, kCloseNow, kAbort };

  asio::awaitable<void> Serve();
  asio::awaitable<Outcome> ServeOne(beast::flat_buffer& buffer);
  asio::awaitable<Outcome> WriteResponse(HttpResponse response, unsigned version, bool keep_alive,
                                         bool head);
  asio::awaitable<Outcome> Refuse(HttpResponse response, unsigned version);
  asio::awaitable<void> Linger(bool send_close_notify);
  void Abort();
  PeerIdentity PeerFromHandshake();

  ServerImpl& server_;
  Stream stream_;
  asio::steady_timer wake_;
  const bool refuse_full_;
  State state_ = State::kHandshake;
  bool force_closed_ = false;
  std::string remote_;
  PeerIdentity peer_;
};

class ServerImpl final : public HttpsServer {
 public:
  ServerImpl(HttpsServerOptions options, Handler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}
  ~ServerImpl() override {
    Stop();
    acceptor_.reset();
    // Destroys coroutine frames left suspended by a forced stop; their sessions unregister here,
    // while every other member is still alive.
    ioc_.reset();
  }

  Status Init();

  std::uint16_t port() const override { return port_; }
  void StopAccepting() override;
  void Stop() override;
  HttpsServerStats stats() const override {
    HttpsServerStats s;
    s.connections_accepted = accepted_.load();
    s.connections_refused_full = refused_full_.load();
    s.handshakes_failed = handshakes_failed_.load();
    s.requests = requests_.load();
    s.requests_refused = requests_refused_.load();
    s.active_connections = active_.load();
    return s;
  }

  // For sessions.
  const HttpsServerOptions& options() const { return options_; }
  const Handler& handler() const { return handler_; }
  ssl::context& tls() { return *tls_; }
  const std::shared_ptr<ServerLink>& link() const { return link_; }
  bool draining() const { return draining_.load(); }
  void CountHandshakeFailed() { ++handshakes_failed_; }
  void CountRequest() { ++requests_; }
  void CountRefused() { ++requests_refused_; }
  void OnSessionStart(bool refusal) {
    if (refusal) {
      ++refusing_;
    } else {
      ++active_;
    }
  }
  void OnSessionEnd(const Session* session, bool refusal) {
    if (refusal) {
      --refusing_;
    } else {
      --active_;
    }
    std::lock_guard lock(sessions_mu_);
    sessions_.erase(session);
    sessions_cv_.notify_all();
  }

 private:
  Status ConfigureTls();
  asio::awaitable<void> AcceptLoop();
  void ForEachSession(void (Session::*fn)());

  const HttpsServerOptions options_;
  const Handler handler_;
  std::shared_ptr<ServerLink> link_ = std::make_shared<ServerLink>();
  std::unique_ptr<asio::io_context> ioc_;
  std::optional<ssl::context> tls_;
  std::unique_ptr<tcp::acceptor> acceptor_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  std::uint16_t port_ = 0;
  bool started_ = false;
  bool stopped_ = false;
  std::atomic<bool> accept_stopped_{false};
  std::atomic<bool> draining_{false};

  std::mutex sessions_mu_;
  std::condition_variable sessions_cv_;
  std::unordered_map<const Session*, std::weak_ptr<Session>> sessions_;

  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> refused_full_{0};
  std::atomic<std::uint64_t> handshakes_failed_{0};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> requests_refused_{0};
  std::atomic<std::uint64_t> active_{0};
  std::atomic<std::uint32_t> refusing_{0};

  friend class Session;
  void Register(const std::shared_ptr<Session>& session) {
    std::lock_guard lock(sessions_mu_);
    sessions_.emplace(session.get(), session);
  }
};

bool PendingResponse::Complete(HttpResponse r) {
  {
    std::lock_guard lock(mu);
    if (done) {
      return false;
    }
    done = true;
    response = std::move(r);
  }
  std::lock_guard lock(link->mu);
  if (link->open) {
    if (std::shared_ptr<Session> s = session.lock()) {
      asio::post(s->executor(), [s] { s->Wake(); });
    }  // the last reference may drop here: still under link->mu, so the io_context is alive
  }
  return true;
}

Session::Session(ServerImpl& server, tcp::socket socket, bool refuse_full)
    : server_(server),
      stream_(std::move(socket), server.tls()),
      wake_(stream_.get_executor()),
      refuse_full_(refuse_full) {
  error_code ec;
  const tcp::endpoint remote = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
  if (!ec) {
    remote_ = EndpointString(remote);
  }
  server_.OnSessionStart(refuse_full_);
}

Session::~Session() {
  server_.OnSessionEnd(this, refuse_full_);
}

void Session::BeginDrain() {
  if (state_ == State::kHandshake || state_ == State::kIdle) {
    beast::get_lowest_layer(stream_).close();
  }
}

void Session::ForceClose() {
  force_closed_ = true;
  beast::get_lowest_layer(stream_).close();
  wake_.cancel();
}

PeerIdentity Session::PeerFromHandshake() {
  PeerIdentity peer;
  peer.remote = remote_;
  if (server_.options().client_certificates == ClientCertificateMode::kNone) {
    return peer;
  }
  SSL* ssl_handle = stream_.native_handle();
  X509* cert = SSL_get0_peer_certificate(ssl_handle);  // borrowed
  if (cert != nullptr && SSL_get_verify_result(ssl_handle) == X509_V_OK) {
    peer.has_certificate = true;
    peer.subject = SubjectRfc2253(cert);
    peer.sha256 = Sha256Hex(cert);
  }
  return peer;
}

asio::awaitable<void> Session::Serve() {
  auto& tcp_stream = beast::get_lowest_layer(stream_);
  const HttpsServerOptions& options = server_.options();
  if (server_.draining()) {
    tcp_stream.close();
    co_return;
  }
  error_code ec;
  state_ = State::kHandshake;
  tcp_stream.expires_after(options.read_deadline);  // covers handshake + the whole first request
  co_await stream_.async_handshake(ssl::stream_base::server,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    server_.CountHandshakeFailed();
    co_await Linger(/*send_close_notify=*/false);  // lets the peer read our alert
    co_return;
  }
  peer_ = PeerFromHandshake();

  beast::flat_buffer buffer;
  for (bool first = true;; first = false) {
    if (!first) {
      if (server_.draining() || force_closed_) {
        break;
      }
      if (buffer.size() == 0) {  // nothing pipelined: wait for the next request's first bytes
        state_ = State::kIdle;
        tcp_stream.expires_after(options.idle_timeout);
        const std::size_t n = co_await stream_.async_read_some(
            buffer.prepare(kFirstReadBytes), asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
          break;  // idle timeout, peer closed, or drained
        }
        buffer.commit(n);
      }
      tcp_stream.expires_after(options.read_deadline);
    }
    const Outcome outcome = co_await ServeOne(buffer);
    if (outcome == Outcome::kCloseGracefully) {
      co_await Linger(/*send_close_notify=*/true);
      co_return;
    }
    if (outcome == Outcome::kAbort) {
      Abort();
      co_return;
    }
    if (outcome == Outcome::kCloseNow) {
      break;
    }
  }
  tcp_stream.close();
}

asio::awaitable<Session::Outcome> Session::ServeOne(beast::flat_buffer& buffer) {
  const HttpsServerOptions& options = server_.options();
  error_code ec;
  state_ = State::kReading;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(std::clamp<std::uint64_t>(
      options.max_header_bytes, 1, std::numeric_limits<std::uint32_t>::max())));
  parser.body_limit(options.max_body_bytes);

  co_await http::async_read_header(stream_, buffer, parser,
                                   asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    if (std::optional<HttpResponse> refusal = RefusalForParseError(ec)) {
      co_return co_await Refuse(std::move(*refusal), 11);
    }
    if (ec == beast::error::timeout && (parser.got_some() || buffer.size() > 0)) {
      server_.CountRefused();  // a request too slow to arrive (slow headers)
    }
    co_return Outcome::kCloseNow;
  }
  const unsigned version = parser.get().version() == 10 ? 10 : 11;
  if (std::optional<std::string_view> reason = RefusalReason(parser.get().base())) {
    co_return co_await Refuse(Problem(400, "Bad Request", *reason), version);
  }
  if (refuse_full_) {
    HttpResponse busy =
        Problem(503, "Service Unavailable", "the server is at its connection limit; retry");
    busy.headers.emplace_back("retry-after", "1");
    co_return co_await WriteResponse(std::move(busy), version, /*keep_alive=*/false,
                                     /*head=*/false);
  }
  if (!parser.is_done()) {
    if (version == 11 && IEquals(parser.get()[http::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      co_await asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                                 asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        co_return Outcome::kCloseNow;
      }
    }
    co_await http::async_read(stream_, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (std::optional<HttpResponse> refusal = RefusalForParseError(ec)) {
        co_return co_await Refuse(std::move(*refusal), version);
      }
      if (ec == beast::error::timeout) {
        server_.CountRefused();  // a body too slow to arrive
      }
      co_return Outcome::kCloseNow;
    }
  }

  state_ = State::kHandling;
  http::request<http::string_body> message = parser.release();
  const bool keep_alive = message.keep_alive();
  const bool head = message.method() == http::verb::head;
  HttpRequest request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  request.headers.reserve(16);
  for (const auto& field : message) {
    request.headers.emplace_back(AsciiLower(field.name_string()), std::string(field.value()));
  }
  request.body = std::move(message.body());
  request.peer = peer_;
  server_.CountRequest();

  auto pending = std::make_shared<PendingResponse>();
  pending->session = weak_from_this();
  pending->link = server_.link();
  {
    auto guard = std::make_shared<ResponderGuard>(pending);
    Responder respond = [guard](HttpResponse r) {
      guard->Respond(std::move(r));
    };
    guard.reset();
    try {
      server_.handler()(std::move(request), std::move(respond));
    } catch (...) {
      // Not what(): a handler's message might quote the request.
      LogLine("the handler threw; answering 500");
      (void)pending->Complete(Problem(500, "Internal Server Error", "the request failed"));
    }
  }
  while (!pending->IsDone()) {
    if (force_closed_) {
      co_return Outcome::kCloseNow;
    }
    wake_.expires_at(asio::steady_timer::time_point::max());
    co_await wake_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
  HttpResponse response;
  {
    std::lock_guard lock(pending->mu);
    response = std::move(pending->response);
  }
  if (response.close_without_response) {
    co_return Outcome::kAbort;
  }
  co_return co_await WriteResponse(std::move(response), version, keep_alive && !server_.draining(),
                                   head);
}

asio::awaitable<Session::Outcome> Session::WriteResponse(HttpResponse response, unsigned version,
                                                         bool keep_alive, bool head) {
  if (force_closed_) {
    co_return Outcome::kCloseNow;
  }
  state_ = State::kWriting;
  http::response<http::string_body> out = ToBeast(std::move(response), version, keep_alive, head);
  beast::get_lowest_layer(stream_).expires_after(server_.options().write_deadline);
  error_code ec;
  co_await http::async_write(stream_, out, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return Outcome::kCloseNow;  // includes the write deadline (slow reader)
  }
  co_return keep_alive ? Outcome::kKeepAlive : Outcome::kCloseGracefully;
}

asio::awaitable<Session::Outcome> Session::Refuse(HttpResponse response, unsigned version) {
  server_.CountRefused();
  co_return co_await WriteResponse(std::move(response), version, /*keep_alive=*/false,
                                   /*head=*/false);
}

asio::awaitable<void> Session::Linger(bool send_close_notify) {
  auto& tcp_stream = beast::get_lowest_layer(stream_);
  state_ = State::kClosing;
  error_code ec;
  tcp_stream.expires_after(std::min(server_.options().write_deadline, kMaxLinger));
  if (send_close_notify && tcp_stream.socket().is_open()) {
    // Send our close_notify without waiting for the peer's (pretend it came): the drain below
    // consumes whatever the peer still sends.
    SSL_set_shutdown(stream_.native_handle(), SSL_RECEIVED_SHUTDOWN);
    co_await stream_.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  }
  if (tcp_stream.socket().is_open()) {
    tcp_stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    std::array<char, 4096> sink;
    std::size_t drained = 0;
    while (drained < kMaxLingerBytes && tcp_stream.socket().is_open()) {
      const std::size_t n = co_await tcp_stream.async_read_some(
          asio::buffer(sink), asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        break;
      }
      drained += n;
    }
  }
  tcp_stream.close();
}

// SO_LINGER 0: close() sends a TCP RST and discards unsent data (no TLS close_notify, no FIN),
// which is what a "connection reset" fault must look like to the client.
void Session::Abort() {
  state_ = State::kClosing;
  auto& tcp_stream = beast::get_lowest_layer(stream_);
  error_code ec;
  tcp_stream.socket().set_option(asio::socket_base::linger(true, 0), ec);
  tcp_stream.close();
}

Status ServerImpl::ConfigureTls() {
  PSL_RETURN_IF_ERROR(CreateTlsContext(ssl::context::tls_server, options_.tls_min_version, &tls_));
  SSL_CTX* ctx = tls_->native_handle();
  SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  PSL_RETURN_IF_ERROR(UseTlsIdentity(
      *tls_, {options_.cert_chain_file, options_.chain_file, options_.key_file, {}}, "server"));
  if (options_.client_certificates == ClientCertificateMode::kNone) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    return Status::Ok();
  }
  int mode = SSL_VERIFY_PEER;
  if (options_.client_certificates == ClientCertificateMode::kRequired) {
    mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  PSL_RETURN_IF_ERROR(TrustCaFile(*tls_, options_.client_ca_file, mode, "client_ca_file"));
  const std::string ca = options_.client_ca_file.string();
  STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
  if (names == nullptr) {
    return Status::FailedPrecondition("no CA certificate in " + ca + ": " + DrainOpenSslErrors());
  }
  SSL_CTX_set_client_CA_list(ctx, names);  // takes ownership
  static constexpr unsigned char kSessionContext[] = "passerelle";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof(kSessionContext) - 1);
  return Status::Ok();
}

Status ServerImpl::Init() {
  if (options_.max_connections == 0) {
    return Status::FailedPrecondition("max_connections must be at least 1");
  }
  PSL_RETURN_IF_ERROR(ConfigureTls());
  ioc_ = std::make_unique<asio::io_context>(
      static_cast<int>(std::max<std::uint32_t>(options_.network_threads, 1)));
  error_code ec;
  const asio::ip::address address = asio::ip::make_address(options_.address, ec);
  if (ec) {
    return Status::FailedPrecondition("invalid listen address \"" + options_.address + "\"");
  }
  const tcp::endpoint endpoint(address, options_.port);
  const std::string where = EndpointString(endpoint);
  acceptor_ = std::make_unique<tcp::acceptor>(asio::make_strand(*ioc_));
  acceptor_->open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor_->set_option(tcp::acceptor::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor_->bind(endpoint, ec);
  }
  if (!ec) {
    acceptor_->listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Status::Unavailable("cannot listen on " + where + ": " + ec.message());
  }
  port_ = acceptor_->local_endpoint(ec).port();
  if (ec) {
    return Status::Unavailable("cannot read the bound port of " + where + ": " + ec.message());
  }
  work_.emplace(ioc_->get_executor());
  asio::co_spawn(acceptor_->get_executor(), AcceptLoop(),
                 [](const std::exception_ptr& e) { LogEscaped("accept loop", e); });
  const std::uint32_t threads = std::max<std::uint32_t>(options_.network_threads, 1);
  for (std::uint32_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_->run();
          return;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "https_server: network thread caught: %s\n", e.what());
        }
      }
    });
  }
  started_ = true;
  return Status::Ok();
}

asio::awaitable<void> ServerImpl::AcceptLoop() {
  for (;;) {
    tcp::socket socket(asio::make_strand(*ioc_));
    error_code ec;
    co_await acceptor_->async_accept(socket, asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor_->is_open() || ec == asio::error::operation_aborted) {
        co_return;
      }
      // Out of descriptors or buffers: back off instead of spinning on the error.
      LogLine("accept failed: " + ec.message());
      asio::steady_timer backoff(acceptor_->get_executor(), std::chrono::milliseconds(50));
      co_await backoff.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    if (draining_.load()) {
      socket.close(ec);
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    bool refuse = false;
    if (active_.load() >= options_.max_connections) {
      ++refused_full_;
      if (refusing_.load() >= kMaxConcurrentRefusals) {
        socket.close(ec);
        continue;
      }
      refuse = true;
    } else {
      ++accepted_;
    }
    auto session = std::make_shared<Session>(*this, std::move(socket), refuse);
    Register(session);
    asio::co_spawn(session->executor(), Session::Run(session),
                   [](const std::exception_ptr& e) { LogEscaped("connection", e); });
  }
}

void ServerImpl::ForEachSession(void (Session::*fn)()) {
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(sessions_mu_);
    for (const auto& [key, weak] : sessions_) {
      if (std::shared_ptr<Session> s = weak.lock()) {
        live.push_back(std::move(s));
      }
    }
  }
  for (std::shared_ptr<Session>& s : live) {
    auto executor = s->executor();
    asio::post(executor, [s = std::move(s), fn] { ((*s).*fn)(); });
  }
}

void ServerImpl::StopAccepting() {
  if (!started_ || accept_stopped_.exchange(true)) {
    return;
  }
  draining_ = true;
  auto closed = std::make_shared<std::promise<void>>();
  std::future<void> closed_future = closed->get_future();
  asio::post(acceptor_->get_executor(), [this, closed] {
    error_code ignored;
    acceptor_->close(ignored);
    closed->set_value();
  });
  if (!ioc_->get_executor().running_in_this_thread()) {
    closed_future.wait();  // the port is released when StopAccepting returns
  }
  ForEachSession(&Session::BeginDrain);
}

void ServerImpl::Stop() {
  if (!started_ || stopped_) {
    return;
  }
  stopped_ = true;
  StopAccepting();
  {
    std::unique_lock lock(sessions_mu_);
    sessions_cv_.wait_for(lock, options_.write_deadline, [this] { return sessions_.empty(); });
  }
  ForEachSession(&Session::ForceClose);
  {
    std::unique_lock lock(sessions_mu_);
    sessions_cv_.wait_for(lock, std::chrono::seconds(2), [this] { return sessions_.empty(); });
  }
  work_.reset();
  ioc_->stop();
  for (std::thread& t : threads_) {
    t.join();
  }
  threads_.clear();
  std::lock_guard lock(link_->mu);
  link_->open = false;
}

}  // namespace

StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Start(HttpsServerOptions options,
                                                          Handler handler) {
  if (!handler) {
    return Status::FailedPrecondition("HttpsServer needs a handler");
  }
  auto server = std::make_unique<ServerImpl>(std::move(options), std::move(handler));
  PSL_RETURN_IF_ERROR(server->Init());
  return std::unique_ptr<HttpsServer>(std::move(server));
}

}  // namespace psl::gateway
