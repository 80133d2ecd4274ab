#include "gateway/mailbox.h"

#include <algorithm>
#include <utility>

#include "base/digest.h"
#include "codecs/genasync.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/soap.h"

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
      auto same = std::find_if(lane.targets.begin(), lane.targets.end(),
                               [&](const Target& t) { return t.url == endpoint->second; });
      if (same != lane.targets.end()) {
        same->message_names.push_back(name);
      } else {
        lane.targets.push_back({endpoint->second, {name}});
      }
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
  return stats_;
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
        if (done.get_failures > 0) {
          lane.failures = std::min<std::uint32_t>(lane.failures + 1, 30);
          for (std::uint32_t i = 1; i < lane.failures && wait < config.max_backoff; ++i) {
            wait *= 2;
          }
          wait = std::min(wait, config.max_backoff);
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
    for (const Target& target : lane->second.targets) {
      if (!PollOne(lane->second, practice, target, &stats)) {
        break;  // the insurer is failing: the other targets wait for the back-off too
      }
    }
    if (stats.get_failures > 0) {
      break;
    }
  }
  std::lock_guard<std::mutex> stats_lock(stats_mu_);
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
                                    std::string_view action, const std::string& body) {
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
    return Status::Unavailable("insurer answered " + status_text);
  }
  if (!soap.ok()) {
    return Status::Invalid("insurer answer is not a SOAP envelope: " + soap.status().message());
  }
  return std::move(soap->body_xml);
}

bool Mailbox::PollOne(const Lane& lane, const std::string& practice, const Target& target,
                      MailboxStats* stats) {
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
    Count(insurer, "gets", "failed");
    return false;
  }
  ++stats->gets;
  StatusOr<std::string> answer = Call(insurer, target.url, codecs::kGenAsyncGetAction, *get_body);
  X509_STORE* trust = deps_.trust ? deps_.trust(insurer) : nullptr;
  StatusOr<codecs::GetResponse> response =
      answer.ok() ? (trust != nullptr
                         ? codecs::ParseGetResponse(*answer, *deps_.schemas, trust, *deps_.clock)
                         : StatusOr<codecs::GetResponse>(
                               Status::FailedPrecondition("no trust store for the insurer")))
                  : StatusOr<codecs::GetResponse>(answer.status());
  if (!response.ok()) {
    ++stats->get_failures;
    Count(insurer, "gets", "failed");
    Log(LogLevel::kWarn, "mailbox get failed", insurer, practice,
        SanitiseForeign(response.status().message()));
    return false;
  }
  Count(insurer, "gets", "ok");

  for (const std::string& reason : response->rejected) {
    ++stats->rejected;
    Count(insurer, "returns", "rejected");
    Log(LogLevel::kWarn, "mailbox item rejected (not confirmed)", insurer, practice,
        SanitiseForeign(reason));
  }

  codecs::ConfirmRequest confirm;
  confirm.origin_nihii = practice;
  // Records one item; true when it is durably recorded (now or before): it may be confirmed.
  auto record = [&](store::NewReturn item, const std::string& claimed) {
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
    Count(insurer, "returns", linked ? "recorded" : "orphan");
    if (!linked) {
      ++stats->orphans;
      Log(LogLevel::kWarn, "mailbox return kept as an orphan", insurer, practice,
          "no message of this practice sent to this insurer has this InputReference");
    } else {
      Log(LogLevel::kInfo, "mailbox return recorded", insurer, practice, "", claimed);
    }
    return true;
  };

  for (const codecs::MailboxMessage& m : response->messages) {
    StatusOr<codecs::EfactReturn> parsed = codecs::ParseEfactReturn(m.content);
    if (!parsed.ok()) {
      // Signed by the insurer but unreadable: kept in the mailbox for ops to look at.
      ++stats->rejected;
      Count(insurer, "returns", "rejected");
      Log(LogLevel::kWarn, "mailbox return file unreadable (not confirmed)", insurer, practice,
          SanitiseForeign(parsed.status().message()));
      continue;
    }
    store::NewReturn item;
    item.mailbox_key = m.hash_value;
    item.answer.document = m.document;
    item.answer.decision = std::string(codecs::EfactReturnDecision(parsed->kind));
    for (const codecs::EfactReturnError& e : parsed->errors) {
      if (std::find(item.answer.codes.begin(), item.answer.codes.end(), e.code) ==
          item.answer.codes.end()) {
        item.answer.codes.push_back(e.code);
      }
    }
    item.answer.insurer_reference =
        !m.output_reference.empty() ? m.output_reference : m.nip_reference;
    if (record(std::move(item), ClaimedMessageId(m.input_reference))) {
      confirm.msg_hash_values.push_back(m.hash_value);
    }
  }
  for (const codecs::MailboxTAck& t : response->tacks) {
    store::NewReturn item;
    // A digest of what the TAck says (not its @Id, which an insurer may mint per get).
    item.mailbox_key =
        "tack:" + Sha256Hex(t.tack.applies_to + "\n" + t.tack.result_major + "\n" +
                            t.tack.result_minor + "\n" + t.tack.reference + "\n" + t.content);
    item.answer.document = "<TAck/>";  // the TAck has no document of its own worth keeping
    item.answer.decision = t.tack.success() ? "received" : "refused";
    if (!t.tack.success()) {
      item.answer.codes.push_back(!t.tack.result_minor.empty() ? t.tack.result_minor
                                                               : t.tack.result_major);
    }
    item.answer.insurer_reference = t.tack.reference;
    std::string_view applies_to = t.tack.applies_to;
    std::string claimed;
    if (applies_to.substr(0, codecs::kTAckAppliesToPrefix.size()) == codecs::kTAckAppliesToPrefix) {
      claimed = ClaimedMessageId(applies_to.substr(codecs::kTAckAppliesToPrefix.size()));
    }
    if (record(std::move(item), claimed) && !t.content.empty()) {
      confirm.tack_contents.push_back(t.content);
    }
  }

  if (confirm.msg_hash_values.empty() && confirm.tack_contents.empty()) {
    return true;
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
    return true;
  }
  stats->confirmed += items;
  Count(insurer, "confirms", "ok");
  return true;
}

}  // namespace psl::gateway
