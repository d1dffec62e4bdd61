import Foundation
import Logging
import Synchronization
import SystemIO

/// The kernel's link notifications as an AsyncStream: one element per burst of changes. The
/// blocking wait runs on a thread of its own (never on the concurrency pool); `finish()` wakes it
/// through a pipe and ends the stream.
public final class LinkEventStream: Sendable {
    public let events: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let socket: LinkEventSocket
    private let wake: (read: Int32, write: Int32)
    private let finished = Mutex(false)

    /// Subscribes now, in the calling thread's network namespace: a link created after this call
    /// is reported even if the first listing has not happened yet.
    public init(logger: Logger) throws(Errno) {
        socket = try LinkEventSocket()
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw Errno(rawValue: errno) }
        // Not inherited by anything ipamd execs.
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC); _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        wake = (fds[0], fds[1])
        (events, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let (socket, wake, continuation) = (socket, wake, continuation)
        let thread = Thread {
            while true {
                do {
                    switch try socket.wait(timeoutMillis: -1, wake: wake.read) {
                    case .changed: continuation.yield()
                    case .timedOut: continue
                    case .woken: continuation.finish(); return
                    }
                } catch {
                    logger.error("link notifications failed; the trunk is looked for again only at the next start", metadata: ["error": "\(error)"])
                    continuation.finish()
                    return
                }
            }
        }
        thread.name = "link-events"
        thread.start()
    }

    public func finish() {
        guard finished.withLock({ f in defer { f = true }; return !f }) else { return }
        var b: UInt8 = 1
        _ = write(wake.write, &b, 1)
    }

    deinit {
        finish()
        // The thread may still be in poll on `wake.read`; the fds stay open for the process's
        // life rather than racing it (one stream per ipamd run).
    }
}
