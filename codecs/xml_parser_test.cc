#include "codecs/xml_parser.h"

#include <gtest/gtest.h>
#include <libxml/parserInternals.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace psl::codecs {
namespace {

constexpr char kSecret[] = "H1-SECRET-CONTENT-never-to-appear";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string Repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += s;
  }
  return out;
}

struct Outcome {
  Status status;
  Problem problem;
  XmlDocPtr doc;
};

class XmlParserTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    static XmlLibrary library;  // idempotent; never destroyed before the tests end
  }

  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "xml_parser_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    secret_path_ = dir_ + "/secret.txt";
    std::ofstream(secret_path_) << kSecret;
  }

  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Parses twice: once with the process loader (which must refuse nothing, since nothing may be
  // requested), once under a spy loader (which must never be called).
  static Outcome Parse(std::string_view bytes, const XmlLimits& limits = {}) {
    const std::uint64_t refused_before = RefusedExternalLoadCount();
    Outcome outcome;
    StatusOr<XmlDocPtr> result = ParseUntrustedXml(bytes, limits, &outcome.problem);
    EXPECT_EQ(RefusedExternalLoadCount(), refused_before) << "libxml2 tried to load something";
    int spy_calls = 0;
    {
      ScopedExternalLoader spy([&spy_calls](const char*, const char*, xmlParserCtxtPtr) {
        ++spy_calls;
        return static_cast<xmlParserInputPtr>(nullptr);
      });
      Problem again;
      StatusOr<XmlDocPtr> second = ParseUntrustedXml(bytes, limits, &again);
      EXPECT_EQ(second.ok(), result.ok());
      EXPECT_EQ(again.code, outcome.problem.code);
    }
    EXPECT_EQ(spy_calls, 0) << "libxml2 asked for an external resource";
    if (result.ok()) {
      outcome.doc = std::move(result).value();
    } else {
      outcome.status = result.status();
    }
    return outcome;
  }

  // Asserts a refusal with `code` and a known position, and that the secret never leaks.
  static Outcome ExpectRefused(std::string_view bytes, std::string_view code, int line,
                               const XmlLimits& limits = {}) {
    Outcome o = Parse(bytes, limits);
    EXPECT_FALSE(o.status.ok());
    EXPECT_EQ(o.doc, nullptr);
    EXPECT_EQ(o.problem.code, code) << o.problem.message;
    EXPECT_EQ(o.status.code(), StatusCode::kMalformed);
    EXPECT_FALSE(o.problem.message.empty());
    EXPECT_EQ(o.problem.line, line) << o.problem.message;
    EXPECT_GE(o.problem.column, 1);
    EXPECT_EQ(o.problem.severity, Severity::kError);
    EXPECT_EQ(o.problem.message.find(kSecret), std::string::npos);
    EXPECT_EQ(o.status.message().find(kSecret), std::string::npos);
    return o;
  }

  std::string dir_;
  std::string secret_path_;
};

std::string SamplePath() {
  return std::string(PSL_SHARED_DIR) + "/samples/mhm-SendSubscriptionRequest.SYNTHETIC.xml";
}

const xmlNode* FindElement(const xmlNode* node, std::string_view name) {
  for (; node != nullptr; node = node->next) {
    if (node->type == XML_ELEMENT_NODE && name == reinterpret_cast<const char*>(node->name)) {
      return node;
    }
    if (const xmlNode* found = FindElement(node->children, name)) {
      return found;
    }
  }
  return nullptr;
}

std::string ElementText(const xmlNode* node) {
  XmlCharPtr content(xmlNodeGetContent(node));
  return content == nullptr ? "" : reinterpret_cast<const char*>(content.get());
}

// DOCTYPE and entities

TEST_F(XmlParserTest, RefusesAnExternalGeneralEntityWithoutReadingTheFile) {
  const std::string doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE r [\n<!ENTITY x SYSTEM \"file://" +
                          secret_path_ + "\">\n]>\n<r>&x;</r>\n";
  const Outcome o = ExpectRefused(doc, "PSL-XML-DOCTYPE", 2);
  EXPECT_EQ(o.problem.column, 1);
}

TEST_F(XmlParserTest, RefusesAParameterEntity) {
  const std::string doc =
      "<!DOCTYPE r [<!ENTITY % p SYSTEM \"file://" + secret_path_ + "\"> %p;]>\n<r/>";
  ExpectRefused(doc, "PSL-XML-DOCTYPE", 1);
}

TEST_F(XmlParserTest, RefusesBillionLaughsBeforeExpandingAnything) {
  std::string doc = "<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol0 \"lol\">\n";
  for (int i = 1; i <= 10; ++i) {
    const std::string previous = "&lol" + std::to_string(i - 1) + ";";
    doc += "<!ENTITY lol" + std::to_string(i) + " \"" + Repeat(previous, 10) + "\">\n";
  }
  doc += "]>\n<lolz>&lol10;</lolz>\n";
  ExpectRefused(doc, "PSL-XML-DOCTYPE", 2);
}

TEST_F(XmlParserTest, RefusesAQuadraticBlowUpBeforeExpandingAnything) {
  const std::string doc = "<!DOCTYPE r [<!ENTITY a \"" + std::string(std::size_t{100} * 1024, 'a') +
                          "\">]>\n<r>" + Repeat("&a;", 100'000) + "</r>";
  ASSERT_LT(doc.size(), XmlLimits{}.max_bytes);
  ExpectRefused(doc, "PSL-XML-DOCTYPE", 1);
}

TEST_F(XmlParserTest, RefusesADtdDefaultAttributeSoItNeverAppears) {
  const Outcome o = ExpectRefused(
      "<!DOCTYPE r [<!ATTLIST r injected CDATA \"evil-default\">]>\n<r/>", "PSL-XML-DOCTYPE", 1);
  EXPECT_EQ(o.problem.message.find("evil-default"), std::string::npos);
}

TEST_F(XmlParserTest, RefusesADoctypeAfterAComment) {
  const Outcome o =
      ExpectRefused("<!-- a comment -->\n<!DOCTYPE r SYSTEM \"http://127.0.0.1:9/r.dtd\">\n<r/>",
                    "PSL-XML-DOCTYPE", 2);
  EXPECT_EQ(o.problem.column, 1);
}

TEST_F(XmlParserTest, RefusesADoctypeWithOddSpacingAndLetterCase) {
  const Outcome o = ExpectRefused(
      "<?xml version=\"1.0\"?>\n\n   <!DOCTYPE\n\tr\n  SYSTEM \"http://127.0.0.1:9/x.dtd\">\n<r/>",
      "PSL-XML-DOCTYPE", 3);
  EXPECT_EQ(o.problem.column, 4);
  ExpectRefused("<!doctype r>\n<r/>", "PSL-XML-DOCTYPE", 1);
  ExpectRefused("<!DocType r [ ]><r/>", "PSL-XML-DOCTYPE", 1);
}

TEST_F(XmlParserTest, RefusesAnUndeclaredEntityReferenceAsNotWellFormed) {
  ExpectRefused("<r>\n&undeclared;</r>", "PSL-XML-SYNTAX", 2);
}

TEST_F(XmlParserTest, ExpandsOnlyThePredefinedAndCharacterEntities) {
  const Outcome o = Parse("<r>&lt;&amp;&#65;&#x42;</r>");
  ASSERT_NE(o.doc, nullptr);
  EXPECT_EQ(ElementText(xmlDocGetRootElement(o.doc.get())), "<&AB");
}

// XInclude and schema locations

TEST_F(XmlParserTest, RefusesAnXInclude2001ElementWithoutReadingTheFile) {
  const std::string doc =
      "<r xmlns:xi=\"http://www.w3.org/2001/XInclude\">\n  <xi:include href=\"file://" +
      secret_path_ + "\" parse=\"text\"/>\n</r>";
  const Outcome o = ExpectRefused(doc, "PSL-XML-XINCLUDE", 2);
  EXPECT_EQ(o.problem.path, "/r/include");
}

TEST_F(XmlParserTest, RefusesAnXInclude2003Element) {
  const std::string doc = "<r><include xmlns=\"http://www.w3.org/2003/XInclude\" href=\"" +
                          secret_path_ + "\" parse=\"text\"/></r>";
  ExpectRefused(doc, "PSL-XML-XINCLUDE", 1);
}

TEST_F(XmlParserTest, IgnoresRemoteSchemaLocationsWithoutLoadingThem) {
  const Outcome o = Parse(
      "<r xmlns=\"urn:x\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"\n"
      "   xsi:schemaLocation=\"urn:x http://127.0.0.1:9/x.xsd\">\n"
      "  <c xsi:noNamespaceSchemaLocation=\"http://127.0.0.1:9/y.xsd\">v</c>\n</r>");
  ASSERT_TRUE(o.status.ok()) << o.problem.message;
  ASSERT_NE(o.doc, nullptr);
}

// Structural limits

TEST_F(XmlParserTest, RefusesNestingDeeperThanMaxDepthAtTheOffendingLine) {
  const std::string doc = Repeat("<a>\n", 65) + Repeat("</a>", 65);
  const Outcome o = ExpectRefused(doc, "PSL-XML-DEPTH", 65);
  EXPECT_NE(o.problem.message.find("max_depth"), std::string::npos);
  EXPECT_EQ(o.problem.path, "/" + Repeat("a/", 64) + "a");
  EXPECT_TRUE(Parse(Repeat("<a>", 64) + Repeat("</a>", 64)).status.ok());
}

TEST_F(XmlParserTest, RefusesNestingDeeperThanLibxml2sOwnLimitEvenWhenOursIsHigher) {
  XmlLimits limits;
  limits.max_depth = 100'000;
  const Outcome o =
      ExpectRefused(Repeat("<a>", 300) + Repeat("</a>", 300), "PSL-XML-DEPTH", 1, limits);
  EXPECT_NE(o.problem.message.find("256"), std::string::npos);
  ExpectRefused(Repeat("<a>", 200'000), "PSL-XML-DEPTH", 1, limits);
}

TEST_F(XmlParserTest, RefusesAHugelyDeepDocumentWithDefaultLimits) {
  ExpectRefused(Repeat("<a>", 500'000), "PSL-XML-DEPTH", 1);
}

TEST_F(XmlParserTest, RefusesAnElementNameLongerThanMaxNameLength) {
  const std::string name(257, 'n');
  const Outcome o = ExpectRefused("<r>\n<" + name + "/></r>", "PSL-XML-NAME", 2);
  EXPECT_NE(o.problem.message.find("max_name_length"), std::string::npos);
  EXPECT_TRUE(Parse("<" + std::string(256, 'n') + "/>").status.ok());
}

TEST_F(XmlParserTest, RefusesAHugeElementNameBeyondLibxml2sOwnLimit) {
  const std::string name(std::size_t{1024} * 1024, 'n');
  ExpectRefused("<" + name + "/>", "PSL-XML-NAME", 1);
}

TEST_F(XmlParserTest, RefusesALongAttributeNameOrPrefixedName) {
  ExpectRefused("<r " + std::string(300, 'x') + "=\"1\"/>", "PSL-XML-NAME", 1);
  ExpectRefused("<" + std::string(200, 'p') + ":" + std::string(100, 'l') +
                    " xmlns:" + std::string(200, 'p') + "=\"urn:x\"/>",
                "PSL-XML-NAME", 1);
}

TEST_F(XmlParserTest, RefusesAnAttributeFloodBeforeLibxml2ChecksDuplicates) {
  std::string doc = "<?xml version=\"1.0\"?>\n<r";
  for (int i = 0; i < 200'000; ++i) {
    doc += " a" + std::to_string(i) + "=\"\"";
  }
  doc += "/>";
  ASSERT_LT(doc.size(), XmlLimits{}.max_bytes);
  const Outcome o = ExpectRefused(doc, "PSL-XML-ATTRIBUTES", 2);
  EXPECT_EQ(o.problem.column, 1);
}

TEST_F(XmlParserTest, CountsNamespaceDeclarationsAsAttributes) {
  std::string doc = "<r";
  for (int i = 0; i < 33; ++i) {
    doc += " xmlns:p" + std::to_string(i) + "=\"urn:p\"";
  }
  ExpectRefused(doc + "/>", "PSL-XML-ATTRIBUTES", 1);
}

TEST_F(XmlParserTest, AcceptsExactlyMaxAttributesEvenWithEqualsSignsInValues) {
  std::string doc = "<r xmlns=\"urn:a=b\"";
  for (int i = 0; i < 31; ++i) {
    doc += " a" + std::to_string(i) + "='x=y=\"z\">'";
  }
  const Outcome o = Parse(doc + "/>");
  EXPECT_TRUE(o.status.ok()) << o.problem.message;
}

TEST_F(XmlParserTest, RefusesMoreNodesThanMaxNodes) {
  XmlLimits limits;
  limits.max_nodes = 1000;
  const Outcome o =
      ExpectRefused("<r>" + Repeat("<a/>", 2000) + "</r>", "PSL-XML-NODES", 1, limits);
  EXPECT_NE(o.problem.message.find("max_nodes"), std::string::npos);
  EXPECT_EQ(o.problem.path, "/r");
  // Text nodes count too: 600 elements and 600 text nodes.
  ExpectRefused("<r>" + Repeat("<a/>t", 600) + "</r>", "PSL-XML-NODES", 1, limits);
  EXPECT_TRUE(Parse("<r>" + Repeat("<a/>", 998) + "</r>", limits).status.ok());
}

TEST_F(XmlParserTest, RefusesANodeFloodWithDefaultLimits) {
  ExpectRefused("<r>" + Repeat("<a/>", 300'000) + "</r>", "PSL-XML-NODES", 1);
}

TEST_F(XmlParserTest, RefusesATextNodeLongerThanMaxTextLength) {
  XmlLimits limits;
  limits.max_text_length = 1000;
  const Outcome o =
      ExpectRefused("<r>\n<t>" + std::string(5000, 'x') + "</t></r>", "PSL-XML-TEXT", 2, limits);
  EXPECT_EQ(o.problem.path, "/r/t");
  EXPECT_NE(o.problem.message.find("max_text_length"), std::string::npos);
  // Character references and CDATA add to the same text node.
  ExpectRefused("<r>" + Repeat("&#65;<![CDATA[bb]]>", 400) + "</r>", "PSL-XML-TEXT", 1, limits);
  EXPECT_TRUE(Parse("<r>" + std::string(1000, 'x') + "</r>", limits).status.ok());
}

TEST_F(XmlParserTest, RefusesAnAttributeValueLongerThanMaxTextLength) {
  XmlLimits limits;
  limits.max_text_length = 1000;
  ExpectRefused("<r a=\"" + std::string(1001, 'v') + "\"/>", "PSL-XML-TEXT", 1, limits);
}

TEST_F(XmlParserTest, RefusesADocumentOverMaxBytesBeforeParsing) {
  XmlLimits limits;
  limits.max_bytes = 64;
  Problem problem;
  const std::string doc = "<r>" + std::string(100, 'x') + "</r>";
  StatusOr<XmlDocPtr> result = ParseUntrustedXml(doc, limits, &problem);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kTooLarge);
  EXPECT_EQ(problem.code, "PSL-XML-SIZE");
  EXPECT_NE(problem.message.find("max_bytes"), std::string::npos);
}

// Encodings, BOM, emptiness, syntax

TEST_F(XmlParserTest, AcceptsAUtf8ByteOrderMark) {
  const Outcome o = Parse("\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><r>\xC3\xA9</r>");
  ASSERT_TRUE(o.status.ok()) << o.problem.message;
  EXPECT_EQ(ElementText(xmlDocGetRootElement(o.doc.get())), "\xC3\xA9");
}

TEST_F(XmlParserTest, RefusesADoctypeBehindAByteOrderMark) {
  ExpectRefused("\xEF\xBB\xBF<!DOCTYPE r>\n<r/>", "PSL-XML-DOCTYPE", 1);
}

TEST_F(XmlParserTest, RefusesUtf16DocumentsClearly) {
  // "<!DOCTYPE" in UTF-16 has no ASCII byte pattern: refusing UTF-16 keeps the byte scan sound.
  static constexpr char kUtf16LeDoctype[] =
      "\xFF\xFE<\0!\0D\0O\0C\0T\0Y\0P\0E\0 \0r\0>\0<\0r\0/\0>\0";
  ExpectRefused(std::string_view(kUtf16LeDoctype, sizeof kUtf16LeDoctype - 1), "PSL-XML-ENCODING",
                1);
  static constexpr char kUtf16BeWithoutBom[] = "\0<\0?\0x\0m\0l\0 \0v\0?\0>";
  const std::string_view utf16be_no_bom(kUtf16BeWithoutBom, sizeof kUtf16BeWithoutBom - 1);
  ExpectRefused(utf16be_no_bom, "PSL-XML-ENCODING", 1);
}

TEST_F(XmlParserTest, RefusesADeclaredEncodingOtherThanUtf8) {
  ExpectRefused("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<r>\xE9</r>", "PSL-XML-ENCODING",
                1);
  ExpectRefused("<?xml version='1.0' encoding = 'UTF-16'?><r/>", "PSL-XML-ENCODING", 1);
  EXPECT_TRUE(Parse("<?xml version=\"1.0\" encoding=\"US-ASCII\"?><r/>").status.ok());
}

TEST_F(XmlParserTest, RefusesBytesThatAreNotUtf8WithoutEchoingThem) {
  const Outcome o = ExpectRefused("<r>\n<n>Ren\xE9</n></r>", "PSL-XML-SYNTAX", 2);
  EXPECT_EQ(o.problem.message.find("0xE9"), std::string::npos);
}

TEST_F(XmlParserTest, RefusesEmptyInput) {
  Problem problem;
  StatusOr<XmlDocPtr> result = ParseUntrustedXml("", XmlLimits{}, &problem);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kMalformed);
  EXPECT_EQ(problem.code, "PSL-XML-EMPTY");
  EXPECT_EQ(Parse(" \r\n\t").problem.code, "PSL-XML-EMPTY");
  EXPECT_EQ(Parse("\xEF\xBB\xBF").problem.code, "PSL-XML-EMPTY");
}

TEST_F(XmlParserTest, RefusesADocumentWithoutARootElement) {
  ExpectRefused("<?xml version=\"1.0\"?>\n<!-- nothing else -->\n", "PSL-XML-EMPTY", 3);
}

TEST_F(XmlParserTest, ReportsTheLineAndColumnOfASyntaxError) {
  const Outcome o = ExpectRefused("<r>\n  <a>\n  </b>\n</r>", "PSL-XML-SYNTAX", 3);
  EXPECT_GT(o.problem.column, 1);
  EXPECT_NE(o.status.message().find("PSL-XML-SYNTAX"), std::string::npos);
}

TEST_F(XmlParserTest, NeverEchoesTheDocumentsValuesInASyntaxError) {
  const Outcome o =
      ExpectRefused("<r><Ssin>90010100123</Ssin>\n<x a=90010100123/></r>", "PSL-XML-SYNTAX", 2);
  EXPECT_EQ(o.problem.message.find("90010100123"), std::string::npos);
  EXPECT_EQ(o.status.message().find("90010100123"), std::string::npos);
}

TEST_F(XmlParserTest, KeepsATruncatedSyntaxErrorMessageValidUtf8) {
  // libxml2 names the element in "Opening and ending tag mismatch: <name> ..."; the message is
  // cut at 200 bytes, which must not split a two-byte character of the name.
  std::string name;
  for (int i = 0; i < 100; ++i) {
    name += "\xC3\xA9";  // é
  }
  const Outcome o = ExpectRefused("<" + name + ">x</b>", "PSL-XML-SYNTAX", 1);
  ASSERT_FALSE(o.problem.message.empty());
  std::size_t i = 0;
  const std::string& m = o.problem.message;
  while (i < m.size()) {
    const auto lead = static_cast<unsigned char>(m[i]);
    const std::size_t length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    ASSERT_LE(i + length, m.size()) << "message ends inside a UTF-8 sequence";
    for (std::size_t k = 1; k < length; ++k) {
      ASSERT_EQ(static_cast<unsigned char>(m[i + k]) & 0xC0, 0x80) << "at byte " << i + k;
    }
    i += length;
  }
}

TEST_F(XmlParserTest, RefusesAnUndeclaredNamespacePrefix) {
  ExpectRefused("<r>\n<p:a/></r>", "PSL-XML-SYNTAX", 2);
}

TEST_F(XmlParserTest, RefusesTrailingContentAfterTheRootElement) {
  ExpectRefused("<r/>\n<s/>", "PSL-XML-SYNTAX", 2);
}

TEST_F(XmlParserTest, TurnsCdataIntoText) {
  const Outcome o = Parse("<r><![CDATA[<x>&]]></r>");
  ASSERT_NE(o.doc, nullptr);
  const xmlNode* root = xmlDocGetRootElement(o.doc.get());
  ASSERT_NE(root->children, nullptr);
  EXPECT_EQ(root->children->type, XML_TEXT_NODE);
  EXPECT_EQ(ElementText(root), "<x>&");
}

// A normal document and NodePath

TEST_F(XmlParserTest, ParsesTheMhmSampleAndNodePathNamesItsElements) {
  const std::string bytes = ReadFile(SamplePath());
  ASSERT_FALSE(bytes.empty()) << SamplePath();
  const Outcome o = Parse(bytes);
  ASSERT_TRUE(o.status.ok()) << o.problem.code << " " << o.problem.message;
  const xmlNode* root = xmlDocGetRootElement(o.doc.get());
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(NodePath(root), "/SendSubscriptionRequest");
  const xmlNode* detail = FindElement(root, "Detail");
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(NodePath(detail), "/SendSubscriptionRequest/Detail");
  EXPECT_GT(xmlGetLineNo(detail), 20);  // line numbers are kept for later problems
  const xmlNode* ssin = FindElement(root, "Ssin");
  ASSERT_NE(ssin, nullptr);
  EXPECT_EQ(NodePath(ssin), "/SendSubscriptionRequest/Routing/CareReceiver/Ssin");
  EXPECT_EQ(NodePath(ssin->children), "/SendSubscriptionRequest/Routing/CareReceiver/Ssin");
  const xmlAttr* id = xmlHasProp(detail, reinterpret_cast<const xmlChar*>("Id"));
  ASSERT_NE(id, nullptr);
  EXPECT_EQ(NodePath(reinterpret_cast<const xmlNode*>(id)), "/SendSubscriptionRequest/Detail/@Id");
  EXPECT_EQ(NodePath(reinterpret_cast<const xmlNode*>(o.doc.get())), "/");
  EXPECT_EQ(NodePath(nullptr), "");
}

TEST_F(XmlParserTest, ParsesEverySharedSample) {
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(PSL_SHARED_DIR) + "/samples")) {
    if (entry.path().extension() != ".xml") {
      continue;
    }
    const Outcome o = Parse(ReadFile(entry.path().string()));
    EXPECT_TRUE(o.status.ok()) << entry.path() << ": " << o.problem.code << " "
                               << o.problem.message;
  }
}

TEST_F(XmlParserTest, LeavesAnAbsentProblemAlone) {
  StatusOr<XmlDocPtr> result = ParseUntrustedXml("<r>", XmlLimits{}, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), StatusCode::kMalformed);
}

// The process-wide loader

TEST_F(XmlParserTest, TheLibraryLoaderRefusesAndCountsEveryLoadOutsideAScope) {
  XmlLibrary again;  // idempotent
  xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
  ASSERT_NE(ctxt, nullptr);
  const std::uint64_t before = RefusedExternalLoadCount();
  EXPECT_EQ(xmlLoadExternalEntity(secret_path_.c_str(), nullptr, ctxt), nullptr);
  EXPECT_EQ(xmlLoadExternalEntity("http://127.0.0.1:9/x.xsd", nullptr, ctxt), nullptr);
  EXPECT_EQ(RefusedExternalLoadCount(), before + 2);

  std::string seen;
  {
    ScopedExternalLoader loader([&seen](const char* url, const char*, xmlParserCtxtPtr) {
      seen = url;
      return static_cast<xmlParserInputPtr>(nullptr);
    });
    EXPECT_EQ(xmlLoadExternalEntity(secret_path_.c_str(), nullptr, ctxt), nullptr);
  }
  EXPECT_NE(seen.find("secret.txt"), std::string::npos);
  EXPECT_EQ(RefusedExternalLoadCount(), before + 2);
  EXPECT_EQ(xmlLoadExternalEntity(secret_path_.c_str(), nullptr, ctxt), nullptr);
  EXPECT_EQ(RefusedExternalLoadCount(), before + 3);
  xmlFreeParserCtxt(ctxt);
}

TEST_F(XmlParserTest, AScopedLoaderServesOnlyItsOwnThread) {
  int spy_calls = 0;
  ScopedExternalLoader spy([&spy_calls](const char*, const char*, xmlParserCtxtPtr) {
    ++spy_calls;
    return static_cast<xmlParserInputPtr>(nullptr);
  });
  const std::uint64_t before = RefusedExternalLoadCount();
  std::thread other([this] {
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    EXPECT_EQ(xmlLoadExternalEntity(secret_path_.c_str(), nullptr, ctxt), nullptr);
    xmlFreeParserCtxt(ctxt);
  });
  other.join();
  EXPECT_EQ(spy_calls, 0);
  EXPECT_EQ(RefusedExternalLoadCount(), before + 1);
}

TEST_F(XmlParserTest, ParsesConcurrentlyOnSeveralThreads) {
  const std::string sample = ReadFile(SamplePath());
  std::vector<std::thread> threads;
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&sample, t] {
      for (int i = 0; i < 20; ++i) {
        Problem problem;
        if ((i + t) % 2 == 0) {
          EXPECT_TRUE(ParseUntrustedXml(sample, XmlLimits{}, &problem).ok());
        } else {
          EXPECT_FALSE(ParseUntrustedXml(Repeat("<a>", 100), XmlLimits{}, &problem).ok());
          EXPECT_EQ(problem.code, "PSL-XML-DEPTH");
        }
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
}

TEST_F(XmlParserTest, TheLibraryLoaderRefusesLoadsFromXmlReadFile) {
  const std::uint64_t before = RefusedExternalLoadCount();
  xmlDocPtr doc = xmlReadFile(secret_path_.c_str(), nullptr, XML_PARSE_NONET);
  EXPECT_EQ(doc, nullptr);
  xmlFreeDoc(doc);
  EXPECT_GT(RefusedExternalLoadCount(), before);
}

}  // namespace
}  // namespace psl::codecs
