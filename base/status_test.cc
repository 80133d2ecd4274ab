#include "base/status.h"

#include <gtest/gtest.h>

#include "base/status_http.h"

namespace psl {
namespace {

StatusOr<int> Half(int n) {
  if (n % 2 != 0)
    return Status::Invalid("odd");
  return n / 2;
}

Status Chain(int n) {
  PSL_RETURN_IF_ERROR(Half(n).status());
  return Status::Ok();
}

TEST(StatusTest, OkByDefaultAndCarriesCodeOtherwise) {
  EXPECT_TRUE(Status().ok());
  Status s = Status::Unavailable("disk");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.ToString(), "unavailable: disk");
}

TEST(StatusTest, StatusOrHoldsValueOrError) {
  auto good = Half(4);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 2);
  auto bad = Half(3);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalid);
}

TEST(StatusTest, StatusOrRefusesAnOkStatusAsError) {
  StatusOr<int> s{Status::Ok()};
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInternal);
}

TEST(StatusDeathTest, ValueOfAnErrorAbortsWithTheStatus) {
  StatusOr<int> bad = Half(3);
  EXPECT_DEATH((void)bad.value(), "StatusOr::value\\(\\) on an error: invalid: odd");
}

TEST(StatusTest, ReturnIfErrorPropagates) {
  EXPECT_TRUE(Chain(2).ok());
  EXPECT_EQ(Chain(1).code(), StatusCode::kInvalid);
}

TEST(StatusHttpTest, EachCodeMapsToItsHttpStatus) {
  EXPECT_EQ(HttpStatusFor(StatusCode::kMalformed), 400);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInvalid), 422);
  EXPECT_EQ(HttpStatusFor(StatusCode::kTooLarge), 413);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnsupported), 415);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(HttpStatusFor(StatusCode::kForbidden), 403);
  EXPECT_EQ(HttpStatusFor(StatusCode::kConflict), 409);
  EXPECT_EQ(HttpStatusFor(StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusFor(StatusCode::kInternal), 500);
}

}  // namespace
}  // namespace psl
