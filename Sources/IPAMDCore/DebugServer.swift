import Foundation
import IPAMDProtocol
import Logging

/// The introspection endpoint: plain HTTP/1.1 over a Unix socket, one request per connection,
/// so `curl --unix-socket <path> http://localhost/v1/pods` works.
public struct DebugConnectionHandler: Sendable {
    let registry: PodRegistry
    /// Lists the pods it knows (Kubernetes: every pod on the node) for /v1/pods.
    let source: (any PodENISource)?
    let logger: Logger

    public init(registry: PodRegistry, source: (any PodENISource)? = nil, logger: Logger) {
        self.registry = registry; self.source = source; self.logger = logger
    }

    public func serve(_ s: UnixStream) {
        s.setTimeout(seconds: 10)
        var buf: [UInt8] = []
        let end: [UInt8] = [13, 10, 13, 10]
        do {
            while !buf.ends(containing: end) {
                guard buf.count < 16384, let chunk = try s.readSome() else { return }
                buf += chunk
            }
            let head = String(decoding: buf, as: UTF8.self)
            let (status, body) = route(requestLine: head.split(separator: "\r\n", maxSplits: 1).first.map(String.init) ?? "")
            let bodyBytes = Array(body.utf8)
            let response = "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(bodyBytes.count)\r\nConnection: close\r\n\r\n"
            try s.writeAll(Array(response.utf8) + bodyBytes)
        } catch {
            logger.debug("debug connection ended", metadata: ["error": "\(error)"])
        }
    }

    func route(requestLine: String) -> (String, String) {
        let parts = requestLine.split(separator: " ")
        guard parts.count >= 2 else { return ("400 Bad Request", #"{"error":"malformed request line"}"#) }
        guard parts[0] == "GET" else { return ("405 Method Not Allowed", #"{"error":"only GET is supported"}"#) }
        let path = parts[1].split(separator: "?").first.map(String.init) ?? ""
        switch path {
        case "/v1/pods":
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys, .prettyPrinted]
            let pods = PodView.merge(source: source?.podViews() ?? [], served: registry.all)
            let data = (try? enc.encode(pods)) ?? Data("[]".utf8)
            return ("200 OK", String(decoding: data, as: UTF8.self) + "\n")
        case "/healthz", "/v1/health":
            return ("200 OK", #"{"status":"ok"}"# + "\n")
        default:
            return ("404 Not Found", #"{"error":"unknown path; try /v1/pods or /healthz"}"# + "\n")
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(containing pattern: [UInt8]) -> Bool {
        guard count >= pattern.count else { return false }
        for i in 0...(count - pattern.count) where Array(self[i..<(i + pattern.count)]) == pattern { return true }
        return false
    }
}
