import Foundation
import Synchronization

/// The bearer token. A service account token is a file that kubelet rewrites before it expires
/// (bound tokens live about an hour), so a file token is re-read whenever the file changed (one
/// stat per request) and on demand after a 401.
public final class TokenSource: Sendable {
    enum Origin: Sendable { case fixed(String), file(String) }
    struct Cached { var stamp: [Int] = []; var token: String?; var error: FileError? }

    let origin: Origin
    private let cached = Mutex(Cached())

    public init(token: String) { origin = .fixed(token) }
    public init(file: String) { origin = .file(file) }

    public var path: String? { if case .file(let p) = origin { p } else { nil } }

    /// The token to send now; nil when the file cannot be read (the request then goes without one
    /// and the 401 says so).
    public func current() -> String? {
        switch origin {
        case .fixed(let t): return t
        case .file(let path):
            let now = Self.stamp(path)
            return cached.withLock { c in
                if c.stamp != now || c.token == nil {
                    do throws(FileError) {
                        c.token = try Self.read(path)
                        c.error = nil
                    } catch {
                        c.token = nil
                        c.error = error
                    }
                    c.stamp = now
                }
                return c.token
            }
        }
    }

    /// Why the token file could not be read the last time (errno kept); nil after a good read.
    public var readError: FileError? { cached.withLock { $0.error } }

    /// Forgets the cached token, e.g. after a 401 (the file may have been replaced within the
    /// same second on a filesystem with coarse timestamps).
    public func invalidate() { cached.withLock { $0 = Cached() } }

    static func stamp(_ path: String) -> [Int] {
        var st = stat()
        guard stat(path, &st) == 0 else { return [] }
        return [Int(st.st_ino), Int(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec]
    }

    /// nil for an empty file (the request then goes without a token).
    static func read(_ path: String) throws(FileError) -> String? {
        let t = String(decoding: try FileError.read(path), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return t.isEmpty ? nil : t
    }
}
