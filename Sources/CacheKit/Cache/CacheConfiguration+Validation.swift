extension CacheConfiguration {
    /// Checks that the parts fit together, as `try MultiLayerCache(configuration:)` does before it builds anything.
    ///
    /// Each problem is a `CacheError` `.invalidConfiguration` whose message names the setting:
    /// - `layers`: two layers with one name (statistics, metrics and invalidation reports name layers), a TTL ceiling
    ///   or timeout that is not positive, or a layer that is not shared, cannot drop what it holds
    ///   (`CacheCapabilities.localClearing`) and would receive other instances' invalidations from `invalidationBus`;
    /// - `semantic`: an embedder whose dimension differs from the index's (every semantic call would fail), a
    ///   threshold outside -1...1, a negative near-miss margin, a query bound that is not positive, a model change
///   whose previous model is the current one or of another dimension;
    /// - `namespaces`: when declared, per-namespace thresholds or write rules that name a namespace not among them;
    /// - `maximumInFlightCalls` below 1, `maximumBackgroundRefreshes` below 0.
    ///
    /// A semantic layer cannot lack an embedder: `SemanticLayer` takes one.
    public func validate() throws(CacheError) {
        func invalid(_ setting: String, _ problem: String) -> CacheError {
            CacheError(.invalidConfiguration, "\(setting): \(problem)")
        }
        var names: [String: Int] = [:]
        for (index, layer) in self.layers.enumerated() {
            if let earlier = names[layer.name] {
                throw invalid(
                    "layers", "layers \(earlier) and \(index) are both named \"\(layer.name)\"; name one (CacheLayer(backend:options:name:))")
            }
            names[layer.name] = index
            if let ceiling = layer.options.ttlCeiling, ceiling <= .zero {
                throw invalid("layers[\(index)].options.ttlCeiling", "\(ceiling) is not positive (layer \"\(layer.name)\")")
            }
            if let timeout = layer.options.timeout, timeout <= .zero {
                throw invalid("layers[\(index)].options.timeout", "\(timeout) is not positive (layer \"\(layer.name)\")")
            }
            if self.invalidationBus != nil, !layer.options.isShared, !layer.backend.capabilities.contains(.localClearing) {
                throw invalid(
                    "layers[\(index)]",
                    "layer \"\(layer.name)\" is local (not shared) but cannot drop what it holds (no CacheCapabilities.localClearing), so with an invalidation bus it could keep answers another instance invalidated; implement removeAllLocal() or mark the layer shared"
                )
            }
        }
        if let semantic = self.semantic {
            if semantic.embedder.dimension != semantic.index.dimension {
                throw invalid(
                    "semantic.embedder",
                    "the embedder \"\(semantic.embedder.model)\" makes \(semantic.embedder.dimension)-dimensional vectors, but the index \"\(semantic.index.name)\" stores \(semantic.index.dimension)"
                )
            }
            if let previous = semantic.modelChange.previous {
                if previous.model == semantic.embedder.model {
                    throw invalid("semantic.modelChange", "the previous model \"\(previous.model)\" is the current one")
                }
                if previous.dimension != semantic.index.dimension {
                    throw invalid(
                        "semantic.modelChange",
                        "the previous model \"\(previous.model)\" makes \(previous.dimension)-dimensional vectors, but the index \"\(semantic.index.name)\" stores \(semantic.index.dimension); re-embedding works within one index"
                    )
                }
            }
            if !(-1...1).contains(semantic.threshold) { throw invalid("semantic.threshold", "\(semantic.threshold) is outside -1...1") }
            for (namespace, threshold) in semantic.namespaceThresholds.sorted(by: { $0.key < $1.key }) where !(-1...1).contains(threshold) {
                throw invalid("semantic.namespaceThresholds[\"\(namespace)\"]", "\(threshold) is outside -1...1")
            }
            if !(semantic.nearMissMargin >= 0) { throw invalid("semantic.nearMissMargin", "\(semantic.nearMissMargin) is negative") }
            if semantic.maximumQueryBytes <= 0 { throw invalid("semantic.maximumQueryBytes", "\(semantic.maximumQueryBytes) is not positive") }
            if self.invalidationBus != nil, !semantic.isShared, !semantic.index.capabilities.contains(.localClearing) {
                throw invalid(
                    "semantic.index",
                    "the index \"\(semantic.index.name)\" is local (not shared) but cannot drop what it holds (no CacheCapabilities.localClearing); implement removeAllLocal() or set isShared"
                )
            }
        }
        if let declared = self.namespaces {
            let known = declared.sorted().joined(separator: ", ")
            for namespace in (self.semantic?.namespaceThresholds.keys).map(Array.init)?.sorted() ?? [] where !declared.contains(namespace) {
                throw invalid("semantic.namespaceThresholds", "namespace \"\(namespace)\" is not declared in namespaces (\(known))")
            }
            for namespace in (self.writeRules?.namespaces ?? []).sorted() where !declared.contains(namespace) {
                throw invalid("writeRules", "a rule names namespace \"\(namespace)\", which is not declared in namespaces (\(known))")
            }
        }
        if self.maximumInFlightCalls < 1 { throw invalid("maximumInFlightCalls", "\(self.maximumInFlightCalls) is below 1") }
        if self.maximumBackgroundRefreshes < 0 {
            throw invalid("maximumBackgroundRefreshes", "\(self.maximumBackgroundRefreshes) is negative")
        }
    }
}
