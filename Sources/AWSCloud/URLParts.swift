/// The pieces of an absolute http(s) URL that signing and Host headers need, split as Python's
/// `urlsplit` does (botocore signs from that). Path and query are kept as written.
struct URLParts: Sendable, Hashable {
    var scheme: String
    /// Lower-cased; an IPv6 literal keeps its brackets.
    var host: String
    var port: Int?
    var path: String
    var query: String?

    init?(_ url: String) {
        guard let sep = url.range(of: "://") else { return nil }
        let scheme = url[..<sep.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else { return nil }
        self.scheme = scheme
        var rest = url[sep.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        let afterAuthority = rest[authorityEnd...]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var hostPart = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            hostPart = authority[...close]
            let tail = authority[authority.index(after: close)...]
            if tail.hasPrefix(":") { portText = tail.dropFirst() } else if !tail.isEmpty { return nil }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        guard !hostPart.isEmpty else { return nil }
        host = hostPart.lowercased()
        if let portText, !portText.isEmpty {
            guard portText.allSatisfy({ $0.isASCII && $0.isNumber }), let p = Int(portText), p <= 65535 else { return nil }
            port = p
        } else {
            port = nil
        }
        if let q = afterAuthority.firstIndex(of: "?") {
            path = String(afterAuthority[..<q])
            query = String(afterAuthority[afterAuthority.index(after: q)...])
        } else {
            path = String(afterAuthority)
            query = nil
        }
    }

    var defaultPort: Int { scheme == "https" ? 443 : 80 }

    /// The Host header: the port only when it is not the scheme's default (as HTTP clients send it).
    var hostHeader: String {
        if let port, port != defaultPort { return "\(host):\(port)" }
        return host
    }

    /// The host without IPv6 brackets, for address checks.
    var bareHost: String {
        host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
    }
}
