// Test helpers for the MHM codec tests: the shared schema registry, the synthetic samples, and
// builders that re-encode an edited kmehr payload into the sample envelope. Test-only.
#ifndef PSL_CODECS_TESTING_MHM_TEST_SUPPORT_H_
#define PSL_CODECS_TESTING_MHM_TEST_SUPPORT_H_

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "base/brussels_time.h"
#include "base/clock.h"
#include "codecs/base64.h"
#include "codecs/deflate.h"
#include "codecs/schema_registry.h"
#include "codecs/validator.h"
#include "codecs/xml_parser.h"

namespace psl::codecs::mhm_test {

// libxml2 set-up and the registry, created once for the test binary and never destroyed
// (libxml2 cannot be re-initialised after xmlCleanupParser).
inline const SchemaRegistry& TestSchemas() {
  static const XmlLibrary* const kLibrary = new XmlLibrary();
  static const SchemaRegistry* const kRegistry = [] {
    (void)kLibrary;
    auto loaded = SchemaRegistry::Load(std::string(PSL_SHARED_DIR) + "/schemas");
    if (!loaded.ok()) {
      ADD_FAILURE() << "cannot load schemas: " << loaded.status().ToString();
      std::abort();
    }
    return std::move(loaded).value().release();
  }();
  return *kRegistry;
}

inline std::string ReadShared(const std::string& relative) {
  std::ifstream in(std::string(PSL_SHARED_DIR) + "/" + relative, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline std::string SampleEnvelope() {
  return ReadShared("samples/mhm-SendSubscriptionRequest.SYNTHETIC.xml");
}

// The decoded kmehr payload of the sample envelope.
inline std::string SampleDetail() {
  const std::string env = SampleEnvelope();
  const std::size_t open = env.find('>', env.find("<mcp:Detail")) + 1;
  const std::size_t close = env.find("</mcp:Detail>");
  StatusOr<std::string> detail = DecodeBase64(std::string_view(env).substr(open, close - open));
  EXPECT_TRUE(detail.ok()) << detail.status().ToString();
  return detail.ok() ? std::move(detail).value() : std::string();
}

// Replaces the Detail element of `envelope` (kept on one line) with one carrying `content`
// verbatim and the given attributes.
inline std::string WithDetailElement(std::string envelope, std::string_view attributes,
                                     std::string_view content) {
  const std::size_t open = envelope.find("<mcp:Detail");
  const std::string end_tag = "</mcp:Detail>";
  const std::size_t close = envelope.find(end_tag) + end_tag.size();
  std::string element =
      "<mcp:Detail " + std::string(attributes) + ">" + std::string(content) + end_tag;
  envelope.replace(open, close - open, element);
  return envelope;
}

inline constexpr std::string_view kDetailId = R"(Id="_0d5e6f70-0000-4000-8000-000000000002")";

// The envelope with `detail` encoded as `encoding` ("none" or "deflate").
inline std::string WithDetail(std::string envelope, std::string_view detail,
                              std::string_view encoding = "none") {
  const std::string content =
      encoding == "deflate" ? EncodeBase64(DeflateRaw(detail).value()) : EncodeBase64(detail);
  return WithDetailElement(std::move(envelope),
                           "ContentEncoding=\"" + std::string(encoding) +
                               "\" ContentType=\"text/xml\" " + std::string(kDetailId),
                           content);
}

// Replaces the first occurrence of `from` (which must exist).
inline std::string Replace(std::string s, std::string_view from, std::string_view to) {
  const std::size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << "test edit did not apply: " << from;
  if (at != std::string::npos) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// Replaces every occurrence of `from`.
inline std::string ReplaceAll(std::string s, std::string_view from, std::string_view to) {
  std::size_t at = 0;
  while ((at = s.find(from, at)) != std::string::npos) {
    s.replace(at, from.size(), to);
    at += to.size();
  }
  return s;
}

// Every problem of `report`, one per line, for failure messages.
inline std::string Dump(const ValidationReport& report) {
  std::string s;
  for (const Problem& p : report.problems) {
    s += p.code + " " + p.document + ":" + std::to_string(p.line) + " " + p.path + " — " +
         p.message + "\n";
  }
  return s;
}

// 1-based line of the first occurrence of `needle` in `text`, 0 when absent.
inline int LineOf(std::string_view text, std::string_view needle) {
  const std::size_t at = text.find(needle);
  if (at == std::string_view::npos) {
    return 0;
  }
  int line = 1;
  for (std::size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
    }
  }
  return line;
}

// "YYYY-MM-DD".
inline std::string IsoDate(std::chrono::year_month_day d) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d-%02u-%02u", static_cast<int>(d.year()),
                static_cast<unsigned>(d.month()), static_cast<unsigned>(d.day()));
  return buf;
}

// `envelope` (a 2025-01-02 sample) moved to the clock's Brussels date, for tests whose test PKI
// is valid from today only (requests are re-dated rather than the clock set back): dates in the
// envelope and in the decoded Detail, the agreement start 2025-02-01 becoming the first day of
// next month; `edit` is applied to the decoded Detail before it is re-encoded.
template <typename Edit>
std::string Redated(std::string envelope, const Clock& clock, Edit edit) {
  const std::chrono::year_month_day today = BrusselsToday(clock);
  const std::string iso = IsoDate(today);
  std::string compact = iso;
  compact.erase(7, 1);
  compact.erase(4, 1);
  const std::chrono::year_month next =
      std::chrono::year_month{today.year(), today.month()} + std::chrono::months{1};
  const std::string start = IsoDate(next / std::chrono::day{1});
  const std::size_t open = envelope.find('>', envelope.find("<mcp:Detail")) + 1;
  const std::size_t close = envelope.find("</mcp:Detail>");
  StatusOr<std::string> decoded =
      DecodeBase64(std::string_view(envelope).substr(open, close - open));
  EXPECT_TRUE(decoded.ok()) << "the sample's Detail is not base64";
  std::string detail = decoded.ok() ? *decoded : std::string();
  detail = ReplaceAll(ReplaceAll(ReplaceAll(detail, "2025-02-01", start), "2025-01-02", iso),
                      "20250102", compact);
  edit(detail);
  envelope.replace(open, close - open, EncodeBase64(detail));
  return ReplaceAll(envelope, "2025-01-02", iso);
}

inline std::string Redated(std::string envelope, const Clock& clock) {
  return Redated(std::move(envelope), clock, [](std::string&) {});
}

}  // namespace psl::codecs::mhm_test

#endif  // PSL_CODECS_TESTING_MHM_TEST_SUPPORT_H_
