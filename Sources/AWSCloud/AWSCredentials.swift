import Foundation

/// AWS credentials. Every text form of this value (description, debug description, mirror, so
/// `print`, string interpolation, `dump` and loggers) hides the secret and the session token,
/// and shows only the ends of the access key id: enough to tell keys apart in a log.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// nil: they do not expire (long-term keys from the environment).
    public var expiration: Date?
    /// The provider that produced them ("environment", "container", ...), for logs.
    public var source: String

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil, source: String = "static") {
        self.accessKeyID = accessKeyID; self.secretAccessKey = secretAccessKey; self.sessionToken = sessionToken
        self.expiration = expiration; self.source = source
    }

    /// `ASIA…MPLE` for a 20-character key id; shorter ids (not AWS's shape) are hidden entirely.
    public var redactedAccessKeyID: String {
        accessKeyID.count >= 16 ? "\(accessKeyID.prefix(4))…\(accessKeyID.suffix(4))" : "<redacted>"
    }

    public var description: String {
        var s = "AWSCredentials(source: \(source), accessKeyID: \(redactedAccessKeyID), secretAccessKey: <redacted>"
        s += sessionToken == nil ? ", sessionToken: none" : ", sessionToken: <redacted>"
        s += expiration.map { ", expiration: \(AWSDate.iso8601($0)))" } ?? ")"
        return s
    }

    public var debugDescription: String { description }

    public var customMirror: Mirror {
        Mirror(self, children: [
            "source": source, "accessKeyID": redactedAccessKeyID, "secretAccessKey": "<redacted>",
            "sessionToken": sessionToken == nil ? "none" : "<redacted>",
            "expiration": expiration.map(AWSDate.iso8601) ?? "never",
        ], displayStyle: .struct)
    }
}

/// One source of credentials. Providers do not cache; `AWSCredentialsChain` does.
public protocol AWSCredentialsProvider: Sendable {
    /// Short name for logs and `CloudError.noCredentials`.
    var name: String { get }
    /// Fresh credentials, or why there are none (`.noCredentials` when this source is not configured).
    func credentials() async throws(CloudError) -> AWSCredentials
}

/// Fixed credentials (tests, or a caller that resolved them elsewhere).
public struct StaticCredentialsProvider: AWSCredentialsProvider {
    public let name = "static"
    let value: AWSCredentials
    public init(_ credentials: AWSCredentials) { value = credentials }
    public func credentials() async throws(CloudError) -> AWSCredentials { value }
}

/// The JSON shape the instance-role (IMDS) and container endpoints answer with.
struct CredentialsDocument: Decodable {
    var Code: String?
    var AccessKeyId: String?
    var SecretAccessKey: String?
    var Token: String?
    var Expiration: String?

    /// Parsing errors never quote the document: it holds the secret.
    static func parse(_ body: [UInt8], url: String, source: String) throws(CloudError) -> AWSCredentials {
        let doc: CredentialsDocument
        do {
            doc = try JSONDecoder().decode(CredentialsDocument.self, from: Data(body))
        } catch {
            throw .malformed(url: url, reason: "credentials answer is not the expected JSON object")
        }
        if let code = doc.Code, code != "Success" {
            throw .malformed(url: url, reason: "credentials answer has Code \(code.prefix(64))")
        }
        guard let key = doc.AccessKeyId, !key.isEmpty, let secret = doc.SecretAccessKey, !secret.isEmpty else {
            throw .malformed(url: url, reason: "credentials answer lacks AccessKeyId or SecretAccessKey")
        }
        var expiration: Date?
        if let text = doc.Expiration {
            guard let d = AWSDate.parseISO8601(text) else {
                throw .malformed(url: url, reason: "credentials Expiration is not an ISO 8601 time")
            }
            expiration = d
        }
        let token = doc.Token.flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token, expiration: expiration, source: source)
    }
}
