#include "gateway/auth.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <utility>

#include "base/digest.h"

namespace psl::gateway {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// True when `digest` equals one of `hashes`; every hash is compared (no early exit).
bool MatchesAnyHash(const std::string& digest, const std::vector<std::string>& hashes) {
  bool found = false;
  for (const std::string& hash : hashes) {
    found = ConstantTimeEquals(digest, hash) || found;
  }
  return found;
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// The token of "Bearer <token>" (scheme case-insensitive, RFC 7235), or nullopt.
std::optional<std::string_view> BearerToken(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() || Lower(header.substr(0, kScheme.size())) != kScheme) {
    return std::nullopt;
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') {
    token.remove_prefix(1);
  }
  while (!token.empty() && token.back() == ' ') {
    token.remove_suffix(1);
  }
  if (token.empty()) {
    return std::nullopt;
  }
  return token;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kPractice:
      return "practice";
    case Role::kOps:
      return "ops";
    case Role::kAuditor:
      return "auditor";
  }
  return "unknown";
}

bool Identity::Has(Role role) const {
  if (!authenticated()) {
    return false;
  }
  switch (role) {
    case Role::kPractice:
      return practice_nihii.has_value();
    case Role::kOps:
      return ops;
    case Role::kAuditor:
      return auditor;
  }
  return false;
}

std::string Principal::Actor() const {
  switch (role) {
    case Role::kPractice:
      return "practice:" + practice_nihii;
    case Role::kOps:
      return "ops:" + name;
    case Role::kAuditor:
      return "auditor:" + name;
  }
  return "unknown";
}

std::string Sha256Hex(std::string_view bytes) {
  return psl::Sha256Hex(bytes);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

Authenticator::Authenticator(const Config& config) {
  for (const auto& [nihii, practice] : config.practices) {
    for (const std::string& subject : practice.cert_subjects) {
      practice_by_subject_[subject].push_back(nihii);
    }
    for (const std::string& sha : practice.cert_sha256) {
      practice_by_sha256_[Lower(sha)].push_back(nihii);
    }
  }
  for (const std::string& h : config.auth.ops_token_sha256) {
    ops_token_sha256_.push_back(Lower(h));
  }
  for (const std::string& h : config.auth.auditor_token_sha256) {
    auditor_token_sha256_.push_back(Lower(h));
  }
  ops_cert_subjects_ = config.auth.ops_cert_subjects;
  auditor_cert_subjects_ = config.auth.auditor_cert_subjects;
}

Identity Authenticator::Identify(const HttpRequest& request) const {
  Identity identity;
  if (auto header = request.Header("authorization")) {
    const std::optional<std::string_view> token = BearerToken(*header);
    const std::string digest = token ? Sha256Hex(*token) : std::string();
    identity.ops = token && MatchesAnyHash(digest, ops_token_sha256_);
    identity.auditor = token && MatchesAnyHash(digest, auditor_token_sha256_);
    if (!identity.ops && !identity.auditor) {
      identity.bad_credentials = true;
      return identity;
    }
    identity.name = "token:" + digest.substr(0, 12);
  }
  if (!request.peer.has_certificate) {
    return identity;
  }
  std::vector<std::string> nihiis;
  if (auto it = practice_by_subject_.find(request.peer.subject); it != practice_by_subject_.end()) {
    nihiis = it->second;
  }
  if (auto it = practice_by_sha256_.find(Lower(request.peer.sha256));
      !request.peer.sha256.empty() && it != practice_by_sha256_.end()) {
    nihiis.insert(nihiis.end(), it->second.begin(), it->second.end());
  }
  std::sort(nihiis.begin(), nihiis.end());
  nihiis.erase(std::unique(nihiis.begin(), nihiis.end()), nihiis.end());
  const bool cert_ops = Contains(ops_cert_subjects_, request.peer.subject);
  const bool cert_auditor = Contains(auditor_cert_subjects_, request.peer.subject);
  if (nihiis.size() == 1) {
    identity.practice_nihii = nihiis.front();
  }
  identity.ops = identity.ops || cert_ops;
  identity.auditor = identity.auditor || cert_auditor;
  if (identity.name.empty() && (nihiis.size() == 1 || cert_ops || cert_auditor)) {
    identity.name = request.peer.subject;
  }
  return identity;
}

StatusOr<Principal> Authenticator::Authorize(const HttpRequest& request, Role role,
                                             Identity* identity_out) const {
  Identity identity = Identify(request);
  if (identity_out != nullptr) {
    *identity_out = identity;
  }
  if (identity.bad_credentials) {
    return Status::Unauthenticated("the bearer token is not valid");
  }
  if (!identity.authenticated()) {
    return Status::Unauthenticated("no client certificate or bearer token identifies the caller");
  }
  if (!identity.Has(role)) {
    return Status::Forbidden(std::string("the caller does not have the ") + RoleName(role) +
                             " role");
  }
  Principal principal;
  principal.role = role;
  principal.name = identity.name;
  if (role == Role::kPractice) {
    principal.practice_nihii = *identity.practice_nihii;
    principal.name = request.peer.subject;
  }
  return principal;
}

}  // namespace psl::gateway
