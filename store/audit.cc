#include "store/audit.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include <openssl/x509.h>

#include "base/x509.h"

#include <nlohmann/json.hpp>

namespace psl::store {
namespace {

using Json = nlohmann::json;

// Audit events are a few hundred bytes and checkpoints a few kilobytes (embedded certificates);
// anything far larger read from disk is refused before parsing.
constexpr std::size_t kMaxEncodedBytes = 1 << 20;

constexpr std::string_view kCheckpointDomain = "psl-audit-checkpoint";

std::string Hex(const unsigned char* data, std::size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(size * 2, '0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 0x0f];
  }
  return out;
}

bool IsHexHash(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Pure ASCII output, so the canonical bytes never depend on how a reader treats UTF-8.
std::string Dump(const Json& json) {
  return json.dump(-1, ' ', /*ensure_ascii=*/true, Json::error_handler_t::replace);
}

Json EventJson(const AuditEvent& event) {
  Json json = Json::object();
  json["actor"] = event.actor;
  json["flow_kind"] = event.flow_kind;
  json["insurer"] = event.insurer;
  json["kind"] = event.kind;
  json["message_id"] = event.message_id;
  json["outcome_codes"] = event.outcome_codes;
  json["patient_pseudonym"] = event.patient_pseudonym;
  json["payload_sha256"] = event.payload_sha256;
  json["practice_nihii"] = event.practice_nihii;
  json["prev_hash"] = event.prev_hash;
  json["sequence"] = event.sequence;
  json["time_ms"] = event.time_ms;
  return json;
}

// Parses a JSON object within the size limit; never throws.
StatusOr<Json> ParseObject(std::string_view bytes, std::string_view what) {
  if (bytes.size() > kMaxEncodedBytes) {
    return Status::Malformed(std::string(what) + " is larger than 1 MiB");
  }
  Json json;
  try {
    json = Json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  } catch (const Json::exception&) {
    json = Json(Json::value_t::discarded);
  }
  if (json.is_discarded()) {
    return Status::Malformed(std::string(what) + " is not valid JSON");
  }
  if (!json.is_object()) {
    return Status::Malformed(std::string(what) + " is not a JSON object");
  }
  return json;
}

// Field readers: each names the field (never its value) when it is absent or of the wrong type.
class FieldReader {
 public:
  FieldReader(const Json& json, std::string_view what) : json_(json), what_(what) {}

  Status String(const char* name, std::string* out) {
    PSL_RETURN_IF_ERROR(Find(name));
    if (!it_->is_string()) {
      return Wrong(name, "a string");
    }
    *out = it_->get<std::string>();
    return Status::Ok();
  }
  Status StringArray(const char* name, std::vector<std::string>* out) {
    PSL_RETURN_IF_ERROR(Find(name));
    if (!it_->is_array()) {
      return Wrong(name, "an array of strings");
    }
    out->clear();
    for (const Json& item : *it_) {
      if (!item.is_string()) {
        return Wrong(name, "an array of strings");
      }
      out->push_back(item.get<std::string>());
    }
    return Status::Ok();
  }
  Status Unsigned(const char* name, std::uint64_t* out) {
    PSL_RETURN_IF_ERROR(Find(name));
    if (!it_->is_number_unsigned()) {
      return Wrong(name, "a non-negative integer");
    }
    *out = it_->get<std::uint64_t>();
    return Status::Ok();
  }
  Status Signed(const char* name, std::int64_t* out) {
    PSL_RETURN_IF_ERROR(Find(name));
    if (!it_->is_number_integer() ||
        (it_->is_number_unsigned() &&
         it_->get<std::uint64_t>() >
             static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))) {
      return Wrong(name, "a 64-bit integer");
    }
    *out = it_->get<std::int64_t>();
    return Status::Ok();
  }
  // After reading every expected field: anything else is an unknown field.
  Status NoOthers(std::size_t expected_count) const {
    if (json_.size() == expected_count) {
      return Status::Ok();
    }
    return Status::Malformed(std::string(what_) + " has an unknown field");
  }

 private:
  Status Find(const char* name) {
    it_ = json_.find(name);
    if (it_ == json_.end()) {
      return Status::Malformed(std::string(what_) + " lacks the field \"" + name + "\"");
    }
    return Status::Ok();
  }
  Status Wrong(const char* name, const char* expected) const {
    return Status::Malformed(std::string(what_) + " field \"" + name + "\" is not " + expected);
  }

  const Json& json_;
  std::string_view what_;
  Json::const_iterator it_;
};

std::string CheckpointMessage(std::uint64_t sequence, std::string_view head_hash,
                              std::int64_t time_ms) {
  std::string message(kCheckpointDomain);
  message += '\n';
  message += std::to_string(sequence);
  message += '\n';
  message += head_hash;
  message += '\n';
  message += std::to_string(time_ms);
  return message;
}

std::string Base64(const std::vector<unsigned char>& bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

StatusOr<std::vector<unsigned char>> Unbase64(std::string_view text) {
  if (text.empty() || text.size() % 4 != 0 || text.size() > kMaxEncodedBytes) {
    return Status::Malformed("checkpoint signature is not base64");
  }
  std::vector<unsigned char> out(text.size() / 4 * 3);
  const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) {
    DrainOpenSslErrors();
    return Status::Malformed("checkpoint signature is not base64");
  }
  // EVP_DecodeBlock counts the zero bytes that padding stands for.
  std::size_t size = static_cast<std::size_t>(n);
  const std::size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  size -= std::min(size, padding);
  out.resize(size);
  return out;
}

// The certificates of a PEM text, leaf first.
StatusOr<std::vector<X509Ptr>> ReadCertificates(std::string_view pem) {
  if (pem.empty() || pem.size() > kMaxEncodedBytes) {
    return Status::Malformed("checkpoint certificate is missing or too large");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) {
    return Status::Internal("BIO_new_mem_buf failed: " + DrainOpenSslErrors());
  }
  std::vector<X509Ptr> certificates;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    certificates.emplace_back(cert);
  }
  DrainOpenSslErrors();  // the loop ends on a "no start line" error
  if (certificates.empty()) {
    return Status::Malformed("checkpoint certificate is not a PEM certificate");
  }
  return certificates;
}

Status VerifySignatureWith(const AuditCheckpoint& checkpoint, X509* leaf) {
  StatusOr<std::vector<unsigned char>> signature = Unbase64(checkpoint.signature_b64);
  if (!signature.ok()) {
    return signature.status();
  }
  EvpPkeyPtr key(X509_get_pubkey(leaf));
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (key == nullptr || ctx == nullptr) {
    return Status::Malformed("checkpoint certificate has no usable public key: " +
                             DrainOpenSslErrors());
  }
  const std::string message =
      CheckpointMessage(checkpoint.sequence, checkpoint.head_hash, checkpoint.time_ms);
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1) {
    return Status::Malformed("checkpoint certificate key cannot verify SHA-256 signatures: " +
                             DrainOpenSslErrors());
  }
  const int rc =
      EVP_DigestVerify(ctx.get(), signature->data(), signature->size(),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size());
  DrainOpenSslErrors();
  if (rc != 1) {
    return Status::Unauthenticated("checkpoint signature does not verify against its certificate");
  }
  return Status::Ok();
}

void AppendBigEndian(std::uint64_t value, std::string* out) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xff));
  }
}

std::uint64_t ReadBigEndian(std::string_view bytes) {
  std::uint64_t value = 0;
  for (char c : bytes.substr(0, 8)) {
    value = (value << 8) | static_cast<unsigned char>(c);
  }
  return value;
}

constexpr std::uint64_t kSignBit = std::uint64_t{1} << 63;

std::string Short(std::string_view hash) {
  return std::string(hash.substr(0, 12)) + "...";
}

}  // namespace

std::string EncodeAuditEvent(const AuditEvent& event) {
  return Dump(EventJson(event));
}

std::string EncodeStoredAuditEvent(const AuditEvent& event) {
  Json json = EventJson(event);
  json["hash"] = event.hash;
  return Dump(json);
}

StatusOr<AuditEvent> DecodeAuditEvent(std::string_view bytes) {
  StatusOr<Json> json = ParseObject(bytes, "audit event");
  if (!json.ok()) {
    return json.status();
  }
  AuditEvent event;
  FieldReader reader(*json, "audit event");
  PSL_RETURN_IF_ERROR(reader.String("actor", &event.actor));
  PSL_RETURN_IF_ERROR(reader.String("flow_kind", &event.flow_kind));
  PSL_RETURN_IF_ERROR(reader.String("insurer", &event.insurer));
  PSL_RETURN_IF_ERROR(reader.String("kind", &event.kind));
  PSL_RETURN_IF_ERROR(reader.String("message_id", &event.message_id));
  PSL_RETURN_IF_ERROR(reader.StringArray("outcome_codes", &event.outcome_codes));
  PSL_RETURN_IF_ERROR(reader.String("patient_pseudonym", &event.patient_pseudonym));
  PSL_RETURN_IF_ERROR(reader.String("payload_sha256", &event.payload_sha256));
  PSL_RETURN_IF_ERROR(reader.String("practice_nihii", &event.practice_nihii));
  PSL_RETURN_IF_ERROR(reader.String("prev_hash", &event.prev_hash));
  PSL_RETURN_IF_ERROR(reader.Unsigned("sequence", &event.sequence));
  PSL_RETURN_IF_ERROR(reader.Signed("time_ms", &event.time_ms));
  std::size_t fields = 12;
  const bool stored_form = json->contains("hash");
  if (stored_form) {
    PSL_RETURN_IF_ERROR(reader.String("hash", &event.hash));
    ++fields;
    if (!IsHexHash(event.hash)) {
      return Status::Malformed("audit event field \"hash\" is not 64 lowercase hex digits");
    }
  }
  PSL_RETURN_IF_ERROR(reader.NoOthers(fields));
  if (!event.prev_hash.empty() && !IsHexHash(event.prev_hash)) {
    return Status::Malformed("audit event field \"prev_hash\" is not 64 lowercase hex digits");
  }
  const std::string canonical =
      stored_form ? EncodeStoredAuditEvent(event) : EncodeAuditEvent(event);
  if (canonical != bytes) {
    return Status::Malformed("audit event is not in canonical form");
  }
  return event;
}

std::string ComputeAuditHash(const AuditEvent& event) {
  const std::string input = event.prev_hash + EncodeAuditEvent(event);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1) {
    DrainOpenSslErrors();
    return "";  // never equal to a stored 64-digit hash, so verification fails safe
  }
  return Hex(digest.data(), size);
}

std::string HmacSha256Hex(std::string_view key, std::string_view data) {
  static constexpr unsigned char kEmpty = 0;
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  const void* key_bytes = key.empty() ? &kEmpty : static_cast<const void*>(key.data());
  const unsigned char* data_bytes =
      data.empty() ? &kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  if (HMAC(EVP_sha256(), key_bytes, static_cast<int>(key.size()), data_bytes, data.size(),
           mac.data(), &size) == nullptr) {
    DrainOpenSslErrors();
    return "";
  }
  return Hex(mac.data(), size);
}

std::string PatientPseudonym(std::string_view pseudonym_key, std::string_view niss) {
  if (pseudonym_key.size() < kMinPseudonymKeyBytes) {
    return "";
  }
  std::string digits;
  for (char c : niss) {
    if (c != ' ' && c != '.' && c != '-' && c != '/') {
      digits.push_back(c);
    }
  }
  const std::string pseudonym = HmacSha256Hex(pseudonym_key, digits);
  OPENSSL_cleanse(digits.data(), digits.size());
  return pseudonym;
}

StatusOr<std::string> ReadPseudonymKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::FailedPrecondition("cannot read the pseudonym key file " + path);
  }
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    return Status::FailedPrecondition("cannot read the pseudonym key file " + path);
  }
  if (key.size() < kMinPseudonymKeyBytes) {
    return Status::FailedPrecondition("the pseudonym key file " + path + " holds " +
                                      std::to_string(key.size()) + " bytes; at least " +
                                      std::to_string(kMinPseudonymKeyBytes) + " are required");
  }
  return key;
}

AuditChain::AuditChain(AuditHead head) : head_(std::move(head)) {}

PreparedAuditEvent PrepareAuditEvent(AuditEvent event) {
  PreparedAuditEvent prepared;
  event.sequence = 0;
  event.prev_hash.clear();
  event.hash.clear();
  // Values are JSON-escaped, so the quoted key markers below can only be the structure itself;
  // prev_hash and sequence are the last string and the next-to-last field in sorted order.
  const std::string canonical = EncodeAuditEvent(event);
  constexpr std::string_view kPrev = "\"prev_hash\":\"";
  constexpr std::string_view kSequence = "\",\"sequence\":0";
  constexpr std::string_view kInsurer = ",\"insurer\":\"";
  const std::size_t prev = canonical.rfind(kPrev);
  const std::size_t sequence = canonical.find(kSequence, prev);
  prepared.head = canonical.substr(0, prev + kPrev.size());
  prepared.hash_at = canonical.find(kInsurer);
  prepared.middle = "\",\"sequence\":";
  prepared.tail = canonical.substr(sequence + kSequence.size());
  prepared.event = std::move(event);
  return prepared;
}

void AuditChain::SealPrepared(const PreparedAuditEvent& prepared, AuditEvent* sealed,
                              std::string* stored) {
  const std::uint64_t sequence = head_.sequence + 1;
  const std::string sequence_text = std::to_string(sequence);
  std::string input;
  input.reserve(head_.hash.size() * 2 + prepared.head.size() + prepared.tail.size() + 32);
  input.append(head_.hash)
      .append(prepared.head)
      .append(head_.hash)
      .append(prepared.middle)
      .append(sequence_text)
      .append(prepared.tail);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int size = 0;
  std::string hash;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha256(), nullptr) == 1) {
    hash = Hex(digest.data(), size);
  } else {
    DrainOpenSslErrors();  // "" never equals a stored hash: verification fails safe
  }
  *sealed = prepared.event;
  sealed->sequence = sequence;
  sealed->prev_hash = head_.hash;
  sealed->hash = hash;
  stored->clear();
  stored->reserve(input.size() + 80);
  stored->append(prepared.head, 0, prepared.hash_at)
      .append(",\"hash\":\"")
      .append(hash)
      .append("\"")
      .append(prepared.head, prepared.hash_at)
      .append(head_.hash)
      .append(prepared.middle)
      .append(sequence_text)
      .append(prepared.tail);
  head_ = AuditHead{sequence, std::move(hash)};
}

AuditEvent AuditChain::Seal(AuditEvent event) {
  event.sequence = head_.sequence + 1;
  event.prev_hash = head_.hash;
  event.hash = ComputeAuditHash(event);
  head_ = AuditHead{event.sequence, event.hash};
  return event;
}

StatusOr<AuditCheckpoint> SignCheckpoint(const AuditHead& head, std::int64_t time_ms,
                                         const SigningIdentity& identity) {
  if (!IsHexHash(head.hash)) {
    return Status::Invalid("checkpoint head hash is not 64 lowercase hex digits");
  }
  if (identity.key == nullptr || identity.certificate == nullptr) {
    return Status::FailedPrecondition("checkpoint signing identity has no key or certificate");
  }
  const std::string message = CheckpointMessage(head.sequence, head.hash, time_ms);
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  std::size_t size = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, identity.key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return Status::Internal("cannot sign the audit checkpoint: " + DrainOpenSslErrors());
  }
  std::vector<unsigned char> signature(size);
  if (EVP_DigestSign(ctx.get(), signature.data(), &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return Status::Internal("cannot sign the audit checkpoint: " + DrainOpenSslErrors());
  }
  signature.resize(size);

  BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || PEM_write_bio_X509(bio.get(), identity.certificate.get()) != 1) {
    return Status::Internal("cannot write the checkpoint certificate: " + DrainOpenSslErrors());
  }
  for (const X509Ptr& issuer : identity.chain) {
    if (PEM_write_bio_X509(bio.get(), issuer.get()) != 1) {
      return Status::Internal("cannot write the checkpoint chain: " + DrainOpenSslErrors());
    }
  }
  char* pem = nullptr;
  const long pem_size = BIO_get_mem_data(bio.get(), &pem);

  AuditCheckpoint checkpoint;
  checkpoint.sequence = head.sequence;
  checkpoint.head_hash = head.hash;
  checkpoint.time_ms = time_ms;
  checkpoint.signature_b64 = Base64(signature);
  checkpoint.certificate_pem.assign(pem, static_cast<std::size_t>(pem_size));
  return checkpoint;
}

Status VerifyCheckpointSignature(const AuditCheckpoint& checkpoint) {
  StatusOr<std::vector<X509Ptr>> certificates = ReadCertificates(checkpoint.certificate_pem);
  if (!certificates.ok()) {
    return certificates.status();
  }
  return VerifySignatureWith(checkpoint, certificates->front().get());
}

Status VerifyCheckpointSignature(const AuditCheckpoint& checkpoint, X509_STORE* trust) {
  StatusOr<std::vector<X509Ptr>> certificates = ReadCertificates(checkpoint.certificate_pem);
  if (!certificates.ok()) {
    return certificates.status();
  }
  PSL_RETURN_IF_ERROR(VerifySignatureWith(checkpoint, certificates->front().get()));
  if (trust == nullptr) {
    return Status::Internal("VerifyCheckpointSignature called with a null trust store");
  }
  std::vector<X509Ptr> untrusted;
  for (std::size_t i = 1; i < certificates->size(); ++i) {
    untrusted.push_back(std::move((*certificates)[i]));
  }
  const auto at =
      std::chrono::system_clock::time_point(std::chrono::milliseconds(checkpoint.time_ms));
  const Status chain =
      VerifyCertificateChain(trust, certificates->front().get(), untrusted,
                             std::chrono::time_point_cast<std::chrono::system_clock::duration>(at));
  if (chain.code() == StatusCode::kInvalid) {
    return Status::Unauthenticated("checkpoint signer is not trusted: " + chain.message());
  }
  return chain;
}

std::string EncodeCheckpoint(const AuditCheckpoint& checkpoint) {
  Json json = Json::object();
  json["certificate_pem"] = checkpoint.certificate_pem;
  json["head_hash"] = checkpoint.head_hash;
  json["sequence"] = checkpoint.sequence;
  json["signature_b64"] = checkpoint.signature_b64;
  json["time_ms"] = checkpoint.time_ms;
  return Dump(json);
}

StatusOr<AuditCheckpoint> DecodeCheckpoint(std::string_view bytes) {
  StatusOr<Json> json = ParseObject(bytes, "audit checkpoint");
  if (!json.ok()) {
    return json.status();
  }
  AuditCheckpoint checkpoint;
  FieldReader reader(*json, "audit checkpoint");
  PSL_RETURN_IF_ERROR(reader.String("certificate_pem", &checkpoint.certificate_pem));
  PSL_RETURN_IF_ERROR(reader.String("head_hash", &checkpoint.head_hash));
  PSL_RETURN_IF_ERROR(reader.Unsigned("sequence", &checkpoint.sequence));
  PSL_RETURN_IF_ERROR(reader.String("signature_b64", &checkpoint.signature_b64));
  PSL_RETURN_IF_ERROR(reader.Signed("time_ms", &checkpoint.time_ms));
  PSL_RETURN_IF_ERROR(reader.NoOthers(5));
  if (!IsHexHash(checkpoint.head_hash)) {
    return Status::Malformed("audit checkpoint field \"head_hash\" is not 64 lowercase hex digits");
  }
  if (EncodeCheckpoint(checkpoint) != bytes) {
    return Status::Malformed("audit checkpoint is not in canonical form");
  }
  return checkpoint;
}

// --- AuditChainVerifier ---------------------------------------------------------------------

AuditChainVerifier::AuditChainVerifier(X509_STORE* trust) {
  if (trust != nullptr && X509_STORE_up_ref(trust) == 1) {
    trust_.reset(trust);
  }
}

void AuditChainVerifier::StartAt(AuditHead anchor) {
  base_ = anchor.sequence;
  hashes_.clear();
  if (anchor.sequence > 0) {
    hashes_.emplace_back(anchor.sequence, anchor.hash);
  }
  expected_ = std::move(anchor);
}

void AuditChainVerifier::StartAtCheckpoint(std::string_view encoded_anchor) {
  StatusOr<AuditCheckpoint> anchor = DecodeCheckpoint(encoded_anchor);
  if (!anchor.ok()) {
    Fail(std::nullopt, "the anchor checkpoint is forged or damaged: " + anchor.status().message());
    return;
  }
  const Status signature = trust_ != nullptr ? VerifyCheckpointSignature(*anchor, trust_.get())
                                             : VerifyCheckpointSignature(*anchor);
  if (!signature.ok()) {
    Fail(anchor->sequence, "the anchor checkpoint " + std::to_string(anchor->sequence) +
                               " is forged: " + signature.message());
  } else {
    ++report_.checkpoints;
  }
  StartAt(AuditHead{anchor->sequence, anchor->head_hash});
}

void AuditChainVerifier::Fail(std::optional<std::uint64_t> sequence, std::string problem) {
  if (!report_.ok) {
    const bool earlier = sequence.has_value() && (!report_.first_bad_sequence.has_value() ||
                                                  *sequence < *report_.first_bad_sequence);
    if (!earlier) {
      return;
    }
  }
  report_.ok = false;
  report_.first_bad_sequence = sequence;
  report_.problem = std::move(problem);
}

const std::string* AuditChainVerifier::HashAt(std::uint64_t sequence) const {
  auto it = std::lower_bound(hashes_.begin(), hashes_.end(), sequence,
                             [](const std::pair<std::uint64_t, std::string>& entry,
                                std::uint64_t s) { return entry.first < s; });
  if (it == hashes_.end() || it->first != sequence) {
    return nullptr;
  }
  return &it->second;
}

void AuditChainVerifier::ResolveGap(std::optional<std::uint64_t> next_sequence) {
  const Gap gap = *gap_;
  gap_.reset();
  chain_broken_ = true;
  const std::string expected = std::to_string(gap.expected);
  const std::string seen = std::to_string(gap.seen);
  if (next_sequence.has_value() && *next_sequence < gap.seen) {
    Fail(gap.expected, "events were reordered at sequence " + expected + ": event " + seen +
                           " is stored before event " + std::to_string(*next_sequence));
    return;
  }
  std::string problem;
  if (gap.seen == gap.expected + 1) {
    problem = "event " + expected + " was removed: the log jumps from event " +
              std::to_string(gap.expected - 1) + " to event " + seen;
  } else {
    problem = "events " + expected + " to " + std::to_string(gap.seen - 1) +
              " were removed: the log jumps from event " + std::to_string(gap.expected - 1) +
              " to event " + seen;
  }
  if (gap.expected == base_ + 1) {
    problem += " (if older events were purged by retention, verify from their anchor checkpoint)";
  }
  Fail(gap.expected, std::move(problem));
}

void AuditChainVerifier::AddEvent(std::uint64_t stored_key_sequence,
                                  std::string_view encoded_event) {
  ++report_.events;
  if (chain_broken_) {
    return;
  }
  const std::string key = std::to_string(stored_key_sequence);
  StatusOr<AuditEvent> decoded = DecodeAuditEvent(encoded_event);
  if (gap_.has_value()) {
    ResolveGap(decoded.ok() ? std::optional<std::uint64_t>(decoded->sequence) : std::nullopt);
    return;
  }
  if (!decoded.ok()) {
    chain_broken_ = true;
    Fail(stored_key_sequence, "event " + key +
                                  " was altered: it is not a well-formed audit event (" +
                                  decoded.status().message() + ")");
    return;
  }
  const AuditEvent& event = *decoded;
  if (event.hash.empty() || ComputeAuditHash(event) != event.hash) {
    chain_broken_ = true;
    Fail(stored_key_sequence, "event " + key + " was altered: its hash does not match its content");
    return;
  }
  const std::uint64_t expected = expected_.sequence + 1;
  const std::string expected_text = std::to_string(expected);
  if (event.sequence == expected) {
    if (event.prev_hash != expected_.hash) {
      chain_broken_ = true;
      Fail(expected, "event " + expected_text +
                         " was inserted or replaced: its own hash is valid but it does not "
                         "chain to " +
                         (expected_.sequence == base_ && base_ > 0
                              ? std::string("the anchor checkpoint")
                              : "event " + std::to_string(expected_.sequence)) +
                         " (prev_hash mismatch)");
      return;
    }
    if (stored_key_sequence != event.sequence) {
      chain_broken_ = true;
      Fail(expected, "event " + expected_text + " was altered: it is stored under sequence " + key);
      return;
    }
    expected_ = AuditHead{event.sequence, event.hash};
    hashes_.emplace_back(event.sequence, event.hash);
    return;
  }
  if (event.sequence > expected) {
    gap_ = Gap{expected, event.sequence};
    return;
  }
  // The sequence went back: a second event claims a sequence already seen.
  chain_broken_ = true;
  const std::string claimed = std::to_string(event.sequence);
  const std::string* seen = HashAt(event.sequence);
  if (seen == nullptr) {
    Fail(expected, "an event was inserted at sequence " + expected_text + ": it claims sequence " +
                       claimed + ", which precedes the start of the log");
  } else if (*seen == event.hash) {
    Fail(expected, "an event was inserted at sequence " + expected_text +
                       ": it is a copy of event " + claimed);
  } else {
    Fail(event.sequence, "an event was inserted at sequence " + claimed +
                             ": two different events claim sequence " + claimed);
  }
}

void AuditChainVerifier::AddCheckpoint(std::string_view encoded_checkpoint) {
  pending_checkpoints_.emplace_back(encoded_checkpoint);
}

void AuditChainVerifier::CheckCheckpoints() {
  std::vector<AuditCheckpoint> checkpoints;
  for (const std::string& encoded : pending_checkpoints_) {
    StatusOr<AuditCheckpoint> checkpoint = DecodeCheckpoint(encoded);
    if (!checkpoint.ok()) {
      Fail(std::nullopt, "a checkpoint is forged or damaged: " + checkpoint.status().message());
      continue;
    }
    checkpoints.push_back(*std::move(checkpoint));
  }
  pending_checkpoints_.clear();
  std::stable_sort(
      checkpoints.begin(), checkpoints.end(),
      [](const AuditCheckpoint& a, const AuditCheckpoint& b) { return a.sequence < b.sequence; });
  std::uint64_t last_verified = base_;
  const std::uint64_t last_event = expected_.sequence;
  for (const AuditCheckpoint& checkpoint : checkpoints) {
    const std::string at = std::to_string(checkpoint.sequence);
    const Status signature = trust_ != nullptr ? VerifyCheckpointSignature(checkpoint, trust_.get())
                                               : VerifyCheckpointSignature(checkpoint);
    if (!signature.ok()) {
      Fail(checkpoint.sequence, "checkpoint " + at + " is forged: " + signature.message());
      continue;
    }
    if (checkpoint.sequence < base_) {
      continue;  // covers purged events: nothing left to compare
    }
    if (checkpoint.sequence > last_event) {
      if (!chain_broken_) {
        Fail(last_event + 1, "the log was truncated after event " + std::to_string(last_event) +
                                 ": checkpoint " + at + " was signed at sequence " + at);
      }
      continue;
    }
    const std::string* hash = HashAt(checkpoint.sequence);
    if (hash == nullptr && checkpoint.sequence == 0) {
      if (checkpoint.head_hash == kZeroAuditHash) {
        ++report_.checkpoints;
        continue;
      }
    } else if (hash != nullptr && *hash == checkpoint.head_hash) {
      ++report_.checkpoints;
      last_verified = checkpoint.sequence;
      continue;
    }
    Fail(last_verified + 1, "events " + std::to_string(last_verified + 1) + " to " + at +
                                " were rewritten: checkpoint " + at + " signs head hash " +
                                Short(checkpoint.head_hash) + " but event " + at + " has hash " +
                                (hash != nullptr ? Short(*hash) : std::string("(none)")));
  }
}

AuditVerifyReport AuditChainVerifier::Finish() {
  if (gap_.has_value()) {
    ResolveGap(std::nullopt);
  }
  CheckCheckpoints();
  return report_;
}

// --- Keys and indexes -----------------------------------------------------------------------

std::string AuditEventKey(std::uint64_t sequence) {
  std::string key;
  AppendBigEndian(sequence, &key);
  return key;
}

StatusOr<std::uint64_t> ParseAuditEventKey(std::string_view key) {
  if (key.size() != 8) {
    return Status::Malformed("audit event key is not 8 bytes");
  }
  return ReadBigEndian(key);
}

std::string AuditIndexPrefix(AuditIndex index, std::string_view value) {
  std::string prefix(1, static_cast<char>(index));
  prefix += value;
  prefix.push_back('\0');
  return prefix;
}

std::string AuditIndexLowerBound(AuditIndex index, std::string_view value, std::int64_t from_ms) {
  std::string key = AuditIndexPrefix(index, value);
  AppendBigEndian(static_cast<std::uint64_t>(from_ms) ^ kSignBit, &key);
  return key;
}

std::string AuditIndexUpperBound(AuditIndex index, std::string_view value, std::int64_t to_ms) {
  if (to_ms == std::numeric_limits<std::int64_t>::max()) {
    std::string key = AuditIndexPrefix(index, value);
    key.back() = '\x01';  // the prefix's successor: past every time of this value
    return key;
  }
  return AuditIndexLowerBound(index, value, to_ms + 1);
}

std::string AuditIndexKey(AuditIndex index, std::string_view value, std::int64_t time_ms,
                          std::uint64_t sequence) {
  std::string key = AuditIndexLowerBound(index, value, time_ms);
  AppendBigEndian(sequence, &key);
  return key;
}

StatusOr<AuditIndexEntry> ParseAuditIndexKey(std::string_view key) {
  if (key.size() < 18) {
    return Status::Malformed("audit index key is too short");
  }
  AuditIndexEntry entry;
  switch (key.front()) {
    case 'p':
      entry.index = AuditIndex::kPractice;
      break;
    case 'n':
      entry.index = AuditIndex::kPatient;
      break;
    case 'k':
      entry.index = AuditIndex::kKind;
      break;
    case 't':
      entry.index = AuditIndex::kTime;
      break;
    default:
      return Status::Malformed("audit index key has an unknown index tag");
  }
  const std::size_t separator = key.size() - 17;
  const std::string_view value = key.substr(1, separator - 1);
  if (key[separator] != '\0' || value.find('\0') != std::string_view::npos) {
    return Status::Malformed("audit index key lacks its value separator");
  }
  entry.value = std::string(value);
  entry.time_ms = static_cast<std::int64_t>(ReadBigEndian(key.substr(separator + 1)) ^ kSignBit);
  entry.sequence = ReadBigEndian(key.substr(separator + 9));
  return entry;
}

std::vector<std::string> AuditIndexKeysFor(const AuditEvent& event) {
  std::vector<std::string> keys;
  if (!event.practice_nihii.empty()) {
    keys.push_back(
        AuditIndexKey(AuditIndex::kPractice, event.practice_nihii, event.time_ms, event.sequence));
  }
  if (!event.patient_pseudonym.empty()) {
    keys.push_back(AuditIndexKey(AuditIndex::kPatient, event.patient_pseudonym, event.time_ms,
                                 event.sequence));
  }
  keys.push_back(AuditIndexKey(AuditIndex::kKind, event.kind, event.time_ms, event.sequence));
  keys.push_back(AuditIndexKey(AuditIndex::kTime, "", event.time_ms, event.sequence));
  return keys;
}

bool AuditQueryMatches(const AuditQuery& query, const AuditEvent& event) {
  return (!query.practice_nihii || *query.practice_nihii == event.practice_nihii) &&
         (!query.patient_pseudonym || *query.patient_pseudonym == event.patient_pseudonym) &&
         (!query.kind || *query.kind == event.kind) &&
         (!query.from_ms || event.time_ms >= *query.from_ms) &&
         (!query.to_ms || event.time_ms <= *query.to_ms);
}

AuditIndexScan PlanAuditIndexScan(const AuditQuery& query) {
  AuditIndex index = AuditIndex::kTime;
  std::string value;
  if (query.patient_pseudonym) {
    index = AuditIndex::kPatient;
    value = *query.patient_pseudonym;
  } else if (query.practice_nihii) {
    index = AuditIndex::kPractice;
    value = *query.practice_nihii;
  } else if (query.kind) {
    index = AuditIndex::kKind;
    value = *query.kind;
  }
  const std::int64_t from = query.from_ms.value_or(std::numeric_limits<std::int64_t>::min());
  const std::int64_t to = query.to_ms.value_or(std::numeric_limits<std::int64_t>::max());
  return AuditIndexScan{AuditIndexLowerBound(index, value, from),
                        AuditIndexUpperBound(index, value, to)};
}

}  // namespace psl::store
