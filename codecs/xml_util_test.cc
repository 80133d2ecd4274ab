#include "codecs/xml_util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

using std::chrono::system_clock;

constexpr char kNs[] = "urn:example:right";

XmlDocPtr ParseOrDie(std::string_view xml) {
  Problem problem;
  StatusOr<XmlDocPtr> doc = ParseUntrustedXml(xml, XmlLimits{}, &problem);
  EXPECT_TRUE(doc.ok()) << problem.message;
  return doc.ok() ? std::move(doc).value() : nullptr;
}

system_clock::time_point Utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  using namespace std::chrono;  // NOLINT(google-build-using-namespace)
  return system_clock::time_point(sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} +
                                  seconds{s});
}

class XmlUtilTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static const XmlLibrary library;
    Problem problem;
    StatusOr<XmlDocPtr> doc = ParseUntrustedXml(
        "<r:root xmlns:r=\"urn:example:right\" xmlns:w=\"urn:example:wrong\">\n"
        "  <w:Detail Id=\"wrong\">look-alike</w:Detail>\n"
        "  <r:Detail Id=\"right\" Empty=\"\"> \t base64\r\n </r:Detail>\n"
        "  <Detail>no namespace</Detail>\n"
        "  <r:Other>a<r:inner>b</r:inner>c</r:Other>\n"
        "</r:root>",
        XmlLimits{}, &problem);
    ASSERT_TRUE(doc.ok()) << problem.message;
    doc_ = std::move(doc).value();
    root_ = xmlDocGetRootElement(doc_.get());
  }

  XmlDocPtr doc_;
  xmlNode* root_ = nullptr;
};

TEST_F(XmlUtilTest, MatchesByNamespaceUriNotByPrefixOrLocalNameAlone) {
  const xmlNode* detail = Child(root_, kNs, "Detail");
  ASSERT_NE(detail, nullptr);
  EXPECT_EQ(Attr(detail, "Id"), "right");
  EXPECT_TRUE(IsElement(detail, kNs, "Detail"));
  EXPECT_FALSE(IsElement(detail, "urn:example:wrong", "Detail"));
  EXPECT_EQ(Children(root_, kNs, "Detail").size(), 1U);
}

TEST_F(XmlUtilTest, LocalNameLookupTakesTheFirstElementInAnyNamespace) {
  const xmlNode* first = Child(static_cast<const xmlNode*>(root_), "Detail");
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(Attr(first, "Id"), "wrong");
  EXPECT_EQ(Children(static_cast<const xmlNode*>(root_), "Detail").size(), 3U);
}

TEST_F(XmlUtilTest, AnElementWithoutNamespaceNeverMatchesANamespacedLookup) {
  for (const xmlNode* c : Children(static_cast<const xmlNode*>(root_), "Detail")) {
    if (c->ns == nullptr) {
      EXPECT_FALSE(IsElement(c, kNs, "Detail"));
      EXPECT_FALSE(IsElement(c, "", "Detail"));
    }
  }
}

TEST_F(XmlUtilTest, ElementChildrenSkipsTextNodes) {
  EXPECT_EQ(ElementChildren(root_).size(), 4U);
}

TEST_F(XmlUtilTest, TellsAnEmptyAttributeFromAnAbsentOne) {
  const xmlNode* detail = Child(root_, kNs, "Detail");
  EXPECT_TRUE(HasAttr(detail, "Empty"));
  EXPECT_EQ(Attr(detail, "Empty"), "");
  EXPECT_FALSE(HasAttr(detail, "Missing"));
  EXPECT_EQ(Attr(detail, "Missing"), "");
}

TEST_F(XmlUtilTest, ContentIsRawAndTrimmedContentDropsXmlWhitespace) {
  const xmlNode* detail = Child(root_, kNs, "Detail");
  EXPECT_EQ(Content(detail), " \t base64\n ");  // the parser normalises CR LF to LF
  EXPECT_EQ(TrimmedContent(detail), "base64");
  EXPECT_EQ(Content(Child(root_, kNs, "Other")), "abc");
  EXPECT_EQ(TrimXmlSpace(" \t\r\n"), "");
  EXPECT_EQ(TrimXmlSpace("\r\nx\r\n"), "x");
  EXPECT_EQ(TrimXmlSpace("a b"), "a b");
}

TEST_F(XmlUtilTest, GivesTheOneBasedLineOfAnElement) {
  EXPECT_EQ(Line(root_), 1);
  EXPECT_EQ(Line(Child(root_, kNs, "Detail")), 3);
}

TEST_F(XmlUtilTest, EveryHelperAcceptsANullNode) {
  const xmlNode* none = nullptr;
  EXPECT_FALSE(IsElement(none, "Detail"));
  EXPECT_FALSE(IsElement(none, kNs, "Detail"));
  EXPECT_EQ(Child(none, "Detail"), nullptr);
  EXPECT_EQ(Child(none, kNs, "Detail"), nullptr);
  EXPECT_EQ(Child(static_cast<xmlNode*>(nullptr), kNs, "Detail"), nullptr);
  EXPECT_TRUE(ElementChildren(nullptr).empty());
  EXPECT_TRUE(Children(none, "Detail").empty());
  EXPECT_TRUE(Children(static_cast<xmlNode*>(nullptr), kNs, "Detail").empty());
  EXPECT_EQ(Attr(none, "Id"), "");
  EXPECT_FALSE(HasAttr(none, "Id"));
  EXPECT_EQ(Content(none), "");
  EXPECT_EQ(TrimmedContent(none), "");
  EXPECT_EQ(Line(none), 0);
}

TEST_F(XmlUtilTest, OneChildNamesWhereAndHowManyWhenNotExactlyOne) {
  StatusOr<xmlNode*> one = OneChild(root_, kNs, "Detail", "the root");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(Attr(*one, "Id"), "right");
  StatusOr<xmlNode*> none = OneChild(root_, kNs, "Missing", "the root");
  EXPECT_EQ(none.status().code(), StatusCode::kInvalid);
  EXPECT_EQ(none.status().message(), "the root must hold exactly one Missing (found 0)");
}

TEST_F(XmlUtilTest, CountElementsCountsTheWholeSubtreeRootIncluded) {
  EXPECT_EQ(CountElements(root_, kNs, "root"), 1);
  EXPECT_EQ(CountElements(root_, kNs, "inner"), 1);
  EXPECT_EQ(CountElements(root_, kNs, "Detail"), 1);
  EXPECT_EQ(CountElements(root_, "urn:example:wrong", "inner"), 0);
  EXPECT_EQ(CountElements(nullptr, kNs, "root"), 0);
}

TEST(XmlUtilIdsTest, RefusesAnIdValueCarriedTwiceInAnyLetterCaseOrNamespace) {
  static const XmlLibrary library;
  XmlDocPtr ok = ParseOrDie("<a Id=\"x\"><b ID=\"y\"/><c xml:id=\"z\"/></a>");
  EXPECT_TRUE(CheckUniqueIds(xmlDocGetRootElement(ok.get())).ok());
  XmlDocPtr twice = ParseOrDie("<a Id=\"x\" xmlns:w=\"urn:w\"><b><c w:id=\"x\"/></b></a>");
  Status s = CheckUniqueIds(xmlDocGetRootElement(twice.get()));
  EXPECT_EQ(s.code(), StatusCode::kInvalid);
  EXPECT_EQ(s.message(),
            "Id value 'x' is carried by more than one element (possible signature wrapping)");
}

TEST(XmlUtilIdsTest, RegistersAnIdOnceAndRefusesOneTheTableGivesElsewhere) {
  static const XmlLibrary library;
  XmlDocPtr doc = ParseOrDie("<a xmlns:w=\"urn:w\"><b Id=\"x\"/><c w:Id=\"x\"/><d/></a>");
  xmlNode* root = xmlDocGetRootElement(doc.get());
  std::vector<xmlNode*> kids = ElementChildren(root);
  ASSERT_EQ(kids.size(), 3U);
  EXPECT_TRUE(RegisterId(doc.get(), kids[0], nullptr, "Id").ok());
  EXPECT_TRUE(RegisterId(doc.get(), kids[0], nullptr, "Id").ok());  // idempotent
  EXPECT_EQ(xmlGetID(doc.get(), ToXmlChar("x")), xmlHasNsProp(kids[0], ToXmlChar("Id"), nullptr));
  Status elsewhere = RegisterId(doc.get(), kids[1], "urn:w", "w:Id");
  EXPECT_EQ(elsewhere.code(), StatusCode::kInvalid);
  EXPECT_EQ(elsewhere.message(),
            "Id 'x' resolves to another element than c (possible signature wrapping)");
  Status absent = RegisterId(doc.get(), kids[2], "urn:w", "wsu:Id");
  EXPECT_EQ(absent.message(), "d has no wsu:Id");
}

TEST_F(XmlUtilTest, CopiesAnElementWithItsNamespacesAndSerialisesIt) {
  XmlDocPtr copy = CopyAsDocument(Child(root_, kNs, "Other"));
  ASSERT_NE(copy, nullptr);
  StatusOr<std::string> xml = SerialiseXml(copy.get());
  ASSERT_TRUE(xml.ok()) << xml.status().ToString();
  EXPECT_EQ(*xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<r:Other xmlns:r=\"urn:example:right\">a<r:inner>b</r:inner>c</r:Other>\n");
}

TEST(XmlUtilWriteTest, AddElementEscapesItsTextAndMayBeEmpty) {
  XmlDocPtr doc(xmlNewDoc(ToXmlChar("1.0")));
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr, ToXmlChar("root"), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  const std::string text = "a < b & c";
  AddElement(root, nullptr, "text", &text);
  AddElement(root, nullptr, "empty");
  StatusOr<std::string> xml = SerialiseXml(doc.get());
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("<root><text>a &lt; b &amp; c</text><empty/></root>"), std::string::npos)
      << *xml;
}

TEST(XmlUtilWriteTest, AddElementWithoutNamespaceDoesNotInheritTheParents) {
  XmlDocPtr doc(xmlNewDoc(ToXmlChar("1.0")));
  xmlNode* root = xmlNewDocNode(doc.get(), nullptr, ToXmlChar("root"), nullptr);
  xmlDocSetRootElement(doc.get(), root);
  xmlNs* ns = xmlNewNs(root, ToXmlChar("urn:example:q"), ToXmlChar("q"));
  xmlSetNs(root, ns);
  xmlNode* plain = AddElement(root, nullptr, "plain", std::string("x"));
  xmlNode* qualified = AddElement(root, ns, "qualified");
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(qualified, nullptr);
  EXPECT_EQ(plain->ns, nullptr);
  EXPECT_TRUE(IsElement(qualified, "urn:example:q", "qualified"));
  StatusOr<std::string> xml = SerialiseXml(doc.get());
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("<q:root xmlns:q=\"urn:example:q\"><plain>x</plain><q:qualified/></q:root>"),
            std::string::npos)
      << *xml;
}

TEST(XmlUtilDateTimeTest, FormatsUtcToTheSecond) {
  const system_clock::time_point t = Utc(2026, 1, 31, 9, 5, 0) + std::chrono::milliseconds(999);
  EXPECT_EQ(FormatUtc(t, kXsDateTimeUtcFormat), "2026-01-31T09:05:00Z");
  EXPECT_EQ(FormatUtc(t, "%Y%m%d"), "20260131");
}

TEST(XmlUtilDateTimeTest, ParsesZuluOffsetsAndFractions) {
  using std::chrono::milliseconds;
  const system_clock::time_point t = Utc(2026, 3, 1, 10, 0, 0);
  EXPECT_EQ(*ParseXsDateTime("2026-03-01T10:00:00Z", "T", XsTimeZone::kRequired), t);
  EXPECT_EQ(*ParseXsDateTime("2026-03-01T11:30:00+01:30", "T", XsTimeZone::kRequired), t);
  EXPECT_EQ(*ParseXsDateTime("2026-03-01T09:00:00-01:00", "T", XsTimeZone::kRequired), t);
  EXPECT_EQ(*ParseXsDateTime("2026-03-01T10:00:00.5Z", "T", XsTimeZone::kUtcOnly),
            t + milliseconds(500));
  EXPECT_EQ(*ParseXsDateTime("2026-03-01T10:00:00.1239Z", "T", XsTimeZone::kUtcOnly),
            t + milliseconds(123));
}

TEST(XmlUtilDateTimeTest, NamesWhatIsWrongAndWhichValue) {
  auto message = [](const std::string& s, XsTimeZone zone) {
    return ParseXsDateTime(s, "SigningTime", zone).status().message();
  };
  const XsTimeZone kAny = XsTimeZone::kRequired;
  const XsTimeZone kUtc = XsTimeZone::kUtcOnly;
  EXPECT_EQ(message("2026-03-01", kAny), "SigningTime is not an xs:dateTime");
  EXPECT_EQ(message("2026-03-01T10:00:00.Z", kAny), "SigningTime is not an xs:dateTime");
  EXPECT_EQ(message("2026-03-01T10:00:00", kAny),
            "SigningTime must carry a time zone (Z or ±hh:mm)");
  EXPECT_EQ(message("2026-03-01T10:00:00+ab:00", kAny), "SigningTime has a malformed time zone");
  EXPECT_EQ(message("2026-02-30T10:00:00Z", kAny), "SigningTime is not a valid date and time");
  EXPECT_EQ(message("2026-03-01T24:00:00Z", kUtc), "SigningTime is not a valid date and time");
  EXPECT_EQ(message("2026-03-01T10:00:00+01:00", kUtc),
            "SigningTime must be in UTC (end with Z, WSS 1.0 §10)");
  EXPECT_EQ(message("2026-03-01T10:00:00", kUtc),
            "SigningTime must be in UTC (end with Z, WSS 1.0 §10)");
  EXPECT_EQ(ParseXsDateTime("2026-02-30T10:00:00Z", "x", kAny).status().code(),
            StatusCode::kInvalid);
}

TEST(XmlUtilParseTest, ParseUntrustedXmlNamedNamesTheDocumentAndKeepsTheCode) {
  static const XmlLibrary library;
  StatusOr<XmlDocPtr> bad = ParseUntrustedXmlNamed("<a>", XmlLimits{}, "the body document");
  EXPECT_EQ(bad.status().code(), StatusCode::kMalformed);
  EXPECT_EQ(bad.status().message().rfind(
                "the body document does not parse (PSL-XML-SYNTAX at line 1): ", 0),
            0U)
      << bad.status().message();
  XmlLimits tiny;
  tiny.max_bytes = 4;
  EXPECT_EQ(ParseUntrustedXmlNamed("<a></a>", tiny, "x").status().code(), StatusCode::kTooLarge);
  EXPECT_TRUE(ParseUntrustedXmlNamed("<a/>", XmlLimits{}, "x").ok());
}

}  // namespace
}  // namespace psl::codecs
