import CCacheKitHiredis
import CacheKit

/// A reply from Redis (RESP2).
enum RedisValue: Sendable, Equatable {
    case bulk([UInt8])
    case status(String)
    case integer(Int64)
    case array([RedisValue])
    case null
    case error(String)

    var integer: Int64? { if case .integer(let value) = self { value } else { nil } }
    var bytes: [UInt8]? { if case .bulk(let value) = self { value } else { nil } }
    var array: [RedisValue]? { if case .array(let value) = self { value } else { nil } }
}

/// One hiredis connection. Every command goes through the argv API (`redisCommandArgv`,
/// `redisAppendCommandArgv`): arguments are length-prefixed binary strings and never formatted into a command.
///
/// - Invariant (why `@unchecked Sendable` is sound): the context is used by one thread at a time. The pool leases a
///   connection to one task, which runs each call on a `BlockingThreadPool` thread and awaits it before the next;
///   a connection whose call errored, timed out or was cancelled is never leased again, and `close()` frees the
///   context exactly once (guarded by `context` becoming `nil`), after its last call returned.
final class RedisConnection: PooledConnection, @unchecked Sendable {
    private var context: UnsafeMutablePointer<redisContext>?
    let backend: String

    /// Connects, sets the command timeout, authenticates and selects the database; with `readOnly` (a cluster
    /// replica serving reads) sends `READONLY`. Blocks: call on a pool thread.
    init(_ configuration: RedisClient.Configuration, readOnly: Bool = false) throws(CacheError) {
        self.backend = configuration.name
        let connectMs = max(1, Int(configuration.connectTimeout.milliseconds))
        let context: UnsafeMutablePointer<redisContext>?
        if let path = configuration.endpoint.unixPath {
            context = cachekit_redis_connect_unix(path, connectMs)
        } else {
            let (host, port) = configuration.endpoint.tcp!
            context = cachekit_redis_connect_tcp(host, Int32(port), connectMs)
        }
        guard let context else {
            throw CacheError(.connectionFailed, "cannot allocate a Redis context", backend: configuration.name)
        }
        self.context = context
        if context.pointee.err != 0 {
            let reason = Self.errorString(context)
            self.close()
            throw CacheError(.connectionFailed, "cannot connect to \(configuration.endpoint): \(reason)", backend: configuration.name)
        }
        let commandMs = max(1, Int(configuration.commandTimeout.milliseconds))
        guard cachekit_redis_set_timeout(context, commandMs) == REDIS_OK else {
            self.close()
            throw CacheError(.connectionFailed, "cannot set the command timeout", backend: configuration.name)
        }
        do throws(CacheError) {
            if let password = configuration.password {
                var arguments: [[UInt8]] = [Array("AUTH".utf8)]
                if let user = configuration.username { arguments.append(Array(user.utf8)) }
                arguments.append(Array(password.utf8))
                do {
                    _ = try self.execute(arguments)
                } catch {
                    // The server's message can say why (WRONGPASS); it never contains the password.
                    throw CacheError(.authenticationFailed, "Redis refused the credentials: \(error.message)", backend: configuration.name)
                }
            }
            if configuration.database != 0 {
                _ = try self.execute([Array("SELECT".utf8), Array(String(configuration.database).utf8)])
            }
            if readOnly {
                _ = try self.execute([Array("READONLY".utf8)])
            }
        } catch {
            self.close()
            throw error
        }
    }

    deinit { self.close() }

    /// Frees the context. Idempotent.
    func close() {
        if let context = self.context {
            self.context = nil
            redisFree(context)
        }
    }

    /// Unblocks a read in progress on another thread (used to stop a subscriber). The connection is unusable after.
    func shutdownSocket() {
        if let context = self.context { cachekit_redis_shutdown_socket(context) }
    }

    var isOpen: Bool { self.context != nil }

    /// Sends one command and reads its reply. An error reply throws `.commandFailed`; an I/O error or timeout
    /// throws `.connectionFailed`/`.timeout` (after which the connection must be destroyed).
    func execute(_ arguments: [[UInt8]]) throws(CacheError) -> RedisValue {
        guard let context = self.context else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        let raw = Self.withArgv(arguments) { argc, argv, lengths in redisCommandArgv(context, argc, argv, lengths) }
        guard let raw else { throw self.ioError(context) }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        let value = Self.convert(reply)
        if case .error(let message) = value { throw CacheError(.commandFailed, Self.sanitize(message), backend: self.backend) }
        return value
    }

    /// Sends several commands in one write and reads all replies (pipelining). Error replies are returned as
    /// `.error` values in place; an I/O error throws.
    /// A pipeline is written in pieces of about this size (replies are read after the last piece; the server
    /// buffers them meanwhile).
    static let pipelineChunkBytes = 32 * 1024

    func pipeline(_ commands: [[[UInt8]]]) throws(CacheError) -> [RedisValue] {
        guard let context = self.context else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        for command in commands {
            let status = Self.withArgv(command) { argc, argv, lengths in redisAppendCommandArgv(context, argc, argv, lengths) }
            guard status == REDIS_OK, cachekit_redis_flush_over(context, Self.pipelineChunkBytes) == REDIS_OK else {
                throw self.ioError(context)
            }
        }
        return try self.readReplies(commands.count)
    }

    /// Sends commands written by `encode` (into a buffer handed to the socket every `pipelineChunkBytes`), then
    /// reads one reply per command. Error replies are returned in place; an I/O error throws.
    func pipeline(encoding encode: (inout RESPEncoder, _ flush: (inout RESPEncoder) throws(CacheError) -> Void) throws(CacheError) -> Void) throws(CacheError) -> [RedisValue] {
        guard let context = self.context else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        let send = { (encoder: inout RESPEncoder) throws(CacheError) -> Void in
            try encoder.drain { (buffer: UnsafeRawBufferPointer) throws(CacheError) -> Void in
                let appended = buffer.withMemoryRebound(to: CChar.self) { redisAppendFormattedCommand(context, $0.baseAddress, $0.count) }
                guard appended == REDIS_OK, cachekit_redis_flush_over(context, Self.pipelineChunkBytes) == REDIS_OK else {
                    throw self.ioError(context)
                }
            }
        }
        var encoder = RESPEncoder(capacity: Self.pipelineChunkBytes + 4096)
        let flush = { (encoder: inout RESPEncoder) throws(CacheError) -> Void in
            if encoder.bytes.count >= Self.pipelineChunkBytes { try send(&encoder) }
        }
        try encode(&encoder, flush)
        try send(&encoder)
        return try self.readReplies(encoder.commandCount)
    }

    private func readReplies(_ count: Int) throws(CacheError) -> [RedisValue] {
        guard let context = self.context else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        var replies: [RedisValue] = []
        replies.reserveCapacity(count)
        for _ in 0..<count {
            var raw: UnsafeMutableRawPointer?
            guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw self.ioError(context) }
            replies.append(Self.convert(raw.assumingMemoryBound(to: redisReply.self)))
            freeReplyObject(raw)
        }
        return replies
    }

    /// Reads one reply (for subscribers). Blocks until a message arrives or the socket is shut down.
    func readReply() throws(CacheError) -> RedisValue {
        guard let context = self.context else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        var raw: UnsafeMutableRawPointer?
        guard redisGetReply(context, &raw) == REDIS_OK, let raw else { throw self.ioError(context) }
        defer { freeReplyObject(raw) }
        return Self.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    /// Waits up to `milliseconds` for a reply to read: `true` when one is ready (or the socket closed), `false` on
    /// timeout. Throws when the connection is unusable.
    func waitReadable(milliseconds: Int) throws(CacheError) -> Bool {
        guard let context = self.context else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        let result = cachekit_redis_wait_readable(context, Int32(clamping: milliseconds))
        guard result >= 0 else { throw CacheError(.connectionFailed, "poll failed on the connection", backend: self.backend) }
        return result == 1
    }

    /// Sends PING without reading its reply (subscribed mode: it arrives as `["pong", ""]` among the messages).
    func sendPing() throws(CacheError) {
        guard let context = self.context else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        guard cachekit_redis_send_ping(context) == REDIS_OK else { throw self.ioError(context) }
    }

    /// Sets the read timeout (0 = wait forever).
    func setTimeout(milliseconds: Int) {
        if let context = self.context { _ = cachekit_redis_set_timeout(context, milliseconds) }
    }

    private func ioError(_ context: UnsafeMutablePointer<redisContext>) -> CacheError {
        let reason = Self.errorString(context)
        let code: CacheError.Code = reason.lowercased().contains("timed out") || reason.contains("Resource temporarily unavailable") ? .timeout : .connectionFailed
        return CacheError(code, "Redis I/O error: \(reason)", backend: self.backend)
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Bounds a server error message's length. Redis error replies name the command and the condition
    /// (`WRONGPASS`, `NOAUTH`, `OOM`, `WRONGTYPE`), not keys or values.
    private static func sanitize(_ message: String) -> String {
        String(message.prefix(160))
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisValue {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulk(r.len > 0 ? Array(UnsafeRawBufferPointer(start: r.str, count: Int(r.len))) : [])
        case REDIS_REPLY_STATUS:
            return .status(String(decoding: UnsafeRawBufferPointer(start: r.str, count: Int(r.len)), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            return .error(String(decoding: UnsafeRawBufferPointer(start: r.str, count: Int(r.len)), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            return .integer(Int64(r.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(Int(r.elements))
            for i in 0..<Int(r.elements) { elements.append(convert(r.element[i]!)) }
            return .array(elements)
        default:
            return .null
        }
    }

    /// Lays the arguments out in one buffer and calls `body` with argc, argv and the lengths (binary-safe).
    private static func withArgv<T>(
        _ arguments: [[UInt8]],
        _ body: (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> T
    ) -> T {
        var storage = [UInt8]()
        storage.reserveCapacity(arguments.reduce(1) { $0 + $1.count })
        var offsets: [Int] = []
        offsets.reserveCapacity(arguments.count)
        for argument in arguments {
            offsets.append(storage.count)
            storage.append(contentsOf: argument)
        }
        storage.append(0)  // so that even an empty last argument points inside the buffer
        let lengths = arguments.map(\.count)
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(1, arguments.count))
        defer { pointers.deallocate() }
        return storage.withUnsafeBufferPointer { buffer in
            let base = UnsafeRawPointer(buffer.baseAddress!)
            for (index, offset) in offsets.enumerated() {
                pointers[index] = (base + offset).assumingMemoryBound(to: CChar.self)
            }
            return lengths.withUnsafeBufferPointer { body(Int32(arguments.count), pointers, $0.baseAddress!) }
        }
    }
}
