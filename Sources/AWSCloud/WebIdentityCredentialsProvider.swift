import Foundation
import Logging

/// IAM roles for service accounts (IRSA): the projected service-account token in
/// `AWS_WEB_IDENTITY_TOKEN_FILE` exchanged for role credentials with STS
/// `AssumeRoleWithWebIdentity` (unsigned: the token is the proof). The file is re-read on every
/// fetch, since kubelet rotates it.
public struct WebIdentityCredentialsProvider: AWSCredentialsProvider {
    public let name = "web-identity"
    let tokenFile: String?
    let roleARN: String?
    let sessionName: String?
    let sts: AWSQueryClient
    let now: @Sendable () -> Date

    public static let stsVersion = "2011-06-15"

    /// `region` picks the regional STS endpoint unless `AWS_ENDPOINT_URL_STS`/`AWS_ENDPOINT_URL` is set.
    public init(environment: [String: String], region: String, http: any CloudHTTPTransport, logger: Logger,
                retry: RetryPolicy = .awsAPI, attemptTimeout: Duration = .seconds(10), now: @escaping @Sendable () -> Date = { Date() }) {
        tokenFile = setting(environment, "AWS_WEB_IDENTITY_TOKEN_FILE")
        roleARN = setting(environment, "AWS_ROLE_ARN")
        sessionName = setting(environment, "AWS_ROLE_SESSION_NAME")
        sts = AWSQueryClient(endpoint: Self.stsEndpoint(environment: environment, region: region), version: Self.stsVersion,
                             signing: nil, http: http, logger: logger, retry: retry, attemptTimeout: attemptTimeout, now: now)
        self.now = now
    }

    public func credentials() async throws(CloudError) -> AWSCredentials {
        guard let tokenFile, let roleARN else {
            throw .noCredentials(tried: ["web-identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set"])
        }
        let token: String
        do {
            token = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw .noCredentials(tried: ["web-identity: cannot read the token file \(tokenFile)"])
        }
        // The SDKs name the session after the time when none is given.
        let session = sessionName ?? "aws-sg-pods-\(Int(now().timeIntervalSince1970))"
        let root = try await sts.call(action: "AssumeRoleWithWebIdentity",
                                      parameters: [("RoleArn", roleARN), ("RoleSessionName", session), ("WebIdentityToken", token)])
        let url = sts.endpoint + "/"
        guard let c = root.first("AssumeRoleWithWebIdentityResult/Credentials"),
              let key = c.text("AccessKeyId"), !key.isEmpty, let secret = c.text("SecretAccessKey"), !secret.isEmpty else {
            throw .malformed(url: url, reason: "AssumeRoleWithWebIdentity answer lacks Credentials")
        }
        var expiration: Date?
        if let text = c.text("Expiration") {
            guard let d = AWSDate.parseISO8601(text) else { throw .malformed(url: url, reason: "Expiration is not an ISO 8601 time") }
            expiration = d
        }
        let sessionToken = c.text("SessionToken").flatMap { $0.isEmpty ? nil : $0 }
        return AWSCredentials(accessKeyID: key, secretAccessKey: secret, sessionToken: sessionToken, expiration: expiration, source: name)
    }
}
