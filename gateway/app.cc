#include "gateway/app.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/crypto_handles.h"
#include "certs/key_store.h"
#include "certs/trust_store.h"
#include "codecs/genasync.h"
#include "codecs/mhm_response.h"
#include "codecs/schema_registry.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"
#include "gateway/api.h"
#include "gateway/delivery.h"
#include "gateway/https_server.h"
#include "gateway/log.h"
#include "gateway/mailbox.h"
#include "gateway/metrics.h"
#include "gateway/routing.h"
#include "gateway/worker_pool.h"
#include "store/audit.h"
#include "store/rocksdb_store.h"

#include <nlohmann/json.hpp>

namespace psl::gateway {
namespace {

using std::chrono::milliseconds;

HttpResponse Overloaded() {
  HttpResponse r;
  r.status = 503;
  r.headers = {{"content-type", "application/problem+json"}, {"retry-after", "1"}};
  r.body = R"({"type":"about:blank","title":"Service Unavailable","status":503,)"
           R"("detail":"the gateway is at capacity or shutting down; retry later"})";
  return r;
}

// Runs every request on `pool`; a pool that refuses (full, behind by more than its queue delay,
// stopped) answers 503 at once on the calling (network) thread, counted in `shed` when not null.
Handler PoolHandler(WorkerPool* pool, CounterFamily* shed,
                    std::function<HttpResponse(const HttpRequest&)> handle) {
  return [pool, shed, handle = std::move(handle)](HttpRequest request, Responder respond) {
    auto shared = std::make_shared<HttpRequest>(std::move(request));
    auto reply = std::make_shared<Responder>(std::move(respond));
    const Admission admission = pool->Post([shared, reply, handle] { (*reply)(handle(*shared)); });
    if (admission != Admission::kAccepted) {
      if (shed != nullptr) {
        shed->WithLabels({AdmissionName(admission), ""})->Inc();
      }
      (*reply)(Overloaded());
    }
  };
}

StatusOr<SigningIdentity> LoadKeys(const KeyFiles& files) {
  const std::filesystem::path* chain = files.chain_file.empty() ? nullptr : &files.chain_file;
  const std::filesystem::path* password =
      files.password_file.empty() ? nullptr : &files.password_file;
  return certs::LoadPemIdentity(files.key_file, files.cert_file, chain, password);
}

Status Precondition(const std::string& what, const Status& status) {
  return Status::FailedPrecondition(what + ": " + status.message());
}

}  // namespace

struct App::Parts {
  Config config;
  SystemClock clock;
  codecs::XmlLibrary xml;
  codecs::XmlSecLibrary xmlsec;
  std::unique_ptr<Logger> logger;
  std::unique_ptr<codecs::SchemaRegistry> schemas;
  SigningIdentity gateway_identity;
  std::map<std::string, SigningIdentity> practice_identities;
  X509StorePtr practice_trust;                        // verifies practices' own signatures
  std::map<std::string, X509StorePtr> insurer_trust;  // verifies each insurer's answers
  // MyCareNet's encryption certificate per insurer key (eAttest seal recipient).
  std::map<std::string, X509Ptr> encryption_certs;
  std::string pseudonym_key;
  // The certificates whose expiry /readyz and /metrics show: the server's TLS leaf, each insurer
  // client's, and each insurer's encryption certificate (eAttest).
  std::vector<std::pair<std::string, X509Ptr>> tls_certificates;
  std::unique_ptr<store::RocksDbStore> store;
  std::unique_ptr<RoutingTable> routing;
  Metrics metrics;
  GatewayMetrics gateway_metrics;
  std::unique_ptr<WorkerPool> pool;
  std::unique_ptr<WorkerPool> ops_pool;
  std::unique_ptr<Api> api;
  std::unique_ptr<HttpsSender> sender;
  std::unique_ptr<Delivery> delivery;
  std::unique_ptr<Mailbox> mailbox;
  std::unique_ptr<HttpsServer> server;
  std::unique_ptr<HttpsServer> ops_server;
  std::atomic<bool> draining{false};
  // Retention runs in its own thread, woken by Shutdown.
  std::thread maintenance;
  std::mutex maintenance_mu;
  std::condition_variable maintenance_cv;
  bool stop_maintenance = false;
  bool shut_down = false;

  Readiness Ready() {
    Readiness r;
    if (draining) {
      r.reasons.push_back("draining");
    }
    if (Status s = store->WriteHealth(); !s.ok()) {
      r.reasons.push_back("store not writable: " + s.message());
    }
    if (schemas == nullptr) {
      r.reasons.push_back("schemas not loaded");
    }
    const auto window = std::chrono::duration_cast<std::chrono::seconds>(config.key_expiry_warning);
    std::string warning;
    if (Status s = certs::CheckUsable(gateway_identity, clock, window, &warning); !s.ok()) {
      r.reasons.push_back("gateway key: " + s.message());
    } else if (!warning.empty()) {
      r.reasons.push_back("gateway key: " + warning);
    }
    // A practice's own key expiring concerns that practice only (its requests fail to sign and
    // get their error; /metrics shows the expiry): it does not take the gateway out of service.
    for (const auto& [name, cert] : tls_certificates) {
      const std::chrono::seconds left = certs::SecondsToExpiry(cert.get(), clock);
      if (left.count() <= 0) {
        r.reasons.push_back(name + " certificate has expired");
      } else if (left <= window) {
        r.reasons.push_back(name + " certificate expires within the warning window");
      }
    }
    r.ready = r.reasons.empty();
    return r;
  }

  void CollectMetrics() {
    const store::RocksDbStore::MemoryUsage memory = store->memory_usage();
    gateway_metrics.store_memory_bytes->WithLabels({"memtables"})
        ->Set(static_cast<double>(memory.memtables));
    gateway_metrics.store_memory_bytes->WithLabels({"table_readers"})
        ->Set(static_cast<double>(memory.table_readers));
    gateway_metrics.store_memory_bytes->WithLabels({"block_cache"})
        ->Set(static_cast<double>(memory.block_cache));
    for (const auto& [key, insurer] : config.insurers) {
      StatusOr<store::QueueStats> stats = store->Stats(key);
      if (stats.ok()) {
        gateway_metrics.queue_depth->WithLabels({key})->Set(static_cast<double>(stats->depth));
        const double age =
            stats->oldest_accepted_ms == 0
                ? 0.0
                : static_cast<double>(store::ToEpochMs(clock.Now()) - stats->oldest_accepted_ms) /
                      1000.0;
        gateway_metrics.queue_oldest_age_seconds->WithLabels({key})->Set(age);
      }
      if (delivery != nullptr) {
        gateway_metrics.breaker_open->WithLabels({key})->Set(delivery->breaker_open(key) ? 1 : 0);
      }
    }
    auto expiry = [&](const std::string& name, const SigningIdentity& identity) {
      if (identity.certificate != nullptr) {
        gateway_metrics.certificate_expiry_seconds->WithLabels({name})->Set(
            static_cast<double>(certs::SecondsToExpiry(identity.certificate.get(), clock).count()));
      }
    };
    expiry("gateway-signing", gateway_identity);
    for (const auto& [nihii, identity] : practice_identities) {
      expiry("practice-" + nihii, identity);
    }
    for (const auto& [name, cert] : tls_certificates) {
      gateway_metrics.certificate_expiry_seconds->WithLabels({name})->Set(
          static_cast<double>(certs::SecondsToExpiry(cert.get(), clock).count()));
    }
  }

  void Maintain() {
    std::unique_lock<std::mutex> lock(maintenance_mu);
    while (!stop_maintenance) {
      lock.unlock();
      const auto now = clock.Now();
      StatusOr<store::PurgeResult> purged = store->PurgeDelivered(now);
      if (!purged.ok()) {
        logger->Warn("retention: payload purge failed", {.error = purged.status().message()});
      }
      StatusOr<store::PurgeResult> audit = store->PurgeAudit(now - config.store.audit_retention);
      if (!audit.ok() && audit.status().code() != StatusCode::kFailedPrecondition) {
        logger->Warn("retention: audit purge failed", {.error = audit.status().message()});
      }
      lock.lock();
      maintenance_cv.wait_for(lock, std::chrono::minutes(10), [this] { return stop_maintenance; });
    }
  }
};

StatusOr<std::unique_ptr<App>> App::Start(const std::filesystem::path& config_file,
                                          const AppOptions& options) {
  std::unique_ptr<App> app(new App());
  app->parts_ = std::make_unique<Parts>();
  Parts& p = *app->parts_;

  std::vector<ConfigProblem> problems;
  StatusOr<Config> config = LoadConfig(config_file, options.load, &problems);
  if (!config.ok()) {
    std::string detail = config.status().message();
    for (const ConfigProblem& problem : problems) {
      if (!problem.warning) {
        detail += "\n  " + FormatProblem(config_file.string(), problem);
      }
    }
    return Status::FailedPrecondition(detail);
  }
  p.config = std::move(config).value();
  const Config& c = p.config;
  p.logger = std::make_unique<Logger>(ParseLogLevel(c.logging.level).value_or(LogLevel::kInfo),
                                      nullptr, &p.clock);

  StatusOr<std::unique_ptr<codecs::SchemaRegistry>> schemas =
      codecs::SchemaRegistry::Load(c.schemas_dir);
  if (!schemas.ok()) {
    return Precondition("schemas " + c.schemas_dir.string(), schemas.status());
  }
  p.schemas = std::move(schemas).value();

  StatusOr<SigningIdentity> gateway = LoadKeys(c.signing);
  if (!gateway.ok()) {
    return Precondition("[signing]", gateway.status());
  }
  p.gateway_identity = std::move(gateway).value();
  for (const auto& [nihii, practice] : c.practices) {
    if (practice.signing.empty()) {
      continue;
    }
    StatusOr<SigningIdentity> identity = LoadKeys(practice.signing);
    if (!identity.ok()) {
      return Precondition("[practices." + nihii + "] signing", identity.status());
    }
    p.practice_identities.emplace(nihii, std::move(identity).value());
  }
  StatusOr<X509StorePtr> practice_trust = certs::LoadTrustStore(c.server.client_ca_file);
  if (!practice_trust.ok()) {
    return Precondition("[server] client_ca_file", practice_trust.status());
  }
  p.practice_trust = std::move(practice_trust).value();
  for (const auto& [key, insurer] : c.insurers) {
    // Answers and mailbox returns are verified against the insurer's signing CAs, not its TLS
    // server CAs (ca_file is only the fallback of an older configuration; see config.h).
    const char* trust_key = insurer.signing_ca_file.empty() ? "ca_file" : "signing_ca_file";
    if (insurer.signing_ca_file.empty()) {
      p.logger->Warn(
          "insurer signing_ca_file is absent: answer signatures are verified against ca_file "
          "(the TLS server CAs)",
          {.insurer = key});
    }
    StatusOr<X509StorePtr> trust = certs::LoadTrustStore(insurer.SigningTrustFile());
    if (!trust.ok()) {
      return Precondition("[insurers." + key + "] " + trust_key, trust.status());
    }
    p.insurer_trust.emplace(key, std::move(trust).value());
  }
  auto leaf = [&p](const std::string& name, const std::filesystem::path& file) -> Status {
    StatusOr<std::vector<X509Ptr>> certs = certs::ReadPemCertificates(file);
    if (!certs.ok()) {
      return Precondition(name, certs.status());
    }
    p.tls_certificates.emplace_back(name, std::move(certs->front()));
    return Status::Ok();
  };
  PSL_RETURN_IF_ERROR(leaf("tls-server", c.server.tls_cert_file));
  for (const auto& [key, insurer] : c.insurers) {
    if (!insurer.client.cert_file.empty()) {
      PSL_RETURN_IF_ERROR(leaf("insurer-" + key + "-client", insurer.client.cert_file));
    }
    if (!insurer.encryption_cert_file.empty()) {
      StatusOr<std::vector<X509Ptr>> certs =
          certs::ReadPemCertificates(insurer.encryption_cert_file);
      if (!certs.ok()) {
        return Precondition("[insurers." + key + "] encryption_cert_file", certs.status());
      }
      X509* cert = certs->front().get();
      X509_up_ref(cert);  // a second owner: the expiry list
      p.tls_certificates.emplace_back("insurer-" + key + "-encryption", X509Ptr(cert));
      p.encryption_certs.emplace(key, std::move(certs->front()));
    }
  }
  StatusOr<std::string> pseudonym_key = store::ReadPseudonymKeyFile(c.store.pseudonym_key_file);
  if (!pseudonym_key.ok()) {
    return Precondition("[store] pseudonym_key_file", pseudonym_key.status());
  }
  p.pseudonym_key = std::move(pseudonym_key).value();

  p.gateway_metrics = RegisterGatewayMetrics(p.metrics);
  store::RocksDbStoreOptions store_options;
  store_options.path = c.store.data_dir;
  store_options.payload_key_file = c.store.payload_key_file;
  store_options.clock = &p.clock;
  store_options.sync = c.store.sync;
  store_options.disk_reserve_bytes = c.store.free_space_reserve_bytes;
  store_options.delivered_retention = c.store.payload_retention;
  store_options.checkpoint_identity = &p.gateway_identity;
  store_options.checkpoint_every_events = c.store.checkpoint_every_events;
  HistogramFamily* batch_sizes = p.gateway_metrics.commit_batch_size;
  store_options.on_group_written = [batch_sizes](std::size_t operations) {
    batch_sizes->Get()->Observe(static_cast<double>(operations));
  };
  StatusOr<std::unique_ptr<store::RocksDbStore>> opened =
      store::RocksDbStore::Open(std::move(store_options));
  if (!opened.ok()) {
    return Precondition("[store] " + c.store.data_dir.string(), opened.status());
  }
  p.store = std::move(opened).value();
  store::RocksDbStore* member_registry = p.store.get();
  p.routing = std::make_unique<RoutingTable>(c, [member_registry](const std::string& pseudonym) {
    return member_registry->MemberInsurer(pseudonym);
  });

  const std::size_t workers = c.server.worker_threads != 0
                                  ? c.server.worker_threads
                                  : std::max<std::size_t>(2, std::thread::hardware_concurrency());
  WorkerPool::Options intake;
  intake.threads = workers * 8;
  intake.max_queued = c.server.max_connections;
  intake.max_queue_delay = c.server.max_queue_delay;
  intake.clock = &p.clock;
  p.pool = std::make_unique<WorkerPool>(intake);
  WorkerPool::Options ops_pool;  // no delay limit: /healthz and /metrics answer under load
  ops_pool.threads = 1;
  ops_pool.max_queued = 64;
  p.ops_pool = std::make_unique<WorkerPool>(ops_pool);

  p.sender = std::make_unique<HttpsSender>(c);
  AnswerParser parser = [&p](const store::Lease& lease,
                             std::string_view body) -> StatusOr<ParsedAnswer> {
    if (lease.operation == "post" && (lease.flow_kind == MessageKindName(MessageKind::kClaim) ||
                                      lease.flow_kind == MessageKindName(MessageKind::kAmu))) {
      return ParsePostAnswer(lease, body, *p.schemas);  // the TAck (unsigned)
    }
    if (IsMediPrimaMessage(lease.flow_kind, lease.operation)) {
      return ParseMediPrimaAnswer(lease, body, *p.schemas);  // unsigned eHealth body
    }
    auto trust = p.insurer_trust.find(lease.destination);
    if (trust == p.insurer_trust.end()) {
      return Status::Invalid("no trust store for insurer " + lease.destination);
    }
    if (IsEAttestMessage(lease.flow_kind, lease.operation)) {
      // Sealed for our Reply-to certificate: the identity that sealed the request, chosen as at
      // intake (the practice's own key, else the gateway's). A request sealed by the gateway
      // before the practice got its own key is still opened with the gateway's.
      auto own = p.practice_identities.find(lease.practice_nihii);
      if (own == p.practice_identities.end()) {
        return ParseEAttestAnswer(lease, body, *p.schemas, p.gateway_identity, trust->second.get(),
                                  p.clock);
      }
      StatusOr<ParsedAnswer> parsed =
          ParseEAttestAnswer(lease, body, *p.schemas, own->second, trust->second.get(), p.clock);
      if (!parsed.ok()) {
        StatusOr<ParsedAnswer> legacy = ParseEAttestAnswer(
            lease, body, *p.schemas, p.gateway_identity, trust->second.get(), p.clock);
        if (legacy.ok()) {
          return legacy;
        }
      }
      return parsed;
    }
    StatusOr<codecs::MhmAnswer> answer =
        codecs::ParseMhmResponse(body, *p.schemas, trust->second.get(), p.clock);
    if (!answer.ok()) {
      return answer.status();
    }
    if (answer->input_reference != "_" + lease.message_id) {
      return Status::Invalid("the answer refers to another request");
    }
    ParsedAnswer parsed;
    parsed.decision = answer->decision;
    parsed.codes = answer->codes;
    parsed.insurer_reference = answer->insurer_reference;
    return parsed;
  };
  GatewayMetrics* gm = &p.gateway_metrics;
  Logger* logger = p.logger.get();
  AttemptObserver observer = [gm, logger](const std::string& insurer, const std::string& message_id,
                                          std::string_view outcome) {
    if (outcome == "breaker-open") {
      return;  // shown by the breaker gauge, not as attempts
    }
    gm->delivery_attempts_total->WithLabels({insurer, std::string(outcome)})->Inc();
    if (outcome == "dead") {
      gm->dead_letters_total->WithLabels({insurer})->Inc();
      logger->Warn("delivery dead-lettered", {.message_id = message_id, .insurer = insurer});
    }
  };
  DeliveryOptions delivery_options;
  // A genasync post routed to the hub is addressed to the batch's own insurer.
  delivery_options.genasync_destination = [&p](const store::Lease& lease) -> std::string {
    if (lease.destination.size() == 3 &&
        std::all_of(lease.destination.begin(), lease.destination.end(),
                    [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return lease.destination;
    }
    codecs::ValidationReport report;
    StatusOr<codecs::GenAsyncPost> post =
        codecs::GenAsyncCodec(*p.schemas).Decode(lease.payload, &report);
    return post.ok() ? post->destination : "MULTICAST";
  };
  p.delivery = std::make_unique<Delivery>(c, p.store.get(), &p.clock, &p.gateway_identity,
                                          p.sender.get(), std::move(parser), std::move(observer),
                                          std::move(delivery_options));
  MailboxDeps mailbox;
  mailbox.config = &p.config;
  mailbox.queue = p.store.get();
  mailbox.schemas = p.schemas.get();
  mailbox.clock = &p.clock;
  mailbox.identity = &p.gateway_identity;
  mailbox.sender = p.sender.get();
  mailbox.trust = [&p](const std::string& insurer) -> X509_STORE* {
    auto it = p.insurer_trust.find(insurer);
    return it == p.insurer_trust.end() ? nullptr : it->second.get();
  };
  mailbox.metrics = &p.metrics;
  mailbox.logger = p.logger.get();
  p.mailbox = std::make_unique<Mailbox>(std::move(mailbox));

  ApiDeps deps;
  deps.config = &p.config;
  deps.queue = p.store.get();
  deps.audit = p.store.get();
  deps.schemas = p.schemas.get();
  deps.clock = &p.clock;
  deps.routing = p.routing.get();
  deps.gateway_identity = &p.gateway_identity;
  for (const auto& [nihii, identity] : p.practice_identities) {
    deps.practice_identities.emplace(nihii, &identity);
  }
  deps.trust = p.practice_trust.get();
  for (const auto& [key, cert] : p.encryption_certs) {
    deps.encryption_certs.emplace(key, cert.get());
  }
  deps.metrics = &p.metrics;
  deps.pseudonym_key = p.pseudonym_key;
  deps.readiness = [&p] {
    return p.Ready();
  };
  deps.logger = p.logger.get();
  Delivery* delivery = p.delivery.get();
  deps.on_committed = [delivery](const std::string& insurer) {
    delivery->Notify(insurer);
  };
  p.api = std::make_unique<Api>(std::move(deps));
  p.metrics.AddCollector([&p] { p.CollectMetrics(); });

  HttpsServerOptions server;
  server.address = c.server.listen_address;
  server.port = c.server.port;
  server.cert_chain_file = c.server.tls_cert_file;
  server.chain_file = c.server.tls_chain_file;
  server.key_file = c.server.tls_key_file;
  server.client_ca_file = c.server.client_ca_file;
  server.client_certificates = ClientCertificateMode::kOptional;  // bearer tokens need none
  server.tls_min_version = c.server.tls_min_version;
  server.max_header_bytes = c.server.max_header_bytes;
  server.max_body_bytes = c.server.max_body_bytes;
  server.read_deadline = c.server.read_deadline;
  server.write_deadline = c.server.write_deadline;
  server.idle_timeout = c.server.idle_timeout;
  server.max_connections = c.server.max_connections;
  HttpsServerOptions ops = server;
  ops.address = c.server.ops_address;
  ops.port = c.server.ops_port;
  ops.client_certificates = ClientCertificateMode::kNone;
  ops.max_connections = 64;

  p.delivery->Start();
  p.mailbox->Start();
  Api* api = p.api.get();
  StatusOr<std::unique_ptr<HttpsServer>> ops_server = HttpsServer::Start(
      ops, PoolHandler(p.ops_pool.get(), nullptr,
                       [api](const HttpRequest& r) { return api->HandleOps(r); }));
  if (!ops_server.ok()) {
    return Precondition("[server] ops listener", ops_server.status());
  }
  p.ops_server = std::move(ops_server).value();
  StatusOr<std::unique_ptr<HttpsServer>> main_server = HttpsServer::Start(
      server, PoolHandler(p.pool.get(), p.gateway_metrics.intake_shed_total,
                          [api](const HttpRequest& r) { return api->Handle(r); }));
  if (!main_server.ok()) {
    return Precondition("[server] listener", main_server.status());
  }
  p.server = std::move(main_server).value();
  p.maintenance = std::thread([&p] { p.Maintain(); });
  p.logger->Info("passerelle started");
  return app;
}

App::~App() {
  Shutdown();
}

std::uint16_t App::port() const {
  return parts_->server ? parts_->server->port() : 0;
}
std::uint16_t App::ops_port() const {
  return parts_->ops_server ? parts_->ops_server->port() : 0;
}

void App::Shutdown() {
  if (parts_ == nullptr || parts_->shut_down) {
    return;
  }
  Parts& p = *parts_;
  p.shut_down = true;
  // Start may have failed before the logger existed (a configuration error): then there is
  // nothing to drain and nothing to say, only the parts built so far to release.
  if (p.logger) {
    p.logger->Info("shutting down: draining");
  }
  p.draining = true;  // /readyz says not ready from here on
  // Order matters for "202 only after the commit, and every commit gets its 202": stop taking
  // connections, then let the pool finish every request it holds (their answers go back over
  // connections that are still open), and only then close the connections.
  if (p.server) {
    p.server->StopAccepting();
  }
  if (p.pool) {
    p.pool->Stop();
  }
  if (p.server) {
    p.server->Stop();
  }
  if (p.delivery) {
    p.delivery->Stop();  // each worker finishes its attempt; unfinished leases expire
  }
  if (p.mailbox) {
    p.mailbox->Stop();  // finishes its poll; an unconfirmed item comes back on the next get
  }
  {
    std::lock_guard<std::mutex> lock(p.maintenance_mu);
    p.stop_maintenance = true;
  }
  p.maintenance_cv.notify_all();
  if (p.maintenance.joinable()) {
    p.maintenance.join();
  }
  if (p.ops_server) {
    p.ops_server->Stop();
  }
  if (p.ops_pool) {
    p.ops_pool->Stop();
  }
  p.api.reset();
  p.mailbox.reset();
  p.delivery.reset();
  p.store.reset();  // closes the DB last
  if (p.logger) {
    p.logger->Info("passerelle stopped");
  }
}

int Serve(const std::filesystem::path& config_file, const std::filesystem::path& ready_file,
          std::ostream& out, std::ostream& err) {
  // Block the shutdown signals before any thread exists, so every thread inherits the mask and
  // only sigwait below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  StatusOr<std::unique_ptr<App>> app = App::Start(config_file);
  if (!app.ok()) {
    err << "passerelle serve: " << app.status().message() << "\n";
    return 2;
  }
  const std::string line =
      nlohmann::json(
          {{"msg", "listening"}, {"port", (*app)->port()}, {"ops_port", (*app)->ops_port()}})
          .dump();
  out << line << std::endl;
  if (!ready_file.empty()) {
    const std::filesystem::path tmp = ready_file.string() + ".tmp";
    {
      std::ofstream f(tmp, std::ios::trunc);
      f << line << "\n";
    }
    std::filesystem::rename(tmp, ready_file);
  }
  int received = 0;
  sigwait(&signals, &received);
  (*app)->Shutdown();
  return 0;
}

}  // namespace psl::gateway
