#include "gateway/routing.h"

#include <utility>

namespace psl::gateway {
namespace {

constexpr const char* kMediPrima = "690";  // DOMAIN.md §1.2: MediPrima/AMU destination
constexpr const char* kCaami = "600";      // CAAMI-HZIV, which handles AMU on behalf of SPP IS

bool IsMutualityCode(const std::string& code) {
  return code.size() == 3 && code[0] >= '1' && code[0] <= '9' && code[1] >= '0' && code[1] <= '9' &&
         code[2] >= '0' && code[2] <= '9';
}

}  // namespace

RoutingTable::RoutingTable(const Config& config, MemberRegistryLookup registry,
                           DestinationRule rule)
    : routing_(config.routing), registry_(std::move(registry)), rule_(std::move(rule)) {
  for (const auto& [key, insurer] : config.insurers)
    insurers_[key] = insurer;
}

std::optional<std::string> RoutingTable::UnionOf(const std::string& mutuality) {
  if (!IsMutualityCode(mutuality))
    return std::nullopt;
  return std::string(1, mutuality[0]) + "00";
}

StatusOr<Route> RoutingTable::ToInsurer(const std::string& key, const RoutingRequest& request,
                                        Route route) const {
  auto insurer = insurers_.find(key);
  if (insurer == insurers_.end())
    return Status::Invalid("insurer cannot be determined: no [insurers." + key + "] is configured");
  std::string url = InsurerUrl(insurer->second, request.kind, request.service);
  if (url.empty())
    return Status::Invalid("insurer cannot be determined: [insurers." + key + "] has no " +
                           ServiceUrlKey(request.kind, request.service));
  route.insurer = key;
  route.url = std::move(url);
  return route;
}

StatusOr<Route> RoutingTable::Resolve(const RoutingRequest& request) const {
  StatusOr<Route> direct = ResolveDirect(request);
  if (direct.ok() || routing_.hub.empty() || direct.status().code() != StatusCode::kInvalid) {
    return direct;
  }
  // DESIGN.md "Route": the hub is the fallback when neither the message nor the member registry
  // leads to a configured insurer.
  Route route;
  route.source = "hub";
  return ToInsurer(routing_.hub, request, std::move(route));
}

StatusOr<Route> RoutingTable::ResolveDirect(const RoutingRequest& request) const {
  Route route;
  route.mutuality = request.mutuality;
  route.source = "message";
  if (request.kind == MessageKind::kAmu) {
    // AMU patients are not insured: MediPrima pays through CAAMI-HZIV whatever the message says.
    return ToInsurer(insurers_.count(kMediPrima) ? kMediPrima : kCaami, request, std::move(route));
  }
  if (route.mutuality.empty() && routing_.member_registry && registry_ &&
      !request.patient_pseudonym.empty()) {
    StatusOr<std::optional<std::string>> learned = registry_(request.patient_pseudonym);
    if (!learned.ok()) {
      return Status::Unavailable("the member registry cannot be read now");
    }
    if (learned->has_value()) {
      route.mutuality = **learned;
      route.source = "member-registry";
    }
  }
  if (route.mutuality.empty())
    return Status::Invalid(
        "insurer cannot be determined: the message names no mutuality and the member registry " +
        std::string(routing_.member_registry && registry_ ? "does not know the patient"
                                                          : "is not consulted") +
        "; give Routing/CareReceiver/Mutuality");
  if (!IsMutualityCode(route.mutuality))
    return Status::Invalid(
        "insurer cannot be determined: the mutuality code is not 3 digits from 100 to 999");

  std::string code = route.mutuality;
  if (rule_) {
    if (auto rewritten = rule_(code, request)) {
      if (!IsMutualityCode(*rewritten))
        return Status::Internal("destination rule returned a code that is not 3 digits");
      code = *rewritten;
    }
  }
  if (insurers_.count(code))
    return ToInsurer(code, request, std::move(route));
  const std::string union_code = *UnionOf(code);
  if (!routing_.mutuality_to_union)
    return Status::Invalid("insurer cannot be determined: no [insurers." + code +
                           "] is configured and [routing] mutuality_to_union is off");
  if (!insurers_.count(union_code))
    return Status::Invalid("insurer cannot be determined: neither [insurers." + code +
                           "] nor its union [insurers." + union_code + "] is configured");
  return ToInsurer(union_code, request, std::move(route));
}

}  // namespace psl::gateway
