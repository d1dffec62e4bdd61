import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

public struct KubeRequest: Sendable {
    public var method: String
    /// Path and query, e.g. "/api/v1/pods?watch=true".
    public var path: String
    public var headers: [String: String]
    public var body: [UInt8]?
    /// Until the answer's head; a watch's body then runs until the server ends it (timeoutSeconds).
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

    public init(connection: KubeConnection) throws(KubeError) {
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
        // A failing TLS handshake is retried until this; the API server is normally close by.
        config.timeout = .init(connect: .seconds(5))
        // A watch holds its connection for minutes; HTTP/1.1 keeps it out of the way of short requests.
        config.httpVersion = .http1Only
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
        base = connection.server
    }

    func makeRequest(_ r: KubeRequest) -> HTTPClientRequest {
        var req = HTTPClientRequest(url: base + r.path)
        req.method = HTTPMethod(rawValue: r.method)
        for (k, v) in r.headers { req.headers.add(name: k, value: v) }
        if let b = r.body { req.body = .bytes(ByteBuffer(bytes: b)) }
        return req
    }

    public func send(_ request: KubeRequest) async throws(KubeError) -> KubeResponse {
        do {
            let resp = try await client.execute(makeRequest(request), timeout: .init(request.timeout))
            let body = try await resp.body.collect(upTo: 64 << 20)
            return KubeResponse(status: Int(resp.status.code), body: Array(buffer: body))
        } catch {
            throw .transport("\(request.method) \(request.path): \(error)")
        }
    }

    public func stream(_ request: KubeRequest, onBytes: ([UInt8]) throws(KubeError) -> Void) async throws(KubeError) -> KubeResponse {
        let resp: HTTPClientResponse
        do {
            resp = try await client.execute(makeRequest(request), timeout: .init(request.timeout))
        } catch {
            throw .transport("\(request.method) \(request.path): \(error)")
        }
        let status = Int(resp.status.code)
        do {
            guard (200..<300).contains(status) else {
                return KubeResponse(status: status, body: Array(buffer: try await resp.body.collect(upTo: 1 << 20)))
            }
            for try await chunk in resp.body { try onBytes(Array(buffer: chunk)) }
        } catch let e as KubeError {
            throw e
        } catch {
            throw .transport("\(request.method) \(request.path): stream ended: \(error)")
        }
        return KubeResponse(status: status, body: [])
    }

    public func shutdown() async { try? await client.shutdown() }
}

extension TimeAmount {
    init(_ d: Duration) {
        let (s, atto) = d.components
        self = .nanoseconds(s * 1_000_000_000 + atto / 1_000_000_000)
    }
}
