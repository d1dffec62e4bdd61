import CNI
import CNIPlugin
import Foundation
import IPAMDCore
import IPAMDProtocol
import Logging
import NetModel
import Synchronization
import SystemIO
import TestSupport
import Testing

// Defect 8: an AddNetwork waiting for pod details while ipamd shuts down gets "try again later"
// (CNI code 11), not code 100. Defect 10: the static file's stamp and content change together.

@Suite(.ownThread) struct ShutdownTests {
    @Test func waitingLookupIsAnsweredAtShutdown() async {
        let cache = PodCache(waitBound: 25, logger: quiet)
        cache.replaceAll([PodFacts(namespace: "default", name: "late", uid: "u1", branch: true)])
        let late = PodRequest(podName: "late", podNamespace: "default", containerID: "c1")
        async let waited = cache.awaitDetails(for: late, until: .now + .seconds(25))
        // The wait is parked on the 25 s bound; shutdown must end it at once.
        #expect(await eventually { cache.waiters == 1 })
        cache.shutdown()
        #expect(await waited == .closed)
        // Later waits end at once too.
        #expect(await cache.awaitDetails(for: late, until: .now + .seconds(25)) == .closed)
    }

    /// The handler answers a waiting AddNetwork "shutting down" (code 11) when ipamd stops.
    @Test func waitingAddIsAnsweredShuttingDown() async {
        let cache = PodCache(waitBound: 25, logger: quiet)
        cache.replaceAll([PodFacts(namespace: "default", name: "late", uid: "u1", branch: true)])
        var config = IPAMDConfig(podENISource: .file(path: "/none"), trunk: .name("eth1"), vpcCIDRs: [])
        config.node.enablePodENI = true
        let h = RPCHandler(config: config, source: cache, trunk: FixedTrunk(index: 4), registry: PodRegistry(), logger: quiet)
        async let reply = h.handle(RPCRequest(method: .addNetwork, pod: PodRequest(podName: "late", podNamespace: "default", podUID: "u1", containerID: "c1")))
        #expect(await eventually { cache.waiters == 1 })
        h.shutdown()
        #expect(await reply.error?.code == .shuttingDown)
    }

    @Test func shuttingDownIsTryAgainLaterForTheRuntime() {
        let h = Harness()
        h.ipamd.failure = RPCFailure(.shuttingDown, "ipamd is shutting down")
        #expect(code(h.run("ADD", conf: Harness.conf())) == 11)
    }

    /// ipamd exiting while a request is in flight closes the connection unanswered: the plugin
    /// reports 11 (the runtime retries the ADD against the next ipamd), not a protocol error.
    @Test func connectionClosedWithoutAnswerIsTryAgainLater() throws {
        let dir = tempDir()
        // A server that reads the request and closes without answering.
        let listener = try ClosingListener(path: dir + "/s.sock")
        defer { listener.close() }
        let d = Dispatcher(makeIPAMD: { _ in SocketIPAMDClient(path: dir + "/s.sock") }, datapath: FakeDatapath(),
                           makeLogger: { _, _ in quiet })
        let out = d.run(environment: ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/pod1", "CNI_IFNAME": "eth0",
                                      "CNI_ARGS": "K8S_POD_NAMESPACE=default;K8S_POD_NAME=late"],
                        stdin: Array(Harness.conf().utf8))
        #expect(code(out) == 11, "\(out.stdout)")
    }
}

/// The thread the gate holds (set by that thread itself).
private let gatedThread = Mutex<pthread_t?>(nil)

/// A log handler that blocks the gated thread on its "loaded pod-eni file" line, so a test can
/// hold a reader between storing a file and answering from it.
private struct GateLogHandler: LogHandler {
    let reached: DispatchSemaphore
    let release: DispatchSemaphore
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? { get { metadata[key] } set { metadata[key] = newValue } }
    func log(event: LogEvent) {
        let gated = gatedThread.withLock { $0.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
        guard event.message.description == "loaded pod-eni file", gated else { return }
        reached.signal()
        release.wait()
    }
}

@Suite(.ownThread) struct StaticFileReloadTests {
    func file(vlan: Int) -> String {
        #"{"pods":{"default/a":[{"eniId":"eni-1","ifAddress":"0a:00:00:00:00:07","privateIp":"10.0.40.12","vlanId":\#(vlan),"subnetCidr":"10.0.32.0/19"}]}}"#
    }

    /// A first reader reads version 1 and is slow; the file becomes version 2 and a second
    /// lookup starts after that. The second must answer from version 2: it must never be handed
    /// the slow reader's older content, stored over the newer one.
    @Test func aSlowReaderNeverAnswersANewerLookupWithOlderContent() throws {
        let dir = tempDir()
        let path = dir + "/pods.json"
        writeAtomically(file(vlan: 7), to: path)
        let firstInRead = DispatchSemaphore(value: 0), releaseFirst = DispatchSemaphore(value: 0)
        let secondLoaded = DispatchSemaphore(value: 0), releaseSecond = DispatchSemaphore(value: 0)
        let armed = Mutex(false)
        let source = StaticFileSource(path: path, logger: Logger(label: "gate") { _ in GateLogHandler(reached: secondLoaded, release: releaseSecond) },
                                      readFile: { (p) throws(Errno) in
            let bytes = try FileIO.read(path: p)
            if armed.withLock({ let was = $0; $0 = false; return was }) {
                firstInRead.signal()
                releaseFirst.wait()
            }
            return bytes
        })
        writeAtomically(file(vlan: 8), to: path)
        armed.withLock { $0 = true }
        let answers = Mutex<[String: UInt16]>([:])
        func reader(_ name: String, done: DispatchSemaphore) -> Thread {
            Thread {
                if name == "second reader" { gatedThread.withLock { $0 = pthread_self() } }
                if case .branch(let e) = source.lookup(key: "default/a", containerID: "") { answers.withLock { $0[name] = e.vlanID } }
                done.signal()
            }
        }
        let firstDone = DispatchSemaphore(value: 0), secondDone = DispatchSemaphore(value: 0)
        reader("first reader", done: firstDone).start()
        #expect(firstInRead.wait(timeout: .now() + 10) == .success)
        writeAtomically(file(vlan: 9), to: path)
        reader("second reader", done: secondDone).start()
        // Either the second reader loads version 2 while the first is stuck (and is held right
        // there, before it answers), or it waits for the first one's lock: give it a bounded chance.
        _ = secondLoaded.wait(timeout: .now() + 2)
        releaseFirst.signal()
        #expect(firstDone.wait(timeout: .now() + 10) == .success)
        releaseSecond.signal()
        #expect(secondDone.wait(timeout: .now() + 10) == .success)
        #expect(answers.withLock { $0["second reader"] } == 9, "\(answers.withLock { $0 })")
        #expect(source.lookup(key: "default/a", containerID: "") != .notFound)
        if case .branch(let e) = source.lookup(key: "default/a", containerID: "") { #expect(e.vlanID == 9) }
    }
}

/// Accepts one connection, reads one frame and closes it unanswered (ipamd exiting mid-request).
private final class ClosingListener: Sendable {
    let fd: Int32

    init(path: String) throws {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        self.fd = fd
        var addr = try UnixStream.address(path)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0, listen(fd, 4) == 0 else { throw SocketError("bind \(path)", errno: errno) }
        Thread.detachNewThread {
            let c = accept(fd, nil, nil)
            guard c >= 0 else { return }
            let s = UnixStream(fd: c)
            _ = try? s.readFrame()
            s.close()
        }
    }

    func close() { Glibc.shutdown(fd, Int32(SHUT_RDWR)); Glibc.close(fd) }
}
