import Foundation
import IPAMDProtocol
import Logging
import Netlink

/// Wires ipamd together: source, trunk, handler, the two sockets. `run` blocks until SIGTERM or
/// SIGINT, then stops accepting, lets in-flight requests finish and removes the sockets.
/// @unchecked Sendable: `listeners` changes only in start/stop, which the owner calls in order.
public final class Daemon: @unchecked Sendable {
    let config: IPAMDConfig
    let logger: Logger
    public let registry: PodRegistry
    let handler: RPCHandler
    var listeners: [UnixListener] = []

    public init(config: IPAMDConfig, source: any PodENISource, trunk: any TrunkLocator, registry: PodRegistry,
                facts: NodeFacts? = nil, logger: Logger) {
        self.config = config
        self.logger = logger
        self.registry = registry
        handler = RPCHandler(config: config, source: source, trunk: trunk, registry: registry, facts: facts, logger: logger)
    }

    /// Binds both sockets and starts serving.
    public func start() throws(SocketError) {
        let rpc = try UnixListener(path: config.rpcSocket, logger: logger)
        listeners.append(rpc)
        let debug: UnixListener
        do { debug = try UnixListener(path: config.debugSocket, logger: logger) } catch {
            rpc.shutdown()
            throw error
        }
        listeners.append(debug)
        let rpcHandler = RPCConnectionHandler(handler: handler, logger: logger)
        let debugHandler = DebugConnectionHandler(registry: registry, source: handler.source, logger: logger)
        rpc.start { rpcHandler.serve($0) }
        debug.start { debugHandler.serve($0) }
        logger.info("ipamd serving", metadata: ["rpc_socket": "\(config.rpcSocket)", "debug_socket": "\(config.debugSocket)"])
    }

    public func stop() {
        for l in listeners { l.shutdown() }
        listeners.removeAll()
        logger.info("ipamd stopped")
    }

    /// Blocks SIGTERM/SIGINT in every thread (call before any thread starts), so that only
    /// `waitForTermination` receives them, synchronously.
    public static func blockTerminationSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    @discardableResult
    public static func waitForTermination() -> Int32 {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        var sig: Int32 = 0
        sigwait(&set, &sig)
        return sig
    }
}
