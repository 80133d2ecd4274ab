#include "certs/key_store.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>
#include <utility>

#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "base/x509.h"
#include "certs/trust_store.h"

namespace psl::certs {
namespace {

using std::chrono::system_clock;

std::string Describe(const std::filesystem::path& p) {
  return "'" + p.string() + "'";
}

StatusOr<std::string> ReadFile(const std::filesystem::path& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::FailedPrecondition(std::string(what) + " " + Describe(path) +
                                      " cannot be opened");
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) {
    return Status::FailedPrecondition(std::string(what) + " " + Describe(path) + " cannot be read");
  }
  return buf.str();
}

StatusOr<std::string> ReadPassword(const std::filesystem::path& path) {
  StatusOr<std::string> content = ReadFile(path, "password file");
  if (!content.ok()) {
    return content.status();
  }
  std::string password = std::move(content).value();
  if (!password.empty() && password.back() == '\n') {
    password.pop_back();
  }
  if (!password.empty() && password.back() == '\r') {
    password.pop_back();
  }
  if (password.find('\n') != std::string::npos) {
    return Status::FailedPrecondition("password file " + Describe(path) +
                                      " holds more than one line");
  }
  return password;
}

// Scrubs a secret before its memory is released.
void Wipe(std::string& s) {
  OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

// PEM password callback: hands out the password, or refuses (instead of OpenSSL's default
// terminal prompt) when there is none.
int PasswordCallback(char* buf, int size, int /*rwflag*/, void* user) {
  const auto* password = static_cast<const std::string*>(user);
  if (password == nullptr) {
    return -1;
  }
  if (password->size() > static_cast<std::size_t>(size)) {
    return -1;
  }
  password->copy(buf, password->size());
  return static_cast<int>(password->size());
}

BioPtr MemBio(const std::string& bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

// Orders `certs` as the issuing chain of `leaf`, nearest issuer first; certificates that do not
// extend the chain keep their order at the end.
std::vector<X509Ptr> OrderChain(X509* leaf, std::vector<X509Ptr> certs) {
  std::vector<X509Ptr> ordered;
  X509* current = leaf;
  while (!certs.empty()) {
    auto it = certs.begin();
    for (; it != certs.end(); ++it) {
      if (X509_check_issued(it->get(), current) == X509_V_OK) {
        break;
      }
    }
    if (it == certs.end()) {
      break;
    }
    ordered.push_back(std::move(*it));
    certs.erase(it);
    current = ordered.back().get();
    if (X509_check_issued(current, current) == X509_V_OK) {
      break;  // reached a root
    }
  }
  for (X509Ptr& rest : certs) {
    ordered.push_back(std::move(rest));
  }
  return ordered;
}

Status CheckKeyMatches(const SigningIdentity& id, const std::filesystem::path& file) {
  if (X509_check_private_key(id.certificate.get(), id.key.get()) != 1) {
    DrainOpenSslErrors();
    return Status::FailedPrecondition("private key does not match the certificate " +
                                      SubjectOf(id.certificate.get()) + " (" + Describe(file) +
                                      ")");
  }
  return Status::Ok();
}

system_clock::time_point ToTimePoint(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return system_clock::time_point{};
  }
  return system_clock::from_time_t(timegm(&tm));
}

std::string FormatUtc(system_clock::time_point t) {
  std::time_t tt = system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

std::string SubjectOf(const X509* cert) {
  return SubjectRfc2253(cert);
}

StatusOr<SigningIdentity> LoadPemIdentity(const std::filesystem::path& key,
                                          const std::filesystem::path& cert,
                                          const std::filesystem::path* chain,
                                          const std::filesystem::path* password_file) {
  std::string password;
  if (password_file != nullptr) {
    StatusOr<std::string> p = ReadPassword(*password_file);
    if (!p.ok()) {
      return p.status();
    }
    password = std::move(p).value();
  }
  StatusOr<std::string> key_pem = ReadFile(key, "private key file");
  if (!key_pem.ok()) {
    return key_pem.status();
  }

  SigningIdentity id;
  {
    BioPtr bio = MemBio(*key_pem);
    id.key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, PasswordCallback,
                                         password_file != nullptr ? &password : nullptr));
    OPENSSL_cleanse(key_pem->data(), key_pem->size());
    Wipe(password);
  }
  if (id.key == nullptr) {
    DrainOpenSslErrors();
    return Status::FailedPrecondition(
        "private key file " + Describe(key) +
        (password_file != nullptr
             ? " cannot be decoded: not a PEM private key, or the password is wrong"
             : " cannot be decoded: not a PEM private key, or it is encrypted and no password "
               "file was configured"));
  }

  StatusOr<std::vector<X509Ptr>> certs = ReadPemCertificates(cert);
  if (!certs.ok()) {
    return certs.status();
  }
  id.certificate = std::move(certs->front());
  std::vector<X509Ptr> rest;
  for (std::size_t i = 1; i < certs->size(); ++i) {
    rest.push_back(std::move((*certs)[i]));
  }
  if (chain != nullptr) {
    StatusOr<std::vector<X509Ptr>> chain_certs = ReadPemCertificates(*chain);
    if (!chain_certs.ok()) {
      return chain_certs.status();
    }
    for (X509Ptr& c : *chain_certs) {
      rest.push_back(std::move(c));
    }
  }
  id.chain = OrderChain(id.certificate.get(), std::move(rest));
  PSL_RETURN_IF_ERROR(CheckKeyMatches(id, key));
  return id;
}

StatusOr<SigningIdentity> LoadPkcs12Identity(const std::filesystem::path& p12,
                                             const std::filesystem::path& password_file) {
  StatusOr<std::string> bytes = ReadFile(p12, "PKCS#12 file");
  if (!bytes.ok()) {
    return bytes.status();
  }
  StatusOr<std::string> p = ReadPassword(password_file);
  if (!p.ok()) {
    return p.status();
  }
  std::string password = std::move(p).value();

  BioPtr bio = MemBio(*bytes);
  std::unique_ptr<PKCS12, decltype(&PKCS12_free)> bundle(d2i_PKCS12_bio(bio.get(), nullptr),
                                                         &PKCS12_free);
  if (bundle == nullptr) {
    Wipe(password);
    DrainOpenSslErrors();
    return Status::FailedPrecondition("PKCS#12 file " + Describe(p12) +
                                      " is not a PKCS#12 (DER) bundle");
  }
  if (PKCS12_verify_mac(bundle.get(), password.c_str(), static_cast<int>(password.size())) != 1) {
    Wipe(password);
    DrainOpenSslErrors();
    return Status::FailedPrecondition("PKCS#12 file " + Describe(p12) +
                                      ": wrong password (MAC check failed) — see password file " +
                                      Describe(password_file));
  }
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  STACK_OF(X509)* cas = nullptr;
  int parsed = PKCS12_parse(bundle.get(), password.c_str(), &key, &cert, &cas);
  Wipe(password);
  SigningIdentity id;
  id.key.reset(key);
  id.certificate.reset(cert);
  std::vector<X509Ptr> rest;
  if (cas != nullptr) {
    while (sk_X509_num(cas) > 0) {
      rest.emplace_back(sk_X509_shift(cas));
    }
    sk_X509_free(cas);
  }
  if (parsed != 1) {
    DrainOpenSslErrors();
    return Status::FailedPrecondition("PKCS#12 file " + Describe(p12) + " cannot be decoded");
  }
  if (id.key == nullptr || id.certificate == nullptr) {
    return Status::FailedPrecondition("PKCS#12 file " + Describe(p12) +
                                      " does not hold both a private key and its certificate");
  }
  id.chain = OrderChain(id.certificate.get(), std::move(rest));
  PSL_RETURN_IF_ERROR(CheckKeyMatches(id, p12));
  return id;
}

CertificateValidity ValidityOf(const X509* cert) {
  return {ToTimePoint(X509_get0_notBefore(cert)), ToTimePoint(X509_get0_notAfter(cert))};
}

std::chrono::seconds SecondsToExpiry(const X509* cert, const Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(ValidityOf(cert).not_after - clock.Now());
}

Status CheckUsable(const SigningIdentity& identity, const Clock& clock,
                   std::chrono::seconds warn_window, std::string* warning) {
  if (warning != nullptr) {
    warning->clear();
  }
  if (identity.certificate == nullptr) {
    return Status::FailedPrecondition("signing identity has no certificate");
  }
  const system_clock::time_point now = clock.Now();
  std::vector<const X509*> all = {identity.certificate.get()};
  for (const X509Ptr& c : identity.chain) {
    all.push_back(c.get());
  }

  const X509* soonest = nullptr;
  system_clock::time_point soonest_end = system_clock::time_point::max();
  for (const X509* c : all) {
    const CertificateValidity v = ValidityOf(c);
    const std::string role = c == all.front() ? "certificate " : "chain certificate ";
    if (now < v.not_before) {
      return Status::FailedPrecondition(role + SubjectOf(c) + " is not valid before " +
                                        FormatUtc(v.not_before) + " (now " + FormatUtc(now) + ")");
    }
    if (now >= v.not_after) {
      return Status::FailedPrecondition(role + SubjectOf(c) + " expired on " +
                                        FormatUtc(v.not_after) + " (now " + FormatUtc(now) + ")");
    }
    if (v.not_after < soonest_end) {
      soonest_end = v.not_after;
      soonest = c;
    }
  }
  if (soonest != nullptr && soonest_end - now <= warn_window && warning != nullptr) {
    const auto days =
        std::chrono::duration_cast<std::chrono::hours>(soonest_end - now).count() / 24;
    *warning = "certificate " + SubjectOf(soonest) + " expires on " + FormatUtc(soonest_end) +
               " (in " + std::to_string(days) + " days)";
  }
  return Status::Ok();
}

}  // namespace psl::certs
