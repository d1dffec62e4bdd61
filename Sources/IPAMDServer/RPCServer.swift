#if canImport(Glibc)
import Glibc
#endif
import IPAMDCore
import IPAMDProtocol
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The RPC socket the plugin calls: SwiftNIO on a root-only Unix socket. A request that needs
/// neither a wait nor a checkpoint write (a repeated ADD, a CHECK, a ping) is answered on the
/// event loop, without a thread hop; the others run as a task (an AddNetwork waiting for its pod's
/// details holds no thread) whose blocking part goes to a thread pool. Graceful shutdown: the
/// socket file goes first (no new client can connect), waiting AddNetworks are answered "shutting
/// down" (CNI code 11), idle connections close, in-flight requests finish.
public final class RPCServer: Service, Sendable {
    public let path: String
    private let server: any Channel
    private let handler: RPCHandler
    private let connections: ConnectionSet
    private let logger: Logger

    private init(path: String, server: any Channel, handler: RPCHandler, connections: ConnectionSet, logger: Logger) {
        self.path = path; self.server = server; self.handler = handler; self.connections = connections; self.logger = logger
    }

    /// Binds `path` (mode 0600). Serving starts at once; `run()` keeps it until shutdown.
    public static func bind(path: String, handler: RPCHandler, idleTimeout: TimeAmount = .seconds(30),
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) async throws -> RPCServer {
        try SocketFile.prepare(path)
        let connections = ConnectionSet()
        let server = try await SocketFile.bindingPrivately(path) {
            try await ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 512)
                .childChannelInitializer { child in
                    child.eventLoop.makeCompletedFuture {
                        let state = ConnectionState(channel: child)
                        guard connections.add(state) else { throw ChannelError.ioOnClosedChannel }
                        child.closeFuture.whenComplete { _ in connections.remove(state) }
                        try child.pipeline.syncOperations.addHandler(
                            RPCConnectionHandler(handler: handler, state: state, idleTimeout: idleTimeout, logger: logger))
                    }
                }
                .bind(unixDomainSocketPath: path).get()
        }
        return RPCServer(path: path, server: server, handler: handler, connections: connections, logger: logger)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await server.closeFuture.get()
            // Requests already on their way are answered (bounded by the group's shutdown limit).
            await connections.waitUntilEmpty()
        } onGracefulShutdown: {
            self.stopAccepting()
        }
        unlink(path)
        logger.info("RPC socket closed", metadata: ["socket": "\(path)"])
    }

    /// Connections open now (tests).
    public var connectionCount: Int { connections.count }

    public func stopAccepting() {
        logger.info("shutting down: RPC socket removed, waiting AddNetworks answered with code 11, in-flight requests finishing",
                    metadata: ["socket": "\(path)", "connections": "\(connections.count)"])
        unlink(path)
        server.close(promise: nil)
        handler.shutdown()
        connections.drain()
    }
}

/// One connection, in one handler (a connection carries one request as the plugin calls): frames
/// read in order, one request answered at a time (a pipelined request waits for the answer before
/// it), the framing's errors answered and, where the stream is lost, the connection closed; a
/// connection silent for the idle timeout while nothing is being answered is closed.
final class RPCConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let handler: RPCHandler
    private let state: ConnectionState
    private let idleTimeout: TimeAmount
    private let logger: Logger
    private var frames = RPCFrameReader()
    /// Bytes read and not yet a whole frame (or frames waiting behind the one being answered).
    private var received: ByteBuffer?
    private var busy = false
    private var lastRead = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?

    init(handler: RPCHandler, state: ConnectionState, idleTimeout: TimeAmount, logger: Logger) {
        self.handler = handler; self.state = state; self.idleTimeout = idleTimeout; self.logger = logger
    }

    func channelActive(context: ChannelHandlerContext) {
        armIdleCheck(context, at: lastRead + idleTimeout)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        lastRead = .now()
        state.requestArriving()
        if received == nil { received = bytes } else { received!.writeBuffer(&bytes) }
        if !busy { next(context) }
    }

    private func armIdleCheck(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleCheck = context.eventLoop.scheduleTask(deadline: deadline) {
            let (me, context) = bound.value
            let due = me.lastRead + me.idleTimeout
            guard due <= .now() else {
                // Bytes came since the check was set: silent for the timeout counts from them.
                me.armIdleCheck(context, at: due)
                return
            }
            me.state.closeIfNotServing()
            // Still open: a request is being answered (an AddNetwork may wait); look again later.
            if context.channel.isActive { me.armIdleCheck(context, at: .now() + me.idleTimeout) }
        }
    }

    private func takeMessage() -> RPCInbound? {
        guard received != nil else { return nil }
        let message = frames.next(&received!)
        if received!.readableBytes == 0 { received = nil }
        return message
    }

    private func next(_ context: ChannelHandlerContext) {
        guard let message = takeMessage() else { return }
        busy = true
        state.serving()
        switch message {
        case .badMagic:
            logger.warning("rejected a connection that does not speak the ipamd protocol")
            reply(RPCReply(error: RPCFailure(.badRequest, "not an ipamd RPC frame (bad magic); expected protocol version \(Framing.version)")),
                  end: true, context)
        case .tooLarge(let n):
            reply(RPCReply(error: RPCFailure(.badRequest, "frame of \(n) bytes exceeds \(Framing.maxPayload)")), end: true, context)
        case .frame(let version, let payload):
            guard version == Framing.version else {
                logger.warning("client speaks another protocol version", metadata: ["client_version": "\(version)"])
                reply(RPCReply(error: RPCFailure(.unsupportedVersion,
                                                 "client speaks ipamd protocol version \(version); this ipamd speaks version \(Framing.version)")),
                      end: false, context)
                return
            }
            let request: RPCRequest
            do { request = try Framing.decode(RPCRequest.self, payload: payload.readableBytesView) } catch {
                reply(RPCReply(error: RPCFailure(.badRequest, "malformed request: \(error)")), end: false, context)
                return
            }
            if let now = handler.answerNow(request) {
                reply(now, end: false, context)
                return
            }
            let handler = self.handler
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask { await handler.handle(request) }.whenSuccess { answer in
                let (me, context) = bound.value
                me.reply(answer, end: false, context)
            }
        }
    }

    private func reply(_ answer: RPCReply, end: Bool, _ context: ChannelHandlerContext) {
        let channel = context.channel
        let closeAfter = end || state.draining
        let json = answer.json
        var frame = channel.allocator.buffer(capacity: Framing.headerSize + json.utf8.count)
        frame.writeBytes(Framing.header(payloadLength: json.utf8.count))
        frame.writeString(json)
        if closeAfter {
            context.writeAndFlush(wrapOutboundOut(frame)).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
        }
        busy = false
        state.answered()
        if !closeAfter { next(context) }
    }
}
