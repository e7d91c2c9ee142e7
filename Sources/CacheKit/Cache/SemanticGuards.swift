/// Refuses a semantic match whose stored question differs from the query in what it asks about, however close
/// their embeddings are.
///
/// Sentence embeddings place "How do I enable two-factor login?" and "How do I disable two-factor login?" nearer
/// each other than many true paraphrases, and the same holds for a negation, another product, another programming
/// language, another city, another currency or the same question in another language. Each guard compares one such
/// feature of the two texts and refuses the match when they disagree:
///
/// - ``Guard/numbers``: the numbers (runs of digits) differ: "product 123" never answers "product 456".
/// - ``Guard/negation``: one text is negated and the other is not ("not", "never", "no longer", "without",
///   "can't", "unable" …, counted in pairs so that a double negation cancels).
/// - ``Guard/opposites``: the texts name opposite operations or directions: enable/disable, add/remove,
///   increase/decrease, buy/sell, import/export, upload/download, encrypt/decrypt, start/stop, before/after,
///   min/max, log in/log out … (one text names one side and not the other, the other text the other side).
/// - ``Guard/direction``: the same two things in opposite order around "to"/"into": "Celsius to Fahrenheit"
///   versus "Fahrenheit to Celsius".
/// - ``Guard/entities``: another entity of the same kind (programming languages, frameworks, natural languages,
///   places, currencies, units, plans, platforms, months, weekdays), or each text naming an entity that the other
///   does not contain at all: a proper noun or acronym, a code identifier, a file name, a URL, a quoted string.
/// - ``Guard/language``: the texts are written in different languages or scripts.
///
/// The guards read words, not meaning: each costs some true paraphrases ("optional" versus "not required") to
/// remove many more wrong answers. `cachekit calibrate --hard-set` reports, per guard, how many wrong hits it
/// removes and how many right hits it costs on labelled data.
public struct SemanticGuards: Sendable, Hashable {
    /// One guard.
    public enum Guard: String, CaseIterable, Sendable, Hashable, Comparable {
        case numbers, negation, opposites, direction, entities, language

        public static func < (a: Guard, b: Guard) -> Bool {
            Self.allCases.firstIndex(of: a)! < Self.allCases.firstIndex(of: b)!
        }
    }

    /// The guards that apply.
    public var enabled: Set<Guard>

    public init(_ enabled: Set<Guard> = Set(Guard.allCases)) {
        self.enabled = enabled
    }

    /// Every guard (the default).
    public static let all = SemanticGuards()
    /// No guard.
    public static let none = SemanticGuards([])

    /// The guard that refuses serving `candidate`'s answer to `query`, or `nil` when none does. Guards are checked
    /// in ``Guard`` order; the first that refuses is reported.
    public func refusal(query: Profile, candidate: Profile) -> Guard? {
        for guardKind in Guard.allCases where self.enabled.contains(guardKind) {
            if Self.refuses(guardKind, query, candidate) { return guardKind }
        }
        return nil
    }

    /// The guard that refuses serving the answer stored for `candidate` to `query`, or `nil`.
    public func refusal(query: String, candidate: String) -> Guard? {
        self.enabled.isEmpty ? nil : self.refusal(query: Profile(query), candidate: Profile(candidate))
    }

    static func refuses(_ guardKind: Guard, _ a: Profile, _ b: Profile) -> Bool {
        switch guardKind {
        case .numbers:
            return a.numbers != b.numbers
        case .negation:
            // In long texts a negation is as often reworded away ("without any code" for "eliminates the need for
            // coding") as it turns the meaning: the guard reads questions and short instructions only.
            return a.negated != b.negated && max(a.wordCount, b.wordCount) <= Self.negationWordLimit
        case .opposites:
            return Self.conflict(a.opposites, b.opposites)
        case .direction:
            // What one text converts from, the other converts to: "Boston to New York" versus "New York to Boston".
            return a.directions.contains { one in
                b.directions.contains { other in !one.from.isDisjoint(with: other.to) && !one.to.isDisjoint(with: other.from) }
            }
        case .entities:
            // Another entity of a known kind; or each text names something the other does not (a swap: one text
            // naming less than the other is a narrower question, not another one).
            return Self.conflict(a.kinds, b.kinds) || (!a.entities.allSatisfy(b.contains) && !b.entities.allSatisfy(a.contains))
        case .language:
            if let x = a.script, let y = b.script, x != y { return true }
            if let x = a.language, let y = b.language, x != y { return true }
            return false
        }
    }

    /// The longest text, in words, that the negation guard reads.
    static let negationWordLimit = 20

    /// Whether each text names a class of some group that the other does not name.
    static func conflict(_ a: [Int: UInt64], _ b: [Int: UInt64]) -> Bool {
        for (group, mask) in a {
            guard let other = b[group] else { continue }
            if mask & ~other != 0, other & ~mask != 0 { return true }
        }
        return false
    }
}
