// Steps every request codec (MHM, eAttest, MediPrima, genasync) and answer parser takes the same
// way: parsing the untrusted envelope into the report, parsing a decoded Detail payload, and
// wording schema problems in a Status message. Pure functions; thread-safe.
#ifndef PSL_CODECS_CODEC_UTIL_H_
#define PSL_CODECS_CODEC_UTIL_H_

#include <libxml/tree.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "base/xml_handles.h"
#include "codecs/problem.h"
#include "codecs/soap.h"
#include "codecs/xml_parser.h"
#include "codecs/xml_util.h"

namespace psl::codecs {

// ParseUntrustedXml of a request envelope; on failure appends the parser's problem (document
// "envelope") to `problems` and returns the parser's status (kMalformed or kTooLarge).
inline StatusOr<XmlDocPtr> ParseEnvelopeReporting(std::string_view bytes, const XmlLimits& limits,
                                                  std::vector<Problem>* problems) {
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(bytes, limits, &problem);
  if (!doc.ok()) {
    problem.document = "envelope";
    problems->push_back(std::move(problem));
  }
  return doc;
}

// ParseUntrustedXml of the payload decoded from the blob element `detail`; null on failure,
// after appending the parser's problem: in document "detail", or pointing at `detail` in the
// envelope when the parser has no position inside the payload (e.g. it is empty).
inline XmlDocPtr ParseDetailPayload(std::string_view payload, const xmlNode* detail,
                                    const XmlLimits& limits, std::vector<Problem>* problems) {
  Problem problem;
  StatusOr<XmlDocPtr> parsed = ParseUntrustedXml(payload, limits, &problem);
  if (parsed.ok()) {
    return std::move(parsed).value();
  }
  problem.document = "detail";
  if (problem.line == 0) {
    problem.document = "envelope";
    problem.line = Line(detail);
    problem.path = NodePath(detail);
  }
  problems->push_back(std::move(problem));
  return nullptr;
}

// ParseUntrustedXmlNamed, a failure other than kTooLarge reported as `code`.
inline StatusOr<XmlDocPtr> ParseUntrustedXmlAs(std::string_view bytes, const XmlLimits& limits,
                                               const std::string& what, StatusCode code) {
  StatusOr<XmlDocPtr> doc = ParseUntrustedXmlNamed(bytes, limits, what);
  if (!doc.ok() && doc.status().code() != StatusCode::kTooLarge) {
    return Status(code, doc.status().message());
  }
  return doc;
}

// When `*doc` (parsed from `bytes`) is a SOAP 1.1 Envelope, replaces it with the answer in its
// Body (and `*body_xml`, when not null, with that answer's bytes). kInvalid "<who> answered a
// SOAP Fault (<faultcode>): <faultstring, at most 200 bytes>" for a Fault; ParseSoapResponse's
// error for a malformed envelope. A document that is not an Envelope is left as is.
inline Status UnwrapSoapAnswer(std::string_view bytes, const XmlLimits& limits,
                               std::string_view who, XmlDocPtr* doc, std::string* body_xml) {
  if (!IsElement(xmlDocGetRootElement(doc->get()), kSoap11Ns, "Envelope")) {
    return Status::Ok();
  }
  StatusOr<SoapResponse> soap = ParseSoapResponse(bytes, limits);
  if (!soap.ok()) {
    return soap.status();
  }
  if (soap->fault) {
    return Status::Invalid(std::string(who) + " answered a SOAP Fault (" + soap->fault->code +
                           "): " + soap->fault->message.substr(0, 200));
  }
  *doc = std::move(soap->body);
  if (body_xml != nullptr) {
    *body_xml = std::move(soap->body_xml);
  }
  return Status::Ok();
}

// "<first problem's message> (line L, path P)" and how many more follow, for the message of a
// kInvalid about a document we built or received (schema problems carry no message values).
inline std::string DescribeFirstProblem(const std::vector<Problem>& problems) {
  if (problems.empty()) {
    return "no detail";
  }
  const Problem& p = problems.front();
  std::string s = p.message + " (line " + std::to_string(p.line) + ", " + p.path + ")";
  if (problems.size() > 1) {
    s += " and " + std::to_string(problems.size() - 1) + " more";
  }
  return s;
}

}  // namespace psl::codecs

#endif  // PSL_CODECS_CODEC_UTIL_H_
