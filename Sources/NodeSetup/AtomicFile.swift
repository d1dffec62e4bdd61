#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import SystemIO

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
        do throws(Errno) { return try FileIO.read(path: path) } catch { throw FileError("read", path, errno: error.rawValue) }
    }

    /// Replaces `path` with `bytes`, mode `mode`, without reading it first (for files that
    /// change on every write, where the comparison below would only cost a read).
    public static func write(_ path: String, _ bytes: [UInt8], mode: mode_t) throws(FileError) {
        try replace(path, mode: mode) { (fd, temp) throws(FileError) in
            do throws(Errno) { try fd.writeFully(bytes) } catch { throw FileError("write", temp, errno: error.rawValue) }
        }
    }

    /// Replaces `path` with `bytes`, mode `mode`. Returns false (and writes nothing) when the file
    /// already has exactly these bytes and mode.
    @discardableResult
    public static func replace(_ path: String, with bytes: [UInt8], mode: mode_t) throws(FileError) -> Bool {
        if hasMode(path, mode), (try? read(path)) == bytes { return false }
        try write(path, bytes, mode: mode)
        return true
    }

    /// Replaces `path` with a copy of `source` (streamed: the plugin is ~15 MB), mode `mode`.
    /// Returns false (and writes nothing) when the two files already match, bytes and mode.
    @discardableResult
    public static func replace(_ path: String, withCopyOf source: String, mode: mode_t) throws(FileError) -> Bool {
        let src: FileDescriptor
        do throws(Errno) { src = try FileDescriptor.open(path: source, O_RDONLY) } catch { throw FileError("open", source, errno: error.rawValue) }
        defer { src.closeQuietly() }
        if hasMode(path, mode), try sameContent(src, source, path) { return false }
        guard lseek(src.rawValue, 0, SEEK_SET) == 0 else { throw FileError("seek", source, errno: errno) }
        try replace(path, mode: mode) { (fd, temp) throws(FileError) in
            while true {
                let chunk: [UInt8]
                do throws(Errno) { chunk = try src.readFully(count: 1 << 20) } catch { throw FileError("read", source, errno: error.rawValue) }
                if chunk.isEmpty { return }
                do throws(Errno) { try fd.writeFully(chunk) } catch { throw FileError("write", temp, errno: error.rawValue) }
            }
        }
        return true
    }

    static func hasMode(_ path: String, _ mode: mode_t) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && st.st_mode & 0o7777 == mode
    }

    /// Whether the open `src` has the same bytes as the file at `path` (absent: false).
    static func sameContent(_ src: FileDescriptor, _ source: String, _ path: String) throws(FileError) -> Bool {
        guard let dst = try? FileDescriptor.open(path: path, O_RDONLY) else { return false }
        defer { dst.closeQuietly() }
        var a = stat(), b = stat()
        guard fstat(src.rawValue, &a) == 0 else { throw FileError("stat", source, errno: errno) }
        guard fstat(dst.rawValue, &b) == 0, a.st_size == b.st_size else { return false }
        while true {
            let x: [UInt8]
            do throws(Errno) { x = try src.readFully(count: 1 << 20) } catch { throw FileError("read", source, errno: error.rawValue) }
            guard let y = try? dst.readFully(count: x.count), x == y else { return false }
            if x.isEmpty { return true }
        }
    }

    /// The crash-safe replacement itself: `fill` writes the temp file's content.
    static func replace(_ path: String, mode: mode_t, fill: (FileDescriptor, String) throws(FileError) -> Void) throws(FileError) {
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
            try fill(FileDescriptor(rawValue: fd), temp)
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
