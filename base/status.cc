#include "base/status.h"

#include <cstdio>
#include <cstdlib>

namespace psl {

std::string_view StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kMalformed:
      return "malformed";
    case StatusCode::kInvalid:
      return "invalid";
    case StatusCode::kTooLarge:
      return "too-large";
    case StatusCode::kUnsupported:
      return "unsupported";
    case StatusCode::kUnauthenticated:
      return "unauthenticated";
    case StatusCode::kForbidden:
      return "forbidden";
    case StatusCode::kNotFound:
      return "not-found";
    case StatusCode::kConflict:
      return "conflict";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kFailedPrecondition:
      return "failed-precondition";
    case StatusCode::kInternal:
      return "internal";
  }
  return "internal";
}

namespace internal {

void DieOnValueOfError(const std::string& status) {
  std::fprintf(stderr, "fatal: StatusOr::value() on an error: %s\n", status.c_str());
  std::abort();
}

}  // namespace internal

std::string Status::ToString() const {
  if (ok())
    return "ok";
  std::string s(StatusCodeName(code_));
  s += ": ";
  s += message_;
  return s;
}

}  // namespace psl
