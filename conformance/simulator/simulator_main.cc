// insurer_simulator: the InsurerSimulator behind the HTTPS listener (README.md beside this file).
// Prints "listening on ADDRESS:PORT" as its first stdout line once it accepts connections, then
// runs until SIGTERM or SIGINT. Start-up errors go to stderr with exit status 2.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "certs/key_store.h"
#include "certs/trust_store.h"
#include "codecs/schema_registry.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"
#include "gateway/https_server.h"

#include "conformance/simulator/insurer_simulator.h"
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace {

int Fail(const std::string& what, const psl::Status& status) {
  std::cerr << "insurer_simulator: " << what << ": " << status.ToString() << std::endl;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Passerelle insurer simulator: the insurers' side of MHM, eFact genasync, MediPrima and "
      "eAttest over HTTPS",
      "insurer_simulator"};
  std::string listen = "127.0.0.1";
  int port = 0;
  std::string port_file, cert, key, client_ca, sign_key, sign_cert, sign_chain, trust,
      intermediates, schemas;
  std::vector<std::string> insurers;
  unsigned workers = 2;
  unsigned network_threads = 1;
  std::uint64_t seed = 0;
  bool verbose = false;
  int latency_ms = 0;
  double error_rate = 0, reset_rate = 0, timeout_rate = 0, throttle_rate = 0;
  int error_status = 503, fail_status = 503, retry_after = 1;
  std::uint64_t fail_next = 0, reset_next = 0, timeout_next = 0, throttle_next = 0;
  std::optional<int> outage_start;
  int outage_duration = 0;
  std::string fault_operation, efact_decision = "accepted";
  std::vector<std::string> efact_codes;
  int return_delay_ms = 0;
  int timeout_hold_ms = 60'000;
  bool mailbox_tacks = false;
  std::vector<std::string> mediprima_beneficiaries;
  std::string eattest_errors;

  app.add_option("--listen", listen, "address to listen on (loopback)")->capture_default_str();
  app.add_option("--port", port, "port, 0 = any free one")->capture_default_str();
  app.add_option("--port-file", port_file, "write the bound port (one line) to this file");
  app.add_option("--cert", cert, "PEM server certificate followed by its chain")->required();
  app.add_option("--key", key, "PEM server private key")->required();
  app.add_option("--client-ca", client_ca, "PEM anchors for the gateway's client certificate")
      ->required();
  app.add_option("--sign-key", sign_key, "PEM key signing the answers (XadesT)")->required();
  app.add_option("--sign-cert", sign_cert, "PEM certificate of --sign-key (+ chain)")->required();
  app.add_option("--sign-chain", sign_chain, "PEM issuing chain of --sign-cert");
  app.add_option("--trust", trust, "PEM anchors for the gateway's WS-Security and XAdES signers")
      ->required();
  app.add_option("--intermediates", intermediates,
                 "PEM untrusted CAs completing the WS-Security signer's chain");
  app.add_option("--schemas", schemas, "schema folder (default: $PSL_SCHEMAS_DIR, ../shared)");
  app.add_option("--insurer", insurers,
                 "insurer code to play, repeatable (default 100 200 300 "
                 "400 500 600 900)");
  app.add_option("--workers", workers, "processing threads")->capture_default_str();
  app.add_option("--network-threads", network_threads, "TLS threads")->capture_default_str();
  app.add_option("--seed", seed, "seed of the fault rates (0 = random)");
  app.add_flag("--verbose", verbose, "one stderr line per request (ids and outcomes only)");
  app.add_option("--latency-ms", latency_ms, "added before every answer");
  app.add_option("--error-rate", error_rate, "fraction answered --error-status")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--error-status", error_status, "5xx for --error-rate")
      ->check(CLI::Range(500, 599));
  app.add_option("--fail-next", fail_next, "the next N requests answered --fail-status");
  app.add_option("--fail-status", fail_status, "5xx for --fail-next")->check(CLI::Range(500, 599));
  app.add_option("--throttle-next", throttle_next, "the next N requests answered 429");
  app.add_option("--throttle-rate", throttle_rate, "fraction answered 429")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--retry-after", retry_after, "Retry-After seconds of a 429");
  app.add_option("--reset-next", reset_next, "the next N connections closed without answer");
  app.add_option("--reset-rate", reset_rate, "fraction of connections closed without answer")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--timeout-next", timeout_next, "the next N requests never answered");
  app.add_option("--timeout-rate", timeout_rate, "fraction of requests never answered")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--outage-start", outage_start, "outage starts this many seconds after start");
  app.add_option("--outage-duration", outage_duration, "outage length in seconds (503)");
  app.add_option("--fault-operation", fault_operation,
                 "apply the fault flags above to one operation only: mhm, post, get, confirm, "
                 "mediprima, eattest")
      ->check(CLI::IsMember({"mhm", "post", "get", "confirm", "mediprima", "eattest"}));
  app.add_option("--timeout-hold-ms", timeout_hold_ms,
                 "a request held by the timeout fault is closed after this long")
      ->capture_default_str()
      ->check(CLI::Range(1, 86'400'000));
  app.add_option("--return-delay-ms", return_delay_ms,
                 "an eFact return becomes visible to get this long after its post")
      ->capture_default_str()
      ->check(CLI::Range(0, 86'400'000));
  app.add_option("--efact-decision", efact_decision,
                 "return for accepted eFact posts: accepted (931000), refused (920999), "
                 "refused-blocking (920099), accepted-with-errors (920098)")
      ->capture_default_str();
  app.add_option("--efact-code", efact_codes,
                 "6-digit error code of the return's error records, repeatable");
  app.add_flag("--mailbox-tacks", mailbox_tacks,
               "also put each accepted post's TAck in the mailbox (TAckResponse of get)");
  app.add_option("--mediprima-beneficiary", mediprima_beneficiaries,
                 "SSIN holding a medical card for MediPrima consult, repeatable (kept hashed)");
  app.add_option("--eattest-errors", eattest_errors,
                 "errors/eAttestErrors.json (default: <schemas>/../errors/eAttestErrors.json "
                 "when present)");
  CLI11_PARSE(app, argc, argv);
  if (insurers.empty()) {
    insurers = {"100", "200", "300", "400", "500", "600", "900"};
  }
  psl::simulator::EfactDecision efact;
  {
    nlohmann::json control = {{"decision", efact_decision}};
    if (!efact_codes.empty()) {
      control["codes"] = efact_codes;
    }
    auto parsed = psl::simulator::ParseEfactControl(control.dump());
    if (!parsed.ok()) {
      return Fail("--efact-decision/--efact-code", parsed.status());
    }
    efact = *parsed->decision;
  }
  if (outage_start && outage_duration <= 0) {
    std::cerr << "insurer_simulator: --outage-start needs --outage-duration > 0" << std::endl;
    return 2;
  }

  // Signals are taken by sigwait below: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  psl::codecs::XmlLibrary xml;
  psl::codecs::XmlSecLibrary xmlsec;
  if (!xmlsec.status().ok()) {
    return Fail("xmlsec", xmlsec.status());
  }
  auto registry =
      psl::codecs::SchemaRegistry::Load(schemas.empty() ? psl::codecs::SchemaRegistry::DefaultRoot()
                                                        : std::filesystem::path(schemas));
  if (!registry.ok()) {
    return Fail("schemas", registry.status());
  }
  psl::simulator::EAttestErrorTable eattest_table;
  {
    std::filesystem::path schema_root = schemas.empty() ? psl::codecs::SchemaRegistry::DefaultRoot()
                                                        : std::filesystem::path(schemas);
    if (schema_root.filename().empty()) {
      schema_root = schema_root.parent_path();  // "dir/schemas/"
    }
    const std::filesystem::path table_file =
        !eattest_errors.empty() ? std::filesystem::path(eattest_errors)
                                : schema_root.parent_path() / "errors" / "eAttestErrors.json";
    std::error_code ec;
    if (!eattest_errors.empty() || std::filesystem::exists(table_file, ec)) {
      auto table = psl::simulator::LoadEAttestErrorTable(table_file);
      if (!table.ok()) {
        return Fail("--eattest-errors", table.status());
      }
      eattest_table = std::move(table).value();
    }
  }
  const std::filesystem::path chain_path(sign_chain);
  auto signer = psl::certs::LoadPemIdentity(sign_key, sign_cert,
                                            sign_chain.empty() ? nullptr : &chain_path, nullptr);
  if (!signer.ok()) {
    return Fail("--sign-key/--sign-cert", signer.status());
  }
  auto trust_store = psl::certs::LoadTrustStore(trust);
  if (!trust_store.ok()) {
    return Fail("--trust", trust_store.status());
  }
  std::vector<psl::X509Ptr> untrusted;
  if (!intermediates.empty()) {
    auto certs = psl::certs::ReadPemCertificates(intermediates);
    if (!certs.ok()) {
      return Fail("--intermediates", certs.status());
    }
    untrusted = std::move(certs).value();
  }

  psl::SystemClock clock;
  psl::simulator::InsurerSimulator::Options options;
  options.insurers = insurers;
  options.schemas = registry->get();
  options.trust = trust_store->get();
  options.intermediates = &untrusted;
  options.signer = &*signer;
  options.clock = &clock;
  options.random_seed = seed;
  options.workers = workers;
  options.faults.latency = std::chrono::milliseconds(latency_ms);
  options.faults.error_rate = error_rate;
  options.faults.error_status = error_status;
  options.faults.fail_next = fail_next;
  options.faults.fail_status = fail_status;
  options.faults.throttle_next = throttle_next;
  options.faults.throttle_rate = throttle_rate;
  options.faults.retry_after = std::chrono::seconds(retry_after);
  options.faults.reset_next = reset_next;
  options.faults.reset_rate = reset_rate;
  options.faults.timeout_next = timeout_next;
  options.faults.timeout_rate = timeout_rate;
  options.faults.operation = fault_operation;
  options.timeout_hold = std::chrono::milliseconds(timeout_hold_ms);
  options.return_delay = std::chrono::milliseconds(return_delay_ms);
  options.mailbox_tacks = mailbox_tacks;
  options.efact = efact;
  options.mediprima_beneficiaries = mediprima_beneficiaries;
  options.eattest_errors = std::move(eattest_table);
  if (outage_start) {
    options.faults.outage = psl::simulator::OutageWindow{
        clock.Now() + std::chrono::seconds(*outage_start), std::chrono::seconds(outage_duration)};
  }
  if (verbose) {
    options.log = [](const std::string& line) {
      std::cerr << line << '\n';
    };
  }
  auto sim = psl::simulator::InsurerSimulator::Create(std::move(options));
  if (!sim.ok()) {
    return Fail("options", sim.status());
  }

  psl::gateway::HttpsServerOptions server_options;
  server_options.address = listen;
  server_options.port = static_cast<std::uint16_t>(port);
  server_options.cert_chain_file = cert;
  server_options.key_file = key;
  server_options.client_ca_file = client_ca;
  server_options.client_certificates = psl::gateway::ClientCertificateMode::kRequired;
  server_options.network_threads = network_threads;
  auto server = psl::gateway::HttpsServer::Start(server_options, (*sim)->AsyncHandler());
  if (!server.ok()) {
    return Fail("listen", server.status());
  }
  const std::uint16_t bound = (*server)->port();
  std::cout << "listening on " << listen << ":" << bound << std::endl;
  if (!port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << bound << "\n";
    }
    std::error_code ec;
    std::filesystem::rename(tmp, port_file, ec);
    if (ec) {
      std::cerr << "insurer_simulator: cannot write --port-file: " << ec.message() << std::endl;
    }
  }

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::cerr << "insurer_simulator: signal " << signal_number << ", stopping" << std::endl;
  (*server)->StopAccepting();
  (*sim)->Shutdown();
  (*server)->Stop();
  return 0;
}
