#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemIO

/// A failed socket syscall, errno kept.
public struct SocketError: Error, Sendable, Hashable, CustomStringConvertible {
    public var operation: String
    public var errno: Int32

    public init(_ operation: String, errno: Int32) { self.operation = operation; self.errno = errno }

    public var description: String { "\(operation): \(String(cString: strerror(errno))) (errno \(errno))" }

    /// Nobody listens there: ipamd is not running (ENOENT: no socket file; ECONNREFUSED: stale file).
    public var isUnreachable: Bool { errno == ENOENT || errno == ECONNREFUSED }
}

/// A connected, blocking AF_UNIX stream socket. Blocking I/O is what both sides want: the
/// plugin makes one call and exits; the server gives each connection its own thread.
/// @unchecked Sendable: a stream is handed from the accepting thread to exactly one handler
/// thread and used only there.
public final class UnixStream: @unchecked Sendable {
    public let fd: Int32
    private var closed = false

    public init(fd: Int32) { self.fd = fd }

    deinit { close() }

    public func close() {
        if !closed { closed = true; _ = Glibc.close(fd) }
    }

    /// Connects to `path`, giving up after `timeoutSeconds` for each read and write.
    public static func connect(path: String, timeoutSeconds: Int = 30) throws(SocketError) -> UnixStream {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket", errno: errno) }
        let s = UnixStream(fd: fd)
        // Before connect: a full backlog makes an AF_UNIX connect wait, bounded by SO_SNDTIMEO.
        s.setTimeout(seconds: timeoutSeconds)
        var addr = try UnixStream.address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw SocketError("connect \(path)", errno: errno) }
        return s
    }

    public func setTimeout(seconds: Int) {
        var tv = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public static func address(_ path: String) throws(SocketError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { throw SocketError("socket path too long: \(path)", errno: ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return addr
    }

    public func writeAll(_ bytes: [UInt8]) throws(SocketError) {
        do throws(Errno) { try SocketIO.sendFully(fd, bytes) } catch { throw SocketError("send", errno: error.rawValue) }
    }

    /// Reads exactly `count` bytes; nil on a clean EOF before the first byte.
    public func readExactly(_ count: Int) throws(SocketError) -> [UInt8]? {
        do throws(Errno) { return try SocketIO.receive(fd, exactly: count) } catch {
            throw SocketError(error == .connectionReset ? "recv: connection closed mid-frame" : "recv", errno: error.rawValue)
        }
    }

    /// Reads whatever is available (at least 1 byte) or nil at EOF.
    public func readSome(max: Int = 65536) throws(SocketError) -> [UInt8]? {
        do throws(Errno) {
            let got = try SocketIO.receiveSome(fd, max: max)
            return got.isEmpty ? nil : got
        } catch { throw SocketError("recv", errno: error.rawValue) }
    }

    public enum FrameRead: Equatable, Sendable {
        case frame(version: UInt16, payload: [UInt8])
        case eof
        case badMagic
        case tooLarge(Int)
    }

    public func readFrame() throws(SocketError) -> FrameRead {
        guard let header = try readExactly(Framing.headerSize) else { return .eof }
        switch Framing.parseHeader(header) {
        case .badMagic: return .badMagic
        case .tooLarge(let n): return .tooLarge(n)
        case .valid(let version, let length):
            if length == 0 { return .frame(version: version, payload: []) }
            guard let payload = try readExactly(length) else { throw SocketError("recv: connection closed mid-frame", errno: ECONNRESET) }
            return .frame(version: version, payload: payload)
        }
    }
}
