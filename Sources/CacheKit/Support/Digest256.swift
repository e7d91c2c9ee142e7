import Crypto

/// A 256-bit SHA-256 digest held inline (four words, no heap allocation), so keys hash and compare cheaply.
public struct Digest256: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var w0: UInt64
    public var w1: UInt64
    public var w2: UInt64
    public var w3: UInt64

    /// Creates a digest from four big-endian words.
    public init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
    }

    /// SHA-256 of `bytes`.
    public init(hashing bytes: [UInt8]) {
        self = bytes.withUnsafeBytes { Digest256(hashing: $0) }
    }

    /// SHA-256 of the bytes in `buffer`.
    public init(hashing buffer: UnsafeRawBufferPointer) {
        var hasher = SHA256()
        hasher.update(bufferPointer: buffer)
        let digest = hasher.finalize()
        self = digest.withUnsafeBytes { Digest256(bytes: $0) }
    }

    /// HMAC-SHA256 of `message` under `key`: for authenticating messages between instances (the invalidation bus).
    public init(authenticating message: [UInt8], key: [UInt8]) {
        let code = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        self = code.withUnsafeBytes { (buffer: UnsafeRawBufferPointer) in Digest256(bytes: buffer) }
    }

    /// Reads 32 bytes (big-endian words). Returns `nil` if `bytes` is not exactly 32 bytes long.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var index = bytes.startIndex
        func next() -> UInt64 {
            var value: UInt64 = 0
            for _ in 0..<8 {
                value = (value << 8) | UInt64(bytes[index])
                index = bytes.index(after: index)
            }
            return value
        }
        words.0 = next()
        words.1 = next()
        words.2 = next()
        words.3 = next()
        self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    init(bytes: UnsafeRawBufferPointer) {
        precondition(bytes.count >= 32)
        self.init(
            w0: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
            w1: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
            w2: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
            w3: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 24, as: UInt64.self))
        )
    }

    /// Parses 64 lowercase or uppercase hexadecimal characters.
    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64, let bytes = Hex.decode(utf8) else { return nil }
        self.init(bytes: bytes)
    }

    /// The 32 digest bytes.
    public var bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(32)
        for word in [w0, w1, w2, w3] {
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        return out
    }

    /// 64 lowercase hexadecimal characters.
    public var hex: String { Hex.encode(self.bytes) }

    /// Appends the lowercase hex of the first `byteCount` bytes (at most 32) to `out`, without building a String.
    public func appendHex(to out: inout [UInt8], byteCount: Int = 32) {
        let digits: StaticString = "0123456789abcdef"
        let table = UnsafeRawBufferPointer(start: digits.utf8Start, count: 16)
        var remaining = min(max(byteCount, 0), 32)
        for word in [self.w0, self.w1, self.w2, self.w3] where remaining > 0 {
            var shift: UInt64 = 56
            while remaining > 0 {
                let byte = UInt8(truncatingIfNeeded: word >> shift)
                out.append(table[Int(byte >> 4)])
                out.append(table[Int(byte & 0x0F)])
                remaining -= 1
                if shift == 0 { break }
                shift -= 8
            }
        }
    }

    public var description: String { self.hex }

    public func hash(into hasher: inout Hasher) {
        // The words are uniformly distributed already: one is enough to feed the hasher.
        hasher.combine(self.w0)
    }

    public static func < (lhs: Digest256, rhs: Digest256) -> Bool {
        (lhs.w0, lhs.w1, lhs.w2, lhs.w3) < (rhs.w0, rhs.w1, rhs.w2, rhs.w3)
    }
}

/// Lowercase hexadecimal encoding.
package enum Hex {
    private static let digits: [UInt8] = Array("0123456789abcdef".utf8)

    /// Encodes bytes as lowercase hexadecimal.
    package static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes hexadecimal characters; `nil` on an odd length or a non-hex character.
    package static func decode(_ chars: [UInt8]) -> [UInt8]? {
        guard chars.count % 2 == 0 else { return nil }
        func value(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        var out = [UInt8]()
        out.reserveCapacity(chars.count / 2)
        var i = 0
        while i < chars.count {
            guard let hi = value(chars[i]), let lo = value(chars[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }
}
