public import CacheKit
public import Testing

/// The behaviours every `SemanticIndex` must have, one test case per behaviour:
///
/// ```swift
/// @Test(arguments: SemanticIndexConformance.Behaviour.allCases)
/// func conformance(_ behaviour: SemanticIndexConformance.Behaviour) async throws {
///     let clock = ManualClock()
///     try await SemanticIndexConformance(manualClock: clock) { MyIndex(dimension: 32, clock: clock) }.run(behaviour)
/// }
/// ```
public struct SemanticIndexConformance: Sendable {
    /// One behaviour of the suite.
    public struct Behaviour: Sendable, Hashable, CaseIterable, CustomStringConvertible, CustomTestStringConvertible {
        public let name: String
        private init(_ name: String) { self.name = name }

        /// An inserted record is found by its own vector with similarity ≈ 1, entry intact.
        public static let insertAndSearch = Behaviour("insertAndSearch")
        /// Results are ordered best first, cut at the limit, none below the minimum similarity.
        public static let orderingAndThreshold = Behaviour("orderingAndThreshold")
        /// A record in another partition of the same scope is never returned.
        public static let partitionIsolation = Behaviour("partitionIsolation")
        /// A record in another scope is never returned, even with the same partition digest.
        public static let scopeIsolation = Behaviour("scopeIsolation")
        /// Inserting under an existing key replaces the record.
        public static let replaceByKey = Behaviour("replaceByKey")
        /// Removal by key, tag and scope removes exactly those records.
        public static let removal = Behaviour("removal")
        /// Removal within a similarity radius removes the close records of that scope only.
        public static let removeNear = Behaviour("removeNear")
        /// Records past `staleUntil` are not returned.
        public static let ttlExpiry = Behaviour("ttlExpiry")
        /// Wrong dimension, NaN, infinity and zero vectors are refused with `.invalidVector`.
        public static let invalidVectors = Behaviour("invalidVectors")
        /// Concurrent inserts and searches see only complete records.
        public static let concurrentAccess = Behaviour("concurrentAccess")

        /// `removeAll(in:where:)` leaves no selected record and no other scope touched; with `.contentRemoval`
        /// declared, exactly the selected records go.
        public static let contentRemoval = Behaviour("contentRemoval")
        /// With `.localClearing` declared, `removeAllLocal()` drops every record; without, it throws `.unsupported`.
        public static let localClearing = Behaviour("localClearing")
        /// `run()` ends when its task is cancelled.
        public static let backgroundWork = Behaviour("backgroundWork")

        public static let allCases: [Behaviour] = [
            .insertAndSearch, .orderingAndThreshold, .partitionIsolation, .scopeIsolation, .replaceByKey, .removal,
            .removeNear, .ttlExpiry, .invalidVectors, .concurrentAccess, .contentRemoval, .localClearing, .backgroundWork,
        ]

        public var description: String { self.name }
        public var testDescription: String { self.name }
    }

    public var makeIndex: @Sendable () async throws -> any SemanticIndex
    public var clock: any CacheClock
    public var advance: @Sendable (Duration) async throws -> Void

    public init(
        clock: any CacheClock,
        advance: @escaping @Sendable (Duration) async throws -> Void,
        makeIndex: @escaping @Sendable () async throws -> any SemanticIndex
    ) {
        self.clock = clock
        self.advance = advance
        self.makeIndex = makeIndex
    }

    /// A suite for an index that takes a `ManualClock`.
    public init(manualClock: ManualClock, makeIndex: @escaping @Sendable () async throws -> any SemanticIndex) {
        self.init(clock: manualClock, advance: { manualClock.advance(by: $0) }, makeIndex: makeIndex)
    }

    /// A suite for an index that expires in real time (a server): `advance` sleeps.
    public static func realTime(makeIndex: @escaping @Sendable () async throws -> any SemanticIndex) -> Self {
        Self(clock: SystemCacheClock(), advance: { try await Task.sleep(for: $0) }, makeIndex: makeIndex)
    }

    public func runAll() async throws {
        for behaviour in Behaviour.allCases { try await self.run(behaviour) }
    }

    public func run(_ behaviour: Behaviour) async throws {
        let index = try await self.makeIndex()
        var generator = SeededGenerator(seed: behaviour.name.utf8.reduce(0xcbf2_9ce4_8422_2325) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 })
        switch behaviour {
        case .insertAndSearch: try await self.insertAndSearch(index, &generator)
        case .orderingAndThreshold: try await self.orderingAndThreshold(index, &generator)
        case .partitionIsolation: try await self.partitionIsolation(index, &generator)
        case .scopeIsolation: try await self.scopeIsolation(index, &generator)
        case .replaceByKey: try await self.replaceByKey(index, &generator)
        case .removal: try await self.removal(index, &generator)
        case .removeNear: try await self.removeNear(index, &generator)
        case .ttlExpiry: try await self.ttlExpiry(index, &generator)
        case .invalidVectors: try await self.invalidVectors(index, &generator)
        case .concurrentAccess: try await self.concurrentAccess(index, &generator)
        case .contentRemoval: try await self.capabilities(index).contentRemoval()
        case .localClearing: try await self.capabilities(index).localClearing()
        case .backgroundWork: try await self.capabilities(index).backgroundWork()
        default: Issue.record("unknown behaviour \(behaviour)")
        }
    }

    struct Slot {
        var scope: CacheScope
        var partition: SemanticPartition
    }

    func slot(_ label: String, scope: CacheScope? = nil) -> Slot {
        let scope = scope ?? Fixtures.scope(label)
        let digest = Digest256(hashing: Array("partition \(label) \(Fixtures.randomID())".utf8))
        return Slot(scope: scope, partition: SemanticPartition(digest: digest, scopeID: scope.id))
    }

    /// The capability checks, with records placed in one partition per scope at random vectors.
    func capabilities(_ index: any SemanticIndex) -> CapabilityChecks {
        let vectors = LockedState<[CacheKey: (Slot, [Float])]>([:])
        let generator = LockedState(SeededGenerator(seed: 0xCA9A))
        return CapabilityChecks(
            store: index,
            put: { question, scope in
                let slot = self.slot("capability", scope: scope)
                let vector = generator.withLock { Fixtures.unitVector(dimension: index.dimension, using: &$0) }
                let record = self.record(question, slot, vector)
                try await index.insert(record)
                vectors.withLock { $0[record.key] = (slot, vector) }
                return record.key
            },
            isPresent: { key in
                guard let (slot, vector) = vectors.withLock({ $0[key] }) else { return false }
                return try await self.search(index, vector, slot, minimum: 0.99).contains { $0.key == key }
            }
        )
    }

    func record(_ text: String, _ slot: Slot, _ vector: [Float], tags: [String] = [], ttl: Duration = .seconds(3600)) -> SemanticRecord {
        SemanticRecord(
            key: Fixtures.key(text + Fixtures.randomID(), in: slot.scope),
            partition: slot.partition,
            vector: vector,
            entry: Fixtures.entry(text, now: self.clock.now(), ttl: ttl, tags: tags)
        )
    }

    func search(_ index: any SemanticIndex, _ vector: [Float], _ slot: Slot, minimum: Float = 0.5, limit: Int = 5) async throws -> [SemanticMatch] {
        try await index.search(SemanticQuery(vector: vector, partition: slot.partition, minimumSimilarity: minimum, limit: limit))
    }

    func insertAndSearch(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("insert")
        let vector = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        let record = self.record("hello", slot, vector)
        try await index.insert(record)
        let matches = try await self.search(index, vector, slot)
        #expect(matches.count == 1)
        #expect(matches.first?.key == record.key)
        #expect(abs((matches.first?.similarity ?? 0) - 1) < 1e-3, "a record's own vector is not similarity 1")
        #expect(matches.first?.entry == record.entry, "the matched entry differs from the stored one")
    }

    func orderingAndThreshold(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("order")
        let base = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        let similarities: [Float] = [0.99, 0.95, 0.9, 0.8, 0.3]
        var keys: [CacheKey] = []
        for similarity in similarities {
            let record = self.record("s\(similarity)", slot, Fixtures.vector(near: base, similarity: similarity, using: &generator))
            keys.append(record.key)
            try await index.insert(record)
        }
        let top = try await self.search(index, base, slot, minimum: 0.85, limit: 2)
        #expect(top.map(\.key) == [keys[0], keys[1]], "results are not the best two in order")
        let all = try await self.search(index, base, slot, minimum: 0.85, limit: 10)
        #expect(all.map(\.key) == [keys[0], keys[1], keys[2]], "the minimum similarity was not applied")
        for (match, expected) in zip(all, similarities) {
            #expect(abs(match.similarity - expected) < 0.02, "reported similarity \(match.similarity), expected ≈ \(expected)")
        }
    }

    func partitionIsolation(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("part-a")
        let other = self.slot("part-b", scope: slot.scope)
        let vector = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        try await index.insert(self.record("a", slot, vector))
        #expect(try await self.search(index, vector, other, minimum: -1).isEmpty, "a record was found from another partition")
    }

    func scopeIsolation(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("scope-a")
        let otherScope = Fixtures.scope("scope-b")
        let forged = Slot(scope: otherScope, partition: SemanticPartition(digest: slot.partition.digest, scopeID: otherScope.id))
        let vector = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        try await index.insert(self.record("a", slot, vector))
        #expect(try await self.search(index, vector, forged, minimum: -1).isEmpty, "a record was found from another scope")
        #expect(try await self.search(index, vector, slot).count == 1)
    }

    func replaceByKey(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("replace")
        let vector = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        var record = self.record("first", slot, vector)
        try await index.insert(record)
        record.entry = Fixtures.entry("second", now: self.clock.now())
        try await index.insert(record)
        let matches = try await self.search(index, vector, slot)
        #expect(matches.count == 1, "inserting under an existing key added a second record")
        #expect(matches.first?.entry.queryText == "second")
    }

    func removal(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("removal")
        let otherScope = self.slot("removal-other")
        let tag = "tag-\(Fixtures.randomID())"
        let v = (0..<4).map { _ in Fixtures.unitVector(dimension: index.dimension, using: &generator) }
        let byKey = self.record("key", slot, v[0])
        let tagged = self.record("tagged", slot, v[1], tags: [tag])
        let kept = self.record("kept", slot, v[2], tags: [tag + "x"])
        let elsewhere = self.record("elsewhere", otherScope, v[3])
        for record in [byKey, tagged, kept, elsewhere] { try await index.insert(record) }
        #expect(try await index.remove(byKey.key) == true)
        #expect(try await index.remove(byKey.key) == false)
        #expect(try await self.search(index, v[0], slot, minimum: 0.99).isEmpty)
        #expect(try await index.removeAll(taggedWith: tag) == 1)
        #expect(try await self.search(index, v[1], slot, minimum: 0.99).isEmpty)
        #expect(try await self.search(index, v[2], slot, minimum: 0.99).count == 1, "a record with another tag was removed")
        #expect(try await index.removeAll(in: slot.scope) == 1)
        #expect(try await self.search(index, v[2], slot, minimum: -1).isEmpty)
        #expect(try await self.search(index, v[3], otherScope, minimum: 0.99).count == 1, "another scope's record was removed")
    }

    func removeNear(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("near")
        let second = self.slot("near-2", scope: slot.scope)
        let otherScope = self.slot("near-other")
        let base = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        let close = self.record("close", slot, Fixtures.vector(near: base, similarity: 0.97, using: &generator))
        let closeOtherPartition = self.record("close2", second, Fixtures.vector(near: base, similarity: 0.96, using: &generator))
        let far = self.record("far", slot, Fixtures.vector(near: base, similarity: 0.5, using: &generator))
        let closeOtherScope = self.record("close3", otherScope, Fixtures.vector(near: base, similarity: 0.97, using: &generator))
        for record in [close, closeOtherPartition, far, closeOtherScope] { try await index.insert(record) }
        let removed = try await index.removeAll(near: base, minimumSimilarity: 0.9, in: slot.scope)
        #expect(removed == 2, "removeAll(near:) removed \(removed), expected the 2 close records of the scope")
        #expect(try await self.search(index, base, slot, minimum: 0.4).map(\.key) == [far.key])
        #expect(try await self.search(index, base, otherScope, minimum: 0.9).count == 1, "another scope's record was removed")
    }

    func ttlExpiry(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("ttl")
        let vector = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        try await index.insert(self.record("short", slot, vector, ttl: .milliseconds(1500)))
        #expect(try await self.search(index, vector, slot).count == 1)
        try await self.advance(.milliseconds(2500))
        #expect(try await self.search(index, vector, slot).isEmpty, "an expired record was returned")
    }

    func invalidVectors(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("invalid")
        let good = Fixtures.unitVector(dimension: index.dimension, using: &generator)
        var nan = good
        nan[0] = .nan
        var infinite = good
        infinite[1] = .infinity
        let bad: [(String, [Float])] = [
            ("short", Array(good.dropLast())), ("long", good + [0]), ("NaN", nan), ("infinity", infinite),
            ("zero", [Float](repeating: 0, count: index.dimension)),
        ]
        for (label, vector) in bad {
            await #expect(throws: CacheError.self, "a \(label) vector was accepted on insert") {
                try await index.insert(self.record(label, slot, vector))
            }
            do {
                _ = try await self.search(index, vector, slot)
                Issue.record("a \(label) vector was accepted in a search")
            } catch let error as CacheError {
                #expect(error.code == .invalidVector, "a \(label) vector gave \(error.code), expected invalidVector")
            }
        }
        #expect(try await self.search(index, good, slot, minimum: -1).isEmpty, "an invalid vector was stored")
    }

    func concurrentAccess(_ index: any SemanticIndex, _ generator: inout SeededGenerator) async throws {
        let slot = self.slot("concurrent")
        let vectors = (0..<32).map { _ in Fixtures.unitVector(dimension: index.dimension, using: &generator) }
        let records = vectors.enumerated().map { self.record("r\($0.offset)", slot, $0.element) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for record in records {
                group.addTask {
                    try await index.insert(record)
                    let matches = try await index.search(SemanticQuery(vector: record.vector, partition: slot.partition, minimumSimilarity: 0.99, limit: 1))
                    #expect(matches.first?.key == record.key, "a record was not found right after its insert")
                    #expect(matches.first?.entry == record.entry)
                }
            }
            try await group.waitForAll()
        }
    }
}
