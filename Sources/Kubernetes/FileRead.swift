import Foundation

/// A file that could not be read, with the errno that says why (missing, permission, ...).
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var errno: Int32

    public init(path: String, errno: Int32) { self.path = path; self.errno = errno }

    public var description: String { "\(path): \(String(cString: strerror(errno))) (errno \(errno))" }

    /// The whole file. POSIX rather than FileManager, which would drop the errno.
    public static func read(_ path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError(path: path, errno: Foundation.errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = buf.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if Foundation.errno == EINTR { continue }
                throw FileError(path: path, errno: Foundation.errno)
            }
            if n == 0 { return out }
            out += buf[..<n]
        }
    }
}
