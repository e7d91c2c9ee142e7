import CacheKit
import CacheKitTesting
import Testing

/// The fast writer (word-at-a-time escape scan, prefix-keyed member sort, unchecked copies) against a plain,
/// obviously correct one, on random documents built to hit every path: strings of every length around the 4/8/16-byte
/// boundaries, escapes at any position, member names sharing long prefixes, and names whose UTF-8 and UTF-16 orders
/// disagree (supplementary-plane characters against U+E000…U+FFFF).
@Suite("Canonical JSON writer, differential")
struct CanonicalJSONDifferentialTests {
    static let alphabet: [String] = [
        "a", "b", "z", "A", "0", " ", "\"", "\\", "\n", "\t", "\u{01}", "\u{1F}", "\u{7F}", "é", "€", "\u{E000}",
        "\u{FFFD}", "\u{FF61}", "😀", "𝄞", "/", "'",
    ]

    static func randomString(_ generator: inout SeededGenerator, maximumLength: Int = 40) -> String {
        let length = Int.random(in: 0...maximumLength, using: &generator)
        var text = ""
        for _ in 0..<length {
            // Mostly plain letters, so long clean runs occur; sometimes anything from the alphabet.
            if Int.random(in: 0..<4, using: &generator) == 0 {
                text += alphabet.randomElement(using: &generator)!
            } else {
                text += String(UnicodeScalar(UInt8.random(in: 0x61...0x7A, using: &generator)))
            }
        }
        return text
    }

    static func randomName(_ generator: inout SeededGenerator) -> String {
        // Shared long prefixes force the comparison past the first eight bytes.
        let prefixes = ["", "max_", "max_tokens", "response_", "abcdefgh", "abcdefg", "\u{E000}", "😀", "a\u{0}"]
        return prefixes.randomElement(using: &generator)! + randomString(&generator, maximumLength: 6)
    }

    static func randomValue(_ generator: inout SeededGenerator, depth: Int = 0) -> JSONValue {
        switch Int.random(in: 0..<(depth > 3 ? 4 : 7), using: &generator) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &generator))
        case 2: return .number(Double(Int.random(in: -1_000_000...1_000_000, using: &generator)) / 8)
        case 3: return .string(randomString(&generator))
        case 4: return .array((0..<Int.random(in: 0...5, using: &generator)).map { _ in randomValue(&generator, depth: depth + 1) })
        default:
            var members: [String: JSONValue] = [:]
            // Sometimes more than 16 members, which takes the general sort instead of insertion sort.
            let count = Int.random(in: 0...(Bool.random(using: &generator) ? 6 : 24), using: &generator)
            for _ in 0..<count { members[randomName(&generator)] = randomValue(&generator, depth: depth + 1) }
            return .object(members)
        }
    }

    /// The reference: byte-by-byte escaping and names sorted as arrays of UTF-16 code units (RFC 8785 §3.2.3).
    static func reference(_ value: JSONValue) -> String {
        switch value {
        case .null: return "null"
        case .bool(let flag): return flag ? "true" : "false"
        case .number(let number): return JSONValue.number(number).description
        case .string(let string): return referenceString(string)
        case .array(let elements): return "[" + elements.map(reference).joined(separator: ",") + "]"
        case .object(let members):
            let names = members.keys.sorted { $0.utf16.lexicographicallyPrecedes($1.utf16) }
            return "{" + names.map { referenceString($0) + ":" + reference(members[$0]!) }.joined(separator: ",") + "}"
        }
    }

    static func referenceString(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{09}": out += "\\t"
            case "\u{0A}": out += "\\n"
            case "\u{0C}": out += "\\f"
            case "\u{0D}": out += "\\r"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    @Test func randomDocumentsMatchTheReference() throws {
        var generator = SeededGenerator(seed: 8785)
        for _ in 0..<3_000 {
            let value = Self.randomValue(&generator)
            let written = String(decoding: value.canonicalBytes(), as: UTF8.self)
            #expect(written == Self.reference(value))
            // And the output is JSON that parses back to the same value.
            #expect(try JSONValue(parsing: written) == value)
        }
    }

    @Test func everyStringLengthAndEscapePosition() {
        for length in 0...33 {
            for position in -1..<length {
                for special in ["\"", "\\", "\u{00}", "\u{1F}", "é"] {
                    var scalars = Array(repeating: "x", count: length)
                    if position >= 0 { scalars[position] = special }
                    let string = scalars.joined()
                    #expect(String(decoding: JSONValue.string(string).canonicalBytes(), as: UTF8.self) == Self.referenceString(string))
                }
            }
        }
    }
}
