import EnforcingMode
import Logging
import NetModel
import Netlink

/// The two namespaces a pod's plan touches. The pod side is absent for DEL without a netns.
public struct DatapathContext {
    public var host: any NetlinkClient
    public var pod: (any NetlinkClient)?
    /// Open fd of the pod netns, for placing the veth peer there; -1 when there is no pod side.
    public var podNamespaceFD: Int32
    public var sysctl: any SysctlWriter
    let links = LinkCache()

    public init(host: any NetlinkClient, pod: (any NetlinkClient)?, podNamespaceFD: Int32, sysctl: any SysctlWriter) {
        self.host = host; self.pod = pod; self.podNamespaceFD = podNamespaceFD; self.sysctl = sysctl
    }

    func client(_ side: Side, step: PlanStep) throws(DatapathError) -> any NetlinkClient {
        switch side {
        case .host: return host
        case .pod:
            guard let pod else { throw DatapathError(step: step.description, cause: .missingLink("pod namespace")) }
            return pod
        }
    }

    /// Links this run already read (e.g. for a teardown plan): later steps reuse them.
    public func remember(_ side: Side, _ found: some Sequence<LinkInfo>) {
        for l in found { links.put(side, l.name, l) }
    }

    /// A link as this run last saw it (looked up now if it has not been); nil when absent.
    public func knownLink(_ side: Side, _ name: String) -> LinkInfo? {
        try? link(side, name, step: .linkUp(side, name))
    }

    func linkIndex(_ side: Side, _ name: String, step: PlanStep) throws(DatapathError) -> Int32 {
        try link(side, name, step: step).index
    }

    /// A link by name, looked up once per run: every later step on it reuses the answer (an
    /// ADD names the same few links a dozen times, and each lookup was a netlink round trip).
    func link(_ side: Side, _ name: String, step: PlanStep) throws(DatapathError) -> LinkInfo {
        if let l = links.get(side, name) { return l }
        let c = try client(side, step: step)
        do {
            guard let l = try c.link(named: name) else { throw DatapathError(step: step.description, cause: .missingLink(name)) }
            links.put(side, name, l)
            return l
        } catch let e as NetlinkError {
            throw DatapathError(step: step.description, cause: .netlink(e))
        } catch let e as DatapathError {
            throw e
        } catch {
            fatalError("unreachable: typed throws")
        }
    }
}

/// Links found during one run of a plan, by side and name. Only index and MAC are read from
/// it, which stay the same for a link's life; deleting a link forgets it.
final class LinkCache {
    private var found: [String: LinkInfo] = [:]
    private func key(_ side: Side, _ name: String) -> String { "\(side == .host ? "h" : "p")/\(name)" }
    func get(_ side: Side, _ name: String) -> LinkInfo? { found[key(side, name)] }
    func put(_ side: Side, _ name: String, _ l: LinkInfo) { found[key(side, name)] = l }
    func forget(_ side: Side, _ name: String) { found[key(side, name)] = nil }
}

/// Applies plans step by step. Setup is all or nothing: on the first failure every applied step
/// is undone in reverse order before the error is returned.
public struct PlanApplier {
    public var context: DatapathContext
    public var logger: Logger

    public init(context: DatapathContext, logger: Logger) { self.context = context; self.logger = logger }

    public func setup(_ steps: [PlanStep]) throws(DatapathError) {
        var undo: [PlanStep] = []
        var i = steps.startIndex
        while i < steps.endIndex {
            let step = steps[i]
            i += 1
            do throws(DatapathError) {
                // A tag followed by bringing the same link up is one RTM_NEWLINK (alias and
                // IFF_UP): one round trip less, the same end state; neither step has an inverse.
                if case .tagOwner(let name, let owner) = step, i < steps.endIndex, steps[i] == .linkUp(.host, name) {
                    let idx = try context.linkIndex(.host, name, step: step)
                    try Self.netlink(step) { () throws(NetlinkError) in try context.host.setAlias(index: idx, alias: owner, up: true) }
                    i += 1
                    continue
                }
                // Only what this run created is undone: an identical rule that was already
                // there (EEXIST) belongs to someone else.
                if try apply(step) { undo.append(contentsOf: inverse(of: step)) }
                logger.trace("applied", metadata: ["step": "\(step)"])
            } catch {
                logger.error("setup failed, rolling back", metadata: ["step": "\(step)", "error": "\(error)", "undo_steps": "\(undo.count)"])
                rollBack(undo)
                throw error
            }
        }
    }

    /// Runs every step even after a failure (so one stuck object does not hide the rest);
    /// absence is success. Returns the failures that were not "not found".
    @discardableResult
    public func teardown(_ steps: [PlanStep]) -> [DatapathError] {
        var failures: [DatapathError] = []
        for step in steps {
            do { _ = try apply(step) } catch {
                if Self.isAbsence(error) { continue }
                logger.warning("teardown step failed", metadata: ["step": "\(step)", "error": "\(error)"])
                failures.append(error)
            }
        }
        return failures
    }

    func rollBack(_ undo: [PlanStep]) {
        for step in undo.reversed() {
            do { _ = try apply(step) } catch where !Self.isAbsence(error) {
                logger.error("rollback step failed", metadata: ["step": "\(step)", "error": "\(error)"])
            } catch {}
        }
    }

    static func isAbsence(_ e: DatapathError) -> Bool {
        switch e.cause {
        case .netlink(let n): n.isNotFound
        case .sysctl(let s): s.isNotFound
        case .missingLink: true
        }
    }

    /// What undoes a setup step. Objects inside a link (addresses, routes through it, the pod's
    /// neighbour) go with the link, and every route of a plan goes through a link the plan
    /// created, so only links and rules need explicit undo.
    func inverse(of step: PlanStep) -> [PlanStep] {
        switch step {
        case .createVeth(let host, _, _, _, _): [.deleteLink(.host, host)]
        case .createVLAN(let name, _, _, _): [.deleteLink(.host, name)]
        case .rule(let r): [.deleteRule(r)]
        case .route, .linkUp, .tagOwner, .sysctl, .address, .neighbor, .deleteLink, .deleteRule: []
        }
    }

    /// Applies one step; false when the object was already there (nothing to undo).
    @discardableResult
    func apply(_ step: PlanStep) throws(DatapathError) -> Bool {
        func nl<T>(_ body: () throws(NetlinkError) -> T) throws(DatapathError) -> T { try Self.netlink(step, body) }
        let ctx = context
        switch step {
        case .createVeth(let host, let container, let mtu, let hostMAC, let containerMAC):
            guard ctx.podNamespaceFD >= 0 else { throw DatapathError(step: step.description, cause: .missingLink("pod namespace")) }
            try nl { () throws(NetlinkError) in
                try ctx.host.addVeth(name: host, peerName: container, peerNamespaceFD: ctx.podNamespaceFD, mtu: mtu, mac: hostMAC, peerMAC: containerMAC)
            }
        case .createVLAN(let name, let parent, let id, let mac):
            try nl { () throws(NetlinkError) in try ctx.host.addVLAN(name: name, parentIndex: parent, vlanID: id, mac: mac) }
        case .linkUp(let side, let name):
            let c = try ctx.client(side, step: step)
            let idx = try ctx.linkIndex(side, name, step: step)
            try nl { () throws(NetlinkError) in try c.setLinkUp(index: idx) }
        case .tagOwner(let name, let owner):
            let idx = try ctx.linkIndex(.host, name, step: step)
            try nl { () throws(NetlinkError) in try ctx.host.setAlias(index: idx, alias: owner) }
        case .sysctl(_, let key, let value):
            do { try ctx.sysctl.write(key, value) } catch where error.isNotFound {
                // No IPv6 in this kernel (or the link is gone): nothing to configure.
            } catch { throw DatapathError(step: step.description, cause: .sysctl(error)) }
        case .address(let side, let link, let prefix):
            let c = try ctx.client(side, step: step)
            let idx = try ctx.linkIndex(side, link, step: step)
            do { try c.addAddress(InterfaceAddress(linkIndex: idx, prefix: prefix)) } catch where error.isExists {
                // Already there: an ADD retried after a crash.
                return false
            } catch { throw DatapathError(step: step.description, cause: .netlink(error)) }
        case .route(let side, let r):
            let c = try ctx.client(side, step: step)
            let idx = try ctx.linkIndex(side, r.device, step: step)
            try nl { () throws(NetlinkError) in try c.replaceRoute(Self.route(r, index: idx)) }
        case .rule(let r):
            do { try ctx.host.addRule(r) } catch where error.isExists {
                // Identical rule present: idempotent.
                return false
            } catch { throw DatapathError(step: step.description, cause: .netlink(error)) }
        case .neighbor(let side, let link, let address, let mac):
            let c = try ctx.client(side, step: step)
            let idx = try ctx.linkIndex(side, link, step: step)
            try nl { () throws(NetlinkError) in try c.addNeighbor(Neighbor(linkIndex: idx, address: address, mac: mac)) }
        case .deleteLink(let side, let name):
            let c = try ctx.client(side, step: step)
            let idx = try ctx.linkIndex(side, name, step: step)
            ctx.links.forget(side, name)
            try nl { () throws(NetlinkError) in try c.deleteLink(index: idx) }
        case .deleteRule(let r):
            try nl { () throws(NetlinkError) in try ctx.host.deleteRule(r) }
        }
        return true
    }

    /// A netlink call of `step`, its failure reported as that step's.
    static func netlink<T>(_ step: PlanStep, _ body: () throws(NetlinkError) -> T) throws(DatapathError) -> T {
        do { return try body() } catch { throw DatapathError(step: step.description, cause: .netlink(error)) }
    }

    static func route(_ r: PlannedRoute, index: Int32) -> Route {
        Route(destination: r.destination, gateway: r.gateway, outputIndex: index, table: r.table, scope: r.scope)
    }
}
