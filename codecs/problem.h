// Problem: one finding about a message, as reported to the practice and by `passerelle validate`.
//
// `code` is the MyCareNet error code where MyCareNet defines one for the rule (e.g. "260", from
// errors/mhmSubscriptionError.json); otherwise a stable Passerelle code "PSL-<AREA>-<RULE>".
// `message` says what is wrong and what the rule is, and never echoes a patient value.
// `line`/`column` are 1-based positions in the document the problem is in (0 when unknown);
// `path` is a simple XPath-like location ("/SendSubscriptionRequest/Detail").
// `document` says which document: "envelope" or "detail" (the decoded Detail payload).
#ifndef PSL_CODECS_PROBLEM_H_
#define PSL_CODECS_PROBLEM_H_

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace psl::codecs {

enum class Severity { kError, kWarning };

struct Problem {
  std::string code;
  std::string message;
  int line = 0;
  int column = 0;
  std::string path;
  std::string document = "envelope";
  Severity severity = Severity::kError;
};

inline bool HasErrors(const std::vector<Problem>& problems) {
  for (const auto& p : problems) {
    if (p.severity == Severity::kError) {
      return true;
    }
  }
  return false;
}

// The Status a codec returns with its report: `code`, and a message counting the errors and
// naming the first one's code, path and document ("3 problem(s) in the MHM request; first: 111 at
// /... (detail)") — never a value from the message.
inline Status SummariseProblems(StatusCode code, const std::vector<Problem>& problems,
                                std::string_view what) {
  std::size_t errors = 0;
  const Problem* first = nullptr;
  for (const Problem& p : problems) {
    if (p.severity != Severity::kError) {
      continue;
    }
    ++errors;
    if (first == nullptr) {
      first = &p;
    }
  }
  std::string message = std::to_string(errors) + " problem(s) in " + std::string(what);
  if (first != nullptr) {
    message += "; first: " + first->code + " at " + first->path + " (" + first->document + ")";
  }
  return Status(code, std::move(message));
}

}  // namespace psl::codecs

#endif  // PSL_CODECS_PROBLEM_H_
