#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

public struct FileError: Error, Sendable, Hashable, CustomStringConvertible {
    public var operation: String
    public var path: String
    public var errno: Int32

    public init(_ operation: String, _ path: String, errno: Int32) { self.operation = operation; self.path = path; self.errno = errno }

    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Whole-file reads and crash-safe replacement: write a temp file in the same directory, fsync,
/// rename over the target, fsync the directory. A reader (or a runtime exec'ing a binary) sees
/// the old file or the new one, never a partial one.
public enum AtomicFile {
    public static func read(_ path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileError("open", path, errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 { out += buf[0..<n]; continue }
            if n == 0 { return out }
            if errno == EINTR { continue }
            throw FileError("read", path, errno: errno)
        }
    }

    /// Replaces `path` with `bytes`, mode `mode`. Returns false (and writes nothing) when the file
    /// already has exactly these bytes and mode.
    @discardableResult
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t) throws(FileError) -> Bool {
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o7777 == mode, Int(st.st_size) == bytes.count, (try? read(path)) == bytes {
            return false
        }
        let dir = directory(of: path)
        try makeDirectories(dir)
        let temp = "\(dir)/.\(basename(of: path)).\(getpid()).tmp"
        unlink(temp)
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw FileError("create", temp, errno: errno) }
        var ok = false
        defer { if !ok { unlink(temp) } }
        do {
            defer { close(fd) }
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
                if n < 0 { if errno == EINTR { continue }; throw FileError("write", temp, errno: errno) }
                off += n
            }
            // The umask may have narrowed the mode given to open.
            guard fchmod(fd, mode) == 0 else { throw FileError("chmod", temp, errno: errno) }
            guard fsync(fd) == 0 else { throw FileError("fsync", temp, errno: errno) }
        }
        guard rename(temp, path) == 0 else { throw FileError("rename", path, errno: errno) }
        ok = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
        return true
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ dir: String) throws(FileError) {
        var path = ""
        for part in dir.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw FileError("mkdir", path, errno: errno) }
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
