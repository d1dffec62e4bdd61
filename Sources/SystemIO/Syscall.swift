#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
@_exported import SystemPackage

// The syscall layer, after swift-nio's System.swift: every read, write, send and recv of the
// project goes through these functions, so EINTR is retried and short transfers are continued
// in exactly one place, and a failure always carries its errno as a typed `Errno`.

/// Runs a call that reports failure as -1 with errno set, retrying while it is interrupted.
@inline(__always)
public func syscall<T: FixedWidthInteger & SignedInteger>(_ body: () -> T) throws(Errno) -> T {
    while true {
        let r = body()
        if r != -1 { return r }
        let e = errno
        if e == EINTR { continue }
        throw Errno(rawValue: e)
    }
}

/// Transfers all of `count` bytes with `transfer(offset, remaining)`, which returns what one
/// call moved (or -1 with errno): continues after short transfers, retries EINTR. A transfer
/// of 0 bytes before the end is reported as `eof`.
public func transferFully(count: Int, _ transfer: (_ offset: Int, _ remaining: Int) -> Int) throws(Errno) -> TransferEnd {
    var offset = 0
    while offset < count {
        let n = try syscall { transfer(offset, count - offset) }
        if n == 0 { return .eof(offset) }
        offset += n
    }
    return .complete
}

public enum TransferEnd: Equatable, Sendable {
    case complete
    /// The peer or file ended after this many bytes.
    case eof(Int)
}

/// The array's bytes to a typed-throwing body (the standard library's accessors rethrow untyped).
@inline(__always)
func withBytes<T>(_ a: [UInt8], _ body: (UnsafeRawBufferPointer) throws(Errno) -> T) throws(Errno) -> T {
    try a.withUnsafeBytes { b in Result { () throws(Errno) -> T in try body(b) } }.get()
}

@inline(__always)
func withMutableBytes<T>(_ a: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> T) throws(Errno) -> T {
    try a.withUnsafeMutableBytes { b in Result { () throws(Errno) -> T in try body(b) } }.get()
}

extension FileDescriptor {
    /// Writes every byte (continuing after short writes). A write that moves nothing is EIO.
    public func writeFully(_ bytes: [UInt8]) throws(Errno) {
        let fd = rawValue
        let end = try withBytes(bytes) { (buf) throws(Errno) in
            try transferFully(count: buf.count) { off, left in Glibc.write(fd, buf.baseAddress! + off, left) }
        }
        if end != .complete { throw Errno.ioError }
    }

    /// Reads until end of file.
    public func readToEnd(chunk: Int = 65536) throws(Errno) -> [UInt8] {
        var out: [UInt8] = []
        while true {
            let got = try readSome(max: chunk)
            if got.isEmpty { return out }
            out += got
        }
    }

    /// `count` bytes, fewer only where the file ends (continuing after short reads).
    public func readFully(count: Int) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: count)
        let fd = rawValue
        let end = try withMutableBytes(&buf) { (b) throws(Errno) in
            try transferFully(count: count) { off, left in Glibc.read(fd, b.baseAddress! + off, left) }
        }
        if case .eof(let got) = end { buf.removeLast(count - got) }
        return buf
    }

    /// One read of at most `max` bytes; empty at end of file.
    public func readSome(max: Int) throws(Errno) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: max)
        let fd = rawValue
        let n = try withMutableBytes(&buf) { (b) throws(Errno) in try syscall { Glibc.read(fd, b.baseAddress, max) } }
        return Array(buf[0..<n])
    }

    /// Opens `path` (O_CLOEXEC always), retrying EINTR.
    public static func open(path: String, _ flags: Int32, mode: mode_t = 0o644) throws(Errno) -> FileDescriptor {
        FileDescriptor(rawValue: try syscall { Glibc.open(path, flags | O_CLOEXEC, mode) })
    }

    /// Closes, ignoring errors: there is nothing a caller could do about them.
    public func closeQuietly() { _ = Glibc.close(rawValue) }
}

/// Whole-file helpers on top of `FileDescriptor`.
public enum FileIO {
    public static func read(path: String) throws(Errno) -> [UInt8] {
        let fd = try FileDescriptor.open(path: path, O_RDONLY)
        defer { fd.closeQuietly() }
        return try fd.readToEnd()
    }
}

extension Errno {
    /// The C library's text for this errno, e.g. "No such file or directory".
    public var text: String { String(cString: strerror(rawValue)) }
}
