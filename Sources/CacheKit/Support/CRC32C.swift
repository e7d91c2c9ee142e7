import CCacheKitCRC32C

/// CRC-32C (Castagnoli). Used as the `CacheEntry` codec checksum: it detects flipped and truncated bytes; it is not
/// a defence against an attacker who can write to the cache (nothing short of a MAC would be). Runs on the CPU's
/// CRC instruction where there is one (SSE4.2), slicing-by-8 tables elsewhere.
enum CRC32C {
    static func checksum(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = buffer.baseAddress else { return 0 }
        return cachekit_crc32c(0, base, buffer.count)
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// The table implementation, for comparing against the instruction in tests.
    static func portableChecksum(_ buffer: UnsafeRawBufferPointer) -> UInt32 {
        guard let base = buffer.baseAddress else { return 0 }
        return cachekit_crc32c_portable(0, base, buffer.count)
    }

    static var isHardware: Bool { cachekit_crc32c_is_hardware() != 0 }
}
