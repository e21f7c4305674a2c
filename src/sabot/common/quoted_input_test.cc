#include "sabot/common/quoted_input.h"

#include <string>

#include <gtest/gtest.h>

namespace sabot {
namespace {

// Valid UTF-8 made of printable ASCII only: what a gRPC status message may always carry.
bool PrintableAscii(const std::string& text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      return false;
    }
  }
  return true;
}

TEST(QuoteInput, KeepsPrintableText) {
  EXPECT_EQ(QuoteInput("/shuffle/s1/partition/3"), "'/shuffle/s1/partition/3'");
  EXPECT_EQ(QuoteInput(""), "''");
}

TEST(QuoteInput, EscapesControlBytesQuotesAndNonUtf8) {
  EXPECT_EQ(QuoteInput(std::string("a\0b", 3)), "'a\\x00b'");
  EXPECT_EQ(QuoteInput("x\ny\x7f"), "'x\\x0ay\\x7f'");
  EXPECT_EQ(QuoteInput("it's a\\b"), "'it\\'s a\\\\b'");
  EXPECT_EQ(QuoteInput("\xff\xfe"), "'\\xff\\xfe'");
  // Valid UTF-8 beyond ASCII is escaped too: the result is always plain ASCII.
  EXPECT_EQ(QuoteInput("\xc3\xa9"), "'\\xc3\\xa9'");
}

TEST(QuoteInput, CapsLongInputAndSaysHowLong) {
  const std::string big(1 << 20, 'a');
  const std::string quoted = QuoteInput(big);
  EXPECT_EQ(quoted, "'" + std::string(kMaxQuotedBytes, 'a') + "...' (1048576 bytes)");
  EXPECT_EQ(QuoteInput("abcdef", 3), "'abc...' (6 bytes)");
  EXPECT_EQ(QuoteInput("abc", 3), "'abc'");
}

TEST(QuoteInput, AnyByteStringGivesBoundedPrintableAscii) {
  std::string all;
  for (int c = 0; c < 256; ++c) all.push_back(static_cast<char>(c));
  const std::string quoted = QuoteInput(all, all.size());
  EXPECT_TRUE(PrintableAscii(quoted)) << quoted;
  EXPECT_LE(QuoteInput(all).size(), 4 * kMaxQuotedBytes + 32);
}

TEST(SanitizeMessage, EscapesAndCaps) {
  EXPECT_EQ(SanitizeMessage("ok\tfine", 100), "ok\tfine");
  EXPECT_EQ(SanitizeMessage("a\xff", 100), "a\\xff");
  const std::string cut = SanitizeMessage(std::string(5000, 'x'), 100);
  EXPECT_EQ(cut, std::string(100, 'x') + "... (5000 bytes)");
  // An escape never straddles the cut.
  EXPECT_EQ(SanitizeMessage("ab\xff", 4), "ab... (3 bytes)");
}

}  // namespace
}  // namespace sabot
