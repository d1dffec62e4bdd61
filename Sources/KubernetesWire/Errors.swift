import SystemIO

/// Everything the Kubernetes client can fail with, typed so callers decide: retry, re-list, or stop.
public enum KubeError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The configuration (in-cluster files, kubeconfig) is unusable; the message names the file or key.
    case config(String)
    /// A file the configuration names cannot be read; `what` says which (kubeconfig, CA, ...).
    case file(what: String, FileError)
    /// Connecting failed, the connection dropped, or an answer took too long.
    case transport(String)
    /// The TLS handshake failed: usually the server's certificate is not signed by the CA we trust
    /// (or our client certificate is refused). Retrying helps only once the CA is fixed.
    case tls(String)
    /// The server answered with a non-success status; `reason` is the Kubernetes Status reason.
    case status(code: Int, reason: String, message: String)
    /// The answer was not the JSON we expect.
    case decode(String)

    public var description: String {
        switch self {
        case .config(let m): "kubernetes config: \(m)"
        case .file(let what, let e): "kubernetes config: cannot read \(what) \(e)"
        case .transport(let m): "kubernetes transport: \(m)"
        case .tls(let m): "kubernetes TLS: \(m) (is the API server's certificate signed by the configured CA: ca.crt / certificate-authority?)"
        case .status(let c, let r, let m): "kubernetes API answered \(c)\(r.isEmpty ? "" : " \(r)"): \(m)"
        case .decode(let m): "kubernetes API answer not understood: \(m)"
        }
    }

    /// 410 Gone: the resourceVersion is too old; the only remedy is a fresh list.
    public var isGone: Bool { if case .status(410, _, _) = self { true } else { false } }
    public var isConflict: Bool { if case .status(409, _, _) = self { true } else { false } }
    public var isNotFound: Bool { if case .status(404, _, _) = self { true } else { false } }
    public var isTLS: Bool { if case .tls = self { true } else { false } }
}

/// A file that could not be read, with the errno that says why (missing, permission, ...).
public struct FileError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var errno: Int32

    public init(path: String, errno: Int32) { self.path = path; self.errno = errno }

    public var description: String { "\(path): \(Errno(rawValue: errno).text) (errno \(errno))" }

    /// The whole file, through the syscall layer (FileManager would drop the errno).
    public static func read(_ path: String) throws(FileError) -> [UInt8] {
        do throws(Errno) { return try FileIO.read(path: path) } catch { throw FileError(path: path, errno: error.rawValue) }
    }
}
