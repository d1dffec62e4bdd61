import IPAMDCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Threads for the blocking part of RPC answers (checkpoint writes, netlink). More than the
/// cores, so a request waiting for an fsync does not hold up the next; few, because the changes
/// of every request that queues meanwhile go into the next write anyway (group commit), and each
/// thread costs memory. Process-wide, like NIO's own singletons.
let blockingPool: NIOThreadPool = {
    let pool = NIOThreadPool(numberOfThreads: 4)
    pool.start()
    return pool
}()

/// ipamd's servers, bound: the RPC socket, the root-only debug socket, and the introspection
/// endpoint (unless disabled). Binding happens before serving so that a taken address stops
/// start-up with a clear error, and so the plugin is installed only once ipamd answers.
public struct Daemon: Sendable {
    public let rpc: RPCServer
    public let http: [HTTPServer]
    public let handler: RPCHandler

    public var services: [any Service] { [rpc] + http.map { $0 as any Service } }

    public static func bind(config: IPAMDConfig, source: any PodENISource, trunk: any TrunkLocator, registry: PodRegistry,
                            facts: NodeFacts? = nil, inventory: NodeInventory, extraHTTP: [HTTPServer] = [],
                            pool: (any AddressPoolService)? = nil, poolBoard: PoolSnapshotBoard? = nil,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger) async throws -> Daemon {
        let handler = RPCHandler(config: config, source: source, trunk: trunk, registry: registry, facts: facts,
                                 offload: { work in (try? await blockingPool.runIfActive(work)) ?? RPCHandler.shuttingDown }, pool: pool, logger: logger)
        let routes = IntrospectionRoutes(config: config, registry: registry, source: source, inventory: inventory, pool: poolBoard)
        let debug = IntrospectionRoutes(config: config, registry: registry, source: source, inventory: inventory,
                                        explainer: PodExplainer(config: config, registry: registry, source: source, trunk: trunk), pool: poolBoard)
        var http: [HTTPServer] = []
        do {
            http.append(try await HTTPServer.bind(.unix(path: config.debugSocket), name: "debug", routes: debug, group: group, logger: logger))
            if let address = config.servers.introspection {
                http.append(try await HTTPServer.bind(address, name: "introspection", routes: routes, group: group, logger: logger))
            }
            // One event loop accepts and serves every RPC connection: with the children spread
            // over the group, each accept woke a second loop, and the bench's p99 was 2-3x worse.
            let rpc = try await RPCServer.bind(path: config.rpcSocket, handler: handler, group: group.next(), logger: logger)
            logger.info("ipamd serving", metadata: ["rpc_socket": "\(config.rpcSocket)", "debug_socket": "\(config.debugSocket)",
                                                    "introspection": "\(config.servers.introspection?.description ?? "disabled")"])
            return Daemon(rpc: rpc, http: http + extraHTTP, handler: handler)
        } catch {
            for s in http { s.close() }
            throw error
        }
    }

    /// Stops serving without the service group (start-up failed after binding): the socket files go.
    public func close() {
        rpc.stopAccepting()
        for s in http { s.close() }
    }
}
