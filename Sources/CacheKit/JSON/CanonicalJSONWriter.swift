/// Writes JSON in the RFC 8785 JSON Canonicalization Scheme: object members sorted by their names' UTF-16 code
/// units, no insignificant whitespace, numbers in ECMAScript `Number.prototype.toString` form, strings with the
/// minimal escapes. Equal JSON data always gives equal bytes, which is what a cache key hashes.
public struct CanonicalJSONWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8]

    /// Creates a writer, reserving `capacity` bytes.
    public init(capacity: Int = 256) {
        self.bytes = []
        self.bytes.reserveCapacity(capacity)
    }

    /// Appends a value.
    public mutating func write(_ value: JSONValue) {
        switch value {
        case .null: self.writeRaw("null")
        case .bool(let flag): self.writeRaw(flag ? "true" : "false")
        case .number(let number): self.write(number: number)
        case .string(let string): self.write(string: string)
        case .array(let elements):
            self.bytes.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { self.bytes.append(UInt8(ascii: ",")) }
                first = false
                self.write(element)
            }
            self.bytes.append(UInt8(ascii: "]"))
        case .object(let members):
            self.write(members: members, excluding: nil)
        }
    }

    /// Appends an object, leaving out the members whose names are in `excluded`.
    public mutating func write(members: [String: JSONValue], excluding excluded: Set<String>?) {
        self.bytes.append(UInt8(ascii: "{"))
        // Sort (name, value) pairs once, in a stack buffer: no second hash lookup and no heap allocation per object.
        withUnsafeTemporaryAllocation(of: (key: String, value: JSONValue).self, capacity: members.count) { pairs in
            var count = 0
            let filter = excluded.flatMap { $0.isEmpty ? nil : $0 }
            for member in members where filter?.contains(member.key) != true {
                (pairs.baseAddress! + count).initialize(to: member)
                count += 1
            }
            var used = UnsafeMutableBufferPointer(rebasing: pairs[0..<count])
            if count > 1 { used.sort { Self.utf16Precedes($0.key, $1.key) } }
            for index in 0..<count {
                if index > 0 { self.bytes.append(UInt8(ascii: ",")) }
                self.write(string: used[index].key)
                self.bytes.append(UInt8(ascii: ":"))
                self.write(used[index].value)
            }
            _ = used.deinitialize()
        }
        self.bytes.append(UInt8(ascii: "}"))
    }

    /// Appends raw, already valid JSON text (used for fixed punctuation and member names).
    public mutating func writeRaw(_ text: StaticString) {
        self.bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// RFC 8785 §3.2.3: compare names as arrays of UTF-16 code units. UTF-8 byte order agrees with it except when
    /// one side has a supplementary-plane character, so the ASCII/BMP-common case takes the byte comparison.
    static func utf16Precedes(_ lhs: String, _ rhs: String) -> Bool {
        var l = lhs.utf8.makeIterator()
        var r = rhs.utf8.makeIterator()
        while true {
            guard let a = l.next() else { return r.next() != nil }
            guard let b = r.next() else { return false }
            if a == b { continue }
            // Lead bytes of 4-byte sequences (0xF0...) encode supplementary characters, which UTF-16 puts before
            // U+E000...U+FFFF (surrogates 0xD800...). Only then does the order differ from UTF-8's.
            if a >= 0xF0 || b >= 0xF0 || a >= 0xEE || b >= 0xEE {
                return lhs.utf16.lexicographicallyPrecedes(rhs.utf16)
            }
            return a < b
        }
    }

    /// Appends a string with RFC 8785 escaping: `"` `\` and control characters only.
    public mutating func write(string: String) {
        self.bytes.append(UInt8(ascii: "\""))
        let contiguous = string.utf8.withContiguousStorageIfAvailable { Self.appendEscaped($0, to: &self.bytes) }
        if contiguous == nil { Self.appendEscaped(Array(string.utf8), to: &self.bytes) }
        self.bytes.append(UInt8(ascii: "\""))
    }

    @discardableResult
    private static func appendEscaped(_ utf8: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) -> Bool {
        var runStart = 0
        var i = 0
        let count = utf8.count
        guard let base = utf8.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        while i < count {
            // Skip 8 bytes at a time while none needs escaping (the common case: plain text). SWAR: a byte is
            // below 0x20, or equal to '"' or '\\', exactly when the corresponding high bit below is set.
            while i + 8 <= count {
                let word = raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101
                let highs: UInt64 = 0x8080_8080_8080_8080
                let quote = word ^ (ones &* 0x22)
                let backslash = word ^ (ones &* 0x5C)
                let special =
                    ((word &- ones &* 0x20) & ~word) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
                if special & highs != 0 { break }
                i += 8
            }
            guard i < count else { break }
            let byte = utf8[i]
            if byte >= 0x20 && byte != 0x22 && byte != 0x5C {
                i += 1
                continue
            }
            if runStart < i { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
            runStart = i + 1
            i += 1
            bytes.append(UInt8(ascii: "\\"))
            switch byte {
            case 0x22: bytes.append(0x22)
            case 0x5C: bytes.append(0x5C)
            case 0x08: bytes.append(UInt8(ascii: "b"))
            case 0x09: bytes.append(UInt8(ascii: "t"))
            case 0x0A: bytes.append(UInt8(ascii: "n"))
            case 0x0C: bytes.append(UInt8(ascii: "f"))
            case 0x0D: bytes.append(UInt8(ascii: "r"))
            default:
                bytes.append(UInt8(ascii: "u"))
                bytes.append(0x30)
                bytes.append(0x30)
                bytes.append(Self.hexDigit(byte >> 4))
                bytes.append(Self.hexDigit(byte & 0xF))
            }
        }
        if runStart < count { bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        return true
    }

    private static func appendEscaped(_ utf8: [UInt8], to bytes: inout [UInt8]) {
        utf8.withUnsafeBufferPointer { _ = appendEscaped($0, to: &bytes) }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x61 + value - 10 }

    /// Appends a number in ECMAScript `Number.prototype.toString` form (RFC 8785 §3.2.2.3).
    /// Non-finite numbers cannot occur in parsed JSON; written values are replaced by `null` as JavaScript does.
    public mutating func write(number: Double) {
        guard number.isFinite else {
            self.writeRaw("null")
            return
        }
        if number == 0 {
            self.bytes.append(UInt8(ascii: "0"))  // -0 is "0" too
            return
        }
        if number.rounded(.towardZero) == number, abs(number) < 9_007_199_254_740_992 {
            self.write(integer: Int64(number))
            return
        }
        self.bytes.append(contentsOf: ECMAScriptNumber.format(number).utf8)
    }
}

extension CanonicalJSONWriter {
    /// Appends a decimal integer without going through `String`.
    mutating func write(integer: Int64) {
        if integer < 0 { self.bytes.append(UInt8(ascii: "-")) }
        var magnitude = integer.magnitude
        if magnitude < 10 {
            self.bytes.append(0x30 + UInt8(magnitude))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // room for 24 digits, written backwards
        var count = 0
        withUnsafeMutableBytes(of: &digits) { buffer in
            while magnitude > 0 {
                count += 1
                buffer[24 - count] = 0x30 + UInt8(magnitude % 10)
                magnitude /= 10
            }
            self.bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
        }
    }
}

/// ECMAScript number-to-string conversion on top of Swift's shortest round-trip digits.
enum ECMAScriptNumber {
    /// Formats a finite, non-zero double as ECMAScript's `Number.prototype.toString(10)` does.
    static func format(_ value: Double) -> String {
        // Swift's description prints the shortest digit string that round-trips (and the closest when there are
        // several), which is exactly the digit string ECMA-262 §6.1.6.1.20 asks for; only the layout differs.
        let text = value.magnitude.description
        var digits = [UInt8]()
        var exponent = 0
        var seenPoint = false
        var fractionDigits = 0
        var iterator = text.utf8.makeIterator()
        while let c = iterator.next() {
            if c == UInt8(ascii: ".") {
                seenPoint = true
            } else if c == UInt8(ascii: "e") || c == UInt8(ascii: "E") {
                var rest = ""
                while let d = iterator.next() { rest.unicodeScalars.append(Unicode.Scalar(d)) }
                exponent = Int(rest) ?? 0
                break
            } else {
                digits.append(c)
                if seenPoint { fractionDigits += 1 }
            }
        }
        // value = 0.d1d2...dk × 10^n, with leading and trailing zeros removed from the digits.
        var n = digits.count - fractionDigits + exponent
        while let first = digits.first, first == UInt8(ascii: "0") {
            digits.removeFirst()
            n -= 1
        }
        while let last = digits.last, last == UInt8(ascii: "0") { digits.removeLast() }
        let k = digits.count
        var out = value < 0 ? "-" : ""
        let d = String(decoding: digits, as: UTF8.self)
        if k <= n, n <= 21 {
            out += d + String(repeating: "0", count: n - k)
        } else if 0 < n, n <= 21 {
            out += String(d.prefix(n)) + "." + String(d.dropFirst(n))
        } else if -6 < n, n <= 0 {
            out += "0." + String(repeating: "0", count: -n) + d
        } else {
            let e = n - 1
            out += String(d.prefix(1))
            if k > 1 { out += "." + String(d.dropFirst()) }
            out += "e" + (e < 0 ? "-" : "+") + String(abs(e))
        }
        return out
    }
}

extension JSONValue {
    /// The RFC 8785 canonical JSON bytes of the value.
    public func canonicalBytes() -> [UInt8] {
        var writer = CanonicalJSONWriter()
        writer.write(self)
        return writer.bytes
    }
}
