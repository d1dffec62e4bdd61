import Foundation
import IPAMDProtocol
import Logging
import Synchronization

/// A root-only Unix socket that accepts on its own thread and gives every connection a thread.
/// Connections are short (one CNI call each), so threads are simpler than an event loop here
/// and keep the plugin's request latency at one context switch.
public final class UnixListener: Sendable {
    public let path: String
    let fd: Int32
    /// Written once at shutdown to wake the accept thread out of poll(2).
    let wakeRead: Int32
    let wakeWrite: Int32
    let logger: Logger
    private let inFlight = Mutex(0)
    private let idle = NSCondition()
    private let stopping = Atomic(false)
    private let started = Atomic(false)
    /// Signalled when the accept thread has drained the backlog and closed the socket.
    private let acceptDone = DispatchSemaphore(value: 0)

    /// Binds `path` with mode 0600. A stale socket file (nobody answers on it) is replaced; a
    /// live one means another ipamd is running, which is an error rather than a takeover.
    public init(path: String, logger: Logger) throws(SocketError) {
        self.path = path
        self.logger = logger
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
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { let e = errno; close(fd); throw SocketError("pipe", errno: e) }
        for p in pipeFDs { _ = fcntl(p, F_SETFD, FD_CLOEXEC) }
        self.fd = fd
        wakeRead = pipeFDs[0]
        wakeWrite = pipeFDs[1]
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

    /// Starts accepting; `handle` runs on a connection's own thread and owns the stream.
    public func start(_ handle: @escaping @Sendable (UnixStream) -> Void) {
        started.store(true, ordering: .releasing)
        let t = Thread { [self] in acceptLoop(handle); acceptDone.signal() }
        t.name = "accept \(path)"
        t.start()
    }

    func acceptLoop(_ handle: @escaping @Sendable (UnixStream) -> Void) {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wakeRead, events: Int16(POLLIN), revents: 0)]
        while true {
            if poll(&fds, 2, -1) < 0 { continue }
            if fds[1].revents != 0 { break }
            acceptOne(handle)
        }
        // Clients that connected before the path was removed sit in the backlog: serve them
        // too, so a shutdown never drops a request that was already sent.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        while acceptOne(handle) {}
        close(fd)
    }

    /// Accepts one connection and hands it to a new thread; false when none was pending.
    @discardableResult
    func acceptOne(_ handle: @escaping @Sendable (UnixStream) -> Void) -> Bool {
        let c = accept(fd, nil, nil)
        if c < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { return false }
            if errno != EINTR && errno != ECONNABORTED {
                logger.error("accept failed", metadata: ["socket": "\(path)", "errno": "\(errno)"])
                // EMFILE and friends: back off briefly rather than spinning.
                usleep(10_000)
            }
            return !stopping.load(ordering: .acquiring)
        }
        _ = fcntl(c, F_SETFD, FD_CLOEXEC)
        inFlight.withLock { $0 += 1 }
        let stream = UnixStream(fd: c)
        let t = Thread { [self] in
            handle(stream)
            stream.close()
            idle.lock()
            inFlight.withLock { $0 -= 1 }
            idle.broadcast()
            idle.unlock()
        }
        t.start()
        return true
    }

    /// Stops accepting, waits for in-flight connections to finish, removes the socket file.
    public func shutdown(drainTimeout: Double = 10) {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        // Remove the path first so no new client can connect, then wake the accept thread.
        unlink(path)
        defer { close(wakeRead); close(wakeWrite) }
        guard started.load(ordering: .acquiring) else { close(fd); return }
        var one: UInt8 = 1
        _ = write(wakeWrite, &one, 1)
        acceptDone.wait()
        let deadline = Date().addingTimeInterval(drainTimeout)
        idle.lock()
        while inFlight.withLock({ $0 }) > 0 {
            if !idle.wait(until: deadline) { break }
        }
        idle.unlock()
    }

    public var activeConnections: Int { inFlight.withLock { $0 } }
}
