// Who is calling and with which role (DESIGN.md "Public contracts").
//
// - practice: a verified client certificate whose RFC 2253 subject or SHA-256 fingerprint is
//   listed under [practices.<nihii>] → that practice's NIHII;
// - ops / auditor: `Authorization: Bearer <token>` whose SHA-256 (hex) is listed in
//   [auth] ops_token_sha256 / auditor_token_sha256 (compared in constant time over every
//   configured hash), or a verified client certificate whose subject is in ops_cert_subjects /
//   auditor_cert_subjects.
// An Authorization header that is present but is not a known bearer token makes the request
// unauthenticated whatever certificate came with it (explicit credentials that are wrong are
// refused, never ignored). A certificate that matches two practices is not a practice identity.
//
// Asio-free; an Authenticator copies what it needs from the Config and is immutable: thread-safe.
#ifndef PSL_GATEWAY_AUTH_H_
#define PSL_GATEWAY_AUTH_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "gateway/config.h"
#include "gateway/http_types.h"

namespace psl::gateway {

enum class Role { kPractice, kOps, kAuditor };
const char* RoleName(Role role);  // "practice", "ops", "auditor"

// Everything the request proved. Empty (authenticated() false) when it proved nothing.
struct Identity {
  std::optional<std::string> practice_nihii;  // set when the certificate maps to a practice
  bool ops = false;
  bool auditor = false;
  // Who, for audit actors and logs (never a secret): the certificate subject, or
  // "token:<first 12 hex digits of the token's SHA-256>". "" when nothing matched.
  std::string name;
  bool bad_credentials = false;  // an Authorization header that matched nothing
  bool authenticated() const { return !bad_credentials && (practice_nihii || ops || auditor); }
  bool Has(Role role) const;
};

// An identity checked for one role.
struct Principal {
  Role role = Role::kPractice;
  std::string practice_nihii;  // for kPractice
  std::string name;            // as Identity::name
  // The audit actor: "practice:<nihii>", "ops:<name>", "auditor:<name>".
  std::string Actor() const;
};

class Authenticator {
 public:
  explicit Authenticator(const Config& config);

  // What the request proves (certificate from the TLS layer, Authorization header).
  Identity Identify(const HttpRequest& request) const;

  // The principal for `role`, or kUnauthenticated (no identity or bad credentials → 401) /
  // kForbidden (an identity without that role → 403). `identity` (may be null) receives what was
  // identified, for audit of denials.
  StatusOr<Principal> Authorize(const HttpRequest& request, Role role,
                                Identity* identity = nullptr) const;

 private:
  std::map<std::string, std::vector<std::string>> practice_by_subject_;  // subject -> nihiis
  std::map<std::string, std::vector<std::string>> practice_by_sha256_;   // fingerprint -> nihiis
  std::vector<std::string> ops_token_sha256_;                            // lowercase hex
  std::vector<std::string> auditor_token_sha256_;
  std::vector<std::string> ops_cert_subjects_;
  std::vector<std::string> auditor_cert_subjects_;
};

// Lowercase hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// True when `a` and `b` are equal; the time taken depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_AUTH_H_
