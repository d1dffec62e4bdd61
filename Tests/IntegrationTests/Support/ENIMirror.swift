import Foundation
import Glibc
import NetModel
import Synchronization
import TestSupport

/// What the hypervisor and the VPC do for the node's ENIs, driven by the simulator's model (moto):
/// - when EC2 attaches an ENI, a link with its MAC appears in the node (down, MTU 1500), wired to
///   the simulated VPC; on detach it goes away;
/// - the VPC delivers every address an ENI holds (primary, secondary, each address of a /28
///   prefix) to that ENI's MAC on that ENI's wire, and nothing else: a strict reverse-path check
///   in the VPC namespace (nftables `fib saddr . iif`, for IP only: the node's ARP requests carry
///   whatever source address it picks, as on EC2) drops a packet whose source address arrives on
///   another ENI's wire, as EC2's source/destination check does.
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
    private let events = Mutex<[String]>([])

    private struct Delivery: Equatable { var link: String; var mac: String }

    init(_ node: CloudNode) {
        cloud = node.cloud
        sim = node.sim
        // The VPC forwards between ENIs.
        _ = try? sim.vpc.exec(["/usr/sbin/sysctl", "-qw", "net.ipv4.ip_forward=1"])
        let check = """
            table ip vpc-source-check {
                chain prerouting {
                    type filter hook prerouting priority raw; policy accept;
                    fib saddr . iif oif missing counter drop
                }
            }
            """
        let loaded = try? Spawn.run(["/usr/sbin/nft", "-f", "-"], env: ["PATH": "/usr/sbin:/usr/bin"], stdin: Array(check.utf8), netns: sim.vpc.path)
        precondition(loaded?.exitCode == 0, "the VPC's source check did not load: \(String(describing: loaded))")
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                sync()
                // The hot-plug latency of the simulated hypervisor.
                usleep(50_000)
            }
            done.signal()
        }
    }

    /// What the mirror did, with the time (for a failing test's message).
    var history: [String] { events.withLock { $0 } }

    private func note(_ what: String) {
        let line = "\(Date()) \(what)"
        events.withLock { $0.append(line) }
    }

    /// The VPC's end of the wire of the ENI at `deviceIndex` (the primary's is SimNode's).
    static func vpcLink(deviceIndex: Int) -> String { deviceIndex == 0 ? "primary0" : "eni\(deviceIndex)" }

    /// Whether the VPC delivers `address` to an ENI now.
    func routes(_ address: String) -> Bool { routed.withLock { $0.contains(address) } }

    private func sync() {
        guard let state = cloud.state() else { return }
        let attached = state.enis.filter { $0.deviceIndex > 0 && $0.interfaceType == "interface" }
        for eni in attached where links[eni.eniID] == nil {
            let name = "ens\(eni.deviceIndex + 5)", peer = Self.vpcLink(deviceIndex: eni.deviceIndex)
            do {
                try sim.node.ip("link", "add", name, "address", eni.mac, "type", "veth", "peer", "name", peer, "netns", sim.vpc.name)
            } catch {
                note("cannot add \(name) for \(eni.eniID): \(error)")
                continue
            }
            note("\(eni.eniID) attached at \(eni.deviceIndex): link \(name)")
            _ = try? sim.vpc.ip("link", "set", peer, "up")
            links[eni.eniID] = name
        }
        for (id, name) in links where !attached.contains(where: { $0.eniID == id }) {
            _ = try? sim.node.ip("link", "del", name)
            links[id] = nil
            note("\(id) detached: link \(name) removed")
        }
        route(state.enis.filter { $0.interfaceType == "interface" && ($0.deviceIndex == 0 || links[$0.eniID] != nil) })
    }

    private func route(_ enis: [SimENI]) {
        var wanted: [String: Delivery] = [:]
        for eni in enis {
            let delivery = Delivery(link: Self.vpcLink(deviceIndex: eni.deviceIndex), mac: eni.mac)
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
        let before = routed.withLock { r in defer { r = now }; return r.count }
        if before != now.count { note("the VPC routes \(now.count) addresses") }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }
}
