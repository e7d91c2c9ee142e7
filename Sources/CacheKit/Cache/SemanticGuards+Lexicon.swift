extension SemanticGuards {
    /// The word lists the guards read. English only, apart from the language guesses.
    enum Lexicon {
        static let negations: Set<String> = [
            "not", "no", "never", "none", "nobody", "nothing", "neither", "nor", "without", "cannot", "unable", "nowhere",
            "non", "absence", "absent", "lack", "lacks", "lacking", "missing",
            "cant", "dont", "doesnt", "didnt", "isnt", "arent", "wasnt", "werent", "wont", "wouldnt", "shouldnt", "couldnt",
            "hasnt", "havent", "hadnt", "mustnt", "neednt",
        ]

        /// Opposite operations and directions: each group lists classes, each class its words (verbs also in
        /// their inflected forms).
        static let oppositeGroups: [[[String]]] = [
            [["enable", "activate", "unmute", "unblock", "unlock", "unarchive", "allow", "permit", "grant", "whitelist", "allowlist"],
             ["disable", "deactivate", "mute", "block", "lock", "archive", "deny", "forbid", "revoke", "blacklist", "blocklist", "ban"]],
            [["add", "insert", "create", "append", "attach", "install", "subscribe", "follow", "join", "include", "mount", "connect", "pair", "link", "hire", "register"],
             ["remove", "delete", "drop", "detach", "uninstall", "unsubscribe", "unfollow", "leave", "exclude", "unmount", "disconnect", "unpair", "unlink", "fire", "deregister", "unregister", "erase", "destroy"]],
            [["increase", "raise", "grow", "expand", "extend", "enlarge", "maximize", "maximise", "boost", "upscale", "more", "higher", "larger", "bigger", "longer", "faster", "taller", "heavier", "older", "earlier", "high"],
             ["decrease", "reduce", "lower", "shrink", "shorten", "minimize", "minimise", "downscale", "less", "fewer", "smaller", "shorter", "slower", "lighter", "younger", "later", "low"]],
            [["buy", "purchase", "bought"], ["sell", "sold"]],
            [["import"], ["export"]],
            [["upload", "uploads"], ["download", "downloads"]],
            [["encrypt", "encryption"], ["decrypt", "decryption"]],
            [["encode", "encoding", "serialize", "serialise", "compress", "zip", "pack"], ["decode", "decoding", "deserialize", "deserialise", "decompress", "unzip", "unpack", "extract"]],
            [["start", "begin", "launch", "resume", "restart"], ["stop", "end", "halt", "terminate", "quit", "kill", "pause", "suspend"]],
            [["open", "opening"], ["close", "closing"]],
            [["before", "prior"], ["after"]],
            [["min", "minimum", "minimal", "smallest", "lowest", "least", "cheapest", "shortest", "oldest", "first"],
             ["max", "maximum", "maximal", "largest", "biggest", "highest", "most", "priciest", "longest", "newest", "latest", "last"]],
            [["push"], ["pull"]],
            [["send", "sent", "outgoing", "outbound", "output"], ["receive", "received", "incoming", "inbound", "input"]],
            [["upgrade"], ["downgrade"]],
            [["upvote"], ["downvote"]],
            [["uppercase", "upper"], ["lowercase"]],
            [["ascending", "asc"], ["descending", "desc"]],
            [["above"], ["below", "beneath"]],
            [["inside", "internal", "indoor", "indoors"], ["outside", "external", "outdoor", "outdoors"]],
            [["public"], ["private"]],
            [["client", "frontend", "front-end", "client-side"], ["server", "backend", "back-end", "server-side"]],
            [["read", "reading", "readable"], ["write", "writing", "writable", "wrote", "written"]],
            [["merge", "combine"], ["split", "separate"]],
            [["deposit", "credit", "lend", "lent"], ["withdraw", "withdrawal", "debit", "borrow", "borrowed"]],
            [["arrive", "arrival", "arrivals"], ["depart", "departure", "departures"]],
            [["online"], ["offline"]],
            [["light", "bright"], ["dark", "dim"]],
            [["horizontal", "horizontally"], ["vertical", "vertically"]],
            [["left"], ["right"]],
            [["north", "northern"], ["south", "southern"]],
            [["east", "eastern"], ["west", "western"]],
            [["male", "man", "men", "boy", "boys"], ["female", "woman", "women", "girl", "girls"]],
            [["win", "won", "winning", "winner"], ["lose", "lost", "losing", "loser"]],
            [["pass", "passed", "passing", "success", "succeed", "succeeded", "successful"], ["fail", "failed", "failing", "failure"]],
            [["true"], ["false"]],
            [["accept", "approve", "confirm"], ["reject", "decline", "refuse", "cancel"]],
            [["hot", "warm", "heat", "heating"], ["cold", "cool", "freeze", "cooling"]],
            [["cheap", "cheaper", "inexpensive"], ["expensive", "pricier", "costly"]],
            [["early"], ["late"]],
            [["past"], ["future"]],
            [["sync", "synchronous", "synchronously"], ["async", "asynchronous", "asynchronously"]],
            [["mutable"], ["immutable"]],
            [["legal", "lawful"], ["illegal", "unlawful"]],
            [["safe", "secure"], ["unsafe", "insecure", "dangerous"]],
            [["positive"], ["negative"]],
            [["show", "display", "reveal"], ["hide", "conceal"]],
            [["forward"], ["backward", "backwards", "back"]],
        ]

        /// Two-word operations ("log in", "turn off"), in the same shape: the first word also in its inflected forms.
        static let oppositePhraseGroups: [[[String]]] = [
            [["turn on", "switch on", "power on", "toggle on"], ["turn off", "switch off", "power off", "toggle off", "shut down"]],
            [["log in", "sign in", "login", "signin", "logon", "log on"], ["log out", "sign out", "logout", "signout", "log off"], ["sign up", "signup"]],
            [["opt in"], ["opt out"]],
            [["zoom in"], ["zoom out"]],
            [["scale up"], ["scale down"]],
            [["scroll up"], ["scroll down"]],
            [["speed up"], ["slow down"]],
            [["check in", "checkin"], ["check out", "checkout"]],
            [["plug in"], ["unplug"]],
            [["set up", "setup"], ["tear down", "teardown"]],
        ]

        /// Entities of a known kind: two texts that name different members of one kind ask different questions.
        static let kindGroups: [[String]] = [
            // Programming languages (not "go", "c", "r": too common as words).
            ["python", "java", "javascript", "typescript", "rust", "golang", "swift", "kotlin", "ruby", "php", "perl", "scala",
             "c++", "c#", "f#", "haskell", "elixir", "erlang", "clojure", "dart", "lua", "julia", "matlab", "fortran", "cobol",
             "bash", "powershell", "sql", "html", "css", "objective-c", "zig", "nim", "ocaml", "groovy", "vba", "assembly"],
            // Frameworks, libraries and tools.
            ["react", "angular", "vue", "svelte", "django", "flask", "fastapi", "rails", "laravel", "symfony", "nextjs",
             "nuxt", "tensorflow", "pytorch", "keras", "pandas", "numpy", "scipy", "jquery", "tailwind", "kubernetes",
             "docker", "terraform", "ansible", "jenkins", "webpack", "vite", "maven", "gradle", "npm", "yarn", "pip", "conda",
             "git", "svn", "mercurial", "hadoop", "kafka", "rabbitmq", "nginx", "apache", "junit", "pytest", "jest",
             "selenium", "unreal", "flutter", "xamarin", "electron", "hibernate"],
            // Databases.
            ["mysql", "postgresql", "postgres", "sqlite", "mongodb", "redis", "cassandra", "dynamodb", "elasticsearch",
             "mariadb", "oracle", "couchdb", "neo4j", "firebase", "supabase", "snowflake", "bigquery", "memcached"],
            // Natural languages.
            ["english", "french", "spanish", "german", "italian", "portuguese", "dutch", "russian", "chinese", "mandarin",
             "cantonese", "japanese", "korean", "arabic", "hindi", "bengali", "turkish", "polish", "swedish", "norwegian",
             "danish", "finnish", "greek", "hebrew", "thai", "vietnamese", "indonesian", "ukrainian", "czech", "romanian",
             "hungarian", "persian", "farsi", "urdu", "swahili", "tagalog", "malay", "latin", "catalan", "welsh", "irish"],
            // Countries.
            ["usa", "america", "canada", "mexico", "brazil", "argentina", "chile", "peru", "colombia", "uk", "britain", "england",
             "scotland", "ireland", "france", "germany", "spain", "portugal", "italy", "netherlands", "belgium", "switzerland",
             "austria", "sweden", "norway", "denmark", "finland", "poland", "russia", "ukraine", "turkey", "greece", "egypt",
             "nigeria", "kenya", "india", "pakistan", "bangladesh", "china", "japan", "korea", "vietnam", "thailand",
             "indonesia", "philippines", "malaysia", "singapore", "australia", "zealand", "israel", "iran", "iraq", "saudi",
             "emirates", "uae", "qatar", "morocco", "ethiopia", "ghana"],
            // Cities.
            ["london", "paris", "berlin", "madrid", "rome", "amsterdam", "brussels", "vienna", "zurich", "geneva", "dublin",
             "lisbon", "barcelona", "munich", "milan", "prague", "warsaw", "stockholm", "oslo", "copenhagen", "helsinki",
             "athens", "istanbul", "moscow", "kyiv", "cairo", "lagos", "nairobi", "dubai", "mumbai", "delhi", "bangalore",
             "beijing", "shanghai", "tokyo", "osaka", "seoul", "bangkok", "jakarta", "manila", "sydney", "melbourne",
             "toronto", "vancouver", "montreal", "chicago", "boston", "seattle", "denver", "miami", "atlanta", "dallas",
             "houston", "austin", "phoenix", "philadelphia", "nyc", "la", "sf"],
            // Currencies.
            ["usd", "eur", "gbp", "jpy", "cny", "inr", "cad", "aud", "chf", "dollar", "dollars", "euro", "euros", "pound",
             "pounds", "yen", "yuan", "rupee", "rupees", "peso", "pesos", "franc", "francs", "bitcoin", "btc", "ethereum", "eth",
             "ruble", "rubles", "lira", "krona"],
            // Units of length, mass, volume and temperature.
            ["meter", "meters", "metre", "metres", "kilometer", "kilometers", "kilometre", "kilometres", "km", "centimeter",
             "centimeters", "cm", "millimeter", "millimeters", "mm", "mile", "miles", "yard", "yards", "foot", "feet", "inch",
             "inches", "kilogram", "kilograms", "kg", "gram", "grams", "ounce", "ounces", "oz", "lb", "lbs", "ton", "tons",
             "liter", "liters", "litre", "litres", "gallon", "gallons", "cup", "cups", "celsius", "fahrenheit", "kelvin"],
            // Units of time.
            ["seconds", "minute", "minutes", "hour", "hours", "day", "days", "week", "weeks", "month", "months", "year", "years",
             "decade", "decades", "century", "centuries", "millisecond", "milliseconds"],
            // Units of data.
            ["bit", "bits", "byte", "bytes", "kb", "kilobyte", "kilobytes", "mb", "megabyte", "megabytes", "gb", "gigabyte",
             "gigabytes", "tb", "terabyte", "terabytes"],
            // Operating systems and devices.
            ["windows", "macos", "mac", "osx", "linux", "ubuntu", "debian", "fedora", "centos", "android", "ios", "iphone",
             "ipad", "chromebook", "chromeos", "ipados", "watchos", "tvos", "xbox", "playstation", "ps5"],
            // Browsers.
            ["chrome", "firefox", "safari", "opera", "brave", "chromium"],
            // Companies and services.
            ["google", "microsoft", "apple", "amazon", "aws", "azure", "gcp", "netflix", "spotify", "facebook", "instagram",
             "whatsapp", "twitter", "tiktok", "youtube", "slack", "github", "gitlab", "bitbucket", "dropbox", "paypal",
             "stripe", "venmo", "uber", "lyft", "airbnb", "linkedin", "reddit", "discord", "telegram", "gmail",
             "outlook", "yahoo", "openai", "anthropic", "salesforce", "shopify", "jira", "trello", "figma"],
            // Months ("may" is a verb too often to count).
            ["january", "february", "march", "april", "june", "july", "august", "september", "october", "november", "december"],
            // Weekdays and days relative to today.
            ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
            ["today", "tomorrow", "yesterday", "tonight"],
            // How often.
            ["hourly", "daily", "weekly", "monthly", "yearly", "annually", "annual", "quarterly"],
            // Seasons.
            ["summer", "winter", "autumn"],
            // Plans and tiers: only with a following "plan", "tier", "account" … (see `planNouns`).
            ["free", "basic", "pro", "premium", "plus", "enterprise", "business", "personal", "team", "starter", "standard",
             "family", "student", "individual", "professional", "ultimate", "lite", "trial", "gold", "silver", "platinum"],
        ]

        /// Git's commands: only right after "git" ("git rebase" versus "git merge").
        static let gitCommands = ["add", "commit", "push", "pull", "fetch", "merge", "rebase", "clone", "stash", "checkout",
                                  "switch", "branch", "reset", "revert", "cherry-pick", "cherry", "tag", "log", "diff", "status",
                                  "init", "remote", "bisect", "blame", "restore", "rm", "mv", "submodule", "worktree", "gc"]

        /// The nouns after which a plan word names a plan.
        static let planNouns = ["plan", "plans", "tier", "tiers", "subscription", "account", "accounts", "version", "edition",
                                "license", "licence", "membership", "users", "user", "customers", "member", "members"]

        /// A word → (group, class bit).
        static let opposites: [String: (Int, UInt64)] = {
            var table: [String: (Int, UInt64)] = [:]
            for (group, classes) in Self.oppositeGroups.enumerated() {
                for (index, words) in classes.enumerated() {
                    for word in words { for form in Self.forms(word) where table[form] == nil { table[form] = (group, 1 << UInt64(index)) } }
                }
            }
            return table
        }()

        /// "word next" → (group, class bit), the groups numbered after `oppositeGroups`.
        static let oppositePhrases: [String: (Int, UInt64)] = {
            var table: [String: (Int, UInt64)] = [:]
            for (offset, classes) in Self.oppositePhraseGroups.enumerated() {
                let group = Self.oppositeGroups.count + offset
                for (index, phrases) in classes.enumerated() {
                    for phrase in phrases {
                        let parts = phrase.split(separator: " ").map(String.init)
                        guard parts.count == 2 else { continue }
                        for form in Self.forms(parts[0]) where table[form + " " + parts[1]] == nil {
                            table[form + " " + parts[1]] = (group, 1 << UInt64(index))
                        }
                    }
                }
            }
            return table
        }()

        /// A word → (kind, member bit); plan words are left to `kindPhrases`.
        static let kinds: [String: (Int, UInt64)] = {
            var table: [String: (Int, UInt64)] = [:]
            for (kind, members) in Self.kindGroups.enumerated() where kind != Self.kindGroups.count - 1 {
                for (index, word) in members.enumerated() where table[word] == nil { table[word] = (kind, 1 << UInt64(index)) }
            }
            return table
        }()

        /// "plan-word noun" and "git command" → (kind, member bit); git's commands are the kind after the last group.
        static let kindPhrases: [String: (Int, UInt64)] = {
            var table: [String: (Int, UInt64)] = [:]
            let kind = Self.kindGroups.count - 1
            for (index, word) in Self.kindGroups[kind].enumerated() {
                for noun in Self.planNouns { table[word + " " + noun] = (kind, 1 << UInt64(index)) }
            }
            for (index, command) in Self.gitCommands.enumerated() { table["git " + command] = (kind + 1, 1 << UInt64(index)) }
            return table
        }()

        /// A verb's inflections: "enable" → enable, enables, enabled, enabling, enabler …; "stop" → stopped, stopping.
        static func forms(_ word: String) -> [String] {
            var forms = [word, word + "s", word + "es", word + "ed", word + "ing", word + "er", word + "ers"]
            if word.hasSuffix("e") {
                let stem = String(word.dropLast())
                forms += [word + "d", stem + "ing", word + "r", word + "rs", stem + "ion", stem + "ions"]
            }
            if word.hasSuffix("y"), word.count > 3 { forms += [String(word.dropLast()) + "ies", String(word.dropLast()) + "ied"] }
            if let last = word.last, "bdgklmnprt".contains(last), word.count <= 5 {
                forms += [word + String(last) + "ed", word + String(last) + "ing", word + String(last) + "er"]
            }
            if word.hasSuffix("t") { forms += [word + "ion", word + "ions"] }
            return forms
        }

        /// Skipped when reading the two sides of "to"/"into".
        static let directionFiller: Set<String> = [
            "a", "an", "the", "my", "your", "our", "their", "his", "her", "its", "this", "that", "these", "those", "some", "all",
            "how", "what", "i", "we", "you", "me", "us", "it", "do", "does", "did", "can", "could", "should", "would", "is",
            "are", "be", "way", "best", "easiest", "want", "need", "like", "have", "has", "from", "convert", "converting",
            "translate", "translating", "change", "changing", "turn", "turning", "go", "going", "get", "getting", "switch",
            "move", "moving", "migrate", "migrating", "transfer", "transferring", "exchange", "send", "and", "or", "of", "in",
            "on", "for", "with", "by", "at", "there", "any", "much", "many", "one", "possible", "able", "used", "use", "trying", "try",
        ]

        /// Capitalised words that name nothing.
        static let capitalisedFunctionWords: Set<String> = ["i", "i'm", "i've", "i'd", "i'll", "ok", "okay"]

        /// Punctuation trimmed from both ends of a whitespace-separated token.
        static let edgePunctuation: Set<Unicode.Scalar> = [
            "\"", "'", "\u{201C}", "\u{201D}", "\u{2018}", "\u{2019}", "`", "(", ")", "[", "]", "{", "}", "<", ">", ",", ".", ";",
            ":", "!", "?", "*",
        ]

        static func trimmed(_ token: ArraySlice<Unicode.Scalar>) -> ArraySlice<Unicode.Scalar> {
            var slice = token
            while let first = slice.first, Self.edgePunctuation.contains(first) {
                // A file extension keeps its dot (".docx").
                if first == ".", slice.dropFirst().first.map(Profile.isLetter) == true { break }
                slice = slice.dropFirst()
            }
            // A call keeps its parentheses ("iter_files()").
            while let last = slice.last, Self.edgePunctuation.contains(last), !(last == ")" && slice.dropLast().last == "(") {
                slice = slice.dropLast()
            }
            return slice
        }

        /// What the lists say about one word (or two-word phrase).
        struct Entry {
            var isNegation = false
            var opposite: (Int, UInt64)?
            var kind: (Int, UInt64)?
            /// Languages (bits, in `languageCodes` order) the word is frequent in.
            var languages: UInt8 = 0
            /// Whether a two-word entry starts with this word.
            var startsPhrase = false
        }

        /// Every listed word, once: a profile looks each word up once.
        static let entries: [String: Entry] = {
            var table: [String: Entry] = [:]
            for word in Self.negations { table[word, default: Entry()].isNegation = true }
            for (word, value) in Self.opposites { table[word, default: Entry()].opposite = value }
            for (word, value) in Self.kinds { table[word, default: Entry()].kind = value }
            for (word, languages) in Self.languageWords { table[word, default: Entry()].languages = languages }
            for phrase in Array(Self.oppositePhrases.keys) + Array(Self.kindPhrases.keys) {
                if let head = phrase.split(separator: " ").first { table[String(head), default: Entry()].startsPhrase = true }
            }
            return table
        }()

        /// Every listed two-word phrase.
        static let phrases: [String: Entry] = {
            var table: [String: Entry] = [:]
            for (phrase, value) in Self.oppositePhrases { table[phrase, default: Entry()].opposite = value }
            for (phrase, value) in Self.kindPhrases { table[phrase, default: Entry()].kind = value }
            return table
        }()

        /// A frequent word → the languages (bits, in `languageCodes` order) it is frequent in.
        static let languageWords: [String: UInt8] = {
            var table: [String: UInt8] = [:]
            for (index, words) in Self.languageStopWords.enumerated() {
                for word in words { table[word, default: 0] |= 1 << UInt8(index) }
            }
            return table
        }()

        static let languageCodes = ["en", "fr", "es", "de", "it", "pt", "nl"]
        /// Frequent words of each language, for a guess from a short question.
        static let languageStopWords: [Set<String>] = [
            ["the", "is", "are", "how", "what", "do", "does", "i", "you", "my", "of", "and", "can", "with", "for", "it", "this",
             "why", "where", "when", "which", "should", "will", "there", "get", "have", "be"],
            ["le", "les", "est", "comment", "je", "mon", "ma", "mes", "vous", "des", "du", "et", "une", "pour", "avec", "votre",
             "notre", "ça", "combien", "merci", "beaucoup", "mais", "très",
             "pourquoi", "quel", "quelle", "où", "ce", "sur", "dans", "ne", "pas", "puis", "faire", "il", "au", "aux"],
            ["el", "los", "las", "es", "cómo", "qué", "mi", "mis", "del", "y", "una", "para", "con", "por", "porque", "dónde",
             "cuánto", "cuesta", "gracias", "muy", "su", "tu", "usted", "hay", "pero",
             "cuál", "puedo", "hacer", "mi", "lo", "al", "se", "está", "tengo", "cuando"],
            ["der", "die", "das", "ist", "wie", "ich", "mein", "meine", "und", "ein", "eine", "für", "mit", "warum", "wo", "was",
             "viel", "kostet", "danke", "sehr", "ihre", "ihr", "es", "gibt", "aber",
             "kann", "nicht", "auf", "zu", "den", "dem", "sich", "ich", "bei", "wird", "werden"],
            ["il", "gli", "è", "come", "io", "mio", "mia", "di", "della", "e", "per", "perché", "dove", "quale", "che", "non",
             "quanto", "costa", "grazie", "molto", "vostro", "vostri", "sono", "ma",
             "posso", "fare", "sono", "nel", "alla", "questo", "cosa"],
            ["o", "os", "é", "como", "eu", "meu", "minha", "do", "da", "um", "uma", "para", "com", "onde", "qual", "não", "posso",
             "quanto", "custa", "obrigado", "obrigada", "muito", "seu", "sua", "mas",
             "fazer", "no", "na", "isso", "você", "se", "ao"],
            ["het", "een", "hoe", "ik", "mijn", "en", "van", "voor", "met", "waarom", "waar", "wat", "kan", "niet", "op", "ik",
             "je", "zijn", "dit", "dat", "wordt"],
        ]

        static let scripts = ["latin", "greek", "cyrillic", "hebrew", "arabic", "devanagari", "thai", "kana", "han", "hangul", "other"]

        /// The script of a letter (an index into `scripts`).
        static func script(of value: UInt32) -> Int {
            switch value {
            case 0x0041...0x024F, 0x1E00...0x1EFF: return 0
            case 0x0370...0x03FF: return 1
            case 0x0400...0x052F: return 2
            case 0x0590...0x05FF: return 3
            case 0x0600...0x06FF, 0x0750...0x077F: return 4
            case 0x0900...0x097F: return 5
            case 0x0E00...0x0E7F: return 6
            case 0x3040...0x30FF: return 7
            case 0x3400...0x4DBF, 0x4E00...0x9FFF: return 8
            case 0xAC00...0xD7AF, 0x1100...0x11FF: return 9
            default: return 10
            }
        }
    }
}
