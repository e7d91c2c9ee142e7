/// Writes JSON in the RFC 8785 JSON Canonicalization Scheme: object members sorted by their names' UTF-16 code
/// units, no insignificant whitespace, numbers in ECMAScript `Number.prototype.toString` form, strings with the
/// minimal escapes. Equal JSON data always gives equal bytes, which is what a cache key hashes.
///
/// The writer owns one growable buffer and is not copyable, so appending never checks for sharing; read the result
/// with ``bytes`` or, without a copy, ``withBytes(_:)``.
struct CanonicalJSONWriter: ~Copyable, @unchecked Sendable {
    private var base: UnsafeMutablePointer<UInt8>
    private var count: Int
    private var capacity: Int

    /// Creates a writer, reserving `capacity` bytes.
    init(capacity: Int = 256) {
        self.capacity = max(capacity, 16)
        self.base = .allocate(capacity: self.capacity)
        self.count = 0
    }

    deinit { self.base.deallocate() }

    /// A copy of the bytes written so far.
    var bytes: [UInt8] { Array(UnsafeBufferPointer(start: self.base, count: self.count)) }

    /// Calls `body` with the bytes written so far, without copying them.
    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try body(UnsafeRawBufferPointer(start: self.base, count: self.count))
    }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    private mutating func reserve(_ extra: Int) {
        if self.count + extra > self.capacity { self.grow(to: self.count + extra) }
    }

    @inline(never)
    private mutating func grow(to needed: Int) {
        var newCapacity = self.capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: self.base, count: self.count)
        self.base.deallocate()
        self.base = newBase
        self.capacity = newCapacity
    }

    @inline(__always)
    private mutating func append(_ byte: UInt8) {
        self.reserve(1)
        self.base[self.count] = byte
        self.count += 1
    }

    @inline(__always)
    private mutating func append(_ buffer: UnsafeRawBufferPointer) {
        self.reserve(buffer.count)
        if let source = buffer.baseAddress { UnsafeMutableRawPointer(self.base + self.count).copyMemory(from: source, byteCount: buffer.count) }
        self.count += buffer.count
    }

    /// Appends a value.
    mutating func write(_ value: JSONValue) {
        switch value {
        case .null: self.writeRaw("null")
        case .bool(let flag): self.writeRaw(flag ? "true" : "false")
        case .number(let number): self.write(number: number)
        case .string(let string): self.write(string: string)
        case .array(let elements):
            self.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { self.append(UInt8(ascii: ",")) }
                first = false
                self.write(element)
            }
            self.append(UInt8(ascii: "]"))
        case .object(let members):
            self.write(members: members, excluding: [])
        }
    }

    /// Appends an object, leaving out the members whose names are in `excluded`.
    mutating func write(members: [String: JSONValue], excluding excluded: Set<String>?) {
        self.write(members: members, excluding: excluded.map { Array($0) } ?? [])
    }

    /// Appends an object, leaving out the members whose names are in `excluded` (a short list: compared one by one,
    /// which is cheaper than hashing every name).
    mutating func write(members: [String: JSONValue], excluding excluded: [String]) {
        self.append(UInt8(ascii: "{"))
        // Sort (prefix, index) pairs: trivial values, so sorting moves no reference counts, and the first eight
        // bytes of the names decide almost every comparison without touching the strings.
        typealias Slot = (prefix: UInt64, index: Dictionary<String, JSONValue>.Index)
        withUnsafeTemporaryAllocation(of: Slot.self, capacity: members.count) { slots in
            var count = 0
            var index = members.startIndex
            while index != members.endIndex {
                let name = members.keys[index]
                if excluded.isEmpty || !excluded.contains(name) {
                    (slots.baseAddress! + count).initialize(to: (Self.sortPrefix(name), index))
                    count += 1
                }
                members.formIndex(after: &index)
            }
            var used = UnsafeMutableBufferPointer(rebasing: slots[0..<count])
            if count > 1 {
                let precedes = { (a: Slot, b: Slot) -> Bool in
                    Self.precedes(a.prefix, b.prefix) ?? Self.utf16Precedes(members.keys[a.index], members.keys[b.index])
                }
                if count <= 16 {
                    // Insertion sort: objects are small, and this does no allocation.
                    for i in 1..<count {
                        let slot = used[i]
                        var j = i
                        while j > 0, precedes(slot, used[j - 1]) {
                            used[j] = used[j - 1]
                            j -= 1
                        }
                        used[j] = slot
                    }
                } else {
                    used.sort(by: precedes)
                }
            }
            for position in 0..<count {
                if position > 0 { self.append(UInt8(ascii: ",")) }
                let member = members[used[position].index]
                self.write(string: member.key)
                self.append(UInt8(ascii: ":"))
                self.write(member.value)
            }
        }
        self.append(UInt8(ascii: "}"))
    }

    /// The first eight UTF-8 bytes of `name`, big-endian, zero-padded: comparing two of these as integers is
    /// comparing the names' first eight bytes.
    @inline(__always)
    static func sortPrefix(_ name: String) -> UInt64 {
        if let prefix = name.utf8.withContiguousStorageIfAvailable({ Self.sortPrefix(utf8: $0) }) { return prefix }
        return Array(name.utf8).withUnsafeBufferPointer { Self.sortPrefix(utf8: $0) }
    }

    @inline(__always)
    private static func sortPrefix(utf8: UnsafeBufferPointer<UInt8>) -> UInt64 {
        if utf8.count >= 8 { return UInt64(bigEndian: UnsafeRawPointer(utf8.baseAddress!).loadUnaligned(as: UInt64.self)) }
        var prefix: UInt64 = 0
        for i in 0..<utf8.count { prefix |= UInt64(utf8[i]) << (56 - 8 * UInt64(i)) }
        return prefix
    }

    /// Compares two sort prefixes, or returns `nil` when they cannot decide: equal prefixes, or a first difference
    /// where UTF-8 and UTF-16 order disagree (a byte at or above 0xEE, see ``utf16Precedes(_:_:)``).
    @inline(__always)
    static func precedes(_ a: UInt64, _ b: UInt64) -> Bool? {
        let difference = a ^ b
        guard difference != 0 else { return nil }
        let shift = UInt64(56 - (difference.leadingZeroBitCount & ~7))
        if (a >> shift) & 0xFF >= 0xEE || (b >> shift) & 0xFF >= 0xEE { return nil }
        return a < b
    }

    /// Appends raw, already valid JSON text (used for fixed punctuation and member names).
    mutating func writeRaw(_ text: StaticString) {
        self.append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
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

    /// Appends a string with RFC 8785 escaping: `"` `\\` and control characters only.
    mutating func write(string: String) {
        let written: Void? = string.utf8.withContiguousStorageIfAvailable { self.writeEscaped(UnsafeRawBufferPointer($0)) }
        if written == nil { Array(string.utf8).withUnsafeBytes { self.writeEscaped($0) } }
    }

    private mutating func writeEscaped(_ utf8: UnsafeRawBufferPointer) {
        let count = utf8.count
        guard let raw = utf8.baseAddress, Self.needsEscaping(raw, count: count) else {
            // The common case (plain text, member names): one copy between the quotes.
            self.reserve(count + 2)
            let out = self.base + self.count
            out[0] = UInt8(ascii: "\"")
            if count > 0 { Self.copy(from: utf8.baseAddress!, to: out + 1, count: count) }
            out[count + 1] = UInt8(ascii: "\"")
            self.count += count + 2
            return
        }
        // Room for the worst case (every byte a six-byte \u00XX escape) up front: the loop then writes unchecked.
        self.reserve(count * 6 + 2)
        var out = self.base + self.count
        out.pointee = UInt8(ascii: "\"")
        out += 1
        var runStart = 0
        var i = 0
        @inline(__always) func flush(upTo end: Int) {
            if runStart < end {
                UnsafeMutableRawPointer(out).copyMemory(from: raw + runStart, byteCount: end - runStart)
                out += end - runStart
            }
        }
        while i < count {
            // Skip 8 bytes at a time while none needs escaping.
            while i + 8 <= count, !Self.hasSpecialByte(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) {
                i += 8
            }
            guard i < count else { break }
            let byte = raw.load(fromByteOffset: i, as: UInt8.self)
            if byte >= 0x20 && byte != 0x22 && byte != 0x5C {
                i += 1
                continue
            }
            flush(upTo: i)
            runStart = i + 1
            i += 1
            out[0] = UInt8(ascii: "\\")
            switch byte {
            case 0x22: out[1] = 0x22
            case 0x5C: out[1] = 0x5C
            case 0x08: out[1] = UInt8(ascii: "b")
            case 0x09: out[1] = UInt8(ascii: "t")
            case 0x0A: out[1] = UInt8(ascii: "n")
            case 0x0C: out[1] = UInt8(ascii: "f")
            case 0x0D: out[1] = UInt8(ascii: "r")
            default:
                out[1] = UInt8(ascii: "u")
                out[2] = 0x30
                out[3] = 0x30
                out[4] = Self.hexDigit(byte >> 4)
                out[5] = Self.hexDigit(byte & 0xF)
                out += 4
            }
            out += 2
        }
        flush(upTo: count)
        out.pointee = UInt8(ascii: "\"")
        self.count = out + 1 - self.base
    }

    /// Copies bytes; short runs (member names, small values) with two overlapping loads instead of a call.
    @inline(__always)
    private static func copy(from source: UnsafeRawPointer, to target: UnsafeMutablePointer<UInt8>, count: Int) {
        let target = UnsafeMutableRawPointer(target)
        if count >= 8 && count <= 16 {
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            target.storeBytes(of: head, as: UInt64.self)
            target.storeBytes(of: tail, toByteOffset: count &- 8, as: UInt64.self)
        } else if count >= 4 && count < 8 {
            let head = source.loadUnaligned(as: UInt32.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            target.storeBytes(of: head, as: UInt32.self)
            target.storeBytes(of: tail, toByteOffset: count &- 4, as: UInt32.self)
        } else {
            target.copyMemory(from: source, byteCount: count)
        }
    }

    /// Whether any of the `count` bytes at `raw` is `"`, `\\` or a control character, eight bytes at a time.
    @inline(__always)
    private static func needsEscaping(_ raw: UnsafeRawPointer, count: Int) -> Bool {
        var i = 0
        while i &+ 8 <= count {
            if Self.hasSpecialByte(raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) { return true }
            i &+= 8
        }
        guard i < count else { return false }
        // The tail, with overlapping loads (re-testing clean bytes is harmless): no byte-wise copy, whose stores
        // would stall the wide load that follows them.
        let tail: UInt64
        if count >= 8 {
            tail = raw.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
        } else if count >= 4 {
            tail = UInt64(raw.loadUnaligned(as: UInt32.self))
                | UInt64(raw.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)) << 32
        } else if count >= 2 {
            tail = UInt64(raw.loadUnaligned(as: UInt16.self))
                | UInt64(raw.loadUnaligned(fromByteOffset: count &- 2, as: UInt16.self)) << 16 | 0x4141_4141 << 32
        } else {
            tail = UInt64(raw.load(as: UInt8.self)) | 0x41_4141_4141_4141 << 8  // padded with 'A'
        }
        return Self.hasSpecialByte(tail)
    }

    /// SWAR: whether a byte of `word` is below 0x20, or equal to `"` or `\\`. Exact as an any-test: a borrow can
    /// only produce a false bit above a byte that really matched.
    @inline(__always)
    private static func hasSpecialByte(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let special = ((word &- ones &* 0x20) & ~word) | ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash)
        return special & 0x8080_8080_8080_8080 != 0
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 { value < 10 ? 0x30 + value : 0x61 + value - 10 }

    /// Appends a number in ECMAScript `Number.prototype.toString` form (RFC 8785 §3.2.2.3).
    /// Non-finite numbers cannot occur in parsed JSON; written values are replaced by `null` as JavaScript does.
    mutating func write(number: Double) {
        guard number.isFinite else {
            self.writeRaw("null")
            return
        }
        if number == 0 {
            self.append(UInt8(ascii: "0"))  // -0 is "0" too
            return
        }
        if number.rounded(.towardZero) == number, abs(number) < 9_007_199_254_740_992 {
            self.write(integer: Int64(number))
            return
        }
        var text = ECMAScriptNumber.format(number)
        text.withUTF8 { self.append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends a decimal integer without going through `String`.
    mutating func write(integer: Int64) {
        if integer < 0 { self.append(UInt8(ascii: "-")) }
        var magnitude = integer.magnitude
        if magnitude < 10 {
            self.append(0x30 + UInt8(magnitude))
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
            self.append(UnsafeRawBufferPointer(rebasing: buffer[(24 - count)...]))
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
