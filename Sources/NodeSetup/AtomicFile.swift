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
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw FileError("stat", path, errno: errno) }
        // One allocation of the file's size (the plugin is ~15 MB): no regrowth while reading.
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var off = 0
        while off < out.count {
            let n = out.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + off, $0.count - off) }
            if n > 0 { off += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw FileError("read", path, errno: errno)
        }
        // A file that shrank meanwhile: keep what was there.
        if off < out.count { out.removeLast(out.count - off) }
        return out
    }

    /// Replaces `path` with `bytes`, mode `mode`. Returns false (and writes nothing) when the file
    /// already has exactly these bytes and mode.
    @discardableResult
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t) throws(FileError) -> Bool {
        if hasMode(path, mode), (try? read(path)) == bytes { return false }
        try replace(path, mode: mode) { (fd, temp) throws(FileError) in
            var off = 0
            while off < bytes.count {
                let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, bytes.count - off) }
                if n < 0 { if errno == EINTR { continue }; throw FileError("write", temp, errno: errno) }
                off += n
            }
        }
        return true
    }

    /// Replaces `path` with a copy of `source` (streamed: the plugin is ~15 MB), mode `mode`.
    /// Returns false (and writes nothing) when the two files already match, bytes and mode.
    @discardableResult
    public static func replace(_ path: String, withCopyOf source: String, mode: mode_t) throws(FileError) -> Bool {
        let src = open(source, O_RDONLY | O_CLOEXEC)
        guard src >= 0 else { throw FileError("open", source, errno: errno) }
        defer { close(src) }
        if hasMode(path, mode), try sameContent(src, source, path) { return false }
        guard lseek(src, 0, SEEK_SET) == 0 else { throw FileError("seek", source, errno: errno) }
        try replace(path, mode: mode) { (fd, temp) throws(FileError) in
            var buf = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let n = buf.withUnsafeMutableBytes { Glibc.read(src, $0.baseAddress, $0.count) }
                if n == 0 { return }
                if n < 0 { if errno == EINTR { continue }; throw FileError("read", source, errno: errno) }
                var off = 0
                while off < n {
                    let m = buf.withUnsafeBytes { write(fd, $0.baseAddress! + off, n - off) }
                    if m < 0 { if errno == EINTR { continue }; throw FileError("write", temp, errno: errno) }
                    off += m
                }
            }
        }
        return true
    }

    static func hasMode(_ path: String, _ mode: mode_t) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & 0o7777 == mode
    }

    /// Whether the open `src` has the same bytes as the file at `path` (absent: false).
    static func sameContent(_ src: Int32, _ source: String, _ path: String) throws(FileError) -> Bool {
        let dst = open(path, O_RDONLY | O_CLOEXEC)
        guard dst >= 0 else { return false }
        defer { close(dst) }
        var a = stat(), b = stat()
        guard fstat(src, &a) == 0 else { throw FileError("stat", source, errno: errno) }
        guard fstat(dst, &b) == 0, a.st_size == b.st_size else { return false }
        let chunk = 1 << 20
        var x = [UInt8](repeating: 0, count: chunk), y = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = x.withUnsafeMutableBytes { Glibc.read(src, $0.baseAddress, chunk) }
            guard n >= 0 else { throw FileError("read", source, errno: errno) }
            if n == 0 { return true }
            var got = 0
            while got < n {
                let m = y.withUnsafeMutableBytes { Glibc.read(dst, $0.baseAddress! + got, n - got) }
                guard m > 0 else { return false }
                got += m
            }
            if memcmp(x, y, n) != 0 { return false }
        }
    }

    /// The crash-safe replacement itself: `fill` writes the temp file's content.
    static func replace(_ path: String, mode: mode_t, fill: (Int32, String) throws(FileError) -> Void) throws(FileError) {
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
            try fill(fd, temp)
            // The umask may have narrowed the mode given to open.
            guard fchmod(fd, mode) == 0 else { throw FileError("chmod", temp, errno: errno) }
            guard fsync(fd) == 0 else { throw FileError("fsync", temp, errno: errno) }
        }
        guard rename(temp, path) == 0 else { throw FileError("rename", path, errno: errno) }
        ok = true
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }

    /// `mkdir -p`.
    public static func makeDirectories(_ dir: String) throws(FileError) {
        var path = ""
        for part in dir.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw FileError("mkdir", path, errno: errno) }
        }
    }

    public static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func basename(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }
}
