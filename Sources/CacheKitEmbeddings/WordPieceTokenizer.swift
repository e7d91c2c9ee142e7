public import CacheKit
import Foundation

/// BERT's tokenizer: basic tokenization (clean-up, CJK splitting, lower-casing, accent stripping, punctuation
/// splitting) followed by greedy longest-match-first WordPiece with `##` continuations, as the `BertTokenizer` of
/// the transformers library does for uncased models.
public struct WordPieceTokenizer: Sendable {
    let vocabulary: [String: Int32]
    /// Lower-case and strip accents (uncased models). Default `true`.
    public let lowercases: Bool
    /// The longest sequence, `[CLS]` and `[SEP]` included; longer input is truncated. Default 256.
    public let maximumLength: Int
    let unknown: Int32
    let classification: Int32
    let separator: Int32

    /// Reads `vocab.txt` (one token per line; the line number is the id).
    ///
    /// - Throws: `CacheError` `.invalidConfiguration` if the file lacks `[UNK]`, `[CLS]` or `[SEP]`.
    public init(vocabulary text: String, lowercases: Bool = true, maximumLength: Int = 256) throws(CacheError) {
        var vocabulary: [String: Int32] = [:]
        var id: Int32 = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            guard id < Int32.max else {
                throw CacheError(.invalidConfiguration, "vocab.txt has more than \(Int32.max) lines", backend: "embeddings")
            }
            let token = line.hasSuffix("\r") ? String(line.dropLast()) : String(line)
            if !token.isEmpty, vocabulary[token] == nil { vocabulary[token] = id }
            id += 1
        }
        guard let unknown = vocabulary["[UNK]"], let cls = vocabulary["[CLS]"], let sep = vocabulary["[SEP]"] else {
            throw CacheError(.invalidConfiguration, "vocab.txt has no [UNK], [CLS] or [SEP]", backend: "embeddings")
        }
        self.vocabulary = vocabulary
        self.lowercases = lowercases
        self.maximumLength = max(2, maximumLength)
        self.unknown = unknown
        self.classification = cls
        self.separator = sep
    }

    /// The largest id in the vocabulary (the model's embedding matrix must have more rows than this).
    public var largestID: Int32 { max(self.vocabulary.values.max() ?? 0, self.unknown, self.classification, self.separator) }

    /// Token ids of `text`: `[CLS]`, the WordPiece ids truncated to fit, `[SEP]`.
    ///
    /// Only the first `maximumLength × 512` bytes of `text` are read (cut at a character boundary): far more than
    /// `maximumLength` tokens ever need, so a multi-megabyte message costs no more than a long one.
    public func encode(_ text: String) -> [Int32] {
        var ids: [Int32] = [self.classification]
        let budget = self.maximumLength - 2
        let limit = self.maximumLength * 512
        let bounded = text.utf8.count <= limit ? text : String(text.unicodeScalars.prefix(limit))
        outer: for word in self.basicTokens(bounded) {
            for id in self.wordPiece(word) {
                if ids.count - 1 >= budget { break outer }
                ids.append(id)
            }
        }
        ids.append(self.separator)
        return ids
    }

    /// Whether `encode(text)` keeps every token of `text` (nothing is cut at `maximumLength`). Every token covers
    /// at least one byte, so a text of at most `maximumLength - 2` bytes fits without being read.
    public func fits(_ text: String) -> Bool {
        let budget = self.maximumLength - 2
        if text.utf8.count <= budget { return true }
        // Past what `encode` reads, the text is cut anyway.
        guard text.utf8.count <= self.maximumLength * 512 else { return false }
        var count = 0
        for word in self.basicTokens(text) {
            count += self.wordPiece(word).count
            if count > budget { return false }
        }
        return true
    }

    /// The tokens of `text` (for inspection).
    public func tokens(_ text: String) -> [String] {
        let reverse = Dictionary(self.vocabulary.map { ($0.value, $0.key) }, uniquingKeysWith: { a, _ in a })
        return self.encode(text).map { reverse[$0] ?? "?" }
    }

    func basicTokens(_ text: String) -> [String] {
        // Clean: drop NUL, U+FFFD and control characters; whitespace becomes a space; CJK ideographs stand alone.
        var cleaned = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            let value = scalar.value
            if value == 0 || value == 0xFFFD || Self.isControl(scalar) { continue }
            if Self.isWhitespace(scalar) {
                cleaned.append(" ")
            } else if Self.isCJK(value) {
                cleaned.append(" ")
                cleaned.append(scalar)
                cleaned.append(" ")
            } else {
                cleaned.append(scalar)
            }
        }
        var words: [String] = []
        for piece in String(cleaned).split(separator: " ", omittingEmptySubsequences: true) {
            var word = String(piece)
            if self.lowercases {
                word = word.lowercased()
                // Strip accents: canonical decomposition, then drop the combining marks.
                var stripped = String.UnicodeScalarView()
                for scalar in word.decomposedStringWithCanonicalMapping.unicodeScalars where scalar.properties.generalCategory != .nonspacingMark {
                    stripped.append(scalar)
                }
                word = String(stripped)
            }
            // Split punctuation into tokens of its own.
            var current = String.UnicodeScalarView()
            for scalar in word.unicodeScalars {
                if Self.isPunctuation(scalar) {
                    if !current.isEmpty { words.append(String(current)) }
                    current = String.UnicodeScalarView()
                    words.append(String(scalar))
                } else {
                    current.append(scalar)
                }
            }
            if !current.isEmpty { words.append(String(current)) }
        }
        return words
    }

    func wordPiece(_ word: String) -> [Int32] {
        let scalars = Array(word.unicodeScalars)
        guard scalars.count <= 100 else { return [self.unknown] }
        var ids: [Int32] = []
        var start = 0
        while start < scalars.count {
            var end = scalars.count
            var found: Int32?
            while start < end {
                var candidate = String(String.UnicodeScalarView(scalars[start..<end]))
                if start > 0 { candidate = "##" + candidate }
                if let id = self.vocabulary[candidate] {
                    found = id
                    break
                }
                end -= 1
            }
            guard let id = found else { return [self.unknown] }
            ids.append(id)
            start = end
        }
        return ids
    }

    static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == " " || scalar == "\t" || scalar == "\n" || scalar == "\r" { return true }
        return scalar.properties.generalCategory == .spaceSeparator
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        if scalar == "\t" || scalar == "\n" || scalar == "\r" { return false }
        switch scalar.properties.generalCategory {
        case .control, .format, .unassigned, .privateUse, .surrogate: return true
        default: return false
        }
    }

    static func isPunctuation(_ scalar: Unicode.Scalar) -> Bool {
        let value = scalar.value
        if (33...47).contains(value) || (58...64).contains(value) || (91...96).contains(value) || (123...126).contains(value) { return true }
        switch scalar.properties.generalCategory {
        case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation, .finalPunctuation,
            .otherPunctuation:
            return true
        default:
            return false
        }
    }

    static func isCJK(_ value: UInt32) -> Bool {
        (0x4E00...0x9FFF).contains(value) || (0x3400...0x4DBF).contains(value) || (0x20000...0x2A6DF).contains(value)
            || (0x2A700...0x2B73F).contains(value) || (0x2B740...0x2B81F).contains(value) || (0x2B820...0x2CEAF).contains(value)
            || (0xF900...0xFAFF).contains(value) || (0x2F800...0x2FA1F).contains(value)
    }
}
