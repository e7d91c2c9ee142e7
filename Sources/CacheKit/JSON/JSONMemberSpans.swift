extension JSONParser {
    /// The top-level members of a JSON object text as byte ranges (`"name": value`, without the separating commas),
    /// in document order, with their decoded names. `nil` when the text is not a JSON object.
    static func memberSpans(of bytes: [UInt8]) -> [(name: String, span: Range<Int>)]? {
        bytes.withUnsafeBytes { buffer -> [(name: String, span: Range<Int>)]? in
            var parser = JSONParser(buffer)
            var spans: [(name: String, span: Range<Int>)] = []
            do {
                parser.skipWhitespace()
                guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "{") else { return nil }
                parser.index += 1
                parser.skipWhitespace()
                if parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: "}") { return spans }
                while true {
                    parser.skipWhitespace()
                    let start = parser.index
                    guard start < buffer.count, buffer[start] == UInt8(ascii: "\"") else { return nil }
                    let name = try parser.parseString()
                    parser.skipWhitespace()
                    guard parser.index < buffer.count, buffer[parser.index] == UInt8(ascii: ":") else { return nil }
                    parser.index += 1
                    parser.skipWhitespace()
                    _ = try parser.parseValue(depth: 1)
                    spans.append((name, start..<parser.index))
                    parser.skipWhitespace()
                    guard parser.index < buffer.count else { return nil }
                    if buffer[parser.index] == UInt8(ascii: ",") {
                        parser.index += 1
                        continue
                    }
                    guard buffer[parser.index] == UInt8(ascii: "}") else { return nil }
                    return spans
                }
            } catch {
                return nil
            }
        }
    }
}
