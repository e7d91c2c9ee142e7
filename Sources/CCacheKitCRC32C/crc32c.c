#include "cachekit_crc32c.h"

#include <pthread.h>
#include <string.h>

// Reflected Castagnoli polynomial.
#define POLY 0x82F63B78u

// Built exactly once (pthread_once): two threads racing to fill it, even with equal data, is a data race in C.
static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t crc = i;
        for (int k = 0; k < 8; k++) { crc = (crc & 1) ? (crc >> 1) ^ POLY : crc >> 1; }
        table[0][i] = crc;
    }
    for (int t = 1; t < 8; t++) {
        for (int i = 0; i < 256; i++) { table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF]; }
    }
}

uint32_t cachekit_crc32c_portable(uint32_t crc, const void *bytes, size_t count) {
    pthread_once(&table_once, build_table);
    const unsigned char *p = bytes;
    crc = ~crc;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        word ^= crc;  // little-endian hosts only (x86_64, aarch64)
        crc = table[7][word & 0xFF] ^ table[6][(word >> 8) & 0xFF] ^ table[5][(word >> 16) & 0xFF]
            ^ table[4][(word >> 24) & 0xFF] ^ table[3][(word >> 32) & 0xFF] ^ table[2][(word >> 40) & 0xFF]
            ^ table[1][(word >> 48) & 0xFF] ^ table[0][word >> 56];
        p += 8;
        count -= 8;
    }
    while (count--) { crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF]; }
    return ~crc;
}

#if defined(__x86_64__)
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_sse42(uint32_t crc, const void *bytes, size_t count) {
    const unsigned char *p = bytes;
    uint64_t c = ~crc;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        count -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (count--) { c32 = _mm_crc32_u8(c32, *p++); }
    return ~c32;
}

static int has_sse42(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}
#endif

#if defined(__x86_64__)
static int hardware;
static pthread_once_t hardware_once = PTHREAD_ONCE_INIT;
static void detect_hardware(void) { hardware = has_sse42(); }
#endif

int cachekit_crc32c_is_hardware(void) {
#if defined(__x86_64__)
    pthread_once(&hardware_once, detect_hardware);
    return hardware;
#else
    return 0;
#endif
}

uint32_t cachekit_crc32c(uint32_t crc, const void *bytes, size_t count) {
#if defined(__x86_64__)
    if (cachekit_crc32c_is_hardware()) { return crc32c_sse42(crc, bytes, count); }
#endif
    return cachekit_crc32c_portable(crc, bytes, count);
}
