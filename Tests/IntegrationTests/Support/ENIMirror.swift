import Foundation
import Glibc
import NetModel
import Synchronization
import TestSupport

/// What the hypervisor and the VPC do for the node's ENIs, driven by the simulator's model (moto):
/// - when EC2 attaches an ENI, a link with its MAC appears in the node (down, MTU 1500), wired to
///   the simulated VPC; on detach it goes away;
/// - the VPC delivers every address an ENI holds (primary, secondary, each address of a /28
///   prefix) to that ENI's MAC on that ENI's wire, and nothing else: the VPC namespace's strict
///   reverse-path filter drops a packet whose source address arrives on another ENI's wire, as
///   EC2's source/destination check does.
final class ENIMirror: @unchecked Sendable {
    // @unchecked: `links` and `delivered` are only touched on the mirror's thread (`routed` is a
    // copy behind a lock), `stopped` is atomic.
    private let cloud: CloudSimulator
    private let sim: SimNode
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    /// ENI id → the node's link name.
    private var links: [String: String] = [:]
    /// Address → (the VPC's link toward its ENI, the ENI's MAC) as installed in the VPC namespace.
    private var delivered: [String: Delivery] = [:]
    private let routed = Mutex<Set<String>>([])

    private struct Delivery: Equatable { var link: String; var mac: String }

    init(_ node: CloudNode) {
        cloud = node.cloud
        sim = node.sim
        _ = try? sim.vpc.exec(["/usr/sbin/sysctl", "-qw", "net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.default.rp_filter=1"])
        for link in ["primary0", "trunk"] { _ = try? sim.vpc.exec(["/usr/sbin/sysctl", "-qw", "net.ipv4.conf.\(link).rp_filter=1"]) }
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                sync()
                // The hot-plug latency of the simulated hypervisor.
                usleep(50_000)
            }
            done.signal()
        }
    }

    /// Whether the VPC delivers `address` to an ENI now.
    func routes(_ address: String) -> Bool { routed.withLock { $0.contains(address) } }

    private func sync() {
        guard let state = cloud.state() else { return }
        let attached = state.enis.filter { $0.deviceIndex > 0 && $0.interfaceType == "interface" }
        for eni in attached where links[eni.eniID] == nil {
            let name = "ens\(eni.deviceIndex + 5)", peer = "eni\(eni.deviceIndex)"
            guard (try? sim.node.ip("link", "add", name, "address", eni.mac, "type", "veth", "peer", "name", peer, "netns", sim.vpc.name)) != nil
            else { continue }
            _ = try? sim.vpc.exec(["/usr/sbin/sysctl", "-qw", "net.ipv4.conf.\(peer).rp_filter=1"])
            _ = try? sim.vpc.ip("link", "set", peer, "up")
            links[eni.eniID] = name
        }
        for (id, name) in links where !attached.contains(where: { $0.eniID == id }) {
            _ = try? sim.node.ip("link", "del", name)
            links[id] = nil
        }
        route(state.enis.filter { $0.interfaceType == "interface" && ($0.deviceIndex == 0 || links[$0.eniID] != nil) })
    }

    private func route(_ enis: [SimENI]) {
        var wanted: [String: Delivery] = [:]
        for eni in enis {
            let delivery = Delivery(link: eni.deviceIndex == 0 ? "primary0" : "eni\(eni.deviceIndex)", mac: eni.mac)
            let prefixed = eni.ipv4Prefixes.flatMap { p -> [String] in
                guard let prefix = IPPrefix(p), case .v4(let base) = prefix.address else { return [] }
                return (0..<(UInt32(1) << (32 - UInt32(prefix.length)))).map { IPv4Address(base.value + $0).description }
            }
            for a in [eni.ip] + eni.ipv4Addresses + prefixed { wanted[a] = delivery }
        }
        for (a, d) in delivered where wanted[a] != d {
            _ = try? sim.vpc.ip("route", "del", "\(a)/32", "dev", d.link)
            _ = try? sim.vpc.ip("neigh", "del", a, "dev", d.link)
            delivered[a] = nil
        }
        for (a, d) in wanted where delivered[a] == nil {
            guard (try? sim.vpc.ip("route", "replace", "\(a)/32", "dev", d.link)) != nil,
                  (try? sim.vpc.ip("neigh", "replace", a, "lladdr", d.mac, "dev", d.link, "nud", "permanent")) != nil else { continue }
            delivered[a] = d
        }
        let now = Set(delivered.keys)
        routed.withLock { $0 = now }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }
}
