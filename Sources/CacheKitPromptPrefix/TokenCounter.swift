/// Counts the tokens of a text for prefix-length checks. Plug in an exact tokenizer when you have one.
public protocol TokenCounter: Sendable {
    func count(_ text: String) -> Int
}

/// An estimate close to the BPE tokenizers of current chat models on English text (within about 15 %): a run of
/// letters costs one token per four characters (rounded up), a run of digits one per three, every other visible
/// ASCII character one, every non-ASCII character one (CJK and emoji tokenize about one per character or worse).
public struct EstimatingTokenCounter: TokenCounter {
    public init() {}

    public func count(_ text: String) -> Int {
        var tokens = 0
        var letters = 0
        var digits = 0
        func flush() {
            tokens += (letters + 3) / 4 + (digits + 2) / 3
            letters = 0
            digits = 0
        }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x41...0x5A, 0x61...0x7A:
                if digits > 0 { flush() }
                letters += 1
            case 0x30...0x39:
                if letters > 0 { flush() }
                digits += 1
            case 0x20, 0x09, 0x0A, 0x0D:
                flush()
            default:
                flush()
                tokens += 1
            }
        }
        flush()
        return tokens
    }
}
