import CacheKit

/// The state of a `MemorySemanticIndex`: partitions of contiguous rows, a key → location map, and an insertion log
/// for the record cap. Not thread-safe by itself.
struct SemanticStore {
    struct Partition {
        var scopeID: Digest256
        var keys: [CacheKey] = []
        var entries: [CacheEntry] = []
        var vectors: [Float] = []
        /// One sign bit per dimension per row (`words` words each): the coarse pass of the approximate search.
        var signs: [UInt64] = []
    }

    let dimension: Int
    let maximumRecords: Int
    /// Partitions with at least this many rows are searched approximately: a scan of the sign bits (Hamming
    /// distance) picks `candidates` rows, which are then ranked by exact cosine. `Int.max` = always exact.
    let approximateAbove: Int
    let candidates: Int
    /// 64-bit words of sign bits per row.
    let words: Int
    private var partitions: [Digest256: Partition] = [:]
    private var locations: [CacheKey: (partition: Digest256, row: Int)] = [:]
    private var insertionLog: [CacheKey] = []
    private var logStart = 0

    init(dimension: Int, maximumRecords: Int, approximateAbove: Int = 20_000, candidates: Int = 256) {
        self.dimension = dimension
        self.maximumRecords = maximumRecords
        self.approximateAbove = approximateAbove
        self.candidates = max(1, candidates)
        self.words = (dimension + 63) / 64
    }

    /// Whether searches in a partition of `rows` rows take the approximate path.
    func isApproximate(rows: Int) -> Bool { rows >= self.approximateAbove }

    func signWords(_ vector: UnsafePointer<Float>) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: self.words)
        for i in 0..<self.dimension where vector[i] > 0 { words[i >> 6] |= 1 << UInt64(i & 63) }
        return words
    }

    var count: Int { self.locations.count }

    func search(_ vector: [Float], query: SemanticQuery, now: CacheTime) -> [SemanticMatch] {
        guard let partition = self.partitions[query.partition.digest], partition.scopeID == query.partition.scopeID else { return [] }
        var best: [(row: Int, similarity: Float)] = []
        best.reserveCapacity(query.limit + 1)
        let dimension = self.dimension
        let rowsToScore: [Int]? = self.isApproximate(rows: partition.keys.count)
            ? vector.withUnsafeBufferPointer { self.candidateRows(partition, query: $0.baseAddress!, count: max(self.candidates, query.limit * 4)) }
            : nil
        partition.vectors.withUnsafeBufferPointer { rows in
            vector.withUnsafeBufferPointer { q in
                var index = 0
                let total = rowsToScore?.count ?? partition.keys.count
                while index < total {
                    let row = rowsToScore?[index] ?? index
                    index += 1
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

    /// The `count` rows whose sign bits are nearest the query's in Hamming distance (ties at the cut included,
    /// up to twice `count`): a histogram of distances finds the cut in two linear passes, no sort.
    func candidateRows(_ partition: Partition, query: UnsafePointer<Float>, count: Int) -> [Int] {
        let rows = partition.keys.count
        let words = self.words
        let q = self.signWords(query)
        var distances = [UInt16](repeating: 0, count: rows)
        var histogram = [Int](repeating: 0, count: self.dimension + 1)
        partition.signs.withUnsafeBufferPointer { signs in
            q.withUnsafeBufferPointer { q in
                distances.withUnsafeMutableBufferPointer { distances in
                    histogram.withUnsafeMutableBufferPointer { histogram in
                        var base = signs.baseAddress!
                        if words == 6 {
                            // 384 dimensions (MiniLM): the six words unrolled.
                            let (q0, q1, q2, q3, q4, q5) = (q[0], q[1], q[2], q[3], q[4], q[5])
                            for row in 0..<rows {
                                let distance = (base[0] ^ q0).nonzeroBitCount &+ (base[1] ^ q1).nonzeroBitCount
                                    &+ (base[2] ^ q2).nonzeroBitCount &+ (base[3] ^ q3).nonzeroBitCount
                                    &+ (base[4] ^ q4).nonzeroBitCount &+ (base[5] ^ q5).nonzeroBitCount
                                distances[row] = UInt16(truncatingIfNeeded: distance)
                                histogram[distance] &+= 1
                                base += 6
                            }
                        } else {
                            for row in 0..<rows {
                                var distance = 0
                                for w in 0..<words { distance &+= (base[w] ^ q[w]).nonzeroBitCount }
                                distances[row] = UInt16(truncatingIfNeeded: distance)
                                histogram[distance] &+= 1
                                base += words
                            }
                        }
                    }
                }
            }
        }
        var cut = 0, taken = 0
        while cut < histogram.count, taken + histogram[cut] < count {
            taken += histogram[cut]
            cut += 1
        }
        var result: [Int] = []
        result.reserveCapacity(min(rows, 2 * count))
        for row in 0..<rows where Int(distances[row]) <= cut {
            result.append(row)
            if result.count >= 2 * count { break }
        }
        return result
    }

    mutating func insert(_ record: SemanticRecord) {
        if self.locations[record.key] != nil { self.remove(record.key) }
        let digest = record.partition.digest
        var partition = self.partitions.removeValue(forKey: digest) ?? Partition(scopeID: record.partition.scopeID)
        partition.keys.append(record.key)
        partition.entries.append(record.entry)
        partition.vectors.append(contentsOf: record.vector)
        partition.signs.append(contentsOf: record.vector.withUnsafeBufferPointer { self.signWords($0.baseAddress!) })
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
            for w in 0..<self.words { partition.signs[row * self.words + w] = partition.signs[last * self.words + w] }
            self.locations[partition.keys[row]] = (digest, row)
        }
        partition.keys.removeLast()
        partition.entries.removeLast()
        partition.vectors.removeLast(self.dimension)
        partition.signs.removeLast(self.words)
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
