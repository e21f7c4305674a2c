#include "sabot/transport/protocol.h"

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

}  // namespace
}  // namespace sabot
