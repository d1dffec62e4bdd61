#if canImport(Glibc)
import Glibc
#endif
import IPAMDCore
import IPAMDProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The RPC socket the plugin calls: SwiftNIO on a root-only Unix socket, one task per connection
/// so an AddNetwork waiting for its pod's details holds no thread. Graceful shutdown: the socket
/// file goes first (no new client can connect), waiting AddNetworks are answered "shutting down"
/// (CNI code 11), idle connections close, in-flight requests finish.
public final class RPCServer: Service, Sendable {
    typealias Connection = (channel: NIOAsyncChannel<RPCInbound, ByteBuffer>, state: ConnectionState)

    public let path: String
    private let server: NIOAsyncChannel<Connection, Never>
    private let handler: RPCHandler
    private let connections = ConnectionSet()
    private let logger: Logger

    private init(path: String, server: NIOAsyncChannel<Connection, Never>, handler: RPCHandler, logger: Logger) {
        self.path = path; self.server = server; self.handler = handler; self.logger = logger
    }

    /// Binds `path` (mode 0600). Serving starts with `run()`.
    public static func bind(path: String, handler: RPCHandler, idleTimeout: TimeAmount = .seconds(30),
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) async throws -> RPCServer {
        try SocketFile.prepare(path)
        let server = try await SocketFile.bindingPrivately(path) {
            try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 512)
                .bind(unixDomainSocketPath: path) { child in
                    child.eventLoop.makeCompletedFuture { () throws -> Connection in
                        let state = ConnectionState(channel: child)
                        try child.pipeline.syncOperations.addHandlers([
                            IdleStateHandler(readTimeout: idleTimeout), IdleCloser(state: state), ArrivalMarker(state: state),
                            ByteToMessageHandler(RPCFrameDecoder()),
                        ])
                        return (try NIOAsyncChannel<RPCInbound, ByteBuffer>(wrappingChannelSynchronously: child), state)
                    }
                }
        }
        return RPCServer(path: path, server: server, handler: handler, logger: logger)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                do {
                    try await server.executeThenClose { inbound in
                        for try await connection in inbound {
                            group.addTask { await self.serve(connection) }
                        }
                    }
                } catch {
                    logger.error("RPC socket failed", metadata: ["socket": "\(path)", "error": "\(error)"])
                }
            }
        } onGracefulShutdown: {
            self.stopAccepting()
        }
        unlink(path)
        logger.info("RPC socket closed", metadata: ["socket": "\(path)"])
    }

    /// Connections being served (tests).
    public var connectionCount: Int { connections.count }

    public func stopAccepting() {
        logger.info("shutting down: RPC socket removed, waiting AddNetworks answered with code 11, in-flight requests finishing",
                    metadata: ["socket": "\(path)", "connections": "\(connections.count)"])
        unlink(path)
        server.channel.close(promise: nil)
        handler.shutdown()
        connections.drain()
    }

    private func serve(_ connection: Connection) async {
        let state = connection.state
        guard connections.add(state) else {
            try? await connection.channel.channel.close()
            return
        }
        defer { connections.remove(state) }
        do {
            try await connection.channel.executeThenClose { inbound, outbound in
                for try await message in inbound {
                    state.serving()
                    let (reply, end) = await answer(message)
                    try await outbound.write(ByteBuffer(bytes: reply))
                    state.answered()
                    if end || connections.draining { return }
                }
            }
        } catch {
            logger.debug("RPC connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// The reply frame, and whether the connection ends after it (the stream cannot be followed).
    private func answer(_ message: RPCInbound) async -> ([UInt8], Bool) {
        switch message {
        case .badMagic:
            logger.warning("rejected a connection that does not speak the ipamd protocol")
            return (Framing.encode(message: RPCReply(error: RPCFailure(.badRequest,
                "not an ipamd RPC frame (bad magic); expected protocol version \(Framing.version)"))), true)
        case .tooLarge(let n):
            return (Framing.encode(message: RPCReply(error: RPCFailure(.badRequest, "frame of \(n) bytes exceeds \(Framing.maxPayload)"))), true)
        case .frame(let version, let payload):
            guard version == Framing.version else {
                logger.warning("client speaks another protocol version", metadata: ["client_version": "\(version)"])
                return (Framing.encode(message: RPCReply(error: RPCFailure(.unsupportedVersion,
                    "client speaks ipamd protocol version \(version); this ipamd speaks version \(Framing.version)"))), false)
            }
            let request: RPCRequest
            do { request = try Framing.decode(RPCRequest.self, payload: payload) } catch {
                return (Framing.encode(message: RPCReply(error: RPCFailure(.badRequest, "malformed request: \(error)"))), false)
            }
            return (Framing.encode(message: await handler.handle(request)), false)
        }
    }
}
