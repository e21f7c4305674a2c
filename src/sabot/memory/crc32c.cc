#include "sabot/memory/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <nmmintrin.h>
#define SABOT_CRC32C_X86 1
#endif

namespace sabot {

namespace {

constexpr uint32_t kPolynomial = 0x82F63B78u;

using Tables = std::array<std::array<uint32_t, 256>, 8>;

constexpr Tables MakeTables() {
  Tables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPolynomial : c >> 1;
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
  }
  return t;
}

constexpr Tables kTables = MakeTables();

uint64_t LoadLittleEndian64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

}  // namespace

uint32_t Crc32cPortable(const void* data, size_t length, uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (length >= 8) {
    uint64_t v = LoadLittleEndian64(p) ^ c;
    c = kTables[7][v & 0xFF] ^ kTables[6][(v >> 8) & 0xFF] ^ kTables[5][(v >> 16) & 0xFF] ^
        kTables[4][(v >> 24) & 0xFF] ^ kTables[3][(v >> 32) & 0xFF] ^
        kTables[2][(v >> 40) & 0xFF] ^ kTables[1][(v >> 48) & 0xFF] ^ kTables[0][v >> 56];
    p += 8;
    length -= 8;
  }
  while (length-- > 0) c = (c >> 8) ^ kTables[0][(c ^ *p++) & 0xFF];
  return ~c;
}

#ifdef SABOT_CRC32C_X86

namespace {

// Bytes each of the three interleaved lanes covers per round.
constexpr size_t kLaneBytes = 4096;

// The CRC register is linear in its input: the register after A then B equals the register
// after A advanced over |B| zero bytes, XOR the register of B alone. Advancing over
// kLaneBytes zero bytes is itself linear in the 32 register bits, so it is four table lookups.
struct ZeroShift {
  std::array<std::array<uint32_t, 256>, 4> t{};

  ZeroShift() {
    std::array<uint32_t, 32> basis{};
    for (int bit = 0; bit < 32; ++bit) {
      uint32_t reg = 1u << bit;
      for (size_t i = 0; i < kLaneBytes; ++i) reg = (reg >> 8) ^ kTables[0][reg & 0xFF];
      basis[bit] = reg;
    }
    for (int b = 0; b < 4; ++b) {
      for (uint32_t v = 0; v < 256; ++v) {
        uint32_t out = 0;
        for (int bit = 0; bit < 8; ++bit) {
          if (v & (1u << bit)) out ^= basis[b * 8 + bit];
        }
        t[b][v] = out;
      }
    }
  }

  uint32_t operator()(uint32_t reg) const {
    return t[0][reg & 0xFF] ^ t[1][(reg >> 8) & 0xFF] ^ t[2][(reg >> 16) & 0xFF] ^ t[3][reg >> 24];
  }
};

const ZeroShift& LaneShift() {
  static const ZeroShift shift;
  return shift;
}

}  // namespace

__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(const void* data, size_t length,
                                                           uint32_t crc) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (length > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
    --length;
  }
  // Three independent chains hide the crc32 instruction's latency (3 cycles, 1 per cycle
  // throughput); their registers are then combined with LaneShift.
  if (length >= 3 * kLaneBytes) {
    const ZeroShift& shift = LaneShift();
    while (length >= 3 * kLaneBytes) {
      uint64_t c0 = c, c1 = 0, c2 = 0;
      for (size_t i = 0; i < kLaneBytes; i += 8) {
        uint64_t v0, v1, v2;
        std::memcpy(&v0, p + i, 8);
        std::memcpy(&v1, p + kLaneBytes + i, 8);
        std::memcpy(&v2, p + 2 * kLaneBytes + i, 8);
        c0 = _mm_crc32_u64(c0, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      uint32_t reg = shift(static_cast<uint32_t>(c0)) ^ static_cast<uint32_t>(c1);
      c = shift(reg) ^ static_cast<uint32_t>(c2);
      p += 3 * kLaneBytes;
      length -= 3 * kLaneBytes;
    }
  }
  while (length >= 8) {
    uint64_t v;
    std::memcpy(&v, p, sizeof(v));
    c = _mm_crc32_u64(c, v);
    p += 8;
    length -= 8;
  }
  while (length-- > 0) c = _mm_crc32_u8(static_cast<uint32_t>(c), *p++);
  return ~static_cast<uint32_t>(c);
}

bool Crc32cHardwareAvailable() {
  static const bool available = __builtin_cpu_supports("sse4.2");
  return available;
}

#else

uint32_t Crc32cHardware(const void* data, size_t length, uint32_t crc) {
  return Crc32cPortable(data, length, crc);
}

bool Crc32cHardwareAvailable() { return false; }

#endif

uint32_t Crc32c(const void* data, size_t length, uint32_t crc) {
  static const bool hardware = Crc32cHardwareAvailable();
  return hardware ? Crc32cHardware(data, length, crc) : Crc32cPortable(data, length, crc);
}

}  // namespace sabot
