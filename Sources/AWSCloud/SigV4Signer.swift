import Crypto
import Foundation

/// AWS Signature Version 4 (header form), as botocore's `SigV4Auth` computes it: a pure function
/// of the request, the credentials, region, service and time, so it is tested byte for byte
/// against botocore.
public enum SigV4Signer {
    public struct SignedRequest: Sendable {
        /// What to send: the caller's headers (minus any stale Authorization, X-Amz-Date or
        /// X-Amz-Security-Token) plus Host, X-Amz-Date, X-Amz-Security-Token and Authorization.
        public var headers: [(name: String, value: String)]
        public var authorization: String
        public var amzDate: String
        /// `host;x-amz-date;...`, as in the Authorization header.
        public var signedHeaders: String
        /// For debugging only: it contains the session token (a signed header), never log it.
        public var canonicalRequest: String
        public var stringToSign: String
    }

    /// Headers botocore leaves unsigned: hop-by-hop ones, and ones proxies or tracing rewrite.
    static let unsignedHeaders: Set<String> = [
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id",
    ]
    /// Set by the signer itself; a caller's (or a previous attempt's) copy is replaced.
    static let signerHeaders: Set<String> = ["authorization", "x-amz-date", "x-amz-security-token"]

    /// `url` is the URL as sent: percent-encoded path and query. The body is signed by its SHA-256.
    public static func sign(method: String, url: String, headers: [(name: String, value: String)], body: [UInt8],
                            credentials: AWSCredentials, region: String, service: String, date: Date) throws(CloudError) -> SignedRequest {
        guard let parts = URLParts(url) else { throw .malformed(url: url, reason: "not an absolute http(s) URL") }
        let amzDate = AWSDate.amzDate(date)
        let day = String(amzDate.prefix(8))

        var outgoing = headers.filter { !signerHeaders.contains($0.name.lowercased()) }
        if !outgoing.contains(where: { $0.name.lowercased() == "host" }) {
            outgoing.insert((name: "Host", value: parts.hostHeader), at: 0)
        }
        outgoing.append((name: "X-Amz-Date", value: amzDate))
        if let token = credentials.sessionToken { outgoing.append((name: "X-Amz-Security-Token", value: token)) }

        // Lower-cased names, values trimmed with inner whitespace runs collapsed, repeated
        // headers joined with "," in the order given; names sorted.
        var grouped: [String: [String]] = [:]
        for h in outgoing {
            let name = h.name.lowercased()
            guard !unsignedHeaders.contains(name) else { continue }
            grouped[name, default: []].append(h.value.split(whereSeparator: \.isWhitespace).joined(separator: " "))
        }
        let names = grouped.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        let canonicalHeaders = names.map { "\($0):\(grouped[$0, default: []].joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let canonicalRequest = [
            method.uppercased(),
            canonicalURI(parts.path),
            canonicalQuery(parts.query),
            canonicalHeaders,
            signedHeaders,
            hex(SHA256.hash(data: body)),
        ].joined(separator: "\n")

        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate, scope, hex(SHA256.hash(data: Array(canonicalRequest.utf8)))].joined(separator: "\n")

        let signingKey = derivedKey(secret: credentials.secretAccessKey, day: day, region: region, service: service)
        let signature = hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: signingKey))
        let authorization = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        outgoing.append((name: "Authorization", value: authorization))
        return SignedRequest(headers: outgoing, authorization: authorization, amzDate: amzDate, signedHeaders: signedHeaders,
                             canonicalRequest: canonicalRequest, stringToSign: stringToSign)
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), service), "aws4_request").
    static func derivedKey(secret: String, day: String, region: String, service: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array(("AWS4" + secret).utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// Dot segments and empty segments removed (as botocore and the AWS services do), then every
    /// byte but unreserved ones and "/" encoded, including the "%" of an already-encoded path:
    /// services other than S3 expect the path encoded twice.
    static func canonicalURI(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        var segments: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            if segment == "." { continue }
            if segment == ".." { if !segments.isEmpty { segments.removeLast() }; continue }
            segments.append(segment)
        }
        var normalized = path.hasPrefix("/") ? "/" : ""
        normalized += segments.joined(separator: "/")
        if path.hasSuffix("/"), !segments.isEmpty { normalized += "/" }
        return URIEncoding.encode(normalized, keepSlash: true)
    }

    /// Each `key=value` pair decoded and re-encoded with RFC 3986 (so `+`, lower-case hex or raw
    /// characters cannot make our string differ from the server's), sorted by key, then value.
    static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        var pairs: [(String, String)] = []
        for piece in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key: Substring, value: Substring
            if let eq = piece.firstIndex(of: "=") {
                key = piece[..<eq]; value = piece[piece.index(after: eq)...]
            } else {
                key = piece; value = ""
            }
            pairs.append((URIEncoding.encode(URIEncoding.decode(key)), URIEncoding.encode(URIEncoding.decode(value))))
        }
        pairs.sort { a, b in
            a.0 != b.0 ? a.0.utf8.lexicographicallyPrecedes(b.0.utf8) : a.1.utf8.lexicographicallyPrecedes(b.1.utf8)
        }
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 0xf)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
