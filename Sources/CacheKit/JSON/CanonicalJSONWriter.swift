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
        var first = true
        for name in Self.sortedNames(members.keys, excluding: excluded) {
            if !first { self.bytes.append(UInt8(ascii: ",")) }
            first = false
            self.write(string: name)
            self.bytes.append(UInt8(ascii: ":"))
            self.write(members[name]!)
        }
        self.bytes.append(UInt8(ascii: "}"))
    }

    /// Appends raw, already valid JSON text (used for fixed punctuation and member names).
    public mutating func writeRaw(_ text: StaticString) {
        self.bytes.append(contentsOf: UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Member names in RFC 8785 order (UTF-16 code units).
    static func sortedNames(_ names: Dictionary<String, JSONValue>.Keys, excluding excluded: Set<String>?) -> [String] {
        var sorted = [String]()
        sorted.reserveCapacity(names.count)
        for name in names where excluded?.contains(name) != true { sorted.append(name) }
        sorted.sort(by: Self.utf16Precedes)
        return sorted
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
        var string = string
        string.withUTF8 { utf8 in
            var runStart = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5C else { continue }
                if runStart < i { self.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<i])) }
                runStart = i + 1
                self.bytes.append(UInt8(ascii: "\\"))
                switch byte {
                case 0x22: self.bytes.append(0x22)
                case 0x5C: self.bytes.append(0x5C)
                case 0x08: self.bytes.append(UInt8(ascii: "b"))
                case 0x09: self.bytes.append(UInt8(ascii: "t"))
                case 0x0A: self.bytes.append(UInt8(ascii: "n"))
                case 0x0C: self.bytes.append(UInt8(ascii: "f"))
                case 0x0D: self.bytes.append(UInt8(ascii: "r"))
                default:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    self.bytes.append(contentsOf: [UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            if runStart < utf8.count { self.bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...])) }
        }
        self.bytes.append(UInt8(ascii: "\""))
    }

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
            self.bytes.append(contentsOf: String(Int64(number)).utf8)
            return
        }
        self.bytes.append(contentsOf: ECMAScriptNumber.format(number).utf8)
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
