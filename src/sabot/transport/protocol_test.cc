#include "sabot/transport/protocol.h"

#include "sabot/memory/sealed_block.h"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sabot/testing/assertions.h"

namespace sabot {
namespace {

TEST(PartitionPathTest, RoundTripsWithAndWithoutWriter) {
  PartitionPath partition{"s-1.x", 7, std::nullopt, std::nullopt};
  EXPECT_EQ(partition.ToString(), "/shuffle/s-1.x/partition/7");
  ASSERT_OK_AND_ASSIGN(auto parsed, PartitionPath::Parse(partition.ToString()));
  EXPECT_EQ(parsed, partition);
  PartitionPath stream{"s", 0, 3, 1};
  EXPECT_EQ(stream.ToString(), "/shuffle/s/partition/0/writer/3/attempt/1");
  ASSERT_OK_AND_ASSIGN(auto parsed_stream, PartitionPath::FromComponents(stream.ToComponents()));
  EXPECT_EQ(parsed_stream, stream);
}

TEST(PartitionPathTest, RejectsMalformedPathsNamingThem) {
  for (const char* bad : {"", "shuffle/s/partition/1", "/shuffle/s/partition", "/shuffle/s/partition/1/",
                          "/shuffle//partition/1", "/shuffle/.hidden/partition/1",
                          "/shuffle/a b/partition/1", "/shuffle/s/partition/+1",
                          "/shuffle/s/partition/1x", "/shuffle/s/partition/2147483648",
                          "/shuffle/s/partition/1/writer/1/attempt", "/shuffle/s/partition/1/writer/1/attempt/x",
                          "/shuffle/s/partition/1/writer/1/try/0", "/SHUFFLE/s/partition/1"}) {
    auto parsed = PartitionPath::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(parsed.status().IsInvalid()) << bad;
    EXPECT_NE(parsed.status().message().find(std::string("'") + bad + "'"), std::string::npos)
        << parsed.status().ToString();
  }
}

// Every number has one spelling: no sign (not even "-0") and no leading zeros, so two tickets
// never name the same partition.
TEST(PartitionPathTest, RejectsSignsAndLeadingZeros) {
  for (const char* bad : {"/shuffle/s/partition/-0", "/shuffle/s/partition/03",
                          "/shuffle/s/partition/00", "/shuffle/s/partition/-1",
                          "/shuffle/s/partition/ 1", "/shuffle/s/partition/1/writer/01/attempt/0",
                          "/shuffle/s/partition/1/writer/1/attempt/-0"}) {
    auto parsed = PartitionPath::Parse(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_TRUE(parsed.status().IsInvalid()) << bad;
    EXPECT_NE(parsed.status().message().find("without sign or leading zeros"), std::string::npos)
        << parsed.status().ToString();
  }
  ASSERT_OK_AND_ASSIGN(auto zero, PartitionPath::Parse("/shuffle/s/partition/0"));
  EXPECT_EQ(zero.partition_id, 0);
  ASSERT_OK_AND_ASSIGN(auto top, PartitionPath::Parse("/shuffle/s/partition/2147483647"));
  EXPECT_EQ(top.partition_id, 2147483647);
  ASSERT_RAISES_WITH(Invalid, "partition id '03'",
                     PartitionPath::FromComponents({"shuffle", "s", "partition", "03"}).status());
}

// Error messages quote the input escaped (printable ASCII only, so any gRPC client can decode
// the status) and cut (so a huge ticket cannot blow gRPC's metadata limit).
TEST(PartitionPathTest, QuotesHostileInputEscapedAndCut) {
  auto printable = [](const std::string& text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
      return static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) < 0x7f;
    });
  };
  auto non_utf8 = PartitionPath::Parse("/shuffle/\xff\xfe/partition/1");
  ASSERT_TRUE(non_utf8.status().IsInvalid());
  EXPECT_TRUE(printable(non_utf8.status().message())) << non_utf8.status().message();
  EXPECT_NE(non_utf8.status().message().find("\\xff\\xfe"), std::string::npos)
      << non_utf8.status().message();

  const std::string huge = "/shuffle/s/partition/" + std::string(1 << 20, '1');
  auto big = PartitionPath::Parse(huge);
  ASSERT_TRUE(big.status().IsInvalid());
  EXPECT_LT(big.status().message().size(), 512u);
  EXPECT_NE(big.status().message().find("1048597 bytes"), std::string::npos)
      << big.status().message();

  std::vector<std::string> many(100000, "x");
  auto components = PartitionPath::FromComponents(many);
  ASSERT_TRUE(components.status().IsInvalid());
  EXPECT_LT(components.status().message().size(), 512u);
}

TEST(CompressionTest, NamesRoundTrip) {
  for (Compression c : {Compression::kNone, Compression::kLz4Frame, Compression::kZstd}) {
    ASSERT_OK_AND_ASSIGN(auto parsed, ParseCompression(CompressionName(c)));
    EXPECT_EQ(parsed, c);
  }
  EXPECT_TRUE(ParseCompression("gzip").status().IsInvalid());
}

TEST(ChannelMessageTest, EncodesHeaderAndPayload) {
  auto payload = arrow::Buffer::FromString("block bytes");
  ASSERT_OK_AND_ASSIGN(auto encoded, EncodeChannelMessage(ChannelMessageKind::kData, 5, payload.get()));
  EXPECT_EQ(encoded->size(), kChannelHeaderBytes + payload->size());
  ASSERT_OK_AND_ASSIGN(auto decoded, DecodeChannelMessage(encoded));
  EXPECT_EQ(decoded.kind, ChannelMessageKind::kData);
  EXPECT_EQ(decoded.value, 5);
  ASSERT_NE(decoded.payload, nullptr);
  EXPECT_EQ(decoded.payload->ToString(), "block bytes");
  ASSERT_OK_AND_ASSIGN(auto credit, EncodeChannelMessage(ChannelMessageKind::kCredit, 3, nullptr));
  ASSERT_OK_AND_ASSIGN(auto decoded_credit, DecodeChannelMessage(credit));
  EXPECT_EQ(decoded_credit.kind, ChannelMessageKind::kCredit);
  EXPECT_EQ(decoded_credit.payload, nullptr);
}

TEST(ChannelMessageTest, RejectsShortAndUnknownMessages) {
  EXPECT_TRUE(DecodeChannelMessage(arrow::Buffer::FromString("1234")).status().IsInvalid());
  EXPECT_TRUE(DecodeChannelMessage(nullptr).status().IsInvalid());
  std::string unknown(8, '\0');
  unknown[0] = 42;
  EXPECT_TRUE(DecodeChannelMessage(arrow::Buffer::FromString(unknown)).status().IsInvalid());
}

// What a reader may send on DoExchange: CREDIT(1 .. 2^16) without payload, nothing else.
TEST(ChannelMessageTest, CreditMessagesAreCheckedBeforeTheyGrant) {
  auto encode = [](ChannelMessageKind kind, int32_t value, const arrow::Buffer* payload = nullptr) {
    return EncodeChannelMessage(kind, value, payload).ValueOrDie();
  };
  ASSERT_OK_AND_ASSIGN(int32_t one, DecodeCreditMessage(encode(ChannelMessageKind::kCredit, 1)));
  EXPECT_EQ(one, 1);
  ASSERT_OK_AND_ASSIGN(int32_t most,
                       DecodeCreditMessage(encode(ChannelMessageKind::kCredit, kMaxCreditGrant)));
  EXPECT_EQ(most, kMaxCreditGrant);
  ASSERT_RAISES_WITH(Invalid, "outside [1, 65536]",
                     DecodeCreditMessage(encode(ChannelMessageKind::kCredit, 2147483647)).status());
  ASSERT_RAISES_WITH(Invalid, "CREDIT of 0",
                     DecodeCreditMessage(encode(ChannelMessageKind::kCredit, 0)).status());
  ASSERT_RAISES_WITH(Invalid, "CREDIT of -1",
                     DecodeCreditMessage(encode(ChannelMessageKind::kCredit, -1)).status());
  ASSERT_RAISES_WITH(Invalid, "only CREDIT",
                     DecodeCreditMessage(encode(ChannelMessageKind::kData, 1)).status());
  auto payload = arrow::Buffer::FromString("x");
  ASSERT_RAISES_WITH(Invalid, "payload",
                     DecodeCreditMessage(encode(ChannelMessageKind::kCredit, 1, payload.get()))
                         .status());
  ASSERT_RAISES_WITH(Invalid, "shorter than",
                     DecodeCreditMessage(arrow::Buffer::FromString("abc")).status());
}

// An event's bytes travel as an EVENT message: on DoExchange as the frame itself, on DoGet as
// the app_metadata of a zero-row batch (value 0), which DecodeEventMetadata checks.
TEST(ChannelMessageTest, EventMessagesCarryTheirBytesAndAreChecked) {
  const std::string bytes("wm\0\x01", 4);
  auto payload = arrow::Buffer::FromString(bytes);
  ASSERT_OK_AND_ASSIGN(auto frame, EncodeChannelMessage(ChannelMessageKind::kEvent, 0,
                                                        payload.get()));
  // The exact bytes: kind 7 and value 0 as little-endian int32, then the payload.
  EXPECT_EQ(frame->ToString(), std::string("\x07\0\0\0\0\0\0\0", 8) + bytes);
  ASSERT_OK_AND_ASSIGN(auto decoded, DecodeChannelMessage(frame));
  EXPECT_EQ(decoded.kind, ChannelMessageKind::kEvent);
  ASSERT_OK_AND_ASSIGN(auto event, DecodeEventMetadata(frame));
  EXPECT_EQ(event->ToString(), bytes);
  // An empty event decodes to an empty buffer, never null.
  ASSERT_OK_AND_ASSIGN(auto empty_frame,
                       EncodeChannelMessage(ChannelMessageKind::kEvent, 0, nullptr));
  ASSERT_OK_AND_ASSIGN(auto empty, DecodeEventMetadata(empty_frame));
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->size(), 0);
  ASSERT_RAISES_WITH(Invalid, "must be an EVENT message",
                     DecodeEventMetadata(EncodeChannelMessage(ChannelMessageKind::kData, 0,
                                                              payload.get())
                                             .ValueOrDie())
                         .status());
  ASSERT_RAISES_WITH(Invalid, "value 3",
                     DecodeEventMetadata(EncodeChannelMessage(ChannelMessageKind::kEvent, 3,
                                                              payload.get())
                                             .ValueOrDie())
                         .status());
  auto huge = arrow::Buffer::FromString(std::string(kMaxEventBytes + 1, 'h'));
  ASSERT_RAISES_WITH(Invalid, "exceeds the limit",
                     DecodeEventMetadata(EncodeChannelMessage(ChannelMessageKind::kEvent, 0,
                                                              huge.get())
                                             .ValueOrDie())
                         .status());
  ASSERT_RAISES_WITH(Invalid, "shorter than",
                     DecodeEventMetadata(arrow::Buffer::FromString("ev")).status());
  // Kinds beyond EVENT are unknown.
  std::string eight(8, '\0');
  eight[0] = 8;
  EXPECT_TRUE(DecodeChannelMessage(arrow::Buffer::FromString(eight)).status().IsInvalid());
}

}  // namespace
}  // namespace sabot
