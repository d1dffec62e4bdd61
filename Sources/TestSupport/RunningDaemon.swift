import IPAMDCore
import IPAMDProtocol
import IPAMDServer
import Logging
import ServiceLifecycle

/// ipamd's servers bound and running in-process under a service group, as ipamd's main runs them;
/// `stop()` shuts them down gracefully (what SIGTERM does).
public final class RunningDaemon: Sendable {
    public let daemon: Daemon
    let group: ServiceGroup
    let task: Task<Void, Never>

    public init(_ daemon: Daemon, logger: Logger = quiet) {
        self.daemon = daemon
        group = ServiceGroup(configuration: ServiceGroupConfiguration(services: daemon.services, logger: logger))
        let group = self.group
        task = Task { try? await group.run() }
    }

    public static func start(config: IPAMDConfig, source: any PodENISource, trunk: any TrunkLocator, registry: PodRegistry = PodRegistry(),
                             inventory: NodeInventory = NodeInventory()) async throws -> RunningDaemon {
        RunningDaemon(try await Daemon.bind(config: config, source: source, trunk: trunk, registry: registry, inventory: inventory, logger: quiet))
    }

    /// Graceful shutdown; returns once every server has finished.
    public func stop() async {
        await group.triggerGracefulShutdown()
        await task.value
    }
}

/// One HTTP/1.1 exchange over a Unix socket (the debug socket), read by its Content-Length.
public struct HTTPExchange: Sendable {
    public var status: Int
    public var headers: [String: String]
    public var body: [UInt8]

    public var text: String { String(decoding: body, as: UTF8.self) }

    /// Sends `request` as written (so tests can send malformed ones) and reads one response.
    public static func raw(unixSocket path: String, _ request: String) throws -> HTTPExchange {
        let s = try UnixStream.connect(path: path, timeoutSeconds: 10)
        defer { s.close() }
        try s.writeAll(Array(request.utf8))
        return try read(s, bodyless: request.hasPrefix("HEAD "))
    }

    public static func get(unixSocket path: String, _ target: String, method: String = "GET") throws -> HTTPExchange {
        try raw(unixSocket: path, "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\n\r\n")
    }

    /// Reads one response: the head, then exactly Content-Length bytes (the connection may stay open).
    public static func read(_ s: UnixStream, bodyless: Bool = false) throws -> HTTPExchange {
        var buf: [UInt8] = []
        let end: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        while headEnd == nil {
            guard let chunk = try s.readSome() else { throw SocketError("recv: closed before the response head", errno: 104) }
            buf += chunk
            if buf.count >= 4 { headEnd = (0...(buf.count - 4)).first { Array(buf[$0..<($0 + 4)]) == end } }
        }
        let head = String(decoding: buf[..<headEnd!], as: UTF8.self).split(separator: "\r\n")
        let status = Int(head.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        var headers: [String: String] = [:]
        for line in head.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: " ")
        }
        var body = Array(buf[(headEnd! + 4)...])
        // A HEAD response announces the length of a body it does not send.
        let length = bodyless ? 0 : Int(headers["content-length"] ?? "") ?? 0
        while body.count < length {
            guard let chunk = try s.readSome() else { break }
            body += chunk
        }
        return HTTPExchange(status: status, headers: headers, body: Array(body.prefix(length)))
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}
