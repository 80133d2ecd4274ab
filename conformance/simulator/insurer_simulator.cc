#include "conformance/simulator/insurer_simulator.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <utility>

#include "base/brussels_time.h"
#include "codecs/mhm_codec.h"
#include "codecs/mhm_response.h"
#include "codecs/mhm_rules.h"
#include "codecs/soap.h"
#include "codecs/xades.h"
#include "codecs/xml_parser.h"
#include "codecs/xml_util.h"

#include <nlohmann/json.hpp>

namespace psl::simulator {
namespace {

using codecs::MhmAnswerError;
using codecs::MhmOperation;
using gateway::HttpRequest;
using gateway::HttpResponse;
using std::chrono::system_clock;

constexpr char kPathTransaction[] = "/SendTransactionRequest/kmehrmessage/folder/transaction";
constexpr char kPathDecisionReference[] =
    "/SendTransactionRequest/kmehrmessage/folder/transaction/item[decisionreference]";
constexpr char kPathTransactionAuthor[] =
    "/SendTransactionRequest/kmehrmessage/folder/transaction/author";

// ---- small helpers -----------------------------------------------------------------------------

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// The first header named `name` (lowercase), or nullopt. Names are stored lowercase, but a
// caller building requests by hand may not know: compare case-insensitively.
std::optional<std::string> FindHeader(const HttpRequest& request, std::string_view name) {
  for (const auto& [key, value] : request.headers) {
    if (Lower(key) == name) {
      return value;
    }
  }
  return std::nullopt;
}

std::string_view PathOf(const HttpRequest& request) {
  std::string_view target = request.target;
  return target.substr(0, target.find('?'));
}

HttpResponse TextResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", "text/plain; charset=utf-8");
  r.body = std::move(body);
  return r;
}

HttpResponse JsonResponse(int status, const nlohmann::ordered_json& body) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", "application/json");
  r.body = body.dump() + "\n";
  return r;
}

HttpResponse SoapResponse(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.headers.emplace_back("content-type", codecs::kSoap11ContentType);
  r.body = std::move(body);
  return r;
}

// SOAP 1.1 over HTTP answers a Fault with status 500.
HttpResponse ClientFault(const std::string& reason) {
  codecs::SoapFault fault;
  fault.code = "Client";
  fault.message = reason;
  StatusOr<std::string> xml = codecs::BuildSoapFault(fault);
  if (!xml.ok()) {
    return TextResponse(500, "cannot build a SOAP Fault\n");
  }
  return SoapResponse(500, std::move(xml).value());
}

HttpResponse ServerFault(const std::string& reason) {
  codecs::SoapFault fault;
  fault.code = "Server";
  fault.message = reason;
  StatusOr<std::string> xml = codecs::BuildSoapFault(fault);
  if (!xml.ok()) {
    return TextResponse(500, "cannot build a SOAP Fault\n");
  }
  return SoapResponse(500, std::move(xml).value());
}

std::string Hex(const unsigned char* p, std::size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 0x0F]);
  }
  return out;
}

std::optional<std::chrono::year_month_day> ParseIsoDate(const std::string& s) {
  int y = 0;
  unsigned m = 0, d = 0;
  int consumed = 0;
  if (s.size() != 10 || std::sscanf(s.c_str(), "%4d-%2u-%2u%n", &y, &m, &d, &consumed) != 3 ||
      consumed != 10) {
    return std::nullopt;
  }
  const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{m},
                                        std::chrono::day{d}};
  return ymd.ok() ? std::optional(ymd) : std::nullopt;
}

// The item of `transaction` whose cd is `code`, or null.
const xmlNode* ItemOf(const xmlNode* transaction, std::string_view code) {
  for (const xmlNode* item : codecs::Children(transaction, "item")) {
    for (const xmlNode* cd : codecs::Children(item, "cd")) {
      if (codecs::TrimmedContent(cd) == code) {
        return item;
      }
    }
  }
  return nullptr;
}

// What the decision needs from the request's kmehr payload.
struct RequestFacts {
  std::string decision_reference;
  std::optional<std::chrono::year_month_day> start_date;
};

RequestFacts FactsOf(const std::string& detail_xml) {
  RequestFacts facts;
  codecs::Problem problem;
  StatusOr<XmlDocPtr> doc = codecs::ParseUntrustedXml(detail_xml, codecs::XmlLimits{}, &problem);
  if (!doc.ok()) {
    return facts;  // the codec parsed it already: cannot happen
  }
  const xmlNode* root = xmlDocGetRootElement(doc->get());
  const xmlNode* tx =
      codecs::Child(codecs::Child(codecs::Child(root, "kmehrmessage"), "folder"), "transaction");
  if (const xmlNode* ref = ItemOf(tx, "decisionreference")) {
    const xmlNode* content = codecs::Child(ref, "content");
    for (const char* name : {"id", "cd", "text"}) {
      if (const xmlNode* value = codecs::Child(content, name)) {
        facts.decision_reference = codecs::TrimmedContent(value);
        break;
      }
    }
  }
  if (const xmlNode* start = ItemOf(tx, "agreementstartdate")) {
    facts.start_date = ParseIsoDate(
        codecs::TrimmedContent(codecs::Child(codecs::Child(start, "content"), "date")));
  }
  return facts;
}

std::string Describe(const std::string& code) {
  static const std::map<std::string, std::string> kTexts = {
      {"152", "The decision reference is unknown at the insurer for this patient."},
      {"153",
       "The subscription of this decision reference has already started: cancellation "
       "is not possible."},
      {"159", "The medical house is not the author of the initial subscription."},
      {"243",
       "The subscription of this decision reference has not started: closure is not "
       "possible."},
      {"257",
       "Start date 01/01/1900 but no subscription found for this patient in this "
       "medical house."},
      {"260", "The patient is already enrolled in your medical house."},
      {"261", "The subscription of this decision reference has already been cancelled."},
      {"262", "The subscription of this decision reference has already been closed."},
  };
  auto it = kTexts.find(code);
  return it == kTexts.end() ? "MyCareNet error " + code : it->second;
}

MhmAnswerError Error(const std::string& code, const char* url) {
  return MhmAnswerError{code, url, Describe(code)};
}

bool IsInsurerCode(const std::string& code) {
  return code.size() == 3 &&
         std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
         code[0] != '0';
}

// ---- JSON helpers for the control API ---------------------------------------------------------

Status ReadCount(const nlohmann::json& v, const std::string& key, std::uint64_t* out) {
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)) {
    return Status::Invalid("'" + key + "' must be a non-negative integer");
  }
  *out = v.get<std::uint64_t>();
  return Status::Ok();
}

Status ReadRate(const nlohmann::json& v, const std::string& key, double* out) {
  if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1) {
    return Status::Invalid("'" + key + "' must be a number between 0 and 1");
  }
  *out = v.get<double>();
  return Status::Ok();
}

Status ReadInt(const nlohmann::json& v, const std::string& key, std::int64_t lo, std::int64_t hi,
               std::int64_t* out) {
  if (!v.is_number_integer() || v.get<std::int64_t>() < lo || v.get<std::int64_t>() > hi) {
    return Status::Invalid("'" + key + "' must be an integer in " + std::to_string(lo) + ".." +
                           std::to_string(hi));
  }
  *out = v.get<std::int64_t>();
  return Status::Ok();
}

nlohmann::ordered_json CountersJson(const SimulatorCounters& c) {
  nlohmann::ordered_json j;
  j["received"] = c.received;
  j["accepted"] = c.accepted;
  j["refused"] = c.refused;
  j["duplicates"] = c.duplicates;
  j["soap_faults"] = c.soap_faults;
  j["http_errors"] = c.http_errors;
  j["faults_injected"] = c.FaultsInjected();
  j["faults"] = {{"http_500", c.faults_500},    {"http_503", c.faults_503},
                 {"http_429", c.faults_429},    {"reset", c.faults_reset},
                 {"timeout", c.faults_timeout}, {"outage", c.faults_outage}};
  return j;
}

void Add(SimulatorCounters* total, const SimulatorCounters& c) {
  total->received += c.received;
  total->accepted += c.accepted;
  total->refused += c.refused;
  total->duplicates += c.duplicates;
  total->soap_faults += c.soap_faults;
  total->http_errors += c.http_errors;
  total->faults_500 += c.faults_500;
  total->faults_503 += c.faults_503;
  total->faults_429 += c.faults_429;
  total->faults_reset += c.faults_reset;
  total->faults_timeout += c.faults_timeout;
  total->faults_outage += c.faults_outage;
}

enum class FaultKind { kNone, kOutage, kTimeout, kReset, kThrottle, kFail };

struct FaultDecision {
  FaultKind kind = FaultKind::kNone;
  int status = 0;
  std::chrono::seconds retry_after{0};
  std::chrono::milliseconds latency{0};
};

}  // namespace

// ---- fault plans
// ---------------------------------------------------------------------------------

StatusOr<FaultPlan> ParseFaultPlan(std::string_view json, system_clock::time_point now,
                                   std::string* insurer) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Invalid("the fault plan must be a JSON object");
  }
  FaultPlan plan;
  std::string scope;
  for (const auto& [key, v] : j.items()) {
    std::int64_t n = 0;
    if (key == "insurer") {
      if (!v.is_string()) {
        return Status::Invalid("'insurer' must be a string");
      }
      scope = v.get<std::string>();
    } else if (key == "latency_ms") {
      PSL_RETURN_IF_ERROR(ReadInt(v, key, 0, 600'000, &n));
      plan.latency = std::chrono::milliseconds(n);
    } else if (key == "timeout_next") {
      PSL_RETURN_IF_ERROR(ReadCount(v, key, &plan.timeout_next));
    } else if (key == "timeout_rate") {
      PSL_RETURN_IF_ERROR(ReadRate(v, key, &plan.timeout_rate));
    } else if (key == "reset_next") {
      PSL_RETURN_IF_ERROR(ReadCount(v, key, &plan.reset_next));
    } else if (key == "reset_rate") {
      PSL_RETURN_IF_ERROR(ReadRate(v, key, &plan.reset_rate));
    } else if (key == "throttle_next") {
      PSL_RETURN_IF_ERROR(ReadCount(v, key, &plan.throttle_next));
    } else if (key == "throttle_rate") {
      PSL_RETURN_IF_ERROR(ReadRate(v, key, &plan.throttle_rate));
    } else if (key == "retry_after_s") {
      PSL_RETURN_IF_ERROR(ReadInt(v, key, 0, 86'400, &n));
      plan.retry_after = std::chrono::seconds(n);
    } else if (key == "fail_next") {
      PSL_RETURN_IF_ERROR(ReadCount(v, key, &plan.fail_next));
    } else if (key == "fail_status") {
      PSL_RETURN_IF_ERROR(ReadInt(v, key, 500, 599, &n));
      plan.fail_status = static_cast<int>(n);
    } else if (key == "error_rate") {
      PSL_RETURN_IF_ERROR(ReadRate(v, key, &plan.error_rate));
    } else if (key == "error_status") {
      PSL_RETURN_IF_ERROR(ReadInt(v, key, 500, 599, &n));
      plan.error_status = static_cast<int>(n);
    } else if (key == "outage") {
      if (v.is_null()) {
        continue;
      }
      if (!v.is_object()) {
        return Status::Invalid("'outage' must be an object {start_in_s, duration_s} or null");
      }
      OutageWindow window;
      std::int64_t start_in = 0;
      bool has_duration = false;
      for (const auto& [okey, ov] : v.items()) {
        if (okey == "start_in_s") {
          PSL_RETURN_IF_ERROR(
              ReadInt(ov, "outage.start_in_s", 0, std::int64_t{30} * 86'400, &start_in));
        } else if (okey == "duration_s") {
          PSL_RETURN_IF_ERROR(ReadInt(ov, "outage.duration_s", 1, std::int64_t{30} * 86'400, &n));
          window.duration = std::chrono::seconds(n);
          has_duration = true;
        } else {
          return Status::Invalid("unknown key 'outage." + okey + "'");
        }
      }
      if (!has_duration) {
        return Status::Invalid("'outage' needs 'duration_s'");
      }
      window.start = now + std::chrono::seconds(start_in);
      plan.outage = window;
    } else {
      return Status::Invalid("unknown key '" + key + "'");
    }
  }
  if (insurer != nullptr) {
    *insurer = scope;
  }
  return plan;
}

std::string FaultPlanJson(const FaultPlan& plan, system_clock::time_point now) {
  nlohmann::ordered_json j;
  j["latency_ms"] = plan.latency.count();
  j["timeout_next"] = plan.timeout_next;
  j["timeout_rate"] = plan.timeout_rate;
  j["reset_next"] = plan.reset_next;
  j["reset_rate"] = plan.reset_rate;
  j["throttle_next"] = plan.throttle_next;
  j["throttle_rate"] = plan.throttle_rate;
  j["retry_after_s"] = plan.retry_after.count();
  j["fail_next"] = plan.fail_next;
  j["fail_status"] = plan.fail_status;
  j["error_rate"] = plan.error_rate;
  j["error_status"] = plan.error_status;
  if (plan.outage) {
    j["outage"] = {
        {"start_in_s",
         std::chrono::duration_cast<std::chrono::seconds>(plan.outage->start - now).count()},
        {"duration_s", plan.outage->duration.count()}};
  } else {
    j["outage"] = nullptr;
  }
  return j.dump();
}

// ---- the simulator
// -------------------------------------------------------------------------------

struct InsurerSimulator::Impl {
  enum class EnrolmentState { kActive, kCancelled, kClosed };
  struct Enrolment {
    std::string patient_key;
    std::string medical_house;
    std::optional<std::chrono::year_month_day> start;
    EnrolmentState state = EnrolmentState::kActive;
  };
  // One request @Id: decided once; duplicates wait for `ready` and get the same response.
  struct StoredAnswer {
    bool ready = false;
    HttpResponse response;
  };
  struct Insurer {
    std::string code;
    FaultPlan plan;
    SimulatorCounters counters;
    std::map<std::string, std::shared_ptr<StoredAnswer>> answers;  // by request @Id
    std::map<std::string, Enrolment> enrolments;                   // by decision reference
    std::map<std::string, std::string> active;  // patient key → decision reference
    std::uint64_t next_reference = 1;
    std::uint64_t next_output = 1;
  };
  struct Decision {
    bool accepted = true;
    std::vector<MhmAnswerError> errors;
    std::string reference;
    std::function<void()> undo;  // reverts the state change (called under mu)
  };

  Options options;
  std::unique_ptr<codecs::MhmCodec> codec;
  std::string hmac_key;

  mutable std::mutex mu;
  std::condition_variable answer_ready;
  std::vector<std::string> order;
  std::map<std::string, Insurer> insurers;
  std::mt19937_64 rng;

  // Async handler state.
  mutable std::mutex async_mu;
  std::condition_variable jobs_cv;
  std::deque<std::function<void()>> jobs;
  std::condition_variable timers_cv;
  std::multimap<std::chrono::steady_clock::time_point, std::function<void()>> timers;
  std::vector<gateway::Responder> held;
  bool stopping = false;
  std::vector<std::thread> threads;

  const Clock& clock() const { return *options.clock; }

  std::string PatientKey(const codecs::MhmRequest& request) const {
    const std::string id = !request.patient_ssin.empty()
                               ? "niss:" + request.patient_ssin
                               : "mut:" + request.mutuality + "/" + request.reg_nr_with_mut;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), hmac_key.data(), static_cast<int>(hmac_key.size()),
         reinterpret_cast<const unsigned char*>(id.data()), id.size(), md, &len);
    return Hex(md, len);
  }

  void Log(const std::string& line) const {
    if (options.log) {
      options.log(line);
    }
  }

  bool Draw(double rate) {
    return rate > 0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng) < rate;
  }

  // Under mu: counts the request and picks the fault, consuming a "next N" counter.
  FaultDecision PickFault(Insurer& ins) {
    FaultPlan& p = ins.plan;
    FaultDecision d;
    d.latency = p.latency;
    const system_clock::time_point now = clock().Now();
    if (p.outage && now >= p.outage->start && now < p.outage->start + p.outage->duration) {
      d.kind = FaultKind::kOutage;
      d.status = 503;
      const auto left = p.outage->start + p.outage->duration - now;
      d.retry_after = std::chrono::ceil<std::chrono::seconds>(left);
      ++ins.counters.faults_outage;
      return d;
    }
    struct Candidate {
      std::uint64_t* next;
      double rate;
      FaultKind kind;
      int status;
    };
    const Candidate candidates[] = {
        {&p.timeout_next, p.timeout_rate, FaultKind::kTimeout, 0},
        {&p.reset_next, p.reset_rate, FaultKind::kReset, 0},
        {&p.throttle_next, p.throttle_rate, FaultKind::kThrottle, 429},
        {&p.fail_next, 0.0, FaultKind::kFail, p.fail_status},
        {nullptr, p.error_rate, FaultKind::kFail, p.error_status},
    };
    for (const Candidate& c : candidates) {  // first the "next N" counters...
      if (c.next != nullptr && *c.next > 0) {
        --*c.next;
        d.kind = c.kind;
        d.status = c.status;
        break;
      }
    }
    for (const Candidate& c : candidates) {  // ...then the rates
      if (d.kind != FaultKind::kNone) {
        break;
      }
      if (Draw(c.rate)) {
        d.kind = c.kind;
        d.status = c.status;
      }
    }
    switch (d.kind) {
      case FaultKind::kTimeout:
        ++ins.counters.faults_timeout;
        break;
      case FaultKind::kReset:
        ++ins.counters.faults_reset;
        break;
      case FaultKind::kThrottle:
        d.status = 429;
        d.retry_after = p.retry_after;
        ++ins.counters.faults_429;
        break;
      case FaultKind::kFail:
        ++(d.status == 503 ? ins.counters.faults_503 : ins.counters.faults_500);
        break;
      default:
        break;
    }
    return d;
  }

  SimulatorReply Process(const HttpRequest& request) {
    const std::string_view path = PathOf(request);
    if (path.rfind("/control/", 0) == 0) {
      return SimulatorReply{Control(request, path)};
    }
    constexpr std::string_view kPrefix = "/insurers/";
    if (path.rfind(kPrefix, 0) != 0) {
      return SimulatorReply{TextResponse(404, "not found\n")};
    }
    const std::string_view rest = path.substr(kPrefix.size());
    const std::size_t slash = rest.find('/');
    const std::string code(rest.substr(0, slash));
    const std::string_view endpoint = slash == std::string_view::npos ? "" : rest.substr(slash);

    FaultDecision fault;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = insurers.find(code);
      if (it == insurers.end() || endpoint != "/mhm") {
        return SimulatorReply{TextResponse(404, "no such insurer endpoint\n")};
      }
      ++it->second.counters.received;
      fault = PickFault(it->second);
    }
    SimulatorReply reply;
    reply.delay = fault.latency;
    switch (fault.kind) {
      case FaultKind::kNone:
        reply.response = ProcessMhm(code, request);
        return reply;
      case FaultKind::kTimeout:
        reply.hold = true;
        reply.response.close_without_response = true;
        reply.response.headers.emplace_back("x-simulator-fault", "timeout");
        return reply;
      case FaultKind::kReset:
        reply.response.close_without_response = true;
        reply.response.headers.emplace_back("x-simulator-fault", "reset");
        return reply;
      case FaultKind::kOutage:
      case FaultKind::kThrottle:
        reply.response =
            TextResponse(fault.status, fault.kind == FaultKind::kOutage ? "simulated outage\n"
                                                                        : "simulated throttling\n");
        reply.response.headers.emplace_back("retry-after",
                                            std::to_string(fault.retry_after.count()));
        reply.response.headers.emplace_back(
            "x-simulator-fault", fault.kind == FaultKind::kOutage ? "outage" : "throttle");
        return reply;
      case FaultKind::kFail:
        reply.response = TextResponse(fault.status, "simulated failure\n");
        reply.response.headers.emplace_back("x-simulator-fault", "error");
        return reply;
    }
    return reply;
  }

  HttpResponse Counted(const std::string& code, HttpResponse response, bool soap_fault) {
    std::lock_guard<std::mutex> lock(mu);
    Insurer& ins = insurers.at(code);
    ++(soap_fault ? ins.counters.soap_faults : ins.counters.http_errors);
    return response;
  }

  HttpResponse ProcessMhm(const std::string& code, const HttpRequest& request) {
    if (request.method != "POST") {
      HttpResponse r = TextResponse(405, "POST only\n");
      r.headers.emplace_back("allow", "POST");
      return Counted(code, std::move(r), false);
    }
    const std::string type = Lower(FindHeader(request, "content-type").value_or(""));
    if (type.rfind("text/xml", 0) != 0) {
      return Counted(code, TextResponse(415, "SOAP 1.1 needs Content-Type text/xml\n"), false);
    }
    std::string action = FindHeader(request, "soapaction").value_or("");
    if (action.size() >= 2 && action.front() == '"' && action.back() == '"') {
      action = action.substr(1, action.size() - 2);
    }
    std::optional<MhmOperation> action_op;
    for (MhmOperation op :
         {MhmOperation::kSubscription, MhmOperation::kCancellation, MhmOperation::kClosure}) {
      if (action == codecs::MhmSoapAction(op)) {
        action_op = op;
      }
    }
    if (!action_op) {
      return Counted(code, ClientFault("unknown SOAPAction: expected one of the MHM actions"),
                     true);
    }

    codecs::SoapVerifyOptions soap_options;
    soap_options.intermediates = options.intermediates;
    StatusOr<codecs::VerifiedSoap> soap =
        codecs::VerifySoapRequest(request.body, options.trust, clock(), soap_options);
    if (!soap.ok()) {
      return Counted(code, ClientFault("WS-Security: " + soap.status().message()), true);
    }
    codecs::ValidationReport report;
    StatusOr<codecs::MhmRequest> mhm = codec->Decode(soap->body_xml, &report);
    if (!mhm.ok()) {
      std::string reason = "the MHM request is not valid (" + mhm.status().message() + ")";
      int shown = 0;
      for (const codecs::Problem& p : report.problems) {
        if (p.severity != codecs::Severity::kError) {
          continue;
        }
        if (++shown > 5) {
          reason += "; …";
          break;
        }
        reason += "; " + p.code + " " + p.document + " " + p.path + ": " + p.message;
      }
      return Counted(code, ClientFault(reason), true);
    }
    if (mhm->operation != *action_op) {
      return Counted(
          code,
          ClientFault("SOAPAction names " + std::string(codecs::MhmOperationName(*action_op)) +
                      " but the body is a " +
                      std::string(codecs::MhmOperationName(mhm->operation)) + " request"),
          true);
    }
    StatusOr<codecs::VerifiedSignature> xades =
        codecs::VerifyBlobRequest(soap->body_xml, options.trust, clock());
    if (!xades.ok()) {
      return Counted(code, ClientFault("XAdES: " + xades.status().message()), true);
    }
    return Answer(code, *mhm);
  }

  // Under mu.
  Decision Decide(Insurer& ins, const codecs::MhmRequest& request) {
    Decision d;
    const std::string patient = PatientKey(request);
    const RequestFacts facts = FactsOf(request.detail_xml);
    const std::chrono::year_month_day today = BrusselsToday(clock());
    auto refuse = [&d](MhmAnswerError e) {
      d.accepted = false;
      d.errors.push_back(std::move(e));
    };
    if (request.operation == MhmOperation::kSubscription) {
      const bool recovery =
          facts.start_date && *facts.start_date == std::chrono::year_month_day{
                                                       std::chrono::year{1900},
                                                       std::chrono::January, std::chrono::day{1}};
      auto active = ins.active.find(patient);
      if (recovery) {
        if (active == ins.active.end() ||
            ins.enrolments.at(active->second).medical_house != request.author_nihii) {
          refuse(Error("257", kPathTransaction));
        } else {
          d.reference = active->second;
        }
        return d;
      }
      if (active != ins.active.end()) {
        refuse(Error("260", kPathTransaction));
        return d;
      }
      char seq[16];
      std::snprintf(seq, sizeof(seq), "%09llu",
                    static_cast<unsigned long long>(ins.next_reference++));  // NOLINT
      d.reference = ins.code + seq;
      ins.enrolments[d.reference] =
          Enrolment{patient, request.author_nihii, facts.start_date, EnrolmentState::kActive};
      ins.active[patient] = d.reference;
      d.undo = [&ins, reference = d.reference, patient] {
        ins.enrolments.erase(reference);
        ins.active.erase(patient);
      };
      return d;
    }

    // Cancellation and closure name an enrolment by its decision reference.
    auto it = ins.enrolments.find(facts.decision_reference);
    if (it == ins.enrolments.end() || it->second.patient_key != patient) {
      refuse(Error("152", kPathDecisionReference));
      return d;
    }
    Enrolment& e = it->second;
    if (e.medical_house != request.author_nihii) {
      refuse(Error("159", kPathTransactionAuthor));
    } else if (e.state == EnrolmentState::kCancelled) {
      refuse(Error("261", kPathDecisionReference));
    } else if (e.state == EnrolmentState::kClosed) {
      refuse(Error("262", kPathDecisionReference));
    } else if (request.operation == MhmOperation::kCancellation && e.start && *e.start <= today) {
      refuse(Error("153", kPathDecisionReference));
    } else if (request.operation == MhmOperation::kClosure && e.start && *e.start > today) {
      refuse(Error("243", kPathDecisionReference));
    }
    if (!d.accepted) {
      return d;
    }
    d.reference = it->first;
    e.state = request.operation == MhmOperation::kCancellation ? EnrolmentState::kCancelled
                                                               : EnrolmentState::kClosed;
    ins.active.erase(patient);
    d.undo = [&ins, reference = it->first, patient] {
      auto again = ins.enrolments.find(reference);  // gone after a Reset
      if (again != ins.enrolments.end()) {
        again->second.state = EnrolmentState::kActive;
        ins.active[patient] = reference;
      }
    };
    return d;
  }

  HttpResponse Answer(const std::string& code, const codecs::MhmRequest& request) {
    std::shared_ptr<StoredAnswer> entry;
    Decision decision;
    std::string output_reference;
    {
      std::unique_lock<std::mutex> lock(mu);
      Insurer& ins = insurers.at(code);
      auto found = ins.answers.find(request.envelope_id);
      if (found != ins.answers.end()) {
        std::shared_ptr<StoredAnswer> stored = found->second;
        answer_ready.wait(lock, [&stored] { return stored->ready; });
        ++ins.counters.duplicates;
        Log("insurer=" + code + " id=" + request.envelope_id + " duplicate");
        return stored->response;
      }
      entry = std::make_shared<StoredAnswer>();
      ins.answers[request.envelope_id] = entry;
      decision = Decide(ins, request);
      output_reference = code + "-" + std::to_string(ins.next_output++);
    }

    codecs::MhmResponseSpec spec;
    spec.accepted = decision.accepted;
    spec.errors = decision.errors;
    spec.decision_reference = decision.reference;
    spec.insurer_code = code;
    spec.output_reference = output_reference;
    spec.nip_reference = "SIM-" + output_reference;
    StatusOr<std::string> built = codecs::BuildMhmResponse(request, spec, *options.signer, clock());
    StatusOr<std::string> envelope =
        built.ok() ? codecs::BuildSoapResponse(*built) : StatusOr<std::string>(built.status());

    std::lock_guard<std::mutex> lock(mu);
    Insurer& ins = insurers.at(code);
    if (!envelope.ok()) {
      // Nothing was answered: undo the decision so that a retry decides afresh.
      if (decision.undo) {
        decision.undo();
      }
      entry->response = ServerFault("the insurer cannot sign its answer");
      entry->ready = true;
      auto mine = ins.answers.find(request.envelope_id);
      if (mine != ins.answers.end() && mine->second == entry) {
        ins.answers.erase(mine);
      }
      answer_ready.notify_all();
      Log("insurer=" + code + " id=" + request.envelope_id +
          " internal error: " + envelope.status().ToString());
      return entry->response;
    }
    entry->response = SoapResponse(200, std::move(envelope).value());
    entry->ready = true;
    ++(decision.accepted ? ins.counters.accepted : ins.counters.refused);
    answer_ready.notify_all();
    std::string codes;
    for (const MhmAnswerError& e : decision.errors) {
      codes += (codes.empty() ? "" : ",") + e.code;
    }
    Log("insurer=" + code + " id=" + request.envelope_id +
        " op=" + std::string(codecs::MhmOperationName(request.operation)) +
        " outcome=" + (decision.accepted ? "accepted" : "refused") + " codes=" + codes);
    return entry->response;
  }

  HttpResponse Control(const HttpRequest& request, std::string_view path);
  void ResetState();
  SimulatorStats Stats() const;

  // Async handler.
  void WorkerLoop();
  void TimerLoop();
  void Dispatch(HttpRequest request, gateway::Responder respond);
  std::vector<gateway::Responder> TakeHeld();
};

SimulatorStats InsurerSimulator::Impl::Stats() const {
  std::lock_guard<std::mutex> lock(mu);
  SimulatorStats stats;
  for (const std::string& code : order) {
    const SimulatorCounters& c = insurers.at(code).counters;
    stats.by_insurer.emplace_back(code, c);
    Add(&stats.total, c);
  }
  return stats;
}

void InsurerSimulator::Impl::ResetState() {
  std::lock_guard<std::mutex> lock(mu);
  for (auto& [code, ins] : insurers) {
    // Answers still being built keep their entry alive through the shared_ptr.
    ins.answers.clear();
    ins.enrolments.clear();
    ins.active.clear();
    ins.counters = SimulatorCounters();
    ins.plan = options.faults;
    ins.next_reference = 1;
    ins.next_output = 1;
  }
}

HttpResponse InsurerSimulator::Impl::Control(const HttpRequest& request, std::string_view path) {
  const system_clock::time_point now = clock().Now();
  if (path == "/control/stats") {
    if (request.method != "GET") {
      return TextResponse(405, "GET only\n");
    }
    const SimulatorStats stats = Stats();
    nlohmann::ordered_json j = CountersJson(stats.total);
    nlohmann::ordered_json by = nlohmann::ordered_json::object();
    for (const auto& [code, c] : stats.by_insurer) {
      by[code] = CountersJson(c);
    }
    j["by_insurer"] = by;
    {
      std::lock_guard<std::mutex> lock(async_mu);
      j["held"] = held.size();
    }
    return JsonResponse(200, j);
  }
  if (path == "/control/faults") {
    if (request.method == "GET") {
      nlohmann::ordered_json j = nlohmann::ordered_json::object();
      std::lock_guard<std::mutex> lock(mu);
      for (const std::string& code : order) {
        j[code] = nlohmann::ordered_json::parse(FaultPlanJson(insurers.at(code).plan, now));
      }
      return JsonResponse(200, j);
    }
    if (request.method != "POST") {
      return TextResponse(405, "GET or POST\n");
    }
    std::string scope;
    StatusOr<FaultPlan> plan = ParseFaultPlan(request.body, now, &scope);
    if (!plan.ok()) {
      return JsonResponse(400, {{"error", plan.status().message()}});
    }
    std::lock_guard<std::mutex> lock(mu);
    if (!scope.empty() && insurers.find(scope) == insurers.end()) {
      return JsonResponse(400, {{"error", "unknown insurer '" + scope.substr(0, 8) + "'"}});
    }
    for (auto& [code, ins] : insurers) {
      if (scope.empty() || scope == code) {
        ins.plan = *plan;
      }
    }
    nlohmann::ordered_json j;
    j["insurer"] = scope.empty() ? nlohmann::ordered_json("*") : nlohmann::ordered_json(scope);
    j["plan"] = nlohmann::ordered_json::parse(FaultPlanJson(*plan, now));
    return JsonResponse(200, j);
  }
  if (path == "/control/reset") {
    if (request.method != "POST") {
      return TextResponse(405, "POST only\n");
    }
    ResetState();
    for (gateway::Responder& respond : TakeHeld()) {
      HttpResponse close;
      close.close_without_response = true;
      respond(std::move(close));
    }
    return JsonResponse(200, {{"reset", true}});
  }
  return TextResponse(404, "no such control endpoint\n");
}

std::vector<gateway::Responder> InsurerSimulator::Impl::TakeHeld() {
  std::lock_guard<std::mutex> lock(async_mu);
  std::vector<gateway::Responder> out;
  out.swap(held);
  return out;
}

void InsurerSimulator::Impl::Dispatch(HttpRequest request, gateway::Responder respond) {
  {
    std::lock_guard<std::mutex> lock(async_mu);
    if (!stopping) {
      jobs.emplace_back([this, request = std::move(request), respond]() mutable {
        SimulatorReply reply = Process(request);
        std::unique_lock<std::mutex> job_lock(async_mu);
        if (reply.hold) {
          if (!stopping) {
            held.push_back(std::move(respond));
            return;
          }
          job_lock.unlock();
          respond(std::move(reply.response));  // close_without_response is set
          return;
        }
        if (reply.delay.count() > 0 && !stopping) {
          timers.emplace(std::chrono::steady_clock::now() + reply.delay,
                         [respond, response = std::move(reply.response)]() mutable {
                           respond(std::move(response));
                         });
          timers_cv.notify_one();
          return;
        }
        job_lock.unlock();
        respond(std::move(reply.response));
      });
      jobs_cv.notify_one();
      return;
    }
  }
  HttpResponse close;
  close.close_without_response = true;
  respond(std::move(close));
}

void InsurerSimulator::Impl::WorkerLoop() {
  std::unique_lock<std::mutex> lock(async_mu);
  for (;;) {
    jobs_cv.wait(lock, [this] { return stopping || !jobs.empty(); });
    if (jobs.empty()) {
      return;  // stopping and drained
    }
    std::function<void()> job = std::move(jobs.front());
    jobs.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

void InsurerSimulator::Impl::TimerLoop() {
  std::unique_lock<std::mutex> lock(async_mu);
  for (;;) {
    if (timers.empty()) {
      if (stopping) {
        return;
      }
      timers_cv.wait(lock);
      continue;
    }
    auto first = timers.begin();
    if (!stopping && std::chrono::steady_clock::now() < first->first) {
      timers_cv.wait_until(lock, first->first);
      continue;
    }
    std::function<void()> fire = std::move(first->second);
    timers.erase(first);
    lock.unlock();
    fire();
    lock.lock();
  }
}

InsurerSimulator::InsurerSimulator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

InsurerSimulator::~InsurerSimulator() {
  Shutdown();
}

StatusOr<std::unique_ptr<InsurerSimulator>> InsurerSimulator::Create(Options options) {
  if (options.insurers.empty()) {
    return Status::Invalid("the simulator needs at least one insurer code");
  }
  if (options.schemas == nullptr || options.trust == nullptr || options.signer == nullptr ||
      options.clock == nullptr) {
    return Status::Invalid("the simulator needs schemas, a trust store, a signer and a clock");
  }
  if (options.signer->key == nullptr || options.signer->certificate == nullptr) {
    return Status::Invalid("the simulator's signing identity has no key or certificate");
  }
  auto impl = std::make_unique<Impl>();
  for (const std::string& code : options.insurers) {
    if (!IsInsurerCode(code)) {
      return Status::Invalid("insurer code '" + code.substr(0, 8) + "' is not 100..999");
    }
    if (impl->insurers.count(code) != 0) {
      continue;
    }
    impl->order.push_back(code);
    Impl::Insurer& ins = impl->insurers[code];
    ins.code = code;
    ins.plan = options.faults;
  }
  unsigned char key[32];
  if (RAND_bytes(key, sizeof(key)) != 1) {
    return Status::Internal("no randomness for the patient hash key");
  }
  impl->hmac_key.assign(reinterpret_cast<const char*>(key), sizeof(key));
  std::uint64_t seed = options.random_seed;
  if (seed == 0) {
    seed = (static_cast<std::uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  }
  impl->rng.seed(seed);
  impl->codec = std::make_unique<codecs::MhmCodec>(*options.schemas, *options.clock);
  const unsigned workers = std::max(1U, options.workers);
  impl->options = std::move(options);
  Impl* raw = impl.get();
  for (unsigned i = 0; i < workers; ++i) {
    impl->threads.emplace_back([raw] { raw->WorkerLoop(); });
  }
  impl->threads.emplace_back([raw] { raw->TimerLoop(); });
  return std::unique_ptr<InsurerSimulator>(new InsurerSimulator(std::move(impl)));
}

SimulatorReply InsurerSimulator::Process(const gateway::HttpRequest& request) {
  return impl_->Process(request);
}

gateway::HttpResponse InsurerSimulator::Handle(const gateway::HttpRequest& request) {
  return impl_->Process(request).response;
}

gateway::Handler InsurerSimulator::AsyncHandler() {
  Impl* impl = impl_.get();
  return [impl](gateway::HttpRequest request, gateway::Responder respond) {
    impl->Dispatch(std::move(request), std::move(respond));
  };
}

void InsurerSimulator::Reset() {
  impl_->ResetState();
  for (gateway::Responder& respond : impl_->TakeHeld()) {
    HttpResponse close;
    close.close_without_response = true;
    respond(std::move(close));
  }
}

void InsurerSimulator::Shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(impl_->async_mu);
    impl_->stopping = true;
    threads.swap(impl_->threads);
  }
  impl_->jobs_cv.notify_all();
  impl_->timers_cv.notify_all();
  for (std::thread& t : threads) {
    t.join();
  }
  for (gateway::Responder& respond : impl_->TakeHeld()) {
    HttpResponse close;
    close.close_without_response = true;
    respond(std::move(close));
  }
}

SimulatorStats InsurerSimulator::Stats() const {
  return impl_->Stats();
}

std::string InsurerSimulator::StatsJson() const {
  gateway::HttpRequest request;
  request.method = "GET";
  request.target = "/control/stats";
  return impl_->Control(request, "/control/stats").body;
}

Status InsurerSimulator::SetFaultPlan(const std::string& insurer, const FaultPlan& plan) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!insurer.empty() && impl_->insurers.find(insurer) == impl_->insurers.end()) {
    return Status::Invalid("unknown insurer '" + insurer.substr(0, 8) + "'");
  }
  for (auto& [code, ins] : impl_->insurers) {
    if (insurer.empty() || insurer == code) {
      ins.plan = plan;
    }
  }
  return Status::Ok();
}

std::size_t InsurerSimulator::HeldRequests() const {
  std::lock_guard<std::mutex> lock(impl_->async_mu);
  return impl_->held.size();
}

}  // namespace psl::simulator
