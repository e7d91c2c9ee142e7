import CacheKit
import Testing

@Suite("RFC 8785 canonical JSON")
struct CanonicalJSONTests {
    func canonical(_ text: String) throws -> String {
        String(decoding: try JSONValue(parsing: text).canonicalBytes(), as: UTF8.self)
    }

    // RFC 8785 Appendix B: IEEE-754 bit patterns and their ECMAScript forms.
    @Test(arguments: [
        (0x0000_0000_0000_0000, "0"), (0x8000_0000_0000_0000, "0"), (0x0000_0000_0000_0001, "5e-324"),
        (0x8000_0000_0000_0001, "-5e-324"), (0x7FEF_FFFF_FFFF_FFFF, "1.7976931348623157e+308"),
        (0xFFEF_FFFF_FFFF_FFFF, "-1.7976931348623157e+308"), (0x4340_0000_0000_0000, "9007199254740992"),
        (0xC340_0000_0000_0000, "-9007199254740992"), (0x4430_0000_0000_0000, "295147905179352830000"),
        (0x44B5_2D02_C7E1_4AF5, "9.999999999999997e+22"), (0x44B5_2D02_C7E1_4AF6, "1e+23"),
        (0x44B5_2D02_C7E1_4AF7, "1.0000000000000001e+23"), (0x444B_1AE4_D6E2_EF4E, "999999999999999700000"),
        (0x444B_1AE4_D6E2_EF4F, "999999999999999900000"), (0x444B_1AE4_D6E2_EF50, "1e+21"),
        (0x3EB0_C6F7_A0B5_ED8C, "9.999999999999997e-7"), (0x3EB0_C6F7_A0B5_ED8D, "0.000001"),
        (0x41B3_DE43_5555_5553, "333333333.3333332"), (0x41B3_DE43_5555_5554, "333333333.33333325"),
        (0x41B3_DE43_5555_5555, "333333333.3333333"), (0x41B3_DE43_5555_5556, "333333333.3333334"),
        (0x41B3_DE43_5555_5557, "333333333.33333343"), (0xBECB_F647_612F_3696, "-0.0000033333333333333333"),
        (0x4314_3FF3_C1CB_0959, "1424953923781206.2"),
    ] as [(UInt64, String)])
    func rfc8785Numbers(bits: UInt64, expected: String) {
        #expect(JSONValue.number(Double(bitPattern: bits)).description == expected)
    }

    @Test func rfc8785SampleDocument() throws {
        let input = #"""
            {
              "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
              "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
              "literals": [null, true, false]
            }
            """#
        let expected = #"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
        #expect(try self.canonical(input) == expected)
    }

    @Test func rfc8785PropertySorting() throws {
        let input = #"""
            {"\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One",
             "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis"}
            """#
        let value = try JSONValue(parsing: input)
        let text = String(decoding: value.canonicalBytes(), as: UTF8.self)
        let order: [(String, String)] = [
            ("\r", "Carriage Return"), ("1", "One"), ("\u{80}", "Control"), ("ö", "Latin Small Letter O With Diaeresis"),
            ("€", "Euro Sign"), ("😀", "Emoji: Grinning Face"), ("\u{FB33}", "Hebrew Letter Dalet With Dagesh"),
        ]
        func quoted(_ string: String) -> String { String(decoding: JSONValue.string(string).canonicalBytes(), as: UTF8.self) }
        let expected = "{" + order.map { quoted($0.0) + ":" + quoted($0.1) }.joined(separator: ",") + "}"
        #expect(text == expected)
    }

    @Test func whitespaceAndOrderDoNotMatter() throws {
        let a = try self.canonical(#"{"a":1,"b":[true,{"y":2,"x":null}]}"#)
        let b = try self.canonical(" {\n \"b\" : [ true , { \"x\" : null , \"y\" : 2.0 } ] ,\t\"a\" : 1e0 } ")
        #expect(a == b)
        #expect(a == #"{"a":1,"b":[true,{"x":null,"y":2}]}"#)
    }

    @Test func stringsRoundTripIncludingEscapesAndUnicode() throws {
        for text in ["", "plain", "quote \" backslash \\ slash /", "tab\tnewline\ncontrol\u{1}\u{1F}", "ünïcødé ✓ 😀 中文", "\u{7F}\u{2028}"] {
            let bytes = JSONValue.string(text).canonicalBytes()
            #expect(try JSONValue(parsing: bytes) == .string(text))
        }
        #expect(try JSONValue(parsing: #""\ud83d\ude00""#) == .string("😀"))
    }

    @Test(arguments: [
        ("", "end of input"), ("{", "expected a string key"), ("[", "end of input"), (#"{"a":1,}"#, "expected a string key"), ("[1,]", "unexpected character"),
        ("01", "leading zero"), ("1.", "invalid fraction"), ("1e", "invalid exponent"), ("-", "invalid number"),
        (#""abc"#, "unterminated"), (#""\x""#, "invalid escape"), (#""\ud800""#, "unpaired surrogate"),
        ("tru", "end of input"), ("nul", "end of input"), ("{} {}", "after the JSON value"), ("1e400", "out of range"),
        (#"{"a":1,"a":2}"#, "duplicate key"), ("\"a\u{1}\"", "control character"), ("NaN", "unexpected character"),
    ])
    func malformedInputIsRefusedWithAReason(input: String, reason: String) {
        do {
            _ = try JSONValue(parsing: input)
            Issue.record("\(input.debugDescription) was accepted")
        } catch {
            #expect(error.reason.contains(reason), "\(input.debugDescription): \(error.reason)")
        }
    }

    @Test func invalidUTF8IsRefused() {
        let bytes: [UInt8] = [0x22, 0xFF, 0xFE, 0x22]
        #expect(throws: JSONParsingError.self) { try JSONValue(parsing: bytes) }
    }

    @Test func deepNestingIsRefusedNotACrash() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParsingError.self) { try JSONValue(parsing: deep) }
        let fine = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        #expect((try? JSONValue(parsing: fine)) != nil)
    }

    @Test func codableInteroperates() throws {
        let value: JSONValue = ["a": [1, 2.5, "x", nil, true], "b": ["c": "d"]]
        let encoded = try JSONValue(parsing: value.canonicalBytes())
        #expect(encoded == value)
    }
}
