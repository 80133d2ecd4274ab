// Which insurer endpoint a message goes to (DOMAIN.md §1.3), decided from the configuration's
// [insurers.*] and [routing] tables:
//   1. AMU always goes to 690 (MediPrima, on behalf of CAAMI-HZIV) when configured, else to 600;
//   2. otherwise the mutuality code the message names, or failing that the one the member registry
//      learned for the patient's pseudonym (a hook, [routing] member_registry);
//   3. the mutuality's own [insurers.<code>] table when there is one, else its union
//      (first digit x 100) when [routing] mutuality_to_union allows it;
//   4. when none of that leads to a configured insurer, the hub route ([routing] hub, e.g. the
//      MyCareNet hub, which routes by itself), as DESIGN.md "Life of a message" 3 orders it.
// The URL is the chosen insurer's endpoint for the request's kind, or for its service
// (RoutingRequest::service: MediPrima UMA / consult, eAttest; config.h InsurerUrl); an insurer
// without it does not serve the request (422 naming the missing key).
// A destination hook may rewrite the mutuality code first (eFact's Solidaris rules, DOMAIN.md
// §1.2: 304, 305, ... -> 300, 306 for medical houses); the enrolment flow does not use it.
//
// Asio-free. A RoutingTable copies what it needs from the Config; Route() is const and
// thread-safe provided the hooks are.
#ifndef PSL_GATEWAY_ROUTING_H_
#define PSL_GATEWAY_ROUTING_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "base/status.h"
#include "gateway/config.h"

namespace psl::gateway {

// What the message tells about its destination. No patient value: the registry is asked by the
// keyed pseudonym of the NISS, never by the NISS.
struct RoutingRequest {
  MessageKind kind = MessageKind::kEnrolment;
  std::string mutuality;                 // 3-digit code from the message; "" when absent
  std::string patient_pseudonym;         // for the member registry; "" when unknown
  bool sender_is_medical_house = false;  // input to the destination hook (Solidaris 306)
  // The endpoint of the chosen insurer: its kind's URL, or a per-service one (MediPrima UMA /
  // consult, eAttest); an insurer without it does not serve the request.
  Service service = Service::kDefault;
};

struct Route {
  std::string insurer;    // the [insurers.<key>] chosen: a code ("100", "690") or the hub's name
  std::string mutuality;  // the mutuality code routing started from ("" for the hub route)
  std::string url;        // the endpoint for the request's kind
  std::string source;     // how it was decided: "hub", "message", "member-registry"
};

// pseudonym -> mutuality code, or nullopt when the registry has not learned this patient.
// kUnavailable when the registry cannot be read now (the request gets 503, not 422).
using MemberRegistryLookup =
    std::function<StatusOr<std::optional<std::string>>(const std::string&)>;
// (mutuality code, request) -> destination code to route to instead (e.g. 304 -> 300 for eFact),
// or nullopt to keep it.
using DestinationRule =
    std::function<std::optional<std::string>(const std::string&, const RoutingRequest&)>;

class RoutingTable {
 public:
  // `registry` and `rule` may be empty. When [routing] member_registry is false the registry is
  // never asked.
  explicit RoutingTable(const Config& config, MemberRegistryLookup registry = {},
                        DestinationRule rule = {});

  // The route, or kInvalid (HTTP 422) saying what was missing: no mutuality in the message and
  // none in the registry, a code that is not a 3-digit mutuality code, no insurer configured for
  // the code or its union, or an insurer without an endpoint for the kind.
  StatusOr<Route> Resolve(const RoutingRequest& request) const;

  // The union (federation) code of a 3-digit mutuality code: first digit x 100 ("319" -> "300").
  // nullopt when `mutuality` is not three digits starting with 1-9.
  static std::optional<std::string> UnionOf(const std::string& mutuality);

 private:
  StatusOr<Route> ResolveDirect(const RoutingRequest& request) const;  // steps 1-3
  StatusOr<Route> ToInsurer(const std::string& key, const RoutingRequest& request,
                            Route route) const;

  std::map<std::string, InsurerConfig> insurers_;  // by key (copies: the Config may go)
  RoutingConfig routing_;
  MemberRegistryLookup registry_;
  DestinationRule rule_;
};

}  // namespace psl::gateway

#endif  // PSL_GATEWAY_ROUTING_H_
