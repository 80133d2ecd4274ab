// Test helpers for the MHM codec tests: the shared schema registry, the synthetic samples, and
// builders that re-encode an edited kmehr payload into the sample envelope. Test-only.
#ifndef PSL_CODECS_TESTING_MHM_TEST_SUPPORT_H_
#define PSL_CODECS_TESTING_MHM_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

#include "codecs/schema_registry.h"
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

inline std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

inline std::string RawDeflate(std::string_view bytes) {
  z_stream zs;
  std::memset(&zs, 0, sizeof(zs));
  deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, static_cast<uLong>(bytes.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

inline std::string DecodeBase64ForTest(std::string_view b64) {
  std::string out(b64.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()),
                                static_cast<int>(b64.size()));
  std::size_t size = static_cast<std::size_t>(n);
  if (!b64.empty() && b64.back() == '=') {
    --size;
  }
  if (b64.size() >= 2 && b64[b64.size() - 2] == '=') {
    --size;
  }
  out.resize(size);
  return out;
}

// The decoded kmehr payload of the sample envelope.
inline std::string SampleDetail() {
  const std::string env = SampleEnvelope();
  const std::size_t open = env.find('>', env.find("<mcp:Detail")) + 1;
  const std::size_t close = env.find("</mcp:Detail>");
  const std::string_view view = env;
  return DecodeBase64ForTest(view.substr(open, close - open));
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
  const std::string content = encoding == "deflate" ? Base64(RawDeflate(detail)) : Base64(detail);
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

}  // namespace psl::codecs::mhm_test

#endif  // PSL_CODECS_TESTING_MHM_TEST_SUPPORT_H_
