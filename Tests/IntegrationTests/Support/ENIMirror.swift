import Foundation
import Glibc
import Synchronization
import TestSupport

/// What the hypervisor does when EC2 attaches an ENI to the instance: a link with the ENI's MAC
/// appears in the node (down, MTU 1500), wired to the simulated VPC; on detach it goes away. The
/// harness watches the simulator's model (moto) and mirrors it into the node's namespace.
final class ENIMirror: @unchecked Sendable {
    // @unchecked: `links` is only touched on the mirror's thread, `stopped` is atomic.
    private let cloud: CloudSimulator
    private let sim: SimNode
    private let stopped = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    /// ENI id → the node's link name.
    private var links: [String: String] = [:]

    init(_ node: CloudNode) {
        cloud = node.cloud
        sim = node.sim
        Thread.detachNewThread { [self] in
            while !stopped.load(ordering: .relaxed) {
                sync()
                // The hot-plug latency of the simulated hypervisor.
                usleep(50_000)
            }
            done.signal()
        }
    }

    private func sync() {
        guard let state = cloud.state() else { return }
        let attached = state.enis.filter { $0.deviceIndex > 0 && $0.interfaceType == "interface" }
        for eni in attached where links[eni.eniID] == nil {
            let name = "ens\(eni.deviceIndex + 5)"
            guard (try? sim.node.ip("link", "add", name, "address", eni.mac, "type", "veth", "peer", "name", "eni\(eni.deviceIndex)",
                                    "netns", sim.vpc.name)) != nil else { continue }
            _ = try? sim.vpc.ip("link", "set", "eni\(eni.deviceIndex)", "up")
            links[eni.eniID] = name
        }
        for (id, name) in links where !attached.contains(where: { $0.eniID == id }) {
            _ = try? sim.node.ip("link", "del", name)
            links[id] = nil
        }
    }

    func stop() {
        guard !stopped.exchange(true, ordering: .relaxed) else { return }
        done.wait()
    }
}
