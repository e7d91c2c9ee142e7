import CCacheKitLibPQ
import CacheKit

#if canImport(Glibc)
import Glibc
#endif

/// A statement parameter: text (libpq parses it by the statement's declared type) or binary bytes (`bytea`).
enum PostgresParameter: Sendable {
    case text(String)
    case binary([UInt8])
    case null
}

/// The rows of a result, in binary format.
struct PostgresRows: Sendable {
    var rows: [[[UInt8]?]]
    var affected: Int

    func float64(_ row: Int, _ column: Int) -> Double? {
        guard let bytes = self.rows[row][column], bytes.count == 8 else { return nil }
        return Double(bitPattern: bytes.reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }
}

/// One libpq connection. Every value travels as a parameter of a prepared statement (`PQprepare`,
/// `PQexecPrepared`); SQL text holds only CacheKit's own identifiers.
///
/// - Invariant (why `@unchecked Sendable` is sound): `connection` and `prepared` are used by one thread at a time
///   (the pool leases the connection to one task, which runs each call on a pool thread and awaits it); from
///   another thread only `cancelInFlight()` runs, and it touches nothing but the socket, under `socketState`,
///   which `close()` marks closed before libpq closes the descriptor (so a reused descriptor number is never hit).
final class PostgresConnection: PooledConnection, @unchecked Sendable {
    private var connection: OpaquePointer?
    private var prepared: Set<String> = []
    /// The connection's socket while it is open; nil once `close()` began.
    private let socketState = LockedState<Int32?>(nil)
    let backend: String
    /// Client-side bound of one statement: the server's `statement_timeout` plus a second, so a server that stopped
    /// answering (frozen, or its postmaster gone) cannot block a pool thread forever. Raised only inside
    /// `withReplyTimeout` (by the thread holding the lease).
    private(set) var replyTimeout: Duration

    /// Runs `body` with a longer client-side bound (for maintenance whose server-side `SET LOCAL statement_timeout`
    /// is longer too), then restores the usual one.
    func withReplyTimeout<T>(_ timeout: Duration, _ body: () throws -> T) rethrows -> T {
        let usual = self.replyTimeout
        self.replyTimeout = timeout
        defer { self.replyTimeout = usual }
        return try body()
    }

    /// Connects and applies session settings. Blocks: call on a pool thread.
    init(_ configuration: PostgresClient.Configuration) throws(CacheError) {
        self.backend = configuration.name
        self.replyTimeout = configuration.statementTimeout + .seconds(1)
        // connect_timeout first so that one in the connection string (expanded from dbname) overrides it.
        let seconds = String(max(1, Int(configuration.connectTimeout.seconds.rounded(.up))))
        let connection: OpaquePointer? = "connect_timeout".withCString { k1 in
            "dbname".withCString { k2 in
                seconds.withCString { v1 in
                    configuration.connectionString.withCString { v2 in
                        var keywords: [UnsafePointer<CChar>?] = [k1, k2, nil]
                        var values: [UnsafePointer<CChar>?] = [v1, v2, nil]
                        return PQconnectdbParams(&keywords, &values, 1)
                    }
                }
            }
        }
        guard let connection else {
            throw CacheError(.connectionFailed, "cannot allocate a libpq connection", backend: configuration.name)
        }
        self.connection = connection
        // libpq's default notice processor prints server notices ("relation ... already exists, skipping" from the
        // migrations' IF NOT EXISTS) to the application's stderr; a library must not. They are informational only.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        guard PQstatus(connection) == CONNECTION_OK else {
            let reason = Self.message(connection)
            self.close()
            let code: CacheError.Code = reason.contains("password") || reason.contains("authentication") ? .authenticationFailed : .connectionFailed
            throw CacheError(code, "cannot connect to PostgreSQL: \(reason)", backend: configuration.name)
        }
        self.socketState.withLock { $0 = PQsocket(connection) }
        do {
            _ = try self.simple("SET statement_timeout = \(max(1, configuration.statementTimeout.milliseconds))")
            _ = try self.simple("SET hnsw.ef_search = \(configuration.efSearch)")
        } catch {
            // hnsw.ef_search is unknown before the vector extension is loaded in the session: load it and retry.
            do {
                _ = try self.simple("LOAD 'vector'")
                _ = try self.simple("SET hnsw.ef_search = \(configuration.efSearch)")
            } catch {
                self.close()
                throw error
            }
        }
    }

    deinit { self.close() }

    func close() {
        self.socketState.withLock { $0 = nil }
        if let connection = self.connection {
            self.connection = nil
            PQfinish(connection)
        }
    }

    /// Abandons the statement in flight, from any thread, without blocking: shuts the socket down, so that the
    /// pool thread waiting for the reply fails at once and the connection is destroyed, never reused. The server
    /// drops the statement when it finds the client gone, and its `statement_timeout` bounds it meanwhile.
    ///
    /// Not `PQcancel`: that opens a second connection to the server and waits, without a timeout, for the server to
    /// close it. Called from a task's cancellation handler on the cooperative pool, a stalled network made it block
    /// those threads, and with them every task of the process, for as long as the stall lasted.
    func cancelInFlight() {
        self.socketState.withLock { socket in
            if let socket, socket >= 0 { shutdown(socket, Int32(SHUT_RDWR)) }
        }
    }

    /// Runs SQL without parameters (CacheKit's own DDL and settings only).
    @discardableResult
    func simple(_ sql: String) throws(CacheError) -> PostgresRows {
        guard let connection = self.connection else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        guard PQsendQueryParams(connection, sql, 0, nil, nil, nil, nil, 1) == 1 else {
            throw CacheError(.connectionFailed, "PostgreSQL: \(Self.message(connection))", backend: self.backend)
        }
        return try self.consume(try self.awaitResult(connection), connection)
    }

    /// Waits (poll, bounded by `replyTimeout`) for the result of the statement just sent and drains the rest.
    private func awaitResult(_ connection: OpaquePointer) throws(CacheError) -> OpaquePointer? {
        let deadline = ContinuousClock.now + self.replyTimeout
        while PQisBusy(connection) == 1 {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else {
                self.cancelInFlight()
                throw CacheError(.timeout, "PostgreSQL did not answer within \(self.replyTimeout)", backend: self.backend)
            }
            var descriptor = pollfd(fd: PQsocket(connection), events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(max(1, min(remaining.milliseconds, 1000))))
            if ready < 0, errno != EINTR {
                throw CacheError(.connectionFailed, "PostgreSQL socket error", backend: self.backend)
            }
            guard PQconsumeInput(connection) == 1 else {
                throw CacheError(.connectionFailed, "PostgreSQL: \(Self.message(connection))", backend: self.backend)
            }
        }
        let first = PQgetResult(connection)
        // A statement yields one result then NULL; drain anything else so the connection is ready.
        while let extra = PQgetResult(connection) { PQclear(extra) }
        return first
    }

    /// Runs a prepared statement (preparing it once per connection under `name`).
    func execute(_ name: String, _ sql: String, _ parameters: [PostgresParameter]) throws(CacheError) -> PostgresRows {
        guard let connection = self.connection else { throw CacheError(.connectionFailed, "connection is closed", backend: self.backend) }
        if !self.prepared.contains(name) {
            guard PQsendPrepare(connection, name, sql, Int32(parameters.count), nil) == 1 else {
                throw CacheError(.connectionFailed, "PostgreSQL: \(Self.message(connection))", backend: self.backend)
            }
            _ = try self.consume(try self.awaitResult(connection), connection)
            self.prepared.insert(name)
        }
        var buffers: [[UInt8]?] = []
        var formats: [Int32] = []
        for parameter in parameters {
            switch parameter {
            case .text(let text):
                buffers.append(Array(text.utf8) + [0])
                formats.append(0)
            case .binary(let bytes):
                buffers.append(bytes)
                formats.append(1)
            case .null:
                buffers.append(nil)
                formats.append(0)
            }
        }
        let lengths = buffers.map { Int32($0?.count ?? 0) }
        let pointers = UnsafeMutablePointer<UnsafePointer<CChar>?>.allocate(capacity: max(1, buffers.count))
        defer { pointers.deallocate() }
        var storage = [UInt8]()
        var offsets: [Int?] = []
        for buffer in buffers {
            if let buffer {
                offsets.append(storage.count)
                storage.append(contentsOf: buffer)
            } else {
                offsets.append(nil)
            }
        }
        storage.append(0)
        let sent = storage.withUnsafeBufferPointer { raw -> Int32 in
            let base = UnsafeRawPointer(raw.baseAddress!)
            for (index, offset) in offsets.enumerated() {
                pointers[index] = offset.map { (base + $0).assumingMemoryBound(to: CChar.self) }
            }
            return lengths.withUnsafeBufferPointer { lengthPointer in
                formats.withUnsafeBufferPointer { formatPointer in
                    PQsendQueryPrepared(connection, name, Int32(buffers.count), pointers, lengthPointer.baseAddress, formatPointer.baseAddress, 1)
                }
            }
        }
        guard sent == 1 else { throw CacheError(.connectionFailed, "PostgreSQL: \(Self.message(connection))", backend: self.backend) }
        return try self.consume(try self.awaitResult(connection), connection)
    }

    private func consume(_ result: OpaquePointer?, _ connection: OpaquePointer) throws(CacheError) -> PostgresRows {
        guard let result else {
            throw CacheError(.connectionFailed, "PostgreSQL: \(Self.message(connection))", backend: self.backend)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) } ?? ""
            let primary = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) } ?? Self.message(connection)
            let code: CacheError.Code
            switch state {
            case "57014": code = .timeout  // query_canceled (statement_timeout)
            case "57P01", "57P02", "57P03", "08000", "08003", "08006": code = .connectionFailed
            default: code = PQstatus(connection) == CONNECTION_OK ? .commandFailed : .connectionFailed
            }
            // The primary message of a failed statement names objects and conditions, never parameter values.
            throw CacheError(code, "PostgreSQL \(state): \(primary)", backend: self.backend)
        }
        var rows: [[[UInt8]?]] = []
        let rowCount = Int(PQntuples(result))
        let columnCount = Int(PQnfields(result))
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [[UInt8]?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                    let value = PQgetvalue(result, Int32(row), Int32(column))!
                    values.append(Array(UnsafeRawBufferPointer(start: value, count: length)))
                }
            }
            rows.append(values)
        }
        let affected = PQcmdTuples(result).map { Int(String(cString: $0)) ?? 0 } ?? 0
        return PostgresRows(rows: rows, affected: affected)
    }

    private static func message(_ connection: OpaquePointer) -> String {
        PQerrorMessage(connection).map { String(cString: $0).trimmingSuffixNewlines } ?? "unknown error"
    }
}
