import CacheKit

/// Detectors for content that changes on every request. Hand-written scanners (no regular expressions): each
/// looks at a window of characters, so a whole prompt is scanned in linear time.
enum VolatileContent {
    /// Every volatile span in `text`, with its kind, in order of appearance.
    static func find(in text: String) -> [(VolatileKind, String)] {
        let chars = Array(text.unicodeScalars)
        var found: [(VolatileKind, String)] = []
        var i = 0
        func isDigit(_ k: Int) -> Bool { k < chars.count && (0x30...0x39).contains(chars[k].value) }
        func isHex(_ k: Int) -> Bool { k < chars.count && (isDigit(k) || (0x61...0x66).contains(chars[k].value | 0x20)) }
        func isWordChar(_ k: Int) -> Bool { k >= 0 && k < chars.count && (chars[k].properties.isAlphabetic || isDigit(k) || chars[k] == "_") }
        func digits(_ k: Int, _ n: Int) -> Bool { (0..<n).allSatisfy { isDigit(k + $0) } }
        func at(_ k: Int, _ c: Unicode.Scalar) -> Bool { k < chars.count && chars[k] == c }
        func span(_ from: Int, _ to: Int) -> String { String(String.UnicodeScalarView(chars[from..<min(to, chars.count)])) }
        while i < chars.count {
            let boundary = !isWordChar(i - 1)
            // UUID 8-4-4-4-12
            if boundary, [8, 4, 4, 4, 12].reduce((true, i), { state, n in
                let (ok, k) = state
                guard ok, (0..<n).allSatisfy({ isHex(k + $0) }) else { return (false, k) }
                return (n == 12 ? true : at(k + n, "-"), k + n + (n == 12 ? 0 : 1))
            }).0, !isWordChar(i + 36) {
                found.append((.uuid, span(i, i + 36)))
                i += 36
                continue
            }
            // ISO date, optionally with a time: 2026-11-26[T ]17:09[:16]
            if boundary, digits(i, 4), at(i + 4, "-"), digits(i + 5, 2), at(i + 7, "-"), digits(i + 8, 2) {
                if (at(i + 10, "T") || at(i + 10, " ")), digits(i + 11, 2), at(i + 13, ":"), digits(i + 14, 2) {
                    var end = i + 16
                    while end < chars.count, isDigit(end) || [":", ".", "Z", "+", "-"].contains(chars[end]) { end += 1 }
                    found.append((.timestamp, span(i, end)))
                    i = end
                } else {
                    found.append((.date, span(i, i + 10)))
                    i += 10
                }
                continue
            }
            // Slash date: 11/26/2026 or 26/11/26
            if boundary, isDigit(i) {
                var k = i
                while isDigit(k), k - i < 2 { k += 1 }
                if at(k, "/"), isDigit(k + 1) {
                    var m = k + 1
                    while isDigit(m), m - k - 1 < 2 { m += 1 }
                    if at(m, "/"), digits(m + 1, 2) {
                        var end = m + 3
                        if digits(m + 1, 4) { end = m + 5 }
                        found.append((.date, span(i, end)))
                        i = end
                        continue
                    }
                }
            }
            // Clock time: 17:09 or 5:09:16
            if boundary, isDigit(i) {
                let k = isDigit(i + 1) ? i + 2 : i + 1
                if at(k, ":"), digits(k + 1, 2), !isDigit(k + 3) || at(k + 3, ":") {
                    var end = k + 3
                    if at(end, ":"), digits(end + 1, 2) { end += 3 }
                    found.append((.time, span(i, end)))
                    i = end
                    continue
                }
            }
            // Runs of digits and hex: epoch seconds/milliseconds, long counters, request ids.
            if boundary, isHex(i) {
                var end = i
                var hasDigit = false, hasLetter = false
                while isHex(end) || at(end, "_") || at(end, "-") {
                    if isDigit(end) { hasDigit = true } else if isHex(end) { hasLetter = true }
                    end += 1
                }
                if !isWordChar(end) {
                    let length = end - i
                    if hasDigit, !hasLetter, (length == 10 || length == 13), at(i, "1") {
                        found.append((.epoch, span(i, end)))
                        i = end
                        continue
                    }
                    if hasDigit, hasLetter, length >= 16 {
                        found.append((.requestID, span(i, end)))
                        i = end
                        continue
                    }
                }
            }
            // Labelled ids and counters: "request_id: abc123", "req_8f2k…", "#48213", "run 4711 of".
            if boundary, at(i, "r"), span(i, i + 4) == "req_" {
                var end = i + 4
                while isWordChar(end) { end += 1 }
                if end - i >= 10 {
                    found.append((.requestID, span(i, end)))
                    i = end
                    continue
                }
            }
            if at(i, "#"), digits(i + 1, 3) {
                var end = i + 1
                while isDigit(end) { end += 1 }
                found.append((.counter, span(i, end)))
                i = end
                continue
            }
            i += 1
        }
        return found
    }

    /// JSON objects embedded in `text` whose members are not in sorted order (excerpts).
    static func unorderedJSONObjects(in text: String) -> [String] {
        let bytes = Array(text.utf8)
        var found: [String] = []
        var i = 0
        while i < bytes.count {
            guard bytes[i] == UInt8(ascii: "{") else {
                i += 1
                continue
            }
            // Find the matching brace, skipping strings.
            var depth = 0, k = i, inString = false, escaped = false
            var end: Int?
            while k < bytes.count {
                let b = bytes[k]
                if inString {
                    if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                } else if b == UInt8(ascii: "\"") {
                    inString = true
                } else if b == UInt8(ascii: "{") {
                    depth += 1
                } else if b == UInt8(ascii: "}") {
                    depth -= 1
                    if depth == 0 {
                        end = k
                        break
                    }
                }
                k += 1
            }
            guard let end else { break }
            let candidate = Array(bytes[i...end])
            if let value = try? JSONValue(parsing: candidate), value.objectValue != nil,
                !Self.membersInOrder(candidate)
            {
                found.append(String(decoding: candidate.prefix(80), as: UTF8.self))
            }
            i = end + 1
        }
        return found
    }

    /// Whether every object in the JSON text lists its member names in sorted order (scanning the text itself:
    /// the parsed value no longer knows the order).
    static func membersInOrder(_ bytes: [UInt8]) -> Bool {
        var stack: [[UInt8]?] = []  // the last member name seen per open object (nil: none yet)
        var containers: [UInt8] = []
        var i = 0
        var expectName = false
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "{") {
                containers.append(b)
                stack.append(nil)
                expectName = true
            } else if b == UInt8(ascii: "[") {
                containers.append(b)
                expectName = false
            } else if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                if containers.popLast() == UInt8(ascii: "{") { _ = stack.popLast() }
                expectName = false
            } else if b == UInt8(ascii: ",") {
                expectName = containers.last == UInt8(ascii: "{")
            } else if b == UInt8(ascii: "\"") {
                var k = i + 1
                var text: [UInt8] = []
                while k < bytes.count, bytes[k] != UInt8(ascii: "\"") {
                    if bytes[k] == UInt8(ascii: "\\") { text.append(bytes[k]); k += 1 }
                    if k < bytes.count { text.append(bytes[k]) }
                    k += 1
                }
                if expectName, !stack.isEmpty {
                    if let last = stack[stack.count - 1], !last.lexicographicallyPrecedes(text) { return false }
                    stack[stack.count - 1] = text
                    expectName = false
                }
                i = k
            }
            i += 1
        }
        return true
    }
}
