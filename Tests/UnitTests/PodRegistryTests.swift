import Foundation
import IPAMDCore
import TestSupport
import Synchronization
import Testing

/// A store whose writes can be made to fail, or held until the test lets them go.
private final class ControlledStore: ServedPodStore, @unchecked Sendable {
    struct State {
        var saved: [ServedPod] = []
        var saves = 0
        var failNext = false
    }
    let state = Mutex(State())
    /// When set, the first save waits for it.
    let gate: NSCondition?
    private let open = Mutex(false)

    init(holdFirstSave: Bool = false) { gate = holdFirstSave ? NSCondition() : nil }

    func load() throws(CheckpointError) -> [ServedPod] { state.withLock { $0.saved } }

    func save(_ pods: [ServedPod]) throws(CheckpointError) {
        let (first, fail) = state.withLock { s -> (Bool, Bool) in
            s.saves += 1
            defer { s.failNext = false }
            return (s.saves == 1, s.failNext)
        }
        if first, let gate {
            gate.lock()
            while !open.withLock({ $0 }) { gate.wait() }
            gate.unlock()
        }
        if fail { throw CheckpointError(path: "test", reason: "disk full") }
        state.withLock { $0.saved = pods }
    }

    func release() {
        guard let gate else { return }
        gate.lock()
        open.withLock { $0 = true }
        gate.broadcast()
        gate.unlock()
    }
}

private func pod(_ name: String, vlan: UInt16, container: String? = nil) -> ServedPod {
    ServedPod(namespace: "default", name: name, podUID: "uid-\(name)", containerID: container ?? "c-\(name)", ifName: "eth0",
              branch: true, vlanID: vlan, eniID: "eni-\(vlan)", ipv4: "10.0.0.\(vlan)", mac: "0a:00:00:00:00:\(vlan)", servedAt: "t")
}

@Suite(.ownThread) struct PodRegistryTests {
    @Test func everyAnsweredChangeIsInTheCheckpoint() throws {
        let store = ControlledStore()
        let r = PodRegistry(store: store)
        _ = try r.claim(pod("a", vlan: 1)) { _ in false }
        _ = try r.claim(pod("b", vlan: 2)) { _ in false }
        _ = try r.remove(key: "default/a", containerID: "c-a")
        #expect(store.state.withLock { $0.saved.map(\.key) } == ["default/b"])
    }

    @Test func aClaimThatCannotBeWrittenIsUndone() throws {
        let store = ControlledStore()
        let r = PodRegistry(store: store)
        _ = try r.claim(pod("a", vlan: 1)) { _ in false }
        store.state.withLock { $0.failNext = true }
        // A new sandbox of a, and b taking a's old VLAN... neither is recorded when the write fails.
        #expect(throws: CheckpointError.self) { _ = try r.claim(pod("a", vlan: 1, container: "c-a2")) { _ in false } }
        #expect(r.get(key: "default/a")?.containerID == "c-a")
        store.state.withLock { $0.failNext = true }
        #expect(throws: CheckpointError.self) { _ = try r.claim(pod("b", vlan: 1)) { _ in false } }
        #expect(r.get(key: "default/b") == nil)
        #expect(r.get(key: "default/a")?.containerID == "c-a")
        store.state.withLock { $0.failNext = true }
        #expect(throws: CheckpointError.self) { _ = try r.remove(key: "default/a", containerID: "c-a") }
        #expect(r.get(key: "default/a") != nil)
        // The next write carries the state as answered.
        _ = try r.claim(pod("c", vlan: 3)) { _ in false }
        #expect(Set(store.state.withLock { $0.saved.map(\.key) }) == ["default/a", "default/c"])
    }

    /// Claims made while a write is in progress share the next write instead of one each.
    @Test func concurrentClaimsShareOneWrite() throws {
        let store = ControlledStore(holdFirstSave: true)
        let r = PodRegistry(store: store)
        let done = DispatchGroup()
        let failures = Mutex(0)
        func claimAsync(_ p: ServedPod) {
            done.enter()
            Thread.detachNewThread {
                do { _ = try r.claim(p) { _ in false } } catch { failures.withLock { $0 += 1 } }
                done.leave()
            }
        }
        claimAsync(pod("first", vlan: 1))
        // The first claim is decided (visible) and its write is held.
        while store.state.withLock({ $0.saves }) == 0 { sched_yield() }
        let others = (2...6).map { pod("p\($0)", vlan: UInt16($0)) }
        for p in others { claimAsync(p) }
        // Every other claim is decided; each now waits for a write that carries it.
        while others.contains(where: { r.get(key: $0.key) == nil }) { sched_yield() }
        store.release()
        done.wait()
        #expect(failures.withLock { $0 } == 0)
        #expect(store.state.withLock { $0.saves } == 2)
        #expect(store.state.withLock { $0.saved.count } == 6)
    }
}

@Suite(.ownThread) struct FileCheckpointTests {
    /// The file is the reference's shape plus branchPods: the reference's allocations are
    /// adopted as regular pods and written back in its shape, allocations that are no pod's
    /// (IPv6 here) kept as written, and a pod that changes is written as it is now.
    @Test func writesTheShapeAndKeepsForeignAllocations() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/ipam.json"
        writeAtomically(#"{"version":"vpc-cni-ipam/1","allocations":[{"containerID":"x","ipv4":"10.0.0.9","networkName":"aws-cni","ifName":"eth0","allocationTimestamp":1764835200000000000,"metadata":{"k8sPodNamespace":"default","k8sPodName":"old"}},{"containerID":"y","ipv6":"fd00::1"}]}"#, to: path)
        let store = FileCheckpoint(path: path)
        let adopted = try store.load()
        #expect(adopted.map(\.key) == ["default/old"] && adopted.first?.ipv4 == "10.0.0.9" && adopted.first?.branch == false)
        #expect(adopted.first?.servedAt == "2025-12-04T08:00:00.000Z" && adopted.first?.networkName == "aws-cni")
        var b = pod("b", vlan: 2)
        try store.save([b, pod("a", vlan: 1)] + adopted)
        b.containerID = "c-b2"
        try store.save([b, pod("a", vlan: 1)] + adopted)

        let file = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        guard case .object(let top) = file, case .array(let allocations)? = top["allocations"] else { Issue.record("not the shape"); return }
        #expect(Set(top.keys) == ["version", "allocations", "branchPods"])
        #expect(top["version"] == .string("vpc-cni-ipam/1"))
        #expect(allocations.first == .object(["containerID": .string("y"), "ipv6": .string("fd00::1")]), "kept as written")
        guard case .object(let x)? = allocations.last else { Issue.record("no allocation for x"); return }
        #expect(x["containerID"] == .string("x") && x["ipv4"] == .string("10.0.0.9") && x["networkName"] == .string("aws-cni") && x["ifName"] == .string("eth0"))
        #expect(x["allocationTimestamp"] == .number(1_764_835_200_000_000_000))
        #expect(x["metadata"] == .object(["k8sPodNamespace": .string("default"), "k8sPodName": .string("old")]))
        let reloaded = try FileCheckpoint(path: path).load()
        #expect(reloaded.map(\.key).sorted() == ["default/a", "default/b", "default/old"])
        #expect(reloaded.first { $0.name == "b" }?.containerID == "c-b2")
    }
}
