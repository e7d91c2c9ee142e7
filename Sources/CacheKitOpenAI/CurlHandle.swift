import CCacheKitCurl
import CacheKit

/// An HTTP request for `HTTPClient`.
struct HTTPRequest: Sendable {
    var url: String
    var method: String = "POST"
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    /// Total time limit; `nil` for streams (bounded by `idleTimeout` instead).
    var timeout: Duration?
    /// A stream that receives no byte for this long is aborted.
    var idleTimeout: Duration
    var connectTimeout: Duration
}

/// The status and headers of a response.
struct HTTPResponseHead: Sendable {
    var status: Int
    var headers: [(name: String, value: String)]

    func header(_ name: String) -> String? {
        self.headers.last { $0.name.lowercased() == name.lowercased() }?.value
    }
}

/// One libcurl easy handle. Reusing it across requests reuses its connections (keep-alive, TLS sessions).
///
/// - Invariant (why `@unchecked Sendable` is sound): `handle` is used by one thread at a time (the pool leases it
///   to one task, which runs `perform` on a pool thread); the only cross-thread access is `cancelled`, a locked
///   flag read by libcurl's progress callback; `close()` frees the handle once.
final class CurlHandle: PooledConnection, @unchecked Sendable {
    private var handle: UnsafeMutableRawPointer?
    private let cancelled = LockedState(false)

    init() throws(CacheError) {
        guard let handle = curl_easy_init() else { throw CacheError(.unavailable, "curl_easy_init failed", backend: "openai") }
        self.handle = handle
    }

    deinit { self.close() }

    func close() {
        if let handle = self.handle {
            self.handle = nil
            curl_easy_cleanup(handle)
        }
    }

    func cancelInFlight() { self.cancelled.withLock { $0 = true } }

    /// State shared with libcurl's callbacks for one transfer.
    private final class Transfer {
        let sink: (UnsafeRawBufferPointer) -> Bool
        let cancelled: LockedState<Bool>
        var headers: [(name: String, value: String)] = []
        var headerBytes = 0
        var headersRefused = false
        var sinkRefused = false
        init(sink: @escaping (UnsafeRawBufferPointer) -> Bool, cancelled: LockedState<Bool>) {
            self.sink = sink
            self.cancelled = cancelled
        }
    }

    /// Performs `request`, passing body bytes to `sink` as they arrive (return `false` to abort).
    /// Blocks: call on a pool thread.
    func perform(_ request: HTTPRequest, sink: @escaping (UnsafeRawBufferPointer) -> Bool) throws(CacheError) -> HTTPResponseHead {
        guard let curl = self.handle else { throw CacheError(.connectionFailed, "handle is closed", backend: "openai") }
        self.cancelled.withLock { $0 = false }
        curl_easy_reset(curl)  // keeps live connections, DNS and TLS session caches
        let transfer = Transfer(sink: sink, cancelled: self.cancelled)
        let context = Unmanaged.passRetained(transfer)
        defer { context.release() }
        var headerList: UnsafeMutablePointer<curl_slist>?
        defer { curl_slist_free_all(headerList) }
        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        headerList = curl_slist_append(headerList, "Expect:")

        var status = cachekit_curl_set_string(curl, CURLOPT_URL, request.url)
        func set(_ code: CURLcode) { if status == CURLE_OK { status = code } }
        set(cachekit_curl_set_long(curl, CURLOPT_NOSIGNAL, 1))
        set(cachekit_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, Int(max(1, request.connectTimeout.milliseconds))))
        if let timeout = request.timeout { set(cachekit_curl_set_long(curl, CURLOPT_TIMEOUT_MS, Int(max(1, timeout.milliseconds)))) }
        set(cachekit_curl_set_long(curl, CURLOPT_LOW_SPEED_LIMIT, 1))
        set(cachekit_curl_set_long(curl, CURLOPT_LOW_SPEED_TIME, Int(max(1, request.idleTimeout.seconds.rounded(.up)))))
        set(cachekit_curl_set_long(curl, CURLOPT_SSL_VERIFYPEER, 1))
        set(cachekit_curl_set_long(curl, CURLOPT_SSL_VERIFYHOST, 2))
        set(cachekit_curl_set_string(curl, CURLOPT_ACCEPT_ENCODING, ""))
        set(cachekit_curl_set_headers(curl, headerList))
        set(cachekit_curl_set_string(curl, CURLOPT_CUSTOMREQUEST, request.method))
        set(cachekit_curl_set_write(curl, { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            let length = size * count
            guard transfer.sink(UnsafeRawBufferPointer(start: data, count: length)) else {
                transfer.sinkRefused = true
                return 0
            }
            return length
        }, context.toOpaque()))
        set(cachekit_curl_set_header_callback(curl, { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            // Headers come from the server: past 200 lines or 64 KiB the transfer is refused (libcurl aborts when
            // the callback returns less than it was given), so a hostile upstream cannot grow this list forever.
            transfer.headerBytes += size * count
            guard transfer.headers.count < 200, transfer.headerBytes <= 65_536 else {
                transfer.headersRefused = true
                return 0
            }
            let line = String(decoding: UnsafeRawBufferPointer(start: data, count: size * count), as: UTF8.self)
            if line.hasPrefix("HTTP/") { transfer.headers.removeAll() }
            if let colon = line.firstIndex(of: ":") {
                let name = String(line[..<colon])
                let value = line[line.index(after: colon)...].trimmingCharacters(in: " \r\n\t")
                transfer.headers.append((name, value))
            }
            return size * count
        }, context.toOpaque()))
        set(cachekit_curl_set_progress(curl, { context, _, _, _, _ in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            return transfer.cancelled.withLock { $0 } ? 1 : 0
        }, context.toOpaque()))
        guard status == CURLE_OK else { throw CacheError(.invalidConfiguration, "libcurl refused an option: \(Self.describe(status))", backend: "openai") }

        let result = request.body.withUnsafeBufferPointer { body -> CURLcode in
            if request.method == "POST" {
                let base = body.baseAddress.map { UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self) }
                _ = cachekit_curl_set_body(curl, base, body.count)
            }
            return curl_easy_perform(curl)
        }
        switch result {
        case CURLE_OK:
            return HTTPResponseHead(status: cachekit_curl_response_code(curl), headers: transfer.headers)
        case CURLE_ABORTED_BY_CALLBACK:
            throw CacheError(.cancelled, "the transfer was cancelled", backend: "openai")
        case CURLE_WRITE_ERROR where transfer.headersRefused:
            throw CacheError(.connectionFailed, "the response's headers exceed 200 lines or 64 KiB", backend: "openai")
        case CURLE_WRITE_ERROR where transfer.sinkRefused:
            throw CacheError(.cancelled, "the response was abandoned by its reader", backend: "openai")
        case CURLE_OPERATION_TIMEDOUT:
            throw CacheError(.timeout, "HTTP request timed out: \(Self.describe(result))", backend: "openai")
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
            CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE:
            throw CacheError(.connectionFailed, "HTTP transport error: \(Self.describe(result))", backend: "openai")
        default:
            throw CacheError(.connectionFailed, "HTTP transport error: \(Self.describe(result))", backend: "openai")
        }
    }

    static func describe(_ code: CURLcode) -> String {
        curl_easy_strerror(code).map { String(cString: $0) } ?? "curl error \(code.rawValue)"
    }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, set.contains(first) { slice.removeFirst() }
        while let last = slice.last, set.contains(last) { slice.removeLast() }
        return String(slice)
    }
}
