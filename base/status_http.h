// The one place where a StatusCode becomes an HTTP status (STYLE.md §4).
#ifndef PSL_BASE_STATUS_HTTP_H_
#define PSL_BASE_STATUS_HTTP_H_

#include "base/status.h"

namespace psl {

// 200 for kOk; 500 for internal and for precondition failures reaching a request.
int HttpStatusFor(StatusCode code);

}  // namespace psl

#endif  // PSL_BASE_STATUS_HTTP_H_
