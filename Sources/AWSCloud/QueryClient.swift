import Foundation
import Logging

/// The AWS query protocol that EC2 and STS speak: a form-encoded POST of `Action`, `Version` and
/// the parameters, answered with XML; errors are XML documents too. Optionally SigV4-signed
/// (STS's AssumeRoleWithWebIdentity is not: it is how one gets credentials in the first place).
public struct AWSQueryClient: Sendable {
    public struct Signing: Sendable {
        public var credentials: any AWSCredentialsProvider
        public var region: String
        public var service: String
        public init(credentials: any AWSCredentialsProvider, region: String, service: String) {
            self.credentials = credentials; self.region = region; self.service = service
        }
    }

    public let endpoint: String
    public let version: String
    let signing: Signing?
    let http: any CloudHTTPTransport
    let retry: RetryPolicy
    let attemptTimeout: Duration
    let counter: CallCounter
    let logger: Logger
    let now: @Sendable () -> Date

    public init(endpoint: String, version: String, signing: Signing?, http: any CloudHTTPTransport, logger: Logger,
                retry: RetryPolicy = .awsAPI, attemptTimeout: Duration = .seconds(10), counter: CallCounter = CallCounter(),
                now: @escaping @Sendable () -> Date = { Date() }) {
        var e = endpoint
        while e.hasSuffix("/") { e.removeLast() }
        self.endpoint = e; self.version = version; self.signing = signing; self.http = http; self.logger = logger
        self.retry = retry; self.attemptTimeout = attemptTimeout; self.counter = counter; self.now = now
    }

    /// The answer's root element (`<ActionResponse>`). Retries throttling, 5xx and timeouts within
    /// `retry`; the parameters are never logged (STS's carry the web identity token).
    public func call(action: String, parameters: [(String, String)]) async throws(CloudError) -> XMLTreeNode {
        let url = endpoint + "/"
        let body = Array(URIEncoding.form([("Action", action), ("Version", version)] + parameters).utf8)
        return try await withRetries(retry, what: action, url: url, logger: logger) { (attempt: Int) throws(CloudError) -> XMLTreeNode in
            var headers: [(name: String, value: String)] = [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")]
            if let signing {
                // Asked on every attempt: a long retry may outlive the credentials it started with.
                let credentials = try await signing.credentials.credentials()
                headers = try SigV4Signer.sign(method: "POST", url: url, headers: headers, body: body, credentials: credentials,
                                               region: signing.region, service: signing.service, date: now()).headers
            }
            counter.record(action)
            let started = ContinuousClock.now
            let resp: CloudHTTPResponse
            do throws(CloudError) {
                resp = try await http.send(CloudHTTPRequest(method: "POST", url: url, headers: headers, body: body, timeout: attemptTimeout))
            } catch {
                counter.finished(APICallRecord(api: action, duration: .now - started, status: nil, errorCode: error.metricCode))
                throw error
            }
            guard resp.isSuccess else {
                let error = Self.error(from: resp, url: url)
                counter.finished(APICallRecord(api: action, duration: .now - started, status: resp.status, errorCode: error.metricCode))
                throw error
            }
            counter.finished(APICallRecord(api: action, duration: .now - started, status: resp.status, errorCode: nil))
            guard let root = XMLTreeNode.parse(resp.body) else {
                throw .malformed(url: url, reason: "\(action) answer is not XML")
            }
            return root
        }
    }

    /// EC2's `<Response><Errors><Error><Code>…` and STS's `<ErrorResponse><Error><Code>…` both
    /// become `.api`; anything else is a plain `.http` (a proxy's or load balancer's page).
    static func error(from resp: CloudHTTPResponse, url: String) -> CloudError {
        guard let root = XMLTreeNode.parse(resp.body), let error = root.descendant(named: "Error"),
              let code = error.text("Code"), !code.isEmpty else {
            return .http(status: resp.status, url: url)
        }
        let requestID = root.descendant(named: "RequestID")?.text ?? root.descendant(named: "RequestId")?.text
        return .api(status: resp.status, code: code, message: error.text("Message") ?? "", requestID: requestID)
    }
}
