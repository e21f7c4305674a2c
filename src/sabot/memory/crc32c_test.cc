#include "sabot/memory/crc32c.h"

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sabot {
namespace {

struct Vector {
  std::vector<uint8_t> data;
  uint32_t crc;
};

// Known answers from RFC 3720 (iSCSI), appendix B.4, and the classic check value.
std::vector<Vector> KnownVectors() {
  std::vector<Vector> v;
  std::string check = "123456789";
  v.push_back({std::vector<uint8_t>(check.begin(), check.end()), 0xE3069283u});
  v.push_back({std::vector<uint8_t>(32, 0x00), 0x8A9136AAu});
  v.push_back({std::vector<uint8_t>(32, 0xFF), 0x62A8AB43u});
  std::vector<uint8_t> ascending(32), descending(32);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<uint8_t>(i);
    descending[i] = static_cast<uint8_t>(31 - i);
  }
  v.push_back({ascending, 0x46DD794Eu});
  v.push_back({descending, 0x113FDB5Cu});
  v.push_back({{}, 0u});
  return v;
}

TEST(Crc32cTest, PortableMatchesKnownVectors) {
  for (const auto& v : KnownVectors()) {
    EXPECT_EQ(Crc32cPortable(v.data.data(), v.data.size()), v.crc) << v.data.size() << " bytes";
  }
}

TEST(Crc32cTest, HardwareMatchesKnownVectors) {
  if (!Crc32cHardwareAvailable()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  for (const auto& v : KnownVectors()) {
    EXPECT_EQ(Crc32cHardware(v.data.data(), v.data.size()), v.crc) << v.data.size() << " bytes";
  }
}

TEST(Crc32cTest, DispatchMatchesKnownVectors) {
  for (const auto& v : KnownVectors()) {
    EXPECT_EQ(Crc32c(v.data.data(), v.data.size()), v.crc);
  }
}

TEST(Crc32cTest, ImplementationsAgreeOnRandomData) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> data(40000);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t offset = 0; offset < 9; ++offset) {
    for (size_t length : {0, 1, 7, 8, 9, 63, 64, 65, 1000, 4991, 12287, 12288, 12289, 24576 + 100, 39990}) {
      if (offset + length > data.size()) continue;
      uint32_t portable = Crc32cPortable(data.data() + offset, length);
      EXPECT_EQ(Crc32c(data.data() + offset, length), portable) << offset << "+" << length;
      if (Crc32cHardwareAvailable()) {
        EXPECT_EQ(Crc32cHardware(data.data() + offset, length), portable);
      }
    }
  }
}

TEST(Crc32cTest, ContinuesAcrossPieces) {
  std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  uint32_t whole = Crc32c(text.data(), text.size());
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    uint32_t first = Crc32c(text.data(), cut);
    EXPECT_EQ(Crc32c(text.data() + cut, text.size() - cut, first), whole) << cut;
    EXPECT_EQ(Crc32cPortable(text.data() + cut, text.size() - cut,
                             Crc32cPortable(text.data(), cut)),
              whole);
  }
}

TEST(Crc32cTest, DetectsSingleBitFlips) {
  std::vector<uint8_t> data(256);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 31);
  uint32_t good = Crc32c(data.data(), data.size());
  for (size_t byte = 0; byte < data.size(); byte += 17) {
    for (int bit = 0; bit < 8; ++bit) {
      data[byte] ^= static_cast<uint8_t>(1 << bit);
      EXPECT_NE(Crc32c(data.data(), data.size()), good);
      data[byte] ^= static_cast<uint8_t>(1 << bit);
    }
  }
}

}  // namespace
}  // namespace sabot
