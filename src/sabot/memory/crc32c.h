#pragma once

#include <cstddef>
#include <cstdint>

namespace sabot {

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and LevelDB.
// Crc32c("123456789") == 0xE3069283.
//
// Crc32c uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run time) and
// a portable slicing-by-8 table otherwise. `crc` continues a previous result, so
// Crc32c(b, Crc32c(a)) == Crc32c(a + b). Pure functions; thread-safe.
uint32_t Crc32c(const void* data, size_t length, uint32_t crc = 0);

// The two implementations, exposed so tests can check both against known vectors.
uint32_t Crc32cPortable(const void* data, size_t length, uint32_t crc = 0);
// Only callable when Crc32cHardwareAvailable().
uint32_t Crc32cHardware(const void* data, size_t length, uint32_t crc = 0);
bool Crc32cHardwareAvailable();

}  // namespace sabot
