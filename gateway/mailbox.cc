#include "gateway/mailbox.h"

#include <libxml/tree.h>

#include <algorithm>
#include <functional>
#include <utility>

#include "base/digest.h"
#include "base/xml_handles.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/genasync.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/soap.h"
#include "codecs/xades.h"
#include "codecs/xml_parser.h"
#include "codecs/xml_util.h"

namespace psl::gateway {
namespace {

bool IsInsurerCode(std::string_view key) {
  return key.size() == 3 &&
         std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsNihii11(std::string_view nihii) {
  return nihii.size() == 11 &&
         std::all_of(nihii.begin(), nihii.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// What the store may be given as a message id: the item's InputReference when it could be one.
std::string ClaimedMessageId(std::string_view reference) {
  if (reference.empty() || reference.size() > 128 ||
      !std::all_of(reference.begin(), reference.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '-' || c == '_' || c == '.';
      })) {
    return "";
  }
  return std::string(reference);
}

// The first genasync Detail element under `n` (depth first).
const xmlNode* FindDetail(const xmlNode* n) {
  for (; n != nullptr; n = n->next) {
    if (n->type != XML_ELEMENT_NODE) {
      continue;
    }
    if (codecs::IsElement(n, codecs::kGenAsyncNs, "Detail")) {
      return n;
    }
    if (const xmlNode* found = FindDetail(n->children)) {
      return found;
    }
  }
  return nullptr;
}

// The eFact file reference (segment 200 zone 204, 14 digits) of a stored genasync post payload
// (the envelope as stored: its Detail decoded, inflated when deflate). Errors name no value.
StatusOr<std::string> StoredFileReference(std::string_view payload) {
  codecs::XmlLimits limits;
  limits.max_bytes = std::max(limits.max_bytes, payload.size() + 1);
  StatusOr<XmlDocPtr> doc = codecs::ParseUntrustedXmlNamed(payload, limits, "the stored payload");
  if (!doc.ok()) {
    return doc.status();
  }
  const xmlNode* detail = FindDetail(xmlDocGetRootElement(doc->get()));
  if (detail == nullptr) {
    return Status::Invalid("the stored payload has no genasync Detail");
  }
  std::string text;
  for (char c : codecs::Content(detail)) {
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
      text.push_back(c);
    }
  }
  StatusOr<std::string> blob = codecs::DecodeBase64Of(text, "the stored Detail");
  if (!blob.ok()) {
    return blob.status();
  }
  std::string file = std::move(blob).value();
  if (codecs::Attr(detail, "ContentEncoding") == "deflate") {
    StatusOr<std::string> inflated = codecs::InflateRaw(file, 64 * 1024 * 1024);
    if (!inflated.ok()) {
      return inflated.status();
    }
    file = std::move(inflated).value();
  }
  if (file.size() < 34) {
    return Status::Invalid("the stored eFact file has no segment 200");
  }
  return file.substr(20, 14);  // segment 200 zone 204 (as ParseEfactReturn reads the return's)
}

// The TAck as an element of its own (ParseGetResponse keeps only its fields).
std::string SerialiseTAck(const codecs::TAck& t) {
  XmlDocPtr doc(xmlNewDoc(codecs::ToXmlChar("1.0")));
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr, codecs::ToXmlChar("TAck"), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  xmlNs* ns = xmlNewNs(root, codecs::ToXmlChar(codecs::kGenAsyncNs), codecs::ToXmlChar("gen"));
  xmlSetNs(root, ns);
  const std::pair<const char*, const std::string*> attrs[] = {{"Issuer", &t.issuer},
                                                              {"AppliesTo", &t.applies_to},
                                                              {"ResultMajor", &t.result_major},
                                                              {"ResultMinor", &t.result_minor},
                                                              {"ResultMessage", &t.result_message},
                                                              {"Id", &t.id},
                                                              {"Reference", &t.reference}};
  for (const auto& [name, value] : attrs) {
    if (!value->empty() || std::string_view(name) == "Issuer" ||
        std::string_view(name) == "AppliesTo" || std::string_view(name) == "ResultMajor") {
      codecs::SetAttribute(root, name, *value);
    }
  }
  if (!t.content.empty()) {
    xmlNodeAddContent(root, codecs::ToXmlChar(t.content));
  }
  StatusOr<std::string> out = codecs::SerialiseXml(doc.get());
  return out.ok() ? *out : std::string("<TAck/>");
}

}  // namespace

StatusOr<ParsedAnswer> ParsePostAnswer(const store::Lease& lease, std::string_view body_xml,
                                       const codecs::SchemaRegistry& schemas) {
  StatusOr<codecs::TAck> tack = codecs::ParsePostResponse(body_xml, schemas);
  if (!tack.ok()) {
    return Status::Invalid("not a genasync postResponse: " + tack.status().message());
  }
  if (tack->applies_to != codecs::TAckAppliesTo(lease.message_id)) {
    return Status::Invalid("the TAck applies to another request");
  }
  ParsedAnswer parsed;
  parsed.insurer_reference = tack->reference;
  if (tack->success()) {
    parsed.decision = "received";
  } else {
    parsed.decision = "refused";
    parsed.codes.push_back(!tack->result_minor.empty() ? tack->result_minor : tack->result_major);
  }
  return parsed;
}

Mailbox::Mailbox(MailboxDeps deps) : deps_(std::move(deps)) {
  const Config& config = *deps_.config;
  for (const auto& [nihii, practice] : config.practices) {
    if (IsNihii11(nihii)) {
      practices_.push_back(nihii);
    } else {
      // Once, at construction (the gateway's start). A NIHII is not patient data.
      Log(LogLevel::kWarn,
          "practice's mailbox is never polled: its NIHII is not 11 digits (the get's Origin "
          "needs the 11-digit NIHII)",
          "", nihii, "");
    }
  }
  for (const auto& [key, insurer] : config.insurers) {
    Lane lane;
    lane.insurer = key;
    for (MessageKind kind : {MessageKind::kClaim, MessageKind::kAmu}) {
      auto endpoint = insurer.endpoints.find(kind);
      if (endpoint == insurer.endpoints.end()) {
        continue;
      }
      const std::string name(kind == MessageKind::kClaim ? codecs::kHcpfacMessageName
                                                         : codecs::kMediPrimaMessageName);
      // One get per message name, even on one URL: MediPrima (ECM-HCPFAC) items are confirmed
      // differently (DOMAIN.md §4.3 "by references"), so they are never mixed with HCPFAC.
      lane.targets.push_back({endpoint->second, {name}});
    }
    if (!lane.targets.empty()) {
      lanes_.emplace(key, std::move(lane));
    }
  }
  if (deps_.metrics != nullptr) {
    gets_total_ = deps_.metrics->AddCounter("passerelle_mailbox_gets_total",
                                            "Generic Async mailbox gets by insurer and outcome",
                                            {"insurer", "outcome"});
    returns_total_ = deps_.metrics->AddCounter(
        "passerelle_mailbox_returns_total",
        "Mailbox items (eFact returns, TAcks) by insurer and outcome", {"insurer", "outcome"});
    confirms_total_ = deps_.metrics->AddCounter("passerelle_mailbox_confirms_total",
                                                "Mailbox confirm requests by insurer and outcome",
                                                {"insurer", "outcome"});
    unverified_gauge_ = deps_.metrics->AddGauge(
        "passerelle_mailbox_unverified_items",
        "Mailbox items failing verification in the latest get (left unconfirmed)", {"insurer"});
  }
}

Mailbox::~Mailbox() {
  Stop();
}

std::vector<std::string> Mailbox::insurers() const {
  std::vector<std::string> out;
  for (const auto& [key, lane] : lanes_) {
    out.push_back(key);
  }
  return out;
}

MailboxStats Mailbox::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  MailboxStats out = stats_;
  out.unverified_pending = 0;
  for (const auto& [key, n] : unverified_) {
    out.unverified_pending += n;
  }
  return out;
}

bool Mailbox::Stopping() {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

std::chrono::milliseconds Mailbox::BackoffDelay(std::uint32_t failures) const {
  const MailboxConfig& config = deps_.config->mailbox;
  std::chrono::milliseconds wait = config.poll_interval;
  for (std::uint32_t i = 1; i < failures && wait < config.max_backoff; ++i) {
    wait *= 2;
  }
  return std::min(wait, config.max_backoff);
}

void Mailbox::Start() {
  if (thread_.joinable() || !deps_.config->mailbox.enabled || lanes_.empty() ||
      practices_.empty()) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { Work(); });
}

void Mailbox::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void Mailbox::Work() {
  const MailboxConfig& config = deps_.config->mailbox;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto next = std::chrono::system_clock::time_point::max();
    for (auto& [key, lane] : lanes_) {
      {
        std::lock_guard<std::mutex> stop_lock(mu_);
        if (stopping_) {
          break;
        }
      }
      const auto now = deps_.clock->Now();
      if (now >= lane.next_poll) {
        const MailboxStats done = RunOnce(key);
        std::chrono::milliseconds wait = config.poll_interval;
        if (done.get_failures > done.practice_failures) {  // an insurer-level failure
          lane.failures = std::min<std::uint32_t>(lane.failures + 1, 30);
          wait = BackoffDelay(lane.failures);
        } else {
          lane.failures = 0;
        }
        lane.next_poll = deps_.clock->Now() + wait;
      }
      next = std::min(next, lane.next_poll);
    }
    lock.lock();
    if (stopping_) {
      break;
    }
    const auto now = deps_.clock->Now();
    const auto delay = next > now
                           ? std::chrono::duration_cast<std::chrono::milliseconds>(next - now)
                           : std::chrono::milliseconds(0);
    cv_.wait_for(lock, std::min<std::chrono::milliseconds>(delay, config.poll_interval),
                 [this] { return stopping_; });
  }
}

MailboxStats Mailbox::RunOnce(const std::string& insurer) {
  MailboxStats stats;
  auto lane = lanes_.find(insurer);
  if (lane == lanes_.end()) {
    return stats;
  }
  std::lock_guard<std::mutex> lock(run_mu_);
  for (const std::string& practice : practices_) {
    if (Stopping()) {
      break;
    }
    Backoff& backoff = practice_backoff_[insurer + "|" + practice];
    if (backoff.failures > 0 && deps_.clock->Now() < backoff.next_poll) {
      continue;  // this Origin is backing off (a fault / unusable answer for it)
    }
    bool insurer_failed = false;
    bool practice_failed = false;
    for (const Target& target : lane->second.targets) {
      if (Stopping()) {
        break;
      }
      const PollResult result = PollOne(lane->second, practice, target, &stats);
      if (result == PollResult::kInsurerFailed) {
        insurer_failed = true;
        break;  // the insurer is failing: the other targets wait for the back-off too
      }
      practice_failed = practice_failed || result == PollResult::kPracticeFailed;
    }
    if (insurer_failed) {
      break;  // and the other practices too
    }
    if (practice_failed) {
      backoff.failures = std::min<std::uint32_t>(backoff.failures + 1, 30);
      backoff.next_poll = deps_.clock->Now() + BackoffDelay(backoff.failures);
    } else {
      backoff = Backoff{};
    }
  }
  std::lock_guard<std::mutex> stats_lock(stats_mu_);
  stats_.unreadable += stats.unreadable;
  stats_.link_refused += stats.link_refused;
  stats_.tacks += stats.tacks;
  stats_.practice_failures += stats.practice_failures;
  stats_.gets += stats.gets;
  stats_.get_failures += stats.get_failures;
  stats_.recorded += stats.recorded;
  stats_.duplicates += stats.duplicates;
  stats_.orphans += stats.orphans;
  stats_.rejected += stats.rejected;
  stats_.record_failures += stats.record_failures;
  stats_.confirmed += stats.confirmed;
  stats_.confirm_failures += stats.confirm_failures;
  return stats;
}

void Mailbox::Count(const std::string& insurer, const char* family, const char* outcome,
                    std::uint64_t n) {
  CounterFamily* f = std::string_view(family) == "gets"      ? gets_total_
                     : std::string_view(family) == "returns" ? returns_total_
                                                             : confirms_total_;
  if (f != nullptr && n > 0) {
    f->WithLabels({insurer, outcome})->Inc(static_cast<double>(n));
  }
}

void Mailbox::Log(LogLevel level, std::string_view msg, const std::string& insurer,
                  const std::string& practice, const std::string& error,
                  const std::string& message_id) {
  if (deps_.logger == nullptr) {
    return;
  }
  LogFields fields;
  fields.kind = "mailbox";
  fields.insurer = insurer;
  fields.practice = practice;
  fields.message_id = message_id;
  fields.error = error;
  deps_.logger->Log(level, msg, fields);
}

// One SOAP exchange: signed request, 2xx answer, no Fault; the Body's payload.
StatusOr<std::string> Mailbox::Call(const std::string& insurer, const std::string& url,
                                    std::string_view action, const std::string& body,
                                    bool* insurer_level) {
  bool dummy = false;
  bool& level = insurer_level != nullptr ? *insurer_level : dummy;
  level = false;
  StatusOr<HttpsUrl> parsed_url = ParseHttpsUrl(url);
  if (!parsed_url.ok()) {
    return Status::Invalid("insurer endpoint is not usable: " + parsed_url.status().message());
  }
  codecs::SoapSecurityOptions options;
  options.ttl = deps_.soap_ttl;
  StatusOr<std::string> envelope =
      codecs::BuildSoapRequest(body, options, *deps_.identity, *deps_.clock);
  if (!envelope.ok()) {
    return Status::Unavailable("cannot build the SOAP envelope: " + envelope.status().message());
  }
  const std::string to = std::string(codecs::kGenAsyncDestinationPrefix) +
                         (IsInsurerCode(insurer) ? insurer : std::string("MULTICAST"));
  StatusOr<std::string> addressed = AddWsAddressing(*envelope, action, to, "");
  if (!addressed.ok()) {
    return addressed.status();
  }
  const HttpHeaders headers = {
      {"content-type", codecs::kSoap11ContentType},
      {"soapaction", "\"" + std::string(action) + "\""},
  };
  const HttpsResult result = deps_.sender->Send(insurer, *parsed_url, headers, *addressed);
  if (result.error != TransportError::kNone) {
    level = true;
    return Status::Unavailable(std::string("transport: ") + TransportErrorName(result.error) +
                               ": " + SanitiseForeign(result.error_detail));
  }
  const std::string status_text = "HTTP " + std::to_string(result.response.status);
  StatusOr<codecs::SoapResponse> soap = codecs::ParseSoapResponse(result.response.body);
  if (soap.ok() && soap->fault) {
    return Status::Unavailable(status_text + " SOAP fault " + SanitiseForeign(soap->fault->code) +
                               ": " + SanitiseForeign(soap->fault->message));
  }
  if (result.response.status < 200 || result.response.status >= 300) {
    level = true;
    return Status::Unavailable("insurer answered " + status_text);
  }
  if (!soap.ok()) {
    return Status::Invalid("insurer answer is not a SOAP envelope: " + soap.status().message());
  }
  return std::move(soap->body_xml);
}

Mailbox::PollResult Mailbox::PollOne(const Lane& lane, const std::string& practice,
                                     const Target& target, MailboxStats* stats) {
  const std::string& insurer = lane.insurer;
  codecs::GetRequest get;
  get.origin_nihii = practice;
  get.message_names = target.message_names;
  get.max_messages = deps_.config->mailbox.max_messages;
  get.max_tacks = deps_.config->mailbox.max_messages;
  get.include_tacks = true;
  StatusOr<std::string> get_body = codecs::BuildGetRequest(get, *deps_.clock);
  if (!get_body.ok()) {
    Log(LogLevel::kError, "mailbox get cannot be built", insurer, practice,
        get_body.status().message());
    ++stats->get_failures;
    ++stats->practice_failures;
    Count(insurer, "gets", "failed");
    return PollResult::kPracticeFailed;
  }
  ++stats->gets;
  bool insurer_level = false;
  StatusOr<std::string> answer =
      Call(insurer, target.url, codecs::kGenAsyncGetAction, *get_body, &insurer_level);
  X509_STORE* trust = deps_.trust ? deps_.trust(insurer) : nullptr;
  StatusOr<codecs::GetResponse> response =
      answer.ok() ? (trust != nullptr
                         ? codecs::ParseGetResponse(*answer, *deps_.schemas, trust, *deps_.clock)
                         : StatusOr<codecs::GetResponse>(
                               Status::FailedPrecondition("no trust store for the insurer")))
                  : StatusOr<codecs::GetResponse>(answer.status());
  if (!response.ok()) {
    ++stats->get_failures;
    if (!insurer_level) {
      ++stats->practice_failures;
    }
    Count(insurer, "gets", "failed");
    Log(LogLevel::kWarn,
        insurer_level ? "mailbox get failed (the insurer backs off)"
                      : "mailbox get failed (this practice backs off)",
        insurer, practice, SanitiseForeign(response.status().message()));
    return insurer_level ? PollResult::kInsurerFailed : PollResult::kPracticeFailed;
  }
  Count(insurer, "gets", "ok");

  for (const std::string& reason : response->rejected) {
    ++stats->rejected;
    Count(insurer, "returns", "rejected");
    Log(LogLevel::kWarn, "mailbox item rejected (not confirmed)", insurer, practice,
        SanitiseForeign(reason));
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    unverified_[insurer + "|" + practice + "|" + target.url] = response->rejected.size();
    if (unverified_gauge_ != nullptr) {
      std::uint64_t sum = 0;
      for (const auto& [key, n] : unverified_) {
        if (key.compare(0, insurer.size() + 1, insurer + "|") == 0) {
          sum += n;
        }
      }
      unverified_gauge_->WithLabels({insurer})->Set(static_cast<double>(sum));
    }
  }

  codecs::ConfirmRequest confirm;
  confirm.origin_nihii = practice;
  // Records one item; true when it is durably recorded (now or before): it may be confirmed.
  // `outcome_label` is the metric outcome of a new record that is not linked.
  auto record = [&](store::NewReturn item, const std::string& claimed, const char* unlinked_label) {
    bool linked = false;
    if (!claimed.empty()) {
      StatusOr<store::MessageRecord> message = deps_.queue->Get(claimed);
      linked = message.ok() && message->practice_nihii == practice &&
               std::any_of(message->deliveries.begin(), message->deliveries.end(),
                           [&](const store::Delivery& d) { return d.destination == insurer; });
    }
    item.destination = insurer;
    item.message_id = claimed;
    item.practice_nihii = practice;
    StatusOr<store::ReturnOutcome> outcome = deps_.queue->RecordReturn(std::move(item));
    if (!outcome.ok()) {
      ++stats->record_failures;
      Count(insurer, "returns", "failed");
      Log(LogLevel::kWarn, "mailbox item not recorded (not confirmed)", insurer, practice,
          outcome.status().message(), linked ? claimed : "");
      return false;
    }
    if (*outcome == store::ReturnOutcome::kDuplicate) {
      ++stats->duplicates;
      Count(insurer, "returns", "duplicate");
      return true;
    }
    ++stats->recorded;
    Count(insurer, "returns", linked ? "recorded" : unlinked_label);
    if (!linked) {
      ++stats->orphans;
      if (std::string_view(unlinked_label) == "orphan") {
        Log(LogLevel::kWarn, "mailbox return kept as an orphan", insurer, practice,
            "no message of this practice sent to this insurer has this InputReference");
      }
    } else {
      Log(LogLevel::kInfo, "mailbox return recorded", insurer, practice, "", claimed);
    }
    return true;
  };

  for (const codecs::MailboxMessage& m : response->messages) {
    store::NewReturn item;
    // Stable across re-serving with other compression: the inflated bytes, not HashValue.
    item.mailbox_key = Sha256Hex(m.content + "|" + m.input_reference);
    item.answer.document = m.document;
    item.answer.insurer_reference =
        !m.output_reference.empty() ? m.output_reference : m.nip_reference;
    std::string claimed = ClaimedMessageId(m.input_reference);
    StatusOr<codecs::EfactReturn> parsed = codecs::ParseEfactReturn(m.content);
    if (!parsed.ok()) {
      // Signed by the insurer but unreadable: kept (as an orphan: the link cannot be checked)
      // for ops to look at, and confirmed so it does not starve the items behind it.
      ++stats->unreadable;
      Log(LogLevel::kWarn, "mailbox return file unreadable (recorded as an orphan, confirmed)",
          insurer, practice, SanitiseForeign(parsed.status().message()));
      item.answer.decision = "unreadable";
      if (record(std::move(item), "", "unreadable")) {
        confirm.msg_hash_values.push_back(m.hash_value);
      }
      continue;
    }
    item.answer.decision = std::string(codecs::EfactReturnDecision(parsed->kind));
    for (const codecs::EfactReturnError& e : parsed->errors) {
      if (std::find(item.answer.codes.begin(), item.answer.codes.end(), e.code) ==
          item.answer.codes.end()) {
        item.answer.codes.push_back(e.code);
      }
    }
    if (!claimed.empty()) {
      // The InputReference is unsigned: link only when the signed return names the file that
      // message carried.
      std::string refused;
      StatusOr<std::string> payload = deps_.queue->Payload(claimed);
      if (!payload.ok()) {
        if (payload.status().code() == StatusCode::kNotFound) {
          StatusOr<store::MessageRecord> exists = deps_.queue->Get(claimed);
          if (exists.ok()) {
            refused =
                "the message's payload was purged: the return's file reference cannot be "
                "checked";
          }  // else an unknown message: the store keeps it as an orphan anyway
        } else {
          refused = "the message's payload cannot be read: " + payload.status().message();
        }
      } else {
        StatusOr<std::string> reference = StoredFileReference(*payload);
        if (!reference.ok()) {
          refused =
              "the message's eFact file reference cannot be read: " + reference.status().message();
        } else if (*reference != parsed->original_reference) {
          refused =
              "the signed return names another eFact file than the message's (segment 200 "
              "zone 204)";
        }
      }
      if (!refused.empty()) {
        ++stats->link_refused;
        Log(LogLevel::kWarn, "mailbox return not linked (kept as an orphan)", insurer, practice,
            refused, claimed);
        claimed.clear();
      }
    }
    if (record(std::move(item), claimed, "orphan")) {
      confirm.msg_hash_values.push_back(m.hash_value);
    }
  }
  for (const codecs::MailboxTAck& t : response->tacks) {
    store::NewReturn item;
    // A digest of what the TAck says (not its @Id, which an insurer may mint per get).
    item.mailbox_key =
        "tack:" + Sha256Hex(t.tack.applies_to + "\n" + t.tack.result_major + "\n" +
                            t.tack.result_minor + "\n" + t.tack.reference + "\n" + t.content);
    item.answer.document = SerialiseTAck(t.tack);
    item.answer.decision = t.tack.success() ? "received" : "refused";
    if (!t.tack.success()) {
      item.answer.codes.push_back(!t.tack.result_minor.empty() ? t.tack.result_minor
                                                               : t.tack.result_major);
    }
    item.answer.insurer_reference = t.tack.reference;
    // Informational only (its attributes are not signed): never linked, never a decision.
    const std::uint64_t before = stats->recorded;
    if (record(std::move(item), "", "tack") && !t.content.empty()) {
      confirm.tack_contents.push_back(t.content);
    }
    if (stats->recorded > before) {
      ++stats->tacks;
      --stats->orphans;  // not an unmatched return
    }
  }

  if (confirm.msg_hash_values.empty() && confirm.tack_contents.empty()) {
    return PollResult::kOk;
  }
  if (Stopping()) {
    // Recorded: the items come back after the restart and are confirmed then (duplicates).
    return PollResult::kOk;
  }
  const std::size_t items = confirm.msg_hash_values.size() + confirm.tack_contents.size();
  StatusOr<std::string> confirm_body = codecs::BuildConfirmRequest(confirm, *deps_.clock);
  Status confirmed = confirm_body.status();
  if (confirm_body.ok()) {
    StatusOr<std::string> reply =
        Call(insurer, target.url, codecs::kGenAsyncConfirmAction, *confirm_body);
    confirmed = reply.ok() ? codecs::ParseConfirmResponse(*reply, *deps_.schemas) : reply.status();
  }
  if (!confirmed.ok()) {
    // Recorded all the same: the items come back on the next get and are confirmed then.
    ++stats->confirm_failures;
    Count(insurer, "confirms", "failed");
    Log(LogLevel::kWarn, "mailbox confirm failed", insurer, practice,
        SanitiseForeign(confirmed.message()));
    return PollResult::kOk;
  }
  stats->confirmed += items;
  Count(insurer, "confirms", "ok");
  return PollResult::kOk;
}

}  // namespace psl::gateway
