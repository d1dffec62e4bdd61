import Foundation
#if canImport(Glibc)
import Glibc
#endif
import IPAMDProtocol
import Logging
import Synchronization

/// A root-only Unix socket served by a pool of threads that each block in accept(2) and serve
/// the connection they get (leader/follower): no hand-off between threads, so a request costs
/// no context switch beyond the client's own. An acceptor that takes the last idle slot starts
/// another, so concurrency stays unbounded (an AddNetwork may wait seconds for its annotation
/// while others are served); acceptors idle for `idleTimeout` seconds retire down to `keepIdle`.
/// Connections are short (one CNI call each), so threads are simpler than an event loop here.
public final class UnixListener: Sendable {
    public let path: String
    let fd: Int32
    let logger: Logger
    let keepIdle: Int

    private struct Pool {
        /// Threads blocked in (or about to enter) accept(2).
        var idle = 0
        /// Threads in the accept loop, idle or serving.
        var threads = 0
        /// Connections being served.
        var inFlight = 0
    }
    private let pool = Mutex(Pool())
    /// Broadcast whenever a connection ends or a thread leaves; shutdown waits on it.
    private let changed = NSCondition()
    private let stopping = Atomic(false)
    private let started = Atomic(false)

    /// Binds `path` with mode 0600. A stale socket file (nobody answers on it) is replaced; a
    /// live one means another ipamd is running, which is an error rather than a takeover.
    public init(path: String, logger: Logger, idleTimeout: Int = 30, keepIdle: Int = 2) throws(SocketError) {
        self.path = path
        self.logger = logger
        self.keepIdle = keepIdle
        try Self.prepare(path: path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket", errno: errno) }
        var addr = try UnixStream.address(path)
        // umask makes the file 0600 from the moment it exists; chmod below is belt and braces.
        let oldMask = umask(0o177)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindErrno = errno
        umask(oldMask)
        guard rc == 0 else { close(fd); throw SocketError("bind \(path)", errno: bindErrno) }
        chmod(path, 0o600)
        guard listen(fd, 512) == 0 else { let e = errno; close(fd); throw SocketError("listen \(path)", errno: e) }
        // accept(2) honours the receive timeout: how an idle acceptor notices it may retire.
        var idle = timeval(tv_sec: Int(idleTimeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle, socklen_t(MemoryLayout<timeval>.size))
        self.fd = fd
    }

    static func prepare(path: String) throws(SocketError) {
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) != S_IFSOCK {
            throw SocketError("\(path) exists and is not a socket", errno: EEXIST)
        }
        if let probe = try? UnixStream.connect(path: path, timeoutSeconds: 1) {
            probe.close()
            throw SocketError("another process is serving \(path)", errno: EADDRINUSE)
        }
        unlink(path)
    }

    /// Starts accepting; `handle` runs on an acceptor thread and owns the stream.
    public func start(_ handle: @escaping @Sendable (UnixStream) -> Void) {
        started.store(true, ordering: .releasing)
        for _ in 0..<max(keepIdle, 1) { spawnAcceptor(handle) }
    }

    private func spawnAcceptor(_ handle: @escaping @Sendable (UnixStream) -> Void) {
        pool.withLock { $0.idle += 1; $0.threads += 1 }
        let t = Thread { [self] in acceptLoop(handle) }
        t.name = "serve \(path)"
        t.start()
    }

    private func acceptLoop(_ handle: @escaping @Sendable (UnixStream) -> Void) {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 {
                let e = errno
                // Stopping, or idle for a whole timeout while enough others are idle: leave.
                // Decided under the lock, so two acceptors timing out together never both take
                // the last idle slots.
                let stopping = stopping.load(ordering: .acquiring)
                let timedOut = e == EAGAIN || e == EWOULDBLOCK
                changed.lock()
                let leave = pool.withLock { p -> Bool in
                    guard stopping || (timedOut && p.idle > keepIdle) else { return false }
                    p.idle -= 1; p.threads -= 1
                    return true
                }
                if leave { changed.broadcast() }
                changed.unlock()
                if leave { return }
                if e == EAGAIN || e == EWOULDBLOCK { continue }
                if e != EINTR && e != ECONNABORTED {
                    logger.error("accept failed", metadata: ["socket": "\(path)", "errno": "\(e)"])
                    // EMFILE and friends: back off briefly rather than spinning.
                    usleep(10_000)
                }
                continue
            }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            let lastIdle = pool.withLock { p -> Bool in
                p.idle -= 1
                p.inFlight += 1
                return p.idle == 0
            }
            if lastIdle && !stopping.load(ordering: .acquiring) { spawnAcceptor(handle) }
            let stream = UnixStream(fd: c)
            handle(stream)
            stream.close()
            changed.lock()
            pool.withLock { $0.inFlight -= 1; $0.idle += 1 }
            changed.broadcast()
            changed.unlock()
        }
    }

    /// Stops accepting, serves what is already queued, waits for in-flight connections to
    /// finish (at most `drainTimeout` seconds) and removes the socket file.
    public func shutdown(drainTimeout: Double = 10) {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Remove the path first so no new client can connect.
        unlink(path)
        guard started.load(ordering: .acquiring) else { close(fd); return }
        let deadline = Date().addingTimeInterval(drainTimeout)
        // Clients that connected before the path was removed sit in the backlog: let the
        // acceptors take them, so a shutdown never drops a request that was already sent.
        var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&pending, 1, 0) > 0, Date() < deadline { usleep(1_000) }
        // Wakes every thread blocked in accept(2) with EINVAL; they leave once done serving.
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
        changed.lock()
        while pool.withLock({ $0.threads }) > 0 {
            if !changed.wait(until: deadline) { break }
        }
        changed.unlock()
        close(fd)
    }

    public var activeConnections: Int { pool.withLock { $0.inFlight } }

    /// Threads in the accept loop, idle or serving.
    public var threadCount: Int { pool.withLock { $0.threads } }
}
