/// Removes API keys and key fragments from text that came from an upstream (error messages), before it reaches a
/// caller or a log.
enum SecretRedaction {
    static let replacement = "[redacted]"

    /// `text` with every word that is, contains, or looks like a fragment of a secret replaced by `[redacted]`:
    /// a word holding one of `secrets` or its first or last 4 characters (for secrets of 12 or more characters);
    /// a masked key (`***`); or a word shaped like a provider key (`sk-…`, `sk_…`, `key-…` of 12 characters or more).
    /// Words are split on white space and quotes; trailing punctuation stays.
    static func redact(_ text: String, secrets: [String]) -> String {
        var fragments: [Substring] = []
        for secret in secrets where !secret.isEmpty {
            fragments.append(Substring(secret))
            if secret.count >= 12 {
                fragments.append(secret.prefix(4 + (secret.hasPrefix("sk-") ? 3 : 0)))
                fragments.append(secret.suffix(4))
            }
        }
        var out = ""
        var word = ""
        func flush() {
            guard !word.isEmpty else { return }
            var core = Substring(word)
            var tail = ""
            while let last = core.last, ".,;:!?)".contains(last) {
                tail = String(last) + tail
                core = core.dropLast()
            }
            out += (isSecretLike(core, fragments) ? replacement : String(core)) + tail
            word = ""
        }
        for character in text {
            if character.isWhitespace || character == "\"" || character == "'" || character == "`" {
                flush()
                out.append(character)
            } else {
                word.append(character)
            }
        }
        flush()
        return out
    }

    static func isSecretLike(_ word: Substring, _ fragments: [Substring]) -> Bool {
        if word.contains("***") { return true }
        if fragments.contains(where: { word.contains($0) }) { return true }
        let lowered = word.lowercased()
        for prefix in ["sk-", "sk_", "key-"] where lowered.hasPrefix(prefix) && word.count >= 12 {
            return true
        }
        return false
    }
}
