/// An error in JSON text: what is wrong and at which byte.
public struct JSONParsingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What is wrong, in words.
    public var reason: String
    /// Zero-based byte offset of the problem in the input.
    public var offset: Int

    public var description: String { "invalid JSON at byte \(self.offset): \(self.reason)" }
}

extension JSONValue {
    /// The deepest nesting the parser accepts; deeper input is refused rather than risking the stack.
    public static let maximumNestingDepth = 512

    /// Parses one JSON text (RFC 8259). Strings must be valid UTF-8; numbers must be finite doubles.
    ///
    /// - Throws: `JSONParsingError` with the byte offset of the first problem.
    public init(parsing bytes: some Collection<UInt8>) throws(JSONParsingError) {
        let result: Result<JSONValue, JSONParsingError>
        if let contiguous = bytes.withContiguousStorageIfAvailable({ buffer in
            Result { () throws(JSONParsingError) in try JSONValue.parse(UnsafeRawBufferPointer(buffer)) }
        }) {
            result = contiguous
        } else {
            let array = Array(bytes)
            result = array.withUnsafeBytes { buffer in
                Result { () throws(JSONParsingError) in try JSONValue.parse(buffer) }
            }
        }
        self = try result.get()
    }

    /// Parses one JSON text given as a string.
    public init(parsing text: String) throws(JSONParsingError) {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(JSONParsingError) in try JSONValue.parse(UnsafeRawBufferPointer(buffer)) }
        }
        self = try result.get()
    }

    static func parse(_ buffer: UnsafeRawBufferPointer) throws(JSONParsingError) -> JSONValue {
        var parser = JSONParser(buffer)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == buffer.count else { throw parser.error("unexpected data after the JSON value") }
        return value
    }
}

struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func error(_ reason: String, at offset: Int? = nil) -> JSONParsingError {
        JSONParsingError(reason: reason, offset: offset ?? self.index)
    }

    mutating func skipWhitespace() {
        while self.index < self.bytes.count {
            switch self.bytes[self.index] {
            case 0x20, 0x09, 0x0A, 0x0D: self.index += 1
            default: return
            }
        }
    }

    mutating func parseValue(depth: Int) throws(JSONParsingError) -> JSONValue {
        guard self.index < self.bytes.count else { throw self.error("unexpected end of input") }
        switch self.bytes[self.index] {
        case UInt8(ascii: "{"):
            guard depth < JSONValue.maximumNestingDepth else { throw self.error("nesting deeper than \(JSONValue.maximumNestingDepth)") }
            return try self.parseObject(depth: depth + 1)
        case UInt8(ascii: "["):
            guard depth < JSONValue.maximumNestingDepth else { throw self.error("nesting deeper than \(JSONValue.maximumNestingDepth)") }
            return try self.parseArray(depth: depth + 1)
        case UInt8(ascii: "\""):
            return .string(try self.parseString())
        case UInt8(ascii: "t"):
            try self.expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try self.expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try self.expectLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return .number(try self.parseNumber())
        default:
            throw self.error("unexpected character")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONParsingError) {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.bytes.count else { throw self.error("unexpected end of input") }
        let start = literal.utf8Start
        for i in 0..<count where self.bytes[self.index + i] != start[i] {
            throw self.error("invalid literal")
        }
        self.index += count
    }

    mutating func parseObject(depth: Int) throws(JSONParsingError) -> JSONValue {
        self.index += 1
        var members: [String: JSONValue] = [:]
        self.skipWhitespace()
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "}") {
            self.index += 1
            return .object(members)
        }
        while true {
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\"") else {
                throw self.error("expected a string key")
            }
            let keyOffset = self.index
            let key = try self.parseString()
            self.skipWhitespace()
            guard self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ":") else {
                throw self.error("expected ':'")
            }
            self.index += 1
            self.skipWhitespace()
            let value = try self.parseValue(depth: depth)
            // RFC 8785 and I-JSON refuse duplicate names; accepting them would let two different texts that a
            // server reads differently share one key.
            guard members.updateValue(value, forKey: key) == nil else {
                throw self.error("duplicate key", at: keyOffset)
            }
            self.skipWhitespace()
            guard self.index < self.bytes.count else { throw self.error("unexpected end of input") }
            switch self.bytes[self.index] {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return .object(members)
            default: throw self.error("expected ',' or '}'")
            }
        }
    }

    mutating func parseArray(depth: Int) throws(JSONParsingError) -> JSONValue {
        self.index += 1
        var elements: [JSONValue] = []
        self.skipWhitespace()
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "]") {
            self.index += 1
            return .array(elements)
        }
        while true {
            self.skipWhitespace()
            elements.append(try self.parseValue(depth: depth))
            self.skipWhitespace()
            guard self.index < self.bytes.count else { throw self.error("unexpected end of input") }
            switch self.bytes[self.index] {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return .array(elements)
            default: throw self.error("expected ',' or ']'")
            }
        }
    }

    mutating func parseNumber() throws(JSONParsingError) -> Double {
        let start = self.index
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        if self.bytes[self.index] == UInt8(ascii: "-") { self.index += 1 }
        guard self.index < self.bytes.count, isDigit(self.bytes[self.index]) else { throw self.error("invalid number", at: start) }
        if self.bytes[self.index] == UInt8(ascii: "0") {
            self.index += 1
            if self.index < self.bytes.count, isDigit(self.bytes[self.index]) {
                throw self.error("leading zero in number", at: start)
            }
        } else {
            while self.index < self.bytes.count, isDigit(self.bytes[self.index]) { self.index += 1 }
        }
        var isInteger = true
        if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: ".") {
            isInteger = false
            self.index += 1
            guard self.index < self.bytes.count, isDigit(self.bytes[self.index]) else { throw self.error("invalid fraction", at: start) }
            while self.index < self.bytes.count, isDigit(self.bytes[self.index]) { self.index += 1 }
        }
        if self.index < self.bytes.count, self.bytes[self.index] | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            self.index += 1
            if self.index < self.bytes.count, self.bytes[self.index] == UInt8(ascii: "+") || self.bytes[self.index] == UInt8(ascii: "-") {
                self.index += 1
            }
            guard self.index < self.bytes.count, isDigit(self.bytes[self.index]) else { throw self.error("invalid exponent", at: start) }
            while self.index < self.bytes.count, isDigit(self.bytes[self.index]) { self.index += 1 }
        }
        let length = self.index - start
        // Fast path: short integers are exact in a Double and need no string conversion.
        if isInteger, length <= 15 {
            var value: Int64 = 0
            var i = start
            let negative = self.bytes[i] == UInt8(ascii: "-")
            if negative { i += 1 }
            while i < self.index {
                value = value * 10 + Int64(self.bytes[i] - UInt8(ascii: "0"))
                i += 1
            }
            return negative ? (value == 0 ? -0.0 : -Double(value)) : Double(value)
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: self.bytes[start..<self.index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else { throw self.error("number out of range", at: start) }
        return value
    }

    mutating func parseString() throws(JSONParsingError) -> String {
        let start = self.index
        self.index += 1
        // Fast path: no escapes; the bytes are validated as UTF-8 by String(validating:).
        var scan = self.index
        while scan < self.bytes.count {
            let byte = self.bytes[scan]
            if byte == UInt8(ascii: "\"") {
                let slice = UnsafeRawBufferPointer(rebasing: self.bytes[self.index..<scan])
                guard let string = String(validating: slice, as: UTF8.self) else {
                    throw self.error("string is not valid UTF-8", at: start)
                }
                self.index = scan + 1
                return string
            }
            if byte == UInt8(ascii: "\\") { break }
            if byte < 0x20 { throw self.error("control character in string", at: scan) }
            scan += 1
        }
        guard scan < self.bytes.count else { throw self.error("unterminated string", at: start) }
        var utf8 = [UInt8](UnsafeRawBufferPointer(rebasing: self.bytes[self.index..<scan]))
        self.index = scan
        while self.index < self.bytes.count {
            let byte = self.bytes[self.index]
            switch byte {
            case UInt8(ascii: "\""):
                self.index += 1
                guard let string = String(validating: utf8, as: UTF8.self) else {
                    throw self.error("string is not valid UTF-8", at: start)
                }
                return string
            case UInt8(ascii: "\\"):
                self.index += 1
                guard self.index < self.bytes.count else { throw self.error("unterminated string", at: start) }
                let escape = self.bytes[self.index]
                self.index += 1
                switch escape {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try self.parseHex4()
                    if scalar >= 0xD800, scalar < 0xDC00 {
                        guard self.index + 6 <= self.bytes.count, self.bytes[self.index] == UInt8(ascii: "\\"),
                            self.bytes[self.index + 1] == UInt8(ascii: "u")
                        else { throw self.error("unpaired surrogate in string") }
                        self.index += 2
                        let low = try self.parseHex4()
                        guard low >= 0xDC00, low < 0xE000 else { throw self.error("unpaired surrogate in string") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00, scalar < 0xE000 {
                        throw self.error("unpaired surrogate in string")
                    }
                    UTF8.encode(Unicode.Scalar(scalar)!) { utf8.append($0) }
                default:
                    throw self.error("invalid escape in string", at: self.index - 2)
                }
            default:
                if byte < 0x20 { throw self.error("control character in string") }
                utf8.append(byte)
                self.index += 1
            }
        }
        throw self.error("unterminated string", at: start)
    }

    mutating func parseHex4() throws(JSONParsingError) -> UInt32 {
        guard self.index + 4 <= self.bytes.count else { throw self.error("unterminated string") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = self.bytes[self.index]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw self.error("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
            self.index += 1
        }
        return value
    }
}

