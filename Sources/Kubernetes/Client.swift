import Foundation
import Logging
import Synchronization

/// Kubernetes API calls on top of a transport: authentication (bearer token re-read after a
/// 401), Status errors, JSON.
public final class KubeClient: Sendable {
    public let transport: any KubeTransport
    let token: TokenSource?
    let logger: Logger
    private let requests = Atomic<Int>(0)

    public init(transport: any KubeTransport, token: TokenSource?, logger: Logger) {
        self.transport = transport; self.token = token; self.logger = logger
    }

    /// Requests sent so far (each retry counts); watches count once when opened.
    public var requestCount: Int { requests.load(ordering: .relaxed) }

    func authorized(_ r: KubeRequest) -> KubeRequest {
        var r = r
        r.headers["Accept"] = r.headers["Accept"] ?? "application/json"
        if let token {
            if let t = token.current() {
                r.headers["Authorization"] = "Bearer \(t)"
            } else if let e = token.readError {
                // Sent without a token: the 401 that follows would hide why.
                logger.warning("cannot read the service account token; request sent without it", metadata: ["error": "\(e)"])
            }
        }
        return r
    }

    /// A 2xx answer's body; otherwise throws `.status`. A 401 with a token file re-reads the
    /// file and tries once more: the token may just have rotated.
    public func call(_ request: KubeRequest) async throws(KubeError) -> [UInt8] {
        var resp = try await sendCounted(request)
        if resp.status == 401, let token, token.path != nil {
            logger.info("API server refused the token; re-reading it", metadata: ["path": "\(token.path ?? "")"])
            token.invalidate()
            resp = try await sendCounted(request)
        }
        guard (200..<300).contains(resp.status) else { throw Self.statusError(resp) }
        return resp.body
    }

    private func sendCounted(_ request: KubeRequest) async throws(KubeError) -> KubeResponse {
        requests.add(1, ordering: .relaxed)
        return try await transport.send(authorized(request))
    }

    /// Opens a watch and feeds its lines to `onLine` until the server ends the stream.
    /// `onActivity` is called for every piece of the body received (an idle watchdog's heartbeat).
    public func watch(_ request: KubeRequest, onActivity: () -> Void = {}, onLine: ([UInt8]) throws(KubeError) -> Void) async throws(KubeError) {
        var attempt = 0
        while true {
            attempt += 1
            requests.add(1, ordering: .relaxed)
            var splitter = LineSplitter()
            let resp = try await transport.stream(authorized(request)) { (bytes) throws(KubeError) in
                onActivity()
                for line in try splitter.feed(bytes) { try onLine(line) }
            }
            if resp.status == 401, attempt == 1, let token, token.path != nil {
                token.invalidate()
                continue
            }
            guard (200..<300).contains(resp.status) else { throw Self.statusError(resp) }
            if let last = splitter.remainder { try onLine(last) }
            return
        }
    }

    public func get<T: Decodable>(_ type: T.Type, path: String, timeout: Duration = .seconds(30)) async throws(KubeError) -> T {
        try Self.decode(T.self, try await call(KubeRequest(path: path, timeout: timeout)))
    }

    /// JSON merge patch (RFC 7386). Put metadata.resourceVersion in the patch for optimistic
    /// concurrency: the server answers 409 Conflict when the object changed since it was read.
    /// Returns the patched object's JSON.
    @discardableResult
    public func mergePatch(path: String, patch: [UInt8], timeout: Duration = .seconds(30)) async throws(KubeError) -> [UInt8] {
        try await call(KubeRequest(method: "PATCH", path: path, headers: ["Content-Type": "application/merge-patch+json"], body: patch, timeout: timeout))
    }

    /// JSON bytes of a JSONSerialization value (dictionaries, arrays, strings, numbers).
    public static func jsonBytes(_ object: Any) throws(KubeError) -> [UInt8] {
        do { return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) } catch {
            throw .decode("cannot encode JSON: \(error)")
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, _ body: [UInt8]) throws(KubeError) -> T {
        do { return try JSONDecoder().decode(T.self, from: Data(body)) } catch {
            throw .decode("\(T.self): \(error)")
        }
    }

    static func statusError(_ resp: KubeResponse) -> KubeError {
        let s = try? JSONDecoder().decode(Status.self, from: Data(resp.body))
        return .status(code: resp.status, reason: s?.reason ?? "", message: s?.message ?? String(decoding: resp.body.prefix(300), as: UTF8.self))
    }
}

/// Percent-encoding for query values (field selectors contain '=' and ',').
public func queryEscape(_ s: String) -> String {
    var allowed = CharacterSet.alphanumerics
    allowed.insert(charactersIn: "-._~")
    return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
}
