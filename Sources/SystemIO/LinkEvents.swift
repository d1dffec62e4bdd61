#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A netlink socket subscribed to the kernel's link notifications (RTMGRP_LINK) in the calling
/// thread's network namespace. It only says *that* links changed; the reader lists the links
/// again, so no message is parsed here and a lost notification (ENOBUFS on overflow) is just
/// another "something changed".
public final class LinkEventSocket: Sendable {
    public let fd: Int32

    public init() throws(Errno) {
        fd = try syscall { socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */) }
        var addr = NetlinkSocketAddress(family: UInt16(AF_NETLINK), pad: 0, pid: 0, groups: 1 /* RTMGRP_LINK */)
        let bound = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<NetlinkSocketAddress>.size)) }
        }
        if bound != 0 {
            let e = Errno(rawValue: errno)
            close(fd)
            throw e
        }
        // A burst of link changes (a node with many pods) must not overflow before it is read:
        // an overflow (ENOBUFS) ends the event loop's reading.
        var size: Int32 = 1 << 20
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(fd) }

    /// A second descriptor of the same subscription (close-on-exec), for an owner that closes
    /// its own (an event loop); notifications come to whichever reads first.
    public func duplicateDescriptor() throws(Errno) -> Int32 {
        try syscall { fcntl(fd, F_DUPFD_CLOEXEC, 0) }
    }

    /// Waits until a notification arrives, `wake` becomes readable (stop), or `timeoutMillis`
    /// passes (-1: no limit). Drains every queued notification before returning.
    public func wait(timeoutMillis: Int32, wake: Int32 = -1) throws(Errno) -> LinkEventWait {
        var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
        let n = try syscall { poll(&fds, wake >= 0 ? 2 : 1, timeoutMillis) }
        if n == 0 { return .timedOut }
        if wake >= 0, fds[1].revents != 0 { return .woken }
        var buf = [UInt8](repeating: 0, count: 32768)
        while true {
            let got = recv(fd, &buf, buf.count, Int32(MSG_DONTWAIT))
            if got > 0 { continue }
            if got < 0 && errno == EINTR { continue }
            // EAGAIN: drained. ENOBUFS: the kernel dropped some; the caller re-lists anyway.
            if got < 0 && errno != EAGAIN && errno != ENOBUFS { throw Errno(rawValue: errno) }
            return .changed
        }
    }
}

/// `struct sockaddr_nl` (linux/netlink.h, which Glibc's module does not import): same layout.
struct NetlinkSocketAddress {
    var family: UInt16
    var pad: UInt16
    var pid: UInt32
    var groups: UInt32
}

public enum LinkEventWait: Sendable, Equatable {
    case changed, timedOut, woken
}
