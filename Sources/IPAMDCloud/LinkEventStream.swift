import Logging
import NIOCore
import NIOPosix
import SystemIO

/// The kernel's link notifications as an AsyncStream: one element per burst of changes. The
/// netlink socket is read by a SwiftNIO event loop like every other socket of ipamd (no thread
/// of its own); nothing is parsed: the reader lists the links again on each element.
public final class LinkEventStream: Sendable {
    public let events: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    private let channel: any Channel

    /// Subscribes now, in the calling thread's network namespace: a link created after this call
    /// is reported even if the first listing has not happened yet.
    public init(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) async throws {
        let socket = try LinkEventSocket()
        let (events, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // The event loop owns a duplicate (the subscription belongs to the open socket, which both
        // share); `socket` closes its own descriptor when it goes.
        let descriptor = try socket.duplicateDescriptor()
        channel = try await NIOPipeBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LinkEventHandler(continuation: continuation, logger: logger))
                }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
            .get()
        self.events = events
        self.continuation = continuation
    }

    public func finish() {
        channel.close(promise: nil)
        continuation.finish()
    }
}

/// Every read is "links changed"; the stream ends with the socket.
private final class LinkEventHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<Void>.Continuation
    let logger: Logger

    init(continuation: AsyncStream<Void>.Continuation, logger: Logger) { self.continuation = continuation; self.logger = logger }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) { continuation.yield() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ENOBUFS (notifications dropped) ends the channel: say so, and have the links listed once more.
        logger.error("link notifications failed; the trunk is looked for again only at the next start", metadata: ["error": "\(error)"])
        continuation.yield()
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
}
