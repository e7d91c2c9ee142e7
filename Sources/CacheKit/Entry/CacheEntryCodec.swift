/// The binary form of `CacheEntry` that remote backends store.
///
/// Layout (little-endian): magic `CKE` (3 bytes), format version (1 byte), flags (1 byte), created/expires/stale-until
/// (3 × Int64 ms), then varint-length-prefixed fields: value, model, query text, embedding model, tags (count then
/// strings), usage (4 varints), cost (Float64), and a CRC-32C of everything before it (4 bytes). Any truncation,
/// flipped byte, unknown version or invalid UTF-8 is a `CacheError` with code `.corruptEntry`, never a crash.
public enum CacheEntryCodec {
    /// The format version written by this build. Readers accept this version only.
    public static let formatVersion: UInt8 = 1
    static let magic: [UInt8] = [0x43, 0x4B, 0x45]  // "CKE"

    private enum Flag {
        static let usage: UInt8 = 1 << 0
        static let model: UInt8 = 1 << 1
        static let cost: UInt8 = 1 << 2
        static let queryText: UInt8 = 1 << 3
        static let embeddingModel: UInt8 = 1 << 4
    }

    /// The checksum the codec appends (CRC-32C, little-endian) to `bytes`: for tools and fuzzers that build
    /// entries byte by byte.
    public static func sealed(_ bytes: [UInt8]) -> [UInt8] {
        let crc = CRC32C.checksum(bytes)
        return bytes + (0..<4).map { UInt8(truncatingIfNeeded: crc >> UInt32(8 * $0)) }
    }

    /// Encodes an entry.
    public static func encode(_ entry: CacheEntry) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(self.encodedCount(entry))
        self.encode(entry, appendingTo: &out)
        return out
    }

    /// Appends the encoding of `entry` to `out` (exactly ``encodedCount(_:)`` bytes), so a caller framing many
    /// entries (a Redis pipeline) writes them into one buffer without an array per entry.
    public static func encode(_ entry: CacheEntry, appendingTo out: inout [UInt8]) {
        let start = out.count
        out.append(contentsOf: magic)
        out.append(formatVersion)
        var flags: UInt8 = 0
        if entry.usage != nil { flags |= Flag.usage }
        if entry.model != nil { flags |= Flag.model }
        if entry.cost != nil { flags |= Flag.cost }
        if entry.queryText != nil { flags |= Flag.queryText }
        if entry.embeddingModel != nil { flags |= Flag.embeddingModel }
        out.append(flags)
        appendInt64(entry.createdAt.millisecondsSinceEpoch, to: &out)
        appendInt64(entry.expiresAt.millisecondsSinceEpoch, to: &out)
        appendInt64(entry.staleUntil.millisecondsSinceEpoch, to: &out)
        appendBytes(entry.value, to: &out)
        if let model = entry.model { appendBytes(model.utf8, to: &out) }
        if let text = entry.queryText { appendBytes(text.utf8, to: &out) }
        if let name = entry.embeddingModel { appendBytes(name.utf8, to: &out) }
        appendVarint(UInt64(entry.tags.count), to: &out)
        for tag in entry.tags { appendBytes(tag.utf8, to: &out) }
        if let usage = entry.usage {
            for count in [usage.promptTokens, usage.completionTokens, usage.cachedPromptTokens, usage.reasoningTokens] {
                appendVarint(UInt64(max(0, count)), to: &out)
            }
        }
        if let cost = entry.cost { appendInt64(Int64(bitPattern: cost.bitPattern), to: &out) }
        let crc = out.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[start...])) }
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: crc >> UInt32(shift))) }
    }

    /// The number of bytes ``encode(_:)`` produces for `entry`, computed without encoding it.
    public static func encodedCount(_ entry: CacheEntry) -> Int {
        func varintCount(_ value: Int) -> Int {
            var value = UInt64(max(0, value))
            var count = 1
            while value >= 0x80 {
                value >>= 7
                count += 1
            }
            return count
        }
        func bytesCount(_ count: Int) -> Int { varintCount(count) + count }
        var total = magic.count + 1 + 1 + 3 * 8 + bytesCount(entry.value.count)
        if let model = entry.model { total += bytesCount(model.utf8.count) }
        if let text = entry.queryText { total += bytesCount(text.utf8.count) }
        if let name = entry.embeddingModel { total += bytesCount(name.utf8.count) }
        total += varintCount(entry.tags.count)
        for tag in entry.tags { total += bytesCount(tag.utf8.count) }
        if let usage = entry.usage {
            for count in [usage.promptTokens, usage.completionTokens, usage.cachedPromptTokens, usage.reasoningTokens] {
                total += varintCount(count)
            }
        }
        if entry.cost != nil { total += 8 }
        return total + 4
    }

    /// Decodes an entry.
    ///
    /// - Throws: `CacheError` `.corruptEntry` if the bytes are not an intact entry of a known format version.
    public static func decode(_ bytes: some Collection<UInt8>) throws(CacheError) -> CacheEntry {
        let result: Result<CacheEntry, CacheError>? = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(CacheError) in try decode(UnsafeRawBufferPointer(buffer)) }
        }
        if let result { return try result.get() }
        let array = Array(bytes)
        return try array.withUnsafeBytes { buffer in
            Result { () throws(CacheError) in try decode(buffer) }
        }.get()
    }

    static func decode(_ buffer: UnsafeRawBufferPointer) throws(CacheError) -> CacheEntry {
        func corrupt(_ reason: String) -> CacheError { CacheError(.corruptEntry, "stored entry is corrupt: \(reason)") }
        guard buffer.count >= 3 + 1 + 1 + 24 + 4 else { throw corrupt("too short") }
        guard buffer[0] == magic[0], buffer[1] == magic[1], buffer[2] == magic[2] else { throw corrupt("bad magic") }
        guard buffer[3] == formatVersion else { throw corrupt("unknown format version \(buffer[3])") }
        let body = UnsafeRawBufferPointer(rebasing: buffer[0..<(buffer.count - 4)])
        let stored = UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: buffer.count - 4, as: UInt32.self))
        guard CRC32C.checksum(body) == stored else { throw corrupt("checksum mismatch") }

        var reader = Reader(buffer: body, offset: 5)
        let flags = buffer[4]
        let createdAt = try reader.int64()
        let expiresAt = try reader.int64()
        let staleUntil = try reader.int64()
        let value = try reader.bytes()
        let model = flags & Flag.model != 0 ? try reader.string() : nil
        let queryText = flags & Flag.queryText != 0 ? try reader.string() : nil
        let embeddingModel = flags & Flag.embeddingModel != 0 ? try reader.string() : nil
        let tagCount = try reader.varint()
        guard tagCount <= UInt64(body.count) else { throw corrupt("tag count out of range") }
        var tags = [String]()
        tags.reserveCapacity(Int(tagCount))
        for _ in 0..<tagCount { tags.append(try reader.string()) }
        var usage: TokenUsage?
        if flags & Flag.usage != 0 {
            // Counts are written as non-negative varints; one that does not fit an Int is corruption (found by
            // fuzzing: it decoded to a negative count that did not survive a round trip).
            func count() throws(CacheError) -> Int {
                let value = try reader.varint()
                guard value <= UInt64(TokenUsage.maximumCount) else { throw corrupt("token count out of range") }
                return Int(value)
            }
            let prompt = try count(), completion = try count(), cached = try count(), reasoning = try count()
            usage = TokenUsage(promptTokens: prompt, completionTokens: completion, cachedPromptTokens: cached, reasoningTokens: reasoning)
        }
        let cost = flags & Flag.cost != 0 ? Double(bitPattern: UInt64(bitPattern: try reader.int64())) : nil
        if let cost, !cost.isFinite || cost < 0 { throw corrupt("cost is not a finite non-negative number") }
        guard reader.offset == body.count else { throw corrupt("trailing bytes") }
        guard staleUntil >= expiresAt else { throw corrupt("stale-until before expiry") }
        // Times are milliseconds since 1970 up to year 9999; anything else (a CRC-valid entry written by a broken
        // or hostile writer) would overflow age and TTL arithmetic.
        let validTimes = 0...CacheTime.distantFuture.millisecondsSinceEpoch
        guard validTimes.contains(createdAt), validTimes.contains(expiresAt), validTimes.contains(staleUntil) else {
            throw corrupt("a time is outside 1970...9999")
        }
        return CacheEntry(
            value: value,
            createdAt: CacheTime(millisecondsSinceEpoch: createdAt),
            expiresAt: CacheTime(millisecondsSinceEpoch: expiresAt),
            staleUntil: CacheTime(millisecondsSinceEpoch: staleUntil),
            tags: tags, usage: usage, model: model, cost: cost, queryText: queryText, embeddingModel: embeddingModel
        )
    }

    private struct Reader {
        let buffer: UnsafeRawBufferPointer
        var offset: Int

        init(buffer: UnsafeRawBufferPointer, offset: Int) {
            self.buffer = buffer
            self.offset = offset
        }

        mutating func int64() throws(CacheError) -> Int64 {
            guard self.offset + 8 <= self.buffer.count else { throw CacheError(.corruptEntry, "stored entry is corrupt: truncated") }
            let value = Int64(littleEndian: self.buffer.loadUnaligned(fromByteOffset: self.offset, as: Int64.self))
            self.offset += 8
            return value
        }

        mutating func varint() throws(CacheError) -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard self.offset < self.buffer.count, shift < 64 else {
                    throw CacheError(.corruptEntry, "stored entry is corrupt: bad length")
                }
                let byte = self.buffer[self.offset]
                self.offset += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
        }

        mutating func bytes() throws(CacheError) -> [UInt8] {
            let length = try self.varint()
            guard length <= UInt64(self.buffer.count - self.offset) else {
                throw CacheError(.corruptEntry, "stored entry is corrupt: length past the end")
            }
            let end = self.offset + Int(length)
            let slice = [UInt8](UnsafeRawBufferPointer(rebasing: self.buffer[self.offset..<end]))
            self.offset = end
            return slice
        }

        mutating func string() throws(CacheError) -> String {
            let bytes = try self.bytes()
            guard let string = String(validating: bytes, as: UTF8.self) else {
                throw CacheError(.corruptEntry, "stored entry is corrupt: invalid UTF-8")
            }
            return string
        }
    }

    private static func appendInt64(_ value: Int64, to out: inout [UInt8]) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
    }

    private static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    private static func appendBytes(_ bytes: some Collection<UInt8>, to out: inout [UInt8]) {
        appendVarint(UInt64(bytes.count), to: &out)
        out.append(contentsOf: bytes)
    }
}
