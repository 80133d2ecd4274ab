#include "codecs/xml_util.h"

#include <gtest/gtest.h>

#include <string>

#include "codecs/xml_parser.h"

namespace psl::codecs {
namespace {

constexpr char kNs[] = "urn:example:right";

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

}  // namespace
}  // namespace psl::codecs
