#if canImport(Glibc)
import Glibc
#endif
import IPAMDCore
import JSONText
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// One response of an HTTP endpoint.
public struct HTTPReply: Sendable {
    public var status: HTTPResponseStatus
    public var contentType: String
    public var body: [UInt8]

    public init(_ status: HTTPResponseStatus, contentType: String = "application/json", body: [UInt8]) {
        self.status = status; self.contentType = contentType; self.body = body
    }

    public init(_ status: HTTPResponseStatus, json text: String) {
        self.init(status, body: Array((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> HTTPReply {
        HTTPReply(status, json: #"{"error":"# + JSONText.string(message) + "}")
    }
}

/// What an HTTP server answers. Called on an event loop: answers must not block for long.
public protocol HTTPRoutes: Sendable {
    /// The paths served (GET only); anything else is 404, another method 405.
    var paths: [String] { get }
    func reply(path: String, query: String) -> HTTPReply
}

/// A small HTTP/1.1 server (NIOHTTP1) for introspection and metrics, on TCP or a Unix socket.
/// GET only, no request bodies; a request must arrive whole within `requestTimeout` (a slow or
/// silent client is cut off and holds no thread), headers are capped at 16 KiB.
public final class HTTPServer: Service, Sendable {
    public let address: BindAddress
    public let name: String
    private let server: any Channel
    private let logger: Logger

    private init(address: BindAddress, name: String, server: any Channel, logger: Logger) {
        self.address = address; self.name = name; self.server = server; self.logger = logger
    }

    public static func bind(_ address: BindAddress, name: String, routes: any HTTPRoutes, requestTimeout: TimeAmount = .seconds(10),
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) async throws -> HTTPServer {
        let limits = {
            var l = NIOHTTPDecoderLimitConfiguration()
            l.maxHeaderFieldSize = 8 * 1024
            l.maxHeaderListSize = 16 * 1024
            l.maxHeaderFieldCount = 64
            return l
        }()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 128)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(
                        withErrorHandling: true, withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
                    try child.pipeline.syncOperations.addHandler(HTTPRouteHandler(routes: routes, requestTimeout: requestTimeout))
                }
            }
        let server: any Channel
        switch address {
        case .tcp(let host, let port):
            // An empty host is every IPv4 address (the reference's ":61678"; clusters here are IPv4).
            server = try await bootstrap.bind(host: host.isEmpty ? "0.0.0.0" : host, port: port).get()
        case .unix(let path):
            try SocketFile.prepare(path)
            server = try await SocketFile.bindingPrivately(path) { try await bootstrap.bind(unixDomainSocketPath: path).get() }
        }
        logger.info("serving HTTP", metadata: ["endpoint": "\(name)", "address": "\(address)"])
        return HTTPServer(address: address, name: name, server: server, logger: logger)
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            try? await server.closeFuture.get()
        } onGracefulShutdown: {
            self.close()
        }
    }

    public func close() {
        if case .unix(let path) = address { unlink(path) }
        server.close(promise: nil)
    }
}

/// Answers one request at a time per connection (keep-alive allowed).
final class HTTPRouteHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let routes: any HTTPRoutes
    private let requestTimeout: TimeAmount
    private var head: HTTPRequestHead?
    private var bodyTooLarge = false
    private var timer: Scheduled<Void>?

    init(routes: any HTTPRoutes, requestTimeout: TimeAmount) {
        self.routes = routes; self.requestTimeout = requestTimeout
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        context.fireChannelInactive()
    }

    /// The next request must arrive whole in time, or the connection closes.
    private func arm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: requestTimeout) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            bodyTooLarge = false
        case .body:
            // No endpoint takes a body: it is discarded, and the request refused.
            bodyTooLarge = true
        case .end:
            timer?.cancel()
            guard let h = head else { return }
            head = nil
            let keepAlive = h.isKeepAlive && !bodyTooLarge
            let (routes, tooLarge) = (self.routes, bodyTooLarge)
            // Answers may read the kernel (explain) or render every series (metrics): off the
            // event loop, so the sockets it serves never wait for them.
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            NIOThreadPool.singleton.runIfActive(eventLoop: context.eventLoop) {
                Self.answer(h, routes: routes, bodyTooLarge: tooLarge)
            }.whenComplete { result in
                let (handler, context) = bound.value
                let reply = (try? result.get()) ?? .error(.serviceUnavailable, "ipamd is stopping")
                handler.write(reply, for: h, keepAlive: keepAlive, context: context)
            }
        }
    }

    private func write(_ reply: HTTPReply, for h: HTTPRequestHead, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: reply.contentType)
        headers.add(name: "Content-Length", value: "\(reply.body.count)")
        if reply.status == .methodNotAllowed { headers.add(name: "Allow", value: "GET, HEAD") }
        headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: reply.status, headers: headers))), promise: nil)
        if h.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: reply.body)))), promise: nil)
        }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { channel.close(promise: nil) }
        }
        if keepAlive { arm(context) }
    }

    private static func answer(_ h: HTTPRequestHead, routes: any HTTPRoutes, bodyTooLarge: Bool) -> HTTPReply {
        let parts = h.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts.first.map(String.init) ?? ""
        let query = parts.count > 1 ? String(parts[1]) : ""
        guard routes.paths.contains(path) || routes.paths.contains(where: { $0.hasSuffix("/") && path.hasPrefix($0) && path.count > $0.count }) else {
            return .error(.notFound, "unknown path \(path); GET / lists the endpoints")
        }
        guard h.method == .GET || h.method == .HEAD else { return .error(.methodNotAllowed, "\(h.method) is not allowed; use GET") }
        if bodyTooLarge { return .error(.payloadTooLarge, "requests take no body") }
        return routes.reply(path: path, query: query)
    }
}
