import ArgumentParser
import CacheKit
import CacheKitEmbeddings
import CacheKitMemory
import Foundation

struct CalibrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Choose a semantic threshold from labelled paraphrase pairs, and report it on held-out pairs.",
        discussion: """
            Reads a JSON array of {"origin", "similar"} pairs (GPTCache's benchmark format, e.g. \
            data/gptcache/mock-pairs.json in the CacheKit repository). Every origin is stored in a semantic index under its own \
            answer; every paraphrase is a query, correct when it is served its own pair's answer. The threshold and \
            the ambiguity margin are chosen on the first half of the queries and reported on the second half (and \
            the other way round), next to GPTCache's published counts on the same data.
            """
    )

    @Argument(help: "The pairs file.")
    var pairs: String

    @Option(help: "A sentence-transformers model folder (default: CACHEKIT_MODEL_DIR).")
    var model: String?

    @Option(help: "Pick the lowest threshold with at least this precision (default), or use --max-f1.")
    var minimumPrecision: Double = 0.95

    @Flag(help: "Pick the threshold with the highest F1 instead.")
    var maxF1 = false

    @Option(help: "Write the calibration sweep as CSV to this file.")
    var table: String?

    @Option(help: "Write a precision/recall/hit-rate chart (SVG) to this file.")
    var svg: String?

    @Flag(help: "Print the summary as JSON.")
    var json = false

    @Flag(help: "Serve the nearest neighbour by cosine alone (no re-ranking by word overlap).")
    var noRerank = false

    @Option(help: "The word-overlap weight of the re-ranking (SemanticRerank.lexicalWeight).")
    var lexicalWeight: Float = 0.2

    @Flag(help: "Allow matches whose stored question has other numbers than the query (the numbers guard off).")
    var allowOtherNumbers = false

    @Option(help: "The guards that refuse a match (SemanticLayer.guards): all (default), none, or a comma-separated list of numbers, negation, opposites, direction, entities, language.")
    var guards: String = "all"

    @Option(help: "Print the wrong hits at the chosen threshold among the first N queries (for studying the calibration half).")
    var listWrong: Int = 0

    @Option(help: "A labelled hard set (data/hard-pairs/hard-pairs.json): report, per guard, wrong hits removed and right hits cost, pair by pair, at the chosen threshold and at 0.85.")
    var hardSet: String?

    @Flag(help: "Choose the threshold counting a served twin origin (same text, other id) as correct.")
    var byAnswerText = false

    @Option(help: "Use this ambiguity margin (SemanticRerank.ambiguityMargin) instead of choosing one from 0 to 0.05 on the calibration half.")
    var ambiguityMargin: Float?

    func run() async throws {
        guard let directory = self.model ?? ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"] else {
            throw CLIError("no model: pass --model DIR or set CACHEKIT_MODEL_DIR (./scripts/fetch-model prints one)")
        }
        let value: JSONValue
        do { value = try JSONValue(parsing: try readInput(self.pairs)) } catch let error as JSONParsingError {
            throw CLIError("\(self.pairs): \(error.description)")
        }
        guard let items = value.arrayValue, !items.isEmpty else { throw CLIError("\(self.pairs): expected a non-empty JSON array of pairs") }
        var origins: [String] = []
        var similars: [String] = []
        for (index, item) in items.enumerated() {
            guard let origin = item["origin"]?.stringValue, let similar = item["similar"]?.stringValue else {
                throw CLIError("\(self.pairs): pair \(index) needs string \"origin\" and \"similar\"")
            }
            origins.append(origin)
            similars.append(similar)
        }
        // The pairs are read first: a malformed file fails before the model is loaded.
        let embedder: LocalEmbeddingProvider
        do { embedder = try LocalEmbeddingProvider(directory: directory) } catch { throw CLIError("cannot load the embedding model: \(error.message)") }
        let started = ContinuousClock.now
        var originVectors: [[Float]] = []
        var queryVectors: [[Float]] = []
        for start in stride(from: 0, to: origins.count, by: 32) {
            let end = min(origins.count, start + 32)
            originVectors += try await embedder.embed(Array(origins[start..<end]))
            queryVectors += try await embedder.embed(Array(similars[start..<end]))
        }
        let embedSeconds = (ContinuousClock.now - started).seconds

        // Every origin under its own pair id, in one partition, as GPTCache's benchmark inserts them.
        let index = MemorySemanticIndex(configuration: .init(dimension: embedder.dimension, maximumRecords: origins.count + 1))
        let scope = CacheScope(tenant: "calibration")
        let partition = SemanticPartition(digest: Digest256(hashing: Array("calibration".utf8)), scopeID: scope.id)
        let now = SystemCacheClock().now()
        func key(_ i: Int) -> CacheKey { CacheKey(digest: Digest256(hashing: Array("pair \(i)".utf8)), scopeID: scope.id) }
        for (i, vector) in originVectors.enumerated() {
            let entry = CacheEntry(value: Array(String(i).utf8), createdAt: now, expiresAt: now + .seconds(3600), queryText: origins[i])
            try await index.insert(SemanticRecord(key: key(i), partition: partition, vector: vector, entry: entry))
        }
        // The same candidates and scoring as the semantic layer: top 5 re-ranked by word overlap, or top 1, without
        // the candidates a guard refuses.
        var guards: SemanticGuards
        do { guards = try SemanticGuards(list: self.guards) } catch { throw CLIError(error.message) }
        if self.allowOtherNumbers { guards.enabled.remove(.numbers) }
        let originProfiles = origins.map(SemanticGuards.Profile.init)
        let queryProfiles = similars.map(SemanticGuards.Profile.init)
        let candidateCount = self.noRerank ? 1 : SemanticRerank().candidates
        var unguarded: [[SemanticMatch]] = []
        for vector in queryVectors {
            unguarded.append(try await index.search(SemanticQuery(vector: vector, partition: partition, minimumSimilarity: -1, limit: candidateCount)))
        }
        func pairIndex(_ match: SemanticMatch) -> Int { Int(String(decoding: match.entry.value, as: UTF8.self)) ?? 0 }
        /// Per query, the candidates the guards let through and those they refuse (rivals in the ambiguity check).
        func filtered(by guards: SemanticGuards) -> [(kept: [SemanticMatch], refused: [SemanticMatch])] {
            unguarded.enumerated().map { i, matches in
                var kept: [SemanticMatch] = [], refused: [SemanticMatch] = []
                for match in matches {
                    if guards.refusal(query: queryProfiles[i], candidate: originProfiles[pairIndex(match)]) == nil { kept.append(match) } else { refused.append(match) }
                }
                return (kept, refused)
            }
        }
        let candidates = filtered(by: guards)
        // The data repeats some origins under two ids: serving the twin is the same answer, though GPTCache counts
        // it wrong. `byID` counts by id as GPTCache does; `byText` counts by the served origin's text. An ambiguous
        // lookup is a miss at every threshold.
        let guardedCandidates = candidates
        func samples(margin: Float, in candidates: [(kept: [SemanticMatch], refused: [SemanticMatch])]? = nil) -> (byID: [ThresholdCalibrator.Sample], byText: [ThresholdCalibrator.Sample]) {
            let rerank = SemanticRerank(lexicalWeight: self.lexicalWeight, ambiguityMargin: margin)
            var byID: [ThresholdCalibrator.Sample] = [], byText: [ThresholdCalibrator.Sample] = []
            for (i, matches) in (candidates ?? guardedCandidates).enumerated() {
                let choice: (match: SemanticMatch, score: Float)?
                if self.noRerank {
                    choice = matches.kept.first.map { ($0, $0.similarity) }
                } else {
                    choice = rerank.choose(from: matches.kept, query: similars[i], rivals: matches.refused).flatMap { $0.isAmbiguous ? nil : ($0.match, $0.score) }
                }
                byID.append(.init(similarity: choice?.score ?? -2, correct: choice?.match.key == key(i)))
                byText.append(.init(similarity: choice?.score ?? -2, correct: choice?.match.entry.queryText == origins[i]))
            }
            return (byID, byText)
        }
        let rerank = self.noRerank ? nil : SemanticRerank(lexicalWeight: self.lexicalWeight)
        let top = 1.0 + (rerank?.lexicalWeight ?? 0)
        let criterion: ThresholdCalibrator.Criterion = self.maxF1 ? .maximumF1 : .highestHitRate(minimumPrecision: self.minimumPrecision)
        let margins: [Float] = self.noRerank ? [0] : self.ambiguityMargin.map { [$0] } ?? stride(from: 0, through: 0.0501, by: 0.005).map { Float($0) }
        // Calibrate on one half (margin and threshold together), report on the other.
        func fold(calibrateOn first: Bool) -> (margin: Float, chosen: ThresholdCalibrator.Point, sweep: [ThresholdCalibrator.Point], report: ThresholdCalibrator.Point)? {
            var best: (margin: Float, chosen: ThresholdCalibrator.Point, sweep: [ThresholdCalibrator.Point], report: ThresholdCalibrator.Point)?
            for margin in margins {
                let labels = self.byAnswerText ? samples(margin: margin).byText : samples(margin: margin).byID
                let half = labels.count / 2
                let (calibrationSamples, holdoutSamples) = first ? (labels[..<half], labels[half...]) : (labels[half...], labels[..<half])
                let calibration = ThresholdCalibrator(samples: Array(calibrationSamples))
                let sweep = calibration.sweep(from: 0.5, through: top, step: 0.01)
                guard let chosen = calibration.best(by: criterion, in: sweep) else { continue }
                let better = best.map { self.maxF1 ? chosen.f1 > $0.chosen.f1 : chosen.hitRate > $0.chosen.hitRate } ?? true
                if better { best = (margin, chosen, sweep, ThresholdCalibrator(samples: Array(holdoutSamples)).evaluate(at: chosen.threshold)) }
            }
            return best
        }
        guard let forward = fold(calibrateOn: true) else {
            throw CLIError("no threshold reaches precision \(self.minimumPrecision) on the calibration half")
        }
        let backward = fold(calibrateOn: false)
        let (chosen, sweep, report) = (forward.chosen, forward.sweep, forward.report)
        // What each guard does at the chosen threshold and margin, on all queries: alone, against no guard.
        func evaluate(with set: SemanticGuards) -> ThresholdCalibrator.Point {
            let labelled = samples(margin: forward.margin, in: filtered(by: set))
            return ThresholdCalibrator(samples: self.byAnswerText ? labelled.byText : labelled.byID).evaluate(at: chosen.threshold)
        }
        let unguardedPoint = evaluate(with: .none)
        let perGuard = SemanticGuards.Guard.allCases.filter(guards.enabled.contains).map { kind in
            let alone = evaluate(with: SemanticGuards([kind]))
            return GuardEffect(guard: kind, wrongRemoved: unguardedPoint.wrongHits - alone.wrongHits, rightCost: unguardedPoint.correctHits - alone.correctHits)
        }
        let hard = try await self.hardSetReport(embedder: embedder, guards: guards, thresholds: [chosen.threshold, 0.85])
        func calibrators(margin: Float) -> (byID: ThresholdCalibrator, byText: ThresholdCalibrator) {
            let labelled = samples(margin: margin)
            return (ThresholdCalibrator(samples: labelled.byID), ThresholdCalibrator(samples: labelled.byText))
        }
        let (allByID, allSameAnswer) = calibrators(margin: forward.margin)
        // GPTCache's operating points are compared without the ambiguity check, so that every hit rate is reachable.
        let (plainByID, plainByText) = calibrators(margin: 0)
        let all = self.byAnswerText ? allSameAnswer : allByID
        let half = candidates.count / 2

        if let table = self.table {
            var csv = "threshold,queries,correct_hits,wrong_hits,misses,hit_rate,precision,recall,f1\n"
            for p in sweep {
                csv += "\(p.threshold),\(p.queries),\(p.correctHits),\(p.wrongHits),\(p.misses),\(p.hitRate),\(p.precision),\(p.recall),\(p.f1)\n"
            }
            _ = FileManager.default.createFile(atPath: table, contents: Data(csv.utf8))
        }
        if let svg = self.svg {
            _ = FileManager.default.createFile(atPath: svg, contents: Data(Chart.svg(sweep, chosen: chosen.threshold, title: "\(embedder.model) on \(items.count) pairs (calibration half)").utf8))
        }

        // GPTCache's published counts on the same 999 pairs (SQLite + FAISS + ONNX albert), from data/gptcache/README.md.
        let published: [(Float, Int, Int, Int)] = [(0.95, 425, 25, 549), (0.90, 804, 77, 118), (0.80, 904, 92, 3)]
        // Scores are not GPTCache's similarities, so operating points are compared at equal hit rate: for each of
        // GPTCache's, the highest threshold of ours that hits at least as often.
        func matching(hitRate: Double, in points: [ThresholdCalibrator.Point]) -> ThresholdCalibrator.Point? {
            points.last { $0.hitRate >= hitRate }
        }
        let fineByID = plainByID.sweep(from: -1, through: top, step: 0.001)
        let fineByText = plainByText.sweep(from: -1, through: top, step: 0.001)
        let marginByID = allByID.sweep(from: -1, through: top, step: 0.001)
        let marginByText = allSameAnswer.sweep(from: -1, through: top, step: 0.001)
        if self.json {
            func point(_ p: ThresholdCalibrator.Point?) -> JSONValue {
                guard let p else { return .null }
                return ["threshold": .number(Double(p.threshold)), "queries": .number(Double(p.queries)), "correct_hits": .number(Double(p.correctHits)),
                 "wrong_hits": .number(Double(p.wrongHits)), "misses": .number(Double(p.misses)), "hit_rate": .number(p.hitRate),
                 "precision": .number(p.precision), "recall": .number(p.recall), "f1": .number(p.f1)]
            }
            func rate(_ c: Int, _ w: Int, _ m: Int) -> Double { Double(c + w) / Double(c + w + m) }
            let summary: JSONValue = [
                "model": .string(embedder.model), "pairs": .number(Double(items.count)), "embedding_seconds": .number(embedSeconds),
                "rerank": rerank.map { .number(Double($0.lexicalWeight)) } ?? .null, "labels": .string(self.byAnswerText ? "answer_text" : "pair_id"),
                "ambiguity_margin": .number(Double(forward.margin)),
                "chosen": point(chosen), "holdout": point(report), "chosen_all_pairs": point(all.evaluate(at: chosen.threshold)),
                "reverse_fold": backward.map { ["ambiguity_margin": .number(Double($0.margin)), "chosen": point($0.chosen), "holdout": point($0.report)] } ?? .null,
                "at_gptcache_hit_rates_by_id": .array(published.map { point(matching(hitRate: rate($0.1, $0.2, $0.3), in: fineByID)) }),
                "at_gptcache_hit_rates_by_answer_text": .array(published.map { point(matching(hitRate: rate($0.1, $0.2, $0.3), in: fineByText)) }),
                "at_gptcache_hit_rates_with_margin_by_id": .array(published.map { point(matching(hitRate: rate($0.1, $0.2, $0.3), in: marginByID)) }),
                "at_gptcache_hit_rates_with_margin_by_answer_text": .array(published.map { point(matching(hitRate: rate($0.1, $0.2, $0.3), in: marginByText)) }),
                "guards": .array(guards.enabled.sorted().map { .string($0.rawValue) }),
                "without_guards_at_chosen": point(unguardedPoint),
                "per_guard_at_chosen": .array(perGuard.map { ["guard": .string($0.guard.rawValue), "wrong_removed": .number(Double($0.wrongRemoved)), "right_cost": .number(Double($0.rightCost))] }),
                "hard_set": hard.map { .array($0.map(\.json)) } ?? .null,
            ]
            print(String(decoding: summary.canonicalBytes(), as: UTF8.self))
            return
        }
        func pct(_ x: Double) -> String { String(format: "%5.1f%%", x * 100) }
        print("Model \(embedder.model); \(items.count) pairs embedded in \(String(format: "%.1f", embedSeconds)) s; "
            + (rerank.map { "top \($0.candidates) re-ranked by word overlap (weight \($0.lexicalWeight))" } ?? "nearest neighbour by cosine") + ".")
        print("Labels: " + (self.byAnswerText ? "correct when the served origin has the query's own origin text (twins count as right)" : "correct when the served origin is the query's own pair (as GPTCache counts)"))
        func describe(_ fold: (margin: Float, chosen: ThresholdCalibrator.Point, sweep: [ThresholdCalibrator.Point], report: ThresholdCalibrator.Point), _ calibration: String, _ holdout: String) {
            print("Calibration on the \(calibration) half: threshold \(fold.chosen.threshold), ambiguity margin \(fold.margin) "
                + "(\(self.maxF1 ? "max F1" : "highest hit rate with precision ≥ \(self.minimumPrecision)")): hit rate \(pct(fold.chosen.hitRate)), precision \(pct(fold.chosen.precision))")
            print("  held-out \(holdout) half: hit rate \(pct(fold.report.hitRate)), precision \(pct(fold.report.precision)), "
                + "\(fold.report.correctHits) correct, \(fold.report.wrongHits) wrong, \(fold.report.misses) misses")
        }
        describe(forward, "first (\(half) queries)", "second (\(candidates.count - half) queries)")
        if let backward { describe(backward, "second", "first") }
        print("")
        print("All \(candidates.count) queries against GPTCache's published counts on the same data, at the same hit rate; "
            + "CacheKit re-ranked, then also with the chosen ambiguity margin \(forward.margin) (— where that hit rate is out of its reach):")
        print("GPTCache threshold  correct/wrong/miss  hit rate  precision | CacheKit threshold  by pair id: correct/wrong/miss  precision  twins right "
            + "| with margin: threshold  correct/wrong/miss  precision  twins right")
        for (threshold, correct, wrong, miss) in published {
            let gptHitRate = Double(correct + wrong) / Double(correct + wrong + miss)
            let gptPrecision = Double(correct) / Double(correct + wrong)
            guard let p = matching(hitRate: gptHitRate, in: fineByID), let q = matching(hitRate: gptHitRate, in: fineByText) else { continue }
            var line = String(format: "%18.2f  %4d / %3d / %4d   %@    %@ | %18.3f  %4d / %3d / %4d  (hit %@)  %@     %@",
                threshold, correct, wrong, miss, pct(gptHitRate), pct(gptPrecision), p.threshold, p.correctHits, p.wrongHits, p.misses,
                pct(p.hitRate), pct(p.precision), pct(q.precision))
            if let m = matching(hitRate: gptHitRate, in: marginByID), let n = matching(hitRate: gptHitRate, in: marginByText) {
                line += String(format: " | %21.3f  %4d / %3d / %4d   %@     %@", m.threshold, m.correctHits, m.wrongHits, m.misses, pct(m.precision), pct(n.precision))
            } else {
                line += " |                     —"
            }
            print(line)
        }
        let c = allByID.evaluate(at: chosen.threshold)
        let t = allSameAnswer.evaluate(at: chosen.threshold)
        print(String(format: "chosen %.2f, margin %.3f on all queries: hit rate %@, precision %@ by pair id, %@ with twins right",
            chosen.threshold, forward.margin, pct(c.hitRate), pct(c.precision), pct(t.precision)))
        print("Guards: \(guards.enabled.isEmpty ? "none" : guards.enabled.sorted().map(\.rawValue).joined(separator: ", ")); without any at the chosen "
            + "threshold: \(unguardedPoint.correctHits) correct, \(unguardedPoint.wrongHits) wrong (precision \(pct(unguardedPoint.precision)), hit rate \(pct(unguardedPoint.hitRate)))")
        for effect in perGuard {
            print("  \(effect.guard.rawValue) alone: removes \(effect.wrongRemoved) wrong hits, costs \(effect.rightCost) right hits")
        }
        for line in hard ?? [] { print(line.text) }
        if self.listWrong > 0 {
            let rerank = SemanticRerank(lexicalWeight: self.lexicalWeight, ambiguityMargin: forward.margin)
            for i in 0..<min(self.listWrong, candidates.count) {
                guard let choice = rerank.choose(from: candidates[i].kept, query: similars[i], rivals: candidates[i].refused), !choice.isAmbiguous,
                    choice.score >= chosen.threshold, choice.match.key != key(i)
                else { continue }
                let served = choice.match.entry.queryText ?? ""
                print(String(format: "wrong %.3f%@\n  asked:  %@\n  served: %@\n  own:    %@", choice.score, served == origins[i] ? " (twin)" : "",
                    String(similars[i].prefix(200)), String(served.prefix(200)), String(origins[i].prefix(200))))
            }
        }
    }

    /// One guard's effect on one data set: wrong hits it removes, right hits it costs (both against no guard).
    struct GuardEffect {
        var `guard`: SemanticGuards.Guard
        var wrongRemoved: Int
        var rightCost: Int
    }

    /// One line of the hard-set report.
    struct HardSetLine {
        var text: String
        var json: JSONValue
    }

    /// The hard set, pair by pair (each asked question against its one cached question), per split and threshold:
    /// hard negatives served without and with the guards, hard positives hit, and each guard alone.
    func hardSetReport(embedder: LocalEmbeddingProvider, guards: SemanticGuards, thresholds: [Float]) async throws -> [HardSetLine]? {
        guard let file = self.hardSet else { return nil }
        let value: JSONValue
        do { value = try JSONValue(parsing: try readInput(file)) } catch let error as JSONParsingError { throw CLIError("\(file): \(error.description)") }
        guard let items = value.arrayValue, !items.isEmpty else { throw CLIError("\(file): expected a non-empty JSON array") }
        struct Pair { var kind: String, split: String, same: Bool, cached: String, asked: String }
        let pairs = try items.enumerated().map { index, item in
            guard let cached = item["cached"]?.stringValue, let asked = item["asked"]?.stringValue, let same = item["same"]?.boolValue else {
                throw CLIError("\(file): item \(index) needs string \"cached\" and \"asked\" and boolean \"same\"")
            }
            return Pair(kind: item["kind"]?.stringValue ?? "", split: item["split"]?.stringValue ?? "all", same: same, cached: cached, asked: asked)
        }
        var cachedVectors: [[Float]] = [], askedVectors: [[Float]] = []
        for start in stride(from: 0, to: pairs.count, by: 32) {
            let slice = pairs[start..<min(pairs.count, start + 32)]
            cachedVectors += try await embedder.embed(slice.map(\.cached))
            askedVectors += try await embedder.embed(slice.map(\.asked))
        }
        let rerank = self.noRerank ? nil : SemanticRerank(lexicalWeight: self.lexicalWeight)
        let scores = pairs.indices.map { i in
            let cosine = zip(cachedVectors[i], askedVectors[i]).reduce(Float(0)) { $0 + $1.0 * $1.1 }
            return rerank?.score(similarity: cosine, query: SemanticRerank.words(pairs[i].asked), candidate: pairs[i].cached) ?? cosine
        }
        let profiles = pairs.map { (SemanticGuards.Profile($0.asked), SemanticGuards.Profile($0.cached)) }
        func served(_ i: Int, threshold: Float, by set: SemanticGuards) -> Bool {
            scores[i] >= threshold && set.refusal(query: profiles[i].0, candidate: profiles[i].1) == nil
        }
        var lines: [HardSetLine] = []
        let splits = pairs.reduce(into: [String]()) { if !$0.contains($1.split) { $0.append($1.split) } }
        for threshold in thresholds {
            for split in splits {
                let negatives = pairs.indices.filter { !pairs[$0].same && pairs[$0].split == split }
                let positives = pairs.indices.filter { pairs[$0].same && pairs[$0].split == split }
                func count(_ indices: [Int], _ set: SemanticGuards) -> Int { indices.filter { served($0, threshold: threshold, by: set) }.count }
                let wrongBefore = count(negatives, .none), wrongAfter = count(negatives, guards)
                let rightBefore = count(positives, .none), rightAfter = count(positives, guards)
                var text = String(format: "Hard set %@, threshold %.2f: hard negatives served %d/%d without guards, %d with; hard positives hit %d/%d without, %d with",
                    split, threshold, wrongBefore, negatives.count, wrongAfter, rightBefore, positives.count, rightAfter)
                var effects: [JSONValue] = []
                for kind in SemanticGuards.Guard.allCases where guards.enabled.contains(kind) {
                    let alone = SemanticGuards([kind])
                    let removed = wrongBefore - count(negatives, alone), cost = rightBefore - count(positives, alone)
                    text += "\n  \(kind.rawValue) alone: removes \(removed) wrong hits, costs \(cost) right hits"
                    effects.append(["guard": .string(kind.rawValue), "wrong_removed": .number(Double(removed)), "right_cost": .number(Double(cost))])
                }
                lines.append(HardSetLine(text: text, json: [
                    "split": .string(split), "threshold": .number(Double(threshold)), "negatives": .number(Double(negatives.count)),
                    "positives": .number(Double(positives.count)), "wrong_without_guards": .number(Double(wrongBefore)),
                    "wrong_with_guards": .number(Double(wrongAfter)), "right_without_guards": .number(Double(rightBefore)),
                    "right_with_guards": .number(Double(rightAfter)), "per_guard": .array(effects),
                ]))
            }
        }
        return lines
    }
}

/// A small self-contained SVG line chart of precision, recall and hit rate against the threshold.
enum Chart {
    static func svg(_ points: [ThresholdCalibrator.Point], chosen: Float, title: String) -> String {
        let width = 640.0, height = 400.0, left = 50.0, bottom = 40.0, top = 40.0, right = 20.0
        let minX = Double(points.first?.threshold ?? 0.5), maxX = Double(points.last?.threshold ?? 1)
        func x(_ t: Double) -> Double { left + (t - minX) / max(maxX - minX, 1e-9) * (width - left - right) }
        func y(_ v: Double) -> Double { height - bottom - v * (height - top - bottom) }
        func line(_ value: (ThresholdCalibrator.Point) -> Double, _ color: String) -> String {
            let coords = points.map { String(format: "%.1f,%.1f", x(Double($0.threshold)), y(value($0))) }.joined(separator: " ")
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(coords)\"/>"
        }
        var svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">"
        svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        svg += "<text x=\"\(left)\" y=\"20\" font-size=\"14\">\(title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;"))</text>"
        for tick in stride(from: 0.0, through: 1.0, by: 0.25) {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"10\" y=\"%.1f\">%.2f</text>", left, width - right, y(tick), y(tick), y(tick) + 4, tick)
        }
        for t in stride(from: minX, through: maxX + 1e-9, by: 0.1) {
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.1f</text>", x(t), height - 15, t)
        }
        svg += line({ $0.precision }, "#1f77b4") + line({ $0.recall }, "#d62728") + line({ $0.hitRate }, "#2ca02c")
        svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>", x(Double(chosen)), x(Double(chosen)), y(0), y(1))
        svg += "<text x=\"\(width - 200)\" y=\"\(top + 10)\" fill=\"#1f77b4\">precision</text><text x=\"\(width - 200)\" y=\"\(top + 26)\" fill=\"#d62728\">recall</text>"
        svg += "<text x=\"\(width - 200)\" y=\"\(top + 42)\" fill=\"#2ca02c\">hit rate</text><text x=\"\(width - 200)\" y=\"\(top + 58)\" fill=\"#555\">chosen \(chosen)</text>"
        return svg + "</svg>\n"
    }
}
