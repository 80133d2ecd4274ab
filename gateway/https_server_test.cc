// HttpsServer over real sockets on 127.0.0.1 with the generated test PKI. Abuse cases use a raw
// TLS client (Asio, generous client-side deadlines) and check, each time, that a well-behaved
// client on another connection is still served. No sleeps as synchronisation, no timing asserts.

#include "gateway/https_server.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <openssl/x509.h>

#include "base/crypto_handles.h"
#include "base/x509.h"
#include "certs/testing/test_pki.h"
#include "gateway/asio_base.h"
#include "gateway/https_client.h"

namespace psl::gateway {
namespace {

using namespace std::chrono_literals;

const certs::testing::TestPki& Pki() {
  return certs::testing::SharedTestPki();
}

// Generous: only reached when the server fails to do what the test expects.
constexpr auto kClientPatience = 20s;

HttpsServerOptions TestServerOptions() {
  HttpsServerOptions o;
  o.cert_chain_file = Pki() / "gateway-fullchain.pem";
  o.key_file = Pki() / "gateway.key";
  o.client_ca_file = Pki() / "ca.pem";
  o.client_certificates = ClientCertificateMode::kOptional;
  o.read_deadline = 500ms;
  o.write_deadline = 500ms;
  o.idle_timeout = 30s;
  return o;
}

HttpsClientOptions TestClientOptions(const std::string& leaf = "practice-81234530000") {
  HttpsClientOptions o;
  o.ca_file = Pki() / "ca.pem";
  if (!leaf.empty()) {
    o.client_cert_file = Pki() / (leaf + "-fullchain.pem");
    o.client_key_file = Pki() / (leaf + ".key");
  }
  o.connect_timeout = kClientPatience;
  o.request_timeout = kClientPatience;
  return o;
}

HttpsUrl LocalUrl(std::uint16_t port, std::string target = "/echo") {
  HttpsUrl url;
  url.host = "127.0.0.1";
  url.port = port;
  url.target = std::move(target);
  return url;
}

// Answers 200 with the request body, describing the request and its peer in headers.
Handler EchoHandler(std::atomic<int>* calls) {
  return [calls](HttpRequest request, Responder respond) {
    if (calls != nullptr) {
      ++*calls;
    }
    HttpResponse response;
    response.headers = {{"x-method", request.method},
                        {"x-path", std::string(request.Path())},
                        {"x-query-q", request.Query("q").value_or("<none>")},
                        {"x-has-cert", request.peer.has_certificate ? "yes" : "no"},
                        {"x-subject", request.peer.subject},
                        {"x-sha256", request.peer.sha256},
                        {"x-remote", request.peer.remote}};
    response.body = std::move(request.body);
    respond(std::move(response));
  };
}

// Polls `condition` (a state change in another thread) until it holds or a generous limit passes.
bool Eventually(const std::function<bool()>& condition) {
  const auto give_up = std::chrono::steady_clock::now() + kClientPatience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

// A well-behaved client on its own connection gets its answer.
void ExpectServed(std::uint16_t port) {
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const HttpsResult result = (*client)->Send(LocalUrl(port), "POST", {}, "still here");
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.status, 200);
  EXPECT_EQ(result.response.body, "still here");
}

X509Ptr LoadCertificate(const std::filesystem::path& file) {
  BioPtr bio(BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    return nullptr;
  }
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

std::string Sha256HexOf(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  X509_digest(cert, EVP_sha256(), md, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex.push_back(kDigits[md[i] >> 4]);
    hex.push_back(kDigits[md[i] & 0xf]);
  }
  return hex;
}

// A TLS client that sends raw bytes, for requests no well-behaved client would send. Every
// operation has the generous client-side deadline; beast::error::timeout from it means the server
// did not act.
class RawTlsClient {
 public:
  explicit RawTlsClient(const std::string& leaf = "",
                        const std::function<void(SSL_CTX*)>& configure = nullptr)
      : tls_(ssl::context::tls_client) {
    if (configure) {
      configure(tls_.native_handle());
    }
    tls_.load_verify_file((Pki() / "ca.pem").string());
    tls_.set_verify_mode(ssl::verify_peer);
    if (!leaf.empty()) {
      tls_.use_certificate_chain_file((Pki() / (leaf + "-fullchain.pem")).string());
      tls_.use_private_key_file((Pki() / (leaf + ".key")).string(), ssl::context::pem);
    }
  }

  // TCP connect + TLS handshake. `receive_buffer` > 0 shrinks SO_RCVBUF (slow reader);
  // `handshake` false stops after the TCP connect.
  error_code Connect(std::uint16_t port, int receive_buffer = 0, bool handshake = true) {
    stream_.emplace(ioc_, tls_);
    auto& tcp_stream = beast::get_lowest_layer(*stream_);
    error_code ec;
    tcp_stream.socket().open(tcp::v4(), ec);
    if (ec) {
      return ec;
    }
    if (receive_buffer > 0) {
      tcp_stream.socket().set_option(asio::socket_base::receive_buffer_size(receive_buffer), ec);
    }
    tcp_stream.expires_after(kClientPatience);
    ec = Run([&](auto done) {
      tcp_stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), done);
    });
    if (ec || !handshake) {
      return ec;
    }
    return Run([&](auto done) { stream_->async_handshake(ssl::stream_base::client, done); });
  }

  // Waits, below TLS, until the server closes the TCP connection.
  error_code ReadTcpUntilClosed() {
    auto& tcp_stream = beast::get_lowest_layer(*stream_);
    tcp_stream.expires_after(kClientPatience);
    std::vector<char> chunk(4096);
    for (;;) {
      const error_code ec =
          Run([&](auto done) { tcp_stream.async_read_some(asio::buffer(chunk), done); });
      if (ec) {
        return ec;
      }
    }
  }

  error_code Write(std::string_view bytes) {
    beast::get_lowest_layer(*stream_).expires_after(kClientPatience);
    return Run([&](auto done) {
      asio::async_write(*stream_, asio::buffer(bytes.data(), bytes.size()), done);
    });
  }

  // Reads one HTTP response (an interim 1xx counts as one).
  error_code ReadResponse(http::response<http::string_body>* out) {
    beast::get_lowest_layer(*stream_).expires_after(kClientPatience);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 << 20);
    const error_code ec =
        Run([&](auto done) { http::async_read(*stream_, buffer_, parser, done); });
    if (!ec) {
      *out = parser.release();
    }
    return ec;
  }

  // Reads until the server ends the connection; returns what ended it. `bytes` gets the number of
  // application bytes received on the way.
  error_code ReadUntilClosed(std::size_t* bytes) {
    beast::get_lowest_layer(*stream_).expires_after(kClientPatience);
    *bytes = buffer_.size();
    buffer_.clear();
    std::vector<char> chunk(64 << 10);
    for (;;) {
      std::size_t n = 0;
      const error_code ec = Run([&](auto done) {
        stream_->async_read_some(asio::buffer(chunk),
                                 [&n, done](const error_code& e, std::size_t got) mutable {
                                   n = got;
                                   done(e);
                                 });
      });
      *bytes += n;
      if (ec) {
        return ec;
      }
    }
  }

 private:
  template <typename Start>
  error_code Run(Start&& start) {
    error_code result;
    bool finished = false;
    start([&result, &finished](const error_code& ec, auto&&...) {
      result = ec;
      finished = true;
    });
    ioc_.restart();
    ioc_.run();
    return finished ? result : asio::error::operation_aborted;
  }

  asio::io_context ioc_;
  ssl::context tls_;
  std::optional<Stream> stream_;
  beast::flat_buffer buffer_;
};

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Pki().ok()) << "certs/make-test-pki.sh failed"; }

  void StartServer(HttpsServerOptions options, Handler handler) {
    auto server = HttpsServer::Start(std::move(options), std::move(handler));
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }
  void StartEchoServer(HttpsServerOptions options = TestServerOptions()) {
    StartServer(std::move(options), EchoHandler(&calls_));
  }
  std::uint16_t port() const { return server_->port(); }

  // Sends `request` on a fresh raw connection and expects `status`, then the connection closed.
  void ExpectRefusedAndClosed(const std::string& request, unsigned status) {
    RawTlsClient raw;
    ASSERT_FALSE(raw.Connect(port()));
    ASSERT_FALSE(raw.Write(request));
    http::response<http::string_body> response;
    const error_code ec = raw.ReadResponse(&response);
    ASSERT_FALSE(ec) << ec.message();
    EXPECT_EQ(response.result_int(), status);
    EXPECT_EQ(response[http::field::connection], "close");
    EXPECT_EQ(response[http::field::server], "Passerelle");
    std::size_t extra = 0;
    const error_code end = raw.ReadUntilClosed(&extra);
    EXPECT_NE(end, beast::error::timeout) << "the server kept the connection open";
    EXPECT_EQ(extra, 0u);
  }

  // A client with `options` is refused at the handshake: it gets no response, the handler never
  // runs, and a well-behaved client is served afterwards.
  void ExpectHandshakeRefused(const HttpsClientOptions& options) {
    auto client = HttpsClient::Create(options);
    ASSERT_TRUE(client.ok()) << client.status().ToString();
    const HttpsResult result = (*client)->Send(LocalUrl(port()), "GET", {}, "");
    EXPECT_NE(result.error, TransportError::kNone);
    EXPECT_TRUE(Eventually([&] { return server_->stats().handshakes_failed == 1; }));
    EXPECT_EQ(calls_, 0);
    ExpectServed(port());
  }

  std::atomic<int> calls_{0};
  std::unique_ptr<HttpsServer> server_;
};

TEST_F(HttpsServerTest, RoundTripWithClientCertificateFillsPeerIdentity) {
  HttpsServerOptions options = TestServerOptions();
  options.client_certificates = ClientCertificateMode::kRequired;
  StartEchoServer(options);
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();

  const HttpsResult result =
      (*client)->Send(LocalUrl(port(), "/v1/messages?q=a%20b%2Bc&x=1"), "POST",
                      {{"Content-Type", "application/xml"}}, "<kmehrmessage/>");
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  const HttpResponse& r = result.response;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "<kmehrmessage/>");
  EXPECT_EQ(r.Header("x-method"), "POST");
  EXPECT_EQ(r.Header("x-path"), "/v1/messages");
  EXPECT_EQ(r.Header("x-query-q"), "a b+c");
  EXPECT_EQ(r.Header("x-has-cert"), "yes");
  X509Ptr leaf = LoadCertificate(Pki() / "practice-81234530000.pem");
  ASSERT_TRUE(leaf);
  EXPECT_EQ(r.Header("x-subject"), SubjectRfc2253(leaf.get()));
  EXPECT_NE(SubjectRfc2253(leaf.get()).find("CN=practice-81234530000"), std::string::npos);
  EXPECT_EQ(r.Header("x-sha256"), Sha256HexOf(leaf.get()));
  EXPECT_EQ(r.Header("x-remote").value_or("").rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(r.Header("Server"), "Passerelle");
  EXPECT_EQ(r.Header("connection"), "keep-alive");
  EXPECT_EQ(r.Header("content-length"), "15");
  EXPECT_EQ(server_->stats().requests, 1u);
  EXPECT_EQ(server_->stats().active_connections, 1u);
}

TEST_F(HttpsServerTest, RequiredModeRefusesAHandshakeWithoutCertificate) {
  HttpsServerOptions options = TestServerOptions();
  options.client_certificates = ClientCertificateMode::kRequired;
  StartEchoServer(options);
  ExpectHandshakeRefused(TestClientOptions(""));
}

TEST_F(HttpsServerTest, OptionalModeWithoutCertificateHasNoIdentity) {
  StartEchoServer();
  auto client = HttpsClient::Create(TestClientOptions(""));
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const HttpsResult result = (*client)->Send(LocalUrl(port()), "GET", {}, "");
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.status, 200);
  EXPECT_EQ(result.response.Header("x-has-cert"), "no");
  EXPECT_EQ(result.response.Header("x-subject"), "");
  EXPECT_EQ(result.response.Header("x-sha256"), "");
}

TEST_F(HttpsServerTest, NoneModeDoesNotReportACertificate) {
  HttpsServerOptions options = TestServerOptions();
  options.client_certificates = ClientCertificateMode::kNone;
  options.client_ca_file.clear();
  StartEchoServer(options);
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const HttpsResult result = (*client)->Send(LocalUrl(port()), "GET", {}, "");
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.Header("x-has-cert"), "no");
}

TEST_F(HttpsServerTest, UntrustedClientCertificateIsRefused) {
  StartEchoServer();  // kOptional: a presented certificate must verify
  ExpectHandshakeRefused(TestClientOptions("untrusted"));
}

TEST_F(HttpsServerTest, ExpiredClientCertificateIsRefused) {
  StartEchoServer();
  ExpectHandshakeRefused(TestClientOptions("expired"));
}

TEST_F(HttpsServerTest, OnlyAeadSuitesAndTls12OrLaterAreNegotiated) {
  StartEchoServer();
  RawTlsClient cbc("", [](SSL_CTX* ctx) {
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES128-SHA:AES128-SHA:AES256-SHA256");
  });
  EXPECT_TRUE(cbc.Connect(port()));
  RawTlsClient tls11("", [](SSL_CTX* ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_1_VERSION);
  });
  EXPECT_TRUE(tls11.Connect(port()));
  RawTlsClient gcm12("", [](SSL_CTX* ctx) {
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES128-GCM-SHA256");
  });
  EXPECT_FALSE(gcm12.Connect(port()));
  RawTlsClient tls13;
  EXPECT_FALSE(tls13.Connect(port()));
  ExpectServed(port());
}

TEST_F(HttpsServerTest, Tls13MinimumRefusesTls12) {
  HttpsServerOptions options = TestServerOptions();
  options.tls_min_version = "1.3";
  StartEchoServer(options);
  RawTlsClient tls12("", [](SSL_CTX* ctx) { SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION); });
  EXPECT_TRUE(tls12.Connect(port()));
  ExpectServed(port());
}

TEST_F(HttpsServerTest, OversizeHeadersGet431AndTheConnectionCloses) {
  HttpsServerOptions options = TestServerOptions();
  options.max_header_bytes = 4096;
  StartEchoServer(options);
  ExpectRefusedAndClosed(
      "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(8000, 'a') + "\r\n\r\n", 431);
  ExpectServed(port());
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(server_->stats().requests_refused, 1u);
}

TEST_F(HttpsServerTest, OversizeBodyGets413AndTheConnectionCloses) {
  HttpsServerOptions options = TestServerOptions();
  options.max_body_bytes = 1024;
  StartEchoServer(options);
  ExpectRefusedAndClosed("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", 413);
  ExpectServed(port());
  EXPECT_EQ(calls_, 1);
}

TEST_F(HttpsServerTest, BodyAtTheLimitIsAccepted) {
  HttpsServerOptions options = TestServerOptions();
  options.max_body_bytes = 1024;
  StartEchoServer(options);
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok());
  const HttpsResult result = (*client)->Send(LocalUrl(port()), "POST", {}, std::string(1024, 'b'));
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.status, 200);
  EXPECT_EQ(result.response.body.size(), 1024u);
}

TEST_F(HttpsServerTest, SlowHeadersAreCutOffAtTheReadDeadline) {
  StartEchoServer();
  RawTlsClient slow;
  ASSERT_FALSE(slow.Connect(port()));
  ASSERT_FALSE(slow.Write("POST /x HTTP/1.1\r\nHost: x\r\n"));  // and nothing more
  ExpectServed(port());
  std::size_t bytes = 0;
  const error_code end = slow.ReadUntilClosed(&bytes);
  EXPECT_NE(end, beast::error::timeout) << "the server kept a slow-loris connection open";
  EXPECT_EQ(bytes, 0u);
  EXPECT_EQ(calls_, 1);
  EXPECT_TRUE(Eventually([&] { return server_->stats().requests_refused == 1; }));
}

TEST_F(HttpsServerTest, ASilentConnectionIsCutOffAtTheReadDeadline) {
  StartEchoServer();
  RawTlsClient silent;
  ASSERT_FALSE(silent.Connect(port()));
  ExpectServed(port());
  std::size_t bytes = 0;
  EXPECT_NE(silent.ReadUntilClosed(&bytes), beast::error::timeout);
  EXPECT_EQ(bytes, 0u);
}

TEST_F(HttpsServerTest, AConnectionThatNeverStartsTlsIsCutOffAtTheReadDeadline) {
  StartEchoServer();
  RawTlsClient silent;
  ASSERT_FALSE(silent.Connect(port(), 0, /*handshake=*/false));
  ExpectServed(port());
  EXPECT_NE(silent.ReadTcpUntilClosed(), beast::error::timeout);
  EXPECT_TRUE(Eventually([&] { return server_->stats().handshakes_failed == 1; }));
}

TEST_F(HttpsServerTest, SlowBodyIsCutOffAtTheReadDeadline) {
  StartEchoServer();
  RawTlsClient slow;
  ASSERT_FALSE(slow.Connect(port()));
  ASSERT_FALSE(slow.Write("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"));
  ExpectServed(port());
  std::size_t bytes = 0;
  const error_code end = slow.ReadUntilClosed(&bytes);
  EXPECT_NE(end, beast::error::timeout) << "the server kept a slow-body connection open";
  EXPECT_EQ(bytes, 0u);
  EXPECT_EQ(calls_, 1);
}

TEST_F(HttpsServerTest, SlowReaderIsCutOffAtTheWriteDeadline) {
  constexpr std::size_t kBig = 32 << 20;  // far more than the socket buffers hold
  HttpsServerOptions options = TestServerOptions();
  options.write_deadline = 300ms;
  StartServer(options, [](HttpRequest request, Responder respond) {
    HttpResponse response;
    response.body = request.Path() == "/big" ? std::string(kBig, 'z') : std::move(request.body);
    respond(std::move(response));
  });
  RawTlsClient slow;
  ASSERT_FALSE(slow.Connect(port(), /*receive_buffer=*/4096));
  ASSERT_FALSE(slow.Write("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));  // then reads nothing
  ExpectServed(port());
  // The server gives up on the slow reader: its connection ends without us reading a byte.
  ASSERT_TRUE(Eventually([&] { return server_->stats().active_connections == 0; }));
  std::size_t bytes = 0;
  const error_code end = slow.ReadUntilClosed(&bytes);
  EXPECT_NE(end, beast::error::timeout);
  EXPECT_LT(bytes, kBig);
}

TEST_F(HttpsServerTest, AnyTransferEncodingAndAmbiguousLengthsAreRefused) {
  StartEchoServer();
  const std::vector<std::string> requests = {
      "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
      "POST /x HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nContent-Length: "
      "5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\nhello",
      "POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
      "POST /x HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 5\r\n\r\nhello",
      "GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n",
  };
  for (const std::string& request : requests) {
    SCOPED_TRACE(request);
    ExpectRefusedAndClosed(request, 400);
  }
  ExpectServed(port());
  EXPECT_EQ(calls_, 1);
  EXPECT_EQ(server_->stats().requests_refused, requests.size());
}

TEST_F(HttpsServerTest, GarbageGets400AndTheConnectionCloses) {
  StartEchoServer();
  ExpectRefusedAndClosed(std::string("\x01\x02\x03 not http at all\r\n\r\n"), 400);
  ExpectRefusedAndClosed("GET / HTTP/9.9\r\nHost: x\r\n\r\n", 400);
  ExpectRefusedAndClosed("GET / HTTP/1.1\r\nBad Header\r\n\r\n", 400);
  ExpectServed(port());
  EXPECT_EQ(calls_, 1);
}

TEST_F(HttpsServerTest, PlainTextOnTheTlsPortFailsTheHandshake) {
  StartEchoServer();
  asio::io_context ioc;
  tcp::socket socket(ioc);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port()));
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(socket, asio::buffer(request));
  EXPECT_TRUE(Eventually([&] { return server_->stats().handshakes_failed == 1; }));
  ExpectServed(port());
}

TEST_F(HttpsServerTest, ConnectionsOverTheCapGet503WithRetryAfter) {
  HttpsServerOptions options = TestServerOptions();
  options.max_connections = 2;
  StartEchoServer(options);
  auto first = HttpsClient::Create(TestClientOptions());
  auto second = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_EQ((*first)->Send(LocalUrl(port()), "GET", {}, "").error, TransportError::kNone);
  ASSERT_EQ((*second)->Send(LocalUrl(port()), "GET", {}, "").error, TransportError::kNone);
  ASSERT_EQ(server_->stats().active_connections, 2u);

  RawTlsClient third;
  ASSERT_FALSE(third.Connect(port()));
  ASSERT_FALSE(third.Write("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  http::response<http::string_body> response;
  ASSERT_FALSE(third.ReadResponse(&response));
  EXPECT_EQ(response.result_int(), 503u);
  EXPECT_EQ(response[http::field::retry_after], "1");
  EXPECT_EQ(response[http::field::connection], "close");
  std::size_t extra = 0;
  EXPECT_NE(third.ReadUntilClosed(&extra), beast::error::timeout);

  // The two connections within the cap are still served, on the same connections.
  const HttpsResult again = (*first)->Send(LocalUrl(port()), "POST", {}, "again");
  ASSERT_EQ(again.error, TransportError::kNone) << again.error_detail;
  EXPECT_EQ(again.response.body, "again");
  EXPECT_EQ((*second)->Send(LocalUrl(port()), "GET", {}, "").response.status, 200);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
  EXPECT_EQ(server_->stats().connections_refused_full, 1u);
  EXPECT_EQ(calls_, 4);
}

TEST_F(HttpsServerTest, ExpectContinueGetsAnInterimResponse) {
  StartEchoServer();
  RawTlsClient raw;
  ASSERT_FALSE(raw.Connect(port()));
  ASSERT_FALSE(raw.Write(
      "POST /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"));
  http::response<http::string_body> interim;
  ASSERT_FALSE(raw.ReadResponse(&interim));
  EXPECT_EQ(interim.result_int(), 100u);
  ASSERT_FALSE(raw.Write("hello"));
  http::response<http::string_body> response;
  ASSERT_FALSE(raw.ReadResponse(&response));
  EXPECT_EQ(response.result_int(), 200u);
  EXPECT_EQ(response.body(), "hello");
}

TEST_F(HttpsServerTest, PipelinedRequestsAreAnsweredInOrder) {
  StartEchoServer();
  RawTlsClient raw;
  ASSERT_FALSE(raw.Connect(port()));
  ASSERT_FALSE(
      raw.Write("POST /1 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
                "POST /2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\ntwo"));
  http::response<http::string_body> response;
  ASSERT_FALSE(raw.ReadResponse(&response));
  EXPECT_EQ(response.body(), "one");
  ASSERT_FALSE(raw.ReadResponse(&response));
  EXPECT_EQ(response.body(), "two");
  EXPECT_EQ(response[http::field::connection], "keep-alive");
}

TEST_F(HttpsServerTest, ResponderWorksFromAnotherThread) {
  std::mutex mu;
  std::vector<std::thread> workers;
  StartServer(TestServerOptions(), [&](HttpRequest request, Responder respond) {
    std::lock_guard lock(mu);
    workers.emplace_back([request = std::move(request), respond = std::move(respond)] {
      HttpResponse response;
      response.status = 202;
      response.headers = {{"Location", "/v1/messages/1"}};
      response.body = "from a worker";
      respond(std::move(response));
    });
  });
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok());
  for (int i = 0; i < 3; ++i) {
    const HttpsResult result = (*client)->Send(LocalUrl(port()), "POST", {}, "x");
    ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
    EXPECT_EQ(result.response.status, 202);
    EXPECT_EQ(result.response.Header("location"), "/v1/messages/1");
    EXPECT_EQ(result.response.body, "from a worker");
  }
  std::lock_guard lock(mu);
  for (std::thread& t : workers) {
    t.join();
  }
}

TEST_F(HttpsServerTest, ManyClientsOnSeveralNetworkThreads) {
  HttpsServerOptions options = TestServerOptions();
  options.network_threads = 2;
  std::mutex mu;
  std::vector<std::thread> workers;
  StartServer(options, [&](HttpRequest request, Responder respond) {
    HttpResponse response;
    response.body = std::move(request.body);
    if (request.Path() == "/inline") {
      respond(std::move(response));
      return;
    }
    std::lock_guard lock(mu);
    workers.emplace_back(
        [response = std::move(response), respond = std::move(respond)] { respond(response); });
  });
  constexpr int kClients = 4;
  constexpr int kRequests = 10;
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto client = HttpsClient::Create(TestClientOptions());
      if (!client.ok()) {
        return;
      }
      for (int i = 0; i < kRequests; ++i) {
        const std::string body = std::to_string(c) + "/" + std::to_string(i);
        const HttpsResult result =
            (*client)->Send(LocalUrl(port(), i % 2 == 0 ? "/inline" : "/worker"), "POST", {}, body);
        if (result.error == TransportError::kNone && result.response.body == body) {
          ++ok;
        }
      }
    });
  }
  for (std::thread& t : clients) {
    t.join();
  }
  EXPECT_EQ(ok, kClients * kRequests);
  EXPECT_EQ(server_->stats().requests, static_cast<std::uint64_t>(kClients * kRequests));
  EXPECT_EQ(server_->stats().connections_accepted, static_cast<std::uint64_t>(kClients));
  server_->Stop();
  std::lock_guard lock(mu);
  for (std::thread& t : workers) {
    t.join();
  }
}

TEST_F(HttpsServerTest, ADroppedResponderAnswers500AndAThrowingHandlerToo) {
  StartServer(TestServerOptions(), [](HttpRequest request, Responder) {
    if (request.Path() == "/throw") {
      throw std::runtime_error("handler bug");
    }
  });
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok());
  for (const char* target : {"/drop", "/throw"}) {
    const HttpsResult result = (*client)->Send(LocalUrl(port(), target), "GET", {}, "");
    ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
    EXPECT_EQ(result.response.status, 500);
    EXPECT_EQ(result.response.Header("content-type"), "application/problem+json");
  }
}

TEST_F(HttpsServerTest, CloseWithoutResponseResetsTheConnectionAndWritesNothing) {
  const Handler echo = EchoHandler(&calls_);
  StartServer(TestServerOptions(), [echo](HttpRequest request, Responder respond) {
    if (request.Path() != "/reset") {
      echo(std::move(request), std::move(respond));
      return;
    }
    HttpResponse response;
    response.headers = {{"x-must-not", "appear"}};
    response.body = "must not be sent";
    response.close_without_response = true;
    respond(std::move(response));
  });
  RawTlsClient raw;
  ASSERT_FALSE(raw.Connect(port()));
  ASSERT_FALSE(raw.Write("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"));
  http::response<http::string_body> first;
  ASSERT_FALSE(raw.ReadResponse(&first));
  EXPECT_EQ(first.result_int(), 200u);
  EXPECT_EQ(first[http::field::connection], "keep-alive");

  // On the same kept-alive connection: no response byte, a TCP reset (not a TLS close).
  ASSERT_FALSE(raw.Write("POST /reset HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"));
  std::size_t bytes = 0;
  const error_code end = raw.ReadUntilClosed(&bytes);
  EXPECT_EQ(end, asio::error::connection_reset) << end.message();
  EXPECT_EQ(bytes, 0u);

  ExpectServed(port());
  EXPECT_EQ(calls_, 2);
  EXPECT_EQ(server_->stats().requests, 3u);
  EXPECT_EQ(server_->stats().requests_refused, 0u);
  EXPECT_TRUE(Eventually([&] { return server_->stats().active_connections == 0; }));
}

TEST_F(HttpsServerTest, AnInvalidResponseFromTheHandlerBecomes500) {
  StartServer(TestServerOptions(), [](HttpRequest, Responder respond) {
    HttpResponse response;
    response.headers = {{"X-Split", "a\r\nSet-Cookie: evil=1"}};
    respond(std::move(response));
  });
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok());
  const HttpsResult result = (*client)->Send(LocalUrl(port()), "GET", {}, "");
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.status, 500);
  EXPECT_FALSE(result.response.Header("set-cookie").has_value());
}

TEST_F(HttpsServerTest, StopAnswersTheRequestInFlightThenCloses) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Responder> held;
  StartServer(TestServerOptions(), [&](HttpRequest, Responder respond) {
    std::lock_guard lock(mu);
    held = std::move(respond);
    cv.notify_all();
  });
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok());
  HttpsResult result;
  std::thread sender([&] { result = (*client)->Send(LocalUrl(port()), "POST", {}, "x"); });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return held.has_value(); });
  }
  std::thread stopper([&] { server_->Stop(); });
  HttpResponse response;
  response.body = "answered while stopping";
  (*held)(std::move(response));
  stopper.join();
  sender.join();
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.body, "answered while stopping");
  EXPECT_EQ(server_->stats().active_connections, 0u);
}

TEST_F(HttpsServerTest, StopGivesUpOnAnUnansweredRequestAndALateRespondIsHarmless) {
  std::mutex mu;
  std::optional<Responder> held;
  HttpsServerOptions options = TestServerOptions();
  options.write_deadline = 200ms;
  StartServer(options, [&](HttpRequest, Responder respond) {
    std::lock_guard lock(mu);
    held = std::move(respond);
  });
  HttpsClientOptions client_options = TestClientOptions();
  auto client = HttpsClient::Create(client_options);
  ASSERT_TRUE(client.ok());
  HttpsResult result;
  std::thread sender([&] { result = (*client)->Send(LocalUrl(port()), "POST", {}, "x"); });
  ASSERT_TRUE(Eventually([&] {
    std::lock_guard lock(mu);
    return held.has_value();
  }));
  server_.reset();  // Stop() and destroy while the request is unanswered
  sender.join();
  EXPECT_NE(result.error, TransportError::kNone);
  std::lock_guard lock(mu);
  (*held)(HttpResponse{});  // after the server is gone: ignored, no crash
}

TEST_F(HttpsServerTest, StopAcceptingRefusesNewConnections) {
  StartEchoServer();
  ExpectServed(port());
  const std::uint16_t old_port = port();
  server_->StopAccepting();
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Send(LocalUrl(old_port), "GET", {}, "").error, TransportError::kConnect);
  server_->Stop();
  server_->Stop();  // idempotent
}

TEST_F(HttpsServerTest, StartReportsUnusableFilesAndBusyPorts) {
  HttpsServerOptions missing_key = TestServerOptions();
  missing_key.key_file = Pki() / "does-not-exist.key";
  auto failed = HttpsServer::Start(missing_key, EchoHandler(nullptr));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(failed.status().message().find("does-not-exist.key"), std::string::npos);

  HttpsServerOptions mismatched = TestServerOptions();
  mismatched.key_file = Pki() / "insurer-100.key";
  failed = HttpsServer::Start(mismatched, EchoHandler(nullptr));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);

  StartEchoServer();
  HttpsServerOptions busy = TestServerOptions();
  busy.port = port();
  failed = HttpsServer::Start(busy, EchoHandler(nullptr));
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), StatusCode::kUnavailable);
}

TEST_F(HttpsServerTest, AChainFileCompletesALeafOnlyCertificateFile) {
  HttpsServerOptions options = TestServerOptions();
  options.cert_chain_file = Pki() / "gateway.pem";   // the leaf alone
  options.chain_file = Pki() / "gateway-chain.pem";  // its intermediate
  StartEchoServer(options);
  ExpectServed(port());  // the client trusts ca.pem: the root only
}

TEST_F(HttpsServerTest, ALeafOnlyCertificateFileWithoutChainFailsVerification) {
  HttpsServerOptions options = TestServerOptions();
  options.cert_chain_file = Pki() / "gateway.pem";
  StartEchoServer(options);
  auto client = HttpsClient::Create(TestClientOptions());
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  const HttpsResult result = (*client)->Send(LocalUrl(port()), "GET", {}, "");
  EXPECT_EQ(result.error, TransportError::kTls) << result.error_detail;
  EXPECT_NE(result.error_detail.find("issuer"), std::string::npos) << result.error_detail;
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpsServerTest, StartReportsAnUnreadableOrEmptyChainFile) {
  const std::filesystem::path empty = Pki() / "server-test-empty-chain.pem";
  std::ofstream(empty).flush();
  const std::filesystem::path no_pem = Pki() / "server-test-not-pem-chain.pem";
  std::ofstream(no_pem) << "not a certificate\n";
  for (const std::filesystem::path& chain :
       {Pki() / "no-such-chain.pem", empty, no_pem, Pki() / "gateway.key"}) {
    SCOPED_TRACE(chain.string());
    HttpsServerOptions options = TestServerOptions();
    options.cert_chain_file = Pki() / "gateway.pem";
    options.chain_file = chain;
    auto failed = HttpsServer::Start(options, EchoHandler(nullptr));
    ASSERT_FALSE(failed.ok());
    EXPECT_EQ(failed.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(failed.status().message().find(chain.string()), std::string::npos)
        << failed.status().ToString();
  }
}

TEST(HttpRequestTest, HeaderPathAndQuery) {
  HttpRequest request;
  request.target =
      "/v1/messages?state=queued&since=2026-01-01T10:00:00+01:00&k%65y=v%2Fw&flag&bad=%zz";
  request.headers = {{"content-type", "application/xml"}, {"x-a", "1"}, {"x-a", "2"}};
  EXPECT_EQ(request.Path(), "/v1/messages");
  EXPECT_EQ(request.Header("Content-Type"), "application/xml");
  EXPECT_EQ(request.Header("X-A"), "1");
  EXPECT_FALSE(request.Header("missing").has_value());
  EXPECT_EQ(request.Query("state"), "queued");
  EXPECT_EQ(request.Query("since"), "2026-01-01T10:00:00+01:00");
  EXPECT_EQ(request.Query("key"), "v/w");
  EXPECT_EQ(request.Query("flag"), "");
  EXPECT_EQ(request.Query("bad"), "%zz");
  EXPECT_FALSE(request.Query("State").has_value());
  request.target = "/healthz";
  EXPECT_EQ(request.Path(), "/healthz");
  EXPECT_FALSE(request.Query("state").has_value());
}

}  // namespace
}  // namespace psl::gateway
