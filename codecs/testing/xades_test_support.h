// Test helpers shared by xades_test.cc and xades_interop_test.cc: libraries, the test PKI, the
// sample envelope, and base64 / Xades surgery for tampering tests. Test-only.
#ifndef PSL_CODECS_TESTING_XADES_TEST_SUPPORT_H_
#define PSL_CODECS_TESTING_XADES_TEST_SUPPORT_H_

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "base/crypto_handles.h"
#include "certs/key_store.h"
#include "certs/testing/test_pki.h"
#include "certs/trust_store.h"
#include "codecs/base64.h"
#include "codecs/xades.h"
#include "codecs/xml_parser.h"
#include "codecs/xmlsec_library.h"

namespace psl::codecs::xades_test {

// libxml2 and xmlsec set up once for the binary and never torn down (libxml2 cannot be
// re-initialised after cleanup).
inline void InitLibraries() {
  static const XmlLibrary* const xml = new XmlLibrary();
  static const XmlSecLibrary* const xmlsec = new XmlSecLibrary();
  (void)xml;
  ASSERT_TRUE(xmlsec->status().ok()) << xmlsec->status().ToString();
}

inline const certs::testing::TestPki& Pki() {
  return certs::testing::SharedTestPki();
}

// Runs the shell `command`, appends what it prints to *output, removes `file` (the document it
// read), and returns its exit code (-1 when it could not run or did not exit).
inline int RunThenRemove(const std::string& command, const std::filesystem::path& file,
                         std::string* output) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    return -1;
  }
  char buf[512];
  while (std::fgets(buf, sizeof(buf), pipe) != nullptr) {
    *output += buf;
  }
  const int status = pclose(pipe);
  std::error_code ignored;
  std::filesystem::remove(file, ignored);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void ReplaceOnce(std::string& s, std::string_view from, std::string_view to) {
  const std::size_t at = s.find(from);
  ASSERT_NE(at, std::string::npos) << "not found: " << from;
  s.replace(at, from.size(), to);
}

// The MHM sample with its placeholder <mcp:Xades> element removed.
inline std::string SampleEnvelope() {
  std::string s =
      ReadFile(std::string(PSL_SHARED_DIR) + "/samples/mhm-SendSubscriptionRequest.SYNTHETIC.xml");
  const std::size_t begin = s.find("<mcp:Xades>");
  const std::size_t end = s.find("</mcp:Xades>");
  if (begin == std::string::npos || end == std::string::npos) {
    return "";
  }
  s.erase(begin, end + std::string_view("</mcp:Xades>").size() - begin);
  return s;
}

// The bytes `text` encodes; fails the test (and returns "") when it is not base64.
inline std::string Unbase64(std::string_view text) {
  StatusOr<std::string> bytes = DecodeBase64(text);
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? std::move(bytes).value() : std::string();
}

// The text between <prefix:Local ...> and </prefix:Local> for the first element whose
// qualified name ends with ":Local" or equals "Local".
inline std::string ElementText(const std::string& xml, const std::string& local,
                               std::size_t* begin_out = nullptr, std::size_t* end_out = nullptr) {
  std::size_t open = std::string::npos;
  for (std::size_t at = xml.find(local); at != std::string::npos; at = xml.find(local, at + 1)) {
    if (at > 0 && (xml[at - 1] == ':' || xml[at - 1] == '<') &&
        (xml[at + local.size()] == '>' || xml[at + local.size()] == ' ')) {
      const std::size_t lt = xml.rfind('<', at);
      if (lt != std::string::npos && xml[lt + 1] != '/') {
        open = lt;
        break;
      }
    }
  }
  if (open == std::string::npos) {
    return "";
  }
  const std::size_t content = xml.find('>', open) + 1;
  const std::size_t close = xml.find("</", content);
  if (begin_out != nullptr) {
    *begin_out = content;
  }
  if (end_out != nullptr) {
    *end_out = close;
  }
  return xml.substr(content, close - content);
}

// The decoded ds:Signature document of a signed envelope.
inline std::string DecodedSignature(const std::string& envelope) {
  return Unbase64(ElementText(envelope, "Xades"));
}

// `envelope` with its Xades replaced by base64(signature_xml).
inline std::string WithSignature(std::string envelope, const std::string& signature_xml) {
  std::size_t begin = 0, end = 0;
  ElementText(envelope, "Xades", &begin, &end);
  envelope.replace(begin, end - begin, EncodeBase64(signature_xml));
  return envelope;
}

struct Material {
  SigningIdentity practice;
  SigningIdentity other_practice;
  X509StorePtr trust;
};

inline Material LoadMaterial() {
  Material m;
  auto load = [](const std::string& name) {
    const std::filesystem::path chain = Pki() / (name + "-chain.pem");
    StatusOr<SigningIdentity> id =
        certs::LoadPemIdentity(Pki() / (name + ".key"), Pki() / (name + ".pem"), &chain, nullptr);
    EXPECT_TRUE(id.ok()) << id.status().ToString();
    return id.ok() ? std::move(id).value() : SigningIdentity{};
  };
  m.practice = load("practice-81234530000");
  m.other_practice = load("practice-85432155100");
  StatusOr<X509StorePtr> trust = certs::LoadTrustStore(Pki() / "ca.pem");
  EXPECT_TRUE(trust.ok()) << trust.status().ToString();
  if (trust.ok()) {
    m.trust = std::move(trust).value();
  }
  return m;
}

}  // namespace psl::codecs::xades_test

#endif  // PSL_CODECS_TESTING_XADES_TEST_SUPPORT_H_
