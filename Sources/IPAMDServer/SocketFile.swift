#if canImport(Glibc)
import Glibc
#endif
import IPAMDProtocol
import NodeSetup
import SystemIO

/// The file of a listening Unix socket: its directory made, a stale file replaced, a live one
/// refused (another ipamd is serving it: an error, not a takeover), mode 0600 from the start.
enum SocketFile {
    static func prepare(_ path: String) throws(SocketError) {
        // Best effort: a directory that cannot be made fails the bind below, with its errno.
        try? AtomicFile.makeDirectories(AtomicFile.directory(of: path))
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

    /// Runs `bind` with a umask that makes the socket file 0600 from the moment it exists (a
    /// chmod after it would leave a window), then chmods anyway in case the umask was ignored.
    static func bindingPrivately<T>(_ path: String, _ bind: () async throws -> T) async rethrows -> T {
        let old = umask(0o177)
        defer { umask(old); chmod(path, 0o600) }
        return try await bind()
    }
}
