extension SemanticGuards {
    /// What the guards compare of one text, read once per text.
    public struct Profile: Sendable {
        /// Runs of ASCII digits.
        public internal(set) var numbers: Set<Substring> = []
        /// An odd number of negations.
        public internal(set) var negated = false
        /// Opposite operations and directions named: group → classes (bits).
        var opposites: [Int: UInt64] = [:]
        /// Entities of a known kind named: kind → members (bits).
        var kinds: [Int: UInt64] = [:]
        /// The two sides of each "to"/"into".
        var directions: [Direction] = []
        /// Proper nouns, acronyms, identifiers, file names, URLs and quoted strings, lower-cased.
        public internal(set) var entities: Set<String> = []
        /// The lower-cased words (with and without a possessive 's).
        var words: Set<String> = []
        /// The lower-cased text, for entities that are not one word, and the same without white space.
        var lowered = ""
        var compact = ""
        /// The capitals of each word ("TypeScript" → "ts") and the initials of runs of capitalised words ("Machine
        /// Learning" → "ml"), lower-cased: what an acronym in the other text may stand for.
        var acronyms: Set<String> = []
        /// How many words the text has.
        public internal(set) var wordCount = 0
        /// The dominant script, when the text has letters of more than one or of a non-Latin script.
        public internal(set) var script: String?
        /// A confident guess of a Latin-script language ("en", "fr", "es", "de", "it", "pt", "nl").
        public internal(set) var language: String?

        public init(_ text: String) {
            self.numbers = SemanticRerank.numbers(text)
            self.lowered = text.lowercased()
            self.compact = String(self.lowered.filter { !$0.isWhitespace })
            self.acronyms = Self.acronyms(text)
            let tokens = Self.tokens(text)
            self.wordCount = tokens.count
            var negations = 0
            var previous: Token?
            var languageScores = [Int](repeating: 0, count: Lexicon.languageStopWords.count)
            var seen = Set<String>()
            for (position, token) in tokens.enumerated() {
                let word = token.lower
                self.words.insert(word)
                if word.hasSuffix("'s") { self.words.insert(String(word.dropLast(2))) }
                if Lexicon.negations.contains(word) || word.hasSuffix("n't") {
                    // "… or not" and "whether or not" ask both ways; "No, …" answers rather than negates.
                    let asksBothWays = word == "not" && previous.map { $0.lower == "or" } == true
                    let answers = (word == "no" || word == "not") && token.followedByComma && position == 0
                    if !asksBothWays, !answers { negations += 1 }
                }
                if let next = tokens.dropFirst(position + 1).first,
                    let (group, bit) = Lexicon.oppositePhrases[word + " " + next.lower]
                {
                    self.opposites[group, default: 0] |= bit
                } else if let (group, bit) = Lexicon.opposites[word] {
                    self.opposites[group, default: 0] |= bit
                }
                if let next = tokens.dropFirst(position + 1).first, let (kind, bit) = Lexicon.kindPhrases[word + " " + next.lower] {
                    self.kinds[kind, default: 0] |= bit
                } else if let (kind, bit) = Lexicon.kinds[word] ?? Lexicon.kinds[word.hasSuffix("'s") ? String(word.dropLast(2)) : word] {
                    self.kinds[kind, default: 0] |= bit
                }
                if seen.insert(word).inserted {
                    for (index, words) in Lexicon.languageStopWords.enumerated() where words.contains(word) { languageScores[index] += 1 }
                }
                previous = token
            }
            self.negated = negations % 2 == 1
            self.directions = Self.directions(tokens)
            self.entities = Self.entities(text)
            (self.script, self.language) = Self.language(text, scores: languageScores)
        }

        /// Whether this text contains `entity`: as a word or a word that differs only in its last two letters
        /// ("Sundays", a typo), as what an acronym stands for, or (an entity that is not a short plain word) anywhere,
        /// spaces ignored ("Hugging Face.js" holds "huggingface.js").
        func contains(_ entity: String) -> Bool {
            if self.words.contains(entity) || self.acronyms.contains(entity) { return true }
            let plain = entity.allSatisfy { $0.isLetter || $0.isNumber }
            if !plain || entity.count >= 6, self.lowered.contains(entity) || self.compact.contains(entity) { return true }
            guard plain, entity.count >= 5 else { return false }
            return self.words.contains { word in
                abs(word.count - entity.count) <= 2 && word.count >= 5 && Self.sharedPrefix(word, entity) >= min(word.count, entity.count) - 1
            }
        }

        static func sharedPrefix(_ a: String, _ b: String) -> Int {
            zip(a, b).prefix { $0 == $1 }.count
        }

        static func acronyms(_ text: String) -> Set<String> {
            var acronyms = Set<String>()
            var initials = ""
            for raw in text.split(whereSeparator: { $0.isWhitespace }) {
                let capitals = raw.filter(\.isUppercase)
                if capitals.count >= 2 { acronyms.insert(capitals.lowercased()) }
                if let first = raw.first(where: \.isLetter), first.isUppercase {
                    initials.append(first)
                    if initials.count >= 2 { acronyms.insert(initials.lowercased()) }
                } else {
                    initials = ""
                }
            }
            return acronyms
        }

        struct Token {
            var lower: String
            var followedByComma: Bool
        }

        /// Words: letters and digits with inner apostrophes, and a trailing `+`/`#` ("c++", "c#"), lower-cased.
        static func tokens(_ text: String) -> [Token] {
            var tokens: [Token] = []
            var current = ""
            var pendingApostrophe = false
            func flush(comma: Bool) {
                if !current.isEmpty { tokens.append(Token(lower: current, followedByComma: comma)) }
                current = ""
                pendingApostrophe = false
            }
            for character in text.lowercased() {
                if character.isLetter || character.isNumber {
                    if pendingApostrophe { current.append("'") }
                    pendingApostrophe = false
                    current.append(character)
                } else if character == "'" || character == "\u{2019}" {
                    if current.isEmpty || pendingApostrophe { flush(comma: false) } else { pendingApostrophe = true }
                } else if (character == "+" || character == "#"), !current.isEmpty, current.count <= 8, !pendingApostrophe {
                    current.append(character)
                } else {
                    flush(comma: character == ",")
                }
            }
            flush(comma: false)
            return tokens
        }

        /// The words on each side of each "to"/"into": past filler words, up to three content words in a row.
        static func directions(_ tokens: [Token]) -> [Direction] {
            var directions: [Direction] = []
            func isFiller(_ token: Token) -> Bool { Lexicon.directionFiller.contains(token.lower) }
            for (index, token) in tokens.enumerated() where token.lower == "to" || token.lower == "into" {
                var before = Set<String>()
                var cursor = index - 1
                while cursor >= 0, isFiller(tokens[cursor]), index - cursor <= 3 { cursor -= 1 }
                while cursor >= 0, !isFiller(tokens[cursor]), before.count < 3, tokens[cursor].lower != "to" {
                    before.insert(tokens[cursor].lower)
                    cursor -= 1
                }
                var after = Set<String>()
                cursor = index + 1
                while cursor < tokens.count, isFiller(tokens[cursor]), cursor - index <= 3 { cursor += 1 }
                while cursor < tokens.count, !isFiller(tokens[cursor]), after.count < 3, tokens[cursor].lower != "to" {
                    after.insert(tokens[cursor].lower)
                    cursor += 1
                }
                if !before.isEmpty, !after.isEmpty, before.isDisjoint(with: after) { directions.append(Direction(from: before, to: after)) }
            }
            return directions
        }

        /// The two sides of a "to"/"into".
        struct Direction: Sendable {
            var from: Set<String>
            var to: Set<String>
        }

        /// Proper nouns and acronyms (a capital letter past a sentence's first word; two or more capitals anywhere),
        /// identifiers (`snake_case`, `camelCase`, `call()`, `a::b`, `module.attribute`), file names, paths, URLs
        /// and quoted strings, lower-cased.
        static func entities(_ text: String) -> Set<String> {
            var entities = Set<String>()
            var sentenceStart = true
            let raws = text.split(whereSeparator: { $0.isWhitespace })
            // Title Case or ALL CAPS text marks every word: then capitals say nothing about proper nouns.
            let rest = raws.dropFirst()
            let capitalised = rest.filter { $0.first(where: \.isLetter)?.isUppercase == true }.count
            let shouting = raws.filter { word in word.contains(where: \.isLetter) && !word.contains(where: \.isLowercase) }.count
            let readsCapitals = rest.count < 3 || capitalised * 5 < rest.count * 3
            let readsAcronyms = raws.count < 3 || shouting * 2 < raws.count
            for raw in raws {
                let trimmed = Lexicon.trimmed(raw)
                defer { sentenceStart = raw.last.map { ".?!:;\u{2022}-".contains($0) } ?? false || trimmed.isEmpty && sentenceStart }
                guard let first = trimmed.first else { continue }
                var lower = trimmed.lowercased()
                if lower.hasSuffix("'s") || lower.hasSuffix("\u{2019}s") { lower = String(lower.dropLast(2)) }
                if lower.hasSuffix("()") { lower = String(lower.dropLast(2)) }
                if Self.isIdentifierLike(trimmed) {
                    entities.insert(lower)
                    continue
                }
                let letters = trimmed.filter(\.isLetter)
                let capitals = letters.filter(\.isUppercase).count
                let isAcronym = readsAcronyms && capitals >= 2 && letters.count <= 12 && capitals * 2 >= letters.count
                let isProperNoun = readsCapitals && first.isUppercase && !sentenceStart && !Lexicon.capitalisedFunctionWords.contains(lower)
                if (isAcronym || isProperNoun), letters.count >= 2 || isAcronym { entities.insert(lower) }
            }
            // Quoted strings: "…", “…”, `…`.
            for (open, close) in [("\"", "\""), ("\u{201C}", "\u{201D}"), ("`", "`")] {
                var rest = Substring(text)
                while let start = rest.firstRange(of: open), let end = rest[start.upperBound...].firstRange(of: close) {
                    let quoted = Lexicon.trimmed(rest[start.upperBound..<end.lowerBound]).lowercased()
                    let bare = quoted.hasSuffix("()") ? String(quoted.dropLast(2)) : quoted
                    if !bare.isEmpty, bare.count <= 80 { entities.insert(bare) }
                    rest = rest[end.upperBound...]
                }
            }
            return entities
        }

        /// `snake_case`, `camelCase`, `call()`, `a::b`, `a.b` (not "e.g."), `/a/path`, `https://…`, `www.…`.
        static func isIdentifierLike(_ token: String) -> Bool {
            if token.contains("://") || token.hasPrefix("www.") { return true }
            // Command-line flags and file extensions: "--force", "-v", ".docx".
            if let first = token.first, first == "-" || first == ".", token.dropFirst().first?.isLetter == true || token.hasPrefix("--") {
                return token.count > 1
            }
            if token.contains("_") || token.contains("()") || token.contains("::") || token.contains("->") { return true }
            if token.hasPrefix("/") || token.hasPrefix("./") || token.hasPrefix("~/") { return token.count > 1 }
            var previousLower = false
            for character in token.dropFirst() {
                if character.isUppercase, previousLower { return true }
                previousLower = character.isLowercase
            }
            let parts = token.split(separator: ".", omittingEmptySubsequences: false)
            if parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }), parts.contains(where: { $0.count >= 2 }),
                parts.allSatisfy({ $0.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" } }),
                parts.contains(where: { $0.contains(where: \.isLetter) })
            {
                return true
            }
            return false
        }

        static func language(_ text: String, scores: [Int]) -> (script: String?, language: String?) {
            var counts: [String: Int] = [:]
            for scalar in text.unicodeScalars where scalar.properties.isAlphabetic {
                counts[Lexicon.script(of: scalar.value), default: 0] += 1
            }
            // Japanese mixes kana with Han characters: any kana makes it Japanese.
            if let kana = counts["kana"], kana > 0 { counts["kana", default: 0] += counts.removeValue(forKey: "han") ?? 0 }
            let script = counts.max { $0.value < $1.value }.flatMap { $0.value >= 3 ? $0.key : nil }
            guard script == "latin" else { return (script, nil) }
            let ranked = scores.enumerated().sorted { $0.element > $1.element }
            guard let top = ranked.first, top.element >= 2, ranked.count < 2 || top.element > ranked[1].element else { return (script, nil) }
            return (script, Lexicon.languageCodes[top.offset])
        }
    }
}
