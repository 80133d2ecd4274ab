// HttpsClient against a real HttpsServer on 127.0.0.1 with the generated test PKI.
#include "gateway/https_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "certs/testing/test_pki.h"
#include "gateway/https_server.h"

namespace psl::gateway {
namespace {

using namespace std::chrono_literals;

const certs::testing::TestPki& Pki() {
  return certs::testing::SharedTestPki();
}

constexpr auto kPatience = 20s;  // only reached when the code under test misbehaves

HttpsServerOptions ServerOptions() {
  HttpsServerOptions o;
  o.cert_chain_file = Pki() / "insurer-100-fullchain.pem";
  o.key_file = Pki() / "insurer-100.key";
  o.client_ca_file = Pki() / "ca.pem";
  o.client_certificates = ClientCertificateMode::kRequired;
  return o;
}

HttpsClientOptions ClientOptions() {
  HttpsClientOptions o;
  o.ca_file = Pki() / "ca.pem";
  o.client_cert_file = Pki() / "gateway-fullchain.pem";
  o.client_key_file = Pki() / "gateway.key";
  o.connect_timeout = kPatience;
  o.request_timeout = kPatience;
  return o;
}

// ClientOptions() presenting practice-81234530000's certificate: `cert_file` (leaf only, or
// leaf + intermediate) with the key `key_file`, both in the test PKI.
HttpsClientOptions PracticeClientOptions(const std::string& cert_file,
                                         const std::string& key_file) {
  HttpsClientOptions o = ClientOptions();
  o.client_cert_file = Pki() / cert_file;
  o.client_key_file = Pki() / key_file;
  return o;
}

bool Eventually(const std::function<bool()>& condition) {
  const auto give_up = std::chrono::steady_clock::now() + kPatience;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) {
      return false;
    }
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

class HttpsClientTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(Pki().ok()) << "certs/make-test-pki.sh failed"; }

  void StartServer(HttpsServerOptions options = ServerOptions()) {
    auto server = HttpsServer::Start(std::move(options), [this](HttpRequest r, Responder respond) {
      ++calls_;
      if (r.Path() == "/never") {
        std::lock_guard lock(mu_);
        held_.push_back(std::move(respond));  // answered never (until the test ends)
        return;
      }
      HttpResponse response;
      if (r.Path() == "/reset") {
        response.close_without_response = true;  // the server resets the connection
        respond(std::move(response));
        return;
      }
      response.headers = {{"x-peer", r.peer.subject},
                          {"x-host", std::string(r.Header("host").value_or(""))},
                          {"x-user-agent", std::string(r.Header("user-agent").value_or(""))},
                          {"x-method", r.method}};
      response.body = r.Path() == "/big" ? std::string(4096, 'b') : r.body;
      respond(std::move(response));
    });
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
  }

  HttpsUrl Url(std::string host = "127.0.0.1", std::string target = "/echo") const {
    HttpsUrl url;
    url.host = std::move(host);
    url.port = server_->port();
    url.target = std::move(target);
    return url;
  }

  std::unique_ptr<HttpsClient> Client(HttpsClientOptions options = ClientOptions()) {
    auto client = HttpsClient::Create(std::move(options));
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return client.ok() ? std::move(*client) : nullptr;
  }

  // A client with `options` is answered, and the server saw a peer certificate whose subject
  // holds `subject_part`.
  void ExpectServedAs(const HttpsClientOptions& options, const std::string& subject_part) {
    auto client = Client(options);
    ASSERT_TRUE(client);
    const HttpsResult result = client->Send(Url(), "GET", {}, "");
    ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
    EXPECT_NE(result.response.Header("x-peer").value_or("").find(subject_part), std::string::npos)
        << result.response.Header("x-peer").value_or("");
  }

  void TearDown() override {
    server_.reset();
    std::lock_guard lock(mu_);
    held_.clear();
  }

  std::atomic<int> calls_{0};
  std::mutex mu_;
  std::vector<Responder> held_;
  std::unique_ptr<HttpsServer> server_;
};

TEST(ParseHttpsUrlTest, AcceptsHostPortAndTarget) {
  auto url = ParseHttpsUrl("https://MyCareNet.example.be:8443/ws/v1?x=1");
  ASSERT_TRUE(url.ok()) << url.status().ToString();
  EXPECT_EQ(url->host, "mycarenet.example.be");
  EXPECT_EQ(url->port, 8443);
  EXPECT_EQ(url->target, "/ws/v1?x=1");

  url = ParseHttpsUrl("https://insurer.example");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->port, 443);
  EXPECT_EQ(url->target, "/");

  url = ParseHttpsUrl("https://127.0.0.1:9/");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "127.0.0.1");
  EXPECT_EQ(url->port, 9);

  url = ParseHttpsUrl("https://[::1]:8443?q");
  ASSERT_TRUE(url.ok());
  EXPECT_EQ(url->host, "::1");
  EXPECT_EQ(url->target, "/?q");
}

TEST(ParseHttpsUrlTest, RefusesAnythingElse) {
  for (const char* bad : {"http://insurer.example/", "insurer.example", "https://", "https:///path",
                          "https://user:pw@insurer.example/", "https://insurer.example/#frag",
                          "https://insurer.example:0/", "https://insurer.example:65536/",
                          "https://insurer.example:x/", "https://insurer.example:/",
                          "https://insu rer.example/", "https://[::1/", "https://[zz]/",
                          "https://insurer.example/a b", "ftp://insurer.example/"}) {
    SCOPED_TRACE(bad);
    auto url = ParseHttpsUrl(bad);
    ASSERT_FALSE(url.ok());
    EXPECT_EQ(url.status().code(), StatusCode::kInvalid);
  }
}

TEST(TransportErrorNameTest, NamesEveryError) {
  EXPECT_STREQ(TransportErrorName(TransportError::kConnect), "connect");
  EXPECT_STREQ(TransportErrorName(TransportError::kTls), "tls");
  EXPECT_STREQ(TransportErrorName(TransportError::kTimeout), "timeout");
  EXPECT_STREQ(TransportErrorName(TransportError::kReset), "reset");
  EXPECT_STREQ(TransportErrorName(TransportError::kProtocol), "protocol");
}

TEST_F(HttpsClientTest, ReusesOneConnectionAcrossRequests) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  for (int i = 0; i < 3; ++i) {
    const std::string body = "request " + std::to_string(i);
    const HttpsResult result =
        client->Send(Url(), "POST", {{"Content-Type", "text/xml; charset=utf-8"}}, body);
    ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
    EXPECT_EQ(result.response.status, 200);
    EXPECT_EQ(result.response.body, body);
    EXPECT_EQ(result.error_detail, "");
  }
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  EXPECT_EQ(server_->stats().requests, 3u);
}

TEST_F(HttpsClientTest, SendsHostUserAgentAndPresentsItsCertificate) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  const HttpsResult result = client->Send(Url("localhost"), "GET", {}, "");
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.Header("x-host"), "localhost:" + std::to_string(server_->port()));
  EXPECT_EQ(result.response.Header("x-user-agent"), "Passerelle");
  EXPECT_NE(result.response.Header("x-peer").value_or("").find("CN=gateway"), std::string::npos);
}

TEST_F(HttpsClientTest, ReconnectsWhenTheServerClosedTheIdleConnection) {
  HttpsServerOptions options = ServerOptions();
  options.idle_timeout = 100ms;
  StartServer(options);
  auto client = Client();
  ASSERT_TRUE(client);
  ASSERT_EQ(client->Send(Url(), "POST", {}, "one").error, TransportError::kNone);
  ASSERT_TRUE(Eventually([&] { return server_->stats().active_connections == 0; }));
  const HttpsResult result = client->Send(Url(), "POST", {}, "two");
  ASSERT_EQ(result.error, TransportError::kNone) << result.error_detail;
  EXPECT_EQ(result.response.body, "two");
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
  EXPECT_EQ(calls_, 2);  // nothing sent twice
}

TEST_F(HttpsClientTest, ConnectionCloseFromTheCallerMeansANewConnectionNextTime) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  const HttpsResult first = client->Send(Url(), "GET", {{"Connection", "close"}}, "");
  ASSERT_EQ(first.error, TransportError::kNone) << first.error_detail;
  EXPECT_EQ(first.response.Header("connection"), "close");
  ASSERT_EQ(client->Send(Url(), "GET", {}, "").error, TransportError::kNone);
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(HttpsClientTest, HostnameMismatchIsATlsError) {
  StartServer();
  HttpsClientOptions options = ClientOptions();
  options.tls_server_name = "insurer-100.example";  // not in the SAN (DNS:localhost IP:127.0.0.1)
  auto client = Client(options);
  ASSERT_TRUE(client);
  const HttpsResult result = client->Send(Url(), "GET", {}, "");
  EXPECT_EQ(result.error, TransportError::kTls);
  EXPECT_NE(result.error_detail.find("hostname mismatch"), std::string::npos)
      << result.error_detail;
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpsClientTest, UntrustedServerCaIsATlsError) {
  StartServer();
  HttpsClientOptions options = ClientOptions();
  options.ca_file = Pki() / "untrusted-root-ca.pem";
  auto client = Client(options);
  ASSERT_TRUE(client);
  const HttpsResult result = client->Send(Url(), "GET", {}, "");
  EXPECT_EQ(result.error, TransportError::kTls) << result.error_detail;
  EXPECT_NE(result.error_detail.find("certificate"), std::string::npos) << result.error_detail;
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpsClientTest, AnUnansweredRequestIsATimeout) {
  HttpsServerOptions options = ServerOptions();
  options.write_deadline = 200ms;  // bounds Stop() at the end of the test
  StartServer(options);
  HttpsClientOptions client_options = ClientOptions();
  client_options.request_timeout = 300ms;
  auto client = Client(client_options);
  ASSERT_TRUE(client);
  const HttpsResult result = client->Send(Url("127.0.0.1", "/never"), "POST", {}, "x");
  EXPECT_EQ(result.error, TransportError::kTimeout) << result.error_detail;
  EXPECT_EQ(calls_, 1);  // a timeout is not retried
  // The client is usable again afterwards, on a new connection.
  const HttpsResult next = client->Send(Url(), "POST", {}, "y");
  ASSERT_EQ(next.error, TransportError::kNone) << next.error_detail;
  EXPECT_EQ(next.response.body, "y");
}

TEST_F(HttpsClientTest, ServerGoneIsAConnectError) {
  StartServer();
  const HttpsUrl url = Url();
  server_.reset();
  auto client = Client();
  ASSERT_TRUE(client);
  const HttpsResult result = client->Send(url, "GET", {}, "");
  EXPECT_EQ(result.error, TransportError::kConnect) << result.error_detail;
  EXPECT_NE(result.error_detail, "");
}

TEST_F(HttpsClientTest, AConnectionResetWithoutResponseIsAResetAndAPostIsNotRetried) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  ASSERT_EQ(client->Send(Url(), "POST", {}, "one").error, TransportError::kNone);  // kept alive
  const HttpsResult reset = client->Send(Url("127.0.0.1", "/reset"), "POST", {}, "two");
  EXPECT_EQ(reset.error, TransportError::kReset) << reset.error_detail;
  EXPECT_NE(reset.error_detail, "");
  EXPECT_EQ(calls_, 2);  // the server may have processed the POST: not sent again
  // On a fresh connection too.
  auto fresh = Client();
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->Send(Url("127.0.0.1", "/reset"), "POST", {}, "three").error,
            TransportError::kReset);
  EXPECT_EQ(calls_, 3);
  // The first client recovers on a new connection.
  const HttpsResult next = client->Send(Url(), "POST", {}, "four");
  ASSERT_EQ(next.error, TransportError::kNone) << next.error_detail;
  EXPECT_EQ(next.response.body, "four");
  EXPECT_EQ(server_->stats().connections_accepted, 3u);
}

TEST_F(HttpsClientTest, AGetResetOnAKeptConnectionIsRetriedOnceOnANewOne) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  ASSERT_EQ(client->Send(Url(), "GET", {}, "").error, TransportError::kNone);  // kept alive
  const HttpsResult reset = client->Send(Url("127.0.0.1", "/reset"), "GET", {}, "");
  EXPECT_EQ(reset.error, TransportError::kReset) << reset.error_detail;
  EXPECT_EQ(calls_, 3);  // the reset on the reused connection, then once on a new one
  EXPECT_EQ(server_->stats().connections_accepted, 2u);
}

TEST_F(HttpsClientTest, AResponseOverTheCapIsAProtocolError) {
  StartServer();
  HttpsClientOptions options = ClientOptions();
  options.max_response_bytes = 1024;
  auto client = Client(options);
  ASSERT_TRUE(client);
  const HttpsResult result = client->Send(Url("127.0.0.1", "/big"), "GET", {}, "");
  EXPECT_EQ(result.error, TransportError::kProtocol) << result.error_detail;
  EXPECT_EQ(result.error_detail.find("bbbb"), std::string::npos);  // never body bytes
}

TEST_F(HttpsClientTest, HeadReadsNoBody) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  const HttpsResult head = client->Send(Url("127.0.0.1", "/big"), "HEAD", {}, "");
  ASSERT_EQ(head.error, TransportError::kNone) << head.error_detail;
  EXPECT_EQ(head.response.Header("content-length"), "4096");
  EXPECT_EQ(head.response.body, "");
  const HttpsResult get = client->Send(Url("127.0.0.1", "/big"), "GET", {}, "");
  ASSERT_EQ(get.error, TransportError::kNone) << get.error_detail;
  EXPECT_EQ(get.response.body.size(), 4096u);
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_F(HttpsClientTest, InvalidHeadersAreRefusedBeforeSending) {
  StartServer();
  auto client = Client();
  ASSERT_TRUE(client);
  const HttpsResult result = client->Send(Url(), "POST", {{"X-Bad", "a\r\nInjected: 1"}}, "");
  EXPECT_EQ(result.error, TransportError::kProtocol);
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpsClientTest, AClientChainFileCompletesALeafOnlyCertificate) {
  StartServer();  // kRequired, trusting ca.pem: the root only
  HttpsClientOptions options =
      PracticeClientOptions("practice-81234530000.pem", "practice-81234530000.key");
  options.client_chain_file = Pki() / "practice-81234530000-chain.pem";
  ExpectServedAs(options, "CN=practice-81234530000");
}

TEST_F(HttpsClientTest, ALeafOnlyClientCertificateWithoutChainIsRefused) {
  StartServer();
  auto client =
      Client(PracticeClientOptions("practice-81234530000.pem", "practice-81234530000.key"));
  ASSERT_TRUE(client);
  EXPECT_NE(client->Send(Url(), "GET", {}, "").error, TransportError::kNone);
  EXPECT_TRUE(Eventually([&] { return server_->stats().handshakes_failed == 1; }));
  EXPECT_EQ(calls_, 0);
}

TEST_F(HttpsClientTest, AnEncryptedClientKeyIsDecryptedWithThePasswordFile) {
  StartServer();
  HttpsClientOptions options = PracticeClientOptions("practice-81234530000-fullchain.pem",
                                                     "practice-81234530000-encrypted.key");
  options.client_key_password_file = Pki() / "practice-81234530000.pass";
  ExpectServedAs(options, "CN=practice-81234530000");
}

TEST(HttpsClientCreateTest, ReportsUnusableChainAndPasswordFiles) {
  ASSERT_TRUE(Pki().ok());
  const std::filesystem::path empty = Pki() / "client-test-empty.pem";
  std::ofstream(empty).flush();
  const std::filesystem::path wrong = Pki() / "client-test-wrong.pass";
  std::ofstream(wrong) << "not the password\n";
  const HttpsClientOptions base =
      PracticeClientOptions("practice-81234530000.pem", "practice-81234530000.key");
  struct Case {
    const char* what;
    std::function<void(HttpsClientOptions*)> change;
    std::filesystem::path named;  // the file the message must name
  };
  const std::vector<Case> cases = {
      {"missing chain", [](HttpsClientOptions* o) { o->client_chain_file = Pki() / "nope.pem"; },
       Pki() / "nope.pem"},
      {"empty chain", [&](HttpsClientOptions* o) { o->client_chain_file = empty; }, empty},
      {"encrypted key without password",
       [](HttpsClientOptions* o) {
         o->client_key_file = Pki() / "practice-81234530000-encrypted.key";
       },
       Pki() / "practice-81234530000-encrypted.key"},
      {"wrong password",
       [&](HttpsClientOptions* o) {
         o->client_key_file = Pki() / "practice-81234530000-encrypted.key";
         o->client_key_password_file = wrong;
       },
       Pki() / "practice-81234530000-encrypted.key"},
      {"missing password file",
       [](HttpsClientOptions* o) {
         o->client_key_file = Pki() / "practice-81234530000-encrypted.key";
         o->client_key_password_file = Pki() / "nope.pass";
       },
       Pki() / "nope.pass"},
      {"empty password file",
       [&](HttpsClientOptions* o) {
         o->client_key_file = Pki() / "practice-81234530000-encrypted.key";
         o->client_key_password_file = empty;
       },
       empty},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    HttpsClientOptions options = base;
    c.change(&options);
    auto client = HttpsClient::Create(options);
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(client.status().message().find(c.named.string()), std::string::npos)
        << client.status().ToString();
  }
}

TEST(HttpsClientCreateTest, ReportsUnusableFiles) {
  ASSERT_TRUE(Pki().ok());
  HttpsClientOptions options = ClientOptions();
  options.ca_file = Pki() / "no-such-ca.pem";
  auto client = HttpsClient::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(client.status().message().find("no-such-ca.pem"), std::string::npos);

  options = ClientOptions();
  options.client_key_file = Pki() / "insurer-300.key";  // not the certificate's key
  client = HttpsClient::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace psl::gateway
