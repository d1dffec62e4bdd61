import Foundation
import Logging
import NetModel

/// The container credentials endpoint: EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_FULL_URI`
/// with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`) and ECS (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`).
/// The token file is re-read on every fetch: kubelet rotates it.
public struct ContainerCredentialsProvider: AWSCredentialsProvider {
    public let name = "container"
    let uri: String?
    let tokenFile: String?
    let token: String?
    let http: any CloudHTTPTransport
    let logger: Logger
    let retry: RetryPolicy
    let requestTimeout: Duration

    /// The ECS agent's address, to which `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` is relative.
    public static let ecsHost = "http://169.254.170.2"

    public init(environment: [String: String], http: any CloudHTTPTransport, logger: Logger,
                retry: RetryPolicy = .containerCredentials, requestTimeout: Duration = .seconds(5)) {
        if let relative = setting(environment, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            uri = Self.ecsHost + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else {
            uri = setting(environment, "AWS_CONTAINER_CREDENTIALS_FULL_URI")
        }
        tokenFile = setting(environment, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        token = setting(environment, "AWS_CONTAINER_AUTHORIZATION_TOKEN")
        self.http = http; self.logger = logger; self.retry = retry; self.requestTimeout = requestTimeout
    }

    /// Over plain HTTP the token and credentials must stay on the node: loopback, or the ECS and
    /// EKS Pod Identity agents' link-local addresses (the SDKs refuse other hosts likewise).
    static func isAllowed(_ parts: URLParts) -> Bool {
        if parts.scheme == "https" { return true }
        let host = parts.bareHost
        if host == "localhost" || host == "::1" || host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23" { return true }
        if let ip = IPv4Address(host), ip.value >> 24 == 127 { return true }
        return false
    }

    public func credentials() async throws(CloudError) -> AWSCredentials {
        guard let uri else {
            throw .noCredentials(tried: ["container: AWS_CONTAINER_CREDENTIALS_FULL_URI and AWS_CONTAINER_CREDENTIALS_RELATIVE_URI not set"])
        }
        guard let parts = URLParts(uri) else { throw .noCredentials(tried: ["container: \(uri) is not an http(s) URL"]) }
        guard Self.isAllowed(parts) else {
            throw .noCredentials(tried: ["container: \(parts.host) is neither loopback nor the ECS/EKS agent address, refused over http"])
        }
        var headers: [(name: String, value: String)] = [("Accept", "application/json")]
        if let tokenFile {
            let text: String
            do {
                text = try String(contentsOfFile: tokenFile, encoding: .utf8)
            } catch {
                throw .noCredentials(tried: ["container: cannot read the token file \(tokenFile)"])
            }
            headers.append(("Authorization", text.trimmingCharacters(in: .whitespacesAndNewlines)))
        } else if let token {
            headers.append(("Authorization", token))
        }
        let request = CloudHTTPRequest(method: "GET", url: uri, headers: headers, timeout: requestTimeout)
        return try await withRetries(retry, what: "container credentials", url: uri, logger: logger) { (_: Int) throws(CloudError) -> AWSCredentials in
            let resp = try await http.send(request)
            // The body of an error answer may echo what we sent: only the status is kept.
            guard resp.isSuccess else { throw .http(status: resp.status, url: uri) }
            return try CredentialsDocument.parse(resp.body, url: uri, source: name)
        }
    }
}
