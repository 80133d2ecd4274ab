#include "gateway/routing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>

namespace psl::gateway {
namespace {

using ::testing::HasSubstr;

InsurerConfig Insurer(const std::string& key, std::map<MessageKind, std::string> endpoints) {
  InsurerConfig insurer;
  insurer.key = key;
  insurer.endpoints = std::move(endpoints);
  return insurer;
}

// Unions 100 and 300 (all kinds), mutuality 319 with its own enrolment endpoint, and 600.
Config TableConfig() {
  Config config;
  config.insurers["100"] = Insurer("100", {{MessageKind::kEnrolment, "https://mc/mhm"},
                                           {MessageKind::kClaim, "https://mc/efact"}});
  config.insurers["300"] = Insurer("300", {{MessageKind::kEnrolment, "https://sol/mhm"},
                                           {MessageKind::kClaim, "https://sol/efact"}});
  config.insurers["319"] = Insurer("319", {{MessageKind::kEnrolment, "https://sol319/mhm"}});
  config.insurers["600"] = Insurer("600", {{MessageKind::kAmu, "https://caami/amu"}});
  return config;
}

RoutingRequest Enrolment(const std::string& mutuality, const std::string& pseudonym = "") {
  RoutingRequest request;
  request.kind = MessageKind::kEnrolment;
  request.mutuality = mutuality;
  request.patient_pseudonym = pseudonym;
  return request;
}

TEST(RoutingTableTest, UnionOfAMutualityIsItsFirstDigitTimesHundred) {
  EXPECT_EQ(RoutingTable::UnionOf("319"), "300");
  EXPECT_EQ(RoutingTable::UnionOf("101"), "100");
  EXPECT_EQ(RoutingTable::UnionOf("910"), "900");
  EXPECT_EQ(RoutingTable::UnionOf("690"), "600");
  EXPECT_EQ(RoutingTable::UnionOf("031"), std::nullopt);
  EXPECT_EQ(RoutingTable::UnionOf("rcam"), std::nullopt);
  EXPECT_EQ(RoutingTable::UnionOf("31"), std::nullopt);
}

TEST(RoutingTableTest, MutualityWithItsOwnTableGoesThere) {
  RoutingTable table(TableConfig());
  auto route = table.Resolve(Enrolment("319"));
  ASSERT_TRUE(route.ok()) << route.status().message();
  EXPECT_EQ(route->insurer, "319");
  EXPECT_EQ(route->url, "https://sol319/mhm");
  EXPECT_EQ(route->mutuality, "319");
  EXPECT_EQ(route->source, "message");
}

TEST(RoutingTableTest, MutualityWithoutItsOwnTableFallsBackToItsUnion) {
  RoutingTable table(TableConfig());
  auto route = table.Resolve(Enrolment("306"));
  ASSERT_TRUE(route.ok()) << route.status().message();
  EXPECT_EQ(route->insurer, "300");
  EXPECT_EQ(route->url, "https://sol/mhm");
  EXPECT_EQ(route->mutuality, "306");
}

TEST(RoutingTableTest, UnionFallbackCanBeSwitchedOff) {
  Config config = TableConfig();
  config.routing.mutuality_to_union = false;
  RoutingTable table(config);
  auto route = table.Resolve(Enrolment("306"));
  EXPECT_EQ(route.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(route.status().message(), HasSubstr("mutuality_to_union is off"));
  EXPECT_TRUE(table.Resolve(Enrolment("300")).ok());
}

TEST(RoutingTableTest, MutualityWithAnOwnTableButNoEndpointForTheKindIsNamedInTheError) {
  RoutingTable table(TableConfig());
  RoutingRequest claim = Enrolment("319");
  claim.kind = MessageKind::kClaim;
  auto route = table.Resolve(claim);
  EXPECT_EQ(route.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(route.status().message(), HasSubstr("[insurers.319] has no claim_url"));
}

TEST(RoutingTableTest, UnionNotConfiguredIsAnInvalidRequestNamingBothTables) {
  RoutingTable table(TableConfig());
  auto route = table.Resolve(Enrolment("501"));
  EXPECT_EQ(route.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(route.status().message(),
              HasSubstr("neither [insurers.501] nor its union [insurers.500]"));
}

TEST(RoutingTableTest, MalformedMutualityCodeIsInvalid) {
  RoutingTable table(TableConfig());
  for (const char* code : {"rcam", "31", "031", "3190"}) {
    auto route = table.Resolve(Enrolment(code));
    EXPECT_EQ(route.status().code(), StatusCode::kInvalid) << code;
    EXPECT_THAT(route.status().message(), HasSubstr("not 3 digits")) << code;
  }
}

TEST(RoutingTableTest, MemberRegistryAnswersWhenTheMessageNamesNoMutuality) {
  std::string asked;
  RoutingTable table(TableConfig(), [&asked](const std::string& pseudonym) {
    asked = pseudonym;
    return std::optional<std::string>("101");
  });
  auto route = table.Resolve(Enrolment("", "pseudo-1"));
  ASSERT_TRUE(route.ok()) << route.status().message();
  EXPECT_EQ(asked, "pseudo-1");
  EXPECT_EQ(route->insurer, "100");
  EXPECT_EQ(route->mutuality, "101");
  EXPECT_EQ(route->source, "member-registry");
}

TEST(RoutingTableTest, MutualityInTheMessageWinsOverTheMemberRegistry) {
  bool asked = false;
  RoutingTable table(TableConfig(), [&asked](const std::string&) {
    asked = true;
    return std::optional<std::string>("101");
  });
  auto route = table.Resolve(Enrolment("319", "pseudo-1"));
  ASSERT_TRUE(route.ok());
  EXPECT_EQ(route->insurer, "319");
  EXPECT_FALSE(asked);
}

TEST(RoutingTableTest, UnknownPatientWithoutMutualityCannotBeRouted) {
  RoutingTable table(TableConfig(),
                     [](const std::string&) { return std::optional<std::string>(); });
  auto route = table.Resolve(Enrolment("", "pseudo-2"));
  EXPECT_EQ(route.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(route.status().message(), HasSubstr("insurer cannot be determined"));
  EXPECT_THAT(route.status().message(), HasSubstr("does not know the patient"));
}

TEST(RoutingTableTest, AnUnreadableRegistryIsUnavailableNotUnroutable) {
  Config config = TableConfig();
  config.insurers["mycarenet"] =
      Insurer("mycarenet", {{MessageKind::kEnrolment, "https://hub/mhm"}});
  config.routing.hub = "mycarenet";  // not a reason to send it to the hub either
  RoutingTable table(config, [](const std::string&) -> StatusOr<std::optional<std::string>> {
    return Status::Unavailable("disk");
  });
  auto route = table.Resolve(Enrolment("", "pseudo-3"));
  EXPECT_EQ(route.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(table.Resolve(Enrolment("319", "pseudo-3")).ok());  // not asked: the message says
}

TEST(RoutingTableTest, RegistryIsNotAskedWhenSwitchedOff) {
  Config config = TableConfig();
  config.routing.member_registry = false;
  bool asked = false;
  RoutingTable table(config, [&asked](const std::string&) {
    asked = true;
    return std::optional<std::string>("101");
  });
  auto route = table.Resolve(Enrolment("", "pseudo-1"));
  EXPECT_EQ(route.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(route.status().message(), HasSubstr("is not consulted"));
  EXPECT_FALSE(asked);
}

TEST(RoutingTableTest, TheHubTakesWhatNoInsurerRouteResolves) {
  Config config = TableConfig();
  config.insurers["mycarenet"] =
      Insurer("mycarenet", {{MessageKind::kEnrolment, "https://hub/mhm"}});
  config.routing.hub = "mycarenet";
  RoutingTable table(config);
  auto direct = table.Resolve(Enrolment("319"));  // a configured union: no hub
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(direct->source, "message");
  EXPECT_NE(direct->insurer, "mycarenet");
  for (const char* code : {"", "999"}) {  // no mutuality; a union without a table
    auto route = table.Resolve(Enrolment(code));
    ASSERT_TRUE(route.ok()) << code;
    EXPECT_EQ(route->insurer, "mycarenet");
    EXPECT_EQ(route->url, "https://hub/mhm");
    EXPECT_EQ(route->source, "hub");
  }
  RoutingRequest claim = Enrolment("");
  claim.kind = MessageKind::kClaim;
  EXPECT_THAT(table.Resolve(claim).status().message(),
              HasSubstr("[insurers.mycarenet] has no claim_url"));
}

TEST(RoutingTableTest, AmuGoesToMediPrimaWhenConfiguredElseToCaami) {
  Config config = TableConfig();
  RoutingRequest amu;
  amu.kind = MessageKind::kAmu;
  {
    auto route = RoutingTable(config).Resolve(amu);
    ASSERT_TRUE(route.ok()) << route.status().message();
    EXPECT_EQ(route->insurer, "600");
    EXPECT_EQ(route->url, "https://caami/amu");
  }
  config.insurers["690"] = Insurer("690", {{MessageKind::kAmu, "https://mediprima/amu"}});
  amu.mutuality = "319";  // ignored: AMU patients are not insured by a mutuality
  auto route = RoutingTable(config).Resolve(amu);
  ASSERT_TRUE(route.ok()) << route.status().message();
  EXPECT_EQ(route->insurer, "690");
}

TEST(RoutingTableTest, DestinationRuleRewritesTheCodeBeforeLookup) {
  // The eFact Solidaris rule of DOMAIN.md §1.2, reduced to two codes.
  DestinationRule solidaris = [](const std::string& code,
                                 const RoutingRequest& request) -> std::optional<std::string> {
    if (request.kind != MessageKind::kClaim || code[0] != '3')
      return std::nullopt;
    if (code == "319")
      return "300";
    return request.sender_is_medical_house ? std::optional<std::string>("306") : std::nullopt;
  };
  RoutingTable table(TableConfig(), {}, solidaris);
  RoutingRequest claim = Enrolment("319");
  claim.kind = MessageKind::kClaim;
  auto route = table.Resolve(claim);
  ASSERT_TRUE(route.ok()) << route.status().message();
  EXPECT_EQ(route->insurer, "300");  // not [insurers.319], which has no claim_url
  EXPECT_EQ(route->mutuality, "319");
  // The enrolment of the same patient is untouched by the rule.
  EXPECT_EQ(table.Resolve(Enrolment("319"))->insurer, "319");
}

TEST(RoutingTableTest, ServicesRouteToTheirOwnUrls) {
  Config config = TableConfig();
  InsurerConfig mediprima = Insurer("690", {{MessageKind::kAmu, "https://mp/hcpfac_12"}});
  mediprima.mediprima_uma_url = "https://mp/UMA/v1";
  config.insurers["690"] = mediprima;
  config.insurers["300"].eattest_url = "https://mc/eAttest/v3";
  RoutingTable table(config);

  RoutingRequest uma;
  uma.kind = MessageKind::kAmu;
  uma.service = Service::kMediPrimaUma;
  StatusOr<Route> route = table.Resolve(uma);
  ASSERT_TRUE(route.ok()) << route.status().ToString();
  EXPECT_EQ(route->insurer, "690");
  EXPECT_EQ(route->url, "https://mp/UMA/v1");
  RoutingRequest consult = uma;
  consult.service = Service::kMediPrimaConsult;
  StatusOr<Route> no_consult = table.Resolve(consult);
  ASSERT_FALSE(no_consult.ok());
  EXPECT_THAT(no_consult.status().message(), HasSubstr("mediprima_consult_url"));
  uma.service = Service::kDefault;  // the AMU eFact post keeps amu_url
  EXPECT_EQ(table.Resolve(uma)->url, "https://mp/hcpfac_12");

  RoutingRequest eattest;
  eattest.kind = MessageKind::kClaim;
  eattest.service = Service::kEAttest;
  eattest.mutuality = "301";  // no table of its own: its union
  StatusOr<Route> claim = table.Resolve(eattest);
  ASSERT_TRUE(claim.ok()) << claim.status().ToString();
  EXPECT_EQ(claim->insurer, "300");
  EXPECT_EQ(claim->url, "https://mc/eAttest/v3");
  eattest.mutuality = "100";  // no eattest_url: no eAttest (never its claim_url)
  StatusOr<Route> no_eattest = table.Resolve(eattest);
  ASSERT_FALSE(no_eattest.ok());
  EXPECT_EQ(no_eattest.status().code(), StatusCode::kInvalid);
  EXPECT_THAT(no_eattest.status().message(), HasSubstr("eattest_url"));
}

}  // namespace
}  // namespace psl::gateway
