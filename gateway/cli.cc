#include "gateway/cli.h"

#include <dlfcn.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "certs/key_store.h"
#include "certs/trust_store.h"
#include "codecs/genasync.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xades.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"
#include "gateway/app.h"
#include "gateway/config.h"
#include "gateway/https_client.h"
#include "store/audit.h"
#include "store/audit_reader.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace psl::gateway {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr int kExitOk = 0;
constexpr int kExitInvalid = 1;
constexpr int kExitEnvironment = 2;

// A clock stopped at the instant given with --at, for validating messages against the date they
// were (or will be) sent rather than today.
class FixedClock final : public Clock {
 public:
  explicit FixedClock(std::chrono::system_clock::time_point at) : at_(at) {}
  std::chrono::system_clock::time_point Now() const override { return at_; }

 private:
  std::chrono::system_clock::time_point at_;
};

// Accepts "YYYY-MM-DD" (taken as 12:00 Brussels, i.e. 10:00 or 11:00 UTC; 10:00 UTC is the
// same Brussels date either way) and "YYYY-MM-DDTHH:MM:SSZ".
std::optional<std::chrono::system_clock::time_point> ParseInstant(const std::string& text) {
  int y = 0;
  unsigned mo = 0;
  unsigned d = 0;
  int h = 10;
  int mi = 0;
  int s = 0;
  char tail = 0;
  if (text.size() == 10) {
    if (std::sscanf(text.c_str(), "%4d-%2u-%2u%c", &y, &mo, &d, &tail) != 3)
      return std::nullopt;
  } else if (std::sscanf(text.c_str(), "%4d-%2u-%2uT%2d:%2d:%2dZ%c", &y, &mo, &d, &h, &mi, &s,
                         &tail) != 6) {
    return std::nullopt;
  }
  std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{mo},
                                  std::chrono::day{d}};
  if (!ymd.ok() || h > 23 || mi > 59 || s > 60)
    return std::nullopt;
  return std::chrono::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} +
         std::chrono::seconds{s};
}

std::optional<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad())
    return std::nullopt;
  return ss.str();
}

// Never throws: a file name (or any text) that is not UTF-8 is written with U+FFFD instead of
// making nlohmann::json throw type_error 316 out of the command.
std::string JsonLine(const Json& j) {
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

Json ProblemJson(const codecs::Problem& p) {
  return Json{{"code", p.code},     {"message", p.message}, {"line", p.line},
              {"column", p.column}, {"path", p.path},       {"document", p.document}};
}

// Loads the schema registry from --schemas or the default root, reporting failure on `err`.
std::unique_ptr<codecs::SchemaRegistry> LoadSchemas(const std::string& dir, std::ostream& err) {
  fs::path root = dir.empty() ? codecs::SchemaRegistry::DefaultRoot() : fs::path(dir);
  auto registry = codecs::SchemaRegistry::Load(root);
  if (!registry.ok()) {
    err << "passerelle: cannot load schemas from " << root.string() << ": "
        << registry.status().message() << "\n";
    return nullptr;
  }
  return std::move(registry).value();
}

int Validate(const std::string& schemas_dir, const Clock& clock,
             const std::vector<std::string>& files, std::ostream& out, std::ostream& err) {
  auto registry = LoadSchemas(schemas_dir, err);
  if (!registry)
    return kExitEnvironment;
  codecs::MessageValidator validator(*registry, clock);
  int exit_code = kExitOk;
  for (const auto& file : files) {
    auto bytes = ReadFile(file);
    if (!bytes) {
      err << "passerelle: cannot read " << file << "\n";
      exit_code = kExitEnvironment;
      continue;
    }
    codecs::ValidationReport report = validator.Validate(*bytes);
    Json errors = Json::array();
    Json warnings = Json::array();
    for (const auto& p : report.problems) {
      (p.severity == codecs::Severity::kError ? errors : warnings).push_back(ProblemJson(p));
    }
    Json line{{"file", file},        {"valid", report.valid()},       {"kind", report.kind},
              {"flow", report.flow}, {"operation", report.operation}, {"errors", errors}};
    if (!warnings.empty())
      line["warnings"] = warnings;
    out << JsonLine(line) << "\n";
    if (!report.valid() && exit_code == kExitOk)
      exit_code = kExitInvalid;
  }
  return exit_code;
}

struct SignOptions {
  std::string key;
  std::string cert;
  std::string chain;
  std::string p12;
  std::string password_file;
  std::string trust;
  std::string out;
  std::string schemas;
  bool no_validate = false;
  std::string request;
};

int Sign(const SignOptions& o, const Clock& clock, std::ostream& out, std::ostream& err) {
  auto bytes = ReadFile(o.request);
  if (!bytes) {
    err << "passerelle: cannot read " << o.request << "\n";
    return kExitEnvironment;
  }
  if (!o.no_validate) {
    auto registry = LoadSchemas(o.schemas, err);
    if (!registry)
      return kExitEnvironment;
    codecs::MessageValidator validator(*registry, clock);
    codecs::ValidationReport report = validator.Validate(*bytes);
    if (!report.valid()) {
      err << "passerelle: refusing to sign an invalid request:\n";
      for (const auto& p : report.problems) {
        if (p.severity != codecs::Severity::kError)
          continue;
        err << "  " << p.code << " " << p.document << ":" << p.line << ":" << p.column << " "
            << p.path << ": " << p.message << "\n";
      }
      return kExitInvalid;
    }
  }
  StatusOr<SigningIdentity> identity = Status::FailedPrecondition("no key given");
  if (!o.p12.empty()) {
    if (o.password_file.empty()) {
      err << "passerelle: --p12 needs --password-file\n";
      return kExitEnvironment;
    }
    identity = certs::LoadPkcs12Identity(o.p12, o.password_file);
  } else if (!o.key.empty() && !o.cert.empty()) {
    fs::path chain(o.chain);
    fs::path password(o.password_file);
    identity = certs::LoadPemIdentity(o.key, o.cert, o.chain.empty() ? nullptr : &chain,
                                      o.password_file.empty() ? nullptr : &password);
  } else {
    err << "passerelle: sign needs --key and --cert, or --p12 and --password-file\n";
    return kExitEnvironment;
  }
  if (!identity.ok()) {
    err << "passerelle: " << identity.status().message() << "\n";
    return kExitEnvironment;
  }
  X509StorePtr trust;
  if (!o.trust.empty()) {
    auto store = certs::LoadTrustStore(o.trust);
    if (!store.ok()) {
      err << "passerelle: " << store.status().message() << "\n";
      return kExitEnvironment;
    }
    trust = std::move(store).value();
  }
  // A genasync post (eFact HCPFAC / ECM-HCPFAC) carries its signature in Xades-t.
  bool genasync = false;
  {
    codecs::Problem problem;
    StatusOr<XmlDocPtr> doc = codecs::ParseUntrustedXml(*bytes, codecs::XmlLimits{}, &problem);
    genasync = doc.ok() && codecs::GenAsyncCodec::IsGenAsync(xmlDocGetRootElement(doc->get()));
  }
  auto signed_request = genasync ? codecs::SignGenAsyncPost(*bytes, *identity, trust.get(), clock)
                                 : codecs::SignBlobRequest(*bytes, *identity, trust.get(), clock);
  if (!signed_request.ok()) {
    err << "passerelle: cannot sign: " << signed_request.status().message() << "\n";
    return signed_request.status().code() == StatusCode::kInvalid ? kExitInvalid : kExitEnvironment;
  }
  if (o.out.empty()) {
    out << *signed_request;
    return kExitOk;
  }
  std::ofstream file(o.out, std::ios::binary | std::ios::trunc);
  file << *signed_request;
  file.close();
  if (!file) {
    err << "passerelle: cannot write " << o.out << "\n";
    return kExitEnvironment;
  }
  return kExitOk;
}

int Verify(const std::string& trust_file, const std::string& signed_file, const Clock& clock,
           std::ostream& out, std::ostream& err) {
  auto bytes = ReadFile(signed_file);
  if (!bytes) {
    err << "passerelle: cannot read " << signed_file << "\n";
    return kExitEnvironment;
  }
  auto store = certs::LoadTrustStore(trust_file);
  if (!store.ok()) {
    err << "passerelle: " << store.status().message() << "\n";
    return kExitEnvironment;
  }
  auto verified = codecs::VerifyBlobRequest(*bytes, store->get(), clock);
  if (!verified.ok()) {
    out << JsonLine(
               {{"file", signed_file}, {"valid", false}, {"reason", verified.status().message()}})
        << "\n";
    return kExitInvalid;
  }
  out << JsonLine({{"file", signed_file}, {"valid", true}, {"signer", verified->signer_subject}})
      << "\n";
  return kExitOk;
}

// --- audit: the auditors' read-only tools over a store's audit trail --------------------------
// They open the store as a RocksDB secondary (store/audit_reader.h), so they work on a stopped
// store and next to a running gateway, and need no payload key.

// --from / --to: epoch milliseconds, YYYY-MM-DDTHH:MM:SSZ, or YYYY-MM-DD (a whole UTC day: its
// first millisecond for --from, its last for --to).
std::optional<std::int64_t> ParseAuditTime(const std::string& text, bool end_of_day) {
  std::int64_t ms = 0;
  const char* end = text.data() + text.size();
  if (auto [ptr, ec] = std::from_chars(text.data(), end, ms); ec == std::errc() && ptr == end)
    return ms;
  auto instant = ParseInstant(text);
  if (!instant)
    return std::nullopt;
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  if (text.size() == 10) {  // ParseInstant put the date at 10:00 UTC
    const std::int64_t day = duration_cast<milliseconds>(
                                 std::chrono::floor<std::chrono::days>(*instant).time_since_epoch())
                                 .count();
    return end_of_day ? day + 86'400'000 - 1 : day;
  }
  return duration_cast<milliseconds>(instant->time_since_epoch()).count();
}

std::unique_ptr<store::AuditStoreReader> OpenAuditReader(const std::string& data,
                                                         std::ostream& err) {
  auto reader = store::AuditStoreReader::Open(data);
  if (!reader.ok()) {
    err << "passerelle: " << reader.status().message() << "\n";
    return nullptr;
  }
  return std::move(reader).value();
}

int AuditVerify(const std::string& data, const std::string& trust_file, std::ostream& out,
                std::ostream& err) {
  X509StorePtr trust;
  if (!trust_file.empty()) {
    auto loaded = certs::LoadTrustStore(trust_file);
    if (!loaded.ok()) {
      err << "passerelle: " << loaded.status().message() << "\n";
      return kExitEnvironment;
    }
    trust = std::move(loaded).value();
  }
  auto reader = OpenAuditReader(data, err);
  if (!reader)
    return kExitEnvironment;
  auto report = reader->Verify(trust.get());
  if (!report.ok()) {
    err << "passerelle: " << report.status().message() << "\n";
    return kExitEnvironment;
  }
  Json line{{"ok", report->ok}, {"events", report->events}, {"checkpoints", report->checkpoints}};
  if (report->first_bad_sequence)
    line["first_bad_sequence"] = *report->first_bad_sequence;
  if (!report->problem.empty())
    line["problem"] = report->problem;
  out << JsonLine(line) << "\n";
  if (!report->ok) {
    err << "passerelle: the audit trail does not verify: " << report->problem << "\n";
    return kExitInvalid;
  }
  return kExitOk;
}

struct AuditQueryOptions {
  std::string data;
  std::string practice;
  std::string patient;  // a NISS: only its pseudonym is used, never printed
  std::string pseudonym_key;
  std::string kind;
  std::string from;
  std::string to;
};

int AuditQuery(const AuditQueryOptions& o, std::ostream& out, std::ostream& err) {
  store::AuditQuery query;
  if (!o.practice.empty())
    query.practice_nihii = o.practice;
  if (!o.kind.empty())
    query.kind = o.kind;
  if (!o.patient.empty()) {
    if (o.pseudonym_key.empty()) {
      err << "passerelle: --patient needs --pseudonym-key (events hold only the pseudonym)\n";
      return kExitEnvironment;
    }
    auto key = store::ReadPseudonymKeyFile(o.pseudonym_key);
    if (!key.ok()) {
      err << "passerelle: " << key.status().message() << "\n";
      return kExitEnvironment;
    }
    query.patient_pseudonym = store::PatientPseudonym(*key, o.patient);
  }
  if (!o.from.empty())
    query.from_ms = ParseAuditTime(o.from, /*end_of_day=*/false);
  if (!o.to.empty())
    query.to_ms = ParseAuditTime(o.to, /*end_of_day=*/true);
  if ((!o.from.empty() && !query.from_ms) || (!o.to.empty() && !query.to_ms)) {
    err << "passerelle: --from and --to want epoch milliseconds, YYYY-MM-DD or "
           "YYYY-MM-DDTHH:MM:SSZ\n";
    return kExitEnvironment;
  }
  auto reader = OpenAuditReader(o.data, err);
  if (!reader)
    return kExitEnvironment;
  Status status = reader->Query(query, [&](const store::AuditEvent& event) {
    out << store::EncodeStoredAuditEvent(event) << "\n";
    return true;
  });
  if (!status.ok()) {
    err << "passerelle: " << status.message() << "\n";
    return status.code() == StatusCode::kInvalid ? kExitInvalid : kExitEnvironment;
  }
  return kExitOk;
}

// Every stored event as its stored JSON line (hash included), in sequence order; an unreadable
// one is reported in its place and makes the exit code 1.
int AuditExport(const std::string& data, std::ostream& out, std::ostream& err) {
  auto reader = OpenAuditReader(data, err);
  if (!reader)
    return kExitEnvironment;
  int exit_code = kExitOk;
  Status status = reader->ScanEvents([&](std::uint64_t sequence, std::string_view encoded) {
    auto event = store::DecodeAuditEvent(encoded);
    if (event.ok()) {
      out << encoded << "\n";
    } else {
      out << JsonLine({{"sequence", sequence}, {"unreadable", event.status().message()}}) << "\n";
      exit_code = kExitInvalid;
    }
    return true;
  });
  if (!status.ok()) {
    err << "passerelle: " << status.message() << "\n";
    return kExitEnvironment;
  }
  return exit_code;
}

// Every problem of the configuration file, one per line ("FILE:LINE: key.path: message"); exit 0
// when the file is usable (warnings alone do not fail it), 1 with problems, 2 when unreadable.
int CheckConfig(const std::string& file, std::ostream& out, std::ostream& err) {
  std::vector<ConfigProblem> problems;
  auto config = LoadConfig(file, &problems);
  if (!config.ok() && config.status().code() == StatusCode::kFailedPrecondition) {
    err << "passerelle: " << config.status().message() << "\n";
    return kExitEnvironment;
  }
  for (const auto& problem : problems)
    out << FormatProblem(file, problem) << "\n";
  if (!config.ok()) {
    err << "passerelle: " << file << " is not usable\n";
    return kExitInvalid;
  }
  out << file << ": ok\n";
  return kExitOk;
}

// `keys check`: every signing identity of the configuration, its validity and expiry.
int KeysCheck(const std::string& file, std::ostream& out, std::ostream& err) {
  std::vector<ConfigProblem> problems;
  auto config = LoadConfig(file, &problems);
  if (!config.ok()) {
    err << "passerelle: " << config.status().message() << "\n";
    return kExitEnvironment;
  }
  SystemClock clock;
  const auto window = std::chrono::duration_cast<std::chrono::seconds>(config->key_expiry_warning);
  int result = kExitOk;
  auto check = [&](const std::string& name, const KeyFiles& files) {
    const std::filesystem::path* chain = files.chain_file.empty() ? nullptr : &files.chain_file;
    const std::filesystem::path* password =
        files.password_file.empty() ? nullptr : &files.password_file;
    StatusOr<SigningIdentity> id =
        certs::LoadPemIdentity(files.key_file, files.cert_file, chain, password);
    Json line = {{"key", name}};
    if (!id.ok()) {
      line["ok"] = false;
      line["problem"] = id.status().message();
      result = kExitInvalid;
    } else {
      std::string warning;
      Status usable = certs::CheckUsable(*id, clock, window, &warning);
      line["ok"] = usable.ok() && warning.empty();
      line["subject"] = certs::SubjectOf(id->certificate.get());
      line["expires_in_seconds"] = certs::SecondsToExpiry(id->certificate.get(), clock).count();
      if (!usable.ok()) {
        line["problem"] = usable.message();
      } else if (!warning.empty()) {
        line["problem"] = warning;
      }
      if (!line["ok"].get<bool>()) {
        result = kExitInvalid;
      }
    }
    out << JsonLine(line) << "\n";
  };
  check("signing", config->signing);
  for (const auto& [nihii, practice] : config->practices) {
    if (!practice.signing.empty()) {
      check("practices." + nihii + ".signing", practice.signing);
    }
  }
  for (const auto& [key, insurer] : config->insurers) {
    if (!insurer.client.empty()) {
      check("insurers." + key + ".client", insurer.client);
    }
    if (!insurer.encryption_cert_file.empty()) {
      // A certificate only (MyCareNet's: the eAttest seal's recipient); check-config already
      // refused one that does not parse, has expired or has no RSA key.
      Json line = {{"key", "insurers." + key + ".encryption_cert"}};
      StatusOr<std::vector<X509Ptr>> loaded =
          certs::ReadPemCertificates(insurer.encryption_cert_file);
      if (!loaded.ok() || loaded->empty()) {
        line["ok"] = false;
        line["problem"] = loaded.ok() ? std::string("no certificate") : loaded.status().message();
        result = kExitInvalid;
      } else {
        const std::chrono::seconds left = certs::SecondsToExpiry(loaded->front().get(), clock);
        line["ok"] = left > window;
        line["subject"] = certs::SubjectOf(loaded->front().get());
        line["expires_in_seconds"] = left.count();
        if (left <= window) {
          line["problem"] = left.count() <= 0 ? "the certificate has expired"
                                              : "the certificate expires within the warning window";
          result = kExitInvalid;
        }
      }
      out << JsonLine(line) << "\n";
    }
  }
  return result;
}

// `dead-letters list|replay`: the ops API of a running gateway, over HTTPS with an ops token.
struct AdminOptions {
  std::string url = "https://127.0.0.1:8443";
  std::string ca;
  std::string token_file;
  std::string cert;
  std::string key;
  std::string id;
};

int AdminCall(const AdminOptions& o, const std::string& method, const std::string& path,
              std::ostream& out, std::ostream& err) {
  StatusOr<HttpsUrl> url = ParseHttpsUrl(o.url + path);
  if (!url.ok()) {
    err << "passerelle: --url: " << url.status().message() << "\n";
    return kExitEnvironment;
  }
  HttpsClientOptions options;
  options.ca_file = o.ca;
  options.client_cert_file = o.cert;
  options.client_key_file = o.key;
  StatusOr<std::unique_ptr<HttpsClient>> client = HttpsClient::Create(options);
  if (!client.ok()) {
    err << "passerelle: " << client.status().message() << "\n";
    return kExitEnvironment;
  }
  HttpHeaders headers = {{"accept", "application/json"}};
  if (!o.token_file.empty()) {
    std::optional<std::string> token = ReadFile(o.token_file);
    if (!token) {
      err << "passerelle: cannot read " << o.token_file << "\n";
      return kExitEnvironment;
    }
    while (!token->empty() && (token->back() == '\n' || token->back() == '\r')) {
      token->pop_back();
    }
    headers.emplace_back("authorization", "Bearer " + *token);
  }
  HttpsResult result = (*client)->Send(*url, method, headers, "");
  if (result.error != TransportError::kNone) {
    err << "passerelle: " << TransportErrorName(result.error) << ": " << result.error_detail
        << "\n";
    return kExitEnvironment;
  }
  out << result.response.body;
  if (result.response.body.empty() || result.response.body.back() != '\n') {
    out << "\n";
  }
  return result.response.status / 100 == 2 ? kExitOk : kExitInvalid;
}

// The allocator this process runs on: jemalloc when the binary links it (its `mallctl` is then
// defined; see gateway/CMakeLists.txt), else the C library's.
std::string AllocatorName() {
  using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
  auto* mallctl = reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl"));
  if (mallctl == nullptr) {
    return "glibc malloc";
  }
  const char* version = nullptr;
  std::size_t size = sizeof(version);
  if (mallctl("version", static_cast<void*>(&version), &size, nullptr, 0) != 0 ||
      version == nullptr) {
    return "jemalloc";
  }
  return std::string("jemalloc ") + version;
}

}  // namespace

int RunCli(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  // Process-wide library state, set up once; both classes are idempotent.
  static const codecs::XmlLibrary kXml;
  static const codecs::XmlSecLibrary kXmlSec;

  CLI::App app{"Passerelle: MyCareNet gateway for Belgian medical practices", "passerelle"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "passerelle 0.1.0\nallocator: " + AllocatorName());

  std::string at;
  auto add_at = [&at](CLI::App* cmd) {
    cmd->add_option("--at", at,
                    "reference instant for date rules and signing time: YYYY-MM-DD or "
                    "YYYY-MM-DDTHH:MM:SSZ (default: now)");
  };

  std::string schemas;
  std::vector<std::string> files;
  CLI::App* validate = app.add_subcommand("validate", "validate request files; one JSON line each");
  validate->add_option("--schemas", schemas,
                       "schema folder (default: $PSL_SCHEMAS_DIR or ../shared/schemas)");
  validate->add_option("FILE", files, "request files")->required();
  add_at(validate);

  SignOptions sign_options;
  CLI::App* sign = app.add_subcommand("sign", "sign a request's Detail with XAdES-BES");
  sign->add_option("--key", sign_options.key, "PEM private key");
  sign->add_option("--cert", sign_options.cert, "PEM certificate");
  sign->add_option("--chain", sign_options.chain, "PEM issuing chain");
  sign->add_option("--p12", sign_options.p12, "PKCS#12 bundle (instead of --key/--cert)");
  sign->add_option("--password-file", sign_options.password_file, "file holding the key password");
  sign->add_option("--trust", sign_options.trust,
                   "trust bundle to verify a signature the request already carries");
  sign->add_option("--out", sign_options.out, "output file (default: stdout)");
  sign->add_option("--schemas", sign_options.schemas, "schema folder");
  sign->add_flag("--no-validate", sign_options.no_validate, "sign without validating first");
  sign->add_option("REQUEST", sign_options.request, "request file")->required();
  add_at(sign);

  std::string trust;
  std::string signed_file;
  CLI::App* verify =
      app.add_subcommand("verify", "verify a signed request; exit 0 valid, 1 invalid");
  verify->add_option("--trust", trust, "PEM trust bundle (CA certificates)")->required();
  verify->add_option("SIGNED", signed_file, "signed request file")->required();
  add_at(verify);

  CLI::App* audit = app.add_subcommand(
      "audit", "auditors' tools on the audit trail (read-only; also while the gateway runs)");
  audit->require_subcommand(1);
  std::string audit_data;
  std::string audit_trust;
  CLI::App* audit_verify = audit->add_subcommand(
      "verify", "check the hash chain and signed checkpoints; exit 0 intact, 1 tampered");
  audit_verify->add_option("--data", audit_data, "the store directory")->required();
  audit_verify->add_option("--key,--trust", audit_trust,
                           "PEM CA bundle that checkpoint signers must chain to (default: "
                           "signatures checked against their embedded certificate only)");
  AuditQueryOptions audit_query;
  CLI::App* audit_query_cmd =
      audit->add_subcommand("query", "events matching every criterion given, as JSON lines");
  audit_query_cmd->add_option("--data", audit_query.data, "the store directory")->required();
  audit_query_cmd->add_option("--practice", audit_query.practice, "practice NIHII");
  audit_query_cmd->add_option("--patient", audit_query.patient,
                              "patient NISS (needs --pseudonym-key)");
  audit_query_cmd->add_option("--pseudonym-key", audit_query.pseudonym_key,
                              "the gateway's pseudonym key file");
  audit_query_cmd->add_option("--kind", audit_query.kind, "event kind, e.g. accepted");
  audit_query_cmd->add_option("--from", audit_query.from,
                              "first instant: epoch ms, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)");
  audit_query_cmd->add_option("--to", audit_query.to, "last instant (inclusive), same forms");
  CLI::App* audit_export =
      audit->add_subcommand("export", "every stored event as a JSON line, in sequence order");
  audit_export->add_option("--data", audit_data, "the store directory")->required();

  std::string config_file;
  CLI::App* check_config = app.add_subcommand(
      "check-config", "list every problem of a configuration file; exit 0 usable, 1 problems");
  check_config->add_option("FILE", config_file, "the TOML configuration file")->required();

  std::string serve_config;
  std::string ready_file;
  CLI::App* serve = app.add_subcommand(
      "serve", "run the gateway until SIGTERM/SIGINT (prints the bound ports as a JSON line)");
  serve->add_option("--config", serve_config, "the TOML configuration file")->required();
  serve->add_option("--ready-file", ready_file,
                    "also write the JSON line with the bound ports to this file once listening");

  std::string keys_config;
  CLI::App* keys = app.add_subcommand("keys", "signing keys and certificates");
  keys->require_subcommand(1);
  CLI::App* keys_check = keys->add_subcommand(
      "check", "validity and expiry of every configured key; exit 1 when one is not usable");
  keys_check->add_option("--config", keys_config, "the TOML configuration file")->required();

  AdminOptions admin;
  CLI::App* dead = app.add_subcommand("dead-letters", "ops: dead letters of a running gateway");
  dead->require_subcommand(1);
  auto add_admin = [&admin](CLI::App* cmd) {
    cmd->add_option("--url", admin.url, "the gateway's base URL (default https://127.0.0.1:8443)");
    cmd->add_option("--ca", admin.ca, "PEM CA bundle of the gateway's certificate")->required();
    cmd->add_option("--token-file", admin.token_file, "file holding the ops bearer token");
    cmd->add_option("--cert", admin.cert, "ops client certificate (instead of a token)");
    cmd->add_option("--key", admin.key, "its private key");
  };
  CLI::App* dead_list = dead->add_subcommand("list", "the dead letters, as JSON");
  add_admin(dead_list);
  CLI::App* dead_replay =
      dead->add_subcommand("replay", "queue a dead message again (audited as the ops actor)");
  add_admin(dead_replay);
  dead_replay->add_option("ID", admin.id, "message id")->required();

  std::vector<const char*> argv;
  argv.reserve(args.size());
  for (const auto& a : args)
    argv.push_back(a.c_str());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::CallForHelp&) {
    out << app.help();
    return kExitOk;
  } catch (const CLI::CallForVersion&) {
    out << app.version() << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    CLI::App* failed = app.get_subcommands().empty() ? &app : app.get_subcommands().front();
    err << "passerelle: " << e.what() << "\n" << failed->help();
    return kExitEnvironment;
  }

  SystemClock system_clock;
  std::optional<FixedClock> fixed_clock;
  if (!at.empty()) {
    auto instant = ParseInstant(at);
    if (!instant) {
      err << "passerelle: --at wants YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ\n";
      return kExitEnvironment;
    }
    fixed_clock.emplace(*instant);
  }
  const Clock& clock = fixed_clock ? static_cast<const Clock&>(*fixed_clock) : system_clock;

  if (validate->parsed())
    return Validate(schemas, clock, files, out, err);
  if (sign->parsed())
    return Sign(sign_options, clock, out, err);
  if (verify->parsed())
    return Verify(trust, signed_file, clock, out, err);
  if (audit_verify->parsed())
    return AuditVerify(audit_data, audit_trust, out, err);
  if (audit_query_cmd->parsed())
    return AuditQuery(audit_query, out, err);
  if (audit_export->parsed())
    return AuditExport(audit_data, out, err);
  if (check_config->parsed())
    return CheckConfig(config_file, out, err);
  if (serve->parsed())
    return Serve(serve_config, ready_file, out, err);
  if (keys_check->parsed())
    return KeysCheck(keys_config, out, err);
  if (dead_list->parsed())
    return AdminCall(admin, "GET", "/v1/admin/dead-letters", out, err);
  if (dead_replay->parsed()) {
    const bool plausible = !admin.id.empty() && admin.id.size() <= 64 &&
                           std::all_of(admin.id.begin(), admin.id.end(), [](char c) {
                             return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                                    (c >= 'A' && c <= 'Z') || c == '-' || c == '_' || c == '.';
                           });
    if (!plausible) {
      err << "passerelle: ID must be a message id (letters, digits, '-', '_', '.')\n";
      return kExitEnvironment;
    }
    return AdminCall(admin, "POST", "/v1/admin/messages/" + admin.id + "/replay", out, err);
  }
  return kExitEnvironment;
}

}  // namespace psl::gateway
