extension SemanticGuards {
    /// What the guards compare of one text, read once per text.
    ///
    /// Reading works on Unicode scalars and UTF-8 bytes, not `Character`s, and in a few passes: a profile of a
    /// 25-word question costs microseconds (`cachekit-bench --semantic` times it).
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
        /// The lower-cased words, in order.
        var words: [String] = []
        /// The lower-cased text as UTF-8, for entities that are not one word, and the same without white space.
        var lowered: [UInt8] = []
        var compact: [UInt8] = []
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
            let lowered = text.lowercased()
            self.lowered = Array(lowered.utf8)
            self.compact = self.lowered.filter { $0 != 0x20 && $0 != 0x0A && $0 != 0x09 && $0 != 0x0D }
            let tokens = Self.tokens(lowered)
            self.wordCount = tokens.count
            var negations = 0
            var languageScores = [Int](repeating: 0, count: Lexicon.languageCodes.count)
            var counted: [String] = []
            self.words.reserveCapacity(tokens.count)
            for (position, token) in tokens.enumerated() {
                let word = token.lower
                self.words.append(word)
                // One table lookup per word; most words are in no list.
                let possessive = word.hasSuffix("'s")
                let entry = Lexicon.entries[word] ?? (possessive ? Lexicon.entries[String(word.dropLast(2))] : nil)
                if entry?.isNegation == true || word.hasSuffix("n't") {
                    // "… or not" and "whether or not" ask both ways; "No, …" answers rather than negates.
                    let asksBothWays = word == "not" && position > 0 && tokens[position - 1].lower == "or"
                    let answers = (word == "no" || word == "not") && token.followedByComma && position == 0
                    if !asksBothWays, !answers { negations += 1 }
                }
                guard let entry else { continue }
                let phrase = entry.startsPhrase && position + 1 < tokens.count ? Lexicon.phrases[word + " " + tokens[position + 1].lower] : nil
                if let (group, bit) = phrase?.opposite ?? entry.opposite { self.opposites[group, default: 0] |= bit }
                if let (kind, bit) = phrase?.kind ?? entry.kind { self.kinds[kind, default: 0] |= bit }
                if entry.languages != 0, !counted.contains(word) {
                    counted.append(word)
                    for index in languageScores.indices where entry.languages & (1 << index) != 0 { languageScores[index] += 1 }
                }
            }
            self.negated = negations % 2 == 1
            self.directions = Self.directions(tokens)
            let scalars = Array(text.unicodeScalars)
            (self.entities, self.acronyms) = Self.entitiesAndAcronyms(scalars)
            (self.script, self.language) = Self.language(scalars, scores: languageScores)
        }

        /// Whether this text contains `entity`: as a word or a word that differs only in its last two letters
        /// ("Sundays", a typo), as what an acronym stands for, or (an entity that is not a short plain word) anywhere,
        /// spaces ignored ("Hugging Face.js" holds "huggingface.js").
        func contains(_ entity: String) -> Bool {
            if self.words.contains(where: { $0 == entity || $0.hasSuffix("'s") && $0.dropLast(2) == entity }) || self.acronyms.contains(entity) {
                return true
            }
            let bytes = Array(entity.utf8)
            let plain = bytes.allSatisfy { Self.isASCIIAlphanumeric($0) || $0 >= 0x80 }
            if !plain || bytes.count >= 6, Self.find(bytes, in: self.lowered) || Self.find(bytes, in: self.compact) { return true }
            guard plain, bytes.count >= 5 else { return false }
            return self.words.contains { word in
                let count = word.utf8.count
                guard abs(count - bytes.count) <= 2, count >= 5 else { return false }
                let shared = zip(word.utf8, bytes).prefix { $0 == $1 }.count
                return shared >= min(count, bytes.count) - 1
            }
        }

        /// Whether `needle` occurs in `haystack`.
        static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Bool {
            guard let first = needle.first, needle.count <= haystack.count else { return needle.isEmpty }
            var start = 0
            let last = haystack.count - needle.count
            while start <= last {
                if haystack[start] == first {
                    var offset = 1
                    while offset < needle.count, haystack[start + offset] == needle[offset] { offset += 1 }
                    if offset == needle.count { return true }
                }
                start += 1
            }
            return false
        }

        // Unicode property lookups cost far more than the rest of a profile: ASCII answers first.
        static func isLetter(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            return value < 0x80 ? (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value) : scalar.properties.isAlphabetic
        }

        static func isUpper(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            return value < 0x80 ? (0x41...0x5A).contains(value) : scalar.properties.isUppercase
        }

        static func isLower(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            return value < 0x80 ? (0x61...0x7A).contains(value) : scalar.properties.isLowercase
        }

        static func isSpace(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            return value < 0x80 ? value == 0x20 || (0x09...0x0D).contains(value) : scalar.properties.isWhitespace
        }

        static func isASCIIAlphanumeric(_ byte: UInt8) -> Bool {
            (0x30...0x39).contains(byte) || (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte)
        }

        struct Token {
            var lower: String
            var followedByComma: Bool
        }

        static func isWordScalar(_ scalar: Unicode.Scalar) -> Bool {
            let value = scalar.value
            if value < 0x80 { return (0x30...0x39).contains(value) || (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value) }
            let properties = scalar.properties
            return properties.isAlphabetic || properties.numericType != nil || properties.generalCategory == .nonspacingMark
                || properties.generalCategory == .spacingMark
        }

        /// Words of the lower-cased text: letters and digits with inner apostrophes, and a trailing `+`/`#` ("c++",
        /// "c#").
        static func tokens(_ lowered: String) -> [Token] {
            var tokens: [Token] = []
            var current = String.UnicodeScalarView()
            var length = 0
            var pendingApostrophe = false
            func flush(comma: Bool) {
                if !current.isEmpty { tokens.append(Token(lower: String(current), followedByComma: comma)) }
                current = String.UnicodeScalarView()
                length = 0
                pendingApostrophe = false
            }
            for scalar in lowered.unicodeScalars {
                if Self.isWordScalar(scalar) {
                    if pendingApostrophe { current.append("'") }
                    pendingApostrophe = false
                    current.append(scalar)
                    length += 1
                } else if scalar == "'" || scalar == "\u{2019}" {
                    if current.isEmpty || pendingApostrophe { flush(comma: false) } else { pendingApostrophe = true }
                } else if scalar == "+" || scalar == "#", !current.isEmpty, length <= 8, !pendingApostrophe {
                    current.append(scalar)
                    length += 1
                } else {
                    flush(comma: scalar == ",")
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

        /// Entities: proper nouns and acronyms (a capital letter past a sentence's first word; two or more capitals
        /// anywhere), identifiers (`snake_case`, `camelCase`, `call()`, `a::b`, `module.attribute`), flags, file
        /// names and extensions, paths, URLs and quoted strings, lower-cased. Acronyms: what one may stand for here.
        static func entitiesAndAcronyms(_ scalars: [Unicode.Scalar]) -> (entities: Set<String>, acronyms: Set<String>) {
            var chunks: [ArraySlice<Unicode.Scalar>] = []
            var start: Int?
            for (index, scalar) in scalars.enumerated() {
                if Self.isSpace(scalar) {
                    if let begin = start { chunks.append(scalars[begin..<index]) }
                    start = nil
                } else if start == nil {
                    start = index
                }
            }
            if let begin = start { chunks.append(scalars[begin...]) }

            var acronyms = Set<String>()
            var initials = String.UnicodeScalarView()
            var capitalised = 0, shouting = 0
            for (position, chunk) in chunks.enumerated() {
                var capitals = String.UnicodeScalarView()
                var hasLetter = false, hasLower = false
                for scalar in chunk where Self.isLetter(scalar) {
                    if !hasLetter, position > 0, Self.isUpper(scalar) { capitalised += 1 }
                    hasLetter = true
                    if Self.isUpper(scalar) { capitals.append(scalar) } else if Self.isLower(scalar) { hasLower = true }
                }
                if hasLetter, !hasLower { shouting += 1 }
                if capitals.count >= 2 { acronyms.insert(String(capitals).lowercased()) }
                if let first = chunk.first(where: { Self.isLetter($0) }), Self.isUpper(first) {
                    initials.append(first)
                    if initials.count >= 2 { acronyms.insert(String(initials).lowercased()) }
                } else {
                    initials = String.UnicodeScalarView()
                }
            }
            // Title Case or ALL CAPS text marks every word: then capitals say nothing about proper nouns.
            let rest = chunks.count - 1
            let readsCapitals = rest < 3 || capitalised * 5 < rest * 3
            let readsAcronyms = chunks.count < 3 || shouting * 2 < chunks.count

            var entities = Set<String>()
            var sentenceStart = true
            for chunk in chunks {
                let trimmed = Lexicon.trimmed(chunk)
                defer {
                    let last = chunk.last.map { ".?!:;\u{2022}-".unicodeScalars.contains($0) } ?? false
                    sentenceStart = last || trimmed.isEmpty && sentenceStart
                }
                guard let first = trimmed.first else { continue }
                // Lower-cased, without a possessive or a call's parentheses; made only for an entity.
                func lower() -> String {
                    var lower = String(String.UnicodeScalarView(trimmed)).lowercased()
                    if lower.hasSuffix("'s") || lower.hasSuffix("\u{2019}s") { lower = String(lower.dropLast(2)) }
                    if lower.hasSuffix("()") { lower = String(lower.dropLast(2)) }
                    return lower
                }
                if Self.isIdentifierLike(trimmed) {
                    entities.insert(lower())
                    continue
                }
                guard Self.isUpper(first) || readsAcronyms else { continue }
                var letters = 0, capitals = 0
                for scalar in trimmed where Self.isLetter(scalar) {
                    letters += 1
                    if Self.isUpper(scalar) { capitals += 1 }
                }
                let isAcronym = readsAcronyms && capitals >= 2 && letters <= 12 && capitals * 2 >= letters
                let isProperNoun = readsCapitals && Self.isUpper(first) && !sentenceStart && letters >= 2
                if isAcronym || isProperNoun, case let word = lower(), isAcronym || !Lexicon.capitalisedFunctionWords.contains(word) {
                    entities.insert(word)
                }
            }
            // Quoted strings: "…", “…”, `…`.
            var index = 0
            while index < scalars.count {
                let open = scalars[index]
                let close: Unicode.Scalar? = open == "\"" ? "\"" : open == "`" ? "`" : open == "\u{201C}" ? "\u{201D}" : nil
                guard let close, let end = scalars[(index + 1)...].firstIndex(of: close) else {
                    index += 1
                    continue
                }
                let quoted = Lexicon.trimmed(scalars[(index + 1)..<end])
                var bare = String(String.UnicodeScalarView(quoted)).lowercased()
                if bare.hasSuffix("()") { bare = String(bare.dropLast(2)) }
                if !bare.isEmpty, quoted.count <= 80 { entities.insert(bare) }
                index = end + 1
            }
            return (entities, acronyms)
        }

        /// `snake_case`, `camelCase`, `call()`, `a::b`, `a->b`, `a.b` (not "e.g."), `--flag`, `.ext`, `/a/path`,
        /// `https://…`, `www.…`.
        static func isIdentifierLike(_ token: ArraySlice<Unicode.Scalar>) -> Bool {
            guard let first = token.first else { return false }
            let second = token.dropFirst().first
            if first == "-" || first == "." {
                // Command-line flags and file extensions: "--force", "-v", ".docx".
                if second == "-" || second.map({ Self.isLetter($0) }) == true { return token.count > 1 }
            }
            if first == "/" || first == "~" && second == "/" || first == "." && second == "/" { return token.count > 1 }
            var previous: Unicode.Scalar?
            var previousLower = false
            var parts = 1, emptyPart = false, longPart = false, partLength = 0, partHasLetter = false
            var anyLetterPart = false, dottedOnlyWordy = true
            for (offset, scalar) in token.enumerated() {
                switch scalar {
                case "_": return true
                case ")": if previous == "(" { return true }
                case ":": if previous == ":" { return true }
                case ">": if previous == "-" { return true }
                case "/": if previous == ":", token.dropFirst(offset + 1).first == "/" { return true }
                default: break
                }
                if offset > 0, Self.isUpper(scalar), previousLower { return true }
                previousLower = Self.isLower(scalar)
                if scalar == "." {
                    if partLength == 0 { emptyPart = true }
                    if partLength >= 2 { longPart = true }
                    anyLetterPart = anyLetterPart || partHasLetter
                    parts += 1
                    partLength = 0
                    partHasLetter = false
                } else {
                    partLength += 1
                    if Self.isLetter(scalar) { partHasLetter = true }
                    if !(Self.isWordScalar(scalar) || scalar == "-") { dottedOnlyWordy = false }
                }
                previous = scalar
            }
            if partLength == 0 { emptyPart = true }
            if partLength >= 2 { longPart = true }
            anyLetterPart = anyLetterPart || partHasLetter
            if token.starts(with: "www.".unicodeScalars) { return true }
            return parts >= 2 && !emptyPart && longPart && anyLetterPart && dottedOnlyWordy
        }

        static func language(_ scalars: [Unicode.Scalar], scores: [Int]) -> (script: String?, language: String?) {
            var counts = [Int](repeating: 0, count: Lexicon.scripts.count)
            for scalar in scalars {
                let value = scalar.value
                if value < 0x80 {
                    if (0x41...0x5A).contains(value) || (0x61...0x7A).contains(value) { counts[0] += 1 }
                } else if Self.isLetter(scalar) {
                    counts[Lexicon.script(of: value)] += 1
                }
            }
            // Japanese mixes kana with Han characters: any kana makes it Japanese.
            let kana = Lexicon.scripts.firstIndex(of: "kana")!, han = Lexicon.scripts.firstIndex(of: "han")!
            if counts[kana] > 0 {
                counts[kana] += counts[han]
                counts[han] = 0
            }
            guard let top = counts.indices.max(by: { counts[$0] < counts[$1] }), counts[top] >= 3 else { return (nil, nil) }
            guard top == 0 else { return (Lexicon.scripts[top], nil) }
            let ranked = scores.indices.sorted { scores[$0] > scores[$1] }
            guard let best = ranked.first, scores[best] >= 2, ranked.count < 2 || scores[best] > scores[ranked[1]] else {
                return ("latin", nil)
            }
            return ("latin", Lexicon.languageCodes[best])
        }
    }
}
