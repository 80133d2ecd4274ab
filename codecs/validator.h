// MessageValidator: `passerelle validate` and the intake's first stage. Detects the flow from the
// root element and runs that flow's codec, reporting every problem found (errors and warnings).
// Thread-safe (const); holds references to the registry and the clock, which must outlive it.
#ifndef PSL_CODECS_VALIDATOR_H_
#define PSL_CODECS_VALIDATOR_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "codecs/problem.h"
#include "codecs/schema_registry.h"
#include "codecs/xml_parser.h"

namespace psl::codecs {

struct ValidationReport {
  std::string kind;               // "enrolment", "claim", "amu" ("" when the flow is unknown)
  std::string flow;               // "mhm", "efact"
  std::string operation;          // MhmOperationName, e.g. "SendSubscription"; "post"
  std::vector<Problem> problems;  // every problem found, errors and warnings
  bool valid() const { return !HasErrors(problems); }
};

class MessageValidator {
 public:
  MessageValidator(const SchemaRegistry& schemas, const Clock& clock, XmlLimits limits = {});

  // Never fails: a document that cannot be parsed yields its PSL-XML-* problem; an unknown root
  // element yields exactly one problem PSL-FLOW-UNKNOWN (flow and kind left empty).
  ValidationReport Validate(std::string_view bytes) const;

 private:
  const SchemaRegistry& schemas_;
  const Clock& clock_;
  XmlLimits limits_;
};

}  // namespace psl::codecs

#endif  // PSL_CODECS_VALIDATOR_H_
