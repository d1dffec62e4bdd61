import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

public struct KubeRequest: Sendable {
    public var method: String
    /// Path and query, e.g. "/api/v1/pods?watch=true".
    public var path: String
    public var headers: [String: String]
    public var body: [UInt8]?
    /// `send`: the whole exchange, body included. `stream`: until the answer's head; a watch's
    /// body then runs until the server ends it (timeoutSeconds), and silence on it is caught by
    /// the transport's read timeout and the watcher's idle watchdog.
    public var timeout: Duration

    public init(method: String = "GET", path: String, headers: [String: String] = [:], body: [UInt8]? = nil, timeout: Duration = .seconds(30)) {
        self.method = method; self.path = path; self.headers = headers; self.body = body; self.timeout = timeout
    }
}

public struct KubeResponse: Sendable {
    public var status: Int
    public var body: [UInt8]
    public init(status: Int, body: [UInt8]) { self.status = status; self.body = body }
}

/// Raw HTTP to the API server. Behind a protocol so the watch and patch logic is tested
/// without a server, and the real one (HTTPS) against the test API server.
public protocol KubeTransport: Sendable {
    func send(_ request: KubeRequest) async throws(KubeError) -> KubeResponse
    /// For a 2xx answer, hands the body to `onBytes` piece by piece as it arrives, until the server
    /// ends it, and returns the status with an empty body; any other answer is returned whole.
    func stream(_ request: KubeRequest, onBytes: ([UInt8]) throws(KubeError) -> Void) async throws(KubeError) -> KubeResponse
    func shutdown() async
}

/// HTTPS through async-http-client, trusting only the cluster's CA (or the system roots when a
/// kubeconfig names none).
public final class HTTPClientTransport: KubeTransport {
    let client: HTTPClient
    let base: String
    let logger: Logger

    /// `readTimeout`: the longest silence on a connection with a request outstanding before it is
    /// dropped. Above the ~1 min bookmark interval of a real API server, so a quiet watch survives
    /// but a half-open connection does not.
    public init(connection: KubeConnection, logger: Logger, readTimeout: Duration = .seconds(150)) throws(KubeError) {
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            if let ca = connection.caPEM { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca)) }
            if let cert = connection.clientCertificatePEM, let key = connection.clientKeyPEM {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
            }
        } catch {
            throw .config("\(connection.origin): cannot load certificate or key: \(error)")
        }
        if connection.insecureSkipTLSVerify { tls.certificateVerification = .none }
        // Closing a watch sends close_notify to a server that is not reading (it waits for
        // events); do not wait the default 5 s for its answer.
        tls.shutdownTimeout = .milliseconds(300)
        var config = HTTPClient.Configuration(tlsConfiguration: tls)
        // A failing TLS handshake is retried until the connect timeout; the API server is normally close by.
        config.timeout = .init(connect: .seconds(5), read: TimeAmount(readTimeout))
        // A watch holds its connection for minutes; HTTP/1.1 keeps it out of the way of short requests.
        config.httpVersion = .http1Only
        // The client's own debug logs are per connection and request: too chatty for ipamd's debug level.
        var quieter = logger
        quieter.logLevel = max(logger.logLevel, .info)
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config, backgroundActivityLogger: quieter)
        base = connection.server
        self.logger = quieter
    }

    func makeRequest(_ r: KubeRequest) -> HTTPClientRequest {
        var req = HTTPClientRequest(url: base + r.path)
        req.method = HTTPMethod(rawValue: r.method)
        for (k, v) in r.headers { req.headers.add(name: k, value: v) }
        if let b = r.body { req.body = .bytes(ByteBuffer(bytes: b)) }
        return req
    }

    /// The client's timeout ends at the answer's head; the deadline around it also covers the
    /// body, so a server that stalls mid-answer cannot hold a list or a patch forever.
    public func send(_ request: KubeRequest) async throws(KubeError) -> KubeResponse {
        let what = "\(request.method) \(request.path)"
        return try await withDeadline(request.timeout, onTimeout: { .transport("\(what): no complete answer within \(request.timeout)") }) {
            () throws(KubeError) in
            do {
                let resp = try await self.client.execute(self.makeRequest(request), timeout: .init(request.timeout), logger: self.logger)
                let body = try await resp.body.collect(upTo: 64 << 20)
                return KubeResponse(status: Int(resp.status.code), body: Array(buffer: body))
            } catch {
                throw Self.classify(error, what)
            }
        }
    }

    public func stream(_ request: KubeRequest, onBytes: ([UInt8]) throws(KubeError) -> Void) async throws(KubeError) -> KubeResponse {
        let what = "\(request.method) \(request.path)"
        let resp: HTTPClientResponse
        do {
            resp = try await client.execute(makeRequest(request), timeout: .init(request.timeout), logger: logger)
        } catch {
            throw Self.classify(error, what)
        }
        let status = Int(resp.status.code)
        do {
            guard (200..<300).contains(status) else {
                let body = try await withDeadline(request.timeout, onTimeout: { .transport("\(what): error answer not complete within \(request.timeout)") }) {
                    () throws(KubeError) in
                    do { return try await resp.body.collect(upTo: 1 << 20) } catch { throw Self.classify(error, what) }
                }
                return KubeResponse(status: status, body: Array(buffer: body))
            }
            for try await chunk in resp.body { try onBytes(Array(buffer: chunk)) }
        } catch let e as KubeError {
            throw e
        } catch {
            throw .transport("\(what): stream ended: \(error)")
        }
        return KubeResponse(status: status, body: [])
    }

    /// TLS failures apart from network ones: they need a fixed CA, not a better network.
    static func classify(_ error: any Error, _ what: String) -> KubeError {
        if error is NIOSSLError || error is BoringSSLError || error is NIOSSLExtraError {
            return .tls("\(what): \(error)")
        }
        if let e = error as? HTTPClientError, e == .readTimeout {
            return .transport("\(what): connection silent past the read timeout")
        }
        return .transport("\(what): \(error)")
    }

    public func shutdown() async { try? await client.shutdown() }
}

extension TimeAmount {
    init(_ d: Duration) {
        let (s, atto) = d.components
        self = .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}
