// The gateway's configuration: one TOML file (DESIGN.md "Public contracts"), documented key by key
// in deploy/passerelle.example.toml. Loading is strict: an unknown key or table, a wrong type, a
// missing required key, an out-of-range value, a file that cannot be read or a secret written
// inline is a problem, and LoadConfig reports every problem of the file in one pass so that
// `passerelle check-config` lists them all. Secrets are always file paths; the file only holds
// SHA-256 hashes of bearer tokens, never the tokens.
//
// Relative paths in the file are resolved against the folder holding the configuration file.
// Asio-free and synchronous; a Config is a plain value, safe to share read-only between threads.
#ifndef PSL_GATEWAY_CONFIG_H_
#define PSL_GATEWAY_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace psl::gateway {

// One problem of a configuration file. `path` is the dotted key path ("insurers.100.claim_url",
// "server" for a whole table), `line`/`column` are 1-based (0 when the problem has no place in the
// file, e.g. a missing required key, which carries its table's line when the table exists).
struct ConfigProblem {
  std::string path;
  int line = 0;
  int column = 0;
  std::string message;
  bool warning = false;  // reported but does not make the file unusable (e.g. key file mode 0644)
};

// "FILE:LINE: PATH: message" (with "warning: " before the message for warnings); the form
// `passerelle check-config` prints.
std::string FormatProblem(const std::string& file, const ConfigProblem& problem);

// The request kinds an insurer endpoint serves (DESIGN.md "Flows").
enum class MessageKind { kEnrolment, kClaim, kAmu };
const char* MessageKindName(MessageKind kind);  // "enrolment", "claim", "amu"

struct ServerConfig {
  std::string listen_address = "127.0.0.1";  // practices' HTTPS listener; loopback by default
  std::uint16_t port = 8443;
  std::string ops_address = "127.0.0.1";  // /healthz, /readyz, /metrics
  std::uint16_t ops_port = 9090;
  std::filesystem::path tls_cert_file;   // required: the server certificate (PEM)
  std::filesystem::path tls_key_file;    // required, secret
  std::filesystem::path tls_chain_file;  // optional intermediate chain (PEM)
  std::filesystem::path client_ca_file;  // required: CAs practices' client certificates chain to
  std::string tls_min_version = "1.2";   // "1.2" or "1.3"
  std::uint64_t max_header_bytes = 16 << 10;         // 1 KiB .. 1 MiB
  std::uint64_t max_body_bytes = 4 << 20;            // 1 KiB .. 256 MiB; larger requests get 413
  std::chrono::milliseconds read_deadline{10'000};   // whole request, headers and body
  std::chrono::milliseconds write_deadline{10'000};  // whole response
  std::chrono::milliseconds idle_timeout{30'000};    // keep-alive connection without a request
  std::uint32_t max_connections = 1024;              // beyond it new connections get 503
  std::uint32_t worker_threads = 0;                  // CPU/blocking pool; 0 = hardware concurrency
  // Admission at the door of the intake pool: a request arriving while the oldest queued one has
  // waited longer than this gets 503 + Retry-After: 1 at once (max_queue_delay_ms, 1 ms .. 10 min).
  std::chrono::milliseconds max_queue_delay{500};
};

struct StoreConfig {
  std::filesystem::path data_dir;            // required: the RocksDB directory
  std::filesystem::path payload_key_file;    // required, secret: AES-256-GCM payload key
  std::filesystem::path pseudonym_key_file;  // required, secret: HMAC key of patient pseudonyms
  bool sync = true;  // false only with LoadOptions::allow_unsynced_store (fault harnesses)
  std::uint64_t free_space_reserve_bytes = 256ull << 20;
  std::chrono::milliseconds payload_retention = std::chrono::hours(24 * 30);
  std::chrono::milliseconds audit_retention = std::chrono::hours(24 * 365 * 10);
  std::uint64_t checkpoint_every_events = 1000;  // signed audit checkpoint interval
};

// A key pair with its certificate: PEM files. `chain_file` and `password_file` are optional.
struct KeyFiles {
  std::filesystem::path key_file;  // secret
  std::filesystem::path cert_file;
  std::filesystem::path chain_file;
  std::filesystem::path password_file;  // secret; for an encrypted key
  bool empty() const { return key_file.empty() && cert_file.empty(); }
};

// [practices.<nihii>]: how an authenticated client certificate maps to a practice, and the key the
// gateway signs that practice's requests with (the [signing] key when absent).
struct PracticeConfig {
  std::string nihii;                       // the table name; a valid NIHII (8 or 11 digits)
  std::string name;                        // for operators' eyes only
  std::vector<std::string> cert_subjects;  // RFC 2253 subjects of accepted client certificates
  std::vector<std::string> cert_sha256;    // or SHA-256 fingerprints, 64 hex digits, lowercase
  KeyFiles signing;                        // optional per-practice signing key
  // MediPrima: the physicians (11-digit NIHII starting with 1) a medical house may send UMA
  // attestations for (the Author of Send/Delete). Empty = none: the practice cannot send UMA
  // Send/Delete (PSL-MEDIPRIMA-AUTHOR-NOT-LISTED). A physician's own certificate is always
  // compared with the Author instead.
  std::vector<std::string> physicians;
};

struct RetryPolicy {
  std::chrono::milliseconds base{1'000};  // first back-off; doubles each attempt, full jitter
  std::chrono::milliseconds cap{300'000};
  std::uint32_t max_attempts = 20;                             // then dead letter
  std::chrono::milliseconds max_age = std::chrono::hours(48);  // then dead letter
};

struct CircuitBreakerPolicy {
  std::uint32_t failure_threshold = 5;     // consecutive failures that open the breaker
  std::chrono::milliseconds open{30'000};  // how long it stays open before a probe
  std::uint32_t half_open_probes = 1;      // successful probes needed to close it again
};

// [insurers.<key>]: one insurer (union, mutuality, 690 MediPrima) or the MyCareNet hub.
struct InsurerConfig {
  std::string key;  // the table name: a 3-digit code, or a name for a hub ("mycarenet")
  std::string name;
  std::map<MessageKind, std::string> endpoints;  // https:// URL per kind served
  // MediPrima (the 690 destination, DOMAIN.md §4.5): the eHealth services a MediPrima request
  // goes to, by operation (UMA v1: Send/Search/Delete; consultation v2); "" = not served here.
  // An amu_url keeps serving the AMU eFact posts (ECM-HCPFAC, genasync).
  std::string mediprima_uma_url;
  std::string mediprima_consult_url;
  // eAttest v3 (DOMAIN.md §4.2): the MyCareNet eAttest endpoint; "" = this insurer takes no
  // eAttest (routing refuses it with 422; never claim_url, the Generic Async endpoint).
  std::string eattest_url;
  // PEM of the MyCareNet encryption certificate eAttest requests routed here are sealed for
  // (checked at start-up and by check-config: parses, valid now, RSA key). "" = this insurer
  // takes no eAttest (such a request is refused at intake).
  std::filesystem::path encryption_cert_file;
  KeyFiles client;                // mTLS client certificate (key is secret)
  std::filesystem::path ca_file;  // CAs the insurer's server certificate chains to (TLS only)
  // CAs the insurer's signing certificates chain to: every signature/seal of its answers and
  // mailbox returns is verified against these. Optional for backward compatibility: "" = ca_file,
  // reported as a warning by check-config and at start-up.
  std::filesystem::path signing_ca_file;
  // The file answer and return signatures are verified against (signing_ca_file, else ca_file).
  const std::filesystem::path& SigningTrustFile() const {
    return signing_ca_file.empty() ? ca_file : signing_ca_file;
  }
  std::chrono::milliseconds connect_timeout{5'000};
  std::chrono::milliseconds request_timeout{30'000};
  std::uint32_t max_in_flight = 4;
  // Pending deliveries (store::QueueStats::depth) at which intake refuses new messages for this
  // insurer with 503 + Retry-After instead of growing the durable backlog; 1 .. 10^8.
  std::uint64_t max_backlog = 100'000;
  RetryPolicy retry;
  CircuitBreakerPolicy breaker;
};

// Which of an insurer's endpoints a request goes to: the URL of its kind, or a per-service URL.
enum class Service { kDefault, kMediPrimaUma, kMediPrimaConsult, kEAttest };
// The configuration key of a service's URL ("mediprima_uma_url", ...; kDefault: "<kind>_url").
std::string ServiceUrlKey(MessageKind kind, Service service);
// The URL `insurer` serves `kind` / `service` at: kDefault = endpoints[kind]; kEAttest =
// eattest_url, else endpoints[claim]; MediPrima = its per-service URL. "" when none.
std::string InsurerUrl(const InsurerConfig& insurer, MessageKind kind, Service service);
// Whether the insurer has any endpoint at all (a delivery lane is made for it).
bool ServesAnything(const InsurerConfig& insurer);

struct RoutingConfig {
  std::string hub;  // the [insurers.*] key receiving what no insurer route resolves; "" = none
  bool mutuality_to_union = true;  // a mutuality without its own table uses its union (x00)
  bool member_registry = true;     // ask the member registry when the message names no insurer
};

// [mailbox]: the Generic Async mailbox poller (eFact returns, DOMAIN.md §4.3). Every insurer with
// a claim_url or amu_url is polled for every configured practice (11-digit NIHII).
struct MailboxConfig {
  bool enabled = true;
  std::chrono::milliseconds poll_interval{60'000};  // between two gets of one insurer; 100 ms..24 h
  std::uint32_t max_messages = 100;  // MsgQuery/Max and TAckQuery/Max per get; 1..1000
  // After a failed get (transport, 5xx, fault, unusable answer) the next one waits
  // poll_interval x 2^(failures-1), capped here; at least poll_interval.
  std::chrono::milliseconds max_backoff{600'000};
};

struct AuthConfig {
  std::vector<std::string> ops_token_sha256;  // SHA-256 of ops bearer tokens, 64 hex digits
  std::vector<std::string> auditor_token_sha256;
  std::vector<std::string> ops_cert_subjects;
  std::vector<std::string> auditor_cert_subjects;
};

struct LoggingConfig {
  std::string level = "info";   // debug, info, warn, error
  std::string format = "json";  // json or text
};

struct Config {
  std::filesystem::path source;  // the file this was loaded from
  ServerConfig server;
  StoreConfig store;
  std::filesystem::path schemas_dir;  // required: [schemas] dir
  KeyFiles signing;                   // the gateway's (organisation's) signing key; required
  AuthConfig auth;
  std::map<std::string, PracticeConfig> practices;  // by NIHII
  std::map<std::string, InsurerConfig> insurers;    // by key
  RoutingConfig routing;
  MailboxConfig mailbox;
  LoggingConfig logging;
  std::chrono::hours key_expiry_warning = std::chrono::hours(24 * 30);  // [keys]
};

struct LoadOptions {
  // Accept [store] sync = false (fault harnesses and tests only; production never sets it).
  bool allow_unsynced_store = false;
  // Check that referenced files exist and are readable (off only for tests of the syntax).
  bool check_files = true;
};

// Loads and checks `path`. Every problem found is appended to `problems` (may be null); warnings
// are appended too but do not fail the load. Errors: kFailedPrecondition when the file cannot be
// read, kInvalid when it has at least one problem that is not a warning (the status message gives
// the count and the first problem). Never throws.
StatusOr<Config> LoadConfig(const std::filesystem::path& path,
                            std::vector<ConfigProblem>* problems);
StatusOr<Config> LoadConfig(const std::filesystem::path& path, const LoadOptions& options,
                            std::vector<ConfigProblem>* problems);
// The same over text already in memory; `path` resolves relative paths and names the file.
StatusOr<Config> ParseConfig(std::string_view text, const std::filesystem::path& path,
                             const LoadOptions& options, std::vector<ConfigProblem>* problems);

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_CONFIG_H_
