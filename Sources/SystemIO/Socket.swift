#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Stream-socket transfers through the same retry loop as files (Syscall.swift). send(2) with
/// MSG_NOSIGNAL: a peer that went away is EPIPE, not a SIGPIPE that kills the process.
public enum SocketIO {
    public static func sendFully(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        let end = try withBytes(bytes) { (buf) throws(Errno) in
            try transferFully(count: buf.count) { off, left in send(fd, buf.baseAddress! + off, left, Int32(MSG_NOSIGNAL)) }
        }
        if end != .complete { throw Errno.brokenPipe }
    }

    /// Exactly `count` bytes; nil on a clean end of stream before the first byte, ECONNRESET
    /// when the stream ends part-way.
    public static func receive(_ fd: Int32, exactly count: Int) throws(Errno) -> [UInt8]? {
        var buf = [UInt8](repeating: 0, count: count)
        let end = try withMutableBytes(&buf) { (b) throws(Errno) in
            try transferFully(count: count) { off, left in recv(fd, b.baseAddress! + off, left, 0) }
        }
        switch end {
        case .complete: return buf
        case .eof(0): return nil
        case .eof: throw Errno.connectionReset
        }
    }

    /// What one recv(2) returns, at most `max` bytes; empty at end of stream.
    public static func receiveSome(_ fd: Int32, max: Int) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let n = try withMutableBytes(&buf) { (b) throws(Errno) in try syscall { recv(fd, b.baseAddress, max, 0) } }
        return Array(buf[0..<n])
    }
}
