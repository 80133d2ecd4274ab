#include "base/status_http.h"

namespace psl {

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kMalformed:
      return 400;
    case StatusCode::kInvalid:
      return 422;
    case StatusCode::kTooLarge:
      return 413;
    case StatusCode::kUnsupported:
      return 415;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kForbidden:
      return 403;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kConflict:
      return 409;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

}  // namespace psl
