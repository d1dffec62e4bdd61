import Foundation
import Yams

/// Where the API server is and how to authenticate to it.
public struct KubeConnection: Sendable {
    /// "https://host:port", no trailing slash.
    public var server: String
    /// PEM of the CA(s) that signed the server's certificate; the only roots trusted. nil means
    /// the system's roots (a kubeconfig without certificate-authority).
    public var caPEM: [UInt8]?
    public var insecureSkipTLSVerify = false
    public var token: TokenSource?
    public var clientCertificatePEM: [UInt8]?
    public var clientKeyPEM: [UInt8]?
    /// For logs: "in-cluster" or the kubeconfig path and context.
    public var origin: String

    public init(server: String, caPEM: [UInt8]?, token: TokenSource?, origin: String) {
        self.server = server; self.caPEM = caPEM; self.token = token; self.origin = origin
    }

    public static let defaultServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

    /// In-cluster: KUBERNETES_SERVICE_HOST/PORT, and `token` and `ca.crt` in the service account
    /// directory (`serviceAccountDir`, overridable for tests). The token file is re-read when it
    /// rotates.
    public static func inCluster(env: [String: String], serviceAccountDir: String = defaultServiceAccountDir) throws(KubeError) -> KubeConnection {
        guard let host = env["KUBERNETES_SERVICE_HOST"], !host.isEmpty, let port = env["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw .config("KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set: not running in a pod; set KUBECONFIG to run outside a cluster")
        }
        guard let p = Int(port), (1...65535).contains(p) else { throw .config("KUBERNETES_SERVICE_PORT: \"\(port)\" is not a port") }
        let caPath = serviceAccountDir + "/ca.crt"
        let ca: [UInt8]
        do throws(FileError) { ca = try FileError.read(caPath) } catch { throw .file(what: "in-cluster CA", error) }
        let tokenPath = serviceAccountDir + "/token"
        do throws(FileError) { _ = try FileError.read(tokenPath) } catch { throw .file(what: "in-cluster token", error) }
        let h = host.contains(":") ? "[\(host)]" : host  // IPv6 service address
        return KubeConnection(server: "https://\(h):\(p)", caPEM: ca, token: TokenSource(file: tokenPath), origin: "in-cluster")
    }

    /// A kubeconfig file (YAML or JSON), its current context. Supported: cluster server,
    /// certificate-authority(-data), insecure-skip-tls-verify; user token, tokenFile,
    /// client-certificate(-data) and client-key(-data). Relative paths are relative to the file.
    public static func kubeconfig(path: String, context: String? = nil) throws(KubeError) -> KubeConnection {
        let data: [UInt8]
        do throws(FileError) { data = try FileError.read(path) } catch { throw .file(what: "kubeconfig", error) }
        let file: KubeconfigFile
        do {
            file = try YAMLDecoder().decode(KubeconfigFile.self, from: String(decoding: data, as: UTF8.self))
        } catch {
            throw .config("kubeconfig \(path) is not a valid kubeconfig: \(error)")
        }
        let dir = (path as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String { p.hasPrefix("/") || dir.isEmpty ? p : dir + "/" + p }
        func readFile(_ p: String, _ key: String) throws(KubeError) -> [UInt8] {
            do throws(FileError) { return try FileError.read(resolve(p)) } catch { throw .file(what: "\(key) of kubeconfig \(path):", error) }
        }
        func base64(_ s: String, _ key: String) throws(KubeError) -> [UInt8] {
            guard let d = Data(base64Encoded: s.filter { !$0.isWhitespace }) else { throw .config("kubeconfig \(path): \(key) is not base64") }
            return Array(d)
        }

        guard let ctxName = context ?? file.currentContext, !ctxName.isEmpty else {
            throw .config("kubeconfig \(path): no current-context")
        }
        guard let ctx = file.contexts?.first(where: { $0.name == ctxName })?.context else {
            throw .config("kubeconfig \(path): context \"\(ctxName)\" not found")
        }
        guard let cluster = file.clusters?.first(where: { $0.name == ctx.cluster })?.cluster else {
            throw .config("kubeconfig \(path): cluster \"\(ctx.cluster ?? "")\" of context \"\(ctxName)\" not found")
        }
        guard var server = cluster.server, server.hasPrefix("https://") else {
            throw .config("kubeconfig \(path): cluster \"\(ctx.cluster ?? "")\": server must be an https:// URL, got \"\(cluster.server ?? "")\"")
        }
        while server.hasSuffix("/") { server.removeLast() }
        var ca: [UInt8]?
        if let d = cluster.certificateAuthorityData { ca = try base64(d, "certificate-authority-data") }
        else if let f = cluster.certificateAuthority { ca = try readFile(f, "certificate-authority") }
        var conn = KubeConnection(server: server, caPEM: ca, token: nil, origin: "kubeconfig \(path) context \(ctxName)")
        conn.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false

        if let userName = ctx.user {
            guard let user = file.users?.first(where: { $0.name == userName })?.user else {
                throw .config("kubeconfig \(path): user \"\(userName)\" of context \"\(ctxName)\" not found")
            }
            if let t = user.token, !t.isEmpty { conn.token = TokenSource(token: t) }
            else if let f = user.tokenFile { conn.token = TokenSource(file: resolve(f)) }
            if let d = user.clientCertificateData { conn.clientCertificatePEM = try base64(d, "client-certificate-data") }
            else if let f = user.clientCertificate { conn.clientCertificatePEM = try readFile(f, "client-certificate") }
            if let d = user.clientKeyData { conn.clientKeyPEM = try base64(d, "client-key-data") }
            else if let f = user.clientKey { conn.clientKeyPEM = try readFile(f, "client-key") }
            if (conn.clientCertificatePEM == nil) != (conn.clientKeyPEM == nil) {
                throw .config("kubeconfig \(path): user \"\(userName)\": client certificate and key must be given together")
            }
            if conn.token == nil && conn.clientCertificatePEM == nil && user.exec != nil {
                throw .config("kubeconfig \(path): user \"\(userName)\" uses an exec credential plugin, which ipamd does not run; give a token, tokenFile or client certificate")
            }
        }
        return conn
    }
}

/// The kubeconfig keys we read.
struct KubeconfigFile: Decodable {
    struct NamedCluster: Decodable { var name: String; var cluster: Cluster }
    struct Cluster: Decodable {
        var server: String?
        var certificateAuthority: String?
        var certificateAuthorityData: String?
        var insecureSkipTLSVerify: Bool?
        enum CodingKeys: String, CodingKey {
            case server, certificateAuthority = "certificate-authority", certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        }
    }
    struct NamedContext: Decodable { var name: String; var context: Context }
    struct Context: Decodable { var cluster: String?; var user: String? }
    struct NamedUser: Decodable { var name: String; var user: User }
    struct User: Decodable {
        var token: String?
        var tokenFile: String?
        var clientCertificate: String?
        var clientCertificateData: String?
        var clientKey: String?
        var clientKeyData: String?
        var exec: IgnoredValue?
        enum CodingKeys: String, CodingKey {
            case token, tokenFile, clientCertificate = "client-certificate", clientCertificateData = "client-certificate-data"
            case clientKey = "client-key", clientKeyData = "client-key-data", exec
        }
    }
    /// Present or not; its content does not matter to us.
    struct IgnoredValue: Decodable { init(from decoder: Decoder) throws {} }

    var currentContext: String?
    var clusters: [NamedCluster]?
    var contexts: [NamedContext]?
    var users: [NamedUser]?
    enum CodingKeys: String, CodingKey { case currentContext = "current-context", clusters, contexts, users }
}
