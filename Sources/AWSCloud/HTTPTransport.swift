import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1

/// One HTTP exchange as the cloud clients need it: small documents, read whole.
public struct CloudHTTPRequest: Sendable {
    public var method: String
    public var url: String
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// The whole exchange, answer body included, must finish within this.
    public var timeout: Duration

    public init(method: String, url: String, headers: [(name: String, value: String)] = [], body: [UInt8] = [], timeout: Duration) {
        self.method = method; self.url = url; self.headers = headers; self.body = body; self.timeout = timeout
    }
}

public struct CloudHTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8]) {
        self.status = status; self.headers = headers; self.body = body
    }

    public var text: String { String(decoding: body, as: UTF8.self) }
    public var isSuccess: Bool { (200..<300).contains(status) }
}

/// Raw HTTP under IMDS, the credentials providers, EC2 and STS. Behind a protocol so retry,
/// paging and parsing are tested with canned answers; the real one is `AsyncHTTPClientTransport`.
public protocol CloudHTTPTransport: Sendable {
    /// Any HTTP answer is returned (status checks are the caller's); only a missing answer throws:
    /// `.timeout` past the request's deadline, `.transport` for connection failures.
    func send(_ request: CloudHTTPRequest) async throws(CloudError) -> CloudHTTPResponse
}

/// The one `HTTPClient` of the process, shared by every cloud client (the caller owns and shuts it down).
public struct AsyncHTTPClientTransport: CloudHTTPTransport {
    public let client: HTTPClient
    let logger: Logger
    /// Larger answers are refused: the biggest we read is a DescribeNetworkInterfaces page.
    let maxBodyBytes: Int

    public init(client: HTTPClient, logger: Logger, maxBodyBytes: Int = 16 << 20) {
        self.client = client; self.maxBodyBytes = maxBodyBytes
        // The client's own debug logs are per connection and request: too chatty for ipamd's debug level.
        var quieter = logger
        quieter.logLevel = max(logger.logLevel, .info)
        self.logger = quieter
    }

    public func send(_ request: CloudHTTPRequest) async throws(CloudError) -> CloudHTTPResponse {
        let url = request.url
        return try await withCloudDeadline(request.timeout, onTimeout: { .timeout(url: url) }, url: url) { () throws(CloudError) in
            var req = HTTPClientRequest(url: request.url)
            req.method = HTTPMethod(rawValue: request.method)
            for h in request.headers { req.headers.add(name: h.name, value: h.value) }
            if !request.body.isEmpty { req.body = .bytes(ByteBuffer(bytes: request.body)) }
            do {
                let resp = try await client.execute(req, timeout: TimeAmount(request.timeout), logger: logger)
                let body = try await resp.body.collect(upTo: maxBodyBytes)
                return CloudHTTPResponse(status: Int(resp.status.code), headers: resp.headers.map { ($0.name, $0.value) },
                                         body: Array(buffer: body))
            } catch {
                throw Self.classify(error, url: url)
            }
        }
    }

    /// Timeouts apart from other failures: callers and tests decide on the case.
    static func classify(_ error: any Error, url: String) -> CloudError {
        if let e = error as? HTTPClientError,
           [.deadlineExceeded, .readTimeout, .connectTimeout, .writeTimeout, .getConnectionFromPoolTimeout].contains(e) {
            return .timeout(url: url)
        }
        if error is CancellationError { return .transport(url: url, reason: "cancelled") }
        if let e = error as? HTTPClientError, e == .cancelled { return .transport(url: url, reason: "cancelled") }
        return .transport(url: url, reason: String(describing: error))
    }
}

extension AsyncHTTPClientTransport {
    /// Over async-http-client's process-wide `HTTPClient.shared` (never shut down), for tools and
    /// tests that have no client of their own to pass.
    public static func shared(logger: Logger) -> AsyncHTTPClientTransport {
        AsyncHTTPClientTransport(client: .shared, logger: logger)
    }
}
