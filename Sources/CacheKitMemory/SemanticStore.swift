import CacheKit

/// The state of a `MemorySemanticIndex`: partitions of contiguous rows, a key → location map, and an insertion log
/// for the record cap. Not thread-safe by itself.
struct SemanticStore {
    struct Partition {
        var scopeID: Digest256
        var keys: [CacheKey] = []
        var entries: [CacheEntry] = []
        var vectors: [Float] = []
    }

    let dimension: Int
    let maximumRecords: Int
    private var partitions: [Digest256: Partition] = [:]
    private var locations: [CacheKey: (partition: Digest256, row: Int)] = [:]
    private var insertionLog: [CacheKey] = []
    private var logStart = 0

    init(dimension: Int, maximumRecords: Int) {
        self.dimension = dimension
        self.maximumRecords = maximumRecords
    }

    var count: Int { self.locations.count }

    func search(_ vector: [Float], query: SemanticQuery, now: CacheTime) -> [SemanticMatch] {
        guard let partition = self.partitions[query.partition.digest], partition.scopeID == query.partition.scopeID else { return [] }
        var best: [(row: Int, similarity: Float)] = []
        best.reserveCapacity(query.limit + 1)
        let dimension = self.dimension
        partition.vectors.withUnsafeBufferPointer { rows in
            vector.withUnsafeBufferPointer { q in
                for row in 0..<partition.keys.count {
                    let similarity = SIMDMath.dot(rows.baseAddress! + row * dimension, q.baseAddress!, count: dimension)
                    guard similarity >= query.minimumSimilarity else { continue }
                    if best.count == query.limit, let last = best.last, similarity <= last.similarity { continue }
                    guard partition.entries[row].isUsable(at: now) else { continue }
                    let position = best.firstIndex { $0.similarity < similarity } ?? best.count
                    best.insert((row, similarity), at: position)
                    if best.count > query.limit { best.removeLast() }
                }
            }
        }
        return best.map { SemanticMatch(key: partition.keys[$0.row], similarity: min(1, $0.similarity), entry: partition.entries[$0.row]) }
    }

    mutating func insert(_ record: SemanticRecord) {
        if self.locations[record.key] != nil { self.remove(record.key) }
        let digest = record.partition.digest
        var partition = self.partitions.removeValue(forKey: digest) ?? Partition(scopeID: record.partition.scopeID)
        partition.keys.append(record.key)
        partition.entries.append(record.entry)
        partition.vectors.append(contentsOf: record.vector)
        self.locations[record.key] = (digest, partition.keys.count - 1)
        self.partitions[digest] = partition
        self.insertionLog.append(record.key)
        while self.locations.count > self.maximumRecords, self.logStart < self.insertionLog.count {
            let oldest = self.insertionLog[self.logStart]
            self.logStart += 1
            self.remove(oldest)
        }
        if self.logStart > 4096, self.logStart * 2 > self.insertionLog.count {
            self.insertionLog.removeFirst(self.logStart)
            self.logStart = 0
        }
    }

    @discardableResult
    mutating func remove(_ key: CacheKey) -> Bool {
        guard let (digest, row) = self.locations.removeValue(forKey: key),
            var partition = self.partitions.removeValue(forKey: digest)
        else { return false }
        let last = partition.keys.count - 1
        if row != last {
            // Swap-remove: move the last row into the hole.
            partition.keys[row] = partition.keys[last]
            partition.entries[row] = partition.entries[last]
            let d = self.dimension
            for i in 0..<d { partition.vectors[row * d + i] = partition.vectors[last * d + i] }
            self.locations[partition.keys[row]] = (digest, row)
        }
        partition.keys.removeLast()
        partition.entries.removeLast()
        partition.vectors.removeLast(self.dimension)
        if !partition.keys.isEmpty { self.partitions[digest] = partition }
        return true
    }

    /// Removes every record for which `predicate(partition, entry, vector)` holds.
    mutating func removeAll(where predicate: (SemanticPartition, CacheEntry, ArraySlice<Float>) -> Bool) -> Int {
        var doomed: [CacheKey] = []
        for (digest, partition) in self.partitions {
            let id = SemanticPartition(digest: digest, scopeID: partition.scopeID)
            for row in partition.keys.indices {
                let vector = partition.vectors[(row * self.dimension)..<((row + 1) * self.dimension)]
                if predicate(id, partition.entries[row], vector) { doomed.append(partition.keys[row]) }
            }
        }
        for key in doomed { self.remove(key) }
        return doomed.count
    }
}
