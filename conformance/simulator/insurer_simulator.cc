#include "conformance/simulator/insurer_simulator.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "base/brussels_time.h"
#include "codecs/eattest.h"
#include "codecs/genasync.h"
#include "codecs/genasync_mailbox.h"
#include "codecs/mediprima.h"
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
  j["posts"] = c.posts;
  j["posts_accepted"] = c.posts_accepted;
  j["posts_refused"] = c.posts_refused;
  j["post_duplicates"] = c.post_duplicates;
  j["gets"] = c.gets;
  j["confirms"] = c.confirms;
  j["returns_delivered"] = c.returns_delivered;
  j["tacks_delivered"] = c.tacks_delivered;
  j["returns_confirmed"] = c.returns_confirmed;
  j["tacks_confirmed"] = c.tacks_confirmed;
  j["mailbox_depth"] = c.mailbox_depth;
  j["mediprima"] = {{"sends", c.mediprima_sends},     {"searches", c.mediprima_searches},
                    {"deletes", c.mediprima_deletes}, {"consults", c.mediprima_consults},
                    {"refused", c.mediprima_refused}, {"duplicates", c.mediprima_duplicates}};
  j["eattest"] = {{"sends", c.eattest_sends},           {"cancels", c.eattest_cancels},
                  {"accepted", c.eattest_accepted},     {"refused", c.eattest_refused},
                  {"duplicates", c.eattest_duplicates}, {"last_attempt", c.eattest_last_attempt}};
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
  total->posts += c.posts;
  total->posts_accepted += c.posts_accepted;
  total->posts_refused += c.posts_refused;
  total->post_duplicates += c.post_duplicates;
  total->gets += c.gets;
  total->confirms += c.confirms;
  total->returns_delivered += c.returns_delivered;
  total->tacks_delivered += c.tacks_delivered;
  total->returns_confirmed += c.returns_confirmed;
  total->tacks_confirmed += c.tacks_confirmed;
  total->mailbox_depth += c.mailbox_depth;
  total->mediprima_sends += c.mediprima_sends;
  total->mediprima_searches += c.mediprima_searches;
  total->mediprima_deletes += c.mediprima_deletes;
  total->mediprima_consults += c.mediprima_consults;
  total->mediprima_refused += c.mediprima_refused;
  total->mediprima_duplicates += c.mediprima_duplicates;
  total->eattest_sends += c.eattest_sends;
  total->eattest_cancels += c.eattest_cancels;
  total->eattest_accepted += c.eattest_accepted;
  total->eattest_refused += c.eattest_refused;
  total->eattest_duplicates += c.eattest_duplicates;
  total->eattest_last_attempt = std::max(total->eattest_last_attempt, c.eattest_last_attempt);
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
    } else if (key == "operation") {
      if (!v.is_string() || !IsFaultOperation(v.get<std::string>())) {
        return Status::Invalid(
            "'operation' must be one of \"mhm\", \"post\", \"get\", \"confirm\", "
            "\"mediprima\", \"eattest\"");
      }
      plan.operation = v.get<std::string>();
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

bool IsFaultOperation(std::string_view operation) {
  return operation.empty() || operation == "mhm" || operation == "post" || operation == "get" ||
         operation == "confirm" || operation == "mediprima" || operation == "eattest";
}

std::string FaultPlanJson(const FaultPlan& plan, system_clock::time_point now) {
  nlohmann::ordered_json j;
  if (!plan.operation.empty()) {
    j["operation"] = plan.operation;
  }
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

// ---- eFact, MediPrima and eAttest decisions
// ---------------------------------------------------------------------

namespace {

// How a flow checks the codes of its control: `valid` (the item's text; "" for a non-string),
// else kInvalid "'codes' must be an array of <items>" or "'<key>' must hold <rule>".
struct CodeCheck {
  std::function<bool(const std::string& code)> valid;
  std::string_view items;
  std::string_view rule;
};

// The keys every decision control shares.
struct DecisionControlKeys {
  std::string insurer;  // "" = every insurer
  std::vector<std::string> codes;
  std::uint64_t next = 0;  // 0 = the default decision from now on
};

// Appends the code `v` (under `key`) to *codes once `check` accepts it.
Status AddCode(const CodeCheck& check, const nlohmann::json& v, const std::string& key,
               std::vector<std::string>* codes) {
  std::string code = v.is_string() ? v.get<std::string>() : std::string();
  if (!check.valid(code)) {
    return Status::Invalid("'" + key + "' must hold " + std::string(check.rule));
  }
  codes->push_back(std::move(code));
  return Status::Ok();
}

// Reads a /control/<flow> JSON object: "insurer", "codes" (each through `code_check`) and "next"
// here; "decision" and the flow's own keys through `flow_key`, which answers nullopt for a key
// it does not know (kInvalid "unknown key"). `flow` names the flow in the errors ("eFact").
StatusOr<DecisionControlKeys> ParseDecisionControl(
    std::string_view json, std::string_view flow, const CodeCheck& code_check,
    const std::function<std::optional<Status>(const std::string& key, const nlohmann::json& v,
                                              DecisionControlKeys* keys)>& flow_key) {
  const nlohmann::json j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::Invalid("the " + std::string(flow) + " control must be a JSON object");
  }
  DecisionControlKeys keys;
  for (const auto& [key, v] : j.items()) {
    if (key == "insurer") {
      if (!v.is_string()) {
        return Status::Invalid("'insurer' must be a string");
      }
      keys.insurer = v.get<std::string>();
    } else if (key == "codes") {
      if (!v.is_array()) {
        return Status::Invalid("'codes' must be an array of " + std::string(code_check.items));
      }
      for (const auto& item : v) {
        PSL_RETURN_IF_ERROR(AddCode(code_check, item, key, &keys.codes));
      }
    } else if (key == "next") {
      PSL_RETURN_IF_ERROR(ReadCount(v, key, &keys.next));
    } else if (std::optional<Status> read = flow_key(key, v, &keys)) {
      PSL_RETURN_IF_ERROR(*read);
    } else {
      return Status::Invalid("unknown key '" + key + "'");
    }
  }
  return keys;
}

bool IsDigits(const std::string& code, std::size_t length) {
  return code.size() == length &&
         std::all_of(code.begin(), code.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

}  // namespace

StatusOr<EfactControl> ParseEfactControl(std::string_view json) {
  const CodeCheck code_check{[](const std::string& code) { return IsDigits(code, 6); },
                             "6-digit strings", "6-digit eFact error codes"};
  EfactControl c;
  std::optional<codecs::EfactReturnKind> kind;
  StatusOr<DecisionControlKeys> keys = ParseDecisionControl(
      json, "eFact", code_check,
      [&](const std::string& key, const nlohmann::json& v,
          DecisionControlKeys* shared) -> std::optional<Status> {
        if (key == "decision" || key == "efact_return") {
          codecs::EfactReturnKind k;
          if (!v.is_string() || !codecs::EfactReturnKindFromName(v.get<std::string>(), &k)) {
            return Status::Invalid("'" + key +
                                   "' must be accepted, refused, refused-blocking or "
                                   "accepted-with-errors (or 931000, 920999, 920099, 920098)");
          }
          kind = k;
        } else if (key == "efact_code" || key == "code") {
          return AddCode(code_check, v, key, &shared->codes);
        } else if (key == "return_delay_ms") {
          std::int64_t n = 0;
          PSL_RETURN_IF_ERROR(ReadInt(v, key, 0, std::int64_t{86'400'000}, &n));
          c.return_delay = std::chrono::milliseconds(n);
        } else if (key == "mailbox_tacks") {
          if (!v.is_boolean()) {
            return Status::Invalid("'mailbox_tacks' must be true or false");
          }
          c.mailbox_tacks = v.get<bool>();
        } else {
          return std::nullopt;
        }
        return Status::Ok();
      });
  if (!keys.ok()) {
    return keys.status();
  }
  c.insurer = std::move(keys->insurer);
  c.next = keys->next;
  if (!kind && (!keys->codes.empty() || c.next > 0)) {
    return Status::Invalid("'codes' and 'next' need a 'decision'");
  }
  if (kind) {
    if (*kind == codecs::EfactReturnKind::kAcknowledged && !keys->codes.empty()) {
      return Status::Invalid("an acknowledgement (931000) carries no error code");
    }
    c.decision = EfactDecision{*kind, std::move(keys->codes)};
  }
  return c;
}

// ---- MediPrima and eAttest decisions
// ------------------------------------------------------------

namespace {

// "accepted" | "refused" into *refused.
Status ReadDecision(const nlohmann::json& v, std::optional<bool>* refused) {
  if (v.is_string() && v.get<std::string>() == "accepted") {
    *refused = false;
    return Status::Ok();
  }
  if (v.is_string() && v.get<std::string>() == "refused") {
    *refused = true;
    return Status::Ok();
  }
  return Status::Invalid("'decision' must be \"accepted\" or \"refused\"");
}

bool IsStatusCodeText(const std::string& code) {
  return !code.empty() && code.size() <= 64 &&
         std::all_of(code.begin(), code.end(), [](unsigned char c) {
           return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' || c == ':';
         });
}

}  // namespace

StatusOr<MediPrimaControl> ParseMediPrimaControl(std::string_view json) {
  std::optional<bool> refused;
  std::string operation;
  StatusOr<DecisionControlKeys> keys = ParseDecisionControl(
      json, "MediPrima",
      {IsStatusCodeText, "strings", "1 to 64 characters among letters, digits and - _ . :"},
      [&](const std::string& key, const nlohmann::json& v,
          DecisionControlKeys*) -> std::optional<Status> {
        if (key == "decision") {
          return ReadDecision(v, &refused);
        }
        if (key == "operation") {
          if (!v.is_string() || (v != "send" && v != "search" && v != "delete" && v != "consult")) {
            return Status::Invalid(
                "'operation' must be \"send\", \"search\", \"delete\" or \"consult\"");
          }
          operation = v.get<std::string>();
          return Status::Ok();
        }
        return std::nullopt;
      });
  if (!keys.ok()) {
    return keys.status();
  }
  MediPrimaControl c;
  c.insurer = std::move(keys->insurer);
  c.next = keys->next;
  if (!refused) {
    if (!keys->codes.empty() || c.next > 0 || !operation.empty()) {
      return Status::Invalid("'codes', 'operation' and 'next' need a 'decision'");
    }
    return c;
  }
  if (!*refused && !keys->codes.empty()) {
    return Status::Invalid("an accepted decision carries no code");
  }
  c.decision = MediPrimaDecision{*refused, std::move(keys->codes), std::move(operation)};
  return c;
}

StatusOr<EAttestErrorTable> LoadEAttestErrorTable(const std::filesystem::path& json_file) {
  std::ifstream in(json_file, std::ios::binary);
  if (!in) {
    return Status::FailedPrecondition("cannot read " + json_file.string());
  }
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_array()) {
    return Status::Invalid(json_file.string() + " is not a JSON array of error entries");
  }
  EAttestErrorTable table;
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("code") || !e["code"].is_string()) {
      return Status::Invalid(json_file.string() + ": an entry has no string 'code'");
    }
    const std::string code = e["code"].get<std::string>();
    if (table.count(code) != 0) {
      continue;  // the first path listed for the code
    }
    EAttestErrorText text;
    if (e.contains("path") && e["path"].is_string()) {
      text.path = e["path"].get<std::string>();
    }
    if (e.contains("msgFr") && e["msgFr"].is_string()) {
      text.description = e["msgFr"].get<std::string>();
    }
    table.emplace(code, std::move(text));
  }
  return table;
}

StatusOr<EAttestControl> ParseEAttestControl(std::string_view json,
                                             const EAttestErrorTable* table) {
  const CodeCheck code_check{[table](const std::string& code) {
                               return table != nullptr && !table->empty() ? table->count(code) != 0
                                                                          : IsDigits(code, 3);
                             },
                             "eAttest error codes", "codes of errors/eAttestErrors.json"};
  std::optional<bool> refused;
  StatusOr<DecisionControlKeys> keys =
      ParseDecisionControl(json, "eAttest", code_check,
                           [&](const std::string& key, const nlohmann::json& v,
                               DecisionControlKeys*) -> std::optional<Status> {
                             if (key == "decision") {
                               return ReadDecision(v, &refused);
                             }
                             return std::nullopt;
                           });
  if (!keys.ok()) {
    return keys.status();
  }
  EAttestControl c;
  c.insurer = std::move(keys->insurer);
  c.next = keys->next;
  if (!refused) {
    if (!keys->codes.empty() || c.next > 0) {
      return Status::Invalid("'codes' and 'next' need a 'decision'");
    }
    return c;
  }
  if (!*refused && !keys->codes.empty()) {
    return Status::Invalid("an accepted decision carries no code");
  }
  c.decision = EAttestDecision{*refused, std::move(keys->codes)};
  return c;
}

namespace {

nlohmann::ordered_json EfactDecisionJson(const EfactDecision& d) {
  nlohmann::ordered_json j;
  j["decision"] = std::string(codecs::EfactReturnDecision(d.kind));
  j["message_type"] = std::string(codecs::EfactReturnMessageType(d.kind));
  j["codes"] = d.codes;
  return j;
}

// The error records of a return: each code points at the first record of its type.
std::vector<codecs::EfactReturnError> ReturnErrors(const EfactDecision& d,
                                                   const codecs::EfactFile& file) {
  std::vector<std::string> codes = d.codes;
  if (codes.empty()) {
    switch (d.kind) {
      case codecs::EfactReturnKind::kRefused:
      case codecs::EfactReturnKind::kRefusedBlocking:
        codes = {"200701"};  // record 20 zone 7 (affiliation mutuality) not numeric, blocking
        break;
      case codecs::EfactReturnKind::kAcceptedWithErrors:
        codes = {"200802"};  // record 20 zone 8 (beneficiary id) with a wrong check digit
        break;
      case codecs::EfactReturnKind::kAcknowledged:
        break;
    }
  }
  std::vector<codecs::EfactReturnError> errors;
  for (const std::string& code : codes) {
    codecs::EfactReturnError e;
    e.code = code;
    const std::string_view type = std::string_view(code).substr(0, 2);
    for (const codecs::EfactRecord& r : file.records) {
      if (codecs::EfactRecordTypeCode(r.type()) == type) {
        e.record = r.ordinal();
        break;
      }
    }
    e.zone = code.substr(2, 2);
    if (e.zone.size() == 2 && e.zone[0] == '0') {
      e.zone.erase(0, 1);
    }
    errors.push_back(std::move(e));
  }
  return errors;
}

// Segment 200 zone 205 of the returns: unique per process (a random start, never reset), so that
// two returns never share a HashValue, even for the same file or after a /control/reset.
std::uint64_t NextReturnReference() {
  static std::atomic<std::uint64_t> next = [] {
    std::uint64_t start = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&start), sizeof(start)) != 1) {
      start = static_cast<std::uint64_t>(std::random_device{}());
    }
    return 10'000'000'000'000ULL + start % 80'000'000'000'000ULL;
  }();
  return next.fetch_add(1);
}

constexpr char kWsAddressingNs[] = "http://www.w3.org/2005/08/addressing";
constexpr char kTAckMinorInvalid[] = "urn:nip:tack:result:minor:invalid-message";
constexpr char kTAckMinorSignature[] = "urn:nip:tack:result:minor:invalid-signature";
constexpr char kTAckMinorDestination[] = "urn:nip:tack:result:minor:wrong-destination";
constexpr char kTAckMinorReference[] = "urn:nip:tack:result:minor:no-input-reference";

// The SOAPAction header without its quotes.
std::string ActionOf(const HttpRequest& request) {
  std::string action = FindHeader(request, "soapaction").value_or("");
  if (action.size() >= 2 && action.front() == '"' && action.back() == '"') {
    action = action.substr(1, action.size() - 2);
  }
  return action;
}

// The fault-plan operation of a SOAPAction: "mhm", "post", "get", "confirm", or "".
std::string OperationOf(const std::string& action) {
  if (action == codecs::kGenAsyncPostAction) {
    return "post";
  }
  if (action == codecs::kGenAsyncGetAction) {
    return "get";
  }
  if (action == codecs::kGenAsyncConfirmAction) {
    return "confirm";
  }
  for (MhmOperation op :
       {MhmOperation::kSubscription, MhmOperation::kCancellation, MhmOperation::kClosure}) {
    if (action == codecs::MhmSoapAction(op)) {
      return "mhm";
    }
  }
  if (codecs::MediPrimaOperationForSoapAction(action)) {
    return "mediprima";
  }
  if (action == codecs::EAttestSoapAction(codecs::EAttestOperation::kSend) ||
      action == codecs::EAttestSoapAction(codecs::EAttestOperation::kCancel)) {
    return "eattest";
  }
  return "";
}

bool IsGenAsyncOperation(const std::string& operation) {
  return operation == "post" || operation == "get" || operation == "confirm";
}

// The WS-Addressing To of an envelope ("" when absent or unreadable).
std::string WsaTo(std::string_view envelope) {
  codecs::Problem problem;
  StatusOr<XmlDocPtr> doc = codecs::ParseUntrustedXml(envelope, codecs::XmlLimits{}, &problem);
  if (!doc.ok()) {
    return "";
  }
  const xmlNode* header =
      codecs::Child(xmlDocGetRootElement(doc->get()), codecs::kSoap11Ns, "Header");
  return codecs::TrimmedContent(codecs::Child(header, kWsAddressingNs, "To"));
}

std::string InputReferenceOf(const xmlDoc* body) {
  const xmlNode* root = xmlDocGetRootElement(const_cast<xmlDoc*>(body));
  return codecs::TrimmedContent(
      codecs::Child(codecs::Child(root, codecs::kGenAsyncNamespace, "CommonInput"),
                    codecs::kCinCommonNamespace, "InputReference"));
}

HttpResponse TAckHttp(const codecs::TAck& tack) {
  StatusOr<std::string> body = codecs::BuildPostResponse(tack);
  StatusOr<std::string> envelope =
      body.ok() ? codecs::BuildSoapResponse(*body) : StatusOr<std::string>(body.status());
  if (!envelope.ok()) {
    return ServerFault("the insurer cannot build its TAck");
  }
  return SoapResponse(200, std::move(envelope).value());
}

}  // namespace

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
  struct MailboxItem {
    codecs::MailboxMessageSpec spec;
    std::string hash;  // Detail/@HashValue of spec (what a confirm names)
    system_clock::time_point visible_at;
  };
  struct Mailbox {
    std::vector<MailboxItem> messages;
    std::vector<codecs::TAck> tacks;
  };
  struct UmaAttestation {
    std::string patient_key;
    std::string author_nihii;
    std::string start_date;
    std::string end_date;  // "" = open
    std::string cover;
    std::uint64_t sequence = 0;  // order of the Sends
  };
  struct EAttestation {
    std::string patient_key;
    std::string author_nihii;
    bool cancelled = false;
  };
  struct Insurer {
    std::string code;
    FaultPlan plan;
    std::map<std::string, FaultPlan> op_plans;                          // operation → scoped plan
    std::map<std::string, std::shared_ptr<StoredAnswer>> post_answers;  // by InputReference
    std::map<std::string, Mailbox> mailboxes;                           // by origin NIHII
    EfactDecision efact;                   // the decision for accepted posts
    std::deque<EfactDecision> next_efact;  // decisions of the next accepted posts, in order
    std::chrono::milliseconds return_delay{0};
    bool mailbox_tacks = false;
    std::uint64_t next_post = 1;
    SimulatorCounters counters;
    std::map<std::string, std::shared_ptr<StoredAnswer>> answers;  // by request @Id
    std::map<std::string, Enrolment> enrolments;                   // by decision reference
    std::map<std::string, std::string> active;  // patient key → decision reference
    std::uint64_t next_reference = 1;
    std::uint64_t next_output = 1;
    // MediPrima (UMA attestations and refusal injection).
    std::map<std::string, UmaAttestation> uma;  // by attestation number
    std::map<std::string, std::shared_ptr<StoredAnswer>> mediprima_answers;  // Send/Delete @Id
    std::optional<MediPrimaDecision> mediprima;    // the default decision (none = decide)
    std::deque<MediPrimaDecision> next_mediprima;  // the next ones, in order
    std::uint64_t next_uma = 1;
    // eAttest.
    std::map<std::string, EAttestation> attestations;                      // by invoicing number
    std::map<std::string, std::shared_ptr<StoredAnswer>> eattest_answers;  // by envelope @Id
    std::map<std::string, std::uint64_t> eattest_attempts;  // envelope @Id → last attemptNbr
    EAttestDecision eattest;
    std::deque<EAttestDecision> next_eattest;
    std::uint64_t next_invoicing = 1;
  };
  struct Decision {
    bool accepted = true;
    std::vector<MhmAnswerError> errors;
    std::string reference;
    std::function<void()> undo;  // reverts the state change (called under mu)
  };

  Options options;
  std::unique_ptr<codecs::MhmCodec> codec;
  std::unique_ptr<codecs::GenAsyncCodec> genasync;
  std::unique_ptr<codecs::MediPrimaCodec> mediprima;
  std::set<std::string> carmed_pool;  // keyed hashes of the consult beneficiaries
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
  std::map<std::uint64_t, gateway::Responder> held;  // by hold id
  std::uint64_t next_held = 1;
  bool stopping = false;
  std::vector<std::thread> threads;

  const Clock& clock() const { return *options.clock; }

  std::string PatientKey(const codecs::MhmRequest& request) const {
    const std::string id = !request.patient_ssin.empty()
                               ? "niss:" + request.patient_ssin
                               : "mut:" + request.mutuality + "/" + request.reg_nr_with_mut;
    return KeyOf(id);
  }

  std::string KeyOf(const std::string& id) const {
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

  // Under mu: the start-up plans and decisions of an insurer.
  void ApplyStartup(Insurer& ins) {
    ins.op_plans.clear();
    if (options.faults.operation.empty()) {
      ins.plan = options.faults;
    } else {
      ins.plan = FaultPlan();
      ins.op_plans[options.faults.operation] = options.faults;
    }
    ins.efact = options.efact;
    ins.next_efact.clear();
    ins.mediprima.reset();
    ins.next_mediprima.clear();
    ins.eattest = EAttestDecision();
    ins.next_eattest.clear();
    ins.return_delay = options.return_delay;
    ins.mailbox_tacks = options.mailbox_tacks;
  }

  // Under mu.
  static void SetPlan(Insurer& ins, const FaultPlan& plan) {
    if (plan.operation.empty()) {
      ins.plan = plan;
    } else {
      ins.op_plans[plan.operation] = plan;
    }
  }

  // Under mu: counts the request and picks the fault, consuming a "next N" counter: the plan
  // scoped to `operation` first, then the insurer's unscoped plan.
  FaultDecision PickFault(Insurer& ins, const std::string& operation) {
    if (!operation.empty()) {
      auto scoped = ins.op_plans.find(operation);
      if (scoped != ins.op_plans.end()) {
        const FaultDecision d = PickFrom(ins, scoped->second);
        if (d.kind != FaultKind::kNone) {
          return d;
        }
        FaultDecision general = PickFrom(ins, ins.plan);
        if (d.latency.count() > 0) {
          general.latency = d.latency;
        }
        return general;
      }
    }
    return PickFrom(ins, ins.plan);
  }

  FaultDecision PickFrom(Insurer& ins, FaultPlan& p) {
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

    const std::string operation = OperationOf(ActionOf(request));
    FaultDecision fault;
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = insurers.find(code);
      if (it == insurers.end() || (endpoint != "/mhm" && endpoint != "/genasync" &&
                                   endpoint != "/mediprima" && endpoint != "/eattest")) {
        return SimulatorReply{TextResponse(404, "no such insurer endpoint\n")};
      }
      ++it->second.counters.received;
      fault = PickFault(it->second, operation);
    }
    SimulatorReply reply;
    reply.delay = fault.latency;
    switch (fault.kind) {
      case FaultKind::kNone:
        if (operation == "mediprima") {
          reply.response = ProcessMediPrima(code, request);
        } else if (operation == "eattest") {
          reply.response = ProcessEAttest(code, request);
        } else if (IsGenAsyncOperation(operation)) {
          reply.response = ProcessGenAsync(code, operation, request);
        } else {
          reply.response = ProcessMhm(code, request);
        }
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

  // POST and a SOAP 1.1 Content-Type, else the (counted) HTTP error.
  std::optional<HttpResponse> CheckHttp(const std::string& code, const HttpRequest& request) {
    if (request.method != "POST") {
      HttpResponse r = TextResponse(405, "POST only\n");
      r.headers.emplace_back("allow", "POST");
      return Counted(code, std::move(r), false);
    }
    const std::string type = Lower(FindHeader(request, "content-type").value_or(""));
    if (type.rfind("text/xml", 0) != 0) {
      return Counted(code, TextResponse(415, "SOAP 1.1 needs Content-Type text/xml\n"), false);
    }
    return std::nullopt;
  }

  HttpResponse ProcessMhm(const std::string& code, const HttpRequest& request) {
    if (std::optional<HttpResponse> refused = CheckHttp(code, request)) {
      return *refused;
    }
    const std::string action = ActionOf(request);
    std::optional<MhmOperation> action_op;
    for (MhmOperation op :
         {MhmOperation::kSubscription, MhmOperation::kCancellation, MhmOperation::kClosure}) {
      if (action == codecs::MhmSoapAction(op)) {
        action_op = op;
      }
    }
    if (!action_op) {
      return Counted(code,
                     ClientFault("unknown SOAPAction: expected one of the MHM, genasync "
                                 "(post, get, confirm), MediPrima or eAttest actions"),
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

  // ---- Generic Async

  HttpResponse ProcessGenAsync(const std::string& code, const std::string& operation,
                               const HttpRequest& request) {
    if (std::optional<HttpResponse> refused = CheckHttp(code, request)) {
      return *refused;
    }
    codecs::SoapVerifyOptions soap_options;
    soap_options.intermediates = options.intermediates;
    StatusOr<codecs::VerifiedSoap> soap =
        codecs::VerifySoapRequest(request.body, options.trust, clock(), soap_options);
    if (!soap.ok()) {
      return Counted(code, ClientFault("WS-Security: " + soap.status().message()), true);
    }
    const xmlNode* root = xmlDocGetRootElement(soap->body.get());
    if (!codecs::IsElement(root, codecs::kGenAsyncNamespace, operation)) {
      return Counted(
          code,
          ClientFault("SOAPAction names the genasync " + operation + " but the body is not a " +
                      operation + " element of " + std::string(codecs::kGenAsyncNamespace)),
          true);
    }
    if (operation == "post") {
      return ProcessPost(code, request, *soap);
    }
    if (operation == "get") {
      return ProcessGet(code, *soap);
    }
    return ProcessConfirm(code, *soap);
  }

  HttpResponse ProcessPost(const std::string& code, const HttpRequest& request,
                           const codecs::VerifiedSoap& soap) {
    const std::string& body = soap.body_xml;
    const std::string input_reference = InputReferenceOf(soap.body.get());
    {
      std::lock_guard<std::mutex> lock(mu);
      ++insurers.at(code).counters.posts;
    }
    auto refuse = [&](const char* minor, const std::string& message) {
      codecs::TAck tack;
      tack.issuer = "urn:nip:issuer:io:" + code;
      tack.applies_to = codecs::TAckAppliesTo(input_reference);
      tack.result_major = std::string(codecs::kTAckFailure);
      tack.result_minor = minor;
      tack.result_message = message.substr(0, 400);
      tack.content = codecs::TAckContentFor(body, tack.result_major);
      {
        std::lock_guard<std::mutex> lock(mu);
        ++insurers.at(code).counters.posts_refused;
      }
      Log("insurer=" + code + " op=post ref=" + input_reference.substr(0, 64) +
          " outcome=refused minor=" + minor);
      return TAckHttp(tack);
    };

    codecs::ValidationReport report;
    StatusOr<codecs::GenAsyncPost> post = genasync->Decode(body, &report);
    if (!post.ok()) {
      std::string reason = "the post is not valid (" + post.status().message() + ")";
      int shown = 0;
      for (const codecs::Problem& p : report.problems) {
        if (p.severity != codecs::Severity::kError) {
          continue;
        }
        if (++shown > 5) {
          reason += "; …";
          break;
        }
        reason += "; " + p.code + " " + p.document + " " + p.path;
      }
      return refuse(kTAckMinorInvalid, reason);
    }
    StatusOr<codecs::VerifiedSignature> xades =
        codecs::VerifyGenAsyncPost(body, options.trust, clock());
    if (!xades.ok()) {
      return refuse(kTAckMinorSignature, "Xades-t: " + xades.status().message());
    }
    const std::string to = WsaTo(request.body);
    const std::string expected_to = std::string(codecs::kGenAsyncDestinationPrefix) + code;
    if (!to.empty() && to != expected_to) {
      return refuse(kTAckMinorDestination,
                    "the WS-Addressing To is not " + expected_to + " (this insurer)");
    }
    if (post->destination != code) {
      return refuse(kTAckMinorDestination,
                    "the file's invoices are for insurer " + post->destination + ", not " + code);
    }
    if (input_reference.empty()) {
      return refuse(kTAckMinorReference, "the post has no CommonInput/InputReference");
    }

    std::shared_ptr<StoredAnswer> entry;
    EfactDecision decision;
    std::uint64_t n = 0;
    {
      std::unique_lock<std::mutex> lock(mu);
      Insurer& ins = insurers.at(code);
      auto found = ins.post_answers.find(input_reference);
      if (found != ins.post_answers.end()) {
        std::shared_ptr<StoredAnswer> stored = found->second;
        answer_ready.wait(lock, [&stored] { return stored->ready; });
        ++ins.counters.post_duplicates;
        Log("insurer=" + code + " op=post ref=" + input_reference.substr(0, 64) + " duplicate");
        return stored->response;
      }
      entry = std::make_shared<StoredAnswer>();
      ins.post_answers[input_reference] = entry;
      if (!ins.next_efact.empty()) {
        decision = ins.next_efact.front();
        ins.next_efact.pop_front();
      } else {
        decision = ins.efact;
      }
      n = ins.next_post++;
    }

    codecs::TAck tack;
    tack.issuer = "urn:nip:issuer:io:" + code;
    tack.applies_to = codecs::TAckAppliesTo(input_reference);
    tack.result_major = std::string(codecs::kTAckSuccess);
    tack.reference = code + "-TACK-" + std::to_string(n);
    tack.id = "_tack-" + code + "-" + std::to_string(n);
    tack.content = codecs::TAckContentFor(body, tack.result_major);
    HttpResponse response = TAckHttp(tack);
    MailboxItem item;
    item.spec.message_name = post->message_name;
    item.spec.input_reference = input_reference;
    item.spec.output_reference = code + "-RET-" + std::to_string(n);
    item.spec.nip_reference = "SIM-" + item.spec.output_reference;
    item.spec.blob_id = "_ret-" + code + "-" + std::to_string(n);
    StatusOr<std::string> content = codecs::BuildEfactReturn(
        post->file, decision.kind, ReturnErrors(decision, post->file), NextReturnReference());
    StatusOr<std::string> hash = content.ok() ? codecs::MailboxContentHash(*content)
                                              : StatusOr<std::string>(content.status());

    std::lock_guard<std::mutex> lock(mu);
    Insurer& ins = insurers.at(code);
    if (response.status != 200 || !hash.ok()) {
      entry->response = ServerFault("the insurer cannot build its TAck or return file");
      entry->ready = true;
      auto mine = ins.post_answers.find(input_reference);
      if (mine != ins.post_answers.end() && mine->second == entry) {
        ins.post_answers.erase(mine);
      }
      answer_ready.notify_all();
      Log("insurer=" + code + " op=post internal error: " +
          (hash.ok() ? std::string("TAck") : hash.status().ToString()));
      return entry->response;
    }
    item.spec.content = std::move(content).value();
    item.hash = std::move(hash).value();
    item.visible_at = clock().Now() + ins.return_delay;
    Mailbox& box = ins.mailboxes[post->sender_nihii];
    box.messages.push_back(std::move(item));
    if (ins.mailbox_tacks) {
      box.tacks.push_back(tack);
    }
    entry->response = std::move(response);
    entry->ready = true;
    ++ins.counters.posts_accepted;
    answer_ready.notify_all();
    Log("insurer=" + code + " op=post ref=" + input_reference.substr(0, 64) +
        " outcome=accepted return=" + std::string(codecs::EfactReturnMessageType(decision.kind)));
    return entry->response;
  }

  HttpResponse ProcessGet(const std::string& code, const codecs::VerifiedSoap& soap) {
    StatusOr<codecs::GetRequest> get = codecs::ParseGetRequest(soap.body_xml, *options.schemas);
    if (!get.ok()) {
      return Counted(code, ClientFault("the get is not valid: " + get.status().message()), true);
    }
    std::vector<codecs::MailboxMessageSpec> specs;
    std::vector<codecs::TAck> tacks;
    {
      std::lock_guard<std::mutex> lock(mu);
      Insurer& ins = insurers.at(code);
      const system_clock::time_point now = clock().Now();
      auto box = ins.mailboxes.find(get->origin_nihii);
      if (box != ins.mailboxes.end()) {
        for (const MailboxItem& item : box->second.messages) {
          if (specs.size() >= get->max_messages) {
            break;
          }
          if (item.visible_at > now) {
            continue;
          }
          if (!get->message_names.empty() &&
              std::find(get->message_names.begin(), get->message_names.end(),
                        item.spec.message_name) == get->message_names.end()) {
            continue;
          }
          specs.push_back(item.spec);
        }
        if (get->include_tacks) {
          for (const codecs::TAck& t : box->second.tacks) {
            if (tacks.size() >= get->max_tacks) {
              break;
            }
            tacks.push_back(t);
          }
        }
      }
      ++ins.counters.gets;
      ins.counters.returns_delivered += specs.size();
      ins.counters.tacks_delivered += tacks.size();
    }
    StatusOr<std::string> built = codecs::BuildGetResponse(specs, tacks, *options.signer, clock());
    StatusOr<std::string> envelope =
        built.ok() ? codecs::BuildSoapResponse(*built) : StatusOr<std::string>(built.status());
    if (!envelope.ok()) {
      Log("insurer=" + code + " op=get internal error: " + envelope.status().ToString());
      return ServerFault("the insurer cannot sign its mailbox answer");
    }
    Log("insurer=" + code + " op=get messages=" + std::to_string(specs.size()) +
        " tacks=" + std::to_string(tacks.size()));
    return SoapResponse(200, std::move(envelope).value());
  }

  HttpResponse ProcessConfirm(const std::string& code, const codecs::VerifiedSoap& soap) {
    StatusOr<codecs::ConfirmRequest> confirm =
        codecs::ParseConfirmRequest(soap.body_xml, *options.schemas);
    if (!confirm.ok()) {
      return Counted(code, ClientFault("the confirm is not valid: " + confirm.status().message()),
                     true);
    }
    std::size_t messages = 0, tacks = 0;
    {
      std::lock_guard<std::mutex> lock(mu);
      Insurer& ins = insurers.at(code);
      ++ins.counters.confirms;
      auto box = ins.mailboxes.find(confirm->origin_nihii);
      if (box != ins.mailboxes.end()) {
        const std::set<std::string> hashes(confirm->msg_hash_values.begin(),
                                           confirm->msg_hash_values.end());
        const std::set<std::string> contents(confirm->tack_contents.begin(),
                                             confirm->tack_contents.end());
        messages = std::erase_if(box->second.messages, [&hashes](const MailboxItem& item) {
          return hashes.count(item.hash) != 0;
        });
        tacks = std::erase_if(box->second.tacks, [&contents](const codecs::TAck& t) {
          return contents.count(t.content) != 0;
        });
        if (box->second.messages.empty() && box->second.tacks.empty()) {
          ins.mailboxes.erase(box);
        }
      }
      ins.counters.returns_confirmed += messages;
      ins.counters.tacks_confirmed += tacks;
    }
    StatusOr<std::string> built = codecs::BuildConfirmResponse();
    StatusOr<std::string> envelope =
        built.ok() ? codecs::BuildSoapResponse(*built) : StatusOr<std::string>(built.status());
    if (!envelope.ok()) {
      return ServerFault("the insurer cannot build its confirm answer");
    }
    Log("insurer=" + code + " op=confirm messages=" + std::to_string(messages) +
        " tacks=" + std::to_string(tacks));
    return SoapResponse(200, std::move(envelope).value());
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

  // MediPrima and eAttest (defined below the class).
  HttpResponse ProcessMediPrima(const std::string& code, const HttpRequest& request);
  HttpResponse AnswerMediPrima(const std::string& code, const codecs::MediPrimaRequest& request);
  HttpResponse ProcessEAttest(const std::string& code, const HttpRequest& request);
  std::optional<MediPrimaDecision> TakeMediPrimaDecision(Insurer& ins,
                                                         const std::string& operation);

  HttpResponse Control(const HttpRequest& request, std::string_view path);
  Status SetEfact(const EfactControl& control);
  Status SetMediPrima(const MediPrimaControl& control);
  Status SetEAttest(const EAttestControl& control);
  void ResetState();
  SimulatorStats Stats() const;

  // Async handler.
  void WorkerLoop();
  void TimerLoop();
  void Dispatch(HttpRequest request, gateway::Responder respond);
  std::vector<gateway::Responder> TakeHeld();
  void ReleaseHeld(std::uint64_t id);
};

// ---- MediPrima and eAttest
// -----------------------------------------------------------------------

namespace {

constexpr char kPathCancelNumber[] =
    "/SendTransactionRequest/kmehrmessage/folder/transaction[cgacancellation]/item"
    "[invoicingnumber]/content/text";
constexpr char kDefaultMediPrimaCode[] = "SIM-REFUSED";
constexpr char kDefaultEAttestCode[] = "120";
constexpr char kSimulatedCpasCbe[] = "0403019261";

std::string_view MediPrimaShortName(codecs::MediPrimaOperation op) {
  switch (op) {
    case codecs::MediPrimaOperation::kSendAttestation:
      return "send";
    case codecs::MediPrimaOperation::kSearchAttestation:
      return "search";
    case codecs::MediPrimaOperation::kDeleteAttestation:
      return "delete";
    case codecs::MediPrimaOperation::kConsult:
      return "consult";
  }
  return "";
}

codecs::MediPrimaResponseSpec MediPrimaRefusal(const std::vector<std::string>& codes,
                                               const std::string& message) {
  codecs::MediPrimaResponseSpec spec;
  spec.status = std::string(codecs::kEhealthStatusRequester);
  spec.status_message = message;
  for (const std::string& code : codes) {
    spec.errors.push_back(codecs::MediPrimaAnswerError{code, "", ""});
  }
  return spec;
}

std::string Sha256Hex(std::string_view data, std::size_t hex_digits) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  std::string hex = Hex(md, sizeof(md));
  std::transform(hex.begin(), hex.end(), hex.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return hex.substr(0, hex_digits);
}

std::string IsoDate(std::chrono::year_month_day d) {
  char out[16];
  std::snprintf(out, sizeof(out), "%04d-%02u-%02u", static_cast<int>(d.year()),
                static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
  return out;
}

std::string AddDays(const std::string& iso, int days) {
  const std::optional<std::chrono::year_month_day> d = ParseIsoDate(iso);
  if (!d) {
    return iso;
  }
  return IsoDate(std::chrono::year_month_day{std::chrono::sys_days{*d} + std::chrono::days{days}});
}

std::string ChildText(const xmlNode* parent, std::string_view name) {
  return codecs::TrimmedContent(codecs::Child(parent, name));
}

// [a_start, a_end] and [b_start, b_end] overlap ("" end = open); ISO dates compare as strings.
bool Overlaps(const std::string& a_start, const std::string& a_end, const std::string& b_start,
              const std::string& b_end) {
  return (a_end.empty() || b_start.empty() || b_start <= a_end) &&
         (b_end.empty() || a_start <= b_end);
}

// What the simulator needs from an opened eAttest kmehr.
struct KmehrFacts {
  std::string patient;  // folder/patient/id[ID-PATIENT] (sensitive)
  std::string author;   // request/author/hcparty/id[ID-HCPARTY]
  std::string invoicing_number;
};

std::string IdOfType(const xmlNode* parent, std::string_view type) {
  for (const xmlNode* id : codecs::Children(parent, "id")) {
    if (codecs::Attr(id, "S") == type) {
      return codecs::TrimmedContent(id);
    }
  }
  return "";
}

KmehrFacts KmehrFactsOf(const xmlDoc* kmehr) {
  KmehrFacts facts;
  const xmlNode* root = xmlDocGetRootElement(const_cast<xmlDoc*>(kmehr));
  facts.author =
      IdOfType(codecs::Child(codecs::Child(codecs::Child(root, "request"), "author"), "hcparty"),
               "ID-HCPARTY");
  const xmlNode* folder = codecs::Child(codecs::Child(root, "kmehrmessage"), "folder");
  facts.patient = IdOfType(codecs::Child(folder, "patient"), "ID-PATIENT");
  for (const xmlNode* tx : codecs::Children(folder, "transaction")) {
    for (const xmlNode* cd : codecs::Children(tx, "cd")) {
      if (codecs::TrimmedContent(cd) != "cgacancellation") {
        continue;
      }
      if (const xmlNode* item = ItemOf(tx, "invoicingnumber")) {
        for (const xmlNode* content : codecs::Children(item, "content")) {
          if (const xmlNode* text = codecs::Child(content, "text")) {
            facts.invoicing_number = codecs::TrimmedContent(text);
          }
        }
      }
    }
  }
  return facts;
}

std::string ProblemsOf(const codecs::ValidationReport& report) {
  std::string reason;
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
  return reason;
}

}  // namespace

// Under mu: the injected decision for the next MediPrima request of `operation`, if any.
std::optional<MediPrimaDecision> InsurerSimulator::Impl::TakeMediPrimaDecision(
    Insurer& ins, const std::string& operation) {
  for (auto it = ins.next_mediprima.begin(); it != ins.next_mediprima.end(); ++it) {
    if (it->operation.empty() || it->operation == operation) {
      MediPrimaDecision d = *it;
      ins.next_mediprima.erase(it);
      return d;
    }
  }
  if (ins.mediprima &&
      (ins.mediprima->operation.empty() || ins.mediprima->operation == operation)) {
    return ins.mediprima;
  }
  return std::nullopt;
}

HttpResponse InsurerSimulator::Impl::ProcessMediPrima(const std::string& code,
                                                      const HttpRequest& request) {
  if (std::optional<HttpResponse> refused = CheckHttp(code, request)) {
    return *refused;
  }
  const std::optional<codecs::MediPrimaOperation> action_op =
      codecs::MediPrimaOperationForSoapAction(ActionOf(request));
  codecs::SoapVerifyOptions soap_options;
  soap_options.intermediates = options.intermediates;
  StatusOr<codecs::VerifiedSoap> soap =
      codecs::VerifySoapRequest(request.body, options.trust, clock(), soap_options);
  if (!soap.ok()) {
    return Counted(code, ClientFault("WS-Security: " + soap.status().message()), true);
  }
  const std::optional<codecs::MediPrimaOperation> root_op =
      codecs::MediPrimaCodec::OperationOf(xmlDocGetRootElement(soap->body.get()));
  if (!action_op) {  // cannot happen: Process dispatched on this action
    return Counted(code, ClientFault("unknown MediPrima SOAPAction"), true);
  }
  if (root_op != action_op) {
    return Counted(
        code,
        ClientFault("SOAPAction names MediPrima " +
                    std::string(codecs::MediPrimaOperationName(*action_op)) +
                    " but the body is not a " + codecs::MediPrimaRequestElement(*action_op)),
        true);
  }
  codecs::ValidationReport report;
  StatusOr<codecs::MediPrimaRequest> decoded = mediprima->Decode(soap->body_xml, "", &report);
  if (!decoded.ok()) {
    return Counted(code,
                   ClientFault("the MediPrima request is not valid (" + decoded.status().message() +
                               ")" + ProblemsOf(report)),
                   true);
  }
  return AnswerMediPrima(code, *decoded);
}

HttpResponse InsurerSimulator::Impl::AnswerMediPrima(const std::string& code,
                                                     const codecs::MediPrimaRequest& request) {
  using codecs::MediPrimaOperation;
  const std::string op(MediPrimaShortName(request.operation));
  const bool stored = (request.operation == MediPrimaOperation::kSendAttestation ||
                       request.operation == MediPrimaOperation::kDeleteAttestation) &&
                      !request.request_id.empty();
  const std::string patient = KeyOf("ssin:" + request.patient);
  const xmlNode* root = xmlDocGetRootElement(request.document.get());
  std::shared_ptr<StoredAnswer> entry;
  codecs::MediPrimaResponseSpec spec;
  std::function<void()> undo;
  std::string outcome;
  {
    std::unique_lock<std::mutex> lock(mu);
    Insurer& ins = insurers.at(code);
    switch (request.operation) {
      case MediPrimaOperation::kSendAttestation:
        ++ins.counters.mediprima_sends;
        break;
      case MediPrimaOperation::kSearchAttestation:
        ++ins.counters.mediprima_searches;
        break;
      case MediPrimaOperation::kDeleteAttestation:
        ++ins.counters.mediprima_deletes;
        break;
      case MediPrimaOperation::kConsult:
        ++ins.counters.mediprima_consults;
        break;
    }
    if (stored) {
      auto found = ins.mediprima_answers.find(request.request_id);
      if (found != ins.mediprima_answers.end()) {
        std::shared_ptr<StoredAnswer> answer = found->second;
        answer_ready.wait(lock, [&answer] { return answer->ready; });
        ++ins.counters.mediprima_duplicates;
        Log("insurer=" + code + " op=mediprima-" + op + " id=" + request.request_id.substr(0, 64) +
            " duplicate");
        return answer->response;
      }
      entry = std::make_shared<StoredAnswer>();
      ins.mediprima_answers[request.request_id] = entry;
    }

    const std::optional<MediPrimaDecision> injected = TakeMediPrimaDecision(ins, op);
    if (injected && injected->refused) {
      spec =
          MediPrimaRefusal(injected->codes.empty() ? std::vector<std::string>{kDefaultMediPrimaCode}
                                                   : injected->codes,
                           "refused (simulated)");
      outcome = "refused (injected)";
    } else {
      switch (request.operation) {
        case MediPrimaOperation::kSendAttestation: {
          // Deterministic: the same @Id always gets the same number.
          const std::string number =
              request.request_id.empty()
                  ? "UMA-" + code + "-N" + std::to_string(ins.next_uma)
                  : "UMA-" + code + "-" + Sha256Hex(code + "/" + request.request_id, 16);
          const xmlNode* validity = codecs::Child(root, "ValidityPeriod");
          UmaAttestation a;
          a.patient_key = patient;
          a.author_nihii = request.author_nihii;
          a.start_date = ChildText(validity, "StartDate");
          a.end_date = ChildText(validity, "EndDate");
          a.cover = ChildText(root, "MedicalCover");
          a.sequence = ins.next_uma++;
          ins.uma[number] = a;
          undo = [&ins, number] {
            ins.uma.erase(number);
          };
          spec.attestation_number = number;
          outcome = "accepted number=" + number;
          break;
        }
        case MediPrimaOperation::kSearchAttestation: {
          const xmlNode* criteria = codecs::Child(root, "Criteria");
          const xmlNode* period = codecs::Child(criteria, "Period");
          const std::string start = ChildText(period, "StartDate");
          const std::string end = ChildText(period, "EndDate");
          const std::string cover = ChildText(criteria, "MedicalCover");
          std::vector<std::pair<std::uint64_t, codecs::MediPrimaAttestationSpec>> found;
          for (const auto& [number, a] : ins.uma) {
            if (a.patient_key != patient) {
              continue;
            }
            if (!request.attestation_number.empty()
                    ? number != request.attestation_number
                    : (!Overlaps(a.start_date, a.end_date, start, end) ||
                       (!cover.empty() && a.cover != cover))) {
              continue;
            }
            found.emplace_back(a.sequence,
                               codecs::MediPrimaAttestationSpec{number, a.start_date, a.end_date,
                                                                a.cover, a.author_nihii});
          }
          std::sort(found.begin(), found.end(),
                    [](const auto& x, const auto& y) { return x.first < y.first; });
          for (auto& [seq, a] : found) {
            spec.attestations.push_back(std::move(a));
          }
          outcome = "found=" + std::to_string(spec.attestations.size());
          break;
        }
        case MediPrimaOperation::kDeleteAttestation: {
          auto it = ins.uma.find(request.attestation_number);
          if (it == ins.uma.end() || it->second.patient_key != patient) {
            spec = MediPrimaRefusal({"UMA-ATTESTATION-UNKNOWN"},
                                    "no such attestation for this beneficiary");
            outcome = "refused unknown";
          } else if (it->second.author_nihii != request.author_nihii) {
            spec = MediPrimaRefusal({"UMA-AUTHOR-MISMATCH"},
                                    "the attestation was sent by another physician");
            outcome = "refused author";
          } else {
            const std::string number = it->first;
            const UmaAttestation removed = it->second;
            ins.uma.erase(it);
            undo = [&ins, number, removed] {
              ins.uma.emplace(number, removed);
            };
            outcome = "accepted";
          }
          break;
        }
        case MediPrimaOperation::kConsult: {
          const UmaAttestation* latest = nullptr;
          std::string latest_number;
          for (const auto& [number, a] : ins.uma) {
            if (a.patient_key == patient && (latest == nullptr || a.sequence > latest->sequence)) {
              latest = &a;
              latest_number = number;
            }
          }
          if (latest == nullptr && carmed_pool.count(patient) == 0) {
            spec = MediPrimaRefusal({"CARMED-NOT-FOUND"}, "no medical card for this beneficiary");
            outcome = "refused unknown";
            break;
          }
          const xmlNode* by_ssin =
              codecs::Child(codecs::Child(root, "SelectionCriteria"), "BySsin");
          const xmlNode* period = codecs::Child(by_ssin, "Period");
          std::string start = ChildText(by_ssin, "ReferenceDate");
          std::string end;
          if (start.empty()) {
            start = ChildText(period, "StartDate");
            end = ChildText(period, "EndDate");
          }
          if (end.empty()) {
            end = AddDays(start, 364);
          }
          codecs::MediPrimaCarmedSpec card;
          card.carmed_number = "CARMED-" + code + "-" + patient.substr(0, 10);
          card.start_date = start;
          card.end_date = end;
          card.cpas_cbe = kSimulatedCpasCbe;
          card.agreement_number = "AGR-" + code + "-" + patient.substr(10, 8);
          card.attestation_number = latest_number;
          spec.carmeds.push_back(std::move(card));
          outcome = "found=1";
          break;
        }
      }
    }
  }

  StatusOr<std::string> built = codecs::BuildMediPrimaResponse(request, spec, clock());
  StatusOr<std::string> envelope =
      built.ok() ? codecs::BuildSoapResponse(*built) : StatusOr<std::string>(built.status());
  std::lock_guard<std::mutex> lock(mu);
  Insurer& ins = insurers.at(code);
  HttpResponse response;
  if (!envelope.ok()) {
    if (undo) {
      undo();
    }
    response = ServerFault("the MediPrima service cannot build its answer");
    Log("insurer=" + code + " op=mediprima-" + op +
        " internal error: " + envelope.status().ToString());
  } else {
    response = SoapResponse(200, std::move(envelope).value());
    if (spec.status != codecs::kEhealthStatusSuccess) {
      ++ins.counters.mediprima_refused;
    }
    std::string codes;
    for (const codecs::MediPrimaAnswerError& e : spec.errors) {
      codes += (codes.empty() ? "" : ",") + e.code;
    }
    Log("insurer=" + code + " op=mediprima-" + op + " id=" + request.request_id.substr(0, 64) +
        " outcome=" + outcome + (codes.empty() ? "" : " codes=" + codes));
  }
  if (entry) {
    entry->response = response;
    entry->ready = true;
    if (!envelope.ok()) {
      auto mine = ins.mediprima_answers.find(request.request_id);
      if (mine != ins.mediprima_answers.end() && mine->second == entry) {
        ins.mediprima_answers.erase(mine);
      }
    }
    answer_ready.notify_all();
  }
  return response;
}

HttpResponse InsurerSimulator::Impl::ProcessEAttest(const std::string& code,
                                                    const HttpRequest& request) {
  using codecs::EAttestOperation;
  if (std::optional<HttpResponse> refused = CheckHttp(code, request)) {
    return *refused;
  }
  const EAttestOperation action_op =
      ActionOf(request) == codecs::EAttestSoapAction(EAttestOperation::kSend)
          ? EAttestOperation::kSend
          : EAttestOperation::kCancel;
  codecs::SoapVerifyOptions soap_options;
  soap_options.intermediates = options.intermediates;
  StatusOr<codecs::VerifiedSoap> soap =
      codecs::VerifySoapRequest(request.body, options.trust, clock(), soap_options);
  if (!soap.ok()) {
    return Counted(code, ClientFault("WS-Security: " + soap.status().message()), true);
  }
  const std::optional<EAttestOperation> root_op =
      codecs::EAttestCodec::OperationOf(xmlDocGetRootElement(soap->body.get()));
  if (root_op != action_op) {
    return Counted(code,
                   ClientFault("SOAPAction names eAttest " +
                               std::string(codecs::EAttestOperationName(action_op)) +
                               " but the body is not a " +
                               std::string(codecs::EAttestOperationName(action_op)) +
                               "Request of " + std::string(codecs::kEAttestNamespace)),
                   true);
  }
  StatusOr<codecs::OpenedAttestation> opened = codecs::OpenAtInsurer(
      soap->body_xml, *options.schemas, *options.signer, options.trust, clock());
  if (!opened.ok()) {
    return Counted(code, ClientFault("eAttest: " + opened.status().message().substr(0, 400)), true);
  }
  const KmehrFacts facts = KmehrFactsOf(opened->kmehr.get());
  const std::string patient = KeyOf("ssin:" + facts.patient);
  const std::string op = action_op == EAttestOperation::kSend ? "send" : "cancel";
  auto error = [this](const std::string& code_value, const char* fallback_path) {
    codecs::EAttestAnswerError e;
    e.code = code_value;
    auto it = options.eattest_errors.find(code_value);
    if (it != options.eattest_errors.end()) {
      e.url = it->second.path;
      e.description = it->second.description;
    } else {
      e.url = fallback_path;
    }
    return e;
  };

  std::shared_ptr<StoredAnswer> entry;
  codecs::EAttestResponseSpec spec;
  spec.insurer_code = code;
  std::function<void()> undo;
  {
    std::unique_lock<std::mutex> lock(mu);
    Insurer& ins = insurers.at(code);
    ++(action_op == EAttestOperation::kSend ? ins.counters.eattest_sends
                                            : ins.counters.eattest_cancels);
    const std::uint64_t attempt =
        opened->attempt_nbr > 0 ? static_cast<std::uint64_t>(opened->attempt_nbr) : 0;
    ins.counters.eattest_last_attempt = attempt;
    ins.eattest_attempts[opened->envelope_id] = attempt;
    const std::string answer_key = op + "/" + opened->envelope_id;
    auto found = ins.eattest_answers.find(answer_key);
    if (found != ins.eattest_answers.end()) {
      std::shared_ptr<StoredAnswer> answer = found->second;
      answer_ready.wait(lock, [&answer] { return answer->ready; });
      ++ins.counters.eattest_duplicates;
      Log("insurer=" + code + " op=eattest-" + op + " id=" + opened->envelope_id.substr(0, 64) +
          " attempt=" + std::to_string(attempt) + " duplicate");
      return answer->response;
    }
    entry = std::make_shared<StoredAnswer>();
    ins.eattest_answers[answer_key] = entry;
    if (action_op == EAttestOperation::kSend) {
      EAttestDecision decision = ins.eattest;
      if (!ins.next_eattest.empty()) {
        decision = ins.next_eattest.front();
        ins.next_eattest.pop_front();
      }
      if (decision.refused) {
        spec.accepted = false;
        for (const std::string& c : decision.codes.empty()
                                        ? std::vector<std::string>{kDefaultEAttestCode}
                                        : decision.codes) {
          spec.errors.push_back(error(c, ""));
        }
      } else {
        const std::string number = code + "." + std::to_string(ins.next_invoicing++);
        ins.attestations[number] = EAttestation{patient, facts.author, false};
        undo = [&ins, number] {
          ins.attestations.erase(number);
        };
        spec.invoicing_number = number;
      }
    } else {
      auto it = ins.attestations.find(facts.invoicing_number);
      if (it == ins.attestations.end() || it->second.patient_key != patient) {
        spec.accepted = false;
        spec.errors.push_back(error("244", kPathCancelNumber));
      } else if (it->second.cancelled) {
        spec.accepted = false;
        spec.errors.push_back(error("240", kPathCancelNumber));
      } else if (it->second.author_nihii != facts.author) {
        spec.accepted = false;
        spec.errors.push_back(error("245", kPathCancelNumber));
      } else {
        it->second.cancelled = true;
        undo = [&ins, number = it->first] {
          auto again = ins.attestations.find(number);
          if (again != ins.attestations.end()) {
            again->second.cancelled = false;
          }
        };
      }
    }
  }

  StatusOr<std::string> built =
      codecs::BuildAttestationResponse(*opened, spec, *options.signer, *options.schemas, clock());
  StatusOr<std::string> envelope =
      built.ok() ? codecs::BuildSoapResponse(*built) : StatusOr<std::string>(built.status());
  std::lock_guard<std::mutex> lock(mu);
  Insurer& ins = insurers.at(code);
  if (!envelope.ok()) {
    if (undo) {
      undo();
    }
    entry->response = ServerFault("the insurer cannot seal its eAttest answer");
    entry->ready = true;
    auto mine = ins.eattest_answers.find(op + "/" + opened->envelope_id);
    if (mine != ins.eattest_answers.end() && mine->second == entry) {
      ins.eattest_answers.erase(mine);
    }
    answer_ready.notify_all();
    Log("insurer=" + code + " op=eattest-" + op +
        " internal error: " + envelope.status().ToString());
    return entry->response;
  }
  entry->response = SoapResponse(200, std::move(envelope).value());
  entry->ready = true;
  ++(spec.accepted ? ins.counters.eattest_accepted : ins.counters.eattest_refused);
  answer_ready.notify_all();
  std::string codes;
  for (const codecs::EAttestAnswerError& e : spec.errors) {
    codes += (codes.empty() ? "" : ",") + e.code;
  }
  Log("insurer=" + code + " op=eattest-" + op + " id=" + opened->envelope_id.substr(0, 64) +
      " attempt=" + std::to_string(opened->attempt_nbr) +
      " outcome=" + (spec.accepted ? "accepted" : "refused") + " codes=" + codes);
  return entry->response;
}

SimulatorStats InsurerSimulator::Impl::Stats() const {
  std::lock_guard<std::mutex> lock(mu);
  SimulatorStats stats;
  for (const std::string& code : order) {
    const Insurer& ins = insurers.at(code);
    SimulatorCounters c = ins.counters;
    c.mailbox_depth = 0;
    for (const auto& [origin, box] : ins.mailboxes) {
      c.mailbox_depth += box.messages.size();
      if (!box.messages.empty() || !box.tacks.empty()) {
        stats.mailboxes.push_back(
            MailboxDepth{code, origin, box.messages.size(), box.tacks.size()});
      }
    }
    stats.by_insurer.emplace_back(code, c);
    stats.eattest_attempts[code] = ins.eattest_attempts;
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
    ins.post_answers.clear();
    ins.mailboxes.clear();
    ins.uma.clear();
    ins.mediprima_answers.clear();
    ins.next_uma = 1;
    ins.attestations.clear();
    ins.eattest_answers.clear();
    ins.eattest_attempts.clear();
    ins.next_invoicing = 1;
    ins.counters = SimulatorCounters();
    ApplyStartup(ins);
    ins.next_reference = 1;
    ins.next_output = 1;
    ins.next_post = 1;
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
      by[code]["mailboxes"] = nlohmann::ordered_json::object();
    }
    for (const MailboxDepth& m : stats.mailboxes) {
      by[m.insurer]["mailboxes"][m.origin] = {{"messages", m.messages}, {"tacks", m.tacks}};
    }
    for (const auto& [code, attempts] : stats.eattest_attempts) {
      nlohmann::ordered_json a = nlohmann::ordered_json::object();
      for (const auto& [id, n] : attempts) {
        a[id] = n;
      }
      by[code]["eattest"]["attempts"] = a;
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
        const Insurer& ins = insurers.at(code);
        j[code] = nlohmann::ordered_json::parse(FaultPlanJson(ins.plan, now));
        if (!ins.op_plans.empty()) {
          nlohmann::ordered_json scoped = nlohmann::ordered_json::object();
          for (const auto& [operation, plan] : ins.op_plans) {
            scoped[operation] = nlohmann::ordered_json::parse(FaultPlanJson(plan, now));
          }
          j[code]["by_operation"] = scoped;
        }
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
        SetPlan(ins, *plan);
      }
    }
    nlohmann::ordered_json j;
    j["insurer"] = scope.empty() ? nlohmann::ordered_json("*") : nlohmann::ordered_json(scope);
    j["plan"] = nlohmann::ordered_json::parse(FaultPlanJson(*plan, now));
    return JsonResponse(200, j);
  }
  if (path == "/control/efact") {
    if (request.method == "GET") {
      nlohmann::ordered_json j = nlohmann::ordered_json::object();
      std::lock_guard<std::mutex> lock(mu);
      for (const std::string& code : order) {
        const Insurer& ins = insurers.at(code);
        nlohmann::ordered_json e = EfactDecisionJson(ins.efact);
        nlohmann::ordered_json next = nlohmann::ordered_json::array();
        for (const EfactDecision& d : ins.next_efact) {
          next.push_back(EfactDecisionJson(d));
        }
        e["next"] = next;
        e["return_delay_ms"] = ins.return_delay.count();
        e["mailbox_tacks"] = ins.mailbox_tacks;
        j[code] = e;
      }
      return JsonResponse(200, j);
    }
    if (request.method != "POST") {
      return TextResponse(405, "GET or POST\n");
    }
    StatusOr<EfactControl> control = ParseEfactControl(request.body);
    if (!control.ok()) {
      return JsonResponse(400, {{"error", control.status().message()}});
    }
    if (Status set = SetEfact(*control); !set.ok()) {
      return JsonResponse(400, {{"error", set.message()}});
    }
    nlohmann::ordered_json j;
    j["insurer"] = control->insurer.empty() ? nlohmann::ordered_json("*")
                                            : nlohmann::ordered_json(control->insurer);
    if (control->decision) {
      j["decision"] = EfactDecisionJson(*control->decision);
      j["next"] = control->next;
    }
    return JsonResponse(200, j);
  }
  if (path == "/control/mediprima" || path == "/control/eattest") {
    const bool mp = path == "/control/mediprima";
    if (request.method == "GET") {
      nlohmann::ordered_json j = nlohmann::ordered_json::object();
      std::lock_guard<std::mutex> lock(mu);
      for (const std::string& code : order) {
        const Insurer& ins = insurers.at(code);
        nlohmann::ordered_json e;
        nlohmann::ordered_json next = nlohmann::ordered_json::array();
        if (mp) {
          auto json_of = [](const MediPrimaDecision& d) {
            nlohmann::ordered_json x;
            x["decision"] = d.refused ? "refused" : "accepted";
            x["codes"] = d.codes;
            x["operation"] = d.operation.empty() ? "*" : d.operation;
            return x;
          };
          e["default"] = ins.mediprima ? json_of(*ins.mediprima) : nlohmann::ordered_json(nullptr);
          for (const MediPrimaDecision& d : ins.next_mediprima) {
            next.push_back(json_of(d));
          }
          e["attestations"] = ins.uma.size();
        } else {
          auto json_of = [](const EAttestDecision& d) {
            nlohmann::ordered_json x;
            x["decision"] = d.refused ? "refused" : "accepted";
            x["codes"] = d.codes;
            return x;
          };
          e["default"] = json_of(ins.eattest);
          for (const EAttestDecision& d : ins.next_eattest) {
            next.push_back(json_of(d));
          }
          e["attestations"] = ins.attestations.size();
        }
        e["next"] = next;
        j[code] = e;
      }
      return JsonResponse(200, j);
    }
    if (request.method != "POST") {
      return TextResponse(405, "GET or POST\n");
    }
    std::string insurer;
    std::uint64_t next = 0;
    bool has_decision = false;
    Status set = Status::Ok();
    if (mp) {
      StatusOr<MediPrimaControl> control = ParseMediPrimaControl(request.body);
      if (!control.ok()) {
        return JsonResponse(400, {{"error", control.status().message()}});
      }
      set = SetMediPrima(*control);
      insurer = control->insurer;
      next = control->next;
      has_decision = control->decision.has_value();
    } else {
      StatusOr<EAttestControl> control = ParseEAttestControl(request.body, &options.eattest_errors);
      if (!control.ok()) {
        return JsonResponse(400, {{"error", control.status().message()}});
      }
      set = SetEAttest(*control);
      insurer = control->insurer;
      next = control->next;
      has_decision = control->decision.has_value();
    }
    if (!set.ok()) {
      return JsonResponse(400, {{"error", set.message()}});
    }
    nlohmann::ordered_json j;
    j["insurer"] = insurer.empty() ? nlohmann::ordered_json("*") : nlohmann::ordered_json(insurer);
    j["decision_set"] = has_decision;
    j["next"] = next;
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

Status InsurerSimulator::Impl::SetEfact(const EfactControl& control) {
  std::lock_guard<std::mutex> lock(mu);
  if (!control.insurer.empty() && insurers.find(control.insurer) == insurers.end()) {
    return Status::Invalid("unknown insurer '" + control.insurer.substr(0, 8) + "'");
  }
  for (auto& [code, ins] : insurers) {
    if (!control.insurer.empty() && control.insurer != code) {
      continue;
    }
    if (control.decision) {
      if (control.next == 0) {
        ins.efact = *control.decision;
        ins.next_efact.clear();
      } else {
        for (std::uint64_t i = 0; i < control.next; ++i) {
          ins.next_efact.push_back(*control.decision);
        }
      }
    }
    if (control.return_delay) {
      ins.return_delay = *control.return_delay;
    }
    if (control.mailbox_tacks) {
      ins.mailbox_tacks = *control.mailbox_tacks;
    }
  }
  return Status::Ok();
}

Status InsurerSimulator::Impl::SetMediPrima(const MediPrimaControl& control) {
  std::lock_guard<std::mutex> lock(mu);
  if (!control.insurer.empty() && insurers.find(control.insurer) == insurers.end()) {
    return Status::Invalid("unknown insurer '" + control.insurer.substr(0, 8) + "'");
  }
  for (auto& [code, ins] : insurers) {
    if ((!control.insurer.empty() && control.insurer != code) || !control.decision) {
      continue;
    }
    if (control.next == 0) {
      if (control.decision->refused) {
        ins.mediprima = *control.decision;
      } else {
        ins.mediprima.reset();
      }
      ins.next_mediprima.clear();
    } else {
      for (std::uint64_t i = 0; i < control.next; ++i) {
        ins.next_mediprima.push_back(*control.decision);
      }
    }
  }
  return Status::Ok();
}

Status InsurerSimulator::Impl::SetEAttest(const EAttestControl& control) {
  std::lock_guard<std::mutex> lock(mu);
  if (!control.insurer.empty() && insurers.find(control.insurer) == insurers.end()) {
    return Status::Invalid("unknown insurer '" + control.insurer.substr(0, 8) + "'");
  }
  for (auto& [code, ins] : insurers) {
    if ((!control.insurer.empty() && control.insurer != code) || !control.decision) {
      continue;
    }
    if (control.next == 0) {
      ins.eattest = *control.decision;
      ins.next_eattest.clear();
    } else {
      for (std::uint64_t i = 0; i < control.next; ++i) {
        ins.next_eattest.push_back(*control.decision);
      }
    }
  }
  return Status::Ok();
}

std::vector<gateway::Responder> InsurerSimulator::Impl::TakeHeld() {
  std::lock_guard<std::mutex> lock(async_mu);
  std::vector<gateway::Responder> out;
  for (auto& [id, respond] : held) {
    out.push_back(std::move(respond));
  }
  held.clear();
  return out;
}

// Closes one held request when its hold expires (unless Reset or Shutdown did already).
void InsurerSimulator::Impl::ReleaseHeld(std::uint64_t id) {
  gateway::Responder respond;
  {
    std::lock_guard<std::mutex> lock(async_mu);
    auto it = held.find(id);
    if (it == held.end()) {
      return;
    }
    respond = std::move(it->second);
    held.erase(it);
  }
  HttpResponse close;
  close.close_without_response = true;
  respond(std::move(close));
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
            const std::uint64_t id = next_held++;
            held.emplace(id, std::move(respond));
            timers.emplace(std::chrono::steady_clock::now() + options.timeout_hold,
                           [this, id] { ReleaseHeld(id); });
            timers_cv.notify_one();
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
  }
  if (!IsFaultOperation(options.faults.operation)) {
    return Status::Invalid("unknown fault operation '" + options.faults.operation.substr(0, 16) +
                           "'");
  }
  if (options.timeout_hold.count() <= 0) {
    return Status::Invalid("the timeout hold must be positive");
  }
  {
    nlohmann::json efact = {
        {"decision", std::string(codecs::EfactReturnMessageType(options.efact.kind))},
        {"codes", options.efact.codes}};
    if (StatusOr<EfactControl> checked = ParseEfactControl(efact.dump()); !checked.ok()) {
      return Status::Invalid("eFact decision: " + checked.status().message());
    }
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
  impl->genasync = std::make_unique<codecs::GenAsyncCodec>(*options.schemas);
  impl->mediprima = std::make_unique<codecs::MediPrimaCodec>(*options.schemas, *options.clock);
  for (const std::string& ssin : options.mediprima_beneficiaries) {
    impl->carmed_pool.insert(impl->KeyOf("ssin:" + ssin));
  }
  options.mediprima_beneficiaries.clear();  // only the hashes are kept
  const unsigned workers = std::max(1U, options.workers);
  impl->options = std::move(options);
  for (auto& [code, ins] : impl->insurers) {
    impl->ApplyStartup(ins);
  }
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
  if (!IsFaultOperation(plan.operation)) {
    return Status::Invalid("unknown fault operation '" + plan.operation.substr(0, 16) + "'");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (!insurer.empty() && impl_->insurers.find(insurer) == impl_->insurers.end()) {
    return Status::Invalid("unknown insurer '" + insurer.substr(0, 8) + "'");
  }
  for (auto& [code, ins] : impl_->insurers) {
    if (insurer.empty() || insurer == code) {
      Impl::SetPlan(ins, plan);
    }
  }
  return Status::Ok();
}

Status InsurerSimulator::SetEfact(const EfactControl& control) {
  return impl_->SetEfact(control);
}

Status InsurerSimulator::SetMediPrima(const MediPrimaControl& control) {
  return impl_->SetMediPrima(control);
}

Status InsurerSimulator::SetEAttest(const EAttestControl& control) {
  return impl_->SetEAttest(control);
}

std::size_t InsurerSimulator::HeldRequests() const {
  std::lock_guard<std::mutex> lock(impl_->async_mu);
  return impl_->held.size();
}

}  // namespace psl::simulator
