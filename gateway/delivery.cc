#include "gateway/delivery.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <utility>

#include "codecs/eattest.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/mediprima.h"
#include "codecs/mhm_rules.h"
#include "codecs/soap.h"

namespace psl::gateway {
namespace {

using std::chrono::milliseconds;

std::optional<MessageKind> KindOf(std::string_view flow_kind) {
  for (MessageKind kind : {MessageKind::kEnrolment, MessageKind::kClaim, MessageKind::kAmu}) {
    if (flow_kind == MessageKindName(kind)) {
      return kind;
    }
  }
  return std::nullopt;
}

bool IsGenAsyncFlow(std::string_view flow_kind, std::string_view operation) {
  return (flow_kind == MessageKindName(MessageKind::kClaim) ||
          flow_kind == MessageKindName(MessageKind::kAmu)) &&
         operation == "post";
}

// The eAttest operation of a stored claim (EAttestOperationName values), or nullopt.
std::optional<codecs::EAttestOperation> EAttestOperationOf(std::string_view flow_kind,
                                                           std::string_view operation) {
  if (flow_kind != MessageKindName(MessageKind::kClaim)) {
    return std::nullopt;
  }
  for (codecs::EAttestOperation op :
       {codecs::EAttestOperation::kSend, codecs::EAttestOperation::kCancel}) {
    if (operation == codecs::EAttestOperationName(op)) {
      return op;
    }
  }
  return std::nullopt;
}

// The MediPrima operation of a stored AMU request (MediPrimaOperationName values), or nullopt
// (the AMU eFact post is "post").
std::optional<codecs::MediPrimaOperation> MediPrimaOperationOf(std::string_view flow_kind,
                                                               std::string_view operation) {
  if (flow_kind != MessageKindName(MessageKind::kAmu)) {
    return std::nullopt;
  }
  return codecs::MediPrimaOperationNamed(operation);
}

// Which of the insurer's endpoints a stored message goes to.
Service ServiceOf(std::string_view flow_kind, std::string_view operation) {
  if (EAttestOperationOf(flow_kind, operation)) {
    return Service::kEAttest;
  }
  if (auto op = MediPrimaOperationOf(flow_kind, operation)) {
    return codecs::MediPrimaServiceOf(*op) == codecs::MediPrimaService::kUma
               ? Service::kMediPrimaUma
               : Service::kMediPrimaConsult;
  }
  return Service::kDefault;
}

// The SOAPAction of a stored operation name (MhmOperationName, EAttestOperationName,
// MediPrimaOperationName values; "post" for genasync).
std::optional<std::string> SoapActionFor(std::string_view flow_kind, std::string_view operation) {
  if (IsGenAsyncFlow(flow_kind, operation)) {
    return std::string(codecs::kGenAsyncPostAction);
  }
  if (auto op = EAttestOperationOf(flow_kind, operation)) {
    return std::string(codecs::EAttestSoapAction(*op));
  }
  if (auto op = MediPrimaOperationOf(flow_kind, operation)) {
    return std::string(codecs::MediPrimaSoapAction(*op));
  }
  if (flow_kind == MessageKindName(MessageKind::kEnrolment)) {
    for (codecs::MhmOperation op :
         {codecs::MhmOperation::kSubscription, codecs::MhmOperation::kCancellation,
          codecs::MhmOperation::kClosure}) {
      if (operation == codecs::MhmOperationName(op)) {
        return std::string(codecs::MhmSoapAction(op));
      }
    }
  }
  return std::nullopt;
}

// 408 (the insurer timed the request out), 429 and 5xx may pass; other statuses will not.
bool IsRetryableStatus(int status) {
  return status == 408 || status == 429 || status >= 500;
}

// Runs `parse`, the flow's answer parser, on the answer to `lease` (a request for operation `op`
// of `flow`, e.g. "MediPrima"), checks that the answer is the one to this request (the same
// operation; its `reference` field is "_" + message id) and keeps what delivery records.
template <typename Operation, typename Answer, typename Parse>
StatusOr<ParsedAnswer> ParseLeaseAnswer(const store::Lease& lease, Operation op,
                                        std::string_view flow, std::string Answer::*reference,
                                        Parse parse) {
  StatusOr<Answer> answer = parse();
  if (!answer.ok()) {
    return answer.status();
  }
  if (answer->operation != op) {
    return Status::Invalid("the answer is for another " + std::string(flow) + " operation");
  }
  if ((*answer).*reference != "_" + lease.message_id) {
    return Status::Invalid("the answer refers to another request");
  }
  ParsedAnswer parsed;
  parsed.decision = answer->decision;
  parsed.codes = answer->codes;
  parsed.insurer_reference = answer->insurer_reference;
  return parsed;
}

}  // namespace

bool IsMediPrimaMessage(std::string_view flow_kind, std::string_view operation) {
  return MediPrimaOperationOf(flow_kind, operation).has_value();
}

bool IsEAttestMessage(std::string_view flow_kind, std::string_view operation) {
  return EAttestOperationOf(flow_kind, operation).has_value();
}

StatusOr<ParsedAnswer> ParseMediPrimaAnswer(const store::Lease& lease, std::string_view body_xml,
                                            const codecs::SchemaRegistry& schemas) {
  const std::optional<codecs::MediPrimaOperation> op =
      MediPrimaOperationOf(lease.flow_kind, lease.operation);
  if (!op) {
    return Status::Invalid("not a MediPrima message");
  }
  return ParseLeaseAnswer(lease, *op, "MediPrima", &codecs::MediPrimaAnswer::in_response_to,
                          [&] { return codecs::ParseMediPrimaResponse(body_xml, schemas); });
}

StatusOr<ParsedAnswer> ParseEAttestAnswer(const store::Lease& lease, std::string_view body_xml,
                                          const codecs::SchemaRegistry& schemas,
                                          const SigningIdentity& ours, X509_STORE* insurer_trust,
                                          const Clock& clock) {
  const std::optional<codecs::EAttestOperation> op =
      EAttestOperationOf(lease.flow_kind, lease.operation);
  if (!op) {
    return Status::Invalid("not an eAttest message");
  }
  if (insurer_trust == nullptr) {
    return Status::Invalid("no trust store for insurer " + lease.destination);
  }
  return ParseLeaseAnswer(lease, *op, "eAttest", &codecs::EAttestAnswer::input_reference, [&] {
    return codecs::ParseAttestationResponse(body_xml, schemas, ours, insurer_trust, clock);
  });
}

// Text that came from the insurer or the network (a faultstring, a transport detail) before it is
// stored as a reason and shown to the practice and ops: foreign text may quote a patient's NISS or
// name, so runs of 6 or more digits are masked, control characters dropped and the length capped.
std::string SanitiseForeign(std::string_view foreign) {
  constexpr std::size_t kMaxLength = 200;
  std::string out;
  std::size_t i = 0;
  while (i < foreign.size() && out.size() < kMaxLength) {
    std::size_t j = i;
    while (j < foreign.size() && foreign[j] >= '0' && foreign[j] <= '9') {
      ++j;
    }
    if (j - i >= 6) {
      out += "[number]";
      i = j;
      continue;
    }
    if (j > i) {
      out.append(foreign.substr(i, j - i));
      i = j;
      continue;
    }
    const unsigned char c = static_cast<unsigned char>(foreign[i++]);
    if (c >= 0x20 && c != 0x7f) {
      out.push_back(static_cast<char>(c));
    }
  }
  if (i < foreign.size()) {
    out += "...";
  }
  return out;
}

StatusOr<std::string> AddWsAddressing(std::string_view envelope, std::string_view action,
                                      std::string_view to, std::string_view message_id) {
  static constexpr std::string_view kHeaderEnd = "</soapenv:Header>";
  const std::size_t at = envelope.find(kHeaderEnd);
  if (at == std::string_view::npos) {
    return Status::Invalid("the envelope has no soapenv:Header");
  }
  auto element = [](std::string_view name, std::string_view value) {
    std::string out =
        "<wsa:" + std::string(name) + " xmlns:wsa=\"" + std::string(kWsAddressingNs) + "\">";
    for (char c : value) {  // URIs of ours; escaped all the same
      if (c == '<') {
        out += "&lt;";
      } else if (c == '&') {
        out += "&amp;";
      } else {
        out.push_back(c);
      }
    }
    return out + "</wsa:" + std::string(name) + ">";
  };
  std::string out(envelope.substr(0, at));
  out += element("Action", action);
  out += element("To", to);
  if (!message_id.empty()) {
    out += element("MessageID", message_id);
  }
  out.append(envelope.substr(at));
  return out;
}

// ---------------------------------------------------------------------------------------------

HttpsSender::HttpsSender(const Config& config) : config_(config) {}

HttpsResult HttpsSender::Send(const std::string& insurer, const HttpsUrl& url,
                              const HttpHeaders& headers, std::string_view body) {
  const auto key = std::make_pair(insurer, std::this_thread::get_id());
  HttpsClient* client = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(key);
    if (it != clients_.end()) {
      client = it->second.get();
    }
  }
  if (client == nullptr) {
    // Built outside the lock (it reads key files): other lanes keep sending meanwhile. Only this
    // thread creates the client for this key, so there is no race to insert it.
    auto config = config_.insurers.find(insurer);
    if (config == config_.insurers.end()) {
      HttpsResult result;
      result.error = TransportError::kConnect;
      result.error_detail = "no configuration for insurer " + insurer;
      return result;
    }
    HttpsClientOptions options;
    options.ca_file = config->second.ca_file;
    options.client_cert_file = config->second.client.cert_file;
    options.client_key_file = config->second.client.key_file;
    options.client_chain_file = config->second.client.chain_file;
    options.client_key_password_file = config->second.client.password_file;
    options.connect_timeout = config->second.connect_timeout;
    options.request_timeout = config->second.request_timeout;
    StatusOr<std::unique_ptr<HttpsClient>> created = HttpsClient::Create(options);
    if (!created.ok()) {
      HttpsResult result;
      result.error = TransportError::kTls;
      result.error_detail = created.status().message();
      return result;
    }
    std::lock_guard<std::mutex> lock(mu_);
    client = clients_.emplace(key, std::move(created).value()).first->second.get();
  }
  // Only this thread ever uses this client.
  return client->Send(url, "POST", headers, body);
}

// ---------------------------------------------------------------------------------------------

Delivery::Delivery(const Config& config, store::DurableQueue* queue, const Clock* clock,
                   const SigningIdentity* identity, Sender* sender, AnswerParser parser,
                   AttemptObserver observer, DeliveryOptions options)
    : config_(config),
      queue_(queue),
      clock_(clock),
      identity_(identity),
      sender_(sender),
      parser_(std::move(parser)),
      observer_(std::move(observer)),
      options_(options),
      run_once_rng_(options.seed) {
  for (const auto& [key, insurer] : config_.insurers) {
    if (!ServesAnything(insurer)) {
      continue;
    }
    auto lane = std::make_unique<Lane>();
    lane->insurer = key;
    lane->config = &insurer;
    lanes_.emplace(key, std::move(lane));
  }
}

Delivery::~Delivery() {
  Stop();
}

void Delivery::Start() {
  if (started_) {
    return;
  }
  started_ = true;
  std::uint64_t seed = options_.seed != 0 ? options_.seed : std::random_device()();
  for (auto& [key, lane] : lanes_) {
    const std::uint32_t workers = std::max<std::uint32_t>(1, lane->config->max_in_flight);
    for (std::uint32_t i = 0; i < workers; ++i) {
      lane->threads.emplace_back([this, l = lane.get(), s = seed++] { Work(l, s); });
    }
  }
}

void Delivery::Stop() {
  if (!started_) {
    return;
  }
  stopping_ = true;
  for (auto& [key, lane] : lanes_) {
    {
      std::lock_guard<std::mutex> lock(lane->mu);
      ++lane->notifications;
    }
    lane->cv.notify_all();
  }
  for (auto& [key, lane] : lanes_) {
    for (std::thread& t : lane->threads) {
      t.join();
    }
    lane->threads.clear();
  }
  started_ = false;
}

void Delivery::Notify(const std::string& insurer) {
  auto it = lanes_.find(insurer);
  if (it == lanes_.end()) {
    return;
  }
  {
    std::lock_guard<std::mutex> lock(it->second->mu);
    ++it->second->notifications;
  }
  it->second->cv.notify_one();
}

bool Delivery::breaker_open(const std::string& insurer) const {
  auto it = lanes_.find(insurer);
  if (it == lanes_.end()) {
    return false;
  }
  std::lock_guard<std::mutex> lock(it->second->mu);
  const Breaker& b = it->second->breaker;
  return b.half_open || b.open_until > clock_->Now();
}

DeliveryStats Delivery::stats() const {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return stats_;
}

milliseconds Delivery::Backoff(const RetryPolicy& policy, std::uint32_t attempt,
                               milliseconds retry_after, std::mt19937_64& rng) {
  const std::uint32_t doublings = std::min<std::uint32_t>(attempt > 0 ? attempt - 1 : 0, 40);
  const long double ceiling = std::min<long double>(
      static_cast<long double>(policy.cap.count()),
      static_cast<long double>(policy.base.count()) * static_cast<long double>(1ull << doublings));
  std::uniform_int_distribution<std::int64_t> pick(0, static_cast<std::int64_t>(ceiling));
  return std::max(milliseconds(pick(rng)), retry_after);
}

milliseconds Delivery::ParseRetryAfter(std::string_view value,
                                       std::chrono::system_clock::time_point now) {
  while (!value.empty() && value.front() == ' ') {
    value.remove_prefix(1);
  }
  while (!value.empty() && value.back() == ' ') {
    value.remove_suffix(1);
  }
  if (value.empty()) {
    return milliseconds(0);
  }
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) {
      return milliseconds(0);  // absurd; the policy's back-off applies
    }
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
  std::tm tm{};
  char month[4] = {};
  char weekday[4] = {};
  const std::string text(value);
  if (std::sscanf(text.c_str(), "%3s, %2d %3s %4d %2d:%2d:%2d GMT", weekday, &tm.tm_mday, month,
                  &tm.tm_year, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 7) {
    return milliseconds(0);
  }
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  tm.tm_mon = -1;
  for (int i = 0; i < 12; ++i) {
    if (std::string_view(month) == kMonths[i]) {
      tm.tm_mon = i;
    }
  }
  if (tm.tm_mon < 0) {
    return milliseconds(0);
  }
  tm.tm_year -= 1900;
  const auto at = std::chrono::system_clock::from_time_t(timegm(&tm));
  if (at <= now) {
    return milliseconds(0);
  }
  return std::chrono::duration_cast<milliseconds>(at - now);
}

bool Delivery::MayLease(Lane* lane, bool* is_probe) {
  std::lock_guard<std::mutex> lock(lane->mu);
  Breaker& b = lane->breaker;
  *is_probe = false;
  if (b.open_until == std::chrono::system_clock::time_point{} && !b.half_open) {
    return true;  // closed
  }
  if (!b.half_open) {
    if (clock_->Now() < b.open_until) {
      return false;  // open
    }
    b.half_open = true;
    b.probes_ok = 0;
  }
  if (b.probe_in_flight) {
    return false;
  }
  b.probe_in_flight = true;
  *is_probe = true;
  return true;
}

void Delivery::RecordResult(Lane* lane, bool success, bool was_probe) {
  std::lock_guard<std::mutex> lock(lane->mu);
  Breaker& b = lane->breaker;
  const CircuitBreakerPolicy& policy = lane->config->breaker;
  if (was_probe) {
    b.probe_in_flight = false;
  }
  if (success) {
    b.consecutive_failures = 0;
    if (b.half_open && was_probe &&
        ++b.probes_ok >= std::max<std::uint32_t>(1, policy.half_open_probes)) {
      b.half_open = false;
      b.open_until = {};
    }
    return;
  }
  ++b.consecutive_failures;
  if (b.half_open ||
      (policy.failure_threshold > 0 && b.consecutive_failures >= policy.failure_threshold)) {
    b.half_open = false;
    b.open_until = clock_->Now() + policy.open;
  }
}

bool Delivery::RunOnce(const std::string& insurer) {
  auto it = lanes_.find(insurer);
  if (it == lanes_.end()) {
    return false;
  }
  std::lock_guard<std::mutex> lock(run_once_mu_);
  return RunOnce(it->second.get(), run_once_rng_);
}

bool Delivery::RunOnce(Lane* lane, std::mt19937_64& rng) {
  bool probe = false;
  if (!MayLease(lane, &probe)) {
    if (observer_) {
      observer_(lane->insurer, "", "breaker-open");
    }
    return false;
  }
  // Longer than one Send can take: resolve and connect+TLS (each up to connect_timeout) and the
  // request, twice when a kept-alive connection turns out dead; so no other worker leases the
  // entry while this one may still be sending it.
  const milliseconds lease_for =
      2 * (2 * lane->config->connect_timeout + lane->config->request_timeout) + milliseconds(5'000);
  StatusOr<std::optional<store::Lease>> lease =
      queue_->LeaseNext(lane->insurer, clock_->Now(), lease_for);
  if (!lease.ok() || !lease->has_value()) {
    if (probe) {
      std::lock_guard<std::mutex> lock(lane->mu);
      lane->breaker.probe_in_flight = false;  // nothing to probe with
    }
    return false;
  }
  bool insurer_failed = false;
  Deliver(lane, **lease, rng, &insurer_failed);
  RecordResult(lane, !insurer_failed, probe);
  return true;
}

void Delivery::Work(Lane* lane, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uint64_t seen = 0;
  while (!stopping_) {
    if (RunOnce(lane, rng)) {
      continue;  // more may be due
    }
    std::unique_lock<std::mutex> lock(lane->mu);
    lane->cv.wait_for(lock, options_.idle_poll,
                      [&] { return stopping_.load() || lane->notifications != seen; });
    seen = lane->notifications;
  }
}

Delivery::Outcome Delivery::Deliver(Lane* lane, const store::Lease& lease, std::mt19937_64& rng,
                                    bool* insurer_failed) {
  const RetryPolicy& retry = lane->config->retry;
  auto count = [&](Outcome outcome, std::string_view name) {
    {
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++stats_.attempts;
      if (outcome == Outcome::kAnswered) {
        ++stats_.answered;
      } else if (outcome == Outcome::kRetry) {
        ++stats_.retried;
      } else {
        ++stats_.dead_lettered;
      }
    }
    if (observer_) {
      observer_(lane->insurer, lease.message_id, name);
    }
    return outcome;
  };
  auto dead = [&](const std::string& reason) {
    Status s = queue_->DeadLetter(lease, reason);
    (void)s;  // on failure the lease expires and the entry comes back: nothing is lost
    return count(Outcome::kDead, "dead");
  };
  // A failure that may pass: back off, unless attempts or age are exhausted.
  auto retry_later = [&](const std::string& reason, milliseconds retry_after) {
    *insurer_failed = true;  // counts for the breaker even when the attempts are exhausted
    const auto now = clock_->Now();
    StatusOr<store::MessageRecord> record = queue_->Get(lease.message_id);
    const bool too_old = record.ok() && retry.max_age.count() > 0 &&
                         now - store::FromEpochMs(record->accepted_ms) > retry.max_age;
    if ((retry.max_attempts > 0 && lease.attempt >= retry.max_attempts) || too_old) {
      return dead(
          (too_old ? "too old to retry; last error: " : "attempts exhausted; last error: ") +
          reason);
    }
    // An insurer's Retry-After is honoured up to the policy's cap: one header must not park a
    // message for longer than the gateway would back off by itself.
    const milliseconds delay = Backoff(retry, lease.attempt, std::min(retry_after, retry.cap), rng);
    if (record.ok() && retry.max_age.count() > 0 &&
        now + delay - store::FromEpochMs(record->accepted_ms) > retry.max_age) {
      return dead("too old to retry; last error: " + reason);
    }
    Status s = queue_->Nack(lease, now + delay, reason);
    (void)s;  // as above
    return count(Outcome::kRetry, "retry");
  };

  const std::optional<MessageKind> kind = KindOf(lease.flow_kind);
  const std::optional<std::string> action = SoapActionFor(lease.flow_kind, lease.operation);
  if (!kind || !action) {
    return dead("no delivery profile for flow " + lease.flow_kind + " operation " +
                lease.operation);
  }
  const Service service = ServiceOf(lease.flow_kind, lease.operation);
  const std::string endpoint = InsurerUrl(*lane->config, *kind, service);
  if (endpoint.empty()) {
    return dead("insurer " + lane->insurer + " has no " + ServiceUrlKey(*kind, service));
  }
  StatusOr<HttpsUrl> url = ParseHttpsUrl(endpoint);
  if (!url.ok()) {
    return dead("insurer endpoint is not usable: " + url.status().message());
  }
  // eAttest numbers its attempts (urn:be:cin:nippin:attemptNbr, outside the sealed Detail): the
  // stored request says 1, each delivery attempt says its own number.
  std::string numbered;
  if (EAttestOperationOf(lease.flow_kind, lease.operation)) {
    StatusOr<std::string> with_attempt = codecs::SetAttemptNumber(
        lease.payload, static_cast<int>(std::max<std::uint32_t>(1, lease.attempt)));
    if (!with_attempt.ok()) {
      return dead("cannot number the attempt: " + with_attempt.status().message());
    }
    numbered = std::move(with_attempt).value();
  }
  codecs::SoapSecurityOptions soap_options;
  soap_options.ttl = options_.soap_ttl;
  StatusOr<std::string> envelope = codecs::BuildSoapRequest(
      numbered.empty() ? std::string_view(lease.payload) : std::string_view(numbered), soap_options,
      *identity_, *clock_);
  if (!envelope.ok()) {
    // The gateway's own key cannot sign (expired, ...): a failure of ours that may be fixed by
    // a key rotation, never the message's fault.
    Outcome o = retry_later("cannot build the SOAP envelope: " + envelope.status().message(),
                            milliseconds(0));
    *insurer_failed = false;  // our key, not the insurer
    return o;
  }
  if (IsGenAsyncFlow(lease.flow_kind, lease.operation)) {
    // Generic Async routes on the WS-Addressing To (DOMAIN.md §1.3): the batch's insurer code.
    std::string to = options_.genasync_destination ? options_.genasync_destination(lease) : "";
    if (to.empty()) {
      to = lease.destination;
    }
    StatusOr<std::string> addressed =
        AddWsAddressing(*envelope, *action, std::string(codecs::kGenAsyncDestinationPrefix) + to,
                        "urn:uuid:" + lease.message_id);
    if (!addressed.ok()) {
      return dead("cannot address the SOAP envelope: " + addressed.status().message());
    }
    envelope = std::move(addressed);
  }
  const HttpHeaders headers = {
      {"content-type", codecs::kSoap11ContentType},
      {"soapaction", "\"" + *action + "\""},
      {"x-passerelle-message-id", lease.message_id},
      {"x-passerelle-attempt", std::to_string(lease.attempt)},
  };
  const HttpsResult result = sender_->Send(lane->insurer, *url, headers, *envelope);
  if (result.error != TransportError::kNone) {
    return retry_later(std::string("transport: ") + TransportErrorName(result.error) + ": " +
                           SanitiseForeign(result.error_detail),
                       milliseconds(0));
  }
  const HttpResponse& response = result.response;
  const std::string status_text = "HTTP " + std::to_string(response.status);

  // SOAP 1.1 carries faults with HTTP 500: Client faults are final, Server faults may pass.
  StatusOr<codecs::SoapResponse> soap = codecs::ParseSoapResponse(response.body);
  if (soap.ok() && soap->fault) {
    const std::string reason = status_text + " SOAP fault " + SanitiseForeign(soap->fault->code) +
                               ": " + SanitiseForeign(soap->fault->message);
    if (soap->fault->code.rfind("Client", 0) == 0) {
      return dead("insurer refused the request: " + reason);
    }
    return retry_later(reason, milliseconds(0));
  }
  if (IsRetryableStatus(response.status)) {
    milliseconds retry_after(0);
    if (auto header = response.Header("retry-after")) {
      retry_after = ParseRetryAfter(*header, clock_->Now());
    }
    return retry_later(status_text, retry_after);
  }
  if (response.status < 200 || response.status >= 300) {
    return dead("insurer answered " + status_text);
  }
  if (!soap.ok()) {
    return dead("insurer answer is not a SOAP envelope: " + soap.status().message());
  }
  StatusOr<ParsedAnswer> parsed = parser_(lease, soap->body_xml);
  if (!parsed.ok()) {
    return dead("insurer answer refused: " + SanitiseForeign(parsed.status().message()));
  }
  store::NewAnswer answer;
  answer.document = soap->body_xml;
  answer.decision = parsed->decision;
  answer.codes = parsed->codes;
  answer.insurer_reference = parsed->insurer_reference;
  Status acked = queue_->Ack(lease, std::move(answer));
  if (!acked.ok()) {
    // Delivered but not recorded: the lease expires and the message is sent again under the
    // same id; the insurer answers the duplicate with its first answer.
    return count(Outcome::kRetry, "retry");
  }
  return count(Outcome::kAnswered, "answered");
}

}  // namespace psl::gateway
