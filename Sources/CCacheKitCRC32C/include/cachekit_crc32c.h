#ifndef CACHEKIT_CRC32C_H
#define CACHEKIT_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/// CRC-32C (Castagnoli) of `count` bytes, continuing from `crc` (start with 0). Uses the SSE4.2 `crc32`
/// instruction when the CPU has it (checked once at run time), a table otherwise.
uint32_t cachekit_crc32c(uint32_t crc, const void *bytes, size_t count);

/// Whether `cachekit_crc32c` runs on the CPU's CRC instruction (for benchmarks and tests).
int cachekit_crc32c_is_hardware(void);

/// The table implementation, whatever the CPU has (tests compare the two).
uint32_t cachekit_crc32c_portable(uint32_t crc, const void *bytes, size_t count);

#endif
