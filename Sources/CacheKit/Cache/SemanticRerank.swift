/// Re-ranks a semantic query's nearest neighbours by cosine similarity plus a bonus for the content words the
/// query shares with each candidate's stored question, and serves the best of them.
///
/// Embeddings of close paraphrases of *different* questions ("reset my password" vs "reset my API key") often sit
/// nearer each other than a rewording of the same question, so the nearest neighbour alone is sometimes the wrong
/// entry. Word overlap is a cheap, independent signal that breaks those ties: on GPTCache's paraphrase benchmark it
/// raises the share of queries served their own answer at the same hit rate (see `cachekit calibrate`).
///
/// The score is `cosine + lexicalWeight × J`, with `J` the Jaccard overlap of the two texts' content words (letters
/// and digits, lower-cased, a few English function words left out), so it lies in `[-1, 1 + lexicalWeight]`; the
/// semantic layer's threshold applies to this score when re-ranking is on.
public struct SemanticRerank: Sendable, Hashable {
    /// How many nearest neighbours are scored. Default 5.
    public var candidates: Int
    /// The weight of word overlap against cosine similarity. Default 0.2 (chosen on the GPTCache pairs).
    public var lexicalWeight: Float

    public init(candidates: Int = 5, lexicalWeight: Float = 0.2) {
        self.candidates = max(1, candidates)
        self.lexicalWeight = max(0, lexicalWeight)
    }

    /// The score of a candidate with cosine `similarity` whose stored question is `candidate`.
    public func score(similarity: Float, query: Set<String>, candidate: String?) -> Float {
        guard self.lexicalWeight > 0, let candidate else { return similarity }
        return similarity + self.lexicalWeight * Self.overlap(query, Self.words(candidate))
    }

    /// The best of `matches` for the query text, with its score; `nil` when there are none.
    public func best(of matches: [SemanticMatch], query: String) -> (match: SemanticMatch, score: Float)? {
        let words = Self.words(query)
        var best: (match: SemanticMatch, score: Float)?
        for match in matches {
            let score = self.score(similarity: match.similarity, query: words, candidate: match.entry.queryText)
            if best == nil || score > best!.score { best = (match, score) }
        }
        return best
    }

    /// Jaccard overlap of two word sets; 0 when both are empty.
    public static func overlap(_ a: Set<String>, _ b: Set<String>) -> Float {
        let union = a.union(b).count
        return union == 0 ? 0 : Float(a.intersection(b).count) / Float(union)
    }

    /// The content words of `text`: maximal runs of letters and digits, lower-cased, without English function words.
    public static func words(_ text: String) -> Set<String> {
        var words = Set<String>()
        var current = ""
        func flush() {
            if !current.isEmpty, !Self.functionWords.contains(current) { words.insert(current) }
            current = ""
        }
        for character in text.lowercased() {
            if character.isLetter || character.isNumber { current.append(character) } else { flush() }
        }
        flush()
        return words
    }

    /// The numbers in `text` (maximal runs of ASCII digits): "price of product 123, 2 units" gives {"123", "2"}.
    public static func numbers(_ text: String) -> Set<Substring> {
        var numbers = Set<Substring>()
        let utf8 = text.utf8
        var start: String.Index?
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let isDigit = (0x30...0x39).contains(utf8[index])
            if isDigit, start == nil { start = index }
            if !isDigit, let begin = start {
                numbers.insert(text[begin..<index])
                start = nil
            }
            index = utf8.index(after: index)
        }
        if let begin = start { numbers.insert(text[begin...]) }
        return numbers
    }

    static let functionWords: Set<String> = [
        "a", "an", "the", "is", "are", "was", "were", "be", "of", "to", "and", "or", "in", "on", "for", "with", "by",
        "as", "at", "it", "its", "this", "that", "from", "can", "you", "your", "how", "what", "which", "do", "does",
    ]
}
