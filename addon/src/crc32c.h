// CRC32C (Castagnoli), the checksum every chunk carries from fill to hit and
// every transport payload carries on the wire. One implementation for JS and
// C++ so a checksum computed by a tier and one checked by the transport agree.
#pragma once
#include <cstddef>
#include <cstdint>

namespace weightcache {

// Extends `crc` (0 for a fresh checksum) over `len` bytes at `data`.
// Uses the SSE4.2 crc32 instruction when the CPU has it (checked once at run
// time), else a portable slicing-by-8 table.
uint32_t Crc32c(uint32_t crc, const uint8_t* data, size_t len);

// "sse4.2" or "table": which implementation Crc32c picked on this CPU.
const char* Crc32cImplementation();

}  // namespace weightcache
