import CacheKit
@_spi(Fuzzing) @testable import CacheKitEmbeddings
import CacheKitMemory
import CacheKitTesting
import Foundation
import Testing

enum ModelFixture {
    static let directory = ProcessInfo.processInfo.environment["CACHEKIT_MODEL_DIR"]
    static var available: Bool { directory != nil }
    static let provider: LocalEmbeddingProvider? = directory.flatMap { try? LocalEmbeddingProvider(directory: $0) }

    struct Reference {
        var text: String
        var ids: [Int32]
        var vector: [Float]
    }

    /// Vectors made by the sentence-transformers library (scripts/data/make-embedding-reference.py).
    static let references: [Reference] = {
        let url = Bundle.module.url(forResource: "minilm-reference", withExtension: "json", subdirectory: "Fixtures")!
        let json = try! JSONValue(parsing: Array(FileManager.default.contents(atPath: url.path)!))
        return json.arrayValue!.map { item in
            Reference(
                text: item["text"]!.stringValue!,
                ids: item["input_ids"]!.arrayValue!.map { Int32($0.intValue!) },
                vector: item["vector"]!.arrayValue!.map { Float($0.doubleValue!) }
            )
        }
    }()
}

@Suite("Local sentence embeddings (all-MiniLM-L6-v2)", .enabled(if: ModelFixture.available, "needs CACHEKIT_MODEL_DIR (scripts/test fetches the model)"))
struct LocalEmbeddingProviderTests {
    @Test func tokenizerMatchesTheReferenceTokenizerExactly() throws {
        let provider = try #require(ModelFixture.provider)
        #expect(ModelFixture.references.count >= 50)
        for reference in ModelFixture.references {
            #expect(provider.tokenizer.encode(reference.text) == reference.ids, "tokens differ for \(reference.text.debugDescription): \(provider.tokenizer.tokens(reference.text))")
        }
    }

    /// Both ways of computing the products (the half-precision panel kernels where the processor has them, and
    /// OpenBLAS), all sentences in one batch, and every thirteenth alone (a debug build is too slow to take all of
    /// them one by one).
    @Test(arguments: EmbeddingMatrixProducts.panelKernelsAvailable ? [EmbeddingMatrixProducts.halfPrecisionPanels, .blas] : [.blas])
    func vectorsMatchSentenceTransformers(products: EmbeddingMatrixProducts) async throws {
        let provider = try LocalEmbeddingProvider(directory: try #require(ModelFixture.directory), products: products)
        let texts = ModelFixture.references.map(\.text)
        let batch = try await provider.embed(texts)
        var worst: Float = 1
        for (index, reference) in ModelFixture.references.enumerated() {
            var vectors = [batch[index]]
            if index % 13 == 0 {
                let single = try await provider.embed(reference.text)
                #expect(zip(single, batch[index]).allSatisfy { abs($0 - $1) < 1e-5 }, "a batch and a single call disagree (\(products))")
                vectors.append(single)
            }
            for vector in vectors {
                let cosine = zip(reference.vector, vector).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                worst = min(worst, cosine)
                #expect(cosine >= 0.9999, "cosine \(cosine) for \(reference.text.prefix(60).debugDescription) (\(products))")
            }
        }
        print("all-MiniLM-L6-v2 in Swift (\(products)) vs sentence-transformers: worst cosine \(worst) over \(texts.count) sentences")
        #expect(provider.dimension == 384)
    }

    @Test func paraphrasesAreCloserThanUnrelatedSentences() async throws {
        let provider = try #require(ModelFixture.provider)
        let v = try await provider.embed(["How do I reset my password?", "I forgot my password, how can I change it?", "What time does the train leave?"])
        func cosine(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        #expect(cosine(v[0], v[1]) > 0.7)
        #expect(cosine(v[0], v[2]) < 0.3)
    }

    @Test func aMissingOrBrokenModelFolderIsAClearError() throws {
        do {
            _ = try LocalEmbeddingProvider(directory: "/nonexistent/model")
            Issue.record("a missing folder was accepted")
        } catch {
            #expect(error.message.contains("config.json"))
        }
    }
}

@Suite("safetensors header checks")
struct SafeTensorsTests {
    func folder(safetensors: [UInt8]) throws -> String {
        let directory = NSTemporaryDirectory() + "ck-model-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let config = #"{"model_type":"bert","hidden_size":4,"num_attention_heads":2,"intermediate_size":8,"num_hidden_layers":1,"vocab_size":5,"max_position_embeddings":8,"type_vocab_size":2}"#
        FileManager.default.createFile(atPath: directory + "/config.json", contents: Data(config.utf8))
        FileManager.default.createFile(atPath: directory + "/vocab.txt", contents: Data("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n".utf8))
        FileManager.default.createFile(atPath: directory + "/model.safetensors", contents: Data(safetensors))
        return directory
    }

    func file(header: String, payload: Int) -> [UInt8] {
        let bytes = Array(header.utf8)
        var out = withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { Array($0) }
        out += bytes
        out += [UInt8](repeating: 0, count: payload)
        return out
    }

    @Test(arguments: [
        ("", 0, "too short"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 4, "outside the file"),
        (#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, 8, "does not match"),
        (#"{"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}}"#, 8, "unsupported dtype"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#, 8, "not JSON"),
        (#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, 8, "no tensor"),
    ])
    func malformedFilesAreRefusedWithAReason(header: String, payload: Int, reason: String) throws {
        let bytes = header.isEmpty ? [1, 2, 3] : self.file(header: header, payload: payload)
        let directory = try self.folder(safetensors: bytes)
        do {
            _ = try LocalEmbeddingProvider(directory: directory)
            Issue.record("accepted a malformed safetensors file")
        } catch {
            #expect(error.message.contains(reason), "\(error.message)")
        }
    }

    /// Found by the FuzzModelFiles target: the header accepted F64 and integer tensors, and reading one returned no
    /// values at all (an encoder built from it would index an empty array). F64 now converts; integers are refused.
    @Test func doublesAreConvertedAndIntegerTensorsAreRefused() throws {
        var payload: [UInt8] = []
        for value in [1.5, -2.25] as [Double] { payload += withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        payload += [UInt8](repeating: 7, count: 16)
        let header = #"{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},"position_ids":{"dtype":"I64","shape":[2],"data_offsets":[16,32]}}"#
        let bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8) + payload
        let file = try SafeTensors(data: Data(bytes))
        #expect(try file.tensor("w", shape: [2]) == [1.5, -2.25])
        #expect(file.shape(of: "position_ids") == [2])
        #expect { try file.tensor("position_ids", shape: [2]) } throws: { ($0 as? CacheError)?.message.contains("integers") == true }
    }
}

/// A model folder is input too: nothing in it may end the process or make the encoder read outside its weights.
@Suite("Hostile model folders")
struct HostileModelFolderTests {
    /// A complete 1-layer BERT of hidden size 4 with zero weights (`TinyBertModel`), and the given vocab.txt.
    static func tinyModel(vocabulary: String) throws -> String {
        let directory = try SafeTensorsTests().folder(safetensors: TinyBertModel.weights())
        FileManager.default.createFile(atPath: directory + "/vocab.txt", contents: Data(vocabulary.utf8))
        return directory
    }

    /// Token ids from vocab.txt were never checked against the embedding matrix's rows: a longer vocabulary read
    /// past the matrix.
    @Test func aVocabularyLongerThanTheEmbeddingMatrixIsRefused() throws {
        let fits = try LocalEmbeddingProvider(directory: try Self.tinyModel(vocabulary: "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello"))
        #expect(fits.embedNow(["hello"]).first?.count == 4)
        do {
            _ = try LocalEmbeddingProvider(directory: try Self.tinyModel(vocabulary: "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\nagain"))
            Issue.record("a vocabulary with ids past the matrix was accepted")
        } catch {
            #expect("\(error)".contains("5 rows"), "\(error)")
        }
    }

    /// A shape whose element count fits an Int but whose byte count does not trapped before the size comparison.
    @Test(arguments: [
        #"{"a":{"dtype":"F32","shape":[2147483648,2147483648],"data_offsets":[0,0]}}"#,
        #"{"a":{"dtype":"F64","shape":[1073741824,2147483648],"data_offsets":[0,0]}}"#,
        #"{"a":{"dtype":"F16","shape":[2147483648,2147483648],"data_offsets":[0,0]}}"#,
    ])
    func aShapeWhoseByteCountOverflowsIsRefused(_ header: String) throws {
        let bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
        #expect { try SafeTensors(data: Data(bytes)) } throws: { ($0 as? CacheError)?.message.contains("does not match") == true }
    }

    /// A dimension that is not an integer (2^62 does not survive as one, 1.5 is none) was dropped from the shape
    /// instead of refusing the tensor.
    @Test(arguments: [#"[4611686018427387904,0]"#, #"[1.5,4]"#, #"["4"]"#])
    func aShapeWithANonIntegerDimensionIsRefused(_ shape: String) throws {
        let header = #"{"a":{"dtype":"F32","shape":\#(shape),"data_offsets":[0,0]}}"#
        let bytes = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { Array($0) } + Array(header.utf8)
        #expect { try SafeTensors(data: Data(bytes)) } throws: { ($0 as? CacheError)?.message.contains("shape") == true }
    }

    /// A multi-megabyte message is tokenised from a bounded prefix (the model reads 256 tokens at most).
    @Test func aHugeMessageIsTokenisedFromABoundedPrefix() throws {
        let tokenizer = try WordPieceTokenizer(vocabulary: "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello", maximumLength: 8)
        let huge = String(repeating: "hello ", count: 2_000_000)
        #expect(tokenizer.encode(huge) == [2, 4, 4, 4, 4, 4, 4, 3])
    }
}

/// The embedding queue is bounded, and a caller that leaves takes its call out of it.
@Suite("Embedding queue")
struct EmbeddingQueueTests {
    @Test func theQueueIsBoundedAndACancelledCallerFreesItsSlotAtOnce() async throws {
        let provider = try LocalEmbeddingProvider(
            directory: try HostileModelFolderTests.tinyModel(vocabulary: "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello"), maximumQueuedCalls: 2)
        // Hold the provider's only thread, so calls queue up behind it.
        let gate = LockedState(false)
        provider.threads.submit { while !gate.withLock({ $0 }) { usleep(1000) } }
        let first = Task { try await provider.embed(["hello"]) }
        let second = Task { try await provider.embed(["hello"]) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(provider.queuedCalls == 2)
        await #expect { try await provider.embed(["hello"]) } throws: { ($0 as? CacheError)?.code == .limitExceeded }
        second.cancel()
        await #expect(throws: CancellationError.self) { try await second.value }
        #expect(provider.queuedCalls == 1, "the cancelled call still held its slot")
        let third = Task { try await provider.embed(["hello"]) }
        try await Task.sleep(for: .milliseconds(50))
        gate.withLock { $0 = true }
        #expect(try await first.value.first?.count == 4)
        #expect(try await third.value.first?.count == 4)
        #expect(provider.queuedCalls == 0)
    }
}

/// A message longer than the model's window is never matched on its first window alone.
@Suite("Long messages and the model's window", .enabled(if: ModelFixture.available, "needs CACHEKIT_MODEL_DIR (scripts/test fetches the model)"))
struct ModelWindowTests {
    /// A preamble of more than 256 tokens, then the question.
    static let preamble = String(repeating: "Our support policy covers every customer account and every order placed in the shop. ", count: 20)

    @Test func twoLongPromptsThatDifferAfterTheWindowDoNotMatch() async throws {
        let provider = try #require(ModelFixture.provider)
        let first = Self.preamble + "How do I reset my password?"
        let second = Self.preamble + "How do I delete my account for good?"
        #expect(provider.readsWhole("How do I reset my password?"))
        #expect(!provider.readsWhole(first) && !provider.readsWhole(second))
        // What makes it dangerous: the model reads the same first 254 tokens of both, so both get one vector.
        #expect(provider.tokenizer.encode(first) == provider.tokenizer.encode(second))

        let cache = try MultiLayerCache(
            configuration: CacheConfiguration(layers: [CacheLayer(backend: InMemoryCacheBackend(), name: "L1")], semantic: SemanticLayer.memory(embedder: provider, threshold: 0.85))
        )
        let upstream = EchoCompletionProvider()
        _ = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(first)], temperature: 0), upstream: upstream)
        let other = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(second)], temperature: 0), upstream: upstream)
        #expect(other.outcome.source == .miss, "matched on the first window alone")
        #expect(other.response.text == "answer to: " + second)
        let again = try await cache.completion(for: ChatRequest(model: "m", messages: [.user(first)], temperature: 0), upstream: upstream)
        #expect(again.outcome.source == .exactHit(layer: 0), "the long message is still cached exactly")
    }

    @Test func fitsAgreesWithEncode() throws {
        let provider = try #require(ModelFixture.provider)
        let tokenizer = provider.tokenizer
        for count in [1, 10, 40, 60, 63, 64, 80] {
            let text = String(repeating: "reset my password. ", count: count)
            let tokens = tokenizer.basicTokens(text).reduce(0) { $0 + tokenizer.wordPiece($1).count }
            #expect(tokenizer.fits(text) == (tokens <= tokenizer.maximumLength - 2), "\(count) repetitions, \(tokens) tokens")
        }
    }
}
