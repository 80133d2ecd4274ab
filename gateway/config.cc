#include "gateway/config.h"

#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <utility>

#include <openssl/x509.h>

#include "certs/trust_store.h"
#include "codecs/identifiers.h"

// toml++ is used header-only with exceptions off (TOML_EXCEPTIONS=0, TOML_HEADER_ONLY=1 come from
// gateway/CMakeLists.txt for this target only): the loader never throws, and Debian's shared
// libtomlplusplus is built with exceptions, so we do not link it.
#include <toml++/toml.h>

namespace psl::gateway {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

enum class Need { kOptional, kRequired };
enum class FileKind { kPublic, kSecret };

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    default:
      return "a date or time";
  }
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

bool IsDigits(std::string_view s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

// A value that should have been a file path but looks like the secret itself: a PEM block, or a
// long run of token characters with neither a folder nor an extension.
bool LooksLikeInlineSecret(std::string_view value) {
  if (value.find("-----BEGIN") != std::string_view::npos ||
      value.find('\n') != std::string_view::npos)
    return true;
  if (value.size() < 16 || value.find('/') != std::string_view::npos ||
      value.find('.') != std::string_view::npos)
    return false;
  return std::all_of(value.begin(), value.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '+' || c == '=' || c == '_' || c == '-';
  });
}

// Shared state of one load: where problems go and how paths resolve.
class Loader {
 public:
  Loader(fs::path base, const LoadOptions& options, std::vector<ConfigProblem>* problems)
      : base_(std::move(base)), options_(options), problems_(problems) {}

  void Add(std::string path, const toml::source_region& where, std::string message,
           bool warning = false) {
    problems_->push_back({std::move(path), static_cast<int>(where.begin.line),
                          static_cast<int>(where.begin.column), std::move(message), warning});
  }

  fs::path Resolve(const std::string& value) const {
    fs::path p(value);
    return p.is_absolute() ? p : base_ / p;
  }

  const LoadOptions& options() const { return options_; }

 private:
  fs::path base_;
  LoadOptions options_;
  std::vector<ConfigProblem>* problems_;
};

// One TOML table being read: every key taken is remembered, so that Finish() can report the keys
// nobody asked for. A missing table reads as empty (defaults; required keys are reported).
class Table {
 public:
  Table(Loader* loader, const toml::table* table, std::string path, toml::source_region where)
      : loader_(loader), table_(table), path_(std::move(path)), where_(where) {}

  const std::string& path() const { return path_; }
  const toml::source_region& where() const { return where_; }
  bool present() const { return table_ != nullptr; }

  std::string PathOf(std::string_view key) const {
    return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
  }

  // The node under `key`, or null (a missing required key is reported).
  const toml::node* Take(std::string_view key, Need need) {
    taken_.insert(std::string(key));
    const toml::node* node = table_ ? table_->get(key) : nullptr;
    if (!node && need == Need::kRequired)
      loader_->Add(PathOf(key), where_,
                   "required key \"" + std::string(key) + "\" is missing" +
                       (path_.empty() ? std::string() : " in [" + path_ + "]"));
    return node;
  }

  void WrongType(std::string_view key, const toml::node& node, const char* wanted) {
    loader_->Add(PathOf(key), node.source(),
                 "must be " + std::string(wanted) + ", not " + TypeName(node));
  }

  bool String(std::string_view key, std::string* out, Need need = Need::kOptional) {
    const toml::node* node = Take(key, need);
    if (!node)
      return false;
    if (!node->is_string()) {
      WrongType(key, *node, "a string");
      return false;
    }
    *out = node->as_string()->get();
    if (out->empty() && need == Need::kRequired) {
      loader_->Add(PathOf(key), node->source(), "must not be empty");
      return false;
    }
    return true;
  }

  // A string that must be one of `allowed`.
  void Choice(std::string_view key, std::string* out,
              std::initializer_list<std::string_view> allowed) {
    std::string value;
    if (!String(key, &value))
      return;
    if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
      std::string list;
      for (auto a : allowed)
        list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
      loader_->Add(PathOf(key), table_->get(key)->source(),
                   "\"" + value + "\" is not one of " + list);
      return;
    }
    *out = value;
  }

  template <typename T>
  bool Integer(std::string_view key, T* out, std::int64_t min, std::int64_t max,
               Need need = Need::kOptional) {
    const toml::node* node = Take(key, need);
    if (!node)
      return false;
    if (!node->is_integer()) {
      WrongType(key, *node, "an integer");
      return false;
    }
    const std::int64_t v = node->as_integer()->get();
    if (v < min || v > max) {
      loader_->Add(PathOf(key), node->source(),
                   std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                       std::to_string(max) + "]");
      return false;
    }
    *out = static_cast<T>(v);
    return true;
  }

  void Millis(std::string_view key, milliseconds* out, std::int64_t min, std::int64_t max) {
    std::int64_t v = 0;
    if (Integer(key, &v, min, max))
      *out = milliseconds(v);
  }

  void Bool(std::string_view key, bool* out) {
    const toml::node* node = Take(key, Need::kOptional);
    if (!node)
      return;
    if (!node->is_boolean()) {
      WrongType(key, *node, "a boolean");
      return;
    }
    *out = node->as_boolean()->get();
  }

  // An array of strings; each element is passed to `check` (returns an error message or "") and
  // may be rewritten by it (normalisation).
  template <typename Check>
  void StringList(std::string_view key, std::vector<std::string>* out, Check check) {
    const toml::node* node = Take(key, Need::kOptional);
    if (!node)
      return;
    const toml::array* array = node->as_array();
    if (!array) {
      WrongType(key, *node, "an array of strings");
      return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
      const toml::node& element = *array->get(i);
      const std::string element_path = PathOf(key) + "[" + std::to_string(i) + "]";
      if (!element.is_string()) {
        loader_->Add(element_path, element.source(), "must be a string, not " + TypeName(element));
        continue;
      }
      std::string value = element.as_string()->get();
      std::string error = check(&value);
      if (!error.empty()) {
        loader_->Add(element_path, element.source(), error);
        continue;
      }
      out->push_back(std::move(value));
    }
  }

  // A file path: resolved, checked to exist and be readable; for secrets, refused when the value
  // looks like the secret itself, and a warning when group or others may read the file.
  void File(std::string_view key, fs::path* out, FileKind kind, Need need = Need::kOptional) {
    std::string value;
    if (!String(key, &value, need) || value.empty())
      return;
    const toml::source_region& where = table_->get(key)->source();
    if (LooksLikeInlineSecret(value)) {
      loader_->Add(PathOf(key), where,
                   "looks like an inline key, certificate or token; secrets and keys are given as "
                   "file paths, never inline");
      return;
    }
    *out = loader_->Resolve(value);
    if (!loader_->options().check_files)
      return;
    struct stat st {};
    if (::stat(out->c_str(), &st) != 0) {
      loader_->Add(PathOf(key), where, "file " + out->string() + " does not exist");
      return;
    }
    if (!S_ISREG(st.st_mode)) {
      loader_->Add(PathOf(key), where, out->string() + " is not a regular file");
      return;
    }
    if (::access(out->c_str(), R_OK) != 0) {
      loader_->Add(PathOf(key), where, "file " + out->string() + " is not readable");
      return;
    }
    if (kind == FileKind::kSecret && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      loader_->Add(PathOf(key), where,
                   "secret file " + out->string() + " is accessible to group or others (mode " +
                       mode + "); make it 0600 or 0400",
                   /*warning=*/true);
    }
  }

  // A folder that must exist (or, with `may_be_created`, whose parent must exist).
  void Dir(std::string_view key, fs::path* out, Need need, bool may_be_created) {
    std::string value;
    if (!String(key, &value, need) || value.empty())
      return;
    const toml::source_region& where = table_->get(key)->source();
    *out = loader_->Resolve(value);
    if (!loader_->options().check_files)
      return;
    std::error_code ec;
    if (fs::exists(*out, ec)) {
      if (!fs::is_directory(*out, ec))
        loader_->Add(PathOf(key), where, out->string() + " is not a directory");
      else if (::access(out->c_str(), R_OK | X_OK) != 0)
        loader_->Add(PathOf(key), where, "directory " + out->string() + " is not readable");
      return;
    }
    if (!may_be_created) {
      loader_->Add(PathOf(key), where, "directory " + out->string() + " does not exist");
      return;
    }
    if (!fs::is_directory(out->parent_path(), ec))
      loader_->Add(PathOf(key), where,
                   "directory " + out->string() + " does not exist and neither does its parent");
  }

  // A sub-table; a non-table value is reported and read as a missing table.
  Table Sub(std::string_view key) {
    const toml::node* node = Take(key, Need::kOptional);
    if (node && !node->is_table()) {
      WrongType(key, *node, "a table");
      node = nullptr;
    }
    return Table(loader_, node ? node->as_table() : nullptr, PathOf(key),
                 node ? node->source() : where_);
  }

  // Every (name, sub-table) pair of this table, each marked as taken; non-tables are reported.
  std::vector<std::pair<std::string, Table>> SubTables() {
    std::vector<std::pair<std::string, Table>> result;
    if (!table_)
      return result;
    for (auto&& [k, v] : *table_) {
      const std::string name(k.str());
      if (!v.is_table()) {
        taken_.insert(name);
        WrongType(name, v, "a table");
        continue;
      }
      result.emplace_back(name, Sub(name));
    }
    return result;
  }

  // Reports every key of the table that no reader took.
  void Finish() {
    if (!table_)
      return;
    for (auto&& [k, v] : *table_) {
      if (taken_.count(std::string(k.str())))
        continue;
      const bool is_table = v.is_table();
      loader_->Add(PathOf(k.str()), k.source(),
                   std::string(is_table ? "unknown table [" + PathOf(k.str()) + "]"
                                        : "unknown key \"" + std::string(k.str()) + "\"") +
                       (path_.empty() ? std::string() : " in [" + path_ + "]"));
    }
  }

  // A warning about `key` (at the key when present, else at the table).
  void Warning(std::string_view key, std::string message) {
    const toml::node* node = table_ ? table_->get(key) : nullptr;
    loader_->Add(PathOf(key), node ? node->source() : where_, std::move(message),
                 /*warning=*/true);
  }

  void Problem(std::string_view key, std::string message) {
    const toml::node* node = table_ ? table_->get(key) : nullptr;
    loader_->Add(PathOf(key), node ? node->source() : where_, std::move(message));
  }

 private:
  Loader* loader_;
  const toml::table* table_;
  std::string path_;
  toml::source_region where_;
  std::set<std::string> taken_;
};

std::string CheckTokenHash(std::string* value) {
  std::string& v = *value;
  if (v.size() != 64 || !IsHex(v))
    return "must be the SHA-256 of the bearer token as 64 hex digits (e.g. `printf %s TOKEN | "
           "sha256sum`), never the token itself";
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
  return "";
}

std::string CheckFingerprint(std::string* value) {
  std::string hex;
  for (char c : *value)
    if (c != ':')
      hex.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (hex.size() != 64 || !IsHex(hex))
    return "must be a SHA-256 certificate fingerprint: 64 hex digits, colons allowed";
  *value = hex;
  return "";
}

std::string CheckSubject(std::string* value) {
  if (value->empty() || value->find('=') == std::string::npos)
    return "must be a certificate subject such as \"CN=...,O=...\"";
  return "";
}

// https://host[:port]/path, host not empty. Only https: insurers are reached over mTLS.
bool IsHttpsUrl(const std::string& url) {
  constexpr std::string_view kScheme = "https://";
  if (url.compare(0, kScheme.size(), kScheme) != 0)
    return false;
  const std::string rest = url.substr(kScheme.size());
  const std::size_t end = rest.find_first_of("/?#");
  const std::string authority = rest.substr(0, end);
  return !authority.empty() && authority[0] != ':' &&
         authority.find_first_of(" @\t") == std::string::npos;
}

bool IsInsurerKey(const std::string& key) {
  if (IsDigits(key))
    return key.size() == 3 && key[0] != '0';
  return !key.empty() && std::islower(static_cast<unsigned char>(key[0])) &&
         std::all_of(key.begin(), key.end(), [](unsigned char c) {
           return std::islower(c) || std::isdigit(c) || c == '_' || c == '-';
         });
}

// MyCareNet's encryption certificate (eAttest seal recipient): "" when usable, else the problem.
std::string CheckEncryptionCert(const fs::path& file) {
  StatusOr<std::vector<X509Ptr>> loaded = certs::ReadPemCertificates(file);
  if (!loaded.ok() || loaded->empty())
    return "is not a PEM certificate: " +
           (loaded.ok() ? std::string("no certificate in the file") : loaded.status().message());
  X509* cert = loaded->front().get();
  if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0)
    return "the encryption certificate is not valid yet";
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0)
    return "the encryption certificate has expired";
  const EVP_PKEY* key = X509_get0_pubkey(cert);
  if (key == nullptr || EVP_PKEY_base_id(key) != EVP_PKEY_RSA)
    return "the encryption certificate must carry an RSA key (the seal uses RSA key transport)";
  return "";
}

void ReadKeyFiles(Table& t, std::string_view prefix, KeyFiles* out, Need need) {
  const std::string p(prefix);
  t.File(p + "key_file", &out->key_file, FileKind::kSecret, need);
  t.File(p + "cert_file", &out->cert_file, FileKind::kPublic, need);
  t.File(p + "chain_file", &out->chain_file, FileKind::kPublic);
  t.File(p + "password_file", &out->password_file, FileKind::kSecret);
}

void ReadServer(Table t, ServerConfig* s) {
  t.String("listen_address", &s->listen_address);
  t.Integer("port", &s->port, 0, 65535);  // 0: any free port (tests); printed at start
  t.String("ops_address", &s->ops_address);
  t.Integer("ops_port", &s->ops_port, 0, 65535);
  t.File("tls_cert_file", &s->tls_cert_file, FileKind::kPublic, Need::kRequired);
  t.File("tls_key_file", &s->tls_key_file, FileKind::kSecret, Need::kRequired);
  t.File("tls_chain_file", &s->tls_chain_file, FileKind::kPublic);
  t.File("client_ca_file", &s->client_ca_file, FileKind::kPublic, Need::kRequired);
  t.Choice("tls_min_version", &s->tls_min_version, {"1.2", "1.3"});
  t.Integer("max_header_bytes", &s->max_header_bytes, 1 << 10, 1 << 20);
  t.Integer("max_body_bytes", &s->max_body_bytes, 1 << 10, 256 << 20);
  t.Millis("read_deadline_ms", &s->read_deadline, 100, 600'000);
  t.Millis("write_deadline_ms", &s->write_deadline, 100, 600'000);
  t.Millis("idle_timeout_ms", &s->idle_timeout, 100, 3'600'000);
  t.Integer("max_connections", &s->max_connections, 1, 1'000'000);
  t.Integer("worker_threads", &s->worker_threads, 0, 256);
  t.Millis("max_queue_delay_ms", &s->max_queue_delay, 1, 600'000);
  if (t.present() && s->port != 0 && s->port == s->ops_port && s->listen_address == s->ops_address)
    t.Problem("ops_port", "must differ from port on the same address");
  t.Finish();
}

void ReadStore(Table t, const LoadOptions& options, StoreConfig* s) {
  t.Dir("data_dir", &s->data_dir, Need::kRequired, /*may_be_created=*/true);
  t.File("payload_key_file", &s->payload_key_file, FileKind::kSecret, Need::kRequired);
  t.File("pseudonym_key_file", &s->pseudonym_key_file, FileKind::kSecret, Need::kRequired);
  t.Bool("sync", &s->sync);
  if (!s->sync && !options.allow_unsynced_store)
    t.Problem("sync",
              "must be true: an unsynced store can acknowledge messages it then loses (DESIGN.md "
              "I1); false is for fault-injection harnesses only");
  t.Integer("free_space_reserve_bytes", &s->free_space_reserve_bytes, 0,
            std::numeric_limits<std::int64_t>::max());
  std::int64_t days = 0;
  if (t.Integer("payload_retention_days", &days, 1, 3650))
    s->payload_retention = std::chrono::hours(24 * days);
  if (t.Integer("audit_retention_days", &days, 1, 36500))
    s->audit_retention = std::chrono::hours(24 * days);
  t.Integer("checkpoint_every_events", &s->checkpoint_every_events, 1, 10'000'000);
  t.Finish();
}

void ReadAuth(Table t, AuthConfig* a) {
  t.StringList("ops_token_sha256", &a->ops_token_sha256, CheckTokenHash);
  t.StringList("auditor_token_sha256", &a->auditor_token_sha256, CheckTokenHash);
  t.StringList("ops_cert_subjects", &a->ops_cert_subjects, CheckSubject);
  t.StringList("auditor_cert_subjects", &a->auditor_cert_subjects, CheckSubject);
  t.Finish();
}

void ReadPractices(Loader* loader, Table t, std::map<std::string, PracticeConfig>* out) {
  std::map<std::string, std::string> owner;  // subject or fingerprint -> NIHII
  for (auto& [nihii, p] : t.SubTables()) {
    PracticeConfig practice;
    practice.nihii = nihii;
    if (!IsDigits(nihii) || !codecs::CheckNihii(nihii).ok())
      loader->Add(p.path(), p.where(),
                  "table name \"" + nihii +
                      "\" is not a valid NIHII (8 or 11 digits, check "
                      "digits 97 - base mod 97)");
    p.String("name", &practice.name);
    p.StringList("cert_subjects", &practice.cert_subjects, CheckSubject);
    p.StringList("cert_sha256", &practice.cert_sha256, CheckFingerprint);
    p.StringList("physicians", &practice.physicians, [](std::string* value) -> std::string {
      if (value->size() != 11 || !IsDigits(*value) || (*value)[0] != '1' ||
          !codecs::CheckNihii(*value).ok())
        return "must be a physician's NIHII: 11 digits starting with 1, valid check digits";
      return "";
    });
    if (practice.cert_subjects.empty() && practice.cert_sha256.empty())
      loader->Add(p.path(), p.where(),
                  "a practice needs cert_subjects or cert_sha256 to map its client certificate "
                  "to its NIHII");
    for (const auto* list : {&practice.cert_subjects, &practice.cert_sha256}) {
      for (const auto& id : *list) {
        auto [it, inserted] = owner.emplace(id, nihii);
        if (!inserted && it->second != nihii)
          loader->Add(p.path(), p.where(),
                      "certificate \"" + id + "\" is also mapped to practice " + it->second);
      }
    }
    ReadKeyFiles(p, "signing_", &practice.signing, Need::kOptional);
    if (practice.signing.key_file.empty() != practice.signing.cert_file.empty())
      loader->Add(p.path(), p.where(), "signing_key_file and signing_cert_file go together");
    p.Finish();
    (*out)[nihii] = std::move(practice);
  }
  t.Finish();
}

void ReadInsurers(Loader* loader, Table t, std::map<std::string, InsurerConfig>* out) {
  for (auto& [key, i] : t.SubTables()) {
    InsurerConfig insurer;
    insurer.key = key;
    if (!IsInsurerKey(key))
      loader->Add(i.path(), i.where(),
                  "table name \"" + key +
                      "\" is neither a 3-digit insurer code (100-999) nor a "
                      "lower-case name for a hub");
    i.String("name", &insurer.name);
    for (MessageKind kind : {MessageKind::kEnrolment, MessageKind::kClaim, MessageKind::kAmu}) {
      const std::string url_key = std::string(MessageKindName(kind)) + "_url";
      std::string url;
      if (!i.String(url_key, &url))
        continue;
      if (!IsHttpsUrl(url)) {
        i.Problem(url_key, "must be an https:// URL with a host");
        continue;
      }
      insurer.endpoints[kind] = url;
    }
    for (auto [url_key, url] :
         {std::pair<const char*, std::string*>{"mediprima_uma_url", &insurer.mediprima_uma_url},
          {"mediprima_consult_url", &insurer.mediprima_consult_url},
          {"eattest_url", &insurer.eattest_url}}) {
      if (i.String(url_key, url) && !IsHttpsUrl(*url)) {
        i.Problem(url_key, "must be an https:// URL with a host");
        url->clear();
      }
    }
    if (!ServesAnything(insurer) && i.present())
      loader->Add(i.path(), i.where(),
                  "an insurer needs at least one of enrolment_url, claim_url, amu_url, "
                  "eattest_url, mediprima_uma_url, mediprima_consult_url");
    if (!insurer.eattest_url.empty() && insurer.endpoints.count(MessageKind::kClaim) == 0)
      i.Problem("eattest_url",
                "needs claim_url too: eAttest requests are claims and are routed like them");
    i.File("encryption_cert_file", &insurer.encryption_cert_file, FileKind::kPublic);
    if (!insurer.encryption_cert_file.empty() && loader->options().check_files)
      if (std::string problem = CheckEncryptionCert(insurer.encryption_cert_file); !problem.empty())
        i.Problem("encryption_cert_file", problem);
    if (!insurer.eattest_url.empty() && insurer.encryption_cert_file.empty())
      i.Problem("eattest_url",
                "needs encryption_cert_file too: every eAttest routed here is sealed for "
                "MyCareNet's encryption certificate");
    i.File("client_key_file", &insurer.client.key_file, FileKind::kSecret, Need::kRequired);
    i.File("client_cert_file", &insurer.client.cert_file, FileKind::kPublic, Need::kRequired);
    i.File("client_chain_file", &insurer.client.chain_file, FileKind::kPublic);
    i.File("client_password_file", &insurer.client.password_file, FileKind::kSecret);
    i.File("ca_file", &insurer.ca_file, FileKind::kPublic, Need::kRequired);
    i.File("signing_ca_file", &insurer.signing_ca_file, FileKind::kPublic);
    if (insurer.signing_ca_file.empty())
      i.Warning("signing_ca_file",
                "is absent: the insurer's answer and return signatures are verified against "
                "ca_file (its TLS server CAs); set signing_ca_file to the CAs its signing "
                "certificates chain to");
    i.Millis("connect_timeout_ms", &insurer.connect_timeout, 100, 120'000);
    i.Millis("request_timeout_ms", &insurer.request_timeout, 100, 600'000);
    i.Integer("max_in_flight", &insurer.max_in_flight, 1, 1024);
    i.Integer("max_backlog", &insurer.max_backlog, 1, 100'000'000);

    Table retry = i.Sub("retry");
    retry.Millis("base_ms", &insurer.retry.base, 10, 3'600'000);
    retry.Millis("cap_ms", &insurer.retry.cap, 10, 86'400'000);
    retry.Integer("max_attempts", &insurer.retry.max_attempts, 1, 10'000);
    std::int64_t hours = 0;
    if (retry.Integer("max_age_hours", &hours, 1, 24 * 30))
      insurer.retry.max_age = std::chrono::hours(hours);
    if (insurer.retry.cap < insurer.retry.base)
      retry.Problem("cap_ms", "must not be below base_ms");
    retry.Finish();

    Table breaker = i.Sub("breaker");
    breaker.Integer("failure_threshold", &insurer.breaker.failure_threshold, 1, 10'000);
    breaker.Millis("open_ms", &insurer.breaker.open, 100, 3'600'000);
    breaker.Integer("half_open_probes", &insurer.breaker.half_open_probes, 1, 100);
    breaker.Finish();

    i.Finish();
    (*out)[key] = std::move(insurer);
  }
  if (out->empty())
    loader->Add(t.path(), t.where(),
                "at least one [insurers.<code>] table is required: messages need somewhere to go");
  t.Finish();
}

void ReadRouting(Table t, const std::map<std::string, InsurerConfig>& insurers, RoutingConfig* r) {
  if (t.String("hub", &r->hub) && !r->hub.empty() && !insurers.count(r->hub))
    t.Problem("hub", "names no [insurers." + r->hub + "] table");
  t.Bool("mutuality_to_union", &r->mutuality_to_union);
  t.Bool("member_registry", &r->member_registry);
  t.Finish();
}

}  // namespace

std::string ServiceUrlKey(MessageKind kind, Service service) {
  switch (service) {
    case Service::kMediPrimaUma:
      return "mediprima_uma_url";
    case Service::kMediPrimaConsult:
      return "mediprima_consult_url";
    case Service::kEAttest:
      return "eattest_url";
    case Service::kDefault:
      break;
  }
  return std::string(MessageKindName(kind)) + "_url";
}

std::string InsurerUrl(const InsurerConfig& insurer, MessageKind kind, Service service) {
  switch (service) {
    case Service::kMediPrimaUma:
      return insurer.mediprima_uma_url;
    case Service::kMediPrimaConsult:
      return insurer.mediprima_consult_url;
    case Service::kEAttest:
      // No fallback to claim_url: that is the Generic Async endpoint, which dead-letters a
      // sealed eAttest. No eattest_url = this insurer takes no eAttest (routing answers 422).
      return insurer.eattest_url;
    case Service::kDefault:
      break;
  }
  auto it = insurer.endpoints.find(kind);
  return it == insurer.endpoints.end() ? std::string() : it->second;
}

bool ServesAnything(const InsurerConfig& insurer) {
  return !insurer.endpoints.empty() || !insurer.mediprima_uma_url.empty() ||
         !insurer.mediprima_consult_url.empty() || !insurer.eattest_url.empty();
}

const char* MessageKindName(MessageKind kind) {
  switch (kind) {
    case MessageKind::kEnrolment:
      return "enrolment";
    case MessageKind::kClaim:
      return "claim";
    case MessageKind::kAmu:
      return "amu";
  }
  return "unknown";
}

std::string FormatProblem(const std::string& file, const ConfigProblem& problem) {
  std::ostringstream out;
  out << file << ":" << problem.line << ": ";
  if (!problem.path.empty())
    out << problem.path << ": ";
  if (problem.warning)
    out << "warning: ";
  out << problem.message;
  return out.str();
}

StatusOr<Config> ParseConfig(std::string_view text, const fs::path& path,
                             const LoadOptions& options, std::vector<ConfigProblem>* problems) {
  std::vector<ConfigProblem> local;
  std::vector<ConfigProblem>& found = problems ? *problems : local;
  const std::size_t first = found.size();

  toml::parse_result parsed = toml::parse(text, path.string());
  if (!parsed) {
    const toml::parse_error& error = parsed.error();
    found.push_back({"", static_cast<int>(error.source().begin.line),
                     static_cast<int>(error.source().begin.column),
                     "TOML syntax: " + std::string(error.description()), false});
    return Status::Invalid("configuration " + path.string() + " is not valid TOML");
  }

  Config config;
  config.source = path;
  Loader loader(path.parent_path(), options, &found);
  const toml::table& root = parsed.table();
  Table top(&loader, &root, "", toml::source_region{{1, 1}, {1, 1}, nullptr});

  ReadServer(top.Sub("server"), &config.server);
  ReadStore(top.Sub("store"), options, &config.store);
  {
    Table schemas = top.Sub("schemas");
    schemas.Dir("dir", &config.schemas_dir, Need::kRequired, /*may_be_created=*/false);
    schemas.Finish();
  }
  {
    Table signing = top.Sub("signing");
    ReadKeyFiles(signing, "", &config.signing, Need::kRequired);
    signing.Finish();
  }
  ReadAuth(top.Sub("auth"), &config.auth);
  ReadPractices(&loader, top.Sub("practices"), &config.practices);
  ReadInsurers(&loader, top.Sub("insurers"), &config.insurers);
  ReadRouting(top.Sub("routing"), config.insurers, &config.routing);
  {
    Table mailbox = top.Sub("mailbox");
    mailbox.Bool("enabled", &config.mailbox.enabled);
    mailbox.Millis("poll_interval_ms", &config.mailbox.poll_interval, 100, 86'400'000);
    mailbox.Integer("max_messages", &config.mailbox.max_messages, 1, 1000);
    mailbox.Millis("max_backoff_ms", &config.mailbox.max_backoff, 100, 86'400'000);
    if (config.mailbox.max_backoff < config.mailbox.poll_interval)
      mailbox.Problem("max_backoff_ms", "must not be below poll_interval_ms");
    mailbox.Finish();
  }
  {
    Table logging = top.Sub("logging");
    logging.Choice("level", &config.logging.level, {"debug", "info", "warn", "error"});
    logging.Choice("format", &config.logging.format, {"json", "text"});
    logging.Finish();
  }
  {
    Table keys = top.Sub("keys");
    std::int64_t days = 0;
    if (keys.Integer("expiry_warning_days", &days, 1, 365))
      config.key_expiry_warning = std::chrono::hours(24 * days);
    keys.Finish();
  }
  top.Finish();

  std::stable_sort(found.begin() + static_cast<std::ptrdiff_t>(first), found.end(),
                   [](const ConfigProblem& a, const ConfigProblem& b) { return a.line < b.line; });
  std::size_t errors = 0;
  const ConfigProblem* first_error = nullptr;
  for (std::size_t i = first; i < found.size(); ++i) {
    if (found[i].warning)
      continue;
    if (!first_error)
      first_error = &found[i];
    ++errors;
  }
  if (errors > 0)
    return Status::Invalid("configuration " + path.string() + " has " + std::to_string(errors) +
                           " problem(s); first: " + FormatProblem(path.string(), *first_error));
  return config;
}

StatusOr<Config> LoadConfig(const fs::path& path, const LoadOptions& options,
                            std::vector<ConfigProblem>* problems) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return Status::FailedPrecondition("configuration file " + path.string() +
                                      " does not exist or is not a regular file");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in)
    text << in.rdbuf();
  if (!in || in.bad())
    return Status::FailedPrecondition("cannot read configuration file " + path.string());
  return ParseConfig(text.str(), fs::absolute(path), options, problems);
}

StatusOr<Config> LoadConfig(const fs::path& path, std::vector<ConfigProblem>* problems) {
  return LoadConfig(path, LoadOptions{}, problems);
}

}  // namespace psl::gateway
