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

#include <string>
#include <vector>

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

}  // namespace psl::codecs

#endif  // PSL_CODECS_PROBLEM_H_
